/* Kubernetes SA token verification against tokens signed by OpenSSL
 * (tests/tools/mkjwt.py, run by tests/unit/jwt_fixtures.sh into
 * $LY_JWT_FIXTURES). Every fixture token is minted at NOW. */
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
#include <wolfssl/wolfcrypt/wc_port.h>

#define NOW 1700000000
#define ISS "https://kubernetes.default.svc.cluster.local"
#define AUD "lanyard-ca"

static const char *fixtures;

static char *slurp(const char *name, size_t *len_out) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", fixtures, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s (run unit.jwt_fixtures first)", path);
  /* bulk fixtures hold thousands of tokens */
  char *buf = malloc(8 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (8 << 20) - 1, f);
  assert_true(feof(f));
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  buf[n] = '\0';
  if (len_out)
    *len_out = n;
  return buf;
}

static ly_jwks_t *load_jwks(const char *name) {
  size_t len;
  char *json = slurp(name, &len);
  ly_jwks_t *jwks = NULL;
  const char *why = NULL;
  int rc = ly_jwks_parse(json, len, &jwks, &why);
  if (rc != 0)
    fail_msg("%s: %s", name, why ? why : "?");
  free(json);
  return jwks;
}

static int verify_str(const ly_jwks_t *jwks, const char *jwt,
                      ly_k8s_identity_t *id, const char **why) {
  *why = NULL;
  memset(id, 0, sizeof(*id));
  int rc = ly_jwt_verify_k8s(jwks, jwt, ISS, AUD, NOW, id, why);
  if (rc < 0)
    assert_non_null(*why);
  return rc;
}

static int verify_file(const char *jwks_name, const char *name,
                       ly_k8s_identity_t *id, const char **why) {
  ly_jwks_t *jwks = load_jwks(jwks_name);
  char *jwt = slurp(name, NULL);
  int rc = verify_str(jwks, jwt, id, why);
  free(jwt);
  ly_jwks_free(jwks);
  return rc;
}

static int setup(void **state) {
  fixtures = getenv("LY_JWT_FIXTURES");
  if (!fixtures) {
    fprintf(stderr, "LY_JWT_FIXTURES is not set\n");
    return -1;
  }
  return wolfCrypt_Init() == 0 ? 0 : -1;
}

static int teardown(void **state) {
  wolfCrypt_Cleanup();
  return 0;
}

