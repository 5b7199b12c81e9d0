/* The agent's identity lifecycle: obtain an X.509-SVID, keep it fresh,
 * keep the trust bundle fresh, and publish both.
 *
 *   start ──> request (join token / Kubernetes token) ──> valid
 *   valid ──(renew_fraction of the lifetime, with jitter)──> renew (mTLS)
 *   renew ──ok──> valid (new key, new serial)
 *   renew ──fail──> retry with capped exponential backoff; the current
 *                   SVID keeps serving until it expires
 *   expired ──> no identity: fail closed, request with the token again
 *               (every second while the CA cannot be reached)
 *
 * Trust starts from the bootstrap bundle (ca.bundle, re-read when it
 * changes) and the bundle last written to svid.dir; the CA's bundle, from
 * every Sign and TrustBundle answer, replaces it.
 *
 * Keys are generated here, in memory, for every request; they never leave
 * the process except into svid.dir (mode 0600) when configured.
 * Runs on one loop; `on_change` lets the data plane pick up new contexts.
 */
#ifndef LANYARD_IDENTITY_H
#define LANYARD_IDENTITY_H

#include "lanyard/config.h"
#include "lanyard/x509.h"

#include <stdint.h>
#include <uv.h>

typedef struct ly_identity_s ly_identity_t;

/* How one periodic exchange with the CA fares (reports, bundle refresh),
 * for /status and `lanyard status`: an agent that cannot reach the CA
 * must be visible before its SVID runs out. */
typedef struct {
  int64_t last_ok;       /* unix seconds; 0: never */
  int64_t last_error_at; /* 0: never */
  char last_error[256];  /* "UNAVAILABLE: ..." */
  uint64_t failing;      /* consecutive failures, 0 when the last worked */
  uint64_t logged_ms, suppressed; /* log rate limit */
} ly_upstream_t;

/* Record a success (logs `<what>_recovered` after failures) or a failure
 * (logs `<what>_failed` at warn: the first of a run, then at most once a
 * minute, saying how many were left out). now_ms: a monotonic clock. */
void ly_upstream_ok(ly_upstream_t *u, const char *what);
void ly_upstream_failed(ly_upstream_t *u, const char *what, uint64_t now_ms,
                        const char *code, const char *message);

typedef struct {
  int have;                /* a valid SVID is held */
  const ly_chain_t *chain; /* SVID first, then intermediates */
  const ly_key_t *key;
  const ly_chain_t *bundle;
  const ly_cert_info_t *info;
  int64_t renew_at;            /* unix seconds */
  const char *last_error;      /* why the last request failed, or "" */
  uint64_t rotations_ok;       /* renewals installed (the first SVID is not) */
  uint64_t rotations_failed;   /* renewals that failed while holding an SVID */
  struct ly_rpc_client_s *rpc; /* the CA client: reports share it */
  int expired;                 /* no SVID because the last one ran out */
  int64_t expired_at;          /* its not_after, when expired */
  const ly_upstream_t *bundle_refresh; /* the CA's bundle, last fetched */
} ly_identity_view_t;

typedef void (*ly_identity_change_cb)(ly_identity_t *id, void *data);

/* Loads the bootstrap bundle and starts the lifecycle. 0, or an error with
 * *why (a bundle that cannot be read or parsed). */
int ly_identity_start(uv_loop_t *loop, const ly_agent_config_t *cfg,
                      ly_identity_change_cb on_change, void *data,
                      ly_identity_t **out, const char **why);
/* Rotates now (a game day's POST /rotate). */
void ly_identity_rotate_now(ly_identity_t *id);
/* Re-reads the bootstrap bundle (as when it changes, which is polled),
 * asks the CA for its bundle, and retries at once a request that waits
 * (no identity, or a failed renewal); a valid SVID is kept. For SIGHUP. */
void ly_identity_reload(ly_identity_t *id);
void ly_identity_view(const ly_identity_t *id, ly_identity_view_t *v);
/* Stops timers and calls; frees once the loop has closed its handles. */
void ly_identity_stop(ly_identity_t *id);

/* Writes svid.pem (chain), svid.key (0600) and bundle.pem (0644)
 * atomically into dir, which is created (0755, with its parents) when it
 * is missing. */
int ly_svid_dir_write(const char *dir, const ly_chain_t *chain,
                      const ly_key_t *key, const ly_chain_t *bundle);

#endif
