#define _GNU_SOURCE /* memmem */
#include "lanyard/err.h"
#include "lanyard/x509.h"

#include "identity/x509_internal.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define TD "example.org"
#define ID "spiffe://example.org/ns/default/sa/web"
#define T0 ((int64_t)1700000000) /* 2023-11-14T22:13:20Z */

/* ---- helpers ------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* PEM around DER with a given label, via wolfCrypt's base64. */
static char *pem_wrap(const char *label, const unsigned char *der, size_t len) {
  word32 b64_len = (word32)(len * 2 + 16);
  unsigned char *b64 = malloc(b64_len);
  assert_non_null(b64);
  assert_int_equal(Base64_Encode(der, (word32)len, b64, &b64_len), 0);
  size_t cap = b64_len + 2 * strlen(label) + 64;
  char *pem = malloc(cap);
  assert_non_null(pem);
  snprintf(pem, cap, "-----BEGIN %s-----\n%.*s-----END %s-----\n", label,
           (int)b64_len, (const char *)b64, label);
  free(b64);
  return pem;
}

static void free_der(ly_der_t *d) {
  free(d->der);
  d->der = NULL;
  d->len = 0;
}

/* A GeneralNames SEQUENCE from (tag, value) pairs. */
static void general_names(ly_dw_t *w, int n, const unsigned char *tags,
                          const char *const *values) {
  size_t m = ly_dw_open(w, LY_DER_SEQ);
  for (int i = 0; i < n; i++)
    ly_dw_tlv(w, tags[i], values[i], strlen(values[i]));
  ly_dw_close(w, m);
  assert_int_equal(ly_dw_finish(w), 0);
}

static int check_crafted(const ly_key_t *key, int n, const unsigned char *tags,
                         const char *const *values, int is_ca,
                         const char **why) {
  ly_dw_t gn = {0};
  ly_der_t csr = {0};
  if (n > 0)
    general_names(&gn, n, tags, values);
  assert_int_equal(
      ly_x509_csr_build(key, n > 0 ? gn.p : NULL, gn.len, is_ca, &csr), 0);
  int rc = ly_csr_check(csr.der, csr.len, NULL, why);
  ly_dw_free(&gn);
  free_der(&csr);
  return rc;
}

static void spki_of(const ly_key_t *key, unsigned char **spki, size_t *len) {
  assert_int_equal(ly_key_spki(key, spki, len), 0);
}

/* Checks a request's self-signature with ly_x509_sig_verify, the routine
 * chain validation uses, before and after flipping a signature bit. */
static void check_self_signature(const ly_der_t *csr, unsigned sig_oid) {
  ly_dr_t r;
  ly_tlv_t req, info, alg, sig, t, spki;
  ly_dr_init(&r, csr->der, csr->len);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &req), 0);
  ly_dr_enter(&r, &req);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &info), 0);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &alg), 0);
  assert_int_equal(ly_dr_expect(&r, LY_DER_BIT_STRING, &sig), 0);
  ly_dr_enter(&r, &info);
  assert_int_equal(ly_dr_expect(&r, LY_DER_INTEGER, &t), 0);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &t), 0);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &spki), 0);
  /* past the unused-bits octet */
  assert_int_equal(ly_x509_sig_verify(info.tlv, info.tlv_len, sig_oid,
                                      sig.val + 1, sig.len - 1, spki.tlv,
                                      spki.tlv_len),
                   0);
  unsigned char *copy = malloc(sig.len);
  assert_non_null(copy);
  memcpy(copy, sig.val, sig.len);
  copy[sig.len / 2] ^= 0x10;
  assert_int_equal(ly_x509_sig_verify(info.tlv, info.tlv_len, sig_oid, copy + 1,
                                      sig.len - 1, spki.tlv, spki.tlv_len),
                   LY_ECRYPTO);
  free(copy);
}

/* A CA: root, signing intermediate, and a signer loaded from PEM. */
typedef struct {
  ly_key_t *root_key, *inter_key;
  ly_der_t root, inter;
  ly_signer_t *signer;
  ly_chain_t roots;
} ca_t;

static void ca_make(ca_t *ca, const char *td) {
  memset(ca, 0, sizeof(*ca));
  assert_int_equal(ly_ca_create_root(td, T0 - 86400, T0 + 10 * 86400,
                                     &ca->root_key, &ca->root),
                   0);
  assert_int_equal(ly_ca_create_intermediate(ca->root_key, &ca->root, td,
                                             T0 - 3600, T0 + 5 * 86400,
                                             &ca->inter_key, &ca->inter),
                   0);
  char *cert_pem, *key_pem;
  size_t cert_len, key_len;
  ly_chain_t one = {.certs = &ca->inter, .n = 1};
  assert_int_equal(ly_chain_to_pem(&one, &cert_pem, &cert_len), 0);
  assert_int_equal(ly_key_to_pem(ca->inter_key, &key_pem, &key_len), 0);
  const char *why = NULL;
  assert_int_equal(
      ly_signer_load(cert_pem, cert_len, key_pem, key_len, &ca->signer, &why),
      0);
  free(cert_pem);
  free(key_pem);
  assert_int_equal(ly_chain_push(&ca->roots, ca->root.der, ca->root.len), 0);
}

static void ca_free(ca_t *ca) {
  ly_signer_free(ca->signer);
  ly_key_free(ca->root_key);
  ly_key_free(ca->inter_key);
  free_der(&ca->root);
  free_der(&ca->inter);
  ly_chain_free(&ca->roots);
}

/* A fresh key and its SVID from `ca`, as the CA would issue it. */
static void issue(ca_t *ca, const char *id, int64_t nb, int64_t na,
                  ly_key_t **key, ly_der_t *svid) {
  ly_der_t csr = {0};
  ly_csr_t req;
  const char *why = NULL;
  assert_int_equal(ly_key_generate(key), 0);
  assert_int_equal(ly_csr_create(*key, id, &csr), 0);
  assert_int_equal(ly_csr_check(csr.der, csr.len, &req, &why), 0);
  assert_int_equal(ly_signer_issue(ca->signer, req.pubkey, req.pubkey_len,
                                   req.id.id, nb, na, svid),
                   0);
  free_der(&csr);
}

/* The serial's INTEGER in a certificate's DER: its content octets. */
static void serial_of(const ly_der_t *cert, const unsigned char **val,
                      size_t *len) {
  ly_dr_t r;
  ly_tlv_t t;
  ly_dr_init(&r, cert->der, cert->len);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &t), 0); /* Certificate */
  ly_dr_enter(&r, &t);
  assert_int_equal(ly_dr_expect(&r, LY_DER_SEQ, &t), 0); /* tbsCertificate */
  ly_dr_enter(&r, &t);
  assert_int_equal(ly_dr_get(&r, &t), 0); /* [0] version */
  assert_int_equal(ly_dr_expect(&r, LY_DER_INTEGER, &t), 0);
  *val = t.val;
  *len = t.len;
}

/* 128 random bits per serial (the README's promise): over many SVIDs
 * every one of the 128 bit positions is seen both set and clear, and
 * each INTEGER is positive and minimal (a zero octet only before a set
 * top bit, at most 17 octets). With 126 random bits, bits 127 and 126
 * never changed. */
static void test_serial_bits(void **state) {
  enum { N = 2048 };
  ca_t ca;
  ca_make(&ca, TD);
  ly_key_t *key = NULL;
  ly_der_t csr = {0};
  ly_csr_t req;
  const char *why = NULL;
  assert_int_equal(ly_key_generate(&key), 0);
  assert_int_equal(ly_csr_create(key, ID, &csr), 0);
  assert_int_equal(ly_csr_check(csr.der, csr.len, &req, &why), 0);
  unsigned ones[128] = {0};
  int with_zero_octet = 0;
  for (int i = 0; i < N; i++) {
    ly_der_t svid = {0};
    const unsigned char *v;
    size_t len;
    assert_int_equal(ly_signer_issue(ca.signer, req.pubkey, req.pubkey_len,
                                     req.id.id, T0, T0 + 3600, &svid),
                     0);
    serial_of(&svid, &v, &len);
    assert_true(len >= 1 && len <= 17);
    assert_true((v[0] & 0x80) == 0); /* positive */
    if (len > 1 && v[0] == 0) {
      assert_true(v[1] & 0x80); /* minimal: the zero octet is needed */
      v++, len--;
      with_zero_octet++;
    }
    assert_true(len <= 16);
    unsigned char n[16] = {0}; /* the value, right-aligned */
    memcpy(n + 16 - len, v, len);
    for (int b = 0; b < 128; b++)
      ones[b] += (n[15 - b / 8] >> (b % 8)) & 1;
    free_der(&svid);
  }
  for (int b = 0; b < 128; b++) {
    if (ones[b] == 0 || ones[b] == N)
      fail_msg("serial bit %d is always %d", b, ones[b] ? 1 : 0);
  }
  assert_true(with_zero_octet > 0);
  free_der(&csr);
  ly_key_free(key);
  ca_free(&ca);
}

/* ---- keys
 * ------------------------------------------------------------------*/

