/* Reading certificates: DER chains and PEM, wolfSSL's parse plus the raw
 * fields it does not keep, and ly_cert_info. */
#include "identity/x509_internal.h"

#include "lanyard/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

/* The extensions ly_exts_t tracks, in LY_EXT_* order, and for those that
 * must not be critical, the reason when one is. Critical are allowed: the
 * ones the checks evaluate, and the policy extensions, which cannot make a
 * path invalid when no policy is required and policyConstraints are
 * refused (certificate policies are not evaluated). */
static const struct {
  unsigned char oid[8];
  unsigned char len;
  const char *if_critical;
} known_exts[LY_EXT_COUNT] = {
    [LY_EXT_BC] = {{0x55, 0x1d, 0x13}, 3, NULL},
    [LY_EXT_KU] = {{0x55, 0x1d, 0x0f}, 3, NULL},
    [LY_EXT_EKU] = {{0x55, 0x1d, 0x25}, 3, NULL},
    [LY_EXT_SAN] = {{0x55, 0x1d, 0x11}, 3, NULL},
    [LY_EXT_NC] = {{0x55, 0x1d, 0x1e}, 3, NULL},
    [LY_EXT_CP] = {{0x55, 0x1d, 0x20}, 3, NULL},
    [LY_EXT_PM] = {{0x55, 0x1d, 0x21}, 3, NULL},
    [LY_EXT_IAP] = {{0x55, 0x1d, 0x36}, 3, NULL},
    /* RFC 5280 4.2.1.1, 4.2.1.2, 4.2.2.1, 4.2.2.2: MUST be non-critical */
    [LY_EXT_SKID] = {{0x55, 0x1d, 0x0e},
                     3,
                     "protocol: critical subjectKeyIdentifier"},
    [LY_EXT_AKID] = {{0x55, 0x1d, 0x23},
                     3,
                     "protocol: critical authorityKeyIdentifier"},
    [LY_EXT_AIA] = {{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01},
                    8,
                    "protocol: critical authorityInfoAccess"},
    [LY_EXT_SIA] = {{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0b},
                    8,
                    "protocol: critical subjectInfoAccess"},
    /* revocation is not checked, so a critical pointer to it is not met */
    [LY_EXT_CRLDP] = {{0x55, 0x1d, 0x1f},
                      3,
                      "protocol: unsupported critical extension"},
    /* RFC 5280 4.2.1.11: MUST be critical; and policy constraints are not
     * evaluated here, so a critical one is refused too */
    [LY_EXT_PC] = {{0x55, 0x1d, 0x24},
                   3,
                   "protocol: policyConstraints are not supported"},
};

/* ---- chains
 * ----------------------------------------------------------------*/

int ly_chain_push(ly_chain_t *c, const void *der, size_t len) {
  LY_ENSURE(len > 0, UV_EINVAL);
  unsigned char *copy = malloc(len);
  LY_ENSURE(copy, UV_ENOMEM);
  ly_der_t *certs = realloc(c->certs, (c->n + 1) * sizeof(*certs));
  if (!certs) {
    free(copy);
    return UV_ENOMEM;
  }
  memcpy(copy, der, len);
  certs[c->n].der = copy;
  certs[c->n].len = len;
  c->certs = certs;
  c->n++;
  return 0;
}

void ly_chain_free(ly_chain_t *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    free(c->certs[i].der);
  free(c->certs);
  c->certs = NULL;
  c->n = 0;
}

int ly_chain_from_pem(const char *pem, size_t len, ly_chain_t *out,
                      const char **why) {
  ly_chain_t c = {0};
  ly_pem_block_t b;
  size_t pos = 0;
  int seen = 0, r, rc = 0;
  const char *reason = NULL;
  unsigned char *der = NULL;
  size_t der_len = 0;
  while ((r = ly_pem_next(pem, len, &pos, &b)) == 1) {
    seen = 1;
    if (!ly_pem_label_is(&b, "CERTIFICATE"))
      continue;
    ly_x509_cert_t cert;
    if (ly_pem_decode(&b, &der, &der_len) != 0 ||
        ly_x509_cert_parse(der, der_len, &cert) != 0) {
      rc = LY_ECERT;
      reason = "malformed certificate";
      goto out;
    }
    ly_x509_cert_free(&cert);
    if ((rc = ly_chain_push(&c, der, der_len)) != 0)
      goto out;
    free(der);
    der = NULL;
  }
  if (r < 0) {
    rc = LY_EPARSE;
    reason = "malformed PEM block";
  } else if (!seen) {
    rc = LY_EPARSE;
    reason = "not PEM";
  } else if (c.n == 0) {
    rc = LY_ENOT_FOUND;
    reason = "no certificate";
  }
out:
  free(der);
  if (rc != 0) {
    ly_chain_free(&c);
    if (why && reason)
      *why = reason;
    return rc;
  }
  *out = c;
  return 0;
}

