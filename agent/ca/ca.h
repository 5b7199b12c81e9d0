/* The CA component: its loaded state and the service it serves.
 * Everything here runs on the CA's single event loop. */
#ifndef LANYARD_CA_CA_H
#define LANYARD_CA_CA_H

#include "lanyard/attest.h"
#include "lanyard/config.h"
#include "lanyard/log.h"
#include "lanyard/rpc.h"
#include "lanyard/x509.h"
#include "ca/inventory.h"
#include "ca/mesh.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdint.h>
#include <sys/stat.h>

/* Certificates issued to workloads may be backdated this much, so a peer
 * whose clock runs a little behind still accepts them. */
#define LY_CA_BACKDATE_S 10
/* Shortest SVID lifetime the CA signs: below it, renewal at half-life
 * leaves no room for a retry. */
#define LY_CA_MIN_TTL_S 5

/* What the CA counts, for its /metrics. */
typedef enum {
  LY_CRED_JOIN_TOKEN,
  LY_CRED_K8S_TOKEN,
  LY_CRED_MTLS,
  LY_CRED_NONE,
  LY_CRED__COUNT
} ly_credential_t;
extern const char *const ly_credential_name[LY_CRED__COUNT];

#define LY_SIGN_BUCKETS 10
extern const double ly_sign_bucket_le[LY_SIGN_BUCKETS];

typedef struct {
  uint64_t sign[LY_CRED__COUNT][LY_RPC_NCODES]; /* Sign calls by result */
  uint64_t sign_bucket[LY_SIGN_BUCKETS + 1];    /* signing time */
  double sign_seconds;
  uint64_t reports[LY_RPC_NCODES]; /* Report calls by result */
} ly_ca_stats_t;

/* verified.c: callers' chains verified recently (see there). */
typedef struct ly_verified_s ly_verified_t;
ly_verified_t *ly_verified_new(void);
void ly_verified_free(ly_verified_t *v);
/* 1 with *info when this leaf was verified against this bundle file and
 * every certificate of its chain is still valid at now; else 0. */
int ly_verified_get(ly_verified_t *v, const ly_chain_t *chain,
                    const struct timespec *bundle, int64_t now,
                    ly_cert_info_t *info);
void ly_verified_put(ly_verified_t *v, const ly_chain_t *chain,
                     const ly_chain_t *roots, const struct timespec *bundle,
                     const ly_cert_info_t *info);

/* kube.c: the JWKS from the API server and the bundle ConfigMap. */
typedef struct ly_kube_s ly_kube_t;

/* What tells a file was replaced: an atomic rename changes the inode. */
typedef struct {
  ino_t ino;
  off_t size;
  struct timespec mtime;
} ly_file_stamp_t;

typedef struct {
  Lanyard__Ca__V1__CA_Service service; /* protobuf-c: methods below */
  const ly_ca_config_t *cfg;
  ly_signer_t *signer;
  ly_chain_t roots;
  struct timespec bundle_mtime; /* reloaded when the file changes */
  unsigned char token_secret[LY_TOKEN_SECRET_LEN];
  ly_jwks_t *jwks; /* NULL without a kubernetes: section, or not fetched */
  ly_kube_t *kube; /* NULL without jwks_url or bundle_configmap */
  ly_ca_stats_t stats;
  ly_mesh_t *mesh; /* agents' reports */
  ly_verified_t *verified;
  uv_loop_t *loop;           /* for report times */
  ly_inventory_t *inventory; /* NULL: not open (logged) */
  /* Fingerprints of the signing certificate and of the bundle root it
   * chains to ("" if none does), for the inventory; kept with the bundle. */
  char signer_sha256[LY_SHA256_HEX_LEN];
  char signer_root_sha256[LY_SHA256_HEX_LEN];
  /* The signing files as last loaded (or last tried): a change reloads
   * the signer (`lanyard ca root activate`, `ca intermediate rotate`). */
  ly_file_stamp_t signer_st[2]; /* cert, key */
  unsigned signer_gen;          /* bumped by each reload */
  /* sign_refused lines: a fleet retrying with a bad credential must not
   * flood the log (the refusals are all counted in the metrics). */
  ly_log_limiter_t refusal_log;
} ly_ca_t;

/* Reads the signing certificate and key, the bundle, the token secret and
 * the JWKS named by cfg. Every problem goes to diag ("file: message");
 * returns LY_ECONFIG if there was any. With `deep`, also checks that the
 * key matches the certificate and the signing chain verifies against the
 * bundle now (what --check reports). */
int ly_ca_load(ly_ca_t *ca, const ly_ca_config_t *cfg, int deep,
               ly_diag_t *diag);
void ly_ca_free(ly_ca_t *ca);

/* Recomputes ca->signer_sha256 and ca->signer_root_sha256. */
void ly_ca_signer_fingerprints(ly_ca_t *ca);

/* Sets up ca->service for ly_rpc_server_start, the mesh table and the
 * certificate inventory. */
int ly_ca_service_init(ly_ca_t *ca, uv_loop_t *loop);

/* Logs how many sign_refused lines the limiter left out since the last
 * line (nothing if none): for the CA's periodic tick and its stop. */
void ly_ca_log_suppressed(ly_ca_t *ca);

/* The admin endpoints (ca_admin.c): /metrics, /healthz, /readyz, /status,
 * /api/mesh and the mesh page at /. */
typedef struct ly_http_server_s ly_http_server_t;
int ly_ca_admin_start(ly_ca_t *ca, ly_http_server_t **out, char *err,
                      size_t errlen);
/* Can the CA sign now: its signing certificate is within its validity. */
int ly_ca_ready(const ly_ca_t *ca, const char **why);

/* Re-reads the bundle when its file changed (root rotation without a
 * restart). Keeps the old bundle if the new one does not parse. */
void ly_ca_reload_bundle(ly_ca_t *ca);

/* Starts the API server work the config asks for (*out NULL if none):
 * the first JWKS fetch and bundle publication begin at once. */
int ly_kube_start(ly_ca_t *ca, uv_loop_t *loop, ly_kube_t **out);
/* Periodic: JWKS refresh, and the ConfigMap when the bundle changed or the
 * last publication failed. Call after ly_ca_reload_bundle. */
void ly_kube_tick(ly_kube_t *k);
/* A token named a key id the JWKS lacks: refetch, unless a token caused
 * one in the last 10 s. 1 if a fetch is now running (worth a retry). */
int ly_kube_unknown_kid(ly_kube_t *k);
/* SIGHUP: fetch the JWKS now (unless a fetch is running), and look for
 * new namespaces at the next tick. */
void ly_kube_refresh(ly_kube_t *k);
/* No new requests; those running finish on the loop. */
void ly_kube_stop(ly_kube_t *k);
void ly_kube_free(ly_kube_t *k);

/* Re-reads the signing certificate and key when either file changed (the
 * rotation commands replace them atomically, the key first). A pair that
 * does not load (caught between the two renames, or broken) keeps the
 * current signer and is retried when a file changes again. 1 when the
 * signer changed, else 0. */
int ly_ca_reload_signer(ly_ca_t *ca);

/* Game-day fault injection, never for production: with the environment
 * variable LANYARD_FAULT_OMIT_INTERMEDIATE=1 the CA answers each signing
 * request with the SVID alone, without its signing intermediate (the
 * `broken-chain` scenario of `lanyard gameday`). Agents must refuse such
 * a chain and keep their current SVID. */
int ly_ca_fault_omit_intermediate(void);

/* The CA's own SPIFFE ID, which agents expect the RPC server to present. */
void ly_ca_server_id(const char *trust_domain, char *out, size_t len);

#endif
