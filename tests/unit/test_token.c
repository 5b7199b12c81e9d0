#include <wolfssl/options.h>

#include "lanyard/attest.h"
#include "lanyard/b64.h"
#include "lanyard/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/wc_port.h>

#define NOW 1700000000
#define PATTERN_BUF (LY_SPIFFE_ID_MAX + 3)

static const unsigned char secret[LY_TOKEN_SECRET_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int setup(void **state) {
  return wolfCrypt_Init() == 0 ? 0 : -1;
}

static int teardown(void **state) {
  wolfCrypt_Cleanup();
  return 0;
}

static char *mint(const char *pattern, int64_t exp) {
  char *tok = NULL;
  assert_int_equal(ly_token_mint(secret, pattern, exp, &tok), 0);
  assert_non_null(tok);
  return tok;
}

static int verify(const char *tok, int64_t now, char *pattern,
                  const char **why) {
  *why = NULL;
  int rc = ly_token_verify(secret, tok, now, pattern, why);
  if (rc < 0)
    assert_non_null(*why);
  return rc;
}

static void test_round_trip(void **state) {
  static const char *const patterns[] = {
      "spiffe://example.org/ns/default/sa/web",
      "spiffe://example.org/ns/default/*",
      "spiffe://example.org/*",
      "spiffe://a.b-c_d/x.y/Z-9_",
  };
  for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
    char *tok = mint(patterns[i], NOW + 600);
    assert_int_equal(strncmp(tok, "lyt1.", 5), 0);
    char out[PATTERN_BUF];
    const char *why;
    assert_int_equal(verify(tok, NOW, out, &why), 0);
    assert_string_equal(out, patterns[i]);
    free(tok);
  }
}

static void test_longest_pattern(void **state) {
  /* spiffe://t/ + segments up to the 2048-byte limit, then "/*" */
  char id[LY_SPIFFE_ID_MAX + 3];
  strcpy(id, "spiffe://t");
  while (strlen(id) + 2 <= LY_SPIFFE_ID_MAX)
    strcat(id, "/a");
  assert_int_equal(strlen(id), LY_SPIFFE_ID_MAX);
  strcat(id, "/*");
  char *tok = mint(id, NOW + 1);
  char out[PATTERN_BUF];
  const char *why;
  assert_int_equal(verify(tok, NOW, out, &why), 0);
  assert_string_equal(out, id);
  free(tok);
}

static void test_mint_rejects(void **state) {
  static const char *const bad[] = {
      "",
      "example.org",
      "spiffe://",
      "spiffe://Example.org/x",
      "spiffe://example.org/",
      "spiffe://example.org/a/../b",
      "spiffe://example.org/*/x",
      "spiffe://example.org/a*",
      "spiffe://example.org", /* the trust domain names no workload */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *tok = NULL;
    assert_int_equal(ly_token_mint(secret, bad[i], NOW, &tok), LY_ESPIFFE_ID);
    assert_null(tok);
  }
  char *tok = NULL;
  assert_true(ly_token_mint(secret, "spiffe://example.org/x", -1, &tok) < 0);
  assert_null(tok);
}

static void test_expiry(void **state) {
  char *tok = mint("spiffe://example.org/w", NOW);
  char out[PATTERN_BUF];
  const char *why;
  assert_int_equal(verify(tok, NOW - 1, out, &why), 0);
  assert_int_equal(verify(tok, NOW, out, &why), LY_EEXPIRED);
  assert_string_equal(why, "token expired");
  assert_int_equal(verify(tok, NOW + 86400, out, &why), LY_EEXPIRED);
  free(tok);

  tok = mint("spiffe://example.org/w", 0);
  assert_int_equal(verify(tok, NOW, out, &why), LY_EEXPIRED);
  free(tok);
  tok = mint("spiffe://example.org/w", INT64_MAX);
  assert_int_equal(verify(tok, NOW, out, &why), 0);
  free(tok);
}

