/* Issuing: X.509-SVIDs from the signing intermediate, and the root and
 * intermediate of `lanyard ca init`. Bodies are encoded here (see
 * x509_internal.h for why) and signed by wolfCrypt. */
#include "identity/x509_internal.h"

#include "lanyard/err.h"

#include <wolfssl/wolfcrypt/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const unsigned char oid_bc[] = {0x55, 0x1d, 0x13};
static const unsigned char oid_ku[] = {0x55, 0x1d, 0x0f};
static const unsigned char oid_eku[] = {0x55, 0x1d, 0x25};
static const unsigned char oid_skid[] = {0x55, 0x1d, 0x0e};
static const unsigned char oid_akid[] = {0x55, 0x1d, 0x23};
static const unsigned char oid_san[] = {0x55, 0x1d, 0x11};
static const unsigned char oid_server_auth[] = {0x2b, 0x06, 0x01, 0x05,
                                                0x05, 0x07, 0x03, 0x01};
static const unsigned char oid_client_auth[] = {0x2b, 0x06, 0x01, 0x05,
                                                0x05, 0x07, 0x03, 0x02};
static const unsigned char oid_org[] = {0x55, 0x04, 0x0a};
static const unsigned char oid_cn[] = {0x55, 0x04, 0x03};

/* keyUsage named bits (RFC 5280 4.2.1.3) */
#define KU_BIT_DIGITAL_SIGNATURE (1u << 0)
#define KU_BIT_KEY_CERT_SIGN (1u << 5)
#define KU_BIT_CRL_SIGN (1u << 6)

#define CN_MAX 64 /* ub-common-name */

/* ---- extensions -------------------------------------------------------- */

static const unsigned char der_true[] = {0xff};

/* Opens Extension { extnID, critical, extnValue OCTET STRING {...} }; the
 * caller writes the value and closes both marks (value first). */
static size_t ext_open(ly_dw_t *w, const unsigned char *oid, size_t n,
                       int critical, size_t *value) {
  size_t ext = ly_dw_open(w, LY_DER_SEQ);
  ly_dw_tlv(w, LY_DER_OID, oid, n);
  if (critical)
    ly_dw_tlv(w, LY_DER_BOOLEAN, der_true, 1);
  *value = ly_dw_open(w, LY_DER_OCTET_STRING);
  return ext;
}

static void ext_close(ly_dw_t *w, size_t ext, size_t value) {
  ly_dw_close(w, value);
  ly_dw_close(w, ext);
}

void ly_x509_write_sans(ly_dw_t *w, const char *uri, const char *const *dns,
                        size_t ndns) {
  size_t names = ly_dw_open(w, LY_DER_SEQ);
  ly_dw_tlv(w, LY_DER_CTX(6), uri, strlen(uri));
  for (size_t i = 0; i < ndns; i++)
    ly_dw_tlv(w, LY_DER_CTX(2), dns[i], strlen(dns[i]));
  ly_dw_close(w, names);
}

void ly_x509_write_uri_san(ly_dw_t *w, const char *uri) {
  ly_x509_write_sans(w, uri, NULL, 0);
}

void ly_x509_write_san_ext(ly_dw_t *w, const unsigned char *gn, size_t n,
                           int critical) {
  size_t v, e = ext_open(w, oid_san, sizeof(oid_san), critical, &v);
  ly_dw_bytes(w, gn, n);
  ext_close(w, e, v);
}

void ly_x509_write_bc_ext(ly_dw_t *w, int is_ca, int path_len) {
  size_t v, e = ext_open(w, oid_bc, sizeof(oid_bc), 1, &v);
  size_t seq = ly_dw_open(w, LY_DER_SEQ);
  /* cA defaults to FALSE, and DER leaves defaults out */
  if (is_ca)
    ly_dw_tlv(w, LY_DER_BOOLEAN, der_true, 1);
  if (is_ca && path_len >= 0) {
    unsigned char pl = (unsigned char)path_len;
    ly_dw_uint(w, &pl, 1);
  }
  ly_dw_close(w, seq);
  ext_close(w, e, v);
}

