/* Kubernetes projected service-account tokens: compact JWS (RFC 7515),
 * RS256 or ES256 (RFC 7518), checked against a JWKS (RFC 7517).
 *
 * The algorithm comes from the token but the key type from the JWKS, and
 * the two must agree: the key decides how a signature is checked, never
 * the token alone (no "none", no HMAC keyed with a public key). */
#include <wolfssl/options.h>

#include "lanyard/attest.h"

#include "lanyard/b64.h"
#include "lanyard/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#define JWT_MAX (16 * 1024)
#define JWKS_MAX (256 * 1024)
#define JWKS_KEYS_MAX 64
#define KID_MAX 256
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES 512 /* 4096 bits: what the verifier supports */
#define RSA_E_MAX_BYTES 8
#define P256_BYTES 32
#define LEEWAY 30
/* Numeric dates beyond this are nonsense, and bounding them keeps the
 * leeway arithmetic free of overflow. */
#define NUMERIC_DATE_MAX (INT64_MAX / 4)

static const char malformed[] = "malformed token";

enum key_type { KEY_RSA, KEY_EC };

/* Raw public numbers only: each verification imports its own key object,
 * because wolfCrypt keys carry per-operation state and a JWKS is shared
 * by every thread verifying tokens. */
typedef struct {
  enum key_type type;
  int has_kid;
  char kid[KID_MAX + 1];
  const char *unusable; /* why this key never verifies, or NULL */
  unsigned char n[RSA_MAX_BYTES];
  size_t n_len;
  unsigned char e[RSA_E_MAX_BYTES];
  size_t e_len;
  unsigned char x[P256_BYTES], y[P256_BYTES];
} jwk_t;

struct ly_jwks_s {
  size_t count;
  jwk_t keys[];
};

/* The DER DigestInfo that precedes a SHA-256 hash in PKCS #1 v1.5
 * (RFC 8017 section 9.2, note 1). Comparing it whole rules out signatures
 * that carry another hash or smuggle bytes in the parameters. */
static const unsigned char sha256_digest_info[] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

/* ---- JWKS ---------------------------------------------------------------- */

/* Decodes a base64url member into dst; 0, or -1 if absent or invalid. */
static int b64_member(json_t *obj, const char *name, unsigned char *dst,
                      size_t cap, size_t *n) {
  json_t *v = json_object_get(obj, name);
  if (!json_is_string(v))
    return -1;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (len == 0 || ly_b64url_decode(s, len, dst, cap, n) != 0)
    return -1;
  return 0;
}

/* The big-endian number at buf without its leading zero bytes. */
static const unsigned char *skip_zeros(const unsigned char *buf, size_t *n) {
  while (*n > 0 && buf[0] == 0) {
    buf++;
    (*n)--;
  }
  return buf;
}

/* Strips leading zero bytes (allowed by some encoders) in place. */
static size_t strip_zeros(unsigned char *buf, size_t n) {
  memmove(buf, skip_zeros(buf, &n), n);
  return n;
}

static size_t bit_length(const unsigned char *buf, size_t n) {
  if (n == 0)
    return 0;
  size_t bits = (n - 1) * 8;
  for (unsigned c = buf[0]; c; c >>= 1)
    bits++;
  return bits;
}

static int parse_rsa(json_t *obj, jwk_t *k, const char **why) {
  /* room for larger keys than we verify, so they are reported, not
   * mistaken for malformed ones */
  unsigned char n[1024];
  size_t n_len = 0, e_len = 0;
  LY_ENSURE_WHY(b64_member(obj, "n", n, sizeof(n), &n_len) == 0, LY_EPARSE, why,
                "malformed RSA key (n)");
  LY_ENSURE_WHY(b64_member(obj, "e", k->e, sizeof(k->e), &e_len) == 0,
                LY_EPARSE, why, "malformed RSA key (e)");
  n_len = strip_zeros(n, n_len);
  k->e_len = strip_zeros(k->e, e_len);
  /* an even modulus or exponent, or e == 1, is no RSA key */
  LY_ENSURE_WHY(n_len > 0 && (n[n_len - 1] & 1), LY_EPARSE, why,
                "malformed RSA key (n)");
  LY_ENSURE_WHY(k->e_len > 0 && (k->e[k->e_len - 1] & 1) &&
                    !(k->e_len == 1 && k->e[0] == 1),
                LY_EPARSE, why, "malformed RSA key (e)");
  k->type = KEY_RSA;
  size_t bits = bit_length(n, n_len);
  if (bits < RSA_MIN_BITS) {
    k->unusable = "RSA key shorter than 2048 bits";
  } else if (n_len > RSA_MAX_BYTES) {
    k->unusable = "RSA key longer than 4096 bits";
  } else {
    memcpy(k->n, n, n_len);
    k->n_len = n_len;
  }
  return 0;
}

