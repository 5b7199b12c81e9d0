/* The one table from TLS errors, alerts and verifier verdicts to a reason
 * and words. See lanyard/cause.h.
 *
 * The codes are the ones users meet (wolfSSL's error-ssl.h and
 * wolfcrypt/error-crypt.h); the rest read "a TLS error" with the code
 * beside it in the log. Words say what happened from this agent's side
 * ("the peer ...", "our ...") and, where one is likely, why. */
#include "lanyard/cause.h"

#include "lanyard/tls_conn.h"

#include <string.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

typedef enum { CODE, ALERT } kind_t;
/* which side of the handshake an entry speaks for */
enum { ANY, CLIENT, SERVER };

static const struct entry {
  kind_t kind;
  int code; /* a wolfSSL error code, or an alert number */
  int side;
  const char *name; /* an alert's name */
  ly_reason_t reason;
  const char *cause;
} table[] = {
    /* -- the transport */
    {CODE, SOCKET_ERROR_E, CLIENT, NULL, LY_REASON_PROTOCOL,
     "the peer closed the connection during the handshake (it may have no "
     "identity yet, or refused ours)"},
    {CODE, SOCKET_PEER_CLOSED_E, CLIENT, NULL, LY_REASON_PROTOCOL,
     "the peer closed the connection during the handshake (it may have no "
     "identity yet, or refused ours)"},
    {CODE, SOCKET_ERROR_E, SERVER, NULL, LY_REASON_PROTOCOL,
     "the client closed the connection during the handshake (it may not "
     "trust our certificate)"},
    {CODE, SOCKET_PEER_CLOSED_E, SERVER, NULL, LY_REASON_PROTOCOL,
     "the client closed the connection during the handshake (it may not "
     "trust our certificate)"},
    {CODE, FATAL_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer ended the handshake with a fatal alert"},
    /* -- the peer's certificate, as wolfSSL judged it */
    {CODE, NO_PEER_CERT, ANY, NULL, LY_REASON_NO_PEER_CERT,
     "the client sent no certificate (a plain TLS client, or one without "
     "its SVID)"},
    {CODE, ASN_NO_SIGNER_E, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "the peer's certificate chain does not lead to a root in our trust "
     "bundle"},
    {CODE, ASN_SELF_SIGNED_E, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "the peer's certificate is self-signed and not in our trust bundle"},
    {CODE, NOT_CA_ERROR, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "a certificate that signed the peer's is not a CA"},
    {CODE, MAX_CHAIN_ERROR, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "the peer's certificate chain is too long"},
    {CODE, ASN_SIG_CONFIRM_E, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "a signature in the peer's certificate chain does not verify (a root "
     "of the same name but another key?)"},
    {CODE, SIG_VERIFY_E, ANY, NULL, LY_REASON_UNKNOWN_CA,
     "a signature in the peer's certificate chain does not verify"},
    {CODE, ASN_AFTER_DATE_E, ANY, NULL, LY_REASON_EXPIRED,
     "the peer's certificate has expired (are its renewals failing?)"},
    {CODE, ASN_BEFORE_DATE_E, ANY, NULL, LY_REASON_EXPIRED,
     "the peer's certificate is not valid yet (check both clocks)"},
    {CODE, ASN_PATHLEN_SIZE_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's chain is longer than a CA in it allows (is its leaf a "
     "CA?)"},
    {CODE, ASN_PATHLEN_INV_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's chain is longer than a CA in it allows (is its leaf a "
     "CA?)"},
    {CODE, ASN_NAME_INVALID_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate breaks a CA's name constraints"},
    {CODE, ASN_CRIT_EXT_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate has a critical extension we do not know"},
    {CODE, EXTKEYUSE_AUTH_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate is not for this use (its extended key usage "
     "lacks clientAuth or serverAuth)"},
    {CODE, KEYUSE_SIGNATURE_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate lacks the digitalSignature key usage"},
    {CODE, ASN_PARSE_E, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate does not parse"},
    {CODE, VERIFY_CERT_ERROR, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer's certificate was refused"},
    /* -- the handshake itself */
    {CODE, VERSION_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer does not speak TLS 1.3"},
    {CODE, UNSUPPORTED_PROTO_VERSION, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer does not speak TLS 1.3"},
    {CODE, MATCH_SUITE_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "no cipher suite in common with the peer (we offer TLS 1.3 AES-GCM "
     "and ChaCha20-Poly1305)"},
    {CODE, KEY_SHARE_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "no key exchange group in common with the peer (we offer P-256, "
     "P-384, P-521)"},
    {CODE, BAD_KEY_SHARE_DATA, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent a key share that does not decode"},
    {CODE, UNKNOWN_ALPN_PROTOCOL_NAME_E, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer does not speak the expected protocol (ALPN): is it a "
     "Lanyard CA or agent?"},
    {CODE, PARSE_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent something that is not TLS, or a malformed record"},
    {CODE, UNKNOWN_RECORD_TYPE, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent something that is not TLS, or a malformed record"},
    {CODE, BUFFER_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent a malformed handshake message"},
    {CODE, LENGTH_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent a record of an impossible length"},
    {CODE, VERIFY_FINISHED_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "the handshake failed its integrity check (a middlebox changing the "
     "connection, or a broken peer)"},
    {CODE, VERIFY_MAC_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "a record failed its integrity check (data changed in transit)"},
    {CODE, DECRYPT_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "a record failed to decrypt (data changed in transit)"},
    {CODE, AES_GCM_AUTH_E, ANY, NULL, LY_REASON_PROTOCOL,
     "a record failed its integrity check (data changed in transit)"},
    /* ChaCha20-Poly1305's tag check */
    {CODE, MAC_CMP_FAILED_E, ANY, NULL, LY_REASON_PROTOCOL,
     "a record failed its integrity check (data changed in transit)"},
    {CODE, BAD_BINDER, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer's session resumption failed its check (a session ticket of "
     "another key or session)"},
    {CODE, VERIFY_SIGN_ERROR, ANY, NULL, LY_REASON_BAD_IDENTITY,
     "the peer did not prove it holds its certificate's key"},
    {CODE, SANITY_MSG_E, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent handshake messages out of order"},
    {CODE, OUT_OF_ORDER_E, ANY, NULL, LY_REASON_PROTOCOL,
     "the peer sent handshake messages out of order"},
    {CODE, MEMORY_ERROR, ANY, NULL, LY_REASON_PROTOCOL,
     "out of memory during the handshake"},
    /* -- alerts: the peer refused us, and says why (RFC 8446 6.2) */
    {ALERT, bad_certificate, ANY, "bad_certificate", LY_REASON_NOT_AUTHORIZED,
     "the peer refused our certificate (alert bad_certificate): its policy "
     "does not admit our identity"},
    {ALERT, access_denied, ANY, "access_denied", LY_REASON_NOT_AUTHORIZED,
     "the peer refused our identity (alert access_denied)"},
    {ALERT, certificate_expired, ANY, "certificate_expired", LY_REASON_EXPIRED,
     "the peer says our certificate expired (alert certificate_expired): "
     "check our renewals and both clocks"},
    {ALERT, unknown_ca, ANY, "unknown_ca", LY_REASON_UNKNOWN_CA,
     "the peer does not trust our certificate's issuer (alert unknown_ca): "
     "its trust bundle lacks our root"},
    {ALERT, certificate_required, ANY, "certificate_required",
     LY_REASON_NO_PEER_CERT,
     "the peer wanted a client certificate and got none (alert "
     "certificate_required)"},
    {ALERT, certificate_unknown, ANY, "certificate_unknown",
     LY_REASON_BAD_IDENTITY,
     "the peer refused our certificate (alert certificate_unknown)"},
    {ALERT, unsupported_certificate, ANY, "unsupported_certificate",
     LY_REASON_BAD_IDENTITY,
     "the peer cannot use our certificate (alert "
     "unsupported_certificate)"},
    {ALERT, certificate_revoked, ANY, "certificate_revoked",
     LY_REASON_BAD_IDENTITY,
     "the peer says our certificate is revoked (alert "
     "certificate_revoked)"},
    {ALERT, handshake_failure, ANY, "handshake_failure", LY_REASON_PROTOCOL,
     "the peer could not agree on the handshake (alert handshake_failure)"},
    {ALERT, wolfssl_alert_protocol_version, ANY, "protocol_version",
     LY_REASON_PROTOCOL,
     "the peer does not speak TLS 1.3 (alert protocol_version)"},
    {ALERT, no_application_protocol, ANY, "no_application_protocol",
     LY_REASON_PROTOCOL,
     "the peer does not speak the protocol we asked for (alert "
     "no_application_protocol): is it a Lanyard CA?"},
    {ALERT, decrypt_error, ANY, "decrypt_error", LY_REASON_PROTOCOL,
     "the peer could not verify our handshake (alert decrypt_error)"},
    {ALERT, internal_error, ANY, "internal_error", LY_REASON_PROTOCOL,
     "the peer failed on its side (alert internal_error)"},
};

static const struct entry *find(kind_t kind, int code, int side) {
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    const struct entry *e = &table[i];
    if (e->kind == kind && e->code == code &&
        (e->side == ANY || e->side == side))
      return e;
  }
  return NULL;
}

ly_cause_t ly_cause_of_tls_error(int code, int is_server) {
  const struct entry *e = find(CODE, code, is_server ? SERVER : CLIENT);
  if (!e)
    return (ly_cause_t){LY_REASON_PROTOCOL, "a TLS error"};
  return (ly_cause_t){e->reason, e->cause};
}

ly_cause_t ly_cause_of_alert(int alert, const char **name) {
  const struct entry *e = find(ALERT, alert, ANY);
  if (name)
    *name = e ? e->name : "another alert";
  if (!e)
    return (ly_cause_t){LY_REASON_PROTOCOL,
                        "the peer ended the handshake with a fatal alert"};
  return (ly_cause_t){e->reason, e->cause};
}

ly_cause_t ly_cause_of_verdict(const char *why) {
  if (!why)
    return (ly_cause_t){LY_REASON_BAD_IDENTITY, "unreadable chain"};
  for (int r = LY_REASON_NONE + 1; r < LY_REASON__COUNT; r++) {
    const char *name = ly_reason_name((ly_reason_t)r);
    size_t n = strlen(name);
    if (strncmp(why, name, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
      return (ly_cause_t){(ly_reason_t)r, why + n + 2};
  }
  return (ly_cause_t){LY_REASON_BAD_IDENTITY, why};
}

ly_cause_t ly_tls_conn_cause(const ly_tls_conn_t *c) {
  const ly_peer_check_t *pc = c->peer;
  if (c->not_tls)
    return (ly_cause_t){LY_REASON_PLAINTEXT_REJECTED,
                        "the client sent plaintext, not a TLS handshake"};
  if (pc && pc->reason != LY_REASON_NONE)
    return (ly_cause_t){pc->reason, pc->cause};
  if (c->peer_alert)
    return ly_cause_of_alert(c->peer_alert, NULL);
  if (c->ssl_error == 0 && c->error_text[0]) /* the socket's own error */
    return (ly_cause_t){LY_REASON_PROTOCOL, c->error_text};
  return ly_cause_of_tls_error(c->ssl_error, c->is_server);
}