static void write_ku_ext(ly_dw_t *w, unsigned bits) {
  size_t v, e = ext_open(w, oid_ku, sizeof(oid_ku), 1, &v);
  ly_dw_named_bits(w, bits, 9);
  ext_close(w, e, v);
}

static void write_eku_ext(ly_dw_t *w) {
  size_t v, e = ext_open(w, oid_eku, sizeof(oid_eku), 0, &v);
  size_t seq = ly_dw_open(w, LY_DER_SEQ);
  ly_dw_tlv(w, LY_DER_OID, oid_server_auth, sizeof(oid_server_auth));
  ly_dw_tlv(w, LY_DER_OID, oid_client_auth, sizeof(oid_client_auth));
  ly_dw_close(w, seq);
  ext_close(w, e, v);
}

static void write_keyid_ext(ly_dw_t *w, int authority, const unsigned char *id,
                            size_t n) {
  size_t v, e = authority ? ext_open(w, oid_akid, sizeof(oid_akid), 0, &v)
                          : ext_open(w, oid_skid, sizeof(oid_skid), 0, &v);
  if (authority) {
    size_t seq = ly_dw_open(w, LY_DER_SEQ);
    ly_dw_tlv(w, LY_DER_CTX(0), id, n);
    ly_dw_close(w, seq);
  } else {
    ly_dw_tlv(w, LY_DER_OCTET_STRING, id, n);
  }
  ext_close(w, e, v);
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
static int key_id(const unsigned char *spki, size_t len,
                  unsigned char id[WC_SHA_DIGEST_SIZE]) {
  ly_dr_t r;
  ly_tlv_t seq, alg, bits;
  ly_dr_init(&r, spki, len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &seq));
  ly_dr_enter(&r, &seq);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &alg));
  LY_GUARD(ly_dr_expect(&r, LY_DER_BIT_STRING, &bits));
  LY_ENSURE(bits.len >= 2, LY_EPARSE);
  /* past the unused-bits octet */
  LY_ENSURE(wc_ShaHash(bits.val + 1, (word32)bits.len - 1, id) == 0,
            LY_ECRYPTO);
  return 0;
}

/* O=lanyard[, CN=cn], each RDN a single UTF8String attribute. */
static void write_name(ly_dw_t *w, const char *cn) {
  static const char org[] = "lanyard";
  size_t name = ly_dw_open(w, LY_DER_SEQ);
  size_t rdn = ly_dw_open(w, LY_DER_SET);
  size_t atv = ly_dw_open(w, LY_DER_SEQ);
  ly_dw_tlv(w, LY_DER_OID, oid_org, sizeof(oid_org));
  ly_dw_tlv(w, LY_DER_UTF8, org, sizeof(org) - 1);
  ly_dw_close(w, atv);
  ly_dw_close(w, rdn);
  if (cn) {
    rdn = ly_dw_open(w, LY_DER_SET);
    atv = ly_dw_open(w, LY_DER_SEQ);
    ly_dw_tlv(w, LY_DER_OID, oid_cn, sizeof(oid_cn));
    ly_dw_tlv(w, LY_DER_UTF8, cn, strlen(cn));
    ly_dw_close(w, atv);
    ly_dw_close(w, rdn);
  }
  ly_dw_close(w, name);
}

/* ---- certificates ------------------------------------------------------ */

typedef struct {
  const ly_key_t *signer;
  const unsigned char *issuer; /* Name, DER: the signer's subject */
  size_t issuer_len;
  const unsigned char *akid; /* the signer's key identifier */
  size_t akid_len;
  const char *cn; /* NULL for SVIDs */
  const unsigned char *spki;
  size_t spki_len;
  int64_t not_before, not_after;
  int is_ca, path_len;
  const char *uri;
  const char *const *dns;
  size_t ndns;
} cert_params_t;

