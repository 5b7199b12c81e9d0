#include "lanyard/tls.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/peer.h"

#include <stdlib.h>
#include <uv.h>
#include <string.h>

static int load_roots(WOLFSSL_CTX *ctx, const ly_chain_t *roots) {
  for (size_t i = 0; i < roots->n; i++)
    if (wolfSSL_CTX_load_verify_buffer(
            ctx, roots->certs[i].der, (long)roots->certs[i].len,
            WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
      return LY_ECERT;
  return 0;
}

static int use_identity(WOLFSSL_CTX *ctx, const ly_chain_t *chain,
                        const ly_key_t *key) {
  char *pem = NULL;
  size_t pem_len = 0;
  ly_der_t kder = {0};
  int rc = ly_chain_to_pem(chain, &pem, &pem_len);
  if (rc != 0)
    goto out;
  rc = LY_ECERT;
  if (wolfSSL_CTX_use_certificate_chain_buffer(
          ctx, (const unsigned char *)pem, (long)pem_len) != WOLFSSL_SUCCESS)
    goto out;
  if ((rc = ly_key_to_der(key, &kder)) != 0)
    goto out;
  rc = wolfSSL_CTX_use_PrivateKey_buffer(ctx, kder.der, (long)kder.len,
                                         WOLFSSL_FILETYPE_ASN1) ==
               WOLFSSL_SUCCESS
           ? 0
           : LY_ECRYPTO;
out:
  free(pem);
  if (kder.der) {
    ly_wipe(kder.der, kder.len);
    free(kder.der);
  }
  return rc;
}

static int capture_cb(int preverify, WOLFSSL_X509_STORE_CTX *store) {
  ly_chain_t *chain = store->userCtx;
  if (!preverify || !chain || store->error_depth != 0)
    return preverify;
  ly_chain_free(chain);
  for (int i = 0; i < store->totalCerts; i++)
    if (ly_chain_push(chain, store->certs[i].buffer, store->certs[i].length) !=
        0)
      return 0;
  return 1;
}

int ly_tls_ctx_new(const ly_tls_ctx_opts_t *opts, WOLFSSL_CTX **out,
                   const char **why) {
  WOLFSSL_CTX *ctx =
      wolfSSL_CTX_new(opts->is_server ? wolfTLSv1_3_server_method()
                                      : wolfTLSv1_3_client_method());
  LY_ENSURE_WHY(ctx != NULL, UV_ENOMEM, why, "out of memory");
  int rc = 0;
  if (opts->chain && opts->chain->n > 0 &&
      (rc = use_identity(ctx, opts->chain, opts->key)) != 0) {
    if (why)
      *why = "certificate chain or key not accepted by TLS";
    goto fail;
  }
  if (opts->roots && (rc = load_roots(ctx, opts->roots)) != 0) {
    if (why)
      *why = "trust bundle not accepted by TLS";
    goto fail;
  }
  int mode = WOLFSSL_VERIFY_PEER;
  if (opts->is_server && opts->require_peer_cert)
    mode |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  wolfSSL_CTX_set_verify(ctx, mode,
                         opts->spiffe_peer          ? ly_peer_verify_cb
                         : opts->capture_peer_chain ? capture_cb
                                                    : NULL);
  /* AES-128-GCM first: with AES-NI it is the fastest AEAD here, and no
   * weaker than the others for a session that lives minutes. */
  if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256:"
                                       "TLS13-AES256-GCM-SHA384:"
                                       "TLS13-CHACHA20-POLY1305-SHA256") !=
      WOLFSSL_SUCCESS) {
    rc = LY_ETLS;
    if (why)
      *why = "cipher suites not accepted";
    goto fail;
  }
  /* Key exchange groups, most preferred first. The client's key share is
   * for the first (P-256, the group SVID keys use and the fastest here),
   * so a server that follows the client's order answers at once instead
   * of asking for another share (a HelloRetryRequest costs a round
   * trip); secp224r1 and older are obsolete in TLS 1.3 and not offered. */
  int groups[] = {WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1,
                  WOLFSSL_ECC_SECP521R1};
  if (wolfSSL_CTX_set_groups(ctx, groups, 3) != WOLFSSL_SUCCESS) {
    rc = LY_ETLS;
    if (why)
      *why = "key exchange groups not accepted";
    goto fail;
  }
  if (opts->spiffe_peer && opts->is_server && ly_tickets_enable(ctx) != 0) {
    rc = LY_ETLS;
    if (why)
      *why = "session tickets not accepted";
    goto fail;
  }
  *out = ctx;
  return 0;
fail:
  wolfSSL_CTX_free(ctx);
  return rc;
}

int ly_tls_set_alpn(WOLFSSL *ssl, const char *proto) {
  return wolfSSL_UseALPN(ssl, (char *)proto, (unsigned)strlen(proto),
                         WOLFSSL_ALPN_FAILED_ON_MISMATCH) == WOLFSSL_SUCCESS
             ? 0
             : LY_ETLS;
}

int ly_tls_offer_alpn(WOLFSSL *ssl, const char *proto) {
  return wolfSSL_UseALPN(ssl, (char *)proto, (unsigned)strlen(proto),
                         WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) == WOLFSSL_SUCCESS
             ? 0
             : LY_ETLS;
}

int ly_tls_alpn_is(WOLFSSL *ssl, const char *proto) {
  char *name = NULL;
  unsigned short len = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl, &name, &len) != WOLFSSL_SUCCESS)
    return 0;
  return len == strlen(proto) && memcmp(name, proto, len) == 0;
}

int ly_tls_peer_leaf(WOLFSSL *ssl, ly_der_t *out) {
  WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
  LY_ENSURE(x != NULL, LY_ENOT_FOUND);
  int len = 0;
  const unsigned char *der = wolfSSL_X509_get_der(x, &len);
  int rc = LY_ECERT;
  if (der && len > 0 && (out->der = malloc((size_t)len)) != NULL) {
    memcpy(out->der, der, (size_t)len);
    out->len = (size_t)len;
    rc = 0;
  }
  wolfSSL_X509_free(x);
  return rc;
}

ly_tls_pair_t *ly_tls_pair_new(WOLFSSL_CTX *server, WOLFSSL_CTX *client,
                               const ly_chain_t *roots) {
  ly_tls_pair_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  for (size_t i = 0; i < roots->n; i++)
    if (ly_chain_push(&p->roots, roots->certs[i].der, roots->certs[i].len)) {
      ly_chain_free(&p->roots);
      free(p);
      return NULL;
    }
  wolfSSL_CTX_up_ref(server);
  wolfSSL_CTX_up_ref(client);
  p->server = server;
  p->client = client;
  p->refs = 1;
  return p;
}

void ly_tls_pair_ref(ly_tls_pair_t *p) {
  __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
}

void ly_tls_pair_unref(ly_tls_pair_t *p) {
  if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  wolfSSL_CTX_free(p->server);
  wolfSSL_CTX_free(p->client);
  ly_chain_free(&p->roots);
  free(p);
}