static void test_bit_flips(void **state) {
  char *tok = mint("spiffe://example.org/ns/default/*", NOW + 600);
  size_t len = strlen(tok);
  char out[PATTERN_BUF];
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      tok[i] ^= (char)(1 << bit);
      const char *why;
      int rc = verify(tok, NOW, out, &why);
      /* a flip to NUL only shortens the string: still refused */
      assert_int_equal(rc, LY_ETOKEN);
      tok[i] ^= (char)(1 << bit);
    }
  }
  const char *why;
  assert_int_equal(verify(tok, NOW, out, &why), 0);
  free(tok);
}

static void test_other_secret(void **state) {
  unsigned char other[LY_TOKEN_SECRET_LEN];
  memcpy(other, secret, sizeof(other));
  other[31] ^= 1;
  char *tok = NULL;
  assert_int_equal(
      ly_token_mint(other, "spiffe://example.org/w", NOW + 60, &tok), 0);
  char out[PATTERN_BUF];
  const char *why;
  assert_int_equal(verify(tok, NOW, out, &why), LY_ETOKEN);
  assert_string_equal(why, "bad token signature");
  free(tok);
}

/* Re-encodes a token with another pattern or expiry but keeps the MAC. */
static void test_swapped_fields(void **state) {
  char *tok = mint("spiffe://example.org/ns/default/sa/web", NOW + 60);
  const char *mac = strrchr(tok, '.') + 1;
  const char *exp = strchr(tok + 5, '.') + 1;
  char buf[512], enc[256];
  char out[PATTERN_BUF];
  const char *why;

  const char *wider = "spiffe://example.org/*";
  ly_b64url_encode(wider, strlen(wider), enc);
  snprintf(buf, sizeof(buf), "lyt1.%s.%.*s.%s", enc, (int)(mac - 1 - exp), exp,
           mac);
  assert_int_equal(verify(buf, NOW, out, &why), LY_ETOKEN);
  assert_string_equal(why, "bad token signature");

  const char *orig = "spiffe://example.org/ns/default/sa/web";
  ly_b64url_encode(orig, strlen(orig), enc);
  snprintf(buf, sizeof(buf), "lyt1.%s.%lld.%s", enc, (long long)NOW + 999999,
           mac);
  assert_int_equal(verify(buf, NOW, out, &why), LY_ETOKEN);
  assert_string_equal(why, "bad token signature");

  /* the unchanged fields put back together still verify */
  snprintf(buf, sizeof(buf), "lyt1.%s.%lld.%s", enc, (long long)NOW + 60, mac);
  assert_int_equal(verify(buf, NOW, out, &why), 0);
  free(tok);
}