static int parse_ec(json_t *obj, jwk_t *k, const char **why) {
  size_t xl = 0, yl = 0;
  /* RFC 7518 6.2.1.2: coordinates are always the full field size */
  LY_ENSURE_WHY(b64_member(obj, "x", k->x, sizeof(k->x), &xl) == 0 &&
                    xl == P256_BYTES &&
                    b64_member(obj, "y", k->y, sizeof(k->y), &yl) == 0 &&
                    yl == P256_BYTES,
                LY_EPARSE, why, "malformed EC key");
  k->type = KEY_EC;

  /* An off-curve point would turn verification into an invalid-curve
   * oracle; check once here rather than on every token. */
  ecc_key *key = malloc(sizeof(*key));
  if (!key)
    return UV_ENOMEM;
  int rc = LY_ECRYPTO;
  if (wc_ecc_init(key) != 0)
    goto out_free;
  rc = 0;
  if (wc_ecc_import_unsigned(key, k->x, k->y, NULL, ECC_SECP256R1) != 0 ||
      wc_ecc_check_key(key) != 0) {
    if (why)
      *why = "EC key is not a point on P-256";
    rc = LY_EPARSE;
  }
  wc_ecc_free(key);
out_free:
  free(key);
  return rc;
}

/* 1 if the key was added, 0 if skipped (a type we do not use), or an
 * error for a key of a supported type that is broken. */
static int parse_jwk(json_t *obj, jwk_t *k, const char **why) {
  LY_ENSURE_WHY(json_is_object(obj), LY_EPARSE, why,
                "JWKS key is not an object");
  json_t *kty = json_object_get(obj, "kty");
  LY_ENSURE_WHY(json_is_string(kty), LY_EPARSE, why, "JWKS key without kty");
  json_t *use = json_object_get(obj, "use");
  if (use && !(json_is_string(use) && !strcmp(json_string_value(use), "sig")))
    return 0; /* an encryption key */

  const char *want_alg;
  int is_rsa = !strcmp(json_string_value(kty), "RSA");
  if (is_rsa) {
    want_alg = "RS256";
  } else if (!strcmp(json_string_value(kty), "EC")) {
    json_t *crv = json_object_get(obj, "crv");
    LY_ENSURE_WHY(json_is_string(crv), LY_EPARSE, why, "EC key without crv");
    if (strcmp(json_string_value(crv), "P-256") != 0)
      return 0;
    want_alg = "ES256";
  } else {
    return 0;
  }
  /* a key pinned to another algorithm (RS512, ...) is not ours to use */
  json_t *alg = json_object_get(obj, "alg");
  if (alg &&
      !(json_is_string(alg) && !strcmp(json_string_value(alg), want_alg)))
    return 0;

  memset(k, 0, sizeof(*k));
  json_t *kid = json_object_get(obj, "kid");
  if (kid) {
    LY_ENSURE_WHY(json_is_string(kid), LY_EPARSE, why,
                  "JWKS key id is not a string");
    size_t len = json_string_length(kid);
    /* jansson refuses \u0000 unless asked, so kid is one C string */
    LY_ENSURE_WHY(len <= KID_MAX, LY_EPARSE, why, "JWKS key id is too long");
    memcpy(k->kid, json_string_value(kid), len + 1);
    k->has_kid = 1;
  }
  LY_GUARD(is_rsa ? parse_rsa(obj, k, why) : parse_ec(obj, k, why));
  return 1;
}

