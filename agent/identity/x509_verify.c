/* Chain validation and the X.509-SVID rules.
 *
 * Why paths are built and signatures checked here rather than by a wolfSSL
 * CertManager: the verification time is an input (expired test material,
 * `--at`), and wolfSSL reads the clock itself; its CertManager also picks
 * one issuer per certificate (by AKID, then name) and trusts whatever was
 * loaded as a CA, while untrusted intermediates in any order need a search
 * that can back out of a dead end. So certificates are parsed with
 * NO_VERIFY, dates are compared with `at`, and each candidate edge's
 * signature is verified with wolfCrypt directly.
 */
#include "identity/x509_internal.h"

#include "lanyard/err.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Bounds that keep hostile input cheap: certificates on one path (leaf and
 * intermediates, not the root), how many of each a caller may pass, how
 * many signatures one verification may check and how many path steps it
 * may take. */
#define PATH_MAX_CERTS 8
#define CHAIN_MAX 32
#define ROOTS_MAX 512
#define SIG_BUDGET 64
#define STEP_BUDGET 2048

int ly_cert_check_issuer(const ly_cert_info_t *ca, const char **why) {
  LY_ENSURE_WHY(ca->is_ca, LY_ECERT, why,
                "unknown_ca: signing certificate is not a CA");
  LY_ENSURE_WHY(ca->has_key_usage && (ca->key_usage & LY_KU_KEY_CERT_SIGN),
                LY_ECERT, why,
                "unknown_ca: signing certificate lacks keyCertSign");
  return 0;
}

int ly_cert_check_end_entity(const ly_cert_info_t *leaf, unsigned eku,
                             const char **why) {
  LY_ENSURE_WHY(!leaf->is_ca, LY_ECERT, why, "bad_identity: leaf is a CA");
  if (!leaf->has_ext_key_usage)
    return 0;
  LY_ENSURE_WHY(!(eku & LY_EKU_SERVER_AUTH) ||
                    (leaf->ext_key_usage & LY_EKU_SERVER_AUTH),
                LY_ECERT, why,
                "bad_identity: leaf's extended key usage lacks serverAuth");
  LY_ENSURE_WHY(!(eku & LY_EKU_CLIENT_AUTH) ||
                    (leaf->ext_key_usage & LY_EKU_CLIENT_AUTH),
                LY_ECERT, why,
                "bad_identity: leaf's extended key usage lacks clientAuth");
  return 0;
}

int ly_svid_check_leaf(const ly_cert_info_t *leaf, const char *trust_domain,
                       const char **why) {
  LY_ENSURE_WHY(!leaf->is_ca, LY_ECERT, why, "bad_identity: leaf is a CA");
  LY_ENSURE_WHY(leaf->has_key_usage &&
                    (leaf->key_usage & LY_KU_DIGITAL_SIGNATURE),
                LY_ECERT, why, "bad_identity: leaf lacks digitalSignature");
  LY_ENSURE_WHY(!(leaf->key_usage & LY_KU_KEY_CERT_SIGN), LY_ECERT, why,
                "bad_identity: leaf has keyCertSign");
  LY_ENSURE_WHY(!(leaf->key_usage & LY_KU_CRL_SIGN), LY_ECERT, why,
                "bad_identity: leaf has cRLSign");
  LY_ENSURE_WHY(leaf->uri_san_count > 0, LY_ECERT, why,
                "bad_identity: no URI SAN");
  LY_ENSURE_WHY(leaf->uri_san_count == 1, LY_ECERT, why,
                "bad_identity: leaf has more than one URI SAN");
  LY_ENSURE_WHY(leaf->spiffe_id[0], LY_ECERT, why,
                "bad_identity: URI SAN is not a valid SPIFFE ID");
  if (trust_domain) {
    ly_spiffe_id_t id;
    LY_ENSURE_WHY(ly_spiffe_id_parse(leaf->spiffe_id, strlen(leaf->spiffe_id),
                                     &id, NULL) == 0 &&
                      ly_spiffe_id_in_domain(&id, trust_domain),
                  LY_ECERT, why, "bad_identity: SPIFFE ID not in trust domain");
  }
  return 0;
}

