/* Base64 against the RFC 4648 section 10 test vectors, both alphabets. */
#include "lanyard/b64.h"
#include "lanyard/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const struct {
  const char *in, *std, *url;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_vectors(void **state) {
  for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
    char enc[32];
    unsigned char dec[32];
    size_t n = 99, len = strlen(vectors[i].in);
    ly_b64_encode(vectors[i].in, len, enc);
    assert_string_equal(enc, vectors[i].std);
    assert_int_equal(strlen(enc), ly_b64_len(len));
    ly_b64url_encode(vectors[i].in, len, enc);
    assert_string_equal(enc, vectors[i].url);
    assert_int_equal(strlen(enc), ly_b64url_len(len));
    assert_int_equal(ly_b64_decode(vectors[i].std, strlen(vectors[i].std), dec,
                                   sizeof(dec), &n),
                     0);
    assert_int_equal(n, len);
    assert_memory_equal(dec, vectors[i].in, len);
    assert_int_equal(ly_b64url_decode(vectors[i].url, strlen(vectors[i].url),
                                      dec, sizeof(dec), &n),
                     0);
    assert_int_equal(n, len);
    assert_memory_equal(dec, vectors[i].in, len);
  }
}

static void test_alphabets(void **state) {
  unsigned char bytes[] = {0xfb, 0xff, 0xbf};
  char enc[8];
  unsigned char dec[8];
  size_t n;
  ly_b64_encode(bytes, 3, enc);
  assert_string_equal(enc, "+/+/");
  ly_b64url_encode(bytes, 3, enc);
  assert_string_equal(enc, "-_-_");
  assert_int_equal(ly_b64url_decode("+/+/", 4, dec, sizeof(dec), &n),
                   LY_EPARSE);
  assert_int_equal(ly_b64_decode("-_-_", 4, dec, sizeof(dec), &n), LY_EPARSE);
}

static void test_strict(void **state) {
  unsigned char dec[16];
  size_t n;
  static const char *const bad_std[] = {
      "Zg=",      /* padding that does not complete a quantum */
      "Zg==Zg==", /* data after padding */
      "Zh==",     /* non-zero unused bits */
      "Z",        /* a lone digit */
      "Zm9v!",    /* stray character */
  };
  for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
    assert_int_equal(
        ly_b64_decode(bad_std[i], strlen(bad_std[i]), dec, sizeof(dec), &n),
        LY_EPARSE);
  /* PEM bodies: line breaks are skipped */
  assert_int_equal(ly_b64_decode("Zm9v\nYmFy\r\n", 11, dec, sizeof(dec), &n),
                   0);
  assert_int_equal(n, 6);
  /* base64url takes no whitespace */
  assert_int_equal(ly_b64url_decode("Zm9v\nYmFy", 9, dec, sizeof(dec), &n),
                   LY_EPARSE);
  assert_int_equal(ly_b64url_decode("Zm9vYmFy", 8, dec, 5, &n), LY_ETOO_BIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_alphabets),
      cmocka_unit_test(test_strict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
