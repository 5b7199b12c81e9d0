/* The CA service: Sign, TrustBundle and Report.
 *
 * Sign decides in this order, and refuses with the first failing check:
 *   1. the CSR is well formed and self-signed (INVALID_ARGUMENT);
 *   2. the requested ID is in our trust domain and not reserved
 *      (PERMISSION_DENIED);
 *   3. the credential is valid (UNAUTHENTICATED): a join token, a
 *      Kubernetes service-account JWT, or the caller's current SVID as its
 *      TLS client certificate (renewal);
 *   4. the credential allows the requested ID (PERMISSION_DENIED), and
 *      dns_names allows each DNS SAN for that ID (PERMISSION_DENIED);
 *   5. the TTL is sane (INVALID_ARGUMENT), capped by max_ttl.
 * Every refusal is logged with the caller's address and the reason; no
 * token or key ever is.
 *
 * Report is authenticated like a renewal: the caller's SVID, verified now,
 * names the identity the report is filed under, and the report's own
 * spiffe_id must agree (PERMISSION_DENIED otherwise).
 */
#include "ca/ca.h"

#include "lanyard/err.h"
#include "lanyard/log.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CA_OF(svc) ((ly_ca_t *)((char *)(svc)-offsetof(ly_ca_t, service)))

const char *const ly_credential_name[LY_CRED__COUNT] = {
    "join_token", "k8s_token", "mtls", "none"};
const double ly_sign_bucket_le[LY_SIGN_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1};

typedef struct {
  ly_ca_t *ca;
  ly_rpc_call_t *call;
  const char *credential; /* ly_credential_name */
  ly_credential_t cred;
  const char *id; /* the requested ID, once known */
} sign_ctx_t;

static void set_credential(sign_ctx_t *s, ly_credential_t c) {
  s->cred = c;
  s->credential = ly_credential_name[c];
}

static void refuse(sign_ctx_t *s, int code, const char *reason) {
  s->ca->stats.sign[s->cred][code]++;
  ly_rpc_call_fail(s->call, code, "%s", reason);
  uint64_t left_out = 0;
  if (!ly_log_limit(&s->ca->refusal_log, uv_now(s->ca->loop), &left_out))
    return;
  char n[24];
  ly_log(LY_WARN, "sign_refused", "peer", ly_rpc_call_peer(s->call),
         "credential", s->credential, "spiffe_id", s->id, "code",
         ly_rpc_code_name(code), "reason", reason,
         left_out ? "suppressed" : NULL, /* the list ends here if none */
         ly_fmt(n, sizeof(n), "%llu", (unsigned long long)left_out), NULL);
}

void ly_ca_log_suppressed(ly_ca_t *ca) {
  ly_log_suppressed(&ca->refusal_log, "sign_refused_suppressed",
                    "sign_refused lines left out "
                    "(lanyard_ca_sign_requests_total counts them)");
}

/* Step 3 and 4 for each kind of credential. 0 or the code of a refusal
 * (already logged). */
static int check_join_token(ly_ca_t *ca, sign_ctx_t *s, const char *token) {
  char pattern[LY_SPIFFE_ID_MAX + 3];
  const char *why = "invalid token";
  if (ly_token_verify(ca->token_secret, token, (int64_t)time(NULL), pattern,
                      &why) != 0) {
    char msg[128];
    snprintf(msg, sizeof(msg), "join token rejected: %s", why);
    refuse(s, LY_RPC_UNAUTHENTICATED, msg);
    return LY_RPC_UNAUTHENTICATED;
  }
  if (!ly_spiffe_pattern_match(pattern, s->id)) {
    char msg[LY_SPIFFE_ID_MAX + 64];
    snprintf(msg, sizeof(msg), "join token is for '%s', not this ID", pattern);
    refuse(s, LY_RPC_PERMISSION_DENIED, msg);
    return LY_RPC_PERMISSION_DENIED;
  }
  return 0;
}

