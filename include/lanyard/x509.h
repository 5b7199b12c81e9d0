/* X.509 for Lanyard on wolfCrypt: keys, CSRs, issuing, and SVID checks.
 *
 * Everything here is control-plane code (CLI, CA, the agent's identity
 * thread); it allocates freely and may block on nothing. Keys are wiped
 * when freed. Functions return 0 or a negative code (lanyard/err.h); where
 * a person needs to know why, *why gets a static reason (why may be NULL).
 *
 * wolfCrypt must be initialized once before any of this is used: the
 * program calls wolfSSL_Init() at start (tests do the same).
 */
#ifndef LANYARD_X509_H
#define LANYARD_X509_H

#include "lanyard/spiffe.h"

#include <stddef.h>
#include <stdint.h>

/* ---- DER blobs and chains ------------------------------------------- */

typedef struct {
  unsigned char *der;
  size_t len;
} ly_der_t;

/* An ordered list of DER certificates (a chain leaf first, or a bundle). */
typedef struct {
  ly_der_t *certs;
  size_t n;
} ly_chain_t;

int ly_chain_push(ly_chain_t *c, const void *der, size_t len); /* copies */
void ly_chain_free(ly_chain_t *c); /* frees contents; c may be reused */

/* Every CERTIFICATE block of a PEM text, in order (other blocks, such as a
 * key in the same file, are skipped). LY_EPARSE "not PEM" when the text
 * has no PEM block at all, LY_ENOT_FOUND "no certificate" when it has
 * blocks but no certificate, LY_ECERT "malformed certificate" for a block
 * that does not decode or parse. *out is replaced only on success. */
int ly_chain_from_pem(const char *pem, size_t len, ly_chain_t *out,
                      const char **why);
/* Concatenated CERTIFICATE blocks; malloc'd, NUL-terminated. */
int ly_chain_to_pem(const ly_chain_t *c, char **pem, size_t *len);

/* ---- keys ------------------------------------------------------------- */

typedef struct ly_key_s ly_key_t; /* a private key: ECDSA (P-256/P-384) or
                                     RSA (loaded only; never generated) */

int ly_key_generate(ly_key_t **out); /* ECDSA P-256, from wolfCrypt's RNG */
/* The first private key block of a PEM text (PKCS#8 "PRIVATE KEY" or
 * "EC PRIVATE KEY" or "RSA PRIVATE KEY"); certificates in the same text
 * are skipped. LY_EPARSE "not PEM", LY_ENOT_FOUND "no key", LY_ECRYPTO
 * "unparsable key" (also for ECC curves other than P-256/P-384) or
 * "encrypted keys are not supported". */
int ly_key_from_pem(const char *pem, size_t len, ly_key_t **out,
                    const char **why);
/* PKCS#8 PEM, malloc'd and NUL-terminated: the caller wipes and frees. */
int ly_key_to_pem(const ly_key_t *key, char **pem, size_t *len);
/* PKCS#8 DER (what wolfSSL_CTX_use_PrivateKey_buffer takes). */
int ly_key_to_der(const ly_key_t *key, ly_der_t *out);
void ly_key_free(ly_key_t *key);
/* 1 if the certificate's public key is this key's, else 0. */
int ly_key_matches_cert(const ly_key_t *key, const void *der, size_t len);

/* ---- reading certificates ---------------------------------------------- */

#define LY_KU_DIGITAL_SIGNATURE 0x01
#define LY_KU_KEY_CERT_SIGN 0x02
#define LY_KU_CRL_SIGN 0x04
#define LY_EKU_SERVER_AUTH 0x01
#define LY_EKU_CLIENT_AUTH 0x02
#define LY_EKU_ANY 0x04 /* anyExtendedKeyUsage: every purpose */

typedef struct {
  char serial_hex[64]; /* lowercase hex, no separators */
  int64_t not_before;  /* unix seconds */
  int64_t not_after;
  int is_ca;          /* basicConstraints cA */
  unsigned key_usage; /* LY_KU_* bits; 0 if the extension is absent */
  int has_key_usage;
  unsigned ext_key_usage; /* LY_EKU_* bits */
  int has_ext_key_usage;
  int san_count;     /* every subjectAltName entry, of any type */
  int uri_san_count; /* URI entries */
  char spiffe_id[LY_SPIFFE_ID_MAX + 1]; /* the URI SAN if it is the only
                                           URI and valid; else "" */
} ly_cert_info_t;