static void test_accepted(void **state) {
  static const struct {
    const char *jwks, *token, *ns, *sa;
  } cases[] = {
      {"jwks.json", "rs256_ok.jwt", "default", "web"},
      {"jwks.json", "es256_ok.jwt", "default", "web"},
      {"jwks.json", "rs256_4096.jwt", "default", "web"},
      {"jwks.json", "rs256_manual.jwt", "default", "web"},
      {"jwks.json", "aud_string.jwt", "default", "web"},
      {"jwks.json", "aud_multi.jwt", "default", "web"},
      {"jwks.json", "expired_leeway.jwt", "default", "web"},
      {"jwks.json", "nbf_leeway.jwt", "default", "web"},
      {"jwks.json", "nbf_past.jwt", "default", "web"},
      {"jwks.json", "exp_real.jwt", "default", "web"},
      {"jwks.json", "sub_fallback.jwt", "prod", "api"},
      {"jwks_nokid.json", "no_kid.jwt", "default", "web"},
      {"jwks_two_rsa.json", "rs256_ok.jwt", "default", "web"},
      {"jwks_two_rsa.json", "rs2.jwt", "default", "web"},
      {"jwks_weak.json", "rs256_ok.jwt", "default", "web"},
      {"jwks.json", "rs256_2052.jwt", "default", "web"},
      /* n and e written with a leading zero byte */
      {"jwks_zero_pad.json", "rs256_ok.jwt", "default", "web"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_k8s_identity_t id;
    const char *why;
    int rc = verify_file(cases[i].jwks, cases[i].token, &id, &why);
    if (rc != 0)
      fail_msg("%s with %s: %s", cases[i].token, cases[i].jwks, why);
    assert_string_equal(id.namespace_, cases[i].ns);
    assert_string_equal(id.service_account, cases[i].sa);
  }
}

static void test_refused(void **state) {
  static const struct {
    const char *jwks, *token;
    int rc;
    const char *why;
  } cases[] = {
      {"jwks.json", "wrong_aud.jwt", LY_ETOKEN, "wrong audience"},
      {"jwks.json", "wrong_aud_string.jwt", LY_ETOKEN, "wrong audience"},
      {"jwks.json", "wrong_iss.jwt", LY_ETOKEN, "wrong issuer"},
      {"jwks.json", "expired.jwt", LY_EEXPIRED, "token expired"},
      {"jwks.json", "no_exp.jwt", LY_ETOKEN, "token has no expiry"},
      {"jwks.json", "exp_string.jwt", LY_ETOKEN, "malformed exp claim"},
      {"jwks.json", "nbf_future.jwt", LY_ETOKEN, "token not yet valid"},
      {"jwks.json", "other_key.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "other_ec_key.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "es256_der_sig.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "rs256_sha512.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "rs256_no_digestinfo.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "rs256_sha3_oid.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "rs256_no_null.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "rs256_trailer.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "es256_sha384.jwt", LY_ETOKEN, "bad signature"},
      {"jwks.json", "unknown_kid.jwt", LY_ETOKEN, "unknown key id"},
      {"jwks.json", "alg_none.jwt", LY_ETOKEN, "unsupported algorithm"},
      {"jwks.json", "hs256_confusion.jwt", LY_ETOKEN, "unsupported algorithm"},
      {"jwks.json", "hs256_nokid.jwt", LY_ETOKEN, "unsupported algorithm"},
      {"jwks.json", "es256_on_rsa_kid.jwt", LY_ETOKEN,
       "algorithm does not match key"},
      {"jwks.json", "rs256_on_ec_kid.jwt", LY_ETOKEN,
       "algorithm does not match key"},
      {"jwks.json", "crit.jwt", LY_ETOKEN, "unsupported critical header"},
      {"jwks.json", "no_identity.jwt", LY_ETOKEN,
       "missing kubernetes.io claims"},
      {"jwks.json", "sub_other.jwt", LY_ETOKEN, "missing kubernetes.io claims"},
      {"jwks.json", "sub_mismatch.jwt", LY_ETOKEN,
       "sub does not match kubernetes.io claim"},
      {"jwks.json", "k8s_malformed.jwt", LY_ETOKEN,
       "malformed kubernetes.io claim"},
      {"jwks.json", "bad_ns.jwt", LY_ETOKEN,
       "invalid namespace or service account name"},
      {"jwks.json", "payload_not_json.jwt", LY_ETOKEN, "malformed token"},
      {"jwks.json", "payload_array.jwt", LY_ETOKEN, "malformed token"},
      {"jwks.json", "payload_dup.jwt", LY_ETOKEN, "malformed token"},
      /* two RSA keys and no kid: which one is meant is unknowable */
      {"jwks.json", "no_kid.jwt", LY_ETOKEN,
       "token names no key id and several keys match"},
      {"jwks_nokid.json", "rs256_ok.jwt", LY_ETOKEN, "unknown key id"},
      {"jwks_nokid.json", "es256_ok.jwt", LY_ETOKEN, "unknown key id"},
      {"jwks_two_rsa.json", "no_kid.jwt", LY_ETOKEN,
       "token names no key id and several keys match"},
      {"jwks_weak.json", "weak.jwt", LY_ETOKEN,
       "RSA key shorter than 2048 bits"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_k8s_identity_t id;
    const char *why;
    int rc = verify_file(cases[i].jwks, cases[i].token, &id, &why);
    if (rc != cases[i].rc || strcmp(why, cases[i].why) != 0)
      fail_msg("%s with %s: got %d (%s), want %d (%s)", cases[i].token,
               cases[i].jwks, rc, why ? why : "-", cases[i].rc, cases[i].why);
  }
}

static void test_issuer_and_audience_args(void **state) {
  ly_jwks_t *jwks = load_jwks("jwks.json");
  char *jwt = slurp("rs256_ok.jwt", NULL);
  ly_k8s_identity_t id;
  const char *why = NULL;
  assert_int_equal(ly_jwt_verify_k8s(jwks, jwt, ISS "/", AUD, NOW, &id, &why),
                   LY_ETOKEN);
  assert_string_equal(why, "wrong issuer");
  assert_int_equal(ly_jwt_verify_k8s(jwks, jwt, ISS, "lanyard", NOW, &id, &why),
                   LY_ETOKEN);
  assert_string_equal(why, "wrong audience");
  assert_int_equal(
      ly_jwt_verify_k8s(jwks, jwt, ISS, "lanyard-ca2", NOW, &id, &why),
      LY_ETOKEN);
  /* exp is NOW + 3600, with 30 s of leeway */
  assert_int_equal(
      ly_jwt_verify_k8s(jwks, jwt, ISS, AUD, NOW + 3629, &id, &why), 0);
  assert_int_equal(
      ly_jwt_verify_k8s(jwks, jwt, ISS, AUD, NOW + 3630, &id, &why),
      LY_EEXPIRED);
  assert_string_equal(why, "token expired");
  free(jwt);
  ly_jwks_free(jwks);
}

/* Replaces the payload with `payload`, keeping header and signature. */
static char *with_payload(const char *jwt, const char *payload) {
  const char *d1 = strchr(jwt, '.');
  const char *d2 = strchr(d1 + 1, '.');
  size_t plen = strlen(payload);
  char *out = malloc(strlen(jwt) + ly_b64url_len(plen) + 2);
  assert_non_null(out);
  size_t hl = (size_t)(d1 - jwt) + 1;
  memcpy(out, jwt, hl);
  ly_b64url_encode(payload, plen, out + hl);
  strcat(out, d2);
  return out;
}

static char *payload_of(const char *jwt) {
  const char *d1 = strchr(jwt, '.');
  const char *d2 = strchr(d1 + 1, '.');
  char *out = malloc((size_t)(d2 - d1));
  assert_non_null(out);
  size_t n = 0;
  assert_int_equal(ly_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1),
                                    (unsigned char *)out, (size_t)(d2 - d1),
                                    &n),
                   0);
  out[n] = '\0';
  return out;
}