static void test_key_pem_roundtrip(void **state) {
  ly_key_t *key = NULL, *back = NULL;
  assert_int_equal(ly_key_generate(&key), 0);
  char *pem;
  size_t len;
  assert_int_equal(ly_key_to_pem(key, &pem, &len), 0);
  assert_int_equal(strlen(pem), len);
  assert_true(starts_with(pem, "-----BEGIN PRIVATE KEY-----\n"));
  const char *why = NULL;
  assert_int_equal(ly_key_from_pem(pem, len, &back, &why), 0);

  ly_der_t a = {0}, b = {0};
  assert_int_equal(ly_key_to_der(key, &a), 0);
  assert_int_equal(ly_key_to_der(back, &b), 0);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.der, b.der, a.len);

  /* the same key in SEC1 ("EC PRIVATE KEY"), as older tools write it */
  unsigned char sec1[256];
  int n = wc_EccKeyToDer(&key->k.ecc, sec1, sizeof(sec1));
  assert_true(n > 0);
  char *sec1_pem = pem_wrap("EC PRIVATE KEY", sec1, (size_t)n);
  ly_key_t *third = NULL;
  assert_int_equal(ly_key_from_pem(sec1_pem, strlen(sec1_pem), &third, &why),
                   0);
  ly_der_t c = {0};
  assert_int_equal(ly_key_to_der(third, &c), 0);
  assert_int_equal(a.len, c.len);
  assert_memory_equal(a.der, c.der, a.len);

  free(sec1_pem);
  free_der(&a);
  free_der(&b);
  free_der(&c);
  free(pem);
  ly_key_free(key);
  ly_key_free(back);
  ly_key_free(third);
}

static void test_key_pem_errors(void **state) {
  ly_key_t *key = NULL;
  const char *why = NULL;
  const char junk[] = "this is not a key\n";
  assert_int_equal(ly_key_from_pem(junk, sizeof(junk) - 1, &key, &why),
                   LY_EPARSE);
  assert_string_equal(why, "not PEM");

  const char cert_only[] = "-----BEGIN CERTIFICATE-----\nQUJD\n"
                           "-----END CERTIFICATE-----\n";
  assert_int_equal(
      ly_key_from_pem(cert_only, sizeof(cert_only) - 1, &key, &why),
      LY_ENOT_FOUND);
  assert_string_equal(why, "no key");

  const char corrupt[] = "-----BEGIN PRIVATE KEY-----\nQ09SUlVQVA==\n"
                         "-----END PRIVATE KEY-----\n";
  assert_int_equal(ly_key_from_pem(corrupt, sizeof(corrupt) - 1, &key, &why),
                   LY_ECRYPTO);
  assert_string_equal(why, "unparsable key");

  const char unterminated[] = "-----BEGIN PRIVATE KEY-----\nQUJD\n";
  assert_int_equal(
      ly_key_from_pem(unterminated, sizeof(unterminated) - 1, &key, &why),
      LY_EPARSE);
  assert_null(key);
}

/* ---- CSRs
 * ------------------------------------------------------------------*/

static void test_csr_accepts(void **state) {
  ly_key_t *key = NULL;
  ly_der_t csr = {0};
  assert_int_equal(ly_key_generate(&key), 0);
  assert_int_equal(ly_csr_create(key, ID, &csr), 0);
  ly_csr_t req;
  const char *why = NULL;
  assert_int_equal(ly_csr_check(csr.der, csr.len, &req, &why), 0);
  assert_string_equal(req.id.id, ID);
  check_self_signature(&csr, CTC_SHA256wECDSA);
  unsigned char *spki;
  size_t spki_len;
  spki_of(key, &spki, &spki_len);
  assert_int_equal(req.pubkey_len, spki_len);
  assert_memory_equal(req.pubkey, spki, spki_len);
  free(spki);
  free_der(&csr);
  ly_key_free(key);
}

static void test_csr_p384_accepted(void **state) {
  WC_RNG rng;
  ecc_key ecc;
  assert_int_equal(wc_InitRng(&rng), 0);
  assert_int_equal(wc_ecc_init(&ecc), 0);
  assert_int_equal(wc_ecc_make_key_ex(&rng, 48, &ecc, ECC_SECP384R1), 0);
  unsigned char sec1[512];
  int n = wc_EccKeyToDer(&ecc, sec1, sizeof(sec1));
  assert_true(n > 0);
  char *pem = pem_wrap("EC PRIVATE KEY", sec1, (size_t)n);
  ly_key_t *key = NULL;
  const char *why = NULL;
  assert_int_equal(ly_key_from_pem(pem, strlen(pem), &key, &why), 0);
  ly_der_t csr = {0};
  ly_csr_t req;
  assert_int_equal(ly_csr_create(key, ID, &csr), 0);
  assert_int_equal(ly_csr_check(csr.der, csr.len, &req, &why), 0);
  assert_string_equal(req.id.id, ID);
  check_self_signature(&csr, CTC_SHA384wECDSA);
  free_der(&csr);
  free(pem);
  ly_key_free(key);
  wc_ecc_free(&ecc);
  wc_FreeRng(&rng);
}

