/* Who is on the other end of a data-path connection, and why a
 * connection was refused.
 *
 * Every refusal carries one reason from a closed set, used in logs and
 * metrics labels alike:
 *
 *   expired            the peer's certificate is outside its validity
 *   unknown_ca         no path from the peer's chain to our bundle
 *   bad_identity       the peer's leaf breaks the X.509-SVID rules, is in
 *                      another trust domain, or is not the expected ID
 *   no_peer_cert       the peer sent no certificate
 *   not_authorized     a valid SVID whose ID the allow list does not admit
 *   handshake_timeout  the handshake did not finish in time
 *   plaintext_rejected the client sent plaintext where mTLS is required
 *   no_identity        we hold no valid SVID, so we cannot do mTLS
 *   connect_failed     the destination did not accept the connection
 *   protocol           anything else in TLS (bad records, versions, ...)
 */
#ifndef LANYARD_PEER_H
#define LANYARD_PEER_H

#include "lanyard/spiffe.h"
#include "lanyard/x509.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stddef.h>
#include <stdint.h>

#define LY_REASON_MAP(XX)                                                      \
  XX(NONE, "none")                                                             \
  XX(EXPIRED, "expired")                                                       \
  XX(UNKNOWN_CA, "unknown_ca")                                                 \
  XX(BAD_IDENTITY, "bad_identity")                                             \
  XX(NO_PEER_CERT, "no_peer_cert")                                             \
  XX(NOT_AUTHORIZED, "not_authorized")                                         \
  XX(HANDSHAKE_TIMEOUT, "handshake_timeout")                                   \
  XX(PLAINTEXT_REJECTED, "plaintext_rejected")                                 \
  XX(NO_IDENTITY, "no_identity")                                               \
  XX(CONNECT_FAILED, "connect_failed")                                         \
  XX(PROTOCOL, "protocol")

typedef enum {
#define XX(name, _) LY_REASON_##name,
  LY_REASON_MAP(XX)
#undef XX
      LY_REASON__COUNT
} ly_reason_t;

const char *ly_reason_name(ly_reason_t r);

/* What one connection demands of its peer, and what was found. Lives in
 * the connection; attached to its WOLFSSL before the handshake. */
typedef struct {
  const char *trust_domain;
  const ly_chain_t *roots;  /* the bundle of the connection's contexts */
  const char *const *allow; /* ID patterns; NULL: any ID of the domain */
  size_t nallow;
  const char *expect; /* an exact ID the peer must have, or NULL */
  /* results */
  ly_reason_t reason;
  char cause[256]; /* words (cause.h) */
  int tls_error;   /* wolfSSL's certificate error, if it found one */
  char peer_id[LY_SPIFFE_ID_MAX + 1];
  int64_t peer_not_after;
} ly_peer_check_t;

struct ly_tls_conn_s;
/* Before the handshake: the callbacks below find pc through the
 * connection. */
void ly_peer_check_attach(struct ly_tls_conn_s *c, ly_peer_check_t *pc);

/* Would pc accept a peer with this (valid) ID: the expected ID, and in
 * the allow list? 1 or 0. */
int ly_peer_admits(const ly_peer_check_t *pc, const char *id);

/* Session tickets that carry the peer's identity (tickets.c), on a server
 * context. 0 or -1. */
int ly_tickets_enable(WOLFSSL_CTX *ctx);

/* The verify callback that ly_tls_ctx_new installs with spiffe_peer. */
int ly_peer_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

#endif