static int check_k8s_token(ly_ca_t *ca, sign_ctx_t *s, const char *jwt) {
  const ly_ca_config_t *cfg = ca->cfg;
  if (!ca->jwks && cfg->kubernetes.jwks_url) {
    ly_kube_unknown_kid(ca->kube); /* no keys yet: try now (rate-limited) */
    refuse(s, LY_RPC_UNAVAILABLE,
           "the cluster's JWKS has not been fetched yet; retry");
    return LY_RPC_UNAVAILABLE;
  }
  if (!ca->jwks) {
    refuse(s, LY_RPC_UNAUTHENTICATED,
           "this CA does not accept Kubernetes tokens (no kubernetes: "
           "section in its config)");
    return LY_RPC_UNAUTHENTICATED;
  }
  ly_k8s_identity_t who;
  const char *why = "invalid token";
  if (ly_jwt_verify_k8s(ca->jwks, jwt, cfg->kubernetes.issuer,
                        cfg->kubernetes.audience, (int64_t)time(NULL), &who,
                        &why) != 0) {
    char msg[128];
    /* The cluster may have rotated its signing key: fetch the set again
     * and let the agent retry, rather than refuse it for good. */
    if (!strcmp(why, "unknown key id") && ly_kube_unknown_kid(ca->kube)) {
      refuse(s, LY_RPC_UNAVAILABLE,
             "Kubernetes token names an unknown key id; refetching the "
             "cluster's JWKS, retry");
      return LY_RPC_UNAVAILABLE;
    }
    snprintf(msg, sizeof(msg), "Kubernetes token rejected: %s", why);
    refuse(s, LY_RPC_UNAUTHENTICATED, msg);
    return LY_RPC_UNAUTHENTICATED;
  }
  ly_spiffe_id_t derived;
  if (ly_spiffe_id_for_k8s(cfg->trust_domain, who.namespace_,
                           who.service_account, &derived, &why) != 0 ||
      strcmp(derived.id, s->id) != 0) {
    char msg[LY_SPIFFE_ID_MAX + 64];
    snprintf(msg, sizeof(msg), "Kubernetes token is for '%s', not this ID",
             derived.id);
    refuse(s, LY_RPC_PERMISSION_DENIED, msg);
    return LY_RPC_PERMISSION_DENIED;
  }
  return 0;
}

/* The caller's SVID, verified again now, against the bundle as it is
 * now: the connection may be older than the certificate's expiry or than
 * a root's retirement. 0 with info, or UNAUTHENTICATED with msg. */
static int authenticate_peer(ly_ca_t *ca, ly_rpc_call_t *call,
                             ly_cert_info_t *info, char *msg, size_t len) {
  const ly_chain_t *chain = ly_rpc_call_peer_chain(call);
  const char *why = NULL;
  if (chain->n == 0) {
    snprintf(msg, len, "no client certificate");
    return LY_RPC_UNAUTHENTICATED;
  }
  ly_ca_reload_bundle(ca); /* a retired root counts from now (one stat) */
  int64_t now = (int64_t)time(NULL);
  if (ly_verified_get(ca->verified, chain, &ca->bundle_mtime, now, info))
    return 0;
  if (ly_svid_verify(chain, &ca->roots, now, ca->cfg->trust_domain, info,
                     &why) != 0) {
    snprintf(msg, len, "client certificate is not a valid SVID: %s", why);
    return LY_RPC_UNAUTHENTICATED;
  }
  ly_verified_put(ca->verified, chain, &ca->roots, &ca->bundle_mtime, info);
  return 0;
}

static int check_renewal(ly_ca_t *ca, sign_ctx_t *s) {
  ly_cert_info_t info;
  char msg[LY_SPIFFE_ID_MAX + 64];
  if (ly_rpc_call_peer_chain(s->call)->n == 0) {
    set_credential(s, LY_CRED_NONE);
    refuse(s, LY_RPC_UNAUTHENTICATED,
           "no credential: send a join token or a Kubernetes token, or "
           "renew over mTLS with the current SVID");
    return LY_RPC_UNAUTHENTICATED;
  }
  if (authenticate_peer(ca, s->call, &info, msg, sizeof(msg)) != 0) {
    refuse(s, LY_RPC_UNAUTHENTICATED, msg);
    return LY_RPC_UNAUTHENTICATED;
  }
  if (strcmp(info.spiffe_id, s->id) != 0) {
    snprintf(msg, sizeof(msg),
             "renewal must keep the identity: the client is '%s'",
             info.spiffe_id);
    refuse(s, LY_RPC_PERMISSION_DENIED, msg);
    return LY_RPC_PERMISSION_DENIED;
  }
  return 0;
}