/* ---- path building ---------------------------------------------------------
 * Depth-first from the leaf: at each certificate, first a root that issued
 * it, then each unused intermediate that did. Edges (name match, key
 * identifiers, signature) are memoized; a path that reaches a root is then
 * checked as a whole (dates, CA bits, path lengths), and the first such
 * failure is what the caller hears if no path passes. */

typedef struct {
  ly_x509_cert_t *certs; /* chain (leaf first), then roots */
  size_t n_chain, n_all;
  signed char *edge; /* [child * n_all + parent]: 0 unknown, 1 ok, -1 not */
  int64_t at;
  int sigs, steps;
  int exhausted, bad_signature;
  const char *fail;
  size_t path[PATH_MAX_CERTS];
} vctx_t;

static int same(const ly_tlv_t *a, const ly_tlv_t *b) {
  return a->tlv_len == b->tlv_len && memcmp(a->tlv, b->tlv, a->tlv_len) == 0;
}

static int issued(vctx_t *v, size_t child, size_t parent) {
  signed char *e = &v->edge[child * v->n_all + parent];
  if (*e)
    return *e > 0;
  const ly_x509_cert_t *c = &v->certs[child], *p = &v->certs[parent];
  *e = -1;
  if (!same(&c->issuer, &p->subject))
    return 0;
  /* key identifiers disagree: a different key of the same name */
  if (c->akid && p->skid &&
      (c->akid_len != p->skid_len ||
       memcmp(c->akid, p->skid, c->akid_len) != 0))
    return 0;
  if (v->sigs >= SIG_BUDGET) {
    v->exhausted = 1;
    *e = 0; /* unknown, not refuted */
    return 0;
  }
  v->sigs++;
  DecodedCert *dc = c->dc;
  if (ly_x509_sig_verify(c->tbs.tlv, c->tbs.tlv_len, dc->signatureOID,
                         dc->signature, dc->sigLength, p->spki.tlv,
                         p->spki.tlv_len) != 0) {
    v->bad_signature = 1;
    return 0;
  }
  *e = 1;
  return 1;
}

static const char *check_dates(const ly_cert_info_t *i, int64_t at) {
  if (at < i->not_before)
    return "expired: certificate is not yet valid";
  if (at > i->not_after)
    return "expired: certificate has expired";
  return NULL;
}

/* The checks on a signing certificate with `below` CA certificates under
 * it on the path (RFC 5280 6.1.4 (k), (l), (n)). */
static const char *check_signer(const ly_x509_cert_t *c, int below) {
  const char *why = NULL;
  if (ly_cert_check_issuer(&c->info, &why) != 0)
    return why;
  if (c->unknown_critical)
    return "protocol: unsupported critical extension";
  if (c->path_len >= 0 && below > c->path_len)
    return "unknown_ca: path length constraint exceeded";
  /* not evaluated here, so they must not be ignored either */
  if (c->name_constraints)
    return "unknown_ca: name constraints are not supported";
  return NULL;
}

static const char *check_path(const vctx_t *v, size_t depth, size_t root) {
  const char *why;
  int below = 0; /* CA certificates under the current one, RFC 5280 6.1.4 (l):
                    self-issued ones do not count */
  for (size_t k = 0; k < depth; k++) {
    const ly_x509_cert_t *c = &v->certs[v->path[k]];
    if ((why = check_dates(&c->info, v->at)))
      return why;
    if (k == 0 && c->unknown_critical)
      return "protocol: unsupported critical extension";
    if (k > 0 && (why = check_signer(c, below)))
      return why;
    if (k > 0 && !same(&c->issuer, &c->subject))
      below++;
  }
  const ly_x509_cert_t *r = &v->certs[root];
  if ((why = check_dates(&r->info, v->at)))
    return why;
  return check_signer(r, below);
}