static int build_cert(const cert_params_t *p, WC_RNG *rng, ly_der_t *out) {
  LY_ENSURE(p->not_after > p->not_before, UV_EINVAL);
  unsigned char serial[16], skid[WC_SHA_DIGEST_SIZE];
  /* 128 random bits, all of them used: ly_dw_uint writes the positive
   * INTEGER (a zero octet first when the top bit is set, so up to 17
   * octets; RFC 5280 allows 20). Zero is not a valid serial: draw again. */
  static const unsigned char zero[sizeof(serial)];
  do
    LY_ENSURE(wc_RNG_GenerateBlock(rng, serial, sizeof(serial)) == 0,
              LY_ECRYPTO);
  while (memcmp(serial, zero, sizeof(serial)) == 0);
  LY_GUARD(key_id(p->spki, p->spki_len, skid));

  ly_dw_t w = {0};
  size_t tbs = ly_dw_open(&w, LY_DER_SEQ);
  size_t ver = ly_dw_open(&w, LY_DER_CTX_CONS(0));
  ly_dw_tlv(&w, LY_DER_INTEGER, "\x02", 1); /* v3 */
  ly_dw_close(&w, ver);
  ly_dw_uint(&w, serial, sizeof(serial));
  ly_key_sigalg(p->signer, &w);
  ly_dw_bytes(&w, p->issuer, p->issuer_len);
  size_t validity = ly_dw_open(&w, LY_DER_SEQ);
  int rc = ly_x509_time_encode(&w, p->not_before);
  if (rc == 0)
    rc = ly_x509_time_encode(&w, p->not_after);
  if (rc != 0)
    goto out;
  ly_dw_close(&w, validity);
  write_name(&w, p->cn);
  ly_dw_bytes(&w, p->spki, p->spki_len);

  size_t exts_tag = ly_dw_open(&w, LY_DER_CTX_CONS(3));
  size_t exts = ly_dw_open(&w, LY_DER_SEQ);
  ly_x509_write_bc_ext(&w, p->is_ca, p->path_len);
  write_ku_ext(&w, p->is_ca ? KU_BIT_KEY_CERT_SIGN | KU_BIT_CRL_SIGN
                            : KU_BIT_DIGITAL_SIGNATURE);
  if (!p->is_ca)
    write_eku_ext(&w);
  write_keyid_ext(&w, 0, skid, sizeof(skid));
  write_keyid_ext(&w, 1, p->akid, p->akid_len);
  ly_dw_t gn = {0};
  ly_x509_write_sans(&gn, p->uri, p->dns, p->ndns);
  if ((rc = ly_dw_finish(&gn)) == 0)
    ly_x509_write_san_ext(&w, gn.p, gn.len, 0);
  ly_dw_free(&gn);
  if (rc != 0)
    goto out;
  ly_dw_close(&w, exts);
  ly_dw_close(&w, exts_tag);
  ly_dw_close(&w, tbs);

  if ((rc = ly_key_sign_der(p->signer, rng, &w)) != 0)
    goto out;
  out->der = w.p;
  out->len = w.len;
  w.p = NULL;
out:
  ly_dw_free(&w);
  return rc;
}

/* The key identifier a child's AKID names: the issuer's SKID extension
 * if it has one, else computed the way ours are. */
static int issuer_key_id(const ly_x509_cert_t *c, unsigned char *id, size_t cap,
                         size_t *len) {
  if (c->skid) {
    LY_ENSURE(c->skid_len > 0 && c->skid_len <= cap, LY_ECERT);
    memcpy(id, c->skid, c->skid_len);
    *len = c->skid_len;
    return 0;
  }
  LY_ENSURE(cap >= WC_SHA_DIGEST_SIZE, LY_ECERT);
  LY_GUARD(key_id(c->spki.tlv, c->spki.tlv_len, id));
  *len = WC_SHA_DIGEST_SIZE;
  return 0;
}

