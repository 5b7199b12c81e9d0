/* The state of a periodic exchange with the CA, and its log lines. A
 * report fails every interval while the CA is away: one warning at the
 * start, then one a minute, keeps the log readable and the outage seen. */
#include "lanyard/identity.h"

#include "lanyard/log.h"

#include <stdio.h>
#include <time.h>

#define LOG_EVERY_MS 60000

void ly_upstream_ok(ly_upstream_t *u, const char *what) {
  if (u->failing) {
    char event[64], n[24];
    snprintf(event, sizeof(event), "%s_recovered", what);
    ly_log(LY_INFO, event, "after_failures",
           ly_fmt(n, sizeof(n), "%llu", (unsigned long long)u->failing), NULL);
  }
  u->last_ok = (int64_t)time(NULL);
  u->failing = 0;
  u->suppressed = 0;
}

void ly_upstream_failed(ly_upstream_t *u, const char *what, uint64_t now_ms,
                        const char *code, const char *message) {
  u->last_error_at = (int64_t)time(NULL);
  snprintf(u->last_error, sizeof(u->last_error), "%s: %s", code,
           message ? message : "");
  u->failing++;
  if (u->failing > 1 && now_ms < u->logged_ms + LOG_EVERY_MS) {
    u->suppressed++;
    return;
  }
  char event[64], n[24], s[24];
  snprintf(event, sizeof(event), "%s_failed", what);
  ly_log(LY_WARN, event, "code", code, "reason", message, "failures",
         ly_fmt(n, sizeof(n), "%llu", (unsigned long long)u->failing),
         "suppressed",
         ly_fmt(s, sizeof(s), "%llu", (unsigned long long)u->suppressed), NULL);
  u->logged_ms = now_ms;
  u->suppressed = 0;
}
