/* The admin server's request parser: a narrow, strict subset of RFC 9112.
 *
 * One forward scan over the bytes so far, with no state kept between
 * calls: the head is at most LY_HTTP_HEAD_MAX bytes, and the server only
 * rescans when a line may have ended, so the cost stays small. Every
 * check runs on the bytes as they arrive, so a bad request is refused as
 * early as possible; running out of bytes anywhere is "incomplete".
 *
 * Strict on purpose: whatever two parsers could read differently (bare
 * LF, obs-fold, duplicate or odd Content-Length, Transfer-Encoding,
 * whitespace before a colon) is refused rather than interpreted, so no
 * proxy in front of us can disagree with us about where a request ends.
 */
#include "lanyard/http.h"

#include <string.h>
#include <strings.h>

#define INCOMPLETE LY_HTTP_INCOMPLETE

typedef struct {
  const char *buf;
  size_t len; /* bytes available, at most LY_HTTP_HEAD_MAX */
  size_t pos;
} scan_t;

/* RFC 9110 5.6.2: the characters of a token (methods, field names). */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 3986 pchar without pct-encoded (handled apart): unreserved,
 * sub-delims, ':' and '@'. */
static int is_pchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* Appends c to a NUL-terminated field of cap bytes: 414 when full. */
static int put(char *out, size_t *n, size_t cap, char c) {
  if (*n + 1 >= cap)
    return 414;
  out[(*n)++] = c;
  out[*n] = '\0';
  return 0;
}

/* method SP. No known method has more than 7 bytes, so a longer token is
 * already an unknown method. */
static int parse_method(scan_t *s, ly_http_request_t *req) {
  size_t start = s->pos;
  for (;;) {
    if (s->pos >= s->len)
      return INCOMPLETE;
    unsigned char c = (unsigned char)s->buf[s->pos];
    if (c == ' ')
      break;
    if (!is_tchar(c))
      return 400;
    if (s->pos - start >= sizeof(req->method) - 1)
      return 501;
    s->pos++;
  }
  size_t n = s->pos - start;
  if (n == 0)
    return 400;
  memcpy(req->method, s->buf + start, n);
  req->method[n] = '\0';
  s->pos++; /* SP */
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
      strcmp(req->method, "POST") != 0)
    return 501;
  return 0;
}

/* origin-form SP: absolute-path [ "?" query ]. */
static int parse_target(scan_t *s, ly_http_request_t *req) {
  if (s->pos >= s->len)
    return INCOMPLETE;
  if (s->buf[s->pos] != '/')
    return 400; /* absolute-form, authority-form, asterisk-form */
  char *out = req->path;
  size_t cap = sizeof(req->path), n = 0;
  int in_query = 0, rc;
  for (;;) {
    if (s->pos >= s->len)
      return INCOMPLETE;
    unsigned char c = (unsigned char)s->buf[s->pos];
    if (c == ' ') {
      s->pos++;
      return 0;
    }
    if (c == '?' && !in_query) {
      in_query = 1;
      out = req->query;
      cap = sizeof(req->query);
      n = 0;
      s->pos++;
      continue;
    }
    if (c == '%') {
      for (int i = 1; i <= 2; i++) {
        if (s->pos + i >= s->len)
          return INCOMPLETE;
        if (!is_hex((unsigned char)s->buf[s->pos + i]))
          return 400;
      }
      for (int i = 0; i < 3; i++)
        if ((rc = put(out, &n, cap, s->buf[s->pos++])) != 0)
          return rc;
      continue;
    }
    if (!is_pchar(c) && c != '/' && !(in_query && c == '?'))
      return 400;
    if ((rc = put(out, &n, cap, (char)c)) != 0)
      return rc;
    s->pos++;
  }
}

/* "HTTP/" DIGIT "." DIGIT CRLF; 505 for a well-formed one we do not
 * speak. */
static int parse_version(scan_t *s, ly_http_request_t *req) {
  static const char pattern[] = "HTTP/d.d\r\n"; /* d: a digit */
  const char *v = s->buf + s->pos;
  for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
    if (s->pos + i >= s->len)
      return INCOMPLETE;
    unsigned char c = (unsigned char)v[i];
    if (pattern[i] == 'd' ? !(c >= '0' && c <= '9') : c != pattern[i])
      return 400;
  }
  s->pos += sizeof(pattern) - 1;
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
    return 505;
  req->http10 = v[7] == '0';
  return 0;
}

