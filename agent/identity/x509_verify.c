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
 * many signatures one verification may check, how many path steps it may
 * take, and how many name-constraint comparisons it may make (a CA with
 * thousands of constraints over a leaf with thousands of names would
 * otherwise cost millions). */
#define PATH_MAX_CERTS 8
#define CHAIN_MAX 32
#define ROOTS_MAX 512
#define SIG_BUDGET 64
#define STEP_BUDGET 2048
#define NC_BUDGET (1L << 17)

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
  LY_ENSURE_WHY(leaf->san_count > 0, LY_ECERT, why,
                "bad_identity: leaf has no subjectAltName");
  /* as the data path judges: wolfSSL takes anyExtendedKeyUsage for any
   * purpose */
  if (!leaf->has_ext_key_usage || (leaf->ext_key_usage & LY_EKU_ANY))
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
  LY_ENSURE_WHY(ly_spiffe_workload_id_parse(
                    leaf->spiffe_id, strlen(leaf->spiffe_id), NULL, NULL) == 0,
                LY_ECERT, why, "bad_identity: " LY_SPIFFE_NEEDS_PATH);
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
 * checked as a whole (dates, the rules every certificate keeps, CA bits,
 * path lengths, name constraints), and the first such failure is what the
 * caller hears if no path passes. */

typedef struct {
  ly_x509_cert_t *certs; /* chain (leaf first), then roots */
  size_t n_chain, n_all;
  signed char *edge; /* [child * n_all + parent]: 0 unknown, 1 ok, -1 not */
  int64_t at;
  int sigs, steps;
  long nc_budget;
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

/* The k-th certificate of a path of `depth` chain certificates under
 * `root`: the leaf at 0, the root at depth. */
static const ly_x509_cert_t *at_k(const vctx_t *v, size_t depth, size_t root,
                                  size_t k) {
  return &v->certs[k < depth ? v->path[k] : root];
}

/* What RFC 5280 4.2.1.2 and 4.2.1.9 require of every CA certificate (a
 * subject key identifier, a critical basicConstraints; a CA issues under
 * its subject, so that cannot be empty, 4.1.2.4), and its path length
 * with `below` CA certificates under it on the path (6.1.4 (l), (m)). */
static const char *check_signer(const ly_x509_cert_t *c, int below) {
  if (!c->bc_critical)
    return "unknown_ca: signing certificate's basicConstraints is not "
           "critical";
  if (!c->skid)
    return "unknown_ca: signing certificate lacks a subject key identifier";
  if (c->subject.len == 0)
    return "unknown_ca: signing certificate has an empty subject";
  if (c->path_len >= 0 && below > c->path_len)
    return "unknown_ca: path length constraint exceeded";
  return NULL;
}

/* Name constraints of each CA on the path (the root's included) over every
 * certificate below it, except self-issued intermediates (RFC 5280 6.1.3
 * (b)). */
static const char *check_names(vctx_t *v, size_t depth, size_t root) {
  for (size_t j = 1; j <= depth; j++) {
    const ly_x509_cert_t *ca = at_k(v, depth, root, j);
    if (!ca->nc)
      continue;
    for (size_t k = 0; k < j; k++) {
      const ly_x509_cert_t *c = at_k(v, depth, root, k);
      if (k > 0 && c->self_issued)
        continue;
      const char *why = ly_x509_nc_check(ca, c, &v->nc_budget);
      if (v->nc_budget < 0) {
        /* the search stops here, and says so rather than what an earlier
         * path broke */
        v->exhausted = 1;
        v->fail = why;
      }
      if (why)
        return why;
    }
  }
  return NULL;
}

/* A whole path, in the order a person would look for the trouble: dates;
 * whether each signer is a CA at all; then the finer rules (the problems
 * ly_x509_cert_parse found, key identifiers, path lengths); then names. */
static const char *check_path(vctx_t *v, size_t depth, size_t root) {
  const char *why = NULL;
  for (size_t k = 0; k <= depth; k++) {
    const ly_cert_info_t *i = &at_k(v, depth, root, k)->info;
    if (v->at < i->not_before)
      return "expired: certificate is not yet valid";
    if (v->at > i->not_after)
      return "expired: certificate has expired";
  }
  for (size_t k = 1; k <= depth; k++)
    if (ly_cert_check_issuer(&at_k(v, depth, root, k)->info, &why) != 0)
      return why;
  int below = 0; /* CA certificates under the current one, RFC 5280 6.1.4 (l):
                    self-issued ones do not count */
  for (size_t k = 0; k <= depth; k++) {
    const ly_x509_cert_t *c = at_k(v, depth, root, k);
    if (c->problem)
      return c->problem;
    /* RFC 5280 4.2.1.1: the key identifier is how a path is found; only
     * a self-signed certificate, here only ever a root, may go without */
    if (k < depth && !c->akid)
      return "protocol: certificate lacks an authority key identifier";
    if (k > 0 && (why = check_signer(c, below)))
      return why;
    if (k > 0 && !c->self_issued)
      below++;
  }
  return check_names(v, depth, root);
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
    if (v->exhausted)
      return 0;
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

/* ly_chain_verify, and with `svid` the X.509-SVID rules on the leaf first:
 * they need no signature, and a certificate that is no SVID is refused
 * for that, whatever its chain. */
static int verify(const ly_chain_t *chain, const ly_chain_t *roots, int64_t at,
                  int svid, const char *trust_domain, ly_cert_info_t *leaf_info,
                  const char **why) {
  LY_ENSURE_WHY(chain && chain->n > 0, LY_ECERT, why,
                "protocol: no certificate");
  LY_ENSURE_WHY(chain->n <= CHAIN_MAX, LY_ECERT, why,
                "protocol: too many certificates in the chain");
  LY_ENSURE_WHY(roots && roots->n > 0, LY_ECERT, why,
                "unknown_ca: no trusted roots");
  LY_ENSURE_WHY(roots->n <= ROOTS_MAX, LY_ECERT, why,
                "unknown_ca: too many trusted roots");
  vctx_t v = {.n_chain = chain->n,
              .n_all = chain->n + roots->n,
              .at = at,
              .nc_budget = NC_BUDGET};
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
    if ((rc = ly_x509_cert_parse(d->der, d->len, &v.certs[parsed])) != 0) {
      if (rc == LY_ECERT)
        reason = parsed < v.n_chain ? "protocol: malformed certificate"
                                    : "unknown_ca: malformed trusted root";
      goto out;
    }
    if (parsed == 0 && svid &&
        (rc = ly_svid_check_leaf(&v.certs[0].info, trust_domain, &reason)) !=
            0) {
      parsed++;
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

int ly_chain_verify(const ly_chain_t *chain, const ly_chain_t *roots,
                    int64_t at, ly_cert_info_t *leaf_info, const char **why) {
  return verify(chain, roots, at, 0, NULL, leaf_info, why);
}

int ly_svid_verify(const ly_chain_t *chain, const ly_chain_t *roots, int64_t at,
                   const char *trust_domain, ly_cert_info_t *leaf_info,
                   const char **why) {
  return verify(chain, roots, at, 1, trust_domain, leaf_info, why);
}