static void test_csr_refuses(void **state) {
  ly_key_t *key = NULL;
  ly_der_t csr = {0};
  const char *why = NULL;
  assert_int_equal(ly_key_generate(&key), 0);
  assert_int_equal(ly_csr_create(key, ID, &csr), 0);

  /* the last byte belongs to the signature's s value */
  csr.der[csr.len - 1] ^= 0x01;
  assert_int_equal(ly_csr_check(csr.der, csr.len, NULL, &why), LY_ECSR);
  assert_string_equal(why, "CSR signature does not verify");
  csr.der[csr.len - 1] ^= 0x01;
  assert_int_equal(ly_csr_check(csr.der, csr.len, NULL, &why), 0);

  /* truncated anywhere */
  assert_int_equal(ly_csr_check(csr.der, csr.len - 1, NULL, &why), LY_ECSR);
  assert_string_equal(why, "malformed CSR");
  assert_int_equal(ly_csr_check(csr.der, csr.len / 2, NULL, &why), LY_ECSR);
  assert_int_equal(ly_csr_check(csr.der, 0, NULL, &why), LY_ECSR);

  /* garbage */
  unsigned char junk[200];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (unsigned char)(i * 37 + 11);
  assert_int_equal(ly_csr_check(junk, sizeof(junk), NULL, &why), LY_ECSR);
  assert_string_equal(why, "malformed CSR");
  junk[0] = 0x30;
  junk[1] = 0x81;
  junk[2] = (unsigned char)(sizeof(junk) - 3);
  assert_int_equal(ly_csr_check(junk, sizeof(junk), NULL, &why), LY_ECSR);

  static const unsigned char uri[] = {LY_DER_CTX(6)};
  static const unsigned char uri_uri[] = {LY_DER_CTX(6), LY_DER_CTX(6)};
  static const unsigned char uri_dns[] = {LY_DER_CTX(6), LY_DER_CTX(2)};
  static const unsigned char dns[] = {LY_DER_CTX(2)};
  const char *one[] = {ID};
  const char *two[] = {ID, "spiffe://example.org/other"};
  const char *with_dns[] = {ID, "web.example.org"};
  const char *dns_only[] = {"web.example.org"};
  const char *not_spiffe[] = {"https://example.org/web"};
  const char *bad_td[] = {"spiffe://Example.org/web"};

  /* the builder itself is sound */
  assert_int_equal(check_crafted(key, 1, uri, one, 0, &why), 0);

  assert_int_equal(check_crafted(key, 1, uri, one, 1, &why), LY_ECSR);
  assert_string_equal(why, "CSR requests a CA certificate");
  assert_int_equal(check_crafted(key, 2, uri_uri, two, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR must have exactly one URI subjectAltName");
  /* DNS names next to the one URI are an X509-SVID's right; whether the CA
   * signs them is its dns_names' business */
  assert_int_equal(check_crafted(key, 2, uri_dns, with_dns, 0, &why), 0);
  static const unsigned char uri_ip[] = {LY_DER_CTX(6), LY_DER_CTX(7)};
  const char *with_ip[] = {ID, "\x7f\0\0\1"};
  assert_int_equal(check_crafted(key, 2, uri_ip, with_ip, 0, &why), LY_ECSR);
  assert_string_equal(why,
                      "CSR subjectAltName may hold only a URI and DNS names");
  const char *bad_dns[] = {ID, "-bad..name"};
  assert_int_equal(check_crafted(key, 2, uri_dns, bad_dns, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR DNS name is not a valid host name");
  const char *wild[] = {ID, "*.example.org"};
  assert_int_equal(check_crafted(key, 2, uri_dns, wild, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR DNS name is not a valid host name");
  assert_int_equal(check_crafted(key, 1, dns, dns_only, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR subjectAltName is not a URI");
  assert_int_equal(check_crafted(key, 0, NULL, NULL, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR has no subjectAltName");
  assert_int_equal(check_crafted(key, 1, uri, not_spiffe, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR URI SAN is not a valid SPIFFE ID");
  assert_int_equal(check_crafted(key, 1, uri, bad_td, 0, &why), LY_ECSR);
  assert_string_equal(why, "CSR URI SAN is not a valid SPIFFE ID");

  /* ly_csr_create_dns: the names come back out of ly_csr_check, in order */
  {
    const char *names[] = {"a.ns.svc", "b.example.org"};
    ly_der_t d = {0};
    ly_csr_t req;
    assert_int_equal(ly_csr_create_dns(key, ID, names, 2, &d), 0);
    assert_int_equal(ly_csr_check(d.der, d.len, &req, &why), 0);
    assert_string_equal(req.id.id, ID);
    assert_int_equal(req.ndns, 2);
    assert_string_equal(req.dns[0], "a.ns.svc");
    assert_string_equal(req.dns[1], "b.example.org");
    free_der(&d);
    const char *bad[] = {"no_dot..x"};
    assert_int_not_equal(ly_csr_create_dns(key, ID, bad, 1, &d), 0);
  }

  /* and ly_csr_create will not make such requests */
  ly_der_t bad = {0};
  assert_int_equal(ly_csr_create(key, "spiffe://Example.org/x", &bad),
                   LY_ESPIFFE_ID);

  free_der(&csr);
  ly_key_free(key);
}

static void test_csr_refuses_rsa(void **state) {
  WC_RNG rng;
  RsaKey rsa;
  assert_int_equal(wc_InitRng(&rng), 0);
  assert_int_equal(wc_InitRsaKey(&rsa, NULL), 0);
  assert_int_equal(wc_MakeRsaKey(&rsa, 2048, WC_RSA_EXPONENT, &rng), 0);
  unsigned char der[4096];
  int n = wc_RsaKeyToDer(&rsa, der, sizeof(der));
  assert_true(n > 0);
  char *pem = pem_wrap("RSA PRIVATE KEY", der, (size_t)n);
  ly_key_t *key = NULL;
  const char *why = NULL;
  assert_int_equal(ly_key_from_pem(pem, strlen(pem), &key, &why), 0);
  ly_der_t csr = {0};
  assert_int_equal(ly_csr_create(key, ID, &csr), 0);
  assert_int_equal(ly_csr_check(csr.der, csr.len, NULL, &why), LY_ECSR);
  assert_string_equal(why, "unsupported key type");
  /* RSA signatures verify (chains from other CAs may use them) */
  check_self_signature(&csr, CTC_SHA256wRSA);

  /* an RSA key also survives the PKCS#8 round trip */
  char *p8;
  size_t p8_len;
  ly_key_t *back = NULL;
  assert_int_equal(ly_key_to_pem(key, &p8, &p8_len), 0);
  assert_int_equal(ly_key_from_pem(p8, p8_len, &back, &why), 0);
  free(p8);

  free_der(&csr);
  free(pem);
  ly_key_free(key);
  ly_key_free(back);
  wc_FreeRsaKey(&rsa);
  wc_FreeRng(&rng);
}

/* wolfSSL's own request encoder (5.5.4) leaves the SAN out: such a request
 * parses, and is refused for the missing identity. */
static void test_csr_from_wolfssl(void **state) {
  ly_key_t *key = NULL;
  assert_int_equal(ly_key_generate(&key), 0);
  Cert *req = malloc(sizeof(*req));
  assert_non_null(req);
  assert_int_equal(wc_InitCert(req), 0);
  req->sigType = CTC_SHA256wECDSA;
  strcpy(req->subject.commonName, "web");
  unsigned char buf[2048];
  int body = wc_MakeCertReq_ex(req, buf, sizeof(buf), ECC_TYPE, &key->k.ecc);
  assert_true(body > 0);
  WC_RNG rng;
  assert_int_equal(wc_InitRng(&rng), 0);
  int n = wc_SignCert_ex(body, req->sigType, buf, sizeof(buf), ECC_TYPE,
                         &key->k.ecc, &rng);
  assert_true(n > 0);
  const char *why = NULL;
  assert_int_equal(ly_csr_check(buf, (size_t)n, NULL, &why), LY_ECSR);
  assert_string_equal(why, "CSR has no subjectAltName");
  wc_FreeRng(&rng);
  free(req);
  ly_key_free(key);
}

/* ---- issuing and verifying
 * --------------------------------------------------*/

static void test_ca_certs(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  ly_cert_info_t info;
  const char *why = NULL;
  assert_int_equal(ly_cert_info(ca.root.der, ca.root.len, &info), 0);
  assert_true(info.is_ca);
  assert_int_equal(info.key_usage, LY_KU_KEY_CERT_SIGN | LY_KU_CRL_SIGN);
  assert_string_equal(info.spiffe_id, "spiffe://" TD);
  assert_int_equal(info.not_before, T0 - 86400);
  assert_int_equal(info.not_after, T0 + 10 * 86400);
  assert_int_equal(ly_cert_check_issuer(&info, &why), 0);
  assert_int_equal(ly_cert_info(ca.inter.der, ca.inter.len, &info), 0);
  assert_true(info.is_ca);
  assert_int_equal(ly_cert_check_issuer(&info, &why), 0);
  assert_true(ly_key_matches_cert(ca.root_key, ca.root.der, ca.root.len));
  assert_true(ly_key_matches_cert(ca.inter_key, ca.inter.der, ca.inter.len));
  assert_false(ly_key_matches_cert(ca.root_key, ca.inter.der, ca.inter.len));

  /* the intermediate chains to the root on its own */
  ly_chain_t chain = {.certs = &ca.inter, .n = 1};
  assert_int_equal(ly_chain_verify(&chain, &ca.roots, T0, NULL, &why), 0);
  const ly_chain_t *sc = ly_signer_chain(ca.signer);
  assert_int_equal(sc->n, 1);
  assert_int_equal(sc->certs[0].len, ca.inter.len);
  assert_memory_equal(sc->certs[0].der, ca.inter.der, ca.inter.len);
  ca_free(&ca);
}

/* An SVID with DNS SANs after its URI SAN (the webhook's serving
 * certificate) is a valid X509-SVID: it verifies, names its SPIFFE ID, and
 * carries the names in order. */
static void test_issue_with_dns(void **state) {
  (void)state;
  ca_t ca;
  ca_make(&ca, TD);
  ly_key_t *key = NULL;
  ly_der_t csr = {0}, svid = {0};
  ly_csr_t req;
  const char *why = NULL;
  const char *names[] = {"lanyard-injector.lanyard.svc"};
  assert_int_equal(ly_key_generate(&key), 0);
  assert_int_equal(ly_csr_create_dns(key, ID, names, 1, &csr), 0);
  assert_int_equal(ly_csr_check(csr.der, csr.len, &req, &why), 0);
  const char *dns[] = {req.dns[0]};
  assert_int_equal(ly_signer_issue_dns(ca.signer, req.pubkey, req.pubkey_len,
                                       req.id.id, dns, req.ndns, T0 - 60,
                                       T0 + 3600, &svid),
                   0);
  ly_chain_t chain = {0};
  assert_int_equal(ly_chain_push(&chain, svid.der, svid.len), 0);
  assert_int_equal(ly_chain_push(&chain, ca.inter.der, ca.inter.len), 0);
  ly_cert_info_t info;
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, T0, TD, &info, &why), 0);
  assert_string_equal(info.spiffe_id, ID);
  assert_int_equal(info.san_count, 2);
  assert_int_equal(info.uri_san_count, 1);
  const char needle[] = "lanyard-injector.lanyard.svc";
  assert_non_null(memmem(svid.der, svid.len, needle, sizeof(needle) - 1));
  /* the issuer writes only host names */
  const char *bad[] = {"*.lanyard.svc"};
  ly_der_t no = {0};
  assert_int_not_equal(ly_signer_issue_dns(ca.signer, req.pubkey,
                                           req.pubkey_len, req.id.id, bad, 1,
                                           T0, T0 + 60, &no),
                       0);
  ly_chain_free(&chain);
  free_der(&svid);
  free_der(&csr);
  ly_key_free(key);
  ca_free(&ca);
}

static void test_issue_and_verify(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  ly_key_t *key = NULL;
  ly_der_t svid = {0};
  const int64_t nb = T0 - 60, na = T0 + 3600;
  issue(&ca, ID, nb, na, &key, &svid);

  ly_chain_t chain = {0};
  assert_int_equal(ly_chain_push(&chain, svid.der, svid.len), 0);
  assert_int_equal(ly_chain_push(&chain, ca.inter.der, ca.inter.len), 0);
  ly_cert_info_t info, direct;
  const char *why = NULL;
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, T0, TD, &info, &why), 0);
  assert_string_equal(info.spiffe_id, ID);
  assert_int_equal(info.not_before, nb);
  assert_int_equal(info.not_after, na);
  assert_int_equal(info.is_ca, 0);
  assert_true(info.has_key_usage);
  assert_int_equal(info.key_usage, LY_KU_DIGITAL_SIGNATURE);
  assert_true(info.has_ext_key_usage);
  assert_int_equal(info.ext_key_usage, LY_EKU_SERVER_AUTH | LY_EKU_CLIENT_AUTH);
  assert_int_equal(info.san_count, 1);
  assert_int_equal(info.uri_san_count, 1);
  assert_int_equal(strlen(info.serial_hex), 32);
  assert_int_equal(ly_cert_info(svid.der, svid.len, &direct), 0);
  assert_string_equal(direct.serial_hex, info.serial_hex);

  /* the window is inclusive at both ends */
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, nb, TD, NULL, &why), 0);
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, na, TD, NULL, &why), 0);
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, na + 1, TD, NULL, &why),
                   LY_ECERT);
  assert_string_equal(why, "expired: certificate has expired");
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, nb - 1, TD, NULL, &why),
                   LY_ECERT);
  assert_string_equal(why, "expired: certificate is not yet valid");
  /* the intermediate's own window counts too */
  assert_int_equal(ly_chain_verify(&chain, &ca.roots, T0 - 3601, NULL, &why),
                   LY_ECERT);
  assert_string_equal(why, "expired: certificate is not yet valid");

  assert_int_equal(
      ly_svid_verify(&chain, &ca.roots, T0, "other.org", NULL, &why), LY_ECERT);
  assert_string_equal(why, "bad_identity: SPIFFE ID not in trust domain");
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, T0, NULL, NULL, &why), 0);

  /* ... and the intermediate is needed */
  ly_chain_t leaf_only = {.certs = &svid, .n = 1};
  assert_int_equal(ly_svid_verify(&leaf_only, &ca.roots, T0, TD, NULL, &why),
                   LY_ECERT);
  assert_true(starts_with(why, "unknown_ca: "));

  assert_true(ly_key_matches_cert(key, svid.der, svid.len));
  assert_false(ly_key_matches_cert(ca.inter_key, svid.der, svid.len));

  ly_chain_free(&chain);
  free_der(&svid);
  ly_key_free(key);
  ca_free(&ca);
}

