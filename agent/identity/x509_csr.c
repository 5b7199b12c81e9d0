/* PKCS#10 certificate requests: the agent's (ly_csr_create) and the CA's
 * checks on what it receives (ly_csr_check). */
#include "identity/x509_internal.h"

#include "lanyard/err.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* PKCS#9 extensionRequest, 1.2.840.113549.1.9.14 */
static const unsigned char oid_ext_request[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                0x0d, 0x01, 0x09, 0x0e};

int ly_x509_csr_build(const ly_key_t *key, const unsigned char *san_gn,
                      size_t san_len, int is_ca, ly_der_t *out) {
  ly_dw_t w = {0};
  unsigned char *spki = NULL;
  size_t spki_len = 0;
  WC_RNG rng;
  int have_rng = 0;
  int rc = ly_key_spki(key, &spki, &spki_len);
  if (rc != 0)
    goto out;

  /* CertificationRequestInfo (RFC 2986 4.1) with an empty subject: the
   * identity is the URI SAN alone */
  size_t info = ly_dw_open(&w, LY_DER_SEQ);
  ly_dw_tlv(&w, LY_DER_INTEGER, "\0", 1);
  ly_dw_tlv(&w, LY_DER_SEQ, NULL, 0);
  ly_dw_bytes(&w, spki, spki_len);
  size_t attrs = ly_dw_open(&w, LY_DER_CTX_CONS(0));
  if (san_gn || is_ca) {
    size_t attr = ly_dw_open(&w, LY_DER_SEQ);
    ly_dw_tlv(&w, LY_DER_OID, oid_ext_request, sizeof(oid_ext_request));
    size_t set = ly_dw_open(&w, LY_DER_SET);
    size_t exts = ly_dw_open(&w, LY_DER_SEQ);
    if (is_ca)
      ly_x509_write_bc_ext(&w, 1, -1);
    /* critical, as RFC 5280 4.2.1.6 asks when the subject is empty */
    if (san_gn)
      ly_x509_write_san_ext(&w, san_gn, san_len, 1);
    ly_dw_close(&w, exts);
    ly_dw_close(&w, set);
    ly_dw_close(&w, attr);
  }
  ly_dw_close(&w, attrs);
  ly_dw_close(&w, info);

  if ((rc = ly_x509_rng_init(&rng)) != 0)
    goto out;
  have_rng = 1;
  if ((rc = ly_key_sign_der(key, &rng, &w)) != 0)
    goto out;
  out->der = w.p;
  out->len = w.len;
  w.p = NULL;
out:
  if (have_rng)
    wc_FreeRng(&rng);
  free(spki);
  ly_dw_free(&w);
  return rc;
}

int ly_csr_create(const ly_key_t *key, const char *spiffe_id, ly_der_t *out) {
  return ly_csr_create_dns(key, spiffe_id, NULL, 0, out);
}

int ly_csr_create_dns(const ly_key_t *key, const char *spiffe_id,
                      const char *const *dns, size_t ndns, ly_der_t *out) {
  LY_GUARD(
      ly_spiffe_workload_id_parse(spiffe_id, strlen(spiffe_id), NULL, NULL));
  LY_ENSURE(ndns <= LY_CSR_DNS_MAX, UV_EINVAL);
  for (size_t i = 0; i < ndns; i++)
    LY_ENSURE(ly_dns_name_valid(dns[i]), UV_EINVAL);
  ly_dw_t gn = {0};
  ly_x509_write_sans(&gn, spiffe_id, dns, ndns);
  int rc = ly_dw_finish(&gn);
  if (rc == 0)
    rc = ly_x509_csr_build(key, gn.p, gn.len, 0, out);
  ly_dw_free(&gn);
  return rc;
}

/* The request's SubjectPublicKeyInfo and requested extensions, read from
 * the DER wolfSSL has parsed (it keeps neither in usable form). */
static int walk_csr(const void *der, size_t len, ly_tlv_t *spki, ly_exts_t *x) {
  ly_dr_t r;
  ly_tlv_t req, info, t;
  ly_dr_init(&r, der, len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &req));
  LY_ENSURE(!ly_dr_more(&r), LY_EPARSE);
  ly_dr_enter(&r, &req);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &info));
  ly_dr_enter(&r, &info);
  LY_GUARD(ly_dr_expect(&r, LY_DER_INTEGER, &t));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &t));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, spki));
  memset(x, 0, sizeof(*x));
  if (!ly_dr_more(&r))
    return 0;
  ly_tlv_t attrs;
  LY_GUARD(ly_dr_expect(&r, LY_DER_CTX_CONS(0), &attrs));
  LY_ENSURE(!ly_dr_more(&r), LY_EPARSE);
  ly_dr_enter(&r, &attrs);
  int seen = 0;
  while (ly_dr_more(&r)) {
    ly_dr_t a, v;
    ly_tlv_t attr, oid, set, exts;
    LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &attr));
    ly_dr_enter(&a, &attr);
    LY_GUARD(ly_dr_expect(&a, LY_DER_OID, &oid));
    LY_GUARD(ly_dr_expect(&a, LY_DER_SET, &set));
    if (oid.len != sizeof(oid_ext_request) ||
        memcmp(oid.val, oid_ext_request, oid.len) != 0)
      continue;
    /* one extensionRequest with one value: anything else is ambiguous */
    LY_ENSURE(!seen++, LY_EPARSE);
    ly_dr_enter(&v, &set);
    LY_GUARD(ly_dr_expect(&v, LY_DER_SEQ, &exts));
    LY_ENSURE(!ly_dr_more(&v), LY_EPARSE);
    LY_GUARD(ly_x509_exts_scan(&exts, x));
  }
  return 0;
}

