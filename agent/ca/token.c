/* Join tokens: lyt1.<b64url(pattern)>.<expiry>.<b64url(HMAC-SHA256)>.
 *
 * The MAC covers the token's own text up to the last '.', so the verifier
 * never has to re-encode anything: what was signed is what arrived. */
#include <wolfssl/options.h>

#include "lanyard/attest.h"

#include "lanyard/b64.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>

#define TOKEN_PREFIX "lyt1."
#define TOKEN_MAX 4096
#define MAC_LEN 32
#define MAC_B64_LEN 43                     /* ly_b64url_len(32) */
#define PATTERN_MAX (LY_SPIFFE_ID_MAX + 2) /* an ID and "/*" */
#define EXPIRY_DIGITS_MAX 19               /* INT64_MAX has 19 digits */

static const char malformed[] = "malformed token";

static int mac_compute(const unsigned char secret[LY_TOKEN_SECRET_LEN],
                       const char *text, size_t len,
                       unsigned char mac[MAC_LEN]) {
  Hmac hmac;
  int rc = LY_ECRYPTO;
  if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
    return LY_ECRYPTO;
  if (wc_HmacSetKey(&hmac, WC_SHA256, secret, LY_TOKEN_SECRET_LEN) != 0 ||
      wc_HmacUpdate(&hmac, (const byte *)text, (word32)len) != 0 ||
      wc_HmacFinal(&hmac, mac) != 0)
    goto out;
  rc = 0;
out:
  wc_HmacFree(&hmac);
  /* the inner and outer pads are derived from the secret */
  ly_wipe(&hmac, sizeof(hmac));
  return rc;
}

/* Constant time in the contents: a timing difference would let a caller
 * guess a valid MAC for a forged token byte by byte. */
static int ct_equal(const unsigned char *a, const unsigned char *b, size_t n) {
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < n; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static int is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Strict: only the unpadded alphabet, so one token has one spelling. */
static int all_b64url(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!is_b64url_char(s[i]))
      return 0;
  return 1;
}