int ly_chain_to_pem(const ly_chain_t *c, char **pem, size_t *len) {
  size_t cap = 1;
  for (size_t i = 0; i < c->n; i++)
    cap += ly_pem_encoded_len("CERTIFICATE", c->certs[i].len);
  char *p = malloc(cap);
  LY_ENSURE(p, UV_ENOMEM);
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++)
    n += ly_pem_write(p + n, "CERTIFICATE", c->certs[i].der, c->certs[i].len);
  p[n] = '\0';
  *pem = p;
  *len = n;
  return 0;
}

/* ---- extensions -------------------------------------------------------- */

static int scan_san(const ly_tlv_t *value, ly_exts_t *out) {
  ly_san_t *san = &out->san;
  ly_dr_t r;
  ly_tlv_t gn;
  ly_dr_init(&r, value->val, value->len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &out->san_names));
  LY_ENSURE(!ly_dr_more(&r), LY_EPARSE);
  ly_dr_enter(&r, &out->san_names);
  while (ly_dr_more(&r)) {
    LY_GUARD(ly_dr_get(&r, &gn));
    san->count++;
    /* uniformResourceIdentifier [6] IA5String */
    if (gn.tag == LY_DER_CTX(6)) {
      if (san->uri_count++ == 0) {
        san->uri = (const char *)gn.val;
        san->uri_len = gn.len;
      }
    }
  }
  return 0;
}

static int scan_akid(const ly_tlv_t *value, ly_exts_t *out) {
  ly_dr_t r;
  ly_tlv_t seq, f;
  ly_dr_init(&r, value->val, value->len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &seq));
  ly_dr_enter(&r, &seq);
  while (ly_dr_more(&r)) {
    LY_GUARD(ly_dr_get(&r, &f));
    if (f.tag == LY_DER_CTX(0)) {
      out->akid = f.val;
      out->akid_len = f.len;
    }
  }
  return 0;
}

static int scan_skid(const ly_tlv_t *value, ly_exts_t *out) {
  ly_dr_t v;
  ly_tlv_t id;
  ly_dr_init(&v, value->val, value->len);
  LY_GUARD(ly_dr_expect(&v, LY_DER_OCTET_STRING, &id));
  out->skid = id.val;
  out->skid_len = id.len;
  return 0;
}

static int known_ext(const ly_tlv_t *oid) {
  for (int i = 0; i < LY_EXT_COUNT; i++)
    if (oid->len == known_exts[i].len &&
        memcmp(oid->val, known_exts[i].oid, oid->len) == 0)
      return i;
  return -1;
}

int ly_x509_exts_scan(const ly_tlv_t *exts_seq, ly_exts_t *out) {
  memset(out, 0, sizeof(*out));
  ly_dr_t r;
  ly_dr_enter(&r, exts_seq);
  while (ly_dr_more(&r)) {
    ly_dr_t e;
    ly_tlv_t ext, oid, value;
    int critical = 0;
    LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &ext));
    ly_dr_enter(&e, &ext);
    LY_GUARD(ly_dr_expect(&e, LY_DER_OID, &oid));
    if (ly_dr_peek(&e) == LY_DER_BOOLEAN) {
      ly_tlv_t crit;
      LY_GUARD(ly_dr_get(&e, &crit));
      LY_ENSURE(crit.len == 1, LY_EPARSE);
      critical = crit.val[0] != 0;
    }
    LY_GUARD(ly_dr_expect(&e, LY_DER_OCTET_STRING, &value));
    LY_ENSURE(!ly_dr_more(&e), LY_EPARSE);
    int k = known_ext(&oid);
    if (k < 0) {
      out->unknown_critical |= critical;
      continue;
    }
    /* two of one kind would let a reader pick the one it likes */
    LY_ENSURE(!out->ext[k].present, LY_EPARSE);
    out->ext[k].present = 1;
    out->ext[k].critical = critical;
    out->ext[k].value = value;
    switch (k) {
    case LY_EXT_SAN:
      out->has_san = 1;
      LY_GUARD(scan_san(&value, out));
      break;
    case LY_EXT_SKID:
      LY_GUARD(scan_skid(&value, out));
      break;
    case LY_EXT_AKID:
      LY_GUARD(scan_akid(&value, out));
      break;
    default:
      break;
    }
  }
  return 0;
}

/* ---- certificates ------------------------------------------------------ */

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
 * with TBSCertificate as RFC 5280 4.1; wolfSSL has checked it already. */