int ly_cert_info(const void *der, size_t len, ly_cert_info_t *out);

/* The lowercase hex SHA-256 of a DER certificate (what `openssl x509
 * -outform DER | sha256sum` prints): how the views and the inventory name
 * a certificate. */
#define LY_SHA256_HEX_LEN 65
int ly_der_sha256_hex(const void *der, size_t len, char out[LY_SHA256_HEX_LEN]);

/* ---- CSRs ----------------------------------------------------------------*/

/* A PKCS#10 request signed by `key` with one URI SAN, `spiffe_id`, and an
 * empty subject. DER into out (malloc'd). */
int ly_csr_create(const ly_key_t *key, const char *spiffe_id, ly_der_t *out);
/* The same, with DNS SANs next to the URI SAN (an X509-SVID may carry
 * other SAN types; the CA signs them only where its dns_names allow). */
int ly_csr_create_dns(const ly_key_t *key, const char *spiffe_id,
                      const char *const *dns, size_t ndns, ly_der_t *out);

#define LY_CSR_DNS_MAX 8
#define LY_DNS_NAME_MAX 253

/* What the CA takes from a request that passed ly_csr_check. */
typedef struct {
  ly_spiffe_id_t id;         /* the requested identity */
  unsigned char pubkey[256]; /* SubjectPublicKeyInfo, DER */
  size_t pubkey_len;
  size_t ndns; /* DNS SANs, in the request's order */
  char dns[LY_CSR_DNS_MAX][LY_DNS_NAME_MAX + 1];
} ly_csr_t;

/* Checks a CA must make before signing: parses; the self-signature
 * verifies; the key is ECDSA P-256 or P-384 (anything else: "unsupported
 * key type"); exactly one subjectAltName, a URI holding a valid SPIFFE
 * ID, plus at most LY_CSR_DNS_MAX DNS names (host names, no wildcards);
 * no other SAN type; no basicConstraints with cA set. LY_ECSR with *why
 * otherwise. */
int ly_csr_check(const void *der, size_t len, ly_csr_t *out, const char **why);

/* ---- issuing (CA side) ---------------------------------------------------*/

/* The signing identity: the intermediate's certificate and key, plus any
 * further intermediates up to (not including) a root, from the PEM file
 * `signing.cert` (signing certificate first). */
typedef struct ly_signer_s ly_signer_t;

/* Fails with the PEM loaders' reasons, or LY_ECERT "key does not match the
 * signing certificate" / ly_cert_check_issuer's reasons. */
int ly_signer_load(const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len, ly_signer_t **out, const char **why);
void ly_signer_free(ly_signer_t *s);
/* The chain to hand out after each SVID: the signing certificate first. */
const ly_chain_t *ly_signer_chain(const ly_signer_t *s);

/* Issues an X.509-SVID: serial of 128 random bits (a positive INTEGER); subject
 * O=lanyard; URI SAN = id; basicConstraints cA=FALSE (critical); keyUsage
 * digitalSignature (critical); extKeyUsage serverAuth+clientAuth; subject
 * and authority key IDs; validity [not_before, not_after] (unix seconds,
 * the caller applies any backdating; UV_EINVAL unless not_before <
 * not_after). `pubkey` is a SubjectPublicKeyInfo in DER for ECDSA P-256 or
 * P-384, as ly_csr_check allows (LY_ECRYPTO otherwise); LY_ESPIFFE_ID for
 * an invalid id. Thread-safe for distinct signers; one signer is not. */
int ly_signer_issue(ly_signer_t *s, const unsigned char *pubkey,
                    size_t pubkey_len, const char *spiffe_id,
                    int64_t not_before, int64_t not_after, ly_der_t *out);
/* The same, with DNS SANs after the URI SAN (the caller has checked they
 * are allowed for the ID). */
int ly_signer_issue_dns(ly_signer_t *s, const unsigned char *pubkey,
                        size_t pubkey_len, const char *spiffe_id,
                        const char *const *dns, size_t ndns, int64_t not_before,
                        int64_t not_after, ly_der_t *out);
/* 1 if s is a host name (RFC 1123 labels, no wildcard), else 0. */
int ly_dns_name_valid(const char *s);