int ly_jwks_parse(const char *json, size_t len, ly_jwks_t **out,
                  const char **why) {
  LY_ENSURE_WHY(json && out, LY_EPARSE, why, "no JWKS");
  LY_ENSURE_WHY(len <= JWKS_MAX, LY_EPARSE, why, "JWKS is over 256 KiB");
  ly_jwks_t *jwks = NULL;
  int rc = 0;
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *keys = json_object_get(root, "keys");
  if (!json_is_object(root) || !json_is_array(keys)) {
    rc = LY_EPARSE;
    if (why)
      *why = root ? "JWKS has no \"keys\" array" : "JWKS is not valid JSON";
    goto out;
  }
  size_t n = json_array_size(keys);
  if (n > JWKS_KEYS_MAX) {
    rc = LY_EPARSE;
    if (why)
      *why = "JWKS has more than 64 keys";
    goto out;
  }
  jwks = calloc(1, sizeof(*jwks) + n * sizeof(jwk_t));
  if (!jwks) {
    rc = UV_ENOMEM;
    goto out;
  }
  size_t usable = 0;
  for (size_t i = 0; i < n; i++) {
    jwk_t *k = &jwks->keys[jwks->count];
    rc = parse_jwk(json_array_get(keys, i), k, why);
    if (rc < 0)
      goto out;
    if (rc == 1) {
      jwks->count++;
      usable += k->unusable == NULL;
    }
  }
  rc = 0;
  if (usable == 0) {
    rc = LY_EPARSE;
    if (why)
      *why = "JWKS has no usable RS256 or ES256 key";
    goto out;
  }
  *out = jwks;
  jwks = NULL;
out:
  free(jwks);
  json_decref(root);
  return rc;
}

void ly_jwks_free(ly_jwks_t *jwks) {
  free(jwks);
}

/* ---- verification -------------------------------------------------------- */

static int is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Picks the key for a token: by kid and type, or, when the token names no
 * kid, the one usable key of the type. */
static int select_key(const ly_jwks_t *jwks, enum key_type type,
                      const char *kid, const jwk_t **out, const char **why) {
  const jwk_t *found = NULL;
  int kid_seen = 0;
  size_t candidates = 0;
  for (size_t i = 0; i < jwks->count; i++) {
    const jwk_t *k = &jwks->keys[i];
    if (kid) {
      if (!k->has_kid || strcmp(k->kid, kid) != 0)
        continue;
      kid_seen = 1;
      if (k->type == type && !found)
        found = k;
    } else if (k->type == type && !k->unusable) {
      found = k;
      candidates++;
    }
  }
  if (kid) {
    LY_ENSURE_WHY(kid_seen, LY_ETOKEN, why, "unknown key id");
    LY_ENSURE_WHY(found, LY_ETOKEN, why, "algorithm does not match key");
  } else {
    LY_ENSURE_WHY(candidates > 0, LY_ETOKEN, why,
                  "no key for the token's algorithm");
    LY_ENSURE_WHY(candidates == 1, LY_ETOKEN, why,
                  "token names no key id and several keys match");
  }
  LY_ENSURE_WHY(!found->unusable, LY_ETOKEN, why, found->unusable);
  *out = found;
  return 0;
}

/* 0 if the signature holds, LY_ETOKEN if not, another code if the check
 * itself could not run. */
static int verify_rs256(const jwk_t *k, const unsigned char hash[32],
                        const unsigned char *sig, size_t sig_len) {
  /* RFC 8017 8.2.2: the signature is exactly as long as the modulus */
  if (sig_len != k->n_len)
    return LY_ETOKEN;
  unsigned char buf[RSA_MAX_BYTES];
  memcpy(buf, sig, sig_len);
  RsaKey *key = malloc(sizeof(*key));
  if (!key)
    return UV_ENOMEM;
  int rc = LY_ECRYPTO;
  if (wc_InitRsaKey(key, NULL) != 0)
    goto out_free;
  if (wc_RsaPublicKeyDecodeRaw(k->n, (word32)k->n_len, k->e, (word32)k->e_len,
                               key) != 0)
    goto out;
  byte *plain = NULL;
  int plain_len = wc_RsaSSL_VerifyInline(buf, (word32)sig_len, &plain, key);
  size_t info = sizeof(sha256_digest_info);
  rc = plain_len == (int)(info + 32) && plain &&
               !memcmp(plain, sha256_digest_info, info) &&
               !memcmp(plain + info, hash, 32)
           ? 0
           : LY_ETOKEN;
out:
  wc_FreeRsaKey(key);
out_free:
  free(key);
  return rc;
}

