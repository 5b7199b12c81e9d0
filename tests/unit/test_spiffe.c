/* SPIFFE ID parsing against the rules of the SPIFFE ID standard. */
#include "lanyard/err.h"
#include "lanyard/spiffe.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static int parse(const char *s) {
  ly_spiffe_id_t id;
  const char *why = NULL;
  int rc = ly_spiffe_id_parse(s, strlen(s), &id, &why);
  if (rc != 0)
    assert_non_null(why);
  return rc;
}

static void test_valid(void **state) {
  static const char *const ok[] = {
      "spiffe://example.org",
      "spiffe://example.org/ns/default/sa/web",
      "spiffe://trust-domain.example_1/path",
      "spiffe://td/a.b/-_/C9",
      "spiffe://td/..a/a..",
      "spiffe://1.2.3.4/x",
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    assert_int_equal(parse(ok[i]), 0);
}

static void test_invalid(void **state) {
  static const char *const bad[] = {
      "",
      "spiffe://",
      "spiffe:///path",              /* empty trust domain */
      "SPIFFE://example.org",        /* scheme must be lowercase */
      "https://example.org/x",       /* wrong scheme */
      "spiffe:/example.org",         /* missing // */
      "spiffe://Example.org",        /* uppercase trust domain */
      "spiffe://example.org:8080/x", /* port */
      "spiffe://user@example.org/x", /* userinfo */
      "spiffe://example.org/",       /* trailing slash */
      "spiffe://example.org/a/",     /* trailing slash */
      "spiffe://example.org//a",     /* empty segment */
      "spiffe://example.org/./a",    /* dot segment */
      "spiffe://example.org/a/..",   /* dot-dot segment */
      "spiffe://example.org/a%20b",  /* percent-encoding */
      "spiffe://example.org/a?b=c",  /* query */
      "spiffe://example.org/a#frag", /* fragment */
      "spiffe://example.org?q",      /* query after trust domain */
      "spiffe://exa mple.org/a",     /* space */
      "spiffe://example.org/a b",    /* space in path */
      "spiffe://example.org/a*",     /* wildcard is not an ID */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (parse(bad[i]) != LY_ESPIFFE_ID)
      fail_msg("accepted invalid ID '%s'", bad[i]);
  }
}

static void test_lengths(void **state) {
  char buf[LY_SPIFFE_ID_MAX + 16];
  /* trust domain of 255 bytes is allowed, 256 is not */
  strcpy(buf, "spiffe://");
  memset(buf + 9, 'a', 255);
  buf[9 + 255] = '\0';
  assert_int_equal(parse(buf), 0);
  memset(buf + 9, 'a', 256);
  buf[9 + 256] = '\0';
  assert_int_equal(parse(buf), LY_ESPIFFE_ID);
  /* whole ID of 2048 bytes is allowed, 2049 is not */
  strcpy(buf, "spiffe://td/");
  size_t len = strlen(buf);
  memset(buf + len, 'p', LY_SPIFFE_ID_MAX - len);
  buf[LY_SPIFFE_ID_MAX] = '\0';
  assert_int_equal(parse(buf), 0);
  buf[LY_SPIFFE_ID_MAX] = 'p';
  buf[LY_SPIFFE_ID_MAX + 1] = '\0';
  assert_int_equal(parse(buf), LY_ESPIFFE_ID);
  /* an embedded NUL is never part of an ID */
  ly_spiffe_id_t id;
  assert_int_equal(ly_spiffe_id_parse("spiffe://td/a\0b", 15, &id, NULL),
                   LY_ESPIFFE_ID);
}

static void test_parts(void **state) {
  ly_spiffe_id_t id;
  const char *s = "spiffe://example.org/ns/default/sa/web";
  assert_int_equal(ly_spiffe_id_parse(s, strlen(s), &id, NULL), 0);
  assert_true(ly_spiffe_id_in_domain(&id, "example.org"));
  assert_false(ly_spiffe_id_in_domain(&id, "example.com"));
  assert_false(ly_spiffe_id_in_domain(&id, "example.or"));
  assert_string_equal(id.id + id.path_off, "/ns/default/sa/web");
  assert_false(ly_spiffe_id_reserved(&id));
  s = "spiffe://example.org/lanyard/ca";
  assert_int_equal(ly_spiffe_id_parse(s, strlen(s), &id, NULL), 0);
  assert_true(ly_spiffe_id_reserved(&id));
}

/* X509-SVID 3.1 and 5.2: a workload's ID has a path; the bare trust
 * domain is a signing certificate's, and still parses as an ID. */
static void test_workload(void **state) {
  ly_spiffe_id_t id;
  const char *why = NULL;
  const char *s = "spiffe://example.org/ns/default/sa/web";
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), &id, &why), 0);
  assert_string_equal(id.id, s);
  assert_string_equal(id.id + id.path_off, "/ns/default/sa/web");
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), NULL, NULL), 0);
  s = "spiffe://example.org/x";
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), &id, &why), 0);

  s = "spiffe://example.org";
  assert_int_equal(ly_spiffe_id_parse(s, strlen(s), &id, &why), 0);
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), &id, &why),
                   LY_ESPIFFE_ID);
  assert_string_equal(why, "a workload SPIFFE ID needs a path (X509-SVID 3.1)");
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), NULL, NULL),
                   LY_ESPIFFE_ID);
  /* a prefix of a longer string is judged on its own length */
  s = "spiffe://example.org/x";
  assert_int_equal(ly_spiffe_workload_id_parse(
                       s, strlen("spiffe://example.org"), NULL, NULL),
                   LY_ESPIFFE_ID);
  /* what makes an ID invalid still says so first */
  s = "spiffe://example.org/";
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), NULL, &why),
                   LY_ESPIFFE_ID);
  assert_string_equal(why, "path must not end with '/'");
  s = "spiffe://Example.org";
  assert_int_equal(ly_spiffe_workload_id_parse(s, strlen(s), NULL, &why),
                   LY_ESPIFFE_ID);
  assert_string_equal(why, "trust domain must be lowercase");
}