/* "<prefix><td>", cut to the 64 characters a CN may hold; the URI SAN
 * carries the trust domain in full. */
static void ca_cn(char cn[CN_MAX + 1], const char *prefix, const char *td) {
  snprintf(cn, CN_MAX + 1, "%s%s", prefix, td);
}

/* ---- the signer
 * ------------------------------------------------------------*/

struct ly_signer_s {
  ly_key_t *key;
  ly_chain_t chain;
  unsigned char *subject;
  size_t subject_len;
  unsigned char akid[64];
  size_t akid_len;
  WC_RNG rng;
  int have_rng;
};

void ly_signer_free(ly_signer_t *s) {
  if (!s)
    return;
  ly_key_free(s->key);
  ly_chain_free(&s->chain);
  free(s->subject);
  if (s->have_rng)
    wc_FreeRng(&s->rng);
  free(s);
}

const ly_chain_t *ly_signer_chain(const ly_signer_t *s) {
  return &s->chain;
}

int ly_signer_load(const char *cert_pem, size_t cert_len, const char *key_pem,
                   size_t key_len, ly_signer_t **out, const char **why) {
  ly_signer_t *s = calloc(1, sizeof(*s));
  LY_ENSURE(s, UV_ENOMEM);
  ly_x509_cert_t c = {0};
  int rc = ly_chain_from_pem(cert_pem, cert_len, &s->chain, why);
  if (rc == 0)
    rc = ly_key_from_pem(key_pem, key_len, &s->key, why);
  if (rc != 0)
    goto out;
  const ly_der_t *leaf = &s->chain.certs[0];
  if (!ly_key_matches_cert(s->key, leaf->der, leaf->len)) {
    rc = LY_ECERT;
    if (why)
      *why = "key does not match the signing certificate";
    goto out;
  }
  if ((rc = ly_x509_cert_parse(leaf->der, leaf->len, &c)) != 0)
    goto out;
  if ((rc = ly_cert_check_issuer(&c.info, why)) != 0)
    goto out;
  rc = issuer_key_id(&c, s->akid, sizeof(s->akid), &s->akid_len);
  if (rc != 0)
    goto out;
  if (!(s->subject = malloc(c.subject.tlv_len))) {
    rc = UV_ENOMEM;
    goto out;
  }
  memcpy(s->subject, c.subject.tlv, c.subject.tlv_len);
  s->subject_len = c.subject.tlv_len;
  if ((rc = ly_x509_rng_init(&s->rng)) != 0)
    goto out;
  s->have_rng = 1;
  *out = s;
  s = NULL;
out:
  ly_x509_cert_free(&c);
  ly_signer_free(s);
  return rc;
}

int ly_signer_issue(ly_signer_t *s, const unsigned char *pubkey,
                    size_t pubkey_len, const char *spiffe_id,
                    int64_t not_before, int64_t not_after, ly_der_t *out) {
  return ly_signer_issue_dns(s, pubkey, pubkey_len, spiffe_id, NULL, 0,
                             not_before, not_after, out);
}

int ly_signer_issue_dns(ly_signer_t *s, const unsigned char *pubkey,
                        size_t pubkey_len, const char *spiffe_id,
                        const char *const *dns, size_t ndns, int64_t not_before,
                        int64_t not_after, ly_der_t *out) {
  for (size_t i = 0; i < ndns; i++)
    LY_ENSURE(ly_dns_name_valid(dns[i]), UV_EINVAL);
  LY_GUARD(
      ly_spiffe_workload_id_parse(spiffe_id, strlen(spiffe_id), NULL, NULL));
  /* the same keys ly_csr_check lets through */
  ly_pubkey_t pk;
  LY_GUARD(ly_pubkey_load(pubkey, pubkey_len, &pk));
  int curve = ly_pubkey_curve(&pk);
  ly_pubkey_free(&pk);
  LY_ENSURE(curve == ECC_SECP256R1 || curve == ECC_SECP384R1, LY_ECRYPTO);
  cert_params_t p = {
      .signer = s->key,
      .issuer = s->subject,
      .issuer_len = s->subject_len,
      .akid = s->akid,
      .akid_len = s->akid_len,
      .spki = pubkey,
      .spki_len = pubkey_len,
      .not_before = not_before,
      .not_after = not_after,
      .is_ca = 0,
      .path_len = -1,
      .uri = spiffe_id,
      .dns = dns,
      .ndns = ndns,
  };
  return build_cert(&p, &s->rng, out);
}