static int verify_es256(const jwk_t *k, const unsigned char hash[32],
                        const unsigned char *sig, size_t sig_len) {
  /* RFC 7518 3.4: R || S, each 32 bytes, not DER */
  if (sig_len != 2 * P256_BYTES)
    return LY_ETOKEN;
  /* R and S are zero-padded to 32 bytes, a DER INTEGER is minimal, and
   * wolfCrypt's decoder refuses any other. wc_ecc_rs_raw_to_sig (5.5.4,
   * ASN template) keeps the zeros: about one signature in 256 would
   * fail. Zero is never a valid R or S. */
  size_t rl = P256_BYTES, sl = P256_BYTES;
  const unsigned char *r = skip_zeros(sig, &rl);
  const unsigned char *s = skip_zeros(sig + P256_BYTES, &sl);
  if (rl == 0 || sl == 0)
    return LY_ETOKEN;
  byte der[2 * (P256_BYTES + 3) + 4];
  word32 der_len = sizeof(der);
  if (wc_ecc_rs_raw_to_sig(r, (word32)rl, s, (word32)sl, der, &der_len) != 0)
    return LY_ETOKEN;
  ecc_key *key = malloc(sizeof(*key));
  if (!key)
    return UV_ENOMEM;
  int rc = LY_ECRYPTO;
  if (wc_ecc_init(key) != 0)
    goto out_free;
  if (wc_ecc_import_unsigned(key, k->x, k->y, NULL, ECC_SECP256R1) != 0)
    goto out;
  int valid = 0;
  /* r and s outside [1, n-1] fail here, inside wolfCrypt's range check */
  rc =
      wc_ecc_verify_hash(der, der_len, hash, 32, &valid, key) == 0 && valid == 1
          ? 0
          : LY_ETOKEN;
out:
  wc_ecc_free(key);
out_free:
  free(key);
  return rc;
}

/* A NumericDate (RFC 7519 2): integer or fractional seconds. */
static int numeric_date(json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0 || i > NUMERIC_DATE_MAX)
      return -1;
    *out = (int64_t)i;
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= 0 && d <= (double)NUMERIC_DATE_MAX))
      return -1;
    *out = (int64_t)d;
    return 0;
  }
  return -1;
}

static int audience_ok(json_t *aud, const char *audience) {
  if (json_is_string(aud))
    return !strcmp(json_string_value(aud), audience);
  if (!json_is_array(aud))
    return 0;
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) {
    if (json_is_string(v) && !strcmp(json_string_value(v), audience))
      return 1;
  }
  return 0;
}

/* Kubernetes names: a namespace is a DNS-1123 label, a service account a
 * DNS-1123 subdomain. Checking them here keeps '/' and ':' out of the
 * SPIFFE ID built from them. */
static int k8s_name_ok(const char *s, size_t len, size_t max, int dots) {
  if (len == 0 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    int edge = i == 0 || i == len - 1;
    if (!alnum && (edge || !(c == '-' || (dots && c == '.'))))
      return 0;
  }
  return 1;
}

static int set_identity(const char *ns, size_t ns_len, const char *sa,
                        size_t sa_len, ly_k8s_identity_t *out,
                        const char **why) {
  LY_ENSURE_WHY(k8s_name_ok(ns, ns_len, 63, 0) &&
                    k8s_name_ok(sa, sa_len, 253, 1),
                LY_ETOKEN, why, "invalid namespace or service account name");
  memcpy(out->namespace_, ns, ns_len);
  out->namespace_[ns_len] = '\0';
  memcpy(out->service_account, sa, sa_len);
  out->service_account[sa_len] = '\0';
  return 0;
}

#define SUB_PREFIX "system:serviceaccount:"

