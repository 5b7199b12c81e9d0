/* Shared by the x509_*.c files only: DER and PEM codecs, a parsed
 * certificate, public keys, and the private key's layout.
 *
 * wolfSSL 5.5.4 cannot produce everything an X.509-SVID needs (its
 * template encoder never marks basicConstraints critical and leaves the
 * subjectAltName out of requests), so certificate and request bodies are
 * encoded here with a small DER writer and signed with wc_SignCert_ex.
 * Parsing stays with wolfSSL (wc_ParseCert); the reader below only walks
 * structures wolfSSL has already accepted, to reach the raw names, keys
 * and extensions it does not keep.
 */
#ifndef LANYARD_X509_INTERNAL_H
#define LANYARD_X509_INTERNAL_H

#include "lanyard/x509.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <stddef.h>
#include <stdint.h>

/* ---- DER writer ----------------------------------------------------------
 * Appends to a growing buffer; errors are sticky and reported once by
 * ly_dw_finish, so encoders read as a straight list of fields. */

typedef struct {
  unsigned char *p;
  size_t len, cap;
  int err;
} ly_dw_t;

void ly_dw_bytes(ly_dw_t *w, const void *p, size_t n);
void ly_dw_tlv(ly_dw_t *w, unsigned char tag, const void *p, size_t n);
/* Opens a constructed element; ly_dw_close fills in its length. */
size_t ly_dw_open(ly_dw_t *w, unsigned char tag);
void ly_dw_close(ly_dw_t *w, size_t mark);
/* A positive INTEGER from big-endian magnitude bytes. */
void ly_dw_uint(ly_dw_t *w, const unsigned char *p, size_t n);
/* A BIT STRING holding the named bits in `bits` (bit 0 = 0x80 of byte 0),
 * with trailing zero bits dropped as DER requires. */
void ly_dw_named_bits(ly_dw_t *w, unsigned bits, int nbits);
int ly_dw_finish(ly_dw_t *w); /* 0 or UV_ENOMEM */
void ly_dw_free(ly_dw_t *w);

/* ---- DER reader ----------------------------------------------------------*/

typedef struct {
  const unsigned char *p, *end;
} ly_dr_t;

typedef struct {
  unsigned char tag;
  const unsigned char *tlv; /* the whole element */
  size_t tlv_len;
  const unsigned char *val; /* its contents */
  size_t len;
} ly_tlv_t;

void ly_dr_init(ly_dr_t *r, const void *p, size_t n);
int ly_dr_more(const ly_dr_t *r);
int ly_dr_peek(const ly_dr_t *r);       /* next tag, or -1 at the end */
int ly_dr_get(ly_dr_t *r, ly_tlv_t *t); /* 0 or LY_EPARSE */
/* Reads one element that must carry `tag`. */
int ly_dr_expect(ly_dr_t *r, unsigned char tag, ly_tlv_t *t);
void ly_dr_enter(ly_dr_t *r, const ly_tlv_t *t); /* r walks t's contents */

#define LY_DER_BOOLEAN 0x01
#define LY_DER_INTEGER 0x02
#define LY_DER_BIT_STRING 0x03
#define LY_DER_OCTET_STRING 0x04
#define LY_DER_NULL 0x05
#define LY_DER_OID 0x06
#define LY_DER_UTF8 0x0c
#define LY_DER_UTC_TIME 0x17
#define LY_DER_GEN_TIME 0x18
#define LY_DER_SEQ 0x30
#define LY_DER_SET 0x31
#define LY_DER_CTX(n) (0x80 | (n))      /* [n] IMPLICIT, primitive */
#define LY_DER_CTX_CONS(n) (0xa0 | (n)) /* [n], constructed */

/* ---- times ----------------------------------------------------------------
 * RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */

int ly_x509_time_encode(ly_dw_t *w, int64_t t);
int ly_x509_time_decode(const unsigned char *tlv, size_t len, int64_t *t);

/* ---- PEM ---------------------------------------------------------------- */

typedef struct {
  const char *label; /* "CERTIFICATE", "PRIVATE KEY", ... */
  size_t label_len;
  const char *body; /* base64, with line breaks */
  size_t body_len;
} ly_pem_block_t;

/* The next block at or after *pos: 1 with *b set and *pos past it, 0 when
 * there is none, LY_EPARSE for a BEGIN line without its END line. */
