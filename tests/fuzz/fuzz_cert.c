/* Certificates: the input as PEM text (bundles, peer chains in files) and
 * as DER (what a TLS peer sends): ly_cert_info on the whole, then the DER
 * certificates it holds back to back verified as a chain, with the chain
 * as its own roots so that a path can be found. */
#include "lanyard/x509.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  wolfSSL_Init();
  return 0;
}

/* The length of the DER SEQUENCE at p (tag, length and content), or 0. */
static size_t der_seq_len(const uint8_t *p, size_t n) {
  if (n < 2 || p[0] != 0x30)
    return 0;
  if (p[1] < 0x80)
    return 2 + (size_t)p[1] <= n ? 2 + (size_t)p[1] : 0;
  size_t nlen = p[1] & 0x7f, len = 0;
  if (nlen == 0 || nlen > 3 || 2 + nlen > n)
    return 0;
  for (size_t i = 0; i < nlen; i++)
    len = len << 8 | p[2 + i];
  return 2 + nlen + len <= n ? 2 + nlen + len : 0;
}

/* Verified at a time inside the leaf's window (when it parses), so that
 * the dates do not stop every path before the rest is checked. */
static void verify(const ly_chain_t *chain) {
  ly_cert_info_t info, leaf;
  const char *why = NULL;
  int64_t at = 1700000000;
  if (chain->n == 0)
    return;
  if (ly_cert_info(chain->certs[0].der, chain->certs[0].len, &info) == 0)
    at = info.not_before + 1;
  ly_chain_verify(chain, chain, at, &leaf, &why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *why = NULL;
  ly_cert_info_t info;

  /* PEM: the text NUL-terminated, as when read from a file. */
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ly_chain_t pem = {0};
  if (ly_chain_from_pem(text, size, &pem, &why) == 0)
    verify(&pem);
  ly_chain_free(&pem);
  free(text);

  /* DER */
  ly_cert_info(data, size, &info);
  ly_chain_t der = {0};
  size_t off = 0, n;
  while (off < size && der.n < 8 &&
         (n = der_seq_len(data + off, size - off)) > 0) {
    if (ly_chain_push(&der, data + off, n) != 0)
      break;
    off += n;
  }
  verify(&der);
  ly_chain_free(&der);
  return 0;
}
