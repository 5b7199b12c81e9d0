/* Kubernetes service-account JWTs against a fixed JWKS (one EC P-256 and
 * one RSA key; corpus/fuzz_jwt/jwks.json, whose private keys signed the
 * seed tokens), and the input itself parsed as a JWKS document. */
#include "lanyard/attest.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_json[] =
    "{\"keys\":[{\"kty\":\"EC\",\"use\":\"sig\",\"alg\":\"ES256\",\"crv\":\"P-"
    "256\",\"x\":\"Yh"
    "TgoVp-yORXIdpcPq1g514WCmE5_F28kJ7hDKSKaPM\",\"y\":\"SBKJ7hnCS8_a5SqYK6dk"
    "OPzbBPHG6gTwatokOiNloaU\",\"kid\":\"ec1\"},{\"kty\":\"RSA\",\"use\":"
    "\"sig\",\"alg\""
    ":\"RS256\",\"n\":\"p0GVqdfgCOBZWOtfVHvGgiMY9wvuH1vKwxHgOjs_LjOheDsTGMInWH"
    "vVlU14nzchB2dbxoyXdHLluR1Aaw2v9dpO-EZgzc4nwN-gXe97Mb0Ce5NXkFrv-c2htp"
    "UkDmVNotdYYM2mirGLwJM8nR6CVIOyhzPK1moeQDUaOTGoZ6b2dXfNTi6wLH752Ug-Fl"
    "-mEndOwQ43_U1H42wFwQAr1pZDRM8P7cGug-ccuaM6PgXa3i54E1YBfh5vJ85IdgKPiO"
    "tWPenON392auNocm667WFaUm9MlM5xyWa6xLZxim39tyuNQduWBc8sV9yUaJU0mGMdq7"
    "MarVF7mWQymi7z9Q\",\"e\":\"AQAB\",\"kid\":\"rsa1\"}]}";

#define ISSUER "https://kubernetes.default.svc.cluster.local"
#define AUDIENCE "lanyard-ca"
#define NOW 1700000060 /* the seeds were signed at 1700000000 */

static ly_jwks_t *jwks;

/* The JWKS lives as long as the process (a global, so LeakSanitizer does
 * not count it). */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *why = NULL;
  wolfSSL_Init();
  if (ly_jwks_parse(jwks_json, strlen(jwks_json), &jwks, &why) != 0) {
    fprintf(stderr, "fuzz_jwt: the fixed JWKS does not parse: %s\n",
            why ? why : "?");
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ly_k8s_identity_t id;
  const char *why = NULL;
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ly_jwt_verify_k8s(jwks, text, ISSUER, AUDIENCE, NOW, &id, &why);
  ly_jwks_t *parsed = NULL;
  if (ly_jwks_parse(text, size, &parsed, &why) == 0)
    ly_jwks_free(parsed);
  free(text);
  return 0;
}
