#include "lanyard/duration.h"
#include "lanyard/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_valid(void **state) {
  static const struct {
    const char *in;
    uint64_t ms;
  } cases[] = {
      {"90s", 90000},      {"10m", 600000},
      {"1h", 3600000},     {"1h30m", 5400000},
      {"250ms", 250},      {"7d", 7 * 86400000ull},
      {"0s", 0},           {"1m1s", 61000},
      {"2h0m5s", 7205000}, {"3650d", 3650 * 86400000ull},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t ms = 1;
    const char *why = NULL;
    assert_int_equal(ly_duration_parse(cases[i].in, &ms, &why), 0);
    assert_int_equal(ms, cases[i].ms);
  }
}

static void test_invalid(void **state) {
  static const char *const bad[] = {
      "",
      "10",
      "h",
      "1x",
      "1.5h",
      "-1s",
      " 1s",
      "1s ",
      "1H",
      "1hour",
      "99999999999999999999s",
      "4000d",
      "1s-",
      "s1",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t ms = 0;
    const char *why = NULL;
    assert_int_equal(ly_duration_parse(bad[i], &ms, &why), LY_EDURATION);
    assert_non_null(why);
  }
}

static void test_format(void **state) {
  char buf[32];
  assert_string_equal(ly_duration_format(5400000, buf, sizeof(buf)), "1h30m");
  assert_string_equal(ly_duration_format(20000, buf, sizeof(buf)), "20s");
  assert_string_equal(ly_duration_format(250, buf, sizeof(buf)), "250ms");
  assert_string_equal(ly_duration_format(0, buf, sizeof(buf)), "0ms");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