/* HMAC-SHA256 straight from wolfCrypt, to build tokens by hand. */
static void hmac_b64(const unsigned char *key, const char *text, char *out) {
  Hmac h;
  unsigned char mac[WC_SHA256_DIGEST_SIZE];
  assert_int_equal(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
  assert_int_equal(wc_HmacSetKey(&h, WC_SHA256, key, LY_TOKEN_SECRET_LEN), 0);
  assert_int_equal(wc_HmacUpdate(&h, (const byte *)text, strlen(text)), 0);
  assert_int_equal(wc_HmacFinal(&h, mac), 0);
  wc_HmacFree(&h);
  ly_b64url_encode(mac, sizeof(mac), out);
}

/* The documented format, built by hand, so the layout cannot drift. */
static void test_format(void **state) {
  const char *pattern = "spiffe://example.org/ns/a/*";
  char enc[64], body[128], mac[64], want[256];
  ly_b64url_encode(pattern, strlen(pattern), enc);
  snprintf(body, sizeof(body), "lyt1.%s.1700000600", enc);
  hmac_b64(secret, body, mac);
  snprintf(want, sizeof(want), "%s.%s", body, mac);

  char *tok = mint(pattern, 1700000600);
  assert_string_equal(tok, want);
  free(tok);

  char out[PATTERN_BUF];
  const char *why;
  assert_int_equal(verify(want, NOW, out, &why), 0);
  assert_string_equal(out, pattern);
}

/* Correctly MAC'd, yet the pattern is invalid: the verifier checks the
 * pattern again rather than trusting whoever holds the secret. */
static void test_signed_bad_pattern(void **state) {
  static const char *const bad[] = {
      "spiffe://EXAMPLE.org/x",
      "spiffe://example.org/a/../b",
      "https://example.org/x",
      "spiffe://example.org/x/",
      /* the bare trust domain, as a release that allowed it minted */
      "spiffe://example.org",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char enc[128], body[256], mac[64], tok[320];
    ly_b64url_encode(bad[i], strlen(bad[i]), enc);
    snprintf(body, sizeof(body), "lyt1.%s.%d", enc, NOW + 60);
    hmac_b64(secret, body, mac);
    snprintf(tok, sizeof(tok), "%s.%s", body, mac);
    char out[PATTERN_BUF];
    const char *why;
    assert_int_equal(verify(tok, NOW, out, &why), LY_ETOKEN);
    assert_string_equal(why, "malformed token");
  }
}

static void test_malformed(void **state) {
  char *good = mint("spiffe://example.org/w", NOW + 60);
  const char *mac = strrchr(good, '.') + 1;
  char enc[64];
  ly_b64url_encode("spiffe://example.org/w", 22, enc);
  char c[16][256];
  snprintf(c[0], 256, "lyt1.%s.%d", enc, NOW + 60);           /* 3 parts */
  snprintf(c[1], 256, "lyt1.%s.%d.%s.x", enc, NOW + 60, mac); /* 5 parts */
  snprintf(c[2], 256, "lyt2.%s.%d.%s", enc, NOW + 60, mac);   /* version */
  snprintf(c[3], 256, "lyt1.%s=.%d.%s", enc, NOW + 60, mac);  /* padding */
  snprintf(c[4], 256, "lyt1.%s.%d.%s=", enc, NOW + 60, mac);  /* padding */
  snprintf(c[5], 256, "lyt1.%s.+%d.%s", enc, NOW + 60, mac);  /* sign */
  snprintf(c[6], 256, "lyt1.%s.0%d.%s", enc, NOW + 60, mac);  /* zero */
  snprintf(c[7], 256, "lyt1.%s.%s.%s", enc, "9223372036854775808", mac);
  snprintf(c[8], 256, "lyt1.%s.%s.%s", enc, "99999999999999999999", mac);
  snprintf(c[9], 256, "lyt1.%s.%s.%s", enc, "", mac);
  snprintf(c[10], 256, "lyt1.%s.%s.%s", enc, "12a", mac);
  snprintf(c[11], 256, "lyt1.%s.%d.%.42s", enc, NOW + 60, mac); /* short */
  snprintf(c[12], 256, "lyt1.%s.%d.%sA", enc, NOW + 60, mac);   /* long */
  snprintf(c[13], 256, "lyt1.%s!.%d.%s", enc, NOW + 60, mac);
  snprintf(c[14], 256, "lyt1.A.%d.%s", NOW + 60, mac); /* 1 char: no byte */
  snprintf(c[15], 256, "lyt1..%d.%s", NOW + 60, mac);  /* empty pattern */
  static const char *const fixed[] = {
      "",
      "lyt1",
      "lyt1.",
      "lyt1...",
      "....",
      "lyt1.a.b.c",
      "LYT1.AAAA.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      " lyt1.AAAA.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "lyt1.AAAA.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
      "lyt1.AAAA.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
      "lyt1.AAAA.-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      /* 43 chars that leave nonzero trailing bits */
      "lyt1.AAAA.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
  };
  char out[PATTERN_BUF];
  const char *why;
  for (size_t i = 0; i < 16; i++) {
    assert_int_equal(verify(c[i], NOW, out, &why), LY_ETOKEN);
    assert_string_equal(why, "malformed token");
  }
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    assert_int_equal(verify(fixed[i], NOW, out, &why), LY_ETOKEN);
    assert_string_equal(why, "malformed token");
  }

  /* a NUL byte hidden in the pattern */
  char nul[64];
  memcpy(nul, "spiffe://example.org/w\0x", 24);
  ly_b64url_encode(nul, 24, enc);
  char tok[256];
  snprintf(tok, sizeof(tok), "lyt1.%s.%d.%s", enc, NOW + 60, mac);
  assert_int_equal(verify(tok, NOW, out, &why), LY_ETOKEN);

  /* over 4 KiB, and far over: refused without reading it all */
  size_t big = 1 << 20;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memcpy(huge, "lyt1.", 5);
  memset(huge + 5, 'A', big - 5);
  huge[big] = '\0';
  assert_int_equal(verify(huge, NOW, out, &why), LY_ETOKEN);
  assert_string_equal(why, "malformed token");
  huge[4097] = '\0';
  assert_int_equal(verify(huge, NOW, out, &why), LY_ETOKEN);
  free(huge);

  /* a pattern too long for pattern_out */
  size_t plen = LY_SPIFFE_ID_MAX + 3;
  char *longp = malloc(plen + 1);
  assert_non_null(longp);
  memset(longp, 'a', plen);
  longp[plen] = '\0';
  char *tl = malloc(8192);
  assert_non_null(tl);
  char *e = malloc(ly_b64url_len(plen) + 1);
  assert_non_null(e);
  ly_b64url_encode(longp, plen, e);
  snprintf(tl, 8192, "lyt1.%s.%d.%s", e, NOW + 60, mac);
  assert_int_equal(verify(tl, NOW, out, &why), LY_ETOKEN);
  free(e);
  free(tl);
  free(longp);

  assert_int_equal(ly_token_verify(secret, NULL, NOW, out, &why), LY_ETOKEN);
  free(good);
}