static void test_tampered(void **state) {
  static const char *const names[] = {"rs256_ok.jwt", "es256_ok.jwt"};
  ly_jwks_t *jwks = load_jwks("jwks.json");
  for (size_t t = 0; t < 2; t++) {
    char *jwt = slurp(names[t], NULL);
    ly_k8s_identity_t id;
    const char *why;

    /* the same claims, with the service account swapped */
    char *claims = payload_of(jwt);
    char *p;
    while ((p = strstr(claims, "\"web\"")))
      memcpy(p, "\"api\"", 5);
    while ((p = strstr(claims, ":web\"")))
      memcpy(p, ":api\"", 5);
    char *forged = with_payload(jwt, claims);
    assert_int_equal(verify_str(jwks, forged, &id, &why), LY_ETOKEN);
    assert_string_equal(why, "bad signature");
    free(forged);
    free(claims);

    /* every single-bit change anywhere is refused */
    size_t len = strlen(jwt);
    for (size_t i = 0; i < len; i++) {
      for (int bit = 0; bit < 8; bit++) {
        jwt[i] ^= (char)(1 << bit);
        int rc = verify_str(jwks, jwt, &id, &why);
        if (rc >= 0)
          fail_msg("%s: flip of bit %d at %zu accepted", names[t], bit, i);
        jwt[i] ^= (char)(1 << bit);
      }
    }
    assert_int_equal(verify_str(jwks, jwt, &id, &why), 0);

    /* signature truncated, or with a byte more */
    char *cut = strdup(jwt);
    assert_non_null(cut);
    cut[len - 4] = '\0';
    assert_int_equal(verify_str(jwks, cut, &id, &why), LY_ETOKEN);
    free(cut);
    /* the same number with a leading zero byte: not the modulus length */
    const char *d2 = strrchr(jwt, '.');
    unsigned char sig[600];
    size_t n = 0;
    assert_int_equal(
        ly_b64url_decode(d2 + 1, strlen(d2 + 1), sig + 1, sizeof(sig) - 1, &n),
        0);
    sig[0] = 0;
    char *padded = malloc(len + 8);
    assert_non_null(padded);
    size_t hl = (size_t)(d2 - jwt) + 1;
    memcpy(padded, jwt, hl);
    ly_b64url_encode(sig, n + 1, padded + hl);
    assert_int_equal(verify_str(jwks, padded, &id, &why), LY_ETOKEN);
    assert_string_equal(why, "bad signature");
    /* the valid signature with a byte after it */
    sig[n + 1] = 0;
    ly_b64url_encode(sig + 1, n + 1, padded + hl);
    assert_int_equal(verify_str(jwks, padded, &id, &why), LY_ETOKEN);
    assert_string_equal(why, "bad signature");
    free(padded);
    free(jwt);
  }
  ly_jwks_free(jwks);
}