/* `lanyard ca init`: a self-signed root (cA, keyUsage keyCertSign|cRLSign,
 * URI SAN spiffe://<td>, subject O=lanyard, CN=lanyard root <td>) and an
 * intermediate it signs (cA, pathLenConstraint 0, same key usage, URI SAN
 * spiffe://<td>, CN=lanyard signing <td>). Fresh P-256 keys. A CN holds
 * at most 64 characters, so a long trust domain is cut short there (the
 * URI SAN has it in full). LY_ESPIFFE_ID for an invalid trust domain. */
int ly_ca_create_root(const char *trust_domain, int64_t not_before,
                      int64_t not_after, ly_key_t **key, ly_der_t *cert);
int ly_ca_create_intermediate(const ly_key_t *root_key, const ly_der_t *root,
                              const char *trust_domain, int64_t not_before,
                              int64_t not_after, ly_key_t **key,
                              ly_der_t *cert);

/* ---- verification -------------------------------------------------------*/

/* Chain validation: chain->certs[0] is the leaf, the rest are untrusted
 * intermediates in any order; `roots` are the trust anchors. Valid when a
 * path leads from the leaf to a root, every certificate on it is within
 * its validity window at `at` (unix seconds), every signature verifies,
 * and every issuer on it is a CA with keyCertSign. LY_ECERT with *why
 * ("unknown_ca: ...", "expired: ...", ...) otherwise. On success,
 * leaf_info (may be NULL) describes the leaf. Of several failing paths,
 * *why tells of the first one found; on a path, dates come first, then
 * whether each issuer is a CA, then the finer rules, then names.
 *
 * Also enforced, RFC 5280 as x509-limbo reads it (tests/x509-limbo):
 * pathLenConstraint (self-issued certificates do not count, 6.1.4); no
 * unrecognized critical extension, and no critical key identifier or
 * information access extension; authorityKeyIdentifier on every
 * certificate below the root; subjectKeyIdentifier, critical
 * basicConstraints and a non-empty subject on every CA; keyCertSign only
 * with cA; a critical subjectAltName where the subject is empty; no empty
 * extendedKeyUsage; policyConstraints refused (policies are not
 * evaluated); name constraints (critical, well-formed) of every CA,
 * trust anchors included, over the names below it: DNS names (wildcards
 * included), IP addresses, URIs by host (a SPIFFE ID's trust domain),
 * e-mail addresses and directory names; a name of another type under a
 * constraint of its type is refused. Signatures: ECDSA, or RSA PKCS#1
 * v1.5 with keys of 2048 bits or more, with SHA-256/384/512. Bounded for
 * hostile input: at most 32 chain certificates and 512 roots, paths of at
 * most 8 certificates below the root, 64 signature checks and 131072
 * name-constraint comparisons per call. */
int ly_chain_verify(const ly_chain_t *chain, const ly_chain_t *roots,
                    int64_t at, ly_cert_info_t *leaf_info, const char **why);

/* Is this certificate fit to sign others: cA set and keyUsage present with
 * keyCertSign. LY_ECERT with "unknown_ca: signing certificate is not a CA"
 * or "unknown_ca: signing certificate lacks keyCertSign". */
int ly_cert_check_issuer(const ly_cert_info_t *ca, const char **why);

/* The rules on a leaf for plain X.509 use, where there is no SPIFFE ID to
 * check (`lanyard svid verify --chain-only`): not a CA, since a CA
 * certificate is no one's end-entity identity; a subjectAltName, since
 * Lanyard names peers by SAN only; and, if it carries extendedKeyUsage,
 * that allows every LY_EKU_* purpose in `eku` (0: no purpose required),
 * anyExtendedKeyUsage allowing them all, as wolfSSL's check in the
 * handshake has it. A leaf without the extension is not limited. LY_ECERT
 * with "bad_identity: ..." otherwise. */
int ly_cert_check_end_entity(const ly_cert_info_t *leaf, unsigned eku,
                             const char **why);

/* The X.509-SVID rules on a leaf alone: not a CA; keyUsage present with
 * digitalSignature and without keyCertSign and cRLSign; exactly one URI
 * SAN, a valid SPIFFE ID; if trust_domain is not NULL, in that domain. */
int ly_svid_check_leaf(const ly_cert_info_t *leaf, const char *trust_domain,
                       const char **why);

/* Both: ly_svid_check_leaf on the leaf first (it needs no signature, and
 * a certificate that is no SVID is refused for that whatever its chain),
 * then ly_chain_verify. */
int ly_svid_verify(const ly_chain_t *chain, const ly_chain_t *roots, int64_t at,
                   const char *trust_domain, ly_cert_info_t *leaf_info,
                   const char **why);

#endif
