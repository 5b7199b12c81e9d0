/* The admin HTTP parser on arbitrary bytes, with its contract checked:
 * the status set, a complete head that really ends in a blank line,
 * well-formed fields, and the same answer however the bytes were split
 * (the server parses a growing buffer, so any prefix must give either
 * "incomplete" or the final answer). */
#include "lanyard/http.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): release builds define NDEBUG. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int known_status(int rc) {
  switch (rc) {
  case 0:
  case LY_HTTP_INCOMPLETE:
  case 400:
  case 413:
  case 414:
  case 431:
  case 501:
  case 505:
    return 1;
  default:
    return 0;
  }
}

/* A NUL-terminated field of cap bytes, of printable bytes only. */
static void check_string(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  CHECK(n < cap);
  for (size_t i = 0; i < n; i++)
    CHECK((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f);
}

static void check_request(const char *buf, size_t len,
                          const ly_http_request_t *req, size_t head_len) {
  CHECK(head_len >= 4 && head_len <= len && head_len <= LY_HTTP_HEAD_MAX);
  CHECK(memcmp(buf + head_len - 4, "\r\n\r\n", 4) == 0);
  CHECK(strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 ||
        strcmp(req->method, "POST") == 0);
  check_string(req->path, sizeof(req->path));
  check_string(req->query, sizeof(req->query));
  CHECK(req->path[0] == '/');
  CHECK(req->http10 == 0 || req->http10 == 1);
  CHECK(req->content_length <= LY_HTTP_BODY_MAX);
  CHECK(strnlen(req->accept, sizeof(req->accept)) < sizeof(req->accept));
}

/* The answer for buf[0..k) given the answer for the whole input. */
static void check_prefix(const char *buf, size_t k, int rc, size_t head_len) {
  ly_http_request_t req;
  size_t hl = 0;
  int prc = ly_http_parse(buf, k, &req, &hl);
  if (rc == 0) {
    CHECK(k < head_len ? prc == LY_HTTP_INCOMPLETE : prc == 0);
    if (prc == 0)
      CHECK(hl == head_len);
  } else {
    CHECK(prc == LY_HTTP_INCOMPLETE || prc == rc);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* a copy of exactly size bytes, so ASan sees any read past the end */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  ly_http_request_t req;
  size_t head_len = 0;
  int rc = ly_http_parse(buf, size, &req, &head_len);
  CHECK(known_status(rc));
  if (rc == 0)
    check_request(buf, size, &req, head_len);
  if (rc == LY_HTTP_INCOMPLETE)
    CHECK(size < LY_HTTP_HEAD_MAX);
  /* every prefix of short inputs, a few of long ones */
  if (size <= 96) {
    for (size_t k = 0; k < size; k++)
      check_prefix(buf, k, rc, head_len);
  } else {
    check_prefix(buf, size - 1, rc, head_len);
    check_prefix(buf, size / 2, rc, head_len);
    check_prefix(buf, (size_t)data[0] * size / 256, rc, head_len);
  }
  free(buf);
  return 0;
}