static int search(vctx_t *v, size_t depth) {
  if (++v->steps > STEP_BUDGET) {
    v->exhausted = 1;
    return 0;
  }
  size_t cur = v->path[depth - 1];
  for (size_t r = v->n_chain; r < v->n_all; r++) {
    if (!issued(v, cur, r))
      continue;
    const char *why = check_path(v, depth, r);
    if (!why)
      return 1;
    if (!v->fail)
      v->fail = why;
  }
  if (depth == PATH_MAX_CERTS)
    return 0;
  for (size_t i = 1; i < v->n_chain; i++) {
    int on_path = 0;
    for (size_t k = 0; k < depth; k++)
      on_path |= v->path[k] == i;
    if (on_path || !issued(v, cur, i))
      continue;
    v->path[depth] = i;
    if (search(v, depth + 1))
      return 1;
    if (v->exhausted)
      return 0;
  }
  return 0;
}

int ly_chain_verify(const ly_chain_t *chain, const ly_chain_t *roots,
                    int64_t at, ly_cert_info_t *leaf_info, const char **why) {
  LY_ENSURE_WHY(chain && chain->n > 0, LY_ECERT, why,
                "protocol: no certificate");
  LY_ENSURE_WHY(chain->n <= CHAIN_MAX, LY_ECERT, why,
                "protocol: too many certificates in the chain");
  LY_ENSURE_WHY(roots && roots->n > 0, LY_ECERT, why,
                "unknown_ca: no trusted roots");
  LY_ENSURE_WHY(roots->n <= ROOTS_MAX, LY_ECERT, why,
                "unknown_ca: too many trusted roots");
  vctx_t v = {.n_chain = chain->n, .n_all = chain->n + roots->n, .at = at};
  size_t parsed = 0;
  int rc = 0;
  const char *reason = NULL;
  v.certs = calloc(v.n_all, sizeof(*v.certs));
  v.edge = calloc(v.n_chain * v.n_all, 1);
  if (!v.certs || !v.edge) {
    rc = UV_ENOMEM;
    goto out;
  }
  for (; parsed < v.n_all; parsed++) {
    const ly_der_t *d = parsed < v.n_chain ? &chain->certs[parsed]
                                           : &roots->certs[parsed - v.n_chain];
    if (ly_x509_cert_parse(d->der, d->len, &v.certs[parsed]) != 0) {
      rc = LY_ECERT;
      reason = parsed < v.n_chain ? "protocol: malformed certificate"
                                  : "unknown_ca: malformed trusted root";
      goto out;
    }
  }
  v.path[0] = 0;
  if (!search(&v, 1)) {
    rc = LY_ECERT;
    if (v.fail)
      reason = v.fail;
    else if (v.exhausted)
      reason = "unknown_ca: path search limit reached";
    else if (v.bad_signature)
      reason = "unknown_ca: certificate signature does not verify";
    else
      reason = "unknown_ca: no path to a trusted root";
    goto out;
  }
  if (leaf_info)
    *leaf_info = v.certs[0].info;
out:
  for (size_t i = 0; i < parsed; i++)
    ly_x509_cert_free(&v.certs[i]);
  free(v.certs);
  free(v.edge);
  if (rc != 0 && why && reason)
    *why = reason;
  return rc;
}

int ly_svid_verify(const ly_chain_t *chain, const ly_chain_t *roots, int64_t at,
                   const char *trust_domain, ly_cert_info_t *leaf_info,
                   const char **why) {
  ly_cert_info_t info;
  LY_GUARD(ly_chain_verify(chain, roots, at, &info, why));
  LY_GUARD(ly_svid_check_leaf(&info, trust_domain, why));
  if (leaf_info)
    *leaf_info = info;
  return 0;
}