static void test_verify_unknown_roots(void **state) {
  ca_t ca, same_name, other;
  ca_make(&ca, TD);
  /* same trust domain, so the same names, but other keys */
  ca_make(&same_name, TD);
  ca_make(&other, "other.org");
  ly_key_t *key = NULL;
  ly_der_t svid = {0};
  issue(&ca, ID, T0 - 60, T0 + 3600, &key, &svid);
  ly_chain_t chain = {0};
  assert_int_equal(ly_chain_push(&chain, svid.der, svid.len), 0);
  assert_int_equal(ly_chain_push(&chain, ca.inter.der, ca.inter.len), 0);
  const char *why = NULL;
  assert_int_equal(ly_svid_verify(&chain, &same_name.roots, T0, TD, NULL, &why),
                   LY_ECERT);
  assert_true(starts_with(why, "unknown_ca: "));
  assert_int_equal(ly_svid_verify(&chain, &other.roots, T0, TD, NULL, &why),
                   LY_ECERT);
  assert_string_equal(why, "unknown_ca: no path to a trusted root");

  /* a bundle with several roots: any one of them will do */
  ly_chain_t bundle = {0};
  assert_int_equal(ly_chain_push(&bundle, other.root.der, other.root.len), 0);
  assert_int_equal(
      ly_chain_push(&bundle, same_name.root.der, same_name.root.len), 0);
  assert_int_equal(ly_chain_push(&bundle, ca.root.der, ca.root.len), 0);
  assert_int_equal(ly_svid_verify(&chain, &bundle, T0, TD, NULL, &why), 0);

  /* intermediates in any order, with strangers among them */
  ly_chain_t mixed = {0};
  assert_int_equal(ly_chain_push(&mixed, svid.der, svid.len), 0);
  assert_int_equal(
      ly_chain_push(&mixed, same_name.inter.der, same_name.inter.len), 0);
  assert_int_equal(ly_chain_push(&mixed, other.inter.der, other.inter.len), 0);
  assert_int_equal(ly_chain_push(&mixed, ca.root.der, ca.root.len), 0);
  assert_int_equal(ly_chain_push(&mixed, ca.inter.der, ca.inter.len), 0);
  assert_int_equal(ly_svid_verify(&mixed, &ca.roots, T0, TD, NULL, &why), 0);

  ly_chain_free(&mixed);
  ly_chain_free(&bundle);
  ly_chain_free(&chain);
  free_der(&svid);
  ly_key_free(key);
  ca_free(&ca);
  ca_free(&same_name);
  ca_free(&other);
}

static void test_verify_bad_signature(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  ly_key_t *key = NULL;
  ly_der_t svid = {0};
  issue(&ca, ID, T0 - 60, T0 + 3600, &key, &svid);
  svid.der[svid.len - 1] ^= 0x01;
  ly_chain_t chain = {0};
  assert_int_equal(ly_chain_push(&chain, svid.der, svid.len), 0);
  assert_int_equal(ly_chain_push(&chain, ca.inter.der, ca.inter.len), 0);
  const char *why = NULL;
  assert_int_equal(ly_svid_verify(&chain, &ca.roots, T0, TD, NULL, &why),
                   LY_ECERT);
  assert_string_equal(why, "unknown_ca: certificate signature does not verify");

  ly_chain_t junk = {0};
  assert_int_equal(ly_chain_push(&junk, "\x30\x03\x02\x01\x01", 5), 0);
  assert_int_equal(ly_chain_verify(&junk, &ca.roots, T0, NULL, &why), LY_ECERT);
  assert_string_equal(why, "protocol: malformed certificate");

  ly_chain_free(&junk);
  ly_chain_free(&chain);
  free_der(&svid);
  ly_key_free(key);
  ca_free(&ca);
}

/* A chain leaf <- sub-CA for `sub_td` <- the pathLen-0 signing certificate
 * <- root, verified at T0. */
static int verify_under_sub_ca(ca_t *ca, const char *sub_td, const char **why) {
  ly_key_t *sub_key = NULL, *leaf_key = NULL;
  ly_der_t sub = {0}, leaf = {0};
  assert_int_equal(ly_ca_create_intermediate(ca->inter_key, &ca->inter, sub_td,
                                             T0 - 60, T0 + 3600, &sub_key,
                                             &sub),
                   0);
  char *cert_pem, *key_pem;
  size_t cert_len, key_len;
  ly_chain_t one = {.certs = &sub, .n = 1};
  assert_int_equal(ly_chain_to_pem(&one, &cert_pem, &cert_len), 0);
  assert_int_equal(ly_key_to_pem(sub_key, &key_pem, &key_len), 0);
  ca_t sub_ca = {0};
  assert_int_equal(
      ly_signer_load(cert_pem, cert_len, key_pem, key_len, &sub_ca.signer, why),
      0);
  issue(&sub_ca, ID, T0 - 60, T0 + 60, &leaf_key, &leaf);
  ly_chain_t chain = {0};
  assert_int_equal(ly_chain_push(&chain, leaf.der, leaf.len), 0);
  assert_int_equal(ly_chain_push(&chain, sub.der, sub.len), 0);
  assert_int_equal(ly_chain_push(&chain, ca->inter.der, ca->inter.len), 0);
  int rc = ly_chain_verify(&chain, &ca->roots, T0, NULL, why);
  ly_chain_free(&chain);
  ly_signer_free(sub_ca.signer);
  free(cert_pem);
  free(key_pem);
  free_der(&sub);
  free_der(&leaf);
  ly_key_free(sub_key);
  ly_key_free(leaf_key);
  return rc;
}

/* The signing certificate has pathLenConstraint 0: no CA below it, except
 * a self-issued one (same name, a new key), which RFC 5280 6.1.4 (l) does
 * not count. */
static void test_verify_path_length(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  const char *why = NULL;
  assert_int_equal(verify_under_sub_ca(&ca, "sub." TD, &why), LY_ECERT);
  assert_string_equal(why, "unknown_ca: path length constraint exceeded");
  assert_int_equal(verify_under_sub_ca(&ca, TD, &why), 0);
  ca_free(&ca);
}

/* Validity past 2049 is written as GeneralizedTime and read back exactly. */
static void test_generalized_time(void **state) {
  ca_t ca;
  memset(&ca, 0, sizeof(ca));
  const int64_t y2050 = 2524608000; /* 2050-01-01T00:00:00Z */
  assert_int_equal(
      ly_ca_create_root(TD, T0, y2050 + 86399, &ca.root_key, &ca.root), 0);
  ly_cert_info_t info;
  assert_int_equal(ly_cert_info(ca.root.der, ca.root.len, &info), 0);
  assert_int_equal(info.not_before, T0);
  assert_int_equal(info.not_after, y2050 + 86399);
  ly_der_t bad = {0};
  ly_key_t *k = NULL;
  assert_int_not_equal(ly_ca_create_root(TD, T0, T0, &k, &bad), 0);
  assert_int_equal(ly_ca_create_root("Bad.Domain", T0, T0 + 1, &k, &bad),
                   LY_ESPIFFE_ID);
  ly_key_free(ca.root_key);
  free_der(&ca.root);
}

static void test_signer_load_errors(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  char *inter_pem, *root_key_pem;
  size_t inter_len, root_key_len;
  ly_chain_t one = {.certs = &ca.inter, .n = 1};
  assert_int_equal(ly_chain_to_pem(&one, &inter_pem, &inter_len), 0);
  assert_int_equal(ly_key_to_pem(ca.root_key, &root_key_pem, &root_key_len), 0);
  ly_signer_t *s = NULL;
  const char *why = NULL;
  assert_int_equal(ly_signer_load(inter_pem, inter_len, root_key_pem,
                                  root_key_len, &s, &why),
                   LY_ECERT);
  assert_string_equal(why, "key does not match the signing certificate");
  assert_null(s);
  assert_int_equal(ly_signer_load(root_key_pem, root_key_len, root_key_pem,
                                  root_key_len, &s, &why),
                   LY_ENOT_FOUND);
  assert_string_equal(why, "no certificate");

  /* a leaf cannot sign */
  ly_key_t *key = NULL;
  ly_der_t svid = {0};
  issue(&ca, ID, T0 - 60, T0 + 60, &key, &svid);
  char *svid_pem, *key_pem;
  size_t svid_len, key_len;
  ly_chain_t leaf = {.certs = &svid, .n = 1};
  assert_int_equal(ly_chain_to_pem(&leaf, &svid_pem, &svid_len), 0);
  assert_int_equal(ly_key_to_pem(key, &key_pem, &key_len), 0);
  assert_int_equal(
      ly_signer_load(svid_pem, svid_len, key_pem, key_len, &s, &why), LY_ECERT);
  assert_string_equal(why, "unknown_ca: signing certificate is not a CA");

  /* issuing refuses what a CSR check would */
  unsigned char *spki;
  size_t spki_len;
  spki_of(key, &spki, &spki_len);
  ly_der_t out = {0};
  assert_int_equal(ly_signer_issue(ca.signer, spki, spki_len, "spiffe://x/", T0,
                                   T0 + 1, &out),
                   LY_ESPIFFE_ID);
  assert_int_not_equal(
      ly_signer_issue(ca.signer, spki, spki_len - 1, ID, T0, T0 + 1, &out), 0);
  assert_int_not_equal(
      ly_signer_issue(ca.signer, spki, spki_len, ID, T0, T0 - 1, &out), 0);
  assert_null(out.der);

  free(spki);
  free(svid_pem);
  free(key_pem);
  free(inter_pem);
  free(root_key_pem);
  free_der(&svid);
  ly_key_free(key);
  ca_free(&ca);
}

/* ---- chains and leaf rules
 * -------------------------------------------------*/

