#include "lanyard/duration.h"

#include "lanyard/err.h"

#include <stdio.h>
#include <string.h>

/* Ten years: no Lanyard setting is longer, and it keeps sums far from
 * overflow. */
#define DURATION_MAX_MS (10ull * 366 * 24 * 3600 * 1000)

static const struct {
  const char *name;
  uint64_t ms;
} units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

int ly_duration_parse(const char *s, uint64_t *ms, const char **why) {
  uint64_t total = 0;
  LY_ENSURE_WHY(s && *s, LY_EDURATION, why, "duration is empty");
  while (*s) {
    LY_ENSURE_WHY(*s >= '0' && *s <= '9', LY_EDURATION, why,
                  "duration must be like 90s, 10m, 1h or 1h30m");
    uint64_t n = 0;
    while (*s >= '0' && *s <= '9') {
      n = n * 10 + (uint64_t)(*s++ - '0');
      LY_ENSURE_WHY(n <= DURATION_MAX_MS, LY_EDURATION, why,
                    "duration is too long (at most 10 years)");
    }
    size_t ulen = 0;
    while (s[ulen] && !(s[ulen] >= '0' && s[ulen] <= '9'))
      ulen++;
    LY_ENSURE_WHY(ulen > 0, LY_EDURATION, why,
                  "duration needs a unit (ms, s, m, h or d)");
    uint64_t unit = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
      if (strlen(units[i].name) == ulen && memcmp(units[i].name, s, ulen) == 0)
        unit = units[i].ms;
    LY_ENSURE_WHY(unit != 0, LY_EDURATION, why,
                  "unknown duration unit (use ms, s, m, h or d)");
    LY_ENSURE_WHY(n <= DURATION_MAX_MS / unit, LY_EDURATION, why,
                  "duration is too long (at most 10 years)");
    total += n * unit;
    LY_ENSURE_WHY(total <= DURATION_MAX_MS, LY_EDURATION, why,
                  "duration is too long (at most 10 years)");
    s += ulen;
  }
  *ms = total;
  return 0;
}

const char *ly_duration_format(uint64_t ms, char *buf, size_t len) {
  size_t off = 0;
  if (ms == 0 || ms % 1000 != 0) {
    snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
  }
  uint64_t s = ms / 1000;
  const uint64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  buf[0] = '\0';
  if (h && off < len)
    off +=
        (size_t)snprintf(buf + off, len - off, "%lluh", (unsigned long long)h);
  if (m && off < len)
    off +=
        (size_t)snprintf(buf + off, len - off, "%llum", (unsigned long long)m);
  if (sec && off < len)
    snprintf(buf + off, len - off, "%llus", (unsigned long long)sec);
  return buf;
}
