/* Join tokens as a Sign request carries them, against a fixed secret
 * (bytes 0..31; the seeds are minted with it by mkseeds.py). */
#include "lanyard/attest.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char secret[LY_TOKEN_SECRET_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  wolfSSL_Init();
  for (int i = 0; i < LY_TOKEN_SECRET_LEN; i++)
    secret[i] = (unsigned char)i;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char pattern[LY_SPIFFE_ID_MAX + 3];
  const char *why = NULL;
  char *token = malloc(size + 1);
  if (!token)
    return 0;
  memcpy(token, data, size);
  token[size] = '\0';
  ly_token_verify(secret, token, 1700000000, pattern, &why);
  free(token);
  return 0;
}