static void test_chain_pem(void **state) {
  ca_t ca;
  ca_make(&ca, TD);
  ly_chain_t two = {0}, back = {0};
  assert_int_equal(ly_chain_push(&two, ca.inter.der, ca.inter.len), 0);
  assert_int_equal(ly_chain_push(&two, ca.root.der, ca.root.len), 0);
  char *pem;
  size_t len;
  assert_int_equal(ly_chain_to_pem(&two, &pem, &len), 0);
  assert_int_equal(strlen(pem), len);

  /* a key block in between is skipped */
  char *key_pem;
  size_t key_len;
  assert_int_equal(ly_key_to_pem(ca.root_key, &key_pem, &key_len), 0);
  size_t cap = len + key_len + 1;
  char *mixed = malloc(cap);
  assert_non_null(mixed);
  snprintf(mixed, cap, "%s%s", key_pem, pem);
  const char *why = NULL;
  assert_int_equal(ly_chain_from_pem(mixed, strlen(mixed), &back, &why), 0);
  assert_int_equal(back.n, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(back.certs[i].len, two.certs[i].len);
    assert_memory_equal(back.certs[i].der, two.certs[i].der, two.certs[i].len);
  }
  ly_chain_free(&back);

  ly_chain_t none = {0};
  assert_int_equal(ly_chain_from_pem(key_pem, key_len, &none, &why),
                   LY_ENOT_FOUND);
  assert_string_equal(why, "no certificate");
  assert_int_equal(ly_chain_from_pem("hello", 5, &none, &why), LY_EPARSE);
  assert_string_equal(why, "not PEM");
  const char corrupt[] = "-----BEGIN CERTIFICATE-----\nQ09SUlVQVA==\n"
                         "-----END CERTIFICATE-----\n";
  assert_int_equal(ly_chain_from_pem(corrupt, sizeof(corrupt) - 1, &none, &why),
                   LY_ECERT);
  assert_string_equal(why, "malformed certificate");
  assert_int_equal(none.n, 0);

  free(mixed);
  free(key_pem);
  free(pem);
  ly_chain_free(&two);
  ca_free(&ca);
}