static void test_secret_parse(void **state) {
  char text[64];
  ly_b64url_encode(secret, sizeof(secret), text);
  size_t len = strlen(text);
  assert_int_equal(len, 43);
  unsigned char got[LY_TOKEN_SECRET_LEN];

  assert_int_equal(ly_token_secret_parse(text, len, got), 0);
  assert_memory_equal(got, secret, sizeof(secret));
  strcat(text, "\n");
  memset(got, 0, sizeof(got));
  assert_int_equal(ly_token_secret_parse(text, len + 1, got), 0);
  assert_memory_equal(got, secret, sizeof(secret));
  text[len] = '\r';
  text[len + 1] = '\n';
  text[len + 2] = '\0';
  assert_int_equal(ly_token_secret_parse(text, len + 2, got), 0);

  static const char *const bad[] = {
      "",
      "\n",
      "AAAA",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42: 31 bytes */
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44: 33 bytes */
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A",
      " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", /* trailing bits */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(ly_token_secret_parse(bad[i], strlen(bad[i]), got),
                     LY_EPARSE);
  /* the length given is honoured, not the NUL */
  assert_int_equal(ly_token_secret_parse(text, 10, got), LY_EPARSE);
}

static void test_secret_generate(void **state) {
  unsigned char a[LY_TOKEN_SECRET_LEN], b[LY_TOKEN_SECRET_LEN];
  assert_int_equal(ly_token_secret_generate(a), 0);
  assert_int_equal(ly_token_secret_generate(b), 0);
  assert_memory_not_equal(a, b, sizeof(a));

  /* what a secret file holds parses back */
  char text[64];
  ly_b64url_encode(a, sizeof(a), text);
  strcat(text, "\n");
  unsigned char c[LY_TOKEN_SECRET_LEN];
  assert_int_equal(ly_token_secret_parse(text, strlen(text), c), 0);
  assert_memory_equal(a, c, sizeof(a));

  char *tok = NULL;
  assert_int_equal(ly_token_mint(a, "spiffe://example.org/*", NOW + 5, &tok),
                   0);
  char out[PATTERN_BUF];
  const char *why = NULL;
  assert_int_equal(ly_token_verify(c, tok, NOW, out, &why), 0);
  assert_int_equal(ly_token_verify(b, tok, NOW, out, &why), LY_ETOKEN);
  free(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_longest_pattern),
      cmocka_unit_test(test_mint_rejects),
      cmocka_unit_test(test_expiry),
      cmocka_unit_test(test_bit_flips),
      cmocka_unit_test(test_other_secret),
      cmocka_unit_test(test_swapped_fields),
      cmocka_unit_test(test_signed_bad_pattern),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_secret_parse),
      cmocka_unit_test(test_secret_generate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