static int identity_from_claims(json_t *claims, ly_k8s_identity_t *out,
                                const char **why) {
  json_t *sub = json_object_get(claims, "sub");
  json_t *k8s = json_object_get(claims, "kubernetes.io");
  const char *s = json_is_string(sub) ? json_string_value(sub) : NULL;
  size_t plen = sizeof(SUB_PREFIX) - 1;

  if (k8s) {
    json_t *ns = json_object_get(k8s, "namespace");
    json_t *sa =
        json_object_get(json_object_get(k8s, "serviceaccount"), "name");
    LY_ENSURE_WHY(json_is_string(ns) && json_is_string(sa), LY_ETOKEN, why,
                  "malformed kubernetes.io claim");
    LY_GUARD(set_identity(json_string_value(ns), json_string_length(ns),
                          json_string_value(sa), json_string_length(sa), out,
                          why));
    /* Both come from the same signer; if they disagree something is off,
     * and guessing which one to trust is worse than refusing. */
    if (sub) {
      LY_ENSURE_WHY(s && !strncmp(s, SUB_PREFIX, plen), LY_ETOKEN, why,
                    "sub does not match kubernetes.io claim");
      const char *rest = s + plen;
      size_t ns_len = strlen(out->namespace_);
      LY_ENSURE_WHY(!strncmp(rest, out->namespace_, ns_len) &&
                        rest[ns_len] == ':' &&
                        !strcmp(rest + ns_len + 1, out->service_account),
                    LY_ETOKEN, why, "sub does not match kubernetes.io claim");
    }
    return 0;
  }

  LY_ENSURE_WHY(s && !strncmp(s, SUB_PREFIX, plen), LY_ETOKEN, why,
                "missing kubernetes.io claims");
  const char *ns = s + plen;
  const char *colon = strchr(ns, ':');
  LY_ENSURE_WHY(colon, LY_ETOKEN, why,
                "invalid namespace or service account name");
  return set_identity(ns, (size_t)(colon - ns), colon + 1, strlen(colon + 1),
                      out, why);
}

/* Decodes one base64url part and parses it as a JSON object. */
static json_t *decode_json(const char *part, size_t len) {
  json_t *obj = NULL;
  unsigned char *buf = malloc(len ? len : 1);
  if (!buf)
    return NULL;
  size_t n = 0;
  if (len > 0 && ly_b64url_decode(part, len, buf, len, &n) == 0) {
    json_error_t jerr;
    obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
    if (obj && !json_is_object(obj)) {
      json_decref(obj);
      obj = NULL;
    }
  }
  free(buf);
  return obj;
}

static int check_claims(json_t *claims, const char *issuer,
                        const char *audience, int64_t now,
                        ly_k8s_identity_t *out, const char **why) {
  json_t *iss = json_object_get(claims, "iss");
  LY_ENSURE_WHY(json_is_string(iss) && !strcmp(json_string_value(iss), issuer),
                LY_ETOKEN, why, "wrong issuer");
  LY_ENSURE_WHY(audience_ok(json_object_get(claims, "aud"), audience),
                LY_ETOKEN, why, "wrong audience");

  int64_t exp, nbf;
  json_t *exp_v = json_object_get(claims, "exp");
  LY_ENSURE_WHY(exp_v, LY_ETOKEN, why, "token has no expiry");
  LY_ENSURE_WHY(numeric_date(exp_v, &exp) == 0, LY_ETOKEN, why,
                "malformed exp claim");
  LY_ENSURE_WHY(now < exp + LEEWAY, LY_EEXPIRED, why, "token expired");
  json_t *nbf_v = json_object_get(claims, "nbf");
  if (nbf_v) {
    LY_ENSURE_WHY(numeric_date(nbf_v, &nbf) == 0, LY_ETOKEN, why,
                  "malformed nbf claim");
    LY_ENSURE_WHY(nbf - LEEWAY <= now, LY_ETOKEN, why, "token not yet valid");
  }
  return identity_from_claims(claims, out, why);
}