static void ca_sign(Lanyard__Ca__V1__CA_Service *svc,
                    const Lanyard__Ca__V1__SignRequest *req,
                    Lanyard__Ca__V1__SignResponse_Closure closure,
                    void *closure_data) {
  ly_ca_t *ca = CA_OF(svc);
  const ly_ca_config_t *cfg = ca->cfg;
  sign_ctx_t s = {.ca = ca, .call = closure_data, .id = NULL};
  set_credential(&s, LY_CRED_MTLS);
  /* a switched intermediate signs from the next SVID on (two stats) */
  ly_ca_reload_signer(ca);
  ly_csr_t csr;
  const char *why = "malformed";
  char msg[512];

  if (req->credential_case ==
      LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN)
    set_credential(&s, LY_CRED_JOIN_TOKEN);
  else if (req->credential_case ==
           LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_K8S_TOKEN)
    set_credential(&s, LY_CRED_K8S_TOKEN);

  if (ly_csr_check(req->csr.data, req->csr.len, &csr, &why) != 0) {
    snprintf(msg, sizeof(msg), "bad CSR: %s", why);
    refuse(&s, LY_RPC_INVALID_ARGUMENT, msg);
    goto fail;
  }
  s.id = csr.id.id;
  /* the CSR parser takes any SPIFFE ID; a leaf needs one with a path */
  if (ly_spiffe_workload_id_parse(csr.id.id, strlen(csr.id.id), NULL, &why) !=
      0) {
    snprintf(msg, sizeof(msg), "bad CSR: %.128s: %s", csr.id.id, why);
    refuse(&s, LY_RPC_INVALID_ARGUMENT, msg);
    goto fail;
  }
  if (!ly_spiffe_id_in_domain(&csr.id, cfg->trust_domain)) {
    snprintf(msg, sizeof(msg), "SPIFFE ID is not in trust domain '%s'",
             cfg->trust_domain);
    refuse(&s, LY_RPC_PERMISSION_DENIED, msg);
    goto fail;
  }
  if (ly_spiffe_id_reserved(&csr.id)) {
    refuse(&s, LY_RPC_PERMISSION_DENIED,
           "SPIFFE IDs under /lanyard/ are reserved for Lanyard itself");
    goto fail;
  }
  int denied;
  switch (req->credential_case) {
  case LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN:
    denied = check_join_token(ca, &s, req->join_token);
    break;
  case LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_K8S_TOKEN:
    denied = check_k8s_token(ca, &s, req->k8s_token);
    break;
  default:
    denied = check_renewal(ca, &s);
    break;
  }
  if (denied)
    goto fail;
  for (size_t i = 0; i < csr.ndns; i++) {
    if (ly_ca_config_dns_allowed(cfg, csr.id.id, csr.dns[i]))
      continue;
    snprintf(msg, sizeof(msg),
             "DNS name '%s' is not allowed for %.128s (dns_names in %s)",
             csr.dns[i], csr.id.id, cfg->file);
    refuse(&s, LY_RPC_PERMISSION_DENIED, msg);
    goto fail;
  }

  uint64_t ttl_s =
      req->ttl_seconds ? req->ttl_seconds : cfg->default_ttl_ms / 1000;
  if (ttl_s < LY_CA_MIN_TTL_S) {
    snprintf(msg, sizeof(msg), "ttl %llus is below the minimum of %ds",
             (unsigned long long)ttl_s, LY_CA_MIN_TTL_S);
    refuse(&s, LY_RPC_INVALID_ARGUMENT, msg);
    goto fail;
  }
  if (ttl_s > cfg->max_ttl_ms / 1000)
    ttl_s = cfg->max_ttl_ms / 1000;

  /* An SVID cannot outlive the certificate that signs it. */
  int64_t now = (int64_t)time(NULL);
  int64_t not_after = now + (int64_t)ttl_s;
  ly_cert_info_t signing;
  const ly_chain_t *chain = ly_signer_chain(ca->signer);
  if (ly_cert_info(chain->certs[0].der, chain->certs[0].len, &signing) == 0 &&
      not_after > signing.not_after)
    not_after = signing.not_after;

  ly_der_t svid = {0};
  uint64_t t0 = uv_hrtime();
  const char *dns[LY_CSR_DNS_MAX];
  for (size_t i = 0; i < csr.ndns; i++)
    dns[i] = csr.dns[i];
  if (ly_signer_issue_dns(ca->signer, csr.pubkey, csr.pubkey_len, csr.id.id,
                          dns, csr.ndns, now - LY_CA_BACKDATE_S, not_after,
                          &svid) != 0) {
    refuse(&s, LY_RPC_INTERNAL, "signing failed");
    goto fail;
  }
  uint64_t sign_ns = uv_hrtime() - t0, sign_us = sign_ns / 1000;
  double sign_s = (double)sign_ns / 1e9;
  size_t bucket = 0;
  while (bucket < LY_SIGN_BUCKETS && sign_s > ly_sign_bucket_le[bucket])
    bucket++;
  ca->stats.sign_bucket[bucket]++;
  ca->stats.sign_seconds += sign_s;

  ly_ca_reload_bundle(ca);
  ProtobufCBinaryData *certs = calloc(1 + chain->n, sizeof(*certs));
  ProtobufCBinaryData *roots = calloc(ca->roots.n + 1, sizeof(*roots));
  if (!certs || !roots) {
    free(certs);
    free(roots);
    free(svid.der);
    refuse(&s, LY_RPC_INTERNAL, "out of memory");
    goto fail;
  }
  certs[0].data = svid.der;
  certs[0].len = svid.len;
  for (size_t i = 0; i < chain->n; i++) {
    certs[1 + i].data = chain->certs[i].der;
    certs[1 + i].len = chain->certs[i].len;
  }
  for (size_t i = 0; i < ca->roots.n; i++) {
    roots[i].data = ca->roots.certs[i].der;
    roots[i].len = ca->roots.certs[i].len;
  }
  Lanyard__Ca__V1__SignResponse resp = LANYARD__CA__V1__SIGN_RESPONSE__INIT;
  resp.n_chain = ly_ca_fault_omit_intermediate() ? 1 : 1 + chain->n;
  resp.chain = certs;
  resp.n_bundle = ca->roots.n;
  resp.bundle = roots;

  ly_cert_info_t issued;
  char na[32], us[32];
  if (ly_cert_info(svid.der, svid.len, &issued) != 0)
    issued.serial_hex[0] = '\0';
  ly_log(LY_INFO, "svid_issued", "peer", ly_rpc_call_peer(s.call), "credential",
         s.credential, "spiffe_id", s.id, "serial", issued.serial_hex,
         "not_after", ly_fmt(na, sizeof(na), "%lld", (long long)not_after),
         "sign_us", ly_fmt(us, sizeof(us), "%llu", (unsigned long long)sign_us),
         NULL);
  ca->stats.sign[s.cred][LY_RPC_OK]++;
  if (ca->inventory)
    ly_inventory_add(ca->inventory,
                     &(ly_issued_t){.serial = issued.serial_hex,
                                    .spiffe_id = s.id,
                                    .issued_at = now,
                                    .not_before = now - LY_CA_BACKDATE_S,
                                    .not_after = not_after,
                                    .credential = s.credential,
                                    .caller = ly_rpc_call_peer(s.call),
                                    .intermediate_sha256 = ca->signer_sha256,
                                    .root_sha256 = ca->signer_root_sha256});
  closure(&resp, closure_data);
  free(certs);
  free(roots);
  free(svid.der);
  return;
fail:
  closure(NULL, closure_data);
}