static int name_is(const char *name, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

typedef struct {
  int have_length, have_host;
  size_t body_max;
} seen_t;

/* The fields we act on; every other field is checked and ignored. */
static int on_field(ly_http_request_t *req, seen_t *seen, const char *name,
                    size_t name_len, const char *value, size_t value_len) {
  if (name_is(name, name_len, "content-length")) {
    if (seen->have_length || value_len == 0)
      return 400;
    seen->have_length = 1;
    size_t v = 0;
    for (size_t i = 0; i < value_len; i++) {
      if (value[i] < '0' || value[i] > '9')
        return 400;            /* no sign, no list, no spaces inside */
      if (v <= seen->body_max) /* saturate: no overflow on long values */
        v = v * 10 + (size_t)(value[i] - '0');
    }
    if (v > seen->body_max)
      return 413;
    req->content_length = v;
  } else if (name_is(name, name_len, "transfer-encoding")) {
    return 501; /* no chunked bodies: one less way to disagree on length */
  } else if (name_is(name, name_len, "host")) {
    if (seen->have_host || value_len >= sizeof(req->host))
      return 400;
    seen->have_host = 1;
    memcpy(req->host, value, value_len);
    req->host[value_len] = '\0';
  } else if (name_is(name, name_len, "origin") ||
             name_is(name, name_len, "sec-fetch-site") ||
             name_is(name, name_len, "sec-fetch-mode")) {
    req->from_browser = 1;
  } else if (name_is(name, name_len, "accept") && req->accept[0] == '\0') {
    size_t n = value_len < sizeof(req->accept) - 1 ? value_len
                                                   : sizeof(req->accept) - 1;
    memcpy(req->accept, value, n);
    req->accept[n] = '\0';
  }
  return 0;
}

/* A line end: CR LF exactly. */
static int expect_crlf(scan_t *s) {
  if (s->pos + 1 >= s->len)
    return INCOMPLETE;
  if (s->buf[s->pos] != '\r' || s->buf[s->pos + 1] != '\n')
    return 400;
  s->pos += 2;
  return 0;
}

/* *( field-name ":" OWS field-value OWS CRLF ) CRLF */
static int parse_fields(scan_t *s, ly_http_request_t *req, size_t body_max) {
  seen_t seen = {0, 0, body_max};
  int rc;
  for (int nfields = 0;; nfields++) {
    if (s->pos >= s->len)
      return INCOMPLETE;
    char c0 = s->buf[s->pos];
    if (c0 == '\r') {
      if ((rc = expect_crlf(s)) != 0)
        return rc;
      break;
    }
    if (c0 == ' ' || c0 == '\t')
      return 400; /* obs-fold, or whitespace before the first field */
    if (nfields >= LY_HTTP_FIELDS_MAX)
      return 431;
    size_t name = s->pos;
    while (s->pos < s->len && is_tchar((unsigned char)s->buf[s->pos]))
      s->pos++;
    if (s->pos >= s->len)
      return INCOMPLETE;
    if (s->buf[s->pos] != ':' || s->pos == name)
      return 400; /* no colon, an empty name, or space before the colon */
    size_t name_len = s->pos - name;
    s->pos++;
    while (s->pos < s->len && (s->buf[s->pos] == ' ' || s->buf[s->pos] == '\t'))
      s->pos++;
    size_t value = s->pos, value_end = s->pos;
    for (;;) {
      if (s->pos >= s->len)
        return INCOMPLETE;
      unsigned char c = (unsigned char)s->buf[s->pos];
      if (c == '\r')
        break;
      if (c != ' ' && c != '\t' && (c < 0x21 || c == 0x7f))
        return 400; /* NUL, bare LF, other controls */
      s->pos++;
      if (c != ' ' && c != '\t')
        value_end = s->pos; /* trailing OWS is not part of the value */
    }
    if ((rc = expect_crlf(s)) != 0)
      return rc;
    if ((rc = on_field(req, &seen, s->buf + name, name_len, s->buf + value,
                       value_end - value)) != 0)
      return rc;
  }
  if (!req->http10 && !seen.have_host)
    return 400; /* RFC 9112 3.2: an HTTP/1.1 request without Host */
  return 0;
}

int ly_http_parse(const char *buf, size_t len, ly_http_request_t *req,
                  size_t *head_len) {
  return ly_http_parse_body_max(buf, len, req, head_len, LY_HTTP_BODY_MAX);
}

int ly_http_parse_body_max(const char *buf, size_t len, ly_http_request_t *req,
                           size_t *head_len, size_t body_max) {
  memset(req, 0, sizeof(*req));
  *head_len = 0;
  scan_t s = {buf, len < LY_HTTP_HEAD_MAX ? len : LY_HTTP_HEAD_MAX, 0};
  int rc;
  if ((rc = parse_method(&s, req)) == 0 && (rc = parse_target(&s, req)) == 0 &&
      (rc = parse_version(&s, req)) == 0 &&
      (rc = parse_fields(&s, req, body_max)) == 0)
    *head_len = s.pos;
  /* A head that would need more than the limit: no point waiting. */
  if (rc == INCOMPLETE && len >= LY_HTTP_HEAD_MAX)
    return 431;
  return rc;
}