/* The DNS SANs next to the URI SAN: host names only (no wildcard: the CA
 * names hosts it was told of), and no SAN of another type. */
static int csr_dns_names(const ly_exts_t *x,
                         char dns[LY_CSR_DNS_MAX][LY_DNS_NAME_MAX + 1],
                         size_t *n, const char **why) {
  ly_dr_t r;
  ly_tlv_t gn;
  ly_dr_enter(&r, &x->san_names);
  while (ly_dr_more(&r)) {
    LY_ENSURE_WHY(ly_dr_get(&r, &gn) == 0, LY_ECSR, why, "malformed CSR");
    if (gn.tag == LY_DER_CTX(6))
      continue;
    LY_ENSURE_WHY(gn.tag == LY_DER_CTX(2), LY_ECSR, why,
                  "CSR subjectAltName may hold only a URI and DNS names");
    LY_ENSURE_WHY(*n < LY_CSR_DNS_MAX, LY_ECSR, why,
                  "CSR has too many DNS names");
    LY_ENSURE_WHY(gn.len <= LY_DNS_NAME_MAX && !memchr(gn.val, 0, gn.len),
                  LY_ECSR, why, "CSR DNS name is not a valid host name");
    memcpy(dns[*n], gn.val, gn.len);
    dns[*n][gn.len] = '\0';
    LY_ENSURE_WHY(ly_dns_name_valid(dns[*n]), LY_ECSR, why,
                  "CSR DNS name is not a valid host name");
    (*n)++;
  }
  return 0;
}

/* wolfSSL's parse of a request; with VERIFY it also checks the request's
 * signature against its own key (ParseCertRelative's CERTREQ_TYPE case). */
static int parse_req(const void *der, size_t len, int verify, int *is_ca) {
  DecodedCert *dc = malloc(sizeof(*dc));
  LY_ENSURE(dc, UV_ENOMEM);
  wc_InitDecodedCert(dc, der, (word32)len, NULL);
  int ret = wc_ParseCert(dc, CERTREQ_TYPE, verify, NULL);
  if (is_ca)
    *is_ca = dc->isCA;
  wc_FreeDecodedCert(dc);
  free(dc);
  return ret;
}

int ly_csr_check(const void *der, size_t len, ly_csr_t *out, const char **why) {
  LY_ENSURE_WHY(der && len > 0 && len < 65536, LY_ECSR, why, "malformed CSR");
  int is_ca = 0;
  int ret = parse_req(der, len, NO_VERIFY, &is_ca);
  LY_ENSURE(ret != UV_ENOMEM, UV_ENOMEM);
  LY_ENSURE_WHY(ret != ASN_CRIT_EXT_E, LY_ECSR, why,
                "CSR has an unsupported critical extension");
  LY_ENSURE_WHY(ret == 0, LY_ECSR, why, "malformed CSR");
  ly_tlv_t spki;
  ly_exts_t x;
  LY_ENSURE_WHY(walk_csr(der, len, &spki, &x) == 0, LY_ECSR, why,
                "malformed CSR");

  LY_ENSURE_WHY(parse_req(der, len, VERIFY, NULL) == 0, LY_ECSR, why,
                "CSR signature does not verify");

  ly_pubkey_t pk;
  LY_ENSURE_WHY(ly_pubkey_load(spki.tlv, spki.tlv_len, &pk) == 0, LY_ECSR, why,
                "unsupported key type");
  int curve = ly_pubkey_curve(&pk);
  ly_pubkey_free(&pk);
  LY_ENSURE_WHY(curve == ECC_SECP256R1 || curve == ECC_SECP384R1, LY_ECSR, why,
                "unsupported key type");
  LY_ENSURE_WHY(spki.tlv_len <= sizeof(out->pubkey), LY_ECSR, why,
                "unsupported key type");

  LY_ENSURE_WHY(x.san.count > 0, LY_ECSR, why, "CSR has no subjectAltName");
  LY_ENSURE_WHY(x.san.uri_count > 0, LY_ECSR, why,
                "CSR subjectAltName is not a URI");
  LY_ENSURE_WHY(x.san.uri_count == 1, LY_ECSR, why,
                "CSR must have exactly one URI subjectAltName");
  size_t ndns = 0;
  char dns[LY_CSR_DNS_MAX][LY_DNS_NAME_MAX + 1];
  LY_GUARD(csr_dns_names(&x, dns, &ndns, why));
  ly_spiffe_id_t id;
  LY_ENSURE_WHY(ly_spiffe_id_parse(x.san.uri, x.san.uri_len, &id, NULL) == 0,
                LY_ECSR, why, "CSR URI SAN is not a valid SPIFFE ID");
  LY_ENSURE_WHY(!is_ca, LY_ECSR, why, "CSR requests a CA certificate");

  if (out) {
    out->id = id;
    memcpy(out->pubkey, spki.tlv, spki.tlv_len);
    out->pubkey_len = spki.tlv_len;
    out->ndns = ndns;
    memcpy(out->dns, dns, sizeof(dns));
  }
  return 0;
}