static size_t signature_of(const char *jwt, unsigned char *sig, size_t cap) {
  const char *d2 = strrchr(jwt, '.');
  size_t n = 0;
  assert_int_equal(ly_b64url_decode(d2 + 1, strlen(d2 + 1), sig, cap, &n), 0);
  return n;
}

/* Replaces the signature with one of the same length. */
static void put_signature(char *jwt, const unsigned char *sig, size_t n) {
  char *d2 = strrchr(jwt, '.');
  assert_int_equal(strlen(d2 + 1), ly_b64url_len(n));
  ly_b64url_encode(sig, n, d2 + 1);
}

/* How many bytes shorter than its n-byte form the number at v is as a DER
 * INTEGER (minimal, with a 0x00 before a high bit); 0 if not shorter. */
static int der_shortfall(const unsigned char *v, size_t n) {
  size_t z = 0;
  while (z < n && v[z] == 0)
    z++;
  return z == n ? (int)n : (int)z - (z > 0 && v[z] >= 0x80);
}

/* Flipping any one bit of the signature makes it a bad signature. */
static void each_bit_refused(const ly_jwks_t *jwks, char *jwt,
                             const char *name) {
  unsigned char sig[600];
  size_t n = signature_of(jwt, sig, sizeof(sig));
  for (size_t bit = 0; bit < n * 8; bit++) {
    ly_k8s_identity_t id;
    const char *why;
    sig[bit / 8] ^= (unsigned char)(0x80 >> bit % 8);
    put_signature(jwt, sig, n);
    if (verify_str(jwks, jwt, &id, &why) != LY_ETOKEN ||
        strcmp(why, "bad signature") != 0)
      fail_msg("%s: signature bit %zu flipped: %s", name, bit, why);
    sig[bit / 8] ^= (unsigned char)(0x80 >> bit % 8);
  }
  put_signature(jwt, sig, n);
}

/* JOSE signatures are fixed-width big-endian numbers; those that start
 * with zero bytes are valid and must verify like any other. */