int ly_pem_next(const char *pem, size_t len, size_t *pos, ly_pem_block_t *b);
int ly_pem_label_is(const ly_pem_block_t *b, const char *label);
/* Decodes a block's base64 into a malloc'd buffer; LY_EPARSE if invalid. */
int ly_pem_decode(const ly_pem_block_t *b, unsigned char **der, size_t *len);
/* Room for one encoded block, and the writer (returns bytes written). */
size_t ly_pem_encoded_len(const char *label, size_t n);
size_t ly_pem_write(char *dst, const char *label, const unsigned char *der,
                    size_t n);

/* ---- a parsed certificate ------------------------------------------------ */

/* GeneralName types, by their context tag number (RFC 5280 4.2.1.6). */
enum {
  LY_GN_OTHER,
  LY_GN_EMAIL,
  LY_GN_DNS,
  LY_GN_X400,
  LY_GN_DIR,
  LY_GN_EDI,
  LY_GN_URI,
  LY_GN_IP,
  LY_GN_RID,
  LY_GN_TYPES
};

/* One name constraint: a GeneralSubtree's base. For a directoryName, p is
 * the Name's RDN sequence contents; for the other types, the GeneralName's
 * contents. */
typedef struct {
  unsigned char type; /* LY_GN_* */
  unsigned char excluded;
  const unsigned char *p;
  size_t len;
} ly_gname_t;

/* A NameConstraints extension, its subtrees grouped by type: those of type
 * t are entries[start[t] .. start[t + 1]). */
typedef struct {
  ly_gname_t *entries;
  size_t start[LY_GN_TYPES + 1];
  unsigned types; /* 1 << LY_GN_* for each type with a constraint */
} ly_nc_t;

typedef struct {
  DecodedCert *dc; /* wolfSSL's parse; points into the caller's DER */
  const unsigned char *der;
  size_t len;
  ly_tlv_t tbs, issuer, subject, spki; /* raw elements */
  ly_tlv_t san;                        /* GeneralNames; tag 0 if absent */
  const unsigned char *skid, *akid;    /* keyIdentifier bytes, or NULL */
  size_t skid_len, akid_len;
  int path_len; /* pathLenConstraint, or -1 */
  int bc_critical;
  int self_issued; /* issuer and subject are the same name */
  ly_nc_t *nc;     /* name constraints, or NULL */
  /* Why the certificate is unfit for any place on a path (a reason for
   * ly_chain_verify), or NULL: an unsupported critical extension, an
   * extension RFC 5280 forbids to be critical or requires to be, malformed
   * name constraints, keyCertSign without cA, empty names. */
  const char *problem;
  ly_cert_info_t info;
} ly_x509_cert_t;

/* 0, or LY_ECERT for DER that is not a certificate (a certificate that
 * breaks the rules above is not an error here: `problem` says so). */
int ly_x509_cert_parse(const void *der, size_t len, ly_x509_cert_t *c);
void ly_x509_cert_free(ly_x509_cert_t *c);

/* What a subjectAltName extension holds. */
typedef struct {
  int count, uri_count;
  const char *uri; /* the first URI entry */
  size_t uri_len;
} ly_san_t;

/* Extensions the checks read, by OID. */
enum {
  LY_EXT_BC,
  LY_EXT_KU,
  LY_EXT_EKU,
  LY_EXT_SAN,
  LY_EXT_NC,
  LY_EXT_SKID,
  LY_EXT_AKID,
  LY_EXT_AIA,
  LY_EXT_SIA,
  LY_EXT_PC,
  LY_EXT_CP,
  LY_EXT_PM,
  LY_EXT_IAP,
  LY_EXT_CRLDP,
  LY_EXT_COUNT
};

typedef struct {
  ly_tlv_t value; /* the extnValue OCTET STRING */
  int present, critical;
} ly_ext_t;

/* Walks an Extensions SEQUENCE's contents (a certificate's or a request's),
 * collecting the SAN, the key identifiers, and where each extension of the
 * table above is. LY_EPARSE on bad encoding or a repeated extension. */
typedef struct {
  ly_san_t san;
  int has_san;
  ly_tlv_t san_names; /* the GeneralNames SEQUENCE */
  const unsigned char *skid, *akid;
  size_t skid_len, akid_len;
  ly_ext_t ext[LY_EXT_COUNT];
  int unknown_critical; /* a critical extension outside the table */
} ly_exts_t;
int ly_x509_exts_scan(const ly_tlv_t *exts_seq, ly_exts_t *out);

