/* Why a TLS connection failed, in words a person can act on.
 *
 * One table (cause.c) maps what TLS and Lanyard's verifier report to a
 * reason of the closed set (peer.h: the metrics label) and a cause:
 *   - wolfSSL's error codes (some read differently on the client and on
 *     the server side: a peer closing during our handshake means another
 *     thing to each);
 *   - the fatal alerts a peer sends;
 *   - the verdicts of Lanyard's own verifier ("unknown_ca: ..."), the
 *     words `lanyard svid verify` prints.
 * Every log line about a refused or failed connection (data path, RPC
 * client and server) and `lanyard svid verify` take their words from
 * here, so the same failure reads the same everywhere; the raw wolfSSL
 * code goes beside them as tls_error= for support.
 */
#ifndef LANYARD_CAUSE_H
#define LANYARD_CAUSE_H

#include "lanyard/peer.h"

typedef struct {
  ly_reason_t reason;
  const char *cause; /* static words, never NULL */
} ly_cause_t;

/* A wolfSSL error code (wolfSSL_get_error, or a certificate error a
 * verify callback sees), on the client (is_server 0) or the server side.
 * A code the table lacks: protocol, "a TLS error". */
ly_cause_t ly_cause_of_tls_error(int code, int is_server);

/* A fatal alert the peer sent; *name (if name is not NULL) gets the
 * alert's name, for logs. An alert the table lacks: protocol. */
ly_cause_t ly_cause_of_alert(int alert, const char **name);

/* A verdict of ly_svid_verify, ly_chain_verify or ly_cert_check_*:
 * "<reason>: <words>" (x509_verify.c keeps that form). The words are a
 * suffix of `why`, so they live as long as it. Unknown prefix:
 * bad_identity with the whole text. */
ly_cause_t ly_cause_of_verdict(const char *why);

struct ly_tls_conn_s;
/* After a failed handshake on c: plaintext where TLS was due, what the
 * data path's peer check refused (peer.h), the peer's fatal alert, the
 * socket's error, or wolfSSL's error code, in that order. The words may
 * live in c: log them before it is freed. */
ly_cause_t ly_tls_conn_cause(const struct ly_tls_conn_s *c);

#endif