static void test_patterns(void **state) {
  const char *why = NULL;
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td/ns/a/*", NULL), 0);
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td/*", NULL), 0);
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td/ns/a", NULL), 0);
  /* an exact pattern is a workload's ID: the trust domain alone is none */
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td", &why), LY_ESPIFFE_ID);
  assert_string_equal(why, LY_SPIFFE_NEEDS_PATH);
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td/ns*", NULL),
                   LY_ESPIFFE_ID);
  assert_int_equal(ly_spiffe_pattern_check("spiffe://td/*/x", NULL),
                   LY_ESPIFFE_ID);
  assert_true(ly_spiffe_pattern_match("spiffe://td/ns/a", "spiffe://td/ns/a"));
  assert_false(
      ly_spiffe_pattern_match("spiffe://td/ns/a", "spiffe://td/ns/ab"));
  assert_true(ly_spiffe_pattern_match("spiffe://td/ns/*", "spiffe://td/ns/a"));
  assert_true(
      ly_spiffe_pattern_match("spiffe://td/ns/*", "spiffe://td/ns/a/sa/b"));
  assert_false(ly_spiffe_pattern_match("spiffe://td/ns/*", "spiffe://td/ns"));
  assert_false(ly_spiffe_pattern_match("spiffe://td/ns/*", "spiffe://td/nsx"));
  assert_false(ly_spiffe_pattern_match("spiffe://td/*", "spiffe://tdx/a"));
  assert_true(ly_spiffe_pattern_match("spiffe://td/*", "spiffe://td/a"));
}

static void test_k8s(void **state) {
  ly_spiffe_id_t id;
  assert_int_equal(ly_spiffe_id_for_k8s("td", "default", "web", &id, NULL), 0);
  assert_string_equal(id.id, "spiffe://td/ns/default/sa/web");
  assert_int_equal(ly_spiffe_id_for_k8s("td", "a/b", "web", &id, NULL),
                   LY_ESPIFFE_ID);
  assert_int_equal(ly_spiffe_id_for_k8s("td", "", "web", &id, NULL),
                   LY_ESPIFFE_ID);
  assert_int_equal(ly_spiffe_id_for_k8s("TD", "ns", "web", &id, NULL),
                   LY_ESPIFFE_ID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),    cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_lengths),  cmocka_unit_test(test_parts),
      cmocka_unit_test(test_patterns), cmocka_unit_test(test_k8s),
      cmocka_unit_test(test_workload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