/* ---- name constraints (x509_names.c) --------------------------------------
 * RFC 5280 4.2.1.10 and 6.1.3 (b)-(c), for DNS names, IP addresses, URIs
 * (by host), e-mail addresses and directory names. A certificate that
 * carries a name of any other type under a constraint of that type is
 * refused: it cannot be shown to be inside the constraint. */

/* Parses a NameConstraints extension value (the OCTET STRING). 0, UV_ENOMEM,
 * or LY_ECERT with *why: malformed, empty, with minimum or maximum (RFC
 * 5280 says they MUST NOT be used), or with a constraint that is not a
 * valid one of its type (a DNS constraint "*.example.com" or
 * ".example.com", an IP address without a proper mask). */
int ly_x509_nc_parse(const ly_tlv_t *value, ly_nc_t **out, const char **why);
void ly_x509_nc_free(ly_nc_t *nc);

/* Are c's names (its subject, its subjectAltName entries and, without a
 * SAN, the subject's e-mail attributes) inside ca's constraints? NULL, or
 * the reason they are not. Each comparison spends one unit of *budget;
 * once it is spent, returns LY_X509_NC_BUDGET_WHY with *budget < 0. */
#define LY_X509_NC_BUDGET_WHY "unknown_ca: name constraint check limit reached"
const char *ly_x509_nc_check(const ly_x509_cert_t *ca, const ly_x509_cert_t *c,
                             long *budget);

/* ---- keys -----------------------------------------------------------------
 */

struct ly_key_s {
  int type; /* ECC_TYPE or RSA_TYPE */
  union {
    ecc_key ecc;
    RsaKey rsa;
  } k;
};

/* A public key from a SubjectPublicKeyInfo. */
typedef struct {
  int type; /* ECC_TYPE or RSA_TYPE */
  union {
    ecc_key ecc;
    RsaKey rsa;
  } k;
} ly_pubkey_t;

int ly_pubkey_load(const unsigned char *spki, size_t len, ly_pubkey_t *pk);
void ly_pubkey_free(ly_pubkey_t *pk);
/* The ECC curve (ECC_SECP256R1, ...) or 0 for RSA. */
int ly_pubkey_curve(const ly_pubkey_t *pk);

/* The key's SubjectPublicKeyInfo, DER, malloc'd. */
int ly_key_spki(const ly_key_t *key, unsigned char **out, size_t *len);
/* Appends the AlgorithmIdentifier this key signs with (ECDSA with SHA-256
 * for P-256, SHA-384 for P-384; SHA-256 with RSA). */
void ly_key_sigalg(const ly_key_t *key, ly_dw_t *w);
/* Signs w's contents (a TBSCertificate or CertificationRequestInfo) in
 * place, turning them into the signed structure. */
int ly_key_sign_der(const ly_key_t *key, WC_RNG *rng, ly_dw_t *w);

/* Verifies `sig` over `data` with an issuer's SubjectPublicKeyInfo, for a
 * wolfSSL signature OID sum (ECDSA or PKCS#1 v1.5 with SHA-256/384/512).
 * 0 or LY_ECRYPTO (also for algorithms outside that set). */
int ly_x509_sig_verify(const unsigned char *data, size_t data_len,
                       unsigned sig_oid, const unsigned char *sig,
                       size_t sig_len, const unsigned char *spki,
                       size_t spki_len);

/* Fresh RNG; wolfCrypt must be initialized (see x509.h). */
int ly_x509_rng_init(WC_RNG *rng);

/* ---- certificate bodies
 * ----------------------------------------------------*/

/* A GeneralNames SEQUENCE holding one URI. */
void ly_x509_write_uri_san(ly_dw_t *w, const char *uri);
/* GeneralNames: the URI, then dNSName entries. */
void ly_x509_write_sans(ly_dw_t *w, const char *uri, const char *const *dns,
                        size_t ndns);
/* The SAN extension with a ready GeneralNames encoding. */
void ly_x509_write_san_ext(ly_dw_t *w, const unsigned char *gn, size_t n,
                           int critical);
/* The basicConstraints extension (critical); path_len < 0 omits it. */
void ly_x509_write_bc_ext(ly_dw_t *w, int is_ca, int path_len);

/* A PKCS#10 request with the given raw GeneralNames (NULL: no SAN) and,
 * if is_ca, a basicConstraints cA=TRUE request. Shared by ly_csr_create and
 * by tests that need malformed requests. */
int ly_x509_csr_build(const ly_key_t *key, const unsigned char *san_gn,
                      size_t san_len, int is_ca, ly_der_t *out);

#endif