static int walk_cert(ly_x509_cert_t *c, ly_tlv_t *validity, ly_tlv_t *exts) {
  ly_dr_t r;
  ly_tlv_t cert, t;
  ly_dr_init(&r, c->der, c->len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &cert));
  LY_ENSURE(!ly_dr_more(&r), LY_EPARSE); /* nothing after the certificate */
  ly_dr_enter(&r, &cert);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &c->tbs));
  ly_dr_enter(&r, &c->tbs);
  if (ly_dr_peek(&r) == LY_DER_CTX_CONS(0))
    LY_GUARD(ly_dr_get(&r, &t)); /* version */
  LY_GUARD(ly_dr_expect(&r, LY_DER_INTEGER, &t));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &t));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &c->issuer));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, validity));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &c->subject));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &c->spki));
  memset(exts, 0, sizeof(*exts));
  while (ly_dr_more(&r)) {
    LY_GUARD(ly_dr_get(&r, &t));
    if (t.tag == LY_DER_CTX_CONS(3)) {
      ly_dr_t e;
      ly_dr_enter(&e, &t);
      LY_GUARD(ly_dr_expect(&e, LY_DER_SEQ, exts));
    }
  }
  return 0;
}

static void serial_hex(const unsigned char *p, size_t n, char *out,
                       size_t cap) {
  static const char hex[] = "0123456789abcdef";
  /* the sign octet DER adds before a high bit is not part of the number */
  while (n > 1 && p[0] == 0) {
    p++;
    n--;
  }
  if (2 * n + 1 > cap)
    n = (cap - 1) / 2;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int fill_info(ly_x509_cert_t *c, const ly_tlv_t *validity,
                     const ly_exts_t *x) {
  DecodedCert *dc = c->dc;
  ly_cert_info_t *i = &c->info;
  memset(i, 0, sizeof(*i));
  LY_ENSURE(dc->serialSz > 0 && dc->serialSz <= 20 + 1, LY_EPARSE);
  serial_hex(dc->serial, (size_t)dc->serialSz, i->serial_hex,
             sizeof(i->serial_hex));

  ly_dr_t r;
  ly_tlv_t t;
  ly_dr_enter(&r, validity);
  LY_GUARD(ly_dr_get(&r, &t));
  LY_GUARD(ly_x509_time_decode(t.tlv, t.tlv_len, &i->not_before));
  LY_GUARD(ly_dr_get(&r, &t));
  LY_GUARD(ly_x509_time_decode(t.tlv, t.tlv_len, &i->not_after));

  i->is_ca = dc->isCA;
  i->has_key_usage = dc->extKeyUsageSet;
  if (dc->extKeyUsage & KEYUSE_DIGITAL_SIG)
    i->key_usage |= LY_KU_DIGITAL_SIGNATURE;
  if (dc->extKeyUsage & KEYUSE_KEY_CERT_SIGN)
    i->key_usage |= LY_KU_KEY_CERT_SIGN;
  if (dc->extKeyUsage & KEYUSE_CRL_SIGN)
    i->key_usage |= LY_KU_CRL_SIGN;
  i->has_ext_key_usage = dc->extExtKeyUsageSet;
  if (dc->extExtKeyUsage & EXTKEYUSE_SERVER_AUTH)
    i->ext_key_usage |= LY_EKU_SERVER_AUTH;
  if (dc->extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH)
    i->ext_key_usage |= LY_EKU_CLIENT_AUTH;
  if (dc->extExtKeyUsage & EXTKEYUSE_ANY)
    i->ext_key_usage |= LY_EKU_ANY;

  i->san_count = x->san.count;
  i->uri_san_count = x->san.uri_count;
  if (x->san.uri_count == 1 &&
      ly_spiffe_id_parse(x->san.uri, x->san.uri_len, NULL, NULL) == 0) {
    memcpy(i->spiffe_id, x->san.uri, x->san.uri_len);
    i->spiffe_id[x->san.uri_len] = '\0';
  }
  return 0;
}

/* Is the extension's value an empty SEQUENCE (an extendedKeyUsage that
 * allows nothing, which RFC 5280's SIZE (1..MAX) rules out)? */
static int empty_seq(const ly_ext_t *x) {
  ly_dr_t r;
  ly_tlv_t seq;
  ly_dr_init(&r, x->value.val, x->value.len);
  return ly_dr_expect(&r, LY_DER_SEQ, &seq) == 0 && seq.len == 0;
}

/* The rules a certificate keeps wherever it sits on a path (RFC 5280
 * 4.1.2.4, 4.1.2.6, 4.2): the first one broken, or NULL. Name constraints
 * are parsed here, once. */
static int find_problem(ly_x509_cert_t *c, const ly_exts_t *x,
                        const char **problem) {
  const ly_ext_t *e = x->ext;
  *problem = NULL;
  if (c->issuer.len == 0) {
    *problem = "protocol: empty issuer name";
    return 0;
  }
  if (x->unknown_critical) {
    *problem = "protocol: unsupported critical extension";
    return 0;
  }
  for (int k = 0; k < LY_EXT_COUNT; k++) {
    if (e[k].critical && known_exts[k].if_critical) {
      *problem = known_exts[k].if_critical;
      return 0;
    }
  }
  if (e[LY_EXT_PC].present)
    *problem = "protocol: policyConstraints must be critical";
  else if (e[LY_EXT_EKU].present && empty_seq(&e[LY_EXT_EKU]))
    *problem = "protocol: empty extendedKeyUsage";
  else if ((c->info.key_usage & LY_KU_KEY_CERT_SIGN) && !c->info.is_ca)
    *problem = "protocol: keyCertSign without cA";
  else if (c->subject.len == 0 &&
           !(e[LY_EXT_SAN].present && e[LY_EXT_SAN].critical))
    /* RFC 5280 4.2.1.6: with an empty subject, the identity is in the SAN
     * alone, which must then be critical */
    *problem = "protocol: empty subject without a critical subjectAltName";
  else if (e[LY_EXT_NC].present && !e[LY_EXT_NC].critical)
    *problem = "protocol: nameConstraints must be critical";
  if (*problem || !e[LY_EXT_NC].present)
    return 0;
  int rc = ly_x509_nc_parse(&e[LY_EXT_NC].value, &c->nc, problem);
  if (rc != LY_ECERT)
    return rc;
  /* constraints that cannot be read must not be skipped */
  if (!*problem)
    *problem = "protocol: malformed name constraints";
  return 0;
}

int ly_x509_cert_parse(const void *der, size_t len, ly_x509_cert_t *c) {
  memset(c, 0, sizeof(*c));
  LY_ENSURE(len > 0 && len < UINT32_MAX, LY_ECERT);
  c->der = der;
  c->len = len;
  c->dc = malloc(sizeof(*c->dc));
  LY_ENSURE(c->dc, UV_ENOMEM);
  wc_InitDecodedCert(c->dc, der, (word32)len, NULL);
  /* NO_VERIFY: no signature, date or issuer checks here; ly_chain_verify
   * makes them against its own idea of the time and the path. Unknown
   * critical extensions are judged by find_problem, not by wolfSSL. */
  int ret = wc_ParseCert(c->dc, CERT_TYPE, NO_VERIFY, NULL);
  if (ret == ASN_CRIT_EXT_E)
    ret = 0;
  ly_tlv_t validity, exts;
  ly_exts_t x = {0};
  if (ret != 0 || walk_cert(c, &validity, &exts) != 0 ||
      (exts.tag && ly_x509_exts_scan(&exts, &x) != 0) ||
      fill_info(c, &validity, &x) != 0) {
    ly_x509_cert_free(c);
    return LY_ECERT;
  }
  c->skid = x.skid;
  c->skid_len = x.skid_len;
  c->akid = x.akid;
  c->akid_len = x.akid_len;
  c->san = x.san_names;
  c->path_len = c->dc->pathLengthSet ? c->dc->pathLength : -1;
  c->bc_critical = x.ext[LY_EXT_BC].critical;
  c->self_issued =
      c->issuer.tlv_len == c->subject.tlv_len &&
      memcmp(c->issuer.tlv, c->subject.tlv, c->issuer.tlv_len) == 0;
  if ((ret = find_problem(c, &x, &c->problem)) != 0) {
    ly_x509_cert_free(c);
    return ret;
  }
  return 0;
}

void ly_x509_cert_free(ly_x509_cert_t *c) {
  if (c->dc) {
    wc_FreeDecodedCert(c->dc);
    free(c->dc);
  }
  c->dc = NULL;
  ly_x509_nc_free(c->nc);
  c->nc = NULL;
}

int ly_cert_info(const void *der, size_t len, ly_cert_info_t *out) {
  ly_x509_cert_t c;
  LY_GUARD(ly_x509_cert_parse(der, len, &c));
  *out = c.info;
  ly_x509_cert_free(&c);
  return 0;
}

int ly_der_sha256_hex(const void *der, size_t len,
                      char out[LY_SHA256_HEX_LEN]) {
  unsigned char h[WC_SHA256_DIGEST_SIZE];
  out[0] = '\0';
  if (wc_Sha256Hash(der, (word32)len, h) != 0)
    return LY_ECRYPTO;
  for (size_t i = 0; i < sizeof(h); i++)
    snprintf(out + 2 * i, 3, "%02x", h[i]);
  return 0;
}