int ly_ca_fault_omit_intermediate(void) {
  static int fault = -1;
  if (fault < 0) {
    const char *v = getenv("LANYARD_FAULT_OMIT_INTERMEDIATE");
    fault = v && strcmp(v, "1") == 0;
  }
  return fault;
}

static void
ca_trust_bundle(Lanyard__Ca__V1__CA_Service *svc,
                const Lanyard__Ca__V1__TrustBundleRequest *req,
                Lanyard__Ca__V1__TrustBundleResponse_Closure closure,
                void *closure_data) {
  ly_ca_t *ca = CA_OF(svc);
  ly_ca_reload_bundle(ca);
  ProtobufCBinaryData *roots = calloc(ca->roots.n + 1, sizeof(*roots));
  if (!roots) {
    ly_rpc_call_fail(closure_data, LY_RPC_INTERNAL, "out of memory");
    closure(NULL, closure_data);
    return;
  }
  for (size_t i = 0; i < ca->roots.n; i++) {
    roots[i].data = ca->roots.certs[i].der;
    roots[i].len = ca->roots.certs[i].len;
  }
  Lanyard__Ca__V1__TrustBundleResponse resp =
      LANYARD__CA__V1__TRUST_BUNDLE_RESPONSE__INIT;
  resp.trust_domain = ca->cfg->trust_domain;
  resp.n_roots = ca->roots.n;
  resp.roots = roots;
  closure(&resp, closure_data);
  free(roots);
}

