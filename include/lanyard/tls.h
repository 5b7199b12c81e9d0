/* TLS contexts for Lanyard's own protocols (TLS 1.3 only) and the peer
 * checks that go with them. */
#ifndef LANYARD_TLS_H
#define LANYARD_TLS_H

#include "lanyard/x509.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* ALPN protocol of the CA's RPC. */
#define LY_ALPN_CA "lanyard-ca/1"
/* ALPN protocol that marks agent-to-agent mTLS: captured outbound
 * connections offer it, and every data-path server selects it when
 * offered, so both ends know the other is an agent. Other TLS peers
 * (curl, nginx, stunnel) negotiate no protocol and are carried all the
 * same. */
#define LY_ALPN_MESH "lanyard/1"

typedef struct {
  int is_server;
  const ly_chain_t *chain; /* our certificate chain, leaf first; may be NULL
                              on a client (no client certificate) */
  const ly_key_t *key;     /* its key */
  const ly_chain_t *roots; /* trust anchors for the peer's chain */
  /* server: 0 = a client certificate is optional but verified if sent;
   * 1 = required. Clients always verify the server. */
  int require_peer_cert;
  /* Check the peer's leaf by the X.509-SVID rules during the handshake,
   * and the ly_peer_check_t attached to each connection (lanyard/peer.h):
   * the data path sets this. */
  int spiffe_peer;
  /* Record the peer's certificates (leaf first) into the ly_chain_t each
   * connection sets with wolfSSL_SetCertCbCtx, once wolfSSL has verified
   * them: the CA re-checks renewals against its bundle at call time. */
  int capture_peer_chain;
} ly_tls_ctx_opts_t;

/* A new context (refcounted by wolfSSL; free with wolfSSL_CTX_free). */
int ly_tls_ctx_new(const ly_tls_ctx_opts_t *opts, WOLFSSL_CTX **out,
                   const char **why);

/* What the data path needs from one identity: a server and a client
 * context and the bundle they trust (the peer check re-verifies chains
 * against it). Refcounted across threads; workers and connections each
 * hold a reference while they use it. */
typedef struct ly_tls_pair_s {
  int refs; /* atomic */
  WOLFSSL_CTX *server, *client;
  ly_chain_t roots;
} ly_tls_pair_t;

/* Takes its own references on the contexts and copies the roots. */
ly_tls_pair_t *ly_tls_pair_new(WOLFSSL_CTX *server, WOLFSSL_CTX *client,
                               const ly_chain_t *roots);
void ly_tls_pair_ref(ly_tls_pair_t *p);
void ly_tls_pair_unref(ly_tls_pair_t *p); /* NULL is fine */

/* Sets ALPN on a connection; a mismatch fails the handshake. */
int ly_tls_set_alpn(WOLFSSL *ssl, const char *proto);
/* Offers or accepts `proto`, carrying on without ALPN on a mismatch. */
int ly_tls_offer_alpn(WOLFSSL *ssl, const char *proto);
/* After the handshake: 1 if `proto` was negotiated. */
int ly_tls_alpn_is(WOLFSSL *ssl, const char *proto);

/* The peer's leaf certificate, once the handshake is done: LY_ENOT_FOUND
 * when the peer sent none. DER is copied into out. */
int ly_tls_peer_leaf(WOLFSSL *ssl, ly_der_t *out);

#endif