int ly_jwt_verify_k8s(const ly_jwks_t *jwks, const char *jwt,
                      const char *issuer, const char *audience, int64_t now,
                      ly_k8s_identity_t *out, const char **why) {
  LY_ENSURE_WHY(jwks && jwt && issuer && audience && out, LY_ETOKEN, why,
                malformed);
  size_t len = strnlen(jwt, JWT_MAX + 1);
  LY_ENSURE_WHY(len <= JWT_MAX, LY_ETOKEN, why, "token is over 16 KiB");

  /* header.payload.signature, nothing but base64url between the dots;
   * padding is not part of the compact serialization */
  const char *dots[2];
  size_t ndots = 0;
  for (size_t i = 0; i < len; i++) {
    if (jwt[i] == '.') {
      LY_ENSURE_WHY(ndots < 2, LY_ETOKEN, why, malformed);
      dots[ndots++] = jwt + i;
    } else {
      LY_ENSURE_WHY(is_b64url_char(jwt[i]), LY_ETOKEN, why, malformed);
    }
  }
  /* the signature may be empty here so that "none" is named as such */
  LY_ENSURE_WHY(ndots == 2 && dots[0] > jwt && dots[1] > dots[0] + 1, LY_ETOKEN,
                why, malformed);
  const char *sig_b64 = dots[1] + 1;
  size_t sig_b64_len = (size_t)(jwt + len - sig_b64);

  int rc = LY_ETOKEN;
  const char *reason = malformed;
  json_t *header = NULL, *claims = NULL;
  unsigned char sig[RSA_MAX_BYTES];
  size_t sig_len = 0;

  header = decode_json(jwt, (size_t)(dots[0] - jwt));
  if (!header)
    goto out;
  json_t *alg = json_object_get(header, "alg");
  if (!json_is_string(alg))
    goto out;
  enum key_type type;
  if (!strcmp(json_string_value(alg), "RS256")) {
    type = KEY_RSA;
  } else if (!strcmp(json_string_value(alg), "ES256")) {
    type = KEY_EC;
  } else {
    reason = "unsupported algorithm";
    goto out;
  }
  /* Key-carrying headers (jwk, jku, x5u, x5c) are ignored: only the
   * configured JWKS is trusted. RFC 7515 4.1.11: extensions we do not
   * understand must be refused. */
  if (json_object_get(header, "crit")) {
    reason = "unsupported critical header";
    goto out;
  }
  json_t *kid = json_object_get(header, "kid");
  if (kid && !json_is_string(kid))
    goto out;
  const jwk_t *key = NULL;
  rc = select_key(jwks, type, kid ? json_string_value(kid) : NULL, &key,
                  &reason);
  if (rc < 0)
    goto out;

  rc = LY_ETOKEN;
  reason = malformed;
  int drc = sig_b64_len == 0 ? LY_EPARSE
                             : ly_b64url_decode(sig_b64, sig_b64_len, sig,
                                                sizeof(sig), &sig_len);
  if (drc < 0) {
    /* longer than any signature we check: well-formed, but never valid */
    if (drc == LY_ETOO_BIG)
      reason = "bad signature";
    goto out;
  }
  unsigned char hash[WC_SHA256_DIGEST_SIZE];
  if (wc_Sha256Hash((const byte *)jwt, (word32)(dots[1] - jwt), hash) != 0) {
    rc = LY_ECRYPTO;
    reason = "cryptographic operation failed";
    goto out;
  }
  rc = type == KEY_RSA ? verify_rs256(key, hash, sig, sig_len)
                       : verify_es256(key, hash, sig, sig_len);
  if (rc < 0) {
    reason = rc == LY_ETOKEN ? "bad signature" : ly_strerror(rc);
    goto out;
  }

  /* only now is the payload the signer's word */
  rc = LY_ETOKEN;
  claims = decode_json(dots[0] + 1, (size_t)(dots[1] - dots[0] - 1));
  if (!claims)
    goto out;
  rc = check_claims(claims, issuer, audience, now, out, &reason);
out:
  if (rc < 0) {
    /* no half-filled identity for a caller that ignores the code */
    memset(out, 0, sizeof(*out));
    if (why)
      *why = reason;
  }
  json_decref(header);
  json_decref(claims);
  return rc;
}