/* The fingerprint of the bundle root a verified chain leads to ("" if
 * none, or no bundle root does any more). Nearly every agent is signed
 * by the current intermediate: that case costs one compare. */
static void svid_root(ly_ca_t *ca, const ly_chain_t *chain,
                      char out[LY_SHA256_HEX_LEN]) {
  const ly_chain_t *signer = ly_signer_chain(ca->signer);
  out[0] = '\0';
  if (chain->n >= 2 && chain->certs[1].len == signer->certs[0].len &&
      memcmp(chain->certs[1].der, signer->certs[0].der, chain->certs[1].len) ==
          0) {
    memcpy(out, ca->signer_root_sha256, LY_SHA256_HEX_LEN);
    return;
  }
  for (size_t i = 0; i < ca->roots.n; i++) {
    ly_chain_t one = {.certs = &ca->roots.certs[i], .n = 1};
    if (ly_chain_verify(chain, &one, (int64_t)time(NULL), NULL, NULL) == 0) {
      ly_der_sha256_hex(ca->roots.certs[i].der, ca->roots.certs[i].len, out);
      return;
    }
  }
}

static void ca_report(Lanyard__Ca__V1__CA_Service *svc,
                      const Lanyard__Ca__V1__ReportRequest *req,
                      Lanyard__Ca__V1__ReportResponse_Closure closure,
                      void *closure_data) {
  ly_ca_t *ca = CA_OF(svc);
  ly_rpc_call_t *call = closure_data;
  ly_cert_info_t info;
  char msg[LY_SPIFFE_ID_MAX + 64];
  const char *why = NULL;
  int code = authenticate_peer(ca, call, &info, msg, sizeof(msg));
  if (code == 0 && strcmp(info.spiffe_id, req->spiffe_id) != 0) {
    code = LY_RPC_PERMISSION_DENIED;
    snprintf(msg, sizeof(msg), "an agent reports only for itself: it is '%s'",
             info.spiffe_id);
  }
  if (code == 0) {
    char root[LY_SHA256_HEX_LEN];
    svid_root(ca, ly_rpc_call_peer_chain(call), root);
    int rc = ly_mesh_record(ca->mesh, &info, root, ly_rpc_call_peer(call), req,
                            uv_now(ca->loop), &why);
    if (rc != 0) {
      code = rc == LY_ETOO_BIG ? LY_RPC_RESOURCE_EXHAUSTED
                               : LY_RPC_INVALID_ARGUMENT;
      snprintf(msg, sizeof(msg), "report refused: %s", why);
    }
  }
  ca->stats.reports[code]++;
  if (code != 0) {
    ly_log(LY_WARN, "report_refused", "peer", ly_rpc_call_peer(call),
           "spiffe_id", req->spiffe_id, "code", ly_rpc_code_name(code),
           "reason", msg, NULL);
    ly_rpc_call_fail(call, code, "%s", msg);
    closure(NULL, closure_data);
    return;
  }
  Lanyard__Ca__V1__ReportResponse resp = LANYARD__CA__V1__REPORT_RESPONSE__INIT;
  closure(&resp, closure_data);
}

int ly_ca_service_init(ly_ca_t *ca, uv_loop_t *loop) {
  lanyard__ca__v1__ca__init(&ca->service, NULL);
  ca->service.sign = ca_sign;
  ca->service.trust_bundle = ca_trust_bundle;
  ca->service.report = ca_report;
  ca->loop = loop;
  ly_log_limiter_init(&ca->refusal_log);
  ca->mesh = ly_mesh_new();
  ca->verified = ly_verified_new();
  int rc = ly_inventory_open(ca->cfg->inventory.file,
                             ca->cfg->inventory.max_entries, &ca->inventory);
  if (rc != 0) /* the CA still signs; `lanyard ca certs` will say why */
    ly_log(LY_WARN, "inventory_unavailable", "file", ca->cfg->inventory.file,
           "reason", ly_strerror(rc), NULL);
  return ca->mesh && ca->verified ? 0 : UV_ENOMEM;
}
