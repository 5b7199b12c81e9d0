/* The CSR check the CA runs on every Sign request's DER. */
#include "lanyard/x509.h"

#include <stddef.h>
#include <stdint.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  wolfSSL_Init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ly_csr_t csr;
  const char *why = NULL;
  ly_csr_check(data, size, &csr, &why);
  return 0;
}