static void test_leading_zeros(void **state) {
  static const struct {
    const char *jwks, *token;
    int r, s; /* bytes shorter as DER INTEGERs; s -1: RS256 */
  } cases[] = {
      {"jwks.json", "es256_r_short.jwt", 1, 0},
      {"jwks.json", "es256_s_short.jwt", 0, 1},
      {"jwks_vectors.json", "es256_rs_short.jwt", 1, 1},
      {"jwks_vectors.json", "es256_r2_short.jwt", 2, 0},
      {"jwks_vectors.json", "es256_s2_short.jwt", 0, 2},
      {"jwks.json", "rs256_short.jwt", 1, -1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_jwks_t *jwks = load_jwks(cases[i].jwks);
    char *jwt = slurp(cases[i].token, NULL);
    unsigned char sig[600];
    size_t n = signature_of(jwt, sig, sizeof(sig));
    /* the fixture has the shape it is named for */
    if (cases[i].s < 0) {
      assert_true(der_shortfall(sig, n) >= cases[i].r);
    } else {
      assert_int_equal(n, 64);
      assert_true(der_shortfall(sig, 32) >= cases[i].r);
      assert_true(der_shortfall(sig + 32, 32) >= cases[i].s);
    }
    ly_k8s_identity_t id;
    const char *why;
    if (verify_str(jwks, jwt, &id, &why) != 0)
      fail_msg("%s: %s", cases[i].token, why);
    assert_string_equal(id.service_account, "web");
    each_bit_refused(jwks, jwt, cases[i].token);
    free(jwt);
    ly_jwks_free(jwks);
  }
}

/* R or S of zero, or of the group order: never valid (SEC 1 4.1.4). */
static void test_es256_out_of_range(void **state) {
  static const unsigned char order[32] = {
      0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
      0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
  ly_jwks_t *jwks = load_jwks("jwks.json");
  char *jwt = slurp("es256_ok.jwt", NULL);
  unsigned char sig[64];
  assert_int_equal(signature_of(jwt, sig, sizeof(sig)), 64);
  for (int half = 0; half < 2; half++) {
    for (int order_value = 0; order_value < 2; order_value++) {
      unsigned char bad[64];
      memcpy(bad, sig, 64);
      if (order_value)
        memcpy(bad + 32 * half, order, 32);
      else
        memset(bad + 32 * half, 0, 32);
      put_signature(jwt, bad, 64);
      ly_k8s_identity_t id;
      const char *why;
      assert_int_equal(verify_str(jwks, jwt, &id, &why), LY_ETOKEN);
      assert_string_equal(why, "bad signature");
    }
  }
  free(jwt);
  ly_jwks_free(jwks);
}

/* Thousands of tokens as OpenSSL signs them, one a line: every one
 * verifies, and none with a bit of its signature flipped. */
static void many_accepted(const char *name, size_t want) {
  ly_jwks_t *jwks = load_jwks("jwks.json");
  char *all = slurp(name, NULL);
  size_t count = 0;
  char *save = NULL;
  for (char *jwt = strtok_r(all, "\n", &save); jwt;
       jwt = strtok_r(NULL, "\n", &save), count++) {
    ly_k8s_identity_t id;
    const char *why;
    if (verify_str(jwks, jwt, &id, &why) != 0)
      fail_msg("%s, token %zu: %s", name, count, why);
    unsigned char sig[600];
    size_t n = signature_of(jwt, sig, sizeof(sig));
    size_t bit = count * 7 % (n * 8); /* a different one each time */
    sig[bit / 8] ^= (unsigned char)(0x80 >> bit % 8);
    put_signature(jwt, sig, n);
    assert_int_equal(verify_str(jwks, jwt, &id, &why), LY_ETOKEN);
  }
  assert_int_equal(count, want);
  free(all);
  ly_jwks_free(jwks);
}

static void test_many(void **state) {
  many_accepted("es256_many.jwt", 4096);
  many_accepted("rs256_many.jwt", 512);
}

static void test_malformed(void **state) {
  ly_jwks_t *jwks = load_jwks("jwks.json");
  char *jwt = slurp("rs256_ok.jwt", NULL);
  const char *d1 = strchr(jwt, '.');
  const char *d2 = strrchr(jwt, '.');
  int hl = (int)(d1 - jwt), pl = (int)(d2 - d1 - 1);
  const char *sig = d2 + 1;
  char hdr_notjson[64], hdr_array[64], hdr_alg_num[64], hdr_kid_num[64];
  ly_b64url_encode("not json", 8, hdr_notjson);
  ly_b64url_encode("[\"RS256\"]", 9, hdr_array);
  ly_b64url_encode("{\"alg\":256}", 11, hdr_alg_num);
  ly_b64url_encode("{\"alg\":\"RS256\",\"kid\":1}", 23, hdr_kid_num);

  char *c[16];
  size_t cap = strlen(jwt) + 64;
  for (int i = 0; i < 16; i++) {
    c[i] = malloc(cap);
    assert_non_null(c[i]);
  }
  snprintf(c[0], cap, "%.*s.%.*s", hl, jwt, pl, d1 + 1); /* 2 parts */
  snprintf(c[1], cap, "%s.%s", jwt, sig);                /* 4 parts */
  snprintf(c[2], cap, "%.*s!.%s", hl, jwt, d1 + 1);      /* bad char */
  snprintf(c[3], cap, "%.*s=%s", hl, jwt, d1);           /* padding */
  snprintf(c[4], cap, "%s.%s", hdr_notjson, d1 + 1);     /* not JSON */
  snprintf(c[5], cap, "%s.%s", hdr_array, d1 + 1);       /* array */
  snprintf(c[6], cap, "%s.%s", hdr_alg_num, d1 + 1);     /* alg type */
  snprintf(c[7], cap, "%s.%s", hdr_kid_num, d1 + 1);     /* kid type */
  snprintf(c[8], cap, "%s", d1);                         /* no header */
  snprintf(c[9], cap, "%.*s.", (int)(d2 - jwt), jwt);    /* no sig */
  snprintf(c[10], cap, "%.*s.A", (int)(d2 - jwt), jwt);  /* 1 char */
  snprintf(c[11], cap, "%.*s.%s", hl, jwt, d2);          /* no body */
  snprintf(c[12], cap, "..");
  snprintf(c[13], cap, "%s", "");
  snprintf(c[14], cap, "%s ", jwt);                   /* space */
  snprintf(c[15], cap, "%.*s%c%s", hl, jwt, 'B', d1); /* bits */
  for (int i = 0; i < 16; i++) {
    ly_k8s_identity_t id;
    const char *why;
    int rc = verify_str(jwks, c[i], &id, &why);
    if (rc != LY_ETOKEN || strcmp(why, "malformed token") != 0)
      fail_msg("case %d: got %d (%s)", i, rc, why ? why : "-");
    free(c[i]);
  }

  /* a signature longer than any key's: never valid */
  size_t big = strlen(jwt) + 2000;
  char *longsig = malloc(big);
  assert_non_null(longsig);
  snprintf(longsig, big, "%s", jwt);
  memset(longsig + strlen(jwt), 'A', 1200);
  longsig[strlen(jwt) + 1200] = '\0';
  ly_k8s_identity_t id;
  const char *why;
  assert_int_equal(verify_str(jwks, longsig, &id, &why), LY_ETOKEN);
  assert_string_equal(why, "bad signature");
  free(longsig);

  /* over 16 KiB, and far over */
  size_t hsz = 1 << 20;
  char *huge = malloc(hsz + 1);
  assert_non_null(huge);
  memset(huge, 'A', hsz);
  huge[100] = '.';
  huge[200] = '.';
  huge[hsz] = '\0';
  assert_int_equal(verify_str(jwks, huge, &id, &why), LY_ETOKEN);
  huge[16 * 1024 + 1] = '\0';
  assert_int_equal(verify_str(jwks, huge, &id, &why), LY_ETOKEN);
  assert_string_equal(why, "token is over 16 KiB");
  free(huge);

  assert_int_equal(ly_jwt_verify_k8s(jwks, NULL, ISS, AUD, NOW, &id, &why),
                   LY_ETOKEN);
  assert_int_equal(ly_jwt_verify_k8s(NULL, jwt, ISS, AUD, NOW, &id, &why),
                   LY_ETOKEN);
  free(jwt);
  ly_jwks_free(jwks);
}

static void jwks_refused(const char *json, const char *want_why) {
  ly_jwks_t *jwks = (ly_jwks_t *)1;
  const char *why = NULL;
  int rc = ly_jwks_parse(json, strlen(json), &jwks, &why);
  if (rc != LY_EPARSE || !why || (want_why && strcmp(why, want_why) != 0))
    fail_msg("JWKS %.60s: got %d (%s)", json, rc, why ? why : "-");
  assert_ptr_equal(jwks, (ly_jwks_t *)1);
}

static void jwks_accepted(const char *json) {
  ly_jwks_t *jwks = NULL;
  const char *why = NULL;
  if (ly_jwks_parse(json, strlen(json), &jwks, &why) != 0)
    fail_msg("JWKS %.60s: %s", json, why);
  ly_jwks_free(jwks);
}

#define P256_X "UCk12YiDctHMnyyAYcmtNdtCky09FWkUbrK7hoihnmk"
#define P256_Y "0cYEA_WWxwfR4sHW7U9cln3zW7dNtY3wjGiZ2EC2AXQ"
#define VEC_X "AIgc411QfxhC2T9lhdgRBmlQEugbinTPZJCwlvWYeEw"
#define VEC_Y "rUvZUGokInTr4oJFOKijF0W8LyDYHAjitwoMHo0GbLk"
#define EC_KEY(x, y)                                                           \
  "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" x "\",\"y\":\"" y    \
  "\"}]}"

static void test_jwks(void **state) {
  /* the fixture documents parse, and an on-curve key literal too */
  ly_jwks_free(load_jwks("jwks.json"));
  ly_jwks_free(load_jwks("jwks_weak.json"));
  jwks_accepted(EC_KEY(P256_X, P256_Y));
  /* unknown types are skipped as long as one usable key remains */
  jwks_accepted("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"},"
                "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_X
                "\",\"y\":\"" P256_Y "\",\"kid\":\"a\",\"use\":\"sig\"}],"
                "\"extra\":true}");

  jwks_refused("", "JWKS is not valid JSON");
  jwks_refused("{", "JWKS is not valid JSON");
  jwks_refused("[]", NULL);
  jwks_refused("{}", "JWKS has no \"keys\" array");
  jwks_refused("{\"keys\":{}}", "JWKS has no \"keys\" array");
  jwks_refused("{\"keys\":[]}", "JWKS has no usable RS256 or ES256 key");
  jwks_refused("{\"keys\":[1]}", "JWKS key is not an object");
  jwks_refused("{\"keys\":[{}]}", "JWKS key without kty");
  jwks_refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
               "JWKS has no usable RS256 or ES256 key");
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\"}]}",
               "JWKS has no usable RS256 or ES256 key");
  jwks_refused("{\"keys\":[{\"kty\":\"EC\"}]}", "EC key without crv");
  /* an encryption key, or a key pinned to another algorithm */
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\","
               "\"x\":\"" P256_X "\",\"y\":\"" P256_Y "\"}]}",
               "JWKS has no usable RS256 or ES256 key");
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\","
               "\"x\":\"" P256_X "\",\"y\":\"" P256_Y "\"}]}",
               "JWKS has no usable RS256 or ES256 key");
  jwks_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":7,"
               "\"x\":\"" P256_X "\",\"y\":\"" P256_Y "\"}]}",
               "JWKS key id is not a string");
  /* off the curve: y changed */
  jwks_refused(EC_KEY(P256_X, "0cYEA_WWxwfR4sHW7U9cln3zW7dNtY3wjGiZ2EC2AXU"),
               "EC key is not a point on P-256");
  /* x of jwt_vectors' key starts with a zero byte, which RFC 7518
   * 6.2.1.2 keeps; without it, x is a byte short */
  jwks_accepted(EC_KEY(VEC_X, VEC_Y));
  jwks_refused(EC_KEY("iBzjXVB_GELZP2WF2BEGaVAS6BuKdM9kkLCW9Zh4TA", VEC_Y),
               "malformed EC key");
  jwks_refused(EC_KEY("AQ", "AQ"), "malformed EC key");
  jwks_refused(EC_KEY(P256_X, "!!"), "malformed EC key");
  jwks_refused("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
               "malformed RSA key (n)");
  jwks_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"*\",\"e\":\"AQAB\"}]}",
               "malformed RSA key (n)");
  jwks_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AAAB\",\"e\":\"AQ\"}]}",
               "malformed RSA key (e)");
  /* a small (even) modulus */
  jwks_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AAAA\",\"e\":\"AQAB\"}]}",
               "malformed RSA key (n)");
  /* a weak key alone leaves nothing usable */
  jwks_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AAAB\",\"e\":\"AQAB\"}]}",
               "JWKS has no usable RS256 or ES256 key");
  /* duplicate members are ambiguous */
  jwks_refused("{\"keys\":[],\"keys\":[]}", "JWKS is not valid JSON");

  char *many = malloc(65 * 200 + 32);
  assert_non_null(many);
  strcpy(many, "{\"keys\":[");
  for (int i = 0; i < 65; i++)
    strcat(many, i ? ",{\"kty\":\"x\"}" : "{\"kty\":\"x\"}");
  strcat(many, "]}");
  jwks_refused(many, "JWKS has more than 64 keys");
  free(many);

  size_t big = 300 * 1024;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memset(huge, ' ', big);
  memcpy(huge, "{\"keys\":[", 9);
  memcpy(huge + big - 2, "]}", 2);
  huge[big] = '\0';
  jwks_refused(huge, "JWKS is over 256 KiB");
  free(huge);

  ly_jwks_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepted),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_issuer_and_audience_args),
      cmocka_unit_test(test_tampered),
      cmocka_unit_test(test_leading_zeros),
      cmocka_unit_test(test_es256_out_of_range),
      cmocka_unit_test(test_many),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_jwks),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
