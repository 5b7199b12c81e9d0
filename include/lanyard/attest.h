/* Credentials the CA accepts for a first SVID: join tokens it minted, and
 * Kubernetes projected service-account tokens (JWTs).
 *
 * Both checks are pure functions of their inputs and the time given, so
 * they are tested without a clock or a cluster. Nothing here logs a token
 * or a secret; reasons are static strings safe to log and to return.
 * wolfCrypt must be initialised first (wolfSSL_Init or wolfCrypt_Init).
 */
#ifndef LANYARD_ATTEST_H
#define LANYARD_ATTEST_H

#include "lanyard/spiffe.h"

#include <stddef.h>
#include <stdint.h>

/* ---- join tokens ------------------------------------------------------- */

/* The CA's token secret: 32 random bytes, stored base64url in one line. */
#define LY_TOKEN_SECRET_LEN 32

/* A join token binds a SPIFFE ID pattern (an exact ID, or "<id>/*" for
 * every ID below it) to an expiry, under an HMAC-SHA256 by the secret:
 *
 *   lyt1.<base64url(pattern)>.<expiry unix seconds>.<base64url(mac)>
 *
 * where mac = HMAC-SHA256(secret, everything before the last '.').
 * Tokens are not single-use (the CA keeps no state, so replicas can share
 * the secret); keep their TTL short. */
/* The pattern is validated (LY_ESPIFFE_ID), expires_at must be >= 0
 * (UV_EINVAL); *token is malloc'd, NUL-terminated, the caller's to free. */
int ly_token_mint(const unsigned char secret[LY_TOKEN_SECRET_LEN],
                  const char *pattern, int64_t expires_at, char **token);

/* Verifies the MAC (constant-time) and the expiry against `now` (valid
 * while now < expiry); on success copies the pattern into pattern_out
 * (LY_SPIFFE_ID_MAX + 3 bytes). LY_ETOKEN ("malformed token", "bad token
 * signature") or LY_EEXPIRED ("token expired") with *why. Only the exact
 * spelling above is accepted: no padding, no leading zeros, nothing over
 * 4 KiB. The pattern is checked again after the MAC. */
int ly_token_verify(const unsigned char secret[LY_TOKEN_SECRET_LEN],
                    const char *token, int64_t now, char *pattern_out,
                    const char **why);

/* Reads/writes the secret file (one base64url line; trailing newline
 * allowed). Generation uses wolfCrypt's RNG (LY_ECRYPTO if it fails);
 * writing is ly_b64url_encode plus "\n". Parsing returns LY_EPARSE for
 * anything but 43 unpadded base64url characters. */
int ly_token_secret_generate(unsigned char secret[LY_TOKEN_SECRET_LEN]);
int ly_token_secret_parse(const char *text, size_t len,
                          unsigned char secret[LY_TOKEN_SECRET_LEN]);

/* ---- Kubernetes service-account JWTs ------------------------------------ */

typedef struct ly_jwks_s ly_jwks_t;

/* Parses a JWKS document ({"keys": [...]}) holding RSA ("kty":"RSA", n, e)
 * and EC P-256 ("kty":"EC","crv":"P-256", x, y) keys with their "kid".
 * Keys of other types are skipped, as are keys with a "use" other than
 * "sig" or an "alg" other than RS256/ES256; a JWKS with no usable key is
 * an error. RSA keys under 2048 or over 4096 bits are kept but refused
 * when a token names them, with that reason. A broken key of a supported
 * type (bad base64, an EC point off the curve) fails the whole document.
 * At most 256 KiB and 64 keys. LY_EPARSE with *why; *out is the caller's
 * to free with ly_jwks_free (which accepts NULL).
 *
 * A parsed JWKS is immutable: any number of threads may verify with it
 * at once; swap in a new one to rotate keys. */
int ly_jwks_parse(const char *json, size_t len, ly_jwks_t **out,
                  const char **why);
void ly_jwks_free(ly_jwks_t *jwks);

typedef struct {
  char namespace_[254];      /* kubernetes.io.namespace */
  char service_account[254]; /* kubernetes.io.serviceaccount.name */
} ly_k8s_identity_t;

/* Verifies a compact JWS: alg RS256 or ES256 only (none, HS*, and others
 * are refused); the key by "kid" (or the only key of a matching type when
 * the token names none); the signature; "iss" == issuer; "aud" (string or
 * array) contains audience; "exp" > now, "nbf" (if present) <= now, both
 * with 30 s of leeway; the namespace and service-account name from the
 * "kubernetes.io" claim (falling back to "sub" =
 * "system:serviceaccount:<ns>:<name>"). Tokens over 16 KiB are refused.
 * LY_ETOKEN or LY_EEXPIRED with *why ("wrong audience", "bad signature",
 * ...).
 *
 * The key's type must match alg ("algorithm does not match key"); headers
 * carrying keys (jwk, jku, x5c) are ignored and "crit" is refused. Claims
 * are read only after the signature holds. "exp" is required. When both
 * "kubernetes.io" and "sub" are present they must agree. The namespace
 * must be a DNS-1123 label and the service account a DNS-1123 subdomain,
 * so neither can carry '/' into a SPIFFE ID. *out is zeroed on failure. */
int ly_jwt_verify_k8s(const ly_jwks_t *jwks, const char *jwt,
                      const char *issuer, const char *audience, int64_t now,
                      ly_k8s_identity_t *out, const char **why);

#endif
