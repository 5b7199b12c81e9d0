#include "lanyard/spiffe.h"

#include "lanyard/err.h"

#include <stdio.h>
#include <string.h>

static const char scheme[] = "spiffe://";
#define SCHEME_LEN (sizeof(scheme) - 1)
static const char reserved_prefix[] = "/lanyard/";

static int td_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

static int path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

int ly_trust_domain_check(const char *td, size_t len, const char **why) {
  LY_ENSURE_WHY(len > 0, LY_ESPIFFE_ID, why, "trust domain is empty");
  LY_ENSURE_WHY(len <= LY_TRUST_DOMAIN_MAX, LY_ESPIFFE_ID, why,
                "trust domain is longer than 255 bytes");
  for (size_t i = 0; i < len; i++) {
    char c = td[i];
    LY_ENSURE_WHY(c != ':', LY_ESPIFFE_ID, why,
                  "trust domain must not include a port");
    LY_ENSURE_WHY(c != '@', LY_ESPIFFE_ID, why,
                  "trust domain must not include user info");
    LY_ENSURE_WHY(!(c >= 'A' && c <= 'Z'), LY_ESPIFFE_ID, why,
                  "trust domain must be lowercase");
    LY_ENSURE_WHY(td_char(c), LY_ESPIFFE_ID, why,
                  "trust domain has a character other than [a-z0-9.-_]");
  }
  return 0;
}

static int path_check(const char *p, size_t len, const char **why) {
  size_t i = 0;
  while (i < len) {
    /* p[i] == '/': one segment follows, up to the next '/' or the end */
    size_t start = ++i;
    while (i < len && p[i] != '/') {
      LY_ENSURE_WHY(p[i] != '%', LY_ESPIFFE_ID, why,
                    "path must not be percent-encoded");
      LY_ENSURE_WHY(p[i] != '?', LY_ESPIFFE_ID, why,
                    "SPIFFE ID must not have a query");
      LY_ENSURE_WHY(p[i] != '#', LY_ESPIFFE_ID, why,
                    "SPIFFE ID must not have a fragment");
      LY_ENSURE_WHY(path_char(p[i]), LY_ESPIFFE_ID, why,
                    "path has a character other than [a-zA-Z0-9.-_]");
      i++;
    }
    size_t seg = i - start;
    LY_ENSURE_WHY(seg > 0, LY_ESPIFFE_ID, why,
                  i == len ? "path must not end with '/'"
                           : "path has an empty segment");
    LY_ENSURE_WHY(!(seg == 1 && p[start] == '.'), LY_ESPIFFE_ID, why,
                  "path has a '.' segment");
    LY_ENSURE_WHY(!(seg == 2 && p[start] == '.' && p[start + 1] == '.'),
                  LY_ESPIFFE_ID, why, "path has a '..' segment");
  }
  return 0;
}

int ly_spiffe_id_parse(const char *s, size_t len, ly_spiffe_id_t *out,
                       const char **why) {
  LY_ENSURE_WHY(len > 0, LY_ESPIFFE_ID, why, "SPIFFE ID is empty");
  LY_ENSURE_WHY(len <= LY_SPIFFE_ID_MAX, LY_ESPIFFE_ID, why,
                "SPIFFE ID is longer than 2048 bytes");
  LY_ENSURE_WHY(memchr(s, '\0', len) == NULL, LY_ESPIFFE_ID, why,
                "SPIFFE ID contains a NUL byte");
  LY_ENSURE_WHY(len >= SCHEME_LEN && memcmp(s, scheme, SCHEME_LEN) == 0,
                LY_ESPIFFE_ID, why,
                "SPIFFE ID must start with spiffe:// (lowercase scheme)");
  const char *td = s + SCHEME_LEN;
  const char *end = s + len;
  const char *slash = memchr(td, '/', (size_t)(end - td));
  const char *td_end = slash ? slash : end;
  /* a query or fragment directly after the trust domain */
  for (const char *c = td; c < td_end; c++) {
    LY_ENSURE_WHY(*c != '?', LY_ESPIFFE_ID, why,
                  "SPIFFE ID must not have a query");
    LY_ENSURE_WHY(*c != '#', LY_ESPIFFE_ID, why,
                  "SPIFFE ID must not have a fragment");
  }
  LY_GUARD(ly_trust_domain_check(td, (size_t)(td_end - td), why));
  if (slash)
    LY_GUARD(path_check(slash, (size_t)(end - slash), why));
  if (out) {
    memcpy(out->id, s, len);
    out->id[len] = '\0';
    out->td_off = SCHEME_LEN;
    out->td_len = (size_t)(td_end - td);
    out->path_off = (size_t)(td_end - s);
  }
  return 0;
}

int ly_spiffe_workload_id_parse(const char *s, size_t len, ly_spiffe_id_t *out,
                                const char **why) {
  ly_spiffe_id_t id;
  LY_GUARD(ly_spiffe_id_parse(s, len, &id, why));
  LY_ENSURE_WHY(id.id[id.path_off] != '\0', LY_ESPIFFE_ID, why,
                LY_SPIFFE_NEEDS_PATH);
  if (out)
    *out = id;
  return 0;
}

int ly_spiffe_id_in_domain(const ly_spiffe_id_t *id, const char *td) {
  return strlen(td) == id->td_len &&
         memcmp(id->id + id->td_off, td, id->td_len) == 0;
}

int ly_spiffe_id_reserved(const ly_spiffe_id_t *id) {
  const char *path = id->id + id->path_off;
  return strncmp(path, reserved_prefix, sizeof(reserved_prefix) - 1) == 0;
}

static int is_prefix_pattern(const char *pattern, size_t len) {
  return len >= 2 && pattern[len - 2] == '/' && pattern[len - 1] == '*';
}

int ly_spiffe_pattern_check(const char *pattern, const char **why) {
  size_t len = strlen(pattern);
  /* "spiffe://td/*" is every workload of td; "spiffe://td" alone is none */
  if (is_prefix_pattern(pattern, len))
    return ly_spiffe_id_parse(pattern, len - 2, NULL, why);
  return ly_spiffe_workload_id_parse(pattern, len, NULL, why);
}

int ly_spiffe_pattern_match(const char *pattern, const char *id) {
  size_t plen = strlen(pattern);
  if (!is_prefix_pattern(pattern, plen))
    return strcmp(pattern, id) == 0;
  /* "spiffe://td/ns/*" matches "spiffe://td/ns/x..." but not
   * "spiffe://td/ns" itself nor "spiffe://td/nsx". */
  size_t base = plen - 1; /* keeps the '/' */
  return strlen(id) > base && strncmp(pattern, id, base) == 0;
}

int ly_spiffe_id_for_k8s(const char *td, const char *ns, const char *sa,
                         ly_spiffe_id_t *out, const char **why) {
  char buf[LY_SPIFFE_ID_MAX + 2];
  int n = snprintf(buf, sizeof(buf), "spiffe://%s/ns/%s/sa/%s", td, ns, sa);
  LY_ENSURE_WHY(n > 0 && (size_t)n < sizeof(buf), LY_ESPIFFE_ID, why,
                "SPIFFE ID is longer than 2048 bytes");
  LY_ENSURE_WHY(*ns && *sa, LY_ESPIFFE_ID, why,
                "namespace and service account must not be empty");
  LY_ENSURE_WHY(!strchr(ns, '/') && !strchr(sa, '/'), LY_ESPIFFE_ID, why,
                "namespace and service account must not contain '/'");
  return ly_spiffe_id_parse(buf, (size_t)n, out, why);
}
