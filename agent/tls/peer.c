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

#include "lanyard/tls_conn.h"
#include "lanyard/x509.h"

#include <stdio.h>
#include <time.h>
#include <string.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

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

static ly_reason_t reason_of_cert_error(int err) {
  switch (err) {
  case ASN_AFTER_DATE_E:
  case ASN_BEFORE_DATE_E:
    return LY_REASON_EXPIRED;
  case ASN_NO_SIGNER_E:
  case ASN_SELF_SIGNED_E:
    return LY_REASON_UNKNOWN_CA;
  default:
    return LY_REASON_BAD_IDENTITY;
  }
}

/* Lanyard's verifier starts each reason with its closed reason word. */
static ly_reason_t reason_of_why(const char *why) {
  static const struct {
    const char *prefix;
    ly_reason_t reason;
  } map[] = {
      {"expired", LY_REASON_EXPIRED},
      {"unknown_ca", LY_REASON_UNKNOWN_CA},
      {"bad_identity", LY_REASON_BAD_IDENTITY},
  };
  for (size_t i = 0; why && i < sizeof(map) / sizeof(map[0]); i++)
    if (strncmp(why, map[i].prefix, strlen(map[i].prefix)) == 0)
      return map[i].reason;
  return LY_REASON_BAD_IDENTITY;
}

static int refuse(ly_peer_check_t *pc, ly_reason_t r, const char *detail) {
  pc->reason = r;
  snprintf(pc->detail, sizeof(pc->detail), "%s", detail);
  return 0;
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
  if (!preverify) {
    char text[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)store->error, text, sizeof(text));
    return refuse(pc, reason_of_cert_error(store->error), text);
  }
  if (store->error_depth != 0 || store->totalCerts < 1)
    return 1; /* the whole chain is checked once, at the leaf */
  ly_cert_info_t info;
  const char *why = NULL;
  ly_chain_t chain = {0};
  int rc = 0;
  for (int i = 0; rc == 0 && i < store->totalCerts; i++)
    rc = ly_chain_push(&chain, store->certs[i].buffer, store->certs[i].length);
  if (rc == 0)
    rc = ly_svid_verify(&chain, pc->roots, (int64_t)time(NULL),
                        pc->trust_domain, &info, &why);
  ly_chain_free(&chain);
  if (rc != 0)
    return refuse(pc, reason_of_why(why), why ? why : "unreadable chain");
  snprintf(pc->peer_id, sizeof(pc->peer_id), "%s", info.spiffe_id);
  pc->peer_not_after = info.not_after;
  if (pc->expect && strcmp(pc->expect, info.spiffe_id) != 0)
    return refuse(pc, LY_REASON_BAD_IDENTITY,
                  "the server is not the expected identity");
  if (!allowed(pc, info.spiffe_id))
    return refuse(pc, LY_REASON_NOT_AUTHORIZED,
                  "the client's identity is not in the allow list");
  return 1;
}

ly_reason_t ly_peer_reason(const ly_peer_check_t *pc, int ssl_error,
                           int not_tls) {
  if (not_tls)
    return LY_REASON_PLAINTEXT_REJECTED;
  if (pc->reason != LY_REASON_NONE)
    return pc->reason;
  switch (ssl_error) {
  case NO_PEER_CERT:
    return LY_REASON_NO_PEER_CERT;
  case ASN_AFTER_DATE_E:
  case ASN_BEFORE_DATE_E:
    return LY_REASON_EXPIRED;
  case ASN_NO_SIGNER_E:
    return LY_REASON_UNKNOWN_CA;
  default:
    return LY_REASON_PROTOCOL;
  }
}

ly_reason_t ly_peer_reason_of_alert(int alert, const char **name) {
  static const struct {
    int alert;
    const char *name;
    ly_reason_t reason;
  } map[] = {
      {bad_certificate, "bad_certificate", LY_REASON_NOT_AUTHORIZED},
      {access_denied, "access_denied", LY_REASON_NOT_AUTHORIZED},
      {certificate_expired, "certificate_expired", LY_REASON_EXPIRED},
      {unknown_ca, "unknown_ca", LY_REASON_UNKNOWN_CA},
      {certificate_required, "certificate_required", LY_REASON_NO_PEER_CERT},
      {certificate_unknown, "certificate_unknown", LY_REASON_BAD_IDENTITY},
      {unsupported_certificate, "unsupported_certificate",
       LY_REASON_BAD_IDENTITY},
      {certificate_revoked, "certificate_revoked", LY_REASON_BAD_IDENTITY},
      {handshake_failure, "handshake_failure", LY_REASON_PROTOCOL},
  };
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (map[i].alert == alert) {
      *name = map[i].name;
      return map[i].reason;
    }
  *name = "another alert";
  return LY_REASON_PROTOCOL;
}
