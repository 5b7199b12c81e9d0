/* SPIFFE peer verification inside the TLS handshake, so a refused peer
 * gets a TLS alert (bad_certificate) rather than a silent close, and the
 * reason is known precisely.
 *
 * When the callback sees the leaf, wolfSSL has checked the chain; the
 * peer's chain is then verified once more by Lanyard's own verifier
 * (ly_svid_verify: name constraints, key identifiers, critical extensions
 * and the X.509-SVID rules), the same code `lanyard svid verify` runs, so
 * what an operator checks offline is what the data path enforces. It
 * costs a second signature check per certificate on full handshakes only;
 * resumed sessions (most, between agents) skip certificates entirely. */
#include "lanyard/peer.h"

#include "lanyard/cause.h"
#include "lanyard/tls_conn.h"
#include "lanyard/x509.h"

#include <stdio.h>
#include <time.h>
#include <string.h>

const char *ly_reason_name(ly_reason_t r) {
  switch (r) {
#define XX(name, text)                                                         \
  case LY_REASON_##name:                                                       \
    return text;
    LY_REASON_MAP(XX)
#undef XX
  default:
    return "protocol";
  }
}

void ly_peer_check_attach(ly_tls_conn_t *c, ly_peer_check_t *pc) {
  c->peer = pc;
  wolfSSL_SetCertCbCtx(c->ssl, pc);
}

static int refuse(ly_peer_check_t *pc, ly_cause_t c) {
  pc->reason = c.reason;
  snprintf(pc->cause, sizeof(pc->cause), "%s", c.cause);
  return 0;
}

/* Lanyard's verifier over the peer's chain: 0, or the verdict's words in
 * pc (refused). */
static int verify_chain(ly_peer_check_t *pc, WOLFSSL_X509_STORE_CTX *store,
                        ly_cert_info_t *info) {
  const char *why = NULL;
  ly_chain_t chain = {0};
  int rc = 0;
  for (int i = 0; rc == 0 && i < store->totalCerts; i++)
    rc = ly_chain_push(&chain, store->certs[i].buffer, store->certs[i].length);
  if (rc == 0)
    rc = ly_svid_verify(&chain, pc->roots, (int64_t)time(NULL),
                        pc->trust_domain, info, &why);
  ly_chain_free(&chain);
  if (rc != 0)
    refuse(pc, ly_cause_of_verdict(why));
  return rc;
}

static int allowed(const ly_peer_check_t *pc, const char *id) {
  if (!pc->allow)
    return 1;
  for (size_t i = 0; i < pc->nallow; i++)
    if (ly_spiffe_pattern_match(pc->allow[i], id))
      return 1;
  return 0;
}

int ly_peer_admits(const ly_peer_check_t *pc, const char *id) {
  return (!pc->expect || strcmp(pc->expect, id) == 0) && allowed(pc, id);
}

int ly_peer_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store) {
  ly_peer_check_t *pc = store->userCtx;
  if (!pc) /* not a data-path connection: keep wolfSSL's verdict */
    return preverify;
  ly_cert_info_t info;
  if (!preverify) {
    /* wolfSSL's words for a chain it refuses are its own ("ASN CA path
     * length larger than signer"); Lanyard's verifier says the same as
     * `lanyard svid verify` ("leaf is a CA"). Its verdict, then, or the
     * table's words for wolfSSL's code if it finds nothing wrong. A chain
     * that wolfSSL already refused costs the verifier's bounded budget
     * (x509_verify.c) at most, once per full handshake. */
    pc->tls_error = store->error;
    if (store->totalCerts < 1 || verify_chain(pc, store, &info) == 0)
      refuse(pc, ly_cause_of_tls_error(store->error, 0));
    return 0;
  }
  if (store->error_depth != 0 || store->totalCerts < 1)
    return 1; /* the whole chain is checked once, at the leaf */
  if (verify_chain(pc, store, &info) != 0)
    return 0;
  snprintf(pc->peer_id, sizeof(pc->peer_id), "%s", info.spiffe_id);
  pc->peer_not_after = info.not_after;
  if (pc->expect && strcmp(pc->expect, info.spiffe_id) != 0) {
    snprintf(pc->cause, sizeof(pc->cause),
             "the server's identity is not the expected %.200s", pc->expect);
    pc->reason = LY_REASON_BAD_IDENTITY;
    return 0;
  }
  if (!allowed(pc, info.spiffe_id))
    return refuse(pc, (ly_cause_t){LY_REASON_NOT_AUTHORIZED,
                                   "the client's identity is not in the "
                                   "allow list"});
  return 1;
}