static void test_leaf_rules(void **state) {
  ly_cert_info_t good = {
      .has_key_usage = 1,
      .key_usage = LY_KU_DIGITAL_SIGNATURE,
      .san_count = 1,
      .uri_san_count = 1,
      .spiffe_id = ID,
  };
  const char *why = NULL;
  assert_int_equal(ly_svid_check_leaf(&good, TD, &why), 0);
  static const struct {
    int field;
    const char *why;
  } cases[] = {
      {0, "bad_identity: leaf is a CA"},
      {1, "bad_identity: leaf lacks digitalSignature"},
      {2, "bad_identity: leaf lacks digitalSignature"},
      {3, "bad_identity: leaf has keyCertSign"},
      {4, "bad_identity: leaf has cRLSign"},
      {5, "bad_identity: no URI SAN"},
      {6, "bad_identity: leaf has more than one URI SAN"},
      {7, "bad_identity: URI SAN is not a valid SPIFFE ID"},
      {8, "bad_identity: a workload SPIFFE ID needs a path (X509-SVID 3.1)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_cert_info_t bad = good;
    switch (cases[i].field) {
    case 0:
      bad.is_ca = 1;
      break;
    case 1:
      bad.has_key_usage = 0;
      break;
    case 2:
      bad.key_usage = LY_KU_KEY_CERT_SIGN;
      break;
    case 3:
      bad.key_usage |= LY_KU_KEY_CERT_SIGN;
      break;
    case 4:
      bad.key_usage |= LY_KU_CRL_SIGN;
      break;
    case 5:
      bad.uri_san_count = 0;
      bad.spiffe_id[0] = '\0';
      break;
    case 6:
      bad.uri_san_count = 2;
      bad.spiffe_id[0] = '\0';
      break;
    case 7:
      bad.spiffe_id[0] = '\0';
      break;
    default: /* a signing certificate's ID, the trust domain alone */
      strcpy(bad.spiffe_id, "spiffe://" TD);
      break;
    }
    assert_int_equal(ly_svid_check_leaf(&bad, NULL, &why), LY_ECERT);
    assert_string_equal(why, cases[i].why);
  }

  ly_cert_info_t ca = {
      .is_ca = 1, .has_key_usage = 1, .key_usage = LY_KU_KEY_CERT_SIGN};
  assert_int_equal(ly_cert_check_issuer(&ca, &why), 0);
  ca.key_usage = LY_KU_CRL_SIGN;
  assert_int_equal(ly_cert_check_issuer(&ca, &why), LY_ECERT);
  assert_string_equal(why, "unknown_ca: signing certificate lacks keyCertSign");
  ca.is_ca = 0;
  assert_int_equal(ly_cert_check_issuer(&ca, &why), LY_ECERT);
  assert_string_equal(why, "unknown_ca: signing certificate is not a CA");
}

/* ---- crafted chains: the RFC 5280 rules and name constraints ---------------
 * Certificates built field by field (the DER writer, signed with
 * ly_key_sign_der), so each test can break exactly one rule. */

enum {
  TC_CA = 1 << 0,
  TC_NO_AKID = 1 << 1,
  TC_NO_SKID = 1 << 2,
  TC_BC_NONCRITICAL = 1 << 3,
  TC_AKID_CRITICAL = 1 << 4,
  TC_UNKNOWN_CRITICAL = 1 << 5,
  TC_SAN_CRITICAL = 1 << 6,
  TC_NC_NONCRITICAL = 1 << 7,
  TC_POLICY_CONSTRAINTS = 1 << 8,
  TC_EMPTY_EKU = 1 << 9,
};

typedef struct {
  ly_key_t *key;
  ly_der_t der;
  unsigned char skid[WC_SHA_DIGEST_SIZE];
  ly_dw_t subject; /* Name, DER */
} tc_t;

/* A GeneralName: its tag and contents (for a directoryName, [4], a Name
 * DER; n == 0 means strlen). */
typedef struct {
  unsigned char tag;
  const char *v;
  size_t n;
} gn_t;

#define GN_EMAIL 0x81
#define GN_DNS 0x82
#define GN_DIR 0xa4
#define GN_URI 0x86
#define GN_IP 0x87
#define GN_OTHER 0xa0

static void write_gn(ly_dw_t *w, const gn_t *g) {
  ly_dw_tlv(w, g->tag, g->v, g->n ? g->n : strlen(g->v));
}

/* GeneralNames from a list, into a fresh writer. */
static void gns(ly_dw_t *w, const gn_t *g, size_t n) {
  size_t seq = ly_dw_open(w, LY_DER_SEQ);
  for (size_t i = 0; i < n; i++)
    write_gn(w, &g[i]);
  ly_dw_close(w, seq);
  assert_int_equal(ly_dw_finish(w), 0);
}

/* NameConstraints { permittedSubtrees [0], excludedSubtrees [1] }; a list
 * with n == SIZE_MAX is left out, one with n == 0 is written empty. */
static void subtrees(ly_dw_t *w, unsigned char tag, const gn_t *g, size_t n) {
  if (n == SIZE_MAX)
    return;
  size_t t = ly_dw_open(w, tag);
  for (size_t i = 0; i < n; i++) {
    size_t st = ly_dw_open(w, LY_DER_SEQ);
    write_gn(w, &g[i]);
    ly_dw_close(w, st);
  }
  ly_dw_close(w, t);
}

static void ncs(ly_dw_t *w, const gn_t *permitted, size_t np,
                const gn_t *excluded, size_t ne) {
  size_t seq = ly_dw_open(w, LY_DER_SEQ);
  subtrees(w, LY_DER_CTX_CONS(0), permitted, np);
  subtrees(w, LY_DER_CTX_CONS(1), excluded, ne);
  ly_dw_close(w, seq);
  assert_int_equal(ly_dw_finish(w), 0);
}

/* A Name of O=org (PrintableString) and CN=cn (UTF8String), either may be
 * NULL. */
static void dn(ly_dw_t *w, const char *org, const char *cn) {
  static const unsigned char oid_o[] = {0x55, 0x04, 0x0a};
  static const unsigned char oid_cn[] = {0x55, 0x04, 0x03};
  size_t name = ly_dw_open(w, LY_DER_SEQ);
  for (int i = 0; i < 2; i++) {
    const char *v = i == 0 ? org : cn;
    if (!v)
      continue;
    size_t rdn = ly_dw_open(w, LY_DER_SET);
    size_t atv = ly_dw_open(w, LY_DER_SEQ);
    ly_dw_tlv(w, LY_DER_OID, i == 0 ? oid_o : oid_cn, 3);
    ly_dw_tlv(w, i == 0 ? 0x13 : LY_DER_UTF8, v, strlen(v));
    ly_dw_close(w, atv);
    ly_dw_close(w, rdn);
  }
  ly_dw_close(w, name);
  assert_int_equal(ly_dw_finish(w), 0);
}

static void ext(ly_dw_t *w, const unsigned char *oid, size_t oid_len,
                int critical, const void *value, size_t n) {
  size_t e = ly_dw_open(w, LY_DER_SEQ);
  ly_dw_tlv(w, LY_DER_OID, oid, oid_len);
  if (critical)
    ly_dw_tlv(w, LY_DER_BOOLEAN, "\xff", 1);
  ly_dw_tlv(w, LY_DER_OCTET_STRING, value, n);
  ly_dw_close(w, e);
}

/* A certificate for a fresh key, subject O=org, CN=cn, issued by `issuer`
 * (NULL: self-signed), valid T0 +- 1 h; a CA with keyCertSign, or a leaf
 * with digitalSignature; SKID and AKID; san and nc (may be NULL) as
 * written by gns and ncs; flags break rules one at a time. */
static void tc_make(tc_t *c, const tc_t *issuer, const char *org,
                    const char *cn, unsigned flags, const ly_dw_t *san,
                    const ly_dw_t *nc) {
  static const unsigned char oid_bc[] = {0x55, 0x1d, 0x13},
                             oid_ku[] = {0x55, 0x1d, 0x0f},
                             oid_skid[] = {0x55, 0x1d, 0x0e},
                             oid_akid[] = {0x55, 0x1d, 0x23},
                             oid_san[] = {0x55, 0x1d, 0x11},
                             oid_nc[] = {0x55, 0x1d, 0x1e},
                             oid_pc[] = {0x55, 0x1d, 0x24},
                             oid_eku[] = {0x55, 0x1d, 0x25},
                             oid_private[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                              0x83, 0xb3, 0x3a, 0x01};
  static unsigned char serial = 1;
  memset(c, 0, sizeof(*c));
  assert_int_equal(ly_key_generate(&c->key), 0);
  unsigned char *spki;
  size_t spki_len;
  spki_of(c->key, &spki, &spki_len);
  assert_int_equal(wc_ShaHash(spki, (word32)spki_len, c->skid), 0);
  dn(&c->subject, org, cn);
  const ly_key_t *signer = issuer ? issuer->key : c->key;
  const unsigned char *akid = issuer ? issuer->skid : c->skid;
  const ly_dw_t *issuer_name = issuer ? &issuer->subject : &c->subject;

  ly_dw_t w = {0}, v = {0};
  size_t tbs = ly_dw_open(&w, LY_DER_SEQ);
  size_t ver = ly_dw_open(&w, LY_DER_CTX_CONS(0));
  ly_dw_tlv(&w, LY_DER_INTEGER, "\x02", 1);
  ly_dw_close(&w, ver);
  serial++;
  ly_dw_tlv(&w, LY_DER_INTEGER, &serial, 1);
  ly_key_sigalg(signer, &w);
  ly_dw_bytes(&w, issuer_name->p, issuer_name->len);
  size_t validity = ly_dw_open(&w, LY_DER_SEQ);
  assert_int_equal(ly_x509_time_encode(&w, T0 - 3600), 0);
  assert_int_equal(ly_x509_time_encode(&w, T0 + 3600), 0);
  ly_dw_close(&w, validity);
  ly_dw_bytes(&w, c->subject.p, c->subject.len);
  ly_dw_bytes(&w, spki, spki_len);
  size_t exts_tag = ly_dw_open(&w, LY_DER_CTX_CONS(3));
  size_t exts = ly_dw_open(&w, LY_DER_SEQ);

  size_t m = ly_dw_open(&v, LY_DER_SEQ);
  if (flags & TC_CA)
    ly_dw_tlv(&v, LY_DER_BOOLEAN, "\xff", 1);
  ly_dw_close(&v, m);
  ext(&w, oid_bc, 3, !(flags & TC_BC_NONCRITICAL), v.p, v.len);
  v.len = 0;
  /* digitalSignature is bit 0, keyCertSign bit 5, cRLSign bit 6 */
  ly_dw_named_bits(&v, (flags & TC_CA) ? (1u << 5 | 1u << 6) : 1u, 9);
  ext(&w, oid_ku, 3, 1, v.p, v.len);
  v.len = 0;
  if (!(flags & TC_NO_SKID)) {
    ly_dw_tlv(&v, LY_DER_OCTET_STRING, c->skid, sizeof(c->skid));
    ext(&w, oid_skid, 3, 0, v.p, v.len);
    v.len = 0;
  }
  if (!(flags & TC_NO_AKID)) {
    m = ly_dw_open(&v, LY_DER_SEQ);
    ly_dw_tlv(&v, LY_DER_CTX(0), akid, WC_SHA_DIGEST_SIZE);
    ly_dw_close(&v, m);
    ext(&w, oid_akid, 3, (flags & TC_AKID_CRITICAL) != 0, v.p, v.len);
    v.len = 0;
  }
  if (san)
    ext(&w, oid_san, 3, (flags & TC_SAN_CRITICAL) != 0, san->p, san->len);
  if (nc)
    ext(&w, oid_nc, 3, !(flags & TC_NC_NONCRITICAL), nc->p, nc->len);
  if (flags & TC_POLICY_CONSTRAINTS) {
    /* requireExplicitPolicy 0, not marked critical */
    ext(&w, oid_pc, 3, 0, "\x30\x03\x80\x01\x00", 5);
  }
  if (flags & TC_EMPTY_EKU)
    ext(&w, oid_eku, 3, 0, "\x30\x00", 2);
  if (flags & TC_UNKNOWN_CRITICAL)
    ext(&w, oid_private, sizeof(oid_private), 1, "\x05\x00", 2);
  ly_dw_close(&w, exts);
  ly_dw_close(&w, exts_tag);
  ly_dw_close(&w, tbs);

  WC_RNG rng;
  assert_int_equal(ly_x509_rng_init(&rng), 0);
  assert_int_equal(ly_key_sign_der(signer, &rng, &w), 0);
  wc_FreeRng(&rng);
  c->der.der = w.p;
  c->der.len = w.len;
  ly_dw_free(&v);
  free(spki);
}

static void tc_free(tc_t *c) {
  ly_key_free(c->key);
  free_der(&c->der);
  ly_dw_free(&c->subject);
}

/* Verifies leaf [<- inter] <- root at T0: "ok" or the reason. With svid,
 * as ly_svid_verify (no trust domain), else as ly_chain_verify. */
static const char *verdict(const tc_t *leaf, const tc_t *inter,
                           const tc_t *root, int svid) {
  ly_chain_t chain = {0}, roots = {0};
  assert_int_equal(ly_chain_push(&chain, leaf->der.der, leaf->der.len), 0);
  if (inter)
    assert_int_equal(ly_chain_push(&chain, inter->der.der, inter->der.len), 0);
  assert_int_equal(ly_chain_push(&roots, root->der.der, root->der.len), 0);
  const char *why = NULL;
  int rc = svid ? ly_svid_verify(&chain, &roots, T0, NULL, NULL, &why)
                : ly_chain_verify(&chain, &roots, T0, NULL, &why);
  ly_chain_free(&chain);
  ly_chain_free(&roots);
  if (rc == 0)
    return "ok";
  assert_int_equal(rc, LY_ECERT);
  assert_non_null(why);
  return why;
}

/* A leaf with these SAN entries under a root with these constraints, as
 * ly_chain_verify sees it: "ok" or the reason. */
static const char *nc_verdict(const gn_t *permitted, size_t np,
                              const gn_t *excluded, size_t ne,
                              const char *leaf_org, const gn_t *names,
                              size_t n) {
  ly_dw_t nc = {0}, san = {0};
  tc_t root, leaf;
  ncs(&nc, permitted, np, excluded, ne);
  if (n)
    gns(&san, names, n);
  tc_make(&root, NULL, "test", "constrained root", TC_CA, NULL, &nc);
  tc_make(&leaf, &root, leaf_org, "leaf", 0, n ? &san : NULL, NULL);
  const char *why = verdict(&leaf, NULL, &root, 0);
  tc_free(&leaf);
  tc_free(&root);
  ly_dw_free(&nc);
  ly_dw_free(&san);
  return why;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NONE NULL, SIZE_MAX

static void test_verify_rfc5280_rules(void **state) {
  static const gn_t uri[] = {{GN_URI, ID, 0}};
  ly_dw_t san = {0};
  gns(&san, uri, 1);
  tc_t root, inter, leaf;
  tc_make(&root, NULL, "test", "root", TC_CA, NULL, NULL);
  tc_make(&inter, &root, "test", "inter", TC_CA, NULL, NULL);
  tc_make(&leaf, &inter, "test", "leaf", 0, &san, NULL);
  assert_string_equal(verdict(&leaf, &inter, &root, 1), "ok");
  tc_free(&leaf);

  /* one broken rule per case, on the certificate named */
  static const struct {
    int on; /* 0 leaf, 1 intermediate, 2 root */
    unsigned flags;
    const char *why;
  } cases[] = {
      {0, TC_NO_AKID,
       "protocol: certificate lacks an authority key identifier"},
      {1, TC_NO_AKID,
       "protocol: certificate lacks an authority key identifier"},
      {0, TC_AKID_CRITICAL, "protocol: critical authorityKeyIdentifier"},
      {0, TC_UNKNOWN_CRITICAL, "protocol: unsupported critical extension"},
      {2, TC_UNKNOWN_CRITICAL, "protocol: unsupported critical extension"},
      {1, TC_NO_SKID,
       "unknown_ca: signing certificate lacks a subject key identifier"},
      {2, TC_NO_SKID,
       "unknown_ca: signing certificate lacks a subject key identifier"},
      {2, TC_BC_NONCRITICAL,
       "unknown_ca: signing certificate's basicConstraints is not critical"},
      {1, TC_POLICY_CONSTRAINTS,
       "protocol: policyConstraints must be critical"},
      {0, TC_EMPTY_EKU, "protocol: empty extendedKeyUsage"},
  };
  for (size_t i = 0; i < N(cases); i++) {
    tc_t r2, i2, l2;
    unsigned f = cases[i].flags;
    tc_make(&r2, NULL, "test", "root", TC_CA | (cases[i].on == 2 ? f : 0), NULL,
            NULL);
    tc_make(&i2, &r2, "test", "inter", TC_CA | (cases[i].on == 1 ? f : 0), NULL,
            NULL);
    tc_make(&l2, &i2, "test", "leaf", cases[i].on == 0 ? f : 0, &san, NULL);
    assert_string_equal(verdict(&l2, &i2, &r2, 1), cases[i].why);
    tc_free(&l2);
    tc_free(&i2);
    tc_free(&r2);
  }

  /* an empty subject needs a critical SAN (RFC 5280 4.2.1.6) */
  tc_make(&leaf, &inter, NULL, NULL, 0, &san, NULL);
  assert_string_equal(
      verdict(&leaf, &inter, &root, 1),
      "protocol: empty subject without a critical subjectAltName");
  tc_free(&leaf);
  tc_make(&leaf, &inter, NULL, NULL, TC_SAN_CRITICAL, &san, NULL);
  assert_string_equal(verdict(&leaf, &inter, &root, 1), "ok");
  tc_free(&leaf);

  /* the SVID rules on the leaf come before the chain: a CA leaf under an
   * unknown root is refused as a CA */
  tc_t stranger;
  tc_make(&stranger, NULL, "test", "stranger", TC_CA, NULL, NULL);
  tc_make(&leaf, &inter, "test", "ca leaf", TC_CA, &san, NULL);
  assert_string_equal(verdict(&leaf, &inter, &stranger, 1),
                      "bad_identity: leaf is a CA");
  assert_true(
      starts_with(verdict(&leaf, &inter, &stranger, 0), "unknown_ca: "));
  /* ly_chain_verify takes a CA as the leaf (the CA checks its own signing
   * certificate that way) */
  assert_string_equal(verdict(&leaf, &inter, &root, 0), "ok");
  tc_free(&leaf);
  tc_free(&stranger);
  tc_free(&inter);
  tc_free(&root);
  ly_dw_free(&san);
}

static void test_name_constraints_uri(void **state) {
  /* a SPIFFE CA constrained to its trust domain: URIs by host */
  static const gn_t td[] = {{GN_URI, TD, 0}};
  static const gn_t sub[] = {{GN_URI, "." TD, 0}};
  static const gn_t in[] = {{GN_URI, ID, 0}};
  static const gn_t out[] = {
      {GN_URI, "spiffe://other.org/ns/default/sa/web", 0}};
  static const gn_t below[] = {{GN_URI, "spiffe://a." TD "/x", 0}};
  static const gn_t nohost[] = {{GN_URI, "file:///etc/x", 0}};
  static const gn_t port[] = {{GN_URI, "https://user@" TD ":8443/x", 0}};
  assert_string_equal(nc_verdict(td, 1, NONE, "test", in, 1), "ok");
  assert_string_equal(nc_verdict(td, 1, NONE, "test", port, 1), "ok");
  assert_string_equal(nc_verdict(td, 1, NONE, "test", out, 1),
                      "bad_identity: URI not permitted by name constraints");
  assert_string_equal(nc_verdict(td, 1, NONE, "test", below, 1),
                      "bad_identity: URI not permitted by name constraints");
  assert_string_equal(nc_verdict(sub, 1, NONE, "test", below, 1), "ok");
  assert_string_equal(nc_verdict(sub, 1, NONE, "test", in, 1),
                      "bad_identity: URI not permitted by name constraints");
  assert_string_equal(nc_verdict(NONE, td, 1, "test", in, 1),
                      "bad_identity: URI excluded by name constraints");
  assert_string_equal(nc_verdict(NONE, td, 1, "test", out, 1), "ok");
  assert_string_equal(
      nc_verdict(td, 1, NONE, "test", nohost, 1),
      "bad_identity: URI without a host name under name constraints");
  /* an address is no host name a domain constraint could hold */
  static const gn_t v4[] = {{GN_URI, "https://10.0.0.1/x", 0}};
  static const gn_t v6[] = {{GN_URI, "https://[::1]:8443/x", 0}};
  assert_string_equal(
      nc_verdict(NONE, td, 1, "test", v4, 1),
      "bad_identity: URI without a host name under name constraints");
  assert_string_equal(
      nc_verdict(NONE, td, 1, "test", v6, 1),
      "bad_identity: URI without a host name under name constraints");
  /* constraints of another type leave URIs alone */
  static const gn_t dns[] = {{GN_DNS, "example.com", 0}};
  assert_string_equal(nc_verdict(dns, 1, NONE, "test", out, 1), "ok");
}

static void test_name_constraints_dns_ip(void **state) {
  static const gn_t example[] = {{GN_DNS, "example.com", 0}};
  static const gn_t foo[] = {{GN_DNS, "foo.example.com", 0}};
  static const gn_t bar[] = {{GN_DNS, "bar.example.com", 0}};
  static const gn_t deep[] = {{GN_DNS, "a.b.example.com", 0}};
  static const gn_t name_ok[] = {{GN_DNS, "Foo.Example.COM", 0}};
  static const gn_t name_no[] = {{GN_DNS, "notexample.com", 0}};
  static const gn_t wild[] = {{GN_DNS, "*.example.com", 0}};
  static const gn_t bad[] = {{GN_DNS, ".example.com", 0}};
  assert_string_equal(nc_verdict(example, 1, NONE, "test", name_ok, 1), "ok");
  assert_string_equal(
      nc_verdict(example, 1, NONE, "test", name_no, 1),
      "bad_identity: DNS name not permitted by name constraints");
  assert_string_equal(
      nc_verdict(example, 1, NONE, "test", bad, 1),
      "bad_identity: malformed DNS name under name constraints");
  /* a wildcard stands for every name one label down */
  assert_string_equal(nc_verdict(example, 1, NONE, "test", wild, 1), "ok");
  assert_string_equal(
      nc_verdict(foo, 1, NONE, "test", wild, 1),
      "bad_identity: DNS name not permitted by name constraints");
  assert_string_equal(nc_verdict(example, 1, bar, 1, "test", wild, 1),
                      "bad_identity: DNS name excluded by name constraints");
  assert_string_equal(nc_verdict(example, 1, deep, 1, "test", wild, 1), "ok");

  static const gn_t net10[] = {{GN_IP, "\x0a\x00\x00\x00\xff\x00\x00\x00", 8}};
  static const gn_t ip_in[] = {{GN_IP, "\x0a\x01\x02\x03", 4}};
  static const gn_t ip_out[] = {{GN_IP, "\x0b\x01\x02\x03", 4}};
  static const gn_t ip6[] = {
      {GN_IP,
       "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16}};
  static const gn_t ip_bad[] = {{GN_IP, "\x0a\x01\x02", 3}};
  assert_string_equal(nc_verdict(net10, 1, NONE, "test", ip_in, 1), "ok");
  assert_string_equal(
      nc_verdict(net10, 1, NONE, "test", ip_out, 1),
      "bad_identity: IP address not permitted by name constraints");
  assert_string_equal(
      nc_verdict(net10, 1, NONE, "test", ip6, 1),
      "bad_identity: IP address not permitted by name constraints");
  assert_string_equal(nc_verdict(NONE, net10, 1, "test", ip_in, 1),
                      "bad_identity: IP address excluded by name constraints");
  assert_string_equal(
      nc_verdict(net10, 1, NONE, "test", ip_bad, 1),
      "bad_identity: malformed IP address under name constraints");
}

static void test_name_constraints_email_dir_other(void **state) {
  static const gn_t domain[] = {{GN_EMAIL, ".example.com", 0}};
  static const gn_t mailbox[] = {{GN_EMAIL, "ops@example.com", 0}};
  static const gn_t in_sub[] = {{GN_EMAIL, "a@mail.example.com", 0}};
  static const gn_t at_host[] = {{GN_EMAIL, "ops@Example.com", 0}};
  static const gn_t other_user[] = {{GN_EMAIL, "dev@example.com", 0}};
  assert_string_equal(nc_verdict(domain, 1, NONE, "test", in_sub, 1), "ok");
  assert_string_equal(
      nc_verdict(domain, 1, NONE, "test", at_host, 1),
      "bad_identity: e-mail address not permitted by name constraints");
  assert_string_equal(nc_verdict(mailbox, 1, NONE, "test", at_host, 1), "ok");
  assert_string_equal(
      nc_verdict(mailbox, 1, NONE, "test", other_user, 1),
      "bad_identity: e-mail address not permitted by name constraints");

  /* directory names: the subject, compared case-insensitively across
   * string types (the constraint's O is a UTF8String here, the subject's a
   * PrintableString) */
  ly_dw_t acme = {0};
  size_t name = ly_dw_open(&acme, LY_DER_SEQ);
  size_t rdn = ly_dw_open(&acme, LY_DER_SET);
  size_t atv = ly_dw_open(&acme, LY_DER_SEQ);
  ly_dw_tlv(&acme, LY_DER_OID, "\x55\x04\x0a", 3);
  ly_dw_tlv(&acme, LY_DER_UTF8, "ACME  corp", 10);
  ly_dw_close(&acme, atv);
  ly_dw_close(&acme, rdn);
  ly_dw_close(&acme, name);
  assert_int_equal(ly_dw_finish(&acme), 0);
  const gn_t dir[] = {{GN_DIR, (const char *)acme.p, acme.len}};
  static const gn_t uri[] = {{GN_URI, ID, 0}};
  assert_string_equal(nc_verdict(dir, 1, NONE, "acme corp", uri, 1), "ok");
  assert_string_equal(
      nc_verdict(dir, 1, NONE, "other", uri, 1),
      "bad_identity: directory name not permitted by name constraints");
  assert_string_equal(
      nc_verdict(NONE, dir, 1, "Acme Corp ", uri, 1),
      "bad_identity: directory name excluded by name constraints");
  ly_dw_free(&acme);

  /* a type Lanyard does not evaluate: refused only when a name of it is
   * there */
  static const gn_t other[] = {
      {GN_OTHER, "\x06\x03\x2a\x03\x04\xa0\x02\x05\x00", 9}};
  static const gn_t uri_and_other[] = {
      {GN_URI, ID, 0}, {GN_OTHER, "\x06\x03\x2a\x03\x04\xa0\x02\x05\x00", 9}};
  assert_string_equal(nc_verdict(NONE, other, 1, "test", uri, 1), "ok");
  assert_string_equal(nc_verdict(NONE, other, 1, "test", uri_and_other, 2),
                      "bad_identity: name constraints on a name type Lanyard "
                      "does not check");
}

static void test_name_constraints_malformed(void **state) {
  static const gn_t uri[] = {{GN_URI, ID, 0}};
  static const gn_t wild[] = {{GN_DNS, "*.example.com", 0}};
  static const gn_t dot[] = {{GN_DNS, ".example.com", 0}};
  static const gn_t no_mask[] = {{GN_IP, "\x0a\x00\x00\x00", 4}};
  static const gn_t holes[] = {{GN_IP, "\x0a\x00\x00\x00\xff\x00\xff\x00", 8}};
  assert_string_equal(nc_verdict(wild, 1, NONE, "test", uri, 1),
                      "protocol: invalid name constraint");
  assert_string_equal(nc_verdict(dot, 1, NONE, "test", uri, 1),
                      "protocol: invalid name constraint");
  assert_string_equal(nc_verdict(no_mask, 1, NONE, "test", uri, 1),
                      "protocol: invalid name constraint");
  assert_string_equal(nc_verdict(holes, 1, NONE, "test", uri, 1),
                      "protocol: invalid name constraint");
  assert_string_equal(nc_verdict(NONE, NONE, "test", uri, 1),
                      "protocol: empty name constraints");
  assert_string_equal(nc_verdict(uri, 0, NONE, "test", uri, 1),
                      "protocol: empty subtrees in name constraints");

  /* minimum must be 0 and maximum absent (RFC 5280 4.2.1.10) */
  static const unsigned char with_max[] = {0x30, 0x0c, 0xa0, 0x0a, 0x30,
                                           0x08, 0x82, 0x03, 'a',  '.',
                                           'b',  0x81, 0x01, 0x01};
  ly_dw_t nc = {0}, san = {0};
  ly_dw_bytes(&nc, with_max, sizeof(with_max));
  gns(&san, uri, 1);
  tc_t root, leaf;
  tc_make(&root, NULL, "test", "root", TC_CA, NULL, &nc);
  tc_make(&leaf, &root, "test", "leaf", 0, &san, NULL);
  assert_string_equal(verdict(&leaf, NULL, &root, 1),
                      "protocol: name constraints with minimum or maximum");
  tc_free(&root);
  tc_free(&leaf);
  ly_dw_free(&nc);

  /* and critical (4.2.1.10) */
  static const gn_t td[] = {{GN_URI, TD, 0}};
  ncs(&nc, td, 1, NONE);
  tc_make(&root, NULL, "test", "root", TC_CA | TC_NC_NONCRITICAL, NULL, &nc);
  tc_make(&leaf, &root, "test", "leaf", 0, &san, NULL);
  assert_string_equal(verdict(&leaf, NULL, &root, 1),
                      "protocol: nameConstraints must be critical");
  tc_free(&root);
  tc_free(&leaf);
  ly_dw_free(&nc);
  ly_dw_free(&san);
}

/* An intermediate's constraints bind the leaf; the intermediate's own
 * names are bound by the root's; a self-issued intermediate's are not. */
static void test_name_constraints_on_path(void **state) {
  static const gn_t td[] = {{GN_URI, TD, 0}};
  static const gn_t other_td[] = {{GN_URI, "spiffe://other.org", 0}};
  static const gn_t in[] = {{GN_URI, ID, 0}};
  static const gn_t out[] = {{GN_URI, "spiffe://other.org/x", 0}};
  ly_dw_t nc = {0}, san_in = {0}, san_out = {0}, inter_san = {0};
  ncs(&nc, td, 1, NONE);
  gns(&san_in, in, 1);
  gns(&san_out, out, 1);
  gns(&inter_san, other_td, 1);
  tc_t root, inter, leaf, self_issued;

  tc_make(&root, NULL, "test", "root", TC_CA, NULL, NULL);
  tc_make(&inter, &root, "test", "inter", TC_CA, NULL, &nc);
  tc_make(&leaf, &inter, "test", "leaf", 0, &san_in, NULL);
  assert_string_equal(verdict(&leaf, &inter, &root, 1), "ok");
  tc_free(&leaf);
  tc_make(&leaf, &inter, "test", "leaf", 0, &san_out, NULL);
  assert_string_equal(verdict(&leaf, &inter, &root, 1),
                      "bad_identity: URI not permitted by name constraints");
  tc_free(&leaf);
  tc_free(&inter);
  tc_free(&root);

  tc_make(&root, NULL, "test", "root", TC_CA, NULL, &nc);
  tc_make(&inter, &root, "test", "inter", TC_CA, &inter_san, NULL);
  tc_make(&leaf, &inter, "test", "leaf", 0, &san_in, NULL);
  assert_string_equal(verdict(&leaf, &inter, &root, 1),
                      "bad_identity: URI not permitted by name constraints");
  tc_free(&leaf);
  tc_free(&inter);
  /* same name as the root, new key: self-issued, its names not checked */
  tc_make(&self_issued, &root, "test", "root", TC_CA, &inter_san, NULL);
  tc_make(&leaf, &self_issued, "test", "leaf", 0, &san_in, NULL);
  assert_string_equal(verdict(&leaf, &self_issued, &root, 1), "ok");
  tc_free(&leaf);
  tc_free(&self_issued);
  tc_free(&root);
  ly_dw_free(&nc);
  ly_dw_free(&san_in);
  ly_dw_free(&san_out);
  ly_dw_free(&inter_san);
}

/* Thousands of constraints over hundreds of names: refused, quickly. */
static void test_name_constraints_budget(void **state) {
  enum { N_NAMES = 400, N_CONSTRAINTS = 400 };
  static char names[N_NAMES][24], constraints[N_CONSTRAINTS][24];
  gn_t *n = calloc(N_NAMES, sizeof(*n)), *c = calloc(N_CONSTRAINTS, sizeof(*c));
  assert_non_null(n);
  assert_non_null(c);
  for (int i = 0; i < N_NAMES; i++) {
    snprintf(names[i], sizeof(names[i]), "n%d.test", i);
    n[i] = (gn_t){GN_DNS, names[i], 0};
  }
  for (int i = 0; i < N_CONSTRAINTS; i++) {
    snprintf(constraints[i], sizeof(constraints[i]), "n%d.test", i);
    c[i] = (gn_t){GN_DNS, constraints[i], 0};
  }
  assert_string_equal(nc_verdict(c, 40, NONE, "test", n, 40), "ok");
  assert_string_equal(nc_verdict(c, N_CONSTRAINTS, NONE, "test", n, N_NAMES),
                      "unknown_ca: name constraint check limit reached");
  free(n);
  free(c);
}

static void test_end_entity_rules(void **state) {
  ly_cert_info_t leaf = {
      .has_key_usage = 1,
      .key_usage = LY_KU_DIGITAL_SIGNATURE,
      .san_count = 1,
  };
  const char *why = NULL;
  /* no extendedKeyUsage: not limited */
  assert_int_equal(ly_cert_check_end_entity(&leaf, LY_EKU_SERVER_AUTH, &why),
                   0);
  leaf.has_ext_key_usage = 1;
  leaf.ext_key_usage = LY_EKU_CLIENT_AUTH;
  assert_int_equal(ly_cert_check_end_entity(&leaf, 0, &why), 0);
  assert_int_equal(ly_cert_check_end_entity(&leaf, LY_EKU_CLIENT_AUTH, &why),
                   0);
  assert_int_equal(ly_cert_check_end_entity(&leaf, LY_EKU_SERVER_AUTH, &why),
                   LY_ECERT);
  assert_string_equal(
      why, "bad_identity: leaf's extended key usage lacks serverAuth");
  leaf.ext_key_usage = LY_EKU_SERVER_AUTH;
  assert_int_equal(ly_cert_check_end_entity(
                       &leaf, LY_EKU_SERVER_AUTH | LY_EKU_CLIENT_AUTH, &why),
                   LY_ECERT);
  assert_string_equal(
      why, "bad_identity: leaf's extended key usage lacks clientAuth");
  /* anyExtendedKeyUsage allows every purpose, as in the handshake */
  leaf.ext_key_usage = LY_EKU_ANY;
  assert_int_equal(ly_cert_check_end_entity(
                       &leaf, LY_EKU_SERVER_AUTH | LY_EKU_CLIENT_AUTH, &why),
                   0);
  leaf.san_count = 0;
  assert_int_equal(ly_cert_check_end_entity(&leaf, 0, &why), LY_ECERT);
  assert_string_equal(why, "bad_identity: leaf has no subjectAltName");
  leaf.is_ca = 1;
  assert_int_equal(ly_cert_check_end_entity(&leaf, 0, &why), LY_ECERT);
  assert_string_equal(why, "bad_identity: leaf is a CA");
}

static int setup(void **state) {
  return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int teardown(void **state) {
  wolfSSL_Cleanup();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_pem_roundtrip),
      cmocka_unit_test(test_key_pem_errors),
      cmocka_unit_test(test_csr_accepts),
      cmocka_unit_test(test_issue_with_dns),
      cmocka_unit_test(test_csr_p384_accepted),
      cmocka_unit_test(test_csr_refuses),
      cmocka_unit_test(test_csr_refuses_rsa),
      cmocka_unit_test(test_csr_from_wolfssl),
      cmocka_unit_test(test_ca_certs),
      cmocka_unit_test(test_issue_and_verify),
      cmocka_unit_test(test_serial_bits),
      cmocka_unit_test(test_verify_unknown_roots),
      cmocka_unit_test(test_verify_bad_signature),
      cmocka_unit_test(test_verify_path_length),
      cmocka_unit_test(test_generalized_time),
      cmocka_unit_test(test_signer_load_errors),
      cmocka_unit_test(test_chain_pem),
      cmocka_unit_test(test_leaf_rules),
      cmocka_unit_test(test_verify_rfc5280_rules),
      cmocka_unit_test(test_name_constraints_uri),
      cmocka_unit_test(test_name_constraints_dns_ip),
      cmocka_unit_test(test_name_constraints_email_dir_other),
      cmocka_unit_test(test_name_constraints_malformed),
      cmocka_unit_test(test_name_constraints_on_path),
      cmocka_unit_test(test_name_constraints_budget),
      cmocka_unit_test(test_end_entity_rules),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