/* Decimal without sign or leading zeros, within int64_t. */
static int parse_expiry(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > EXPIRY_DIGITS_MAX || (len > 1 && s[0] == '0'))
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    int d = s[i] - '0';
    if (v > (INT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int ly_token_mint(const unsigned char secret[LY_TOKEN_SECRET_LEN],
                  const char *pattern, int64_t expires_at, char **token) {
  LY_ENSURE(secret && pattern && token, UV_EINVAL);
  LY_ENSURE(expires_at >= 0, UV_EINVAL);
  LY_GUARD(ly_spiffe_pattern_check(pattern, NULL));
  size_t plen = strlen(pattern);
  LY_ENSURE(plen <= PATTERN_MAX, LY_ESPIFFE_ID);

  size_t cap = sizeof(TOKEN_PREFIX) + ly_b64url_len(plen) + 1 +
               EXPIRY_DIGITS_MAX + 1 + MAC_B64_LEN + 1;
  char *buf = malloc(cap);
  if (!buf)
    return UV_ENOMEM;
  memcpy(buf, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
  size_t n = sizeof(TOKEN_PREFIX) - 1;
  ly_b64url_encode(pattern, plen, buf + n);
  n += strlen(buf + n);
  n += (size_t)snprintf(buf + n, cap - n, ".%lld", (long long)expires_at);

  unsigned char mac[MAC_LEN];
  int rc = mac_compute(secret, buf, n, mac);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  buf[n++] = '.';
  ly_b64url_encode(mac, sizeof(mac), buf + n);
  *token = buf;
  return 0;
}

int ly_token_verify(const unsigned char secret[LY_TOKEN_SECRET_LEN],
                    const char *token, int64_t now, char *pattern_out,
                    const char **why) {
  LY_ENSURE_WHY(secret && token && pattern_out, LY_ETOKEN, why, malformed);
  /* bounded scan: the token comes from the network */
  size_t len = strnlen(token, TOKEN_MAX + 1);
  LY_ENSURE_WHY(len <= TOKEN_MAX, LY_ETOKEN, why, malformed);
  size_t plen = sizeof(TOKEN_PREFIX) - 1;
  LY_ENSURE_WHY(len > plen && memcmp(token, TOKEN_PREFIX, plen) == 0, LY_ETOKEN,
                why, malformed);

  /* lyt1.<pat>.<exp>.<mac>: exactly two more dots after the prefix */
  const char *pat = token + plen;
  const char *end = token + len;
  const char *dot1 = memchr(pat, '.', (size_t)(end - pat));
  LY_ENSURE_WHY(dot1, LY_ETOKEN, why, malformed);
  const char *exp_s = dot1 + 1;
  const char *dot2 = memchr(exp_s, '.', (size_t)(end - exp_s));
  LY_ENSURE_WHY(dot2, LY_ETOKEN, why, malformed);
  const char *mac_b64 = dot2 + 1;
  size_t pat_len = (size_t)(dot1 - pat);
  size_t exp_len = (size_t)(dot2 - exp_s);
  size_t mac_len = (size_t)(end - mac_b64);

  LY_ENSURE_WHY(pat_len > 0 && all_b64url(pat, pat_len), LY_ETOKEN, why,
                malformed);
  LY_ENSURE_WHY(mac_len == MAC_B64_LEN && all_b64url(mac_b64, mac_len),
                LY_ETOKEN, why, malformed);
  int64_t expires_at;
  LY_ENSURE_WHY(parse_expiry(exp_s, exp_len, &expires_at) == 0, LY_ETOKEN, why,
                malformed);

  unsigned char given[MAC_LEN];
  size_t n = 0;
  LY_ENSURE_WHY(ly_b64url_decode(mac_b64, mac_len, given, sizeof(given), &n) ==
                        0 &&
                    n == MAC_LEN,
                LY_ETOKEN, why, malformed);

  char pattern[PATTERN_MAX + 1];
  LY_ENSURE_WHY(ly_b64url_decode(pat, pat_len, (unsigned char *)pattern,
                                 PATTERN_MAX, &n) == 0,
                LY_ETOKEN, why, malformed);
  LY_ENSURE_WHY(n > 0 && !memchr(pattern, '\0', n), LY_ETOKEN, why, malformed);
  pattern[n] = '\0';

  unsigned char want[MAC_LEN];
  int rc = mac_compute(secret, token, (size_t)(dot2 - token), want);
  int ok = rc == 0 && ct_equal(want, given, MAC_LEN);
  /* a computed MAC is a valid credential for whatever text came in */
  ly_wipe(want, sizeof(want));
  LY_GUARD(rc);
  LY_ENSURE_WHY(ok, LY_ETOKEN, why, "bad token signature");

  /* Signed by us, so the pattern was checked at mint; checking again keeps
   * a token from an older, laxer release from granting an invalid ID. */
  LY_ENSURE_WHY(ly_spiffe_pattern_check(pattern, NULL) == 0, LY_ETOKEN, why,
                malformed);
  LY_ENSURE_WHY(now < expires_at, LY_EEXPIRED, why, "token expired");
  memcpy(pattern_out, pattern, n + 1);
  return 0;
}

int ly_token_secret_generate(unsigned char secret[LY_TOKEN_SECRET_LEN]) {
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0)
    return LY_ECRYPTO;
  int rc = wc_RNG_GenerateBlock(&rng, secret, LY_TOKEN_SECRET_LEN) == 0
               ? 0
               : LY_ECRYPTO;
  wc_FreeRng(&rng);
  return rc;
}

int ly_token_secret_parse(const char *text, size_t len,
                          unsigned char secret[LY_TOKEN_SECRET_LEN]) {
  LY_ENSURE(text, LY_EPARSE);
  if (len > 0 && text[len - 1] == '\n')
    len--;
  if (len > 0 && text[len - 1] == '\r')
    len--;
  LY_ENSURE(len == ly_b64url_len(LY_TOKEN_SECRET_LEN) && all_b64url(text, len),
            LY_EPARSE);
  unsigned char buf[LY_TOKEN_SECRET_LEN];
  size_t n = 0;
  int rc = ly_b64url_decode(text, len, buf, sizeof(buf), &n);
  if (rc == 0 && n != LY_TOKEN_SECRET_LEN)
    rc = LY_EPARSE;
  if (rc == 0)
    memcpy(secret, buf, LY_TOKEN_SECRET_LEN);
  ly_wipe(buf, sizeof(buf));
  return rc < 0 ? LY_EPARSE : 0;
}