/* ---- lanyard ca init ---------------------------------------------------- */

/* A fresh key and a CA certificate for it: self-signed when issuer_key is
 * NULL, else signed by issuer_key as the holder of `issuer`. */
static int create_ca(const char *td, const char *cn_prefix, int path_len,
                     const ly_key_t *issuer_key, const ly_x509_cert_t *issuer,
                     int64_t not_before, int64_t not_after, ly_key_t **key,
                     ly_der_t *cert) {
  LY_GUARD(ly_trust_domain_check(td, strlen(td), NULL));
  char uri[sizeof("spiffe://") + LY_TRUST_DOMAIN_MAX];
  snprintf(uri, sizeof(uri), "spiffe://%s", td);
  char cn[CN_MAX + 1];
  ca_cn(cn, cn_prefix, td);

  ly_key_t *k = NULL;
  unsigned char *spki = NULL;
  size_t spki_len = 0;
  ly_dw_t subject = {0};
  unsigned char akid[64];
  size_t akid_len = 0;
  WC_RNG rng;
  int have_rng = 0;
  int rc = ly_key_generate(&k);
  if (rc == 0)
    rc = ly_key_spki(k, &spki, &spki_len);
  if (rc != 0)
    goto out;
  write_name(&subject, cn);
  if ((rc = ly_dw_finish(&subject)) != 0)
    goto out;
  if (issuer)
    rc = issuer_key_id(issuer, akid, sizeof(akid), &akid_len);
  else if ((rc = key_id(spki, spki_len, akid)) == 0)
    akid_len = WC_SHA_DIGEST_SIZE;
  if (rc != 0)
    goto out;
  if ((rc = ly_x509_rng_init(&rng)) != 0)
    goto out;
  have_rng = 1;
  cert_params_t p = {
      .signer = issuer_key ? issuer_key : k,
      .issuer = issuer ? issuer->subject.tlv : subject.p,
      .issuer_len = issuer ? issuer->subject.tlv_len : subject.len,
      .akid = akid,
      .akid_len = akid_len,
      .cn = cn,
      .spki = spki,
      .spki_len = spki_len,
      .not_before = not_before,
      .not_after = not_after,
      .is_ca = 1,
      .path_len = path_len,
      .uri = uri,
  };
  if ((rc = build_cert(&p, &rng, cert)) != 0)
    goto out;
  *key = k;
  k = NULL;
out:
  if (have_rng)
    wc_FreeRng(&rng);
  ly_dw_free(&subject);
  free(spki);
  ly_key_free(k);
  return rc;
}

int ly_ca_create_root(const char *trust_domain, int64_t not_before,
                      int64_t not_after, ly_key_t **key, ly_der_t *cert) {
  return create_ca(trust_domain, "lanyard root ", -1, NULL, NULL, not_before,
                   not_after, key, cert);
}

int ly_ca_create_intermediate(const ly_key_t *root_key, const ly_der_t *root,
                              const char *trust_domain, int64_t not_before,
                              int64_t not_after, ly_key_t **key,
                              ly_der_t *cert) {
  LY_ENSURE(ly_key_matches_cert(root_key, root->der, root->len), LY_ECERT);
  ly_x509_cert_t c;
  LY_GUARD(ly_x509_cert_parse(root->der, root->len, &c));
  int rc = create_ca(trust_domain, "lanyard signing ", 0, root_key, &c,
                     not_before, not_after, key, cert);
  ly_x509_cert_free(&c);
  return rc;
}
