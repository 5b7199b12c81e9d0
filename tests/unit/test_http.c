/* The admin HTTP parser: what it accepts, what it refuses with which
 * status, and that a valid request cut short anywhere is incomplete. */
#include "admin/admin.h"
#include "lanyard/http.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static ly_http_request_t req;
static size_t head_len;

/* Parses a string (no NUL inside) as the whole input. */
static int parse(const char *s) {
  return ly_http_parse(s, strlen(s), &req, &head_len);
}

static void test_get(void **state) {
  const char *r = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                  "Accept: text/plain\r\nUser-Agent: kube-probe/1.29\r\n\r\n";
  assert_int_equal(parse(r), 0);
  assert_int_equal(head_len, strlen(r));
  assert_string_equal(req.method, "GET");
  assert_string_equal(req.path, "/healthz");
  assert_string_equal(req.query, "");
  assert_int_equal(req.http10, 0);
  assert_int_equal(req.content_length, 0);
  assert_string_equal(req.accept, "text/plain");
  assert_string_equal(req.host, "localhost");
}

static void test_get_query(void **state) {
  assert_int_equal(parse("GET /stats?format=json&x=%2Fa?b HTTP/1.1\r\n"
                         "Host: x\r\n\r\n"),
                   0);
  assert_string_equal(req.path, "/stats");
  assert_string_equal(req.query, "format=json&x=%2Fa?b"); /* raw */
  assert_int_equal(parse("GET /?  HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  assert_int_equal(parse("GET /? HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_string_equal(req.path, "/");
  assert_string_equal(req.query, "");
}

static void test_head_and_post(void **state) {
  assert_int_equal(parse("HEAD /ready HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_string_equal(req.method, "HEAD");
  assert_string_equal(req.path, "/ready");

  assert_int_equal(
      parse("POST /quit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), 0);
  assert_string_equal(req.method, "POST");
  assert_int_equal(req.content_length, 0);

  /* the body is not part of the head, and is not looked at */
  const char *r = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
  char buf[128];
  snprintf(buf, sizeof(buf), "%s%s", r, "a\0\r\nb");
  assert_int_equal(ly_http_parse(buf, strlen(r) + 5, &req, &head_len), 0);
  assert_int_equal(head_len, strlen(r));
  assert_int_equal(req.content_length, 5);

  /* no Content-Length: no body (RFC 9112 6.3) */
  assert_int_equal(parse("POST /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_int_equal(req.content_length, 0);
  /* leading zeros and OWS around the value are fine */
  assert_int_equal(
      parse("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length:  0012 \t\r\n\r\n"),
      0);
  assert_int_equal(req.content_length, 12);
  assert_int_equal(parse("POST /x HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 1024\r\n\r\n"),
                   0);
  assert_int_equal(req.content_length, LY_HTTP_BODY_MAX);
}

static void test_http10(void **state) {
  /* no Host needed in 1.0 */
  assert_int_equal(parse("GET /healthz HTTP/1.0\r\n\r\n"), 0);
  assert_int_equal(req.http10, 1);
  assert_int_equal(head_len, 25);
  /* but required in 1.1, once */
  assert_int_equal(parse("GET /healthz HTTP/1.1\r\n\r\n"), 400);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
}

/* Every strict prefix of a valid request needs more bytes; so does the
 * head split anywhere, fed again as it grows (the server's way). */
static void test_every_prefix_incomplete(void **state) {
  const char *reqs[] = {
      ("GET /healthz?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1:15020\r\n"
       "Accept: */*\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n"),
      "POST /a/b%20c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
      "HEAD / HTTP/1.0\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    size_t n = strlen(reqs[i]);
    for (size_t k = 0; k < n; k++)
      assert_int_equal(ly_http_parse(reqs[i], k, &req, &head_len),
                       LY_HTTP_INCOMPLETE);
    assert_int_equal(ly_http_parse(reqs[i], n, &req, &head_len), 0);
    assert_int_equal(head_len, n);
  }
}

static void test_malformed_400(void **state) {
  static const char *bad[] = {
      "GET /healthz HTTP/1.1\nHost: x\r\n\r\n",       /* bare LF, line */
      "GET / HTTP/1.1\r\nHost: x\n\r\n",              /* bare LF, field */
      "GET / HTTP/1.1\r\nHost: x\r\n\n",              /* bare LF, end */
      "GET / HTTP/1.1\r\nHost: x\r\rX: y\r\n\r\n",    /* bare CR */
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", /* CR in a value */
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n", /* space before colon */
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
      "GET / HTTP/1.1\r\n\tHost: x\r\n\r\n",
      ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
       "Content-Length: 1\r\n\r\n"), /* split on purpose */
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
      "GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n", /* absolute-form */
      "GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n",       /* authority-form */
      "GET * HTTP/1.1\r\nHost: x\r\n\r\n",          /* asterisk-form */
      "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",         /* two spaces */
      "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a\"b HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a%2 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / http/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1x\r\nHost: x\r\n\r\n",
      "GET / HTTP/11\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.10\r\nHost: x\r\n\r\n",
      "GET /\r\nHost: x\r\n\r\n", /* HTTP/0.9 style */
      "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      " GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = parse(bad[i]);
    if (rc != 400)
      print_error("input %zu: %d\n", i, rc);
    assert_int_equal(rc, 400);
  }
}

static void test_nul_bytes(void **state) {
  static const char r1[] = "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char r2[] = "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n";
  static const char r3[] = "GET / HTTP/1.1\r\nHo\0st: x\r\n\r\n";
  static const char r4[] = "GE\0 / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(ly_http_parse(r1, sizeof(r1) - 1, &req, &head_len), 400);
  assert_int_equal(ly_http_parse(r2, sizeof(r2) - 1, &req, &head_len), 400);
  assert_int_equal(ly_http_parse(r3, sizeof(r3) - 1, &req, &head_len), 400);
  assert_int_equal(ly_http_parse(r4, sizeof(r4) - 1, &req, &head_len), 400);
  /* and seen before the head is complete */
  assert_int_equal(ly_http_parse(r1, 8, &req, &head_len), 400);
}

static void test_methods_501(void **state) {
  assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  /* methods are case-sensitive: "get" is a valid token, an unknown one */
  assert_int_equal(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  /* longer than any method we know: known before the space arrives */
  assert_int_equal(parse("PROPFIND"), 501);
  assert_int_equal(parse("GETGETGETGET / HTTP/1.1\r\n\r\n"), 501);
  /* Transfer-Encoding, any value, any case, also with Content-Length */
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"),
                   501);
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\n"
                         "transfer-ENCODING: identity\r\n\r\n"),
                   501);
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"),
                   501);
}

static void test_version_505(void **state) {
  assert_int_equal(parse("GET /healthz HTTP/9.9\r\n\r\n"), 505);
  assert_int_equal(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  assert_int_equal(parse("GET / HTTP/0.9\r\n\r\n"), 505);
  assert_int_equal(parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
  /* decided at the line's end: a malformed line is a 400 instead */
  assert_int_equal(parse("GET / HTTP/9.9"), LY_HTTP_INCOMPLETE);
  assert_int_equal(parse("GET / HTTP/9.9\n"), 400);
}

static void test_body_413(void **state) {
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 1025\r\n\r\n"),
                   413);
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 99999999999999999999999999\r\n\r\n"),
                   413);
  /* non-digits after a huge value are still malformed */
  assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 99999999999999999999x\r\n\r\n"),
                   400);
}

static void test_header_names_case_insensitive(void **state) {
  assert_int_equal(parse("POST / HTTP/1.1\r\nHOST: x\r\n"
                         "content-length: 7\r\n\r\n"),
                   0);
  assert_int_equal(req.content_length, 7);
  assert_int_equal(parse("POST / HTTP/1.1\r\nhost: x\r\n"
                         "CoNtEnT-LeNgTh: 9\r\n\r\n"),
                   0);
  assert_int_equal(req.content_length, 9);
  assert_int_equal(parse("POST / HTTP/1.1\r\nhost: x\r\nContent-Length: 1\r\n"
                         "CONTENT-LENGTH: 1\r\n\r\n"),
                   400);
  assert_int_equal(parse("GET / HTTP/1.1\r\nhost: x\r\nACCEPT: a/b\r\n"
                         "accept: c/d\r\n\r\n"),
                   0);
  assert_string_equal(req.accept, "a/b"); /* the first one */
  /* names that only start like ours are other fields */
  assert_int_equal(
      parse("GET / HTTP/1.1\r\nhost: x\r\n"
            "Content-Lengthy: zz\r\nTransfer-Encodings: x\r\n\r\n"),
      0);
  assert_int_equal(req.content_length, 0);
}

/* Fields a browser adds to a request from a page: POST /rotate refuses it. */
static void test_from_browser(void **state) {
  assert_int_equal(parse("POST /rotate HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_int_equal(req.from_browser, 0);
  assert_int_equal(parse("POST /rotate HTTP/1.1\r\nHost: x\r\n"
                         "Origin: http://evil.example\r\n\r\n"),
                   0);
  assert_int_equal(req.from_browser, 1);
  assert_int_equal(parse("POST /rotate HTTP/1.1\r\nHost: x\r\n"
                         "Sec-Fetch-Site: cross-site\r\n\r\n"),
                   0);
  assert_int_equal(req.from_browser, 1);
  assert_int_equal(parse("POST /rotate HTTP/1.1\r\nHost: x\r\n"
                         "sec-fetch-mode: cors\r\n\r\n"),
                   0);
  assert_int_equal(req.from_browser, 1);
}

static void test_accept_truncated(void **state) {
  char r[512], v[300];
  memset(v, 'a', sizeof(v) - 1);
  v[sizeof(v) - 1] = '\0';
  snprintf(r, sizeof(r), "GET / HTTP/1.1\r\nHost: x\r\nAccept: %s\r\n\r\n", v);
  assert_int_equal(parse(r), 0);
  assert_int_equal(strlen(req.accept), sizeof(req.accept) - 1);
}

/* A head of exactly LY_HTTP_HEAD_MAX bytes with a filler field. */
static char *head_of(size_t total) {
  const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ";
  char *r = malloc(total + 1);
  size_t s = strlen(start);
  memcpy(r, start, s);
  memset(r + s, 'a', total - s - 4);
  memcpy(r + total - 4, "\r\n\r\n", 5);
  return r;
}

static void test_head_size_431(void **state) {
  char *r = head_of(LY_HTTP_HEAD_MAX);
  assert_int_equal(ly_http_parse(r, LY_HTTP_HEAD_MAX, &req, &head_len), 0);
  assert_int_equal(head_len, LY_HTTP_HEAD_MAX);
  free(r);

  r = head_of(LY_HTTP_HEAD_MAX + 1);
  /* refused as soon as the limit is reached without the blank line */
  assert_int_equal(ly_http_parse(r, LY_HTTP_HEAD_MAX - 1, &req, &head_len),
                   LY_HTTP_INCOMPLETE);
  assert_int_equal(ly_http_parse(r, LY_HTTP_HEAD_MAX, &req, &head_len), 431);
  assert_int_equal(ly_http_parse(r, LY_HTTP_HEAD_MAX + 1, &req, &head_len),
                   431);
  free(r);

  /* a 1 MiB field: 431 on its first 8 KiB, the same on all of it */
  size_t big = 1 << 20;
  r = head_of(big);
  assert_int_equal(ly_http_parse(r, LY_HTTP_HEAD_MAX, &req, &head_len), 431);
  assert_int_equal(ly_http_parse(r, big, &req, &head_len), 431);
  free(r);

  /* too many fields, however small */
  char many[2048] = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 1; i < LY_HTTP_FIELDS_MAX; i++)
    strcat(many, "a:b\r\n");
  strcat(many, "\r\n");
  assert_int_equal(parse(many), 0);
  many[strlen(many) - 2] = '\0';
  strcat(many, "a:b\r\n\r\n");
  assert_int_equal(parse(many), 431);
}

static void test_target_414(void **state) {
  char r[10 * 1024];
  /* a 9 KiB path: 414, known at its 256th byte, before 8 KiB arrive */
  memcpy(r, "GET /", 5);
  memset(r + 5, 'p', 9 * 1024);
  strcpy(r + 5 + 9 * 1024, " HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(parse(r), 414);
  assert_int_equal(ly_http_parse(r, 4 + 256, &req, &head_len), 414);
  assert_int_equal(ly_http_parse(r, 4 + 255, &req, &head_len),
                   LY_HTTP_INCOMPLETE);
  /* the longest path and query that fit */
  memset(r + 4, 'p', 255);
  r[4] = '/';
  r[4 + 255] = '?';
  memset(r + 4 + 256, 'q', 255);
  strcpy(r + 4 + 256 + 255, " HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(parse(r), 0);
  assert_int_equal(strlen(req.path), 255);
  assert_int_equal(strlen(req.query), 255);
  /* one more in the query */
  memset(r + 4 + 256, 'q', 256);
  strcpy(r + 4 + 256 + 256, " HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(parse(r), 414);
}

static void test_head_method_known_on_error(void **state) {
  /* so the server can leave the body out of a HEAD's error response */
  assert_int_equal(parse("HEAD / HTTP/7.0\r\n\r\n"), 505);
  assert_string_equal(req.method, "HEAD");
}

/* The CA's API server URLs: scheme, default port, path kept. */
static void test_url_parse(void **state) {
  (void)state;
  ly_url_t u;
  const char *why = NULL;
  assert_int_equal(
      ly_url_parse("https://kubernetes.default.svc/openid/v1/jwks", &u, &why),
      0);
  assert_int_equal(u.tls, 1);
  assert_string_equal(u.hp.host, "kubernetes.default.svc");
  assert_int_equal(u.hp.port, 443);
  assert_string_equal(u.path, "/openid/v1/jwks");
  assert_int_equal(ly_url_parse("http://10.96.0.1:6443", &u, &why), 0);
  assert_int_equal(u.tls, 0);
  assert_int_equal(u.hp.port, 6443);
  assert_string_equal(u.path, "/");
  assert_int_equal(ly_url_parse("https://[fd00::1]/x?y=1", &u, &why), 0);
  assert_string_equal(u.hp.host, "fd00::1");
  assert_int_equal(u.hp.port, 443);
  assert_string_equal(u.path, "/x?y=1");
  assert_int_equal(ly_url_parse("https://[fd00::1]:8443/", &u, &why), 0);
  assert_int_equal(u.hp.port, 8443);
  assert_true(ly_url_parse("ftp://example.org/", &u, &why) < 0);
  assert_true(ly_url_parse("https:///path", &u, &why) < 0);
  assert_true(ly_url_parse("https://host:99999/", &u, &why) < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get),
      cmocka_unit_test(test_get_query),
      cmocka_unit_test(test_head_and_post),
      cmocka_unit_test(test_http10),
      cmocka_unit_test(test_every_prefix_incomplete),
      cmocka_unit_test(test_malformed_400),
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_methods_501),
      cmocka_unit_test(test_version_505),
      cmocka_unit_test(test_body_413),
      cmocka_unit_test(test_header_names_case_insensitive),
      cmocka_unit_test(test_accept_truncated),
      cmocka_unit_test(test_from_browser),
      cmocka_unit_test(test_head_size_431),
      cmocka_unit_test(test_target_414),
      cmocka_unit_test(test_head_method_known_on_error),
      cmocka_unit_test(test_url_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
