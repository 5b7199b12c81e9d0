#include "lanyard/identity.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/log.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"

#include "ca/ca.h" /* ly_ca_server_id */
#include "lanyard/ca/v1/ca.pb-c.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wolfssl/wolfcrypt/random.h>

#define CALL_TIMEOUT_MS 10000
#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS 30000
#define BUNDLE_REFRESH_MS (5 * 60 * 1000)
#define BOOTSTRAP_POLL_MS 5000
#define BUNDLE_MAX (1u << 20)
#define TOKEN_MAX 16384

struct ly_identity_s {
  uv_loop_t *loop;
  const ly_agent_config_t *cfg;
  ly_identity_change_cb on_change;
  void *data;
  ly_rpc_client_t *rpc;
  uv_timer_t timer;        /* next request: renewal or retry */
  uv_timer_t expiry;       /* fail closed at not_after */
  uv_timer_t bundle_timer; /* periodic TrustBundle */
  uv_timer_t boot_timer;   /* polls ca.bundle for changes */
  struct stat boot_st;     /* ca.bundle as last read */
  WC_RNG rng;              /* jitter only */

  ly_chain_t bundle;
  ly_chain_t chain; /* current SVID chain; n == 0: none */
  ly_key_t *key;
  ly_cert_info_t info;
  int64_t renew_at;

  ly_key_t *pending_key; /* the key of the request in flight */
  int in_flight;
  unsigned attempt; /* consecutive failures */
  char last_error[512];
  /* The last failure logged at warn, and when: the same failure again is
   * logged at debug, and at warn once a minute with the count, so an
   * agent looking for its CA every second does not flood the log. */
  char logged_error[512];
  uint64_t logged_ms;
  int quiet;             /* the last failure repeated the one before */
  uint64_t rotations[2]; /* renewals installed [0], failed [1] */
  int64_t lost_at;       /* the SVID that expired: its not_after; 0 */
  ly_upstream_t bundle_refresh;
  int stopping;
  int handles_open;
};

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

static int have_identity(const ly_identity_t *id) {
  return id->chain.n > 0 && now_s() < id->info.not_after;
}

/* Uniform in [-spread, +spread]. */
static int64_t jitter(ly_identity_t *id, int64_t spread) {
  uint32_t r = 0;
  if (spread <= 0 || wc_RNG_GenerateBlock(&id->rng, (byte *)&r, sizeof(r)))
    return 0;
  return (int64_t)(r % (uint64_t)(2 * spread + 1)) - spread;
}

static void request(ly_identity_t *id);

static void on_timer(uv_timer_t *t) {
  request(t->data);
}

static void schedule_ms(ly_identity_t *id, uint64_t ms) {
  uv_timer_start(&id->timer, on_timer, ms, 0);
}

/* Capped exponential backoff with jitter. The cap shrinks as expiry
 * nears, so a CA that comes back just before the SVID runs out is still
 * caught in time. Without an identity nothing works until the CA is
 * back, so while it cannot be reached (`unreachable`: no connection, no
 * handshake) the agent looks for it every second; a refusal, which the
 * next attempt would likely meet again, still backs off. The counter
 * restarts at each SVID installed. */
static void schedule_retry(ly_identity_t *id, int unreachable) {
  uint64_t delay = BACKOFF_BASE_MS << (id->attempt < 5 ? id->attempt : 5);
  uint64_t cap = BACKOFF_CAP_MS;
  if (have_identity(id)) {
    uint64_t left_ms = (uint64_t)(id->info.not_after - now_s()) * 1000;
    if (left_ms / 4 < cap)
      cap = left_ms / 4 > BACKOFF_BASE_MS ? left_ms / 4 : BACKOFF_BASE_MS;
  } else if (unreachable) {
    cap = BACKOFF_BASE_MS;
  }
  if (delay > cap)
    delay = cap;
  delay = (uint64_t)((int64_t)delay + jitter(id, (int64_t)delay / 5));
  id->attempt++;
  char ms[24], n[16];
  ly_log(id->quiet ? LY_DEBUG : LY_INFO, "svid_retry_scheduled", "in_ms",
         ly_fmt(ms, sizeof(ms), "%llu", (unsigned long long)delay), "attempt",
         ly_fmt(n, sizeof(n), "%u", id->attempt), NULL);
  schedule_ms(id, delay);
}

static void on_expiry(uv_timer_t *t) {
  ly_identity_t *id = t->data;
  if (id->chain.n == 0 || now_s() < id->info.not_after)
    return;
  ly_log(LY_ERROR, "identity_expired", "spiffe_id", id->info.spiffe_id,
         "serial", id->info.serial_hex, "reason",
         "no renewal before not_after; refusing mTLS until a new SVID "
         "arrives",
         "last_error", id->last_error, NULL);
  id->lost_at = id->info.not_after;
  ly_chain_free(&id->chain);
  ly_key_free(id->key);
  id->key = NULL;
  if (id->on_change)
    id->on_change(id, id->data);
  /* A retry backed off while the SVID still served may be far away:
   * from now on the agent looks for the CA every second. */
  if (!id->in_flight) {
    uv_timer_stop(&id->timer);
    request(id);
  }
}

/* A TLS context for talking to the CA: our SVID when we have one (renewal
 * over mTLS), the bundle always. */
static int update_rpc_ctx(ly_identity_t *id) {
  WOLFSSL_CTX *ctx = NULL;
  const char *why = NULL;
  ly_tls_ctx_opts_t o = {.is_server = 0, .roots = &id->bundle};
  if (have_identity(id)) {
    o.chain = &id->chain;
    o.key = id->key;
  }
  int rc = ly_tls_ctx_new(&o, &ctx, &why);
  if (rc != 0) {
    ly_log(LY_ERROR, "tls_context_failed", "reason", why, NULL);
    return rc;
  }
  ly_rpc_client_set_ctx(id->rpc, ctx);
  wolfSSL_CTX_free(ctx);
  return 0;
}

__attribute__((format(printf, 2, 3))) static void
set_error(ly_identity_t *id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(id->last_error, sizeof(id->last_error), fmt, ap);
  va_end(ap);
}

#define REPEAT_LOG_EVERY_MS 60000

/* The level for a failure's line: warn for the first of a run, a new
 * failure, and once a minute; debug for the same failure repeated, and
 * then for the retry's lines too (id->quiet). */
static ly_log_level_t failure_level(ly_identity_t *id) {
  uint64_t now = uv_now(id->loop);
  id->quiet = id->attempt > 0 &&
              strcmp(id->last_error, id->logged_error) == 0 &&
              now < id->logged_ms + REPEAT_LOG_EVERY_MS;
  if (id->quiet)
    return LY_DEBUG;
  memcpy(id->logged_error, id->last_error, sizeof(id->logged_error));
  id->logged_ms = now;
  return LY_WARN;
}

/* Installs a verified SVID. Takes ownership of key and chain. */
static void install(ly_identity_t *id, ly_key_t *key, ly_chain_t *chain,
                    const ly_cert_info_t *info) {
  int first = id->chain.n == 0;
  if (!first)
    id->rotations[0]++;
  ly_chain_free(&id->chain);
  ly_key_free(id->key);
  id->chain = *chain;
  id->key = key;
  id->info = *info;
  unsigned failures = id->attempt; /* the requests that failed before */
  id->attempt = 0;
  id->quiet = 0;
  id->last_error[0] = '\0';
  id->lost_at = 0;

  int64_t now = now_s();
  int64_t life = info->not_after - now;
  double frac = id->cfg->svid.renew_fraction;
  int64_t at = now + (int64_t)((double)life * frac) + jitter(id, life / 20);
  if (at <= now)
    at = now + 1;
  if (at >= info->not_after)
    at = info->not_after - 1;
  id->renew_at = at;
  schedule_ms(id, (uint64_t)(at - now) * 1000);
  uv_timer_start(&id->expiry, on_expiry,
                 (uint64_t)(info->not_after - now) * 1000 + 1, 0);

  char na[24], ra[24], nf[16];
  ly_log(LY_INFO, first ? "svid_issued" : "svid_rotated", "spiffe_id",
         info->spiffe_id, "serial", info->serial_hex, "not_after",
         ly_fmt(na, sizeof(na), "%lld", (long long)info->not_after), "renew_at",
         ly_fmt(ra, sizeof(ra), "%lld", (long long)at),
         failures ? "after_failures" : NULL, /* the list ends here if none */
         ly_fmt(nf, sizeof(nf), "%u", failures), NULL);
  if (id->cfg->svid.dir) {
    int rc =
        ly_svid_dir_write(id->cfg->svid.dir, &id->chain, id->key, &id->bundle);
    if (rc != 0)
      ly_log(LY_ERROR, "svid_write_failed", "dir", id->cfg->svid.dir, "reason",
             ly_strerror(rc), NULL);
  }
  update_rpc_ctx(id);
  if (id->on_change)
    id->on_change(id, id->data);
}

/* The bundle changed: the CA connection, the write-out and the data
 * plane follow. */
static void bundle_changed(ly_identity_t *id) {
  update_rpc_ctx(id);
  if (id->cfg->svid.dir && have_identity(id))
    ly_svid_dir_write(id->cfg->svid.dir, &id->chain, id->key, &id->bundle);
  if (id->on_change)
    id->on_change(id, id->data);
}

static int chain_has(const ly_chain_t *c, const ly_der_t *d) {
  for (size_t i = 0; i < c->n; i++)
    if (c->certs[i].len == d->len && !memcmp(c->certs[i].der, d->der, d->len))
      return 1;
  return 0;
}

/* Adds the roots of `more` that the bundle lacks; returns how many. */
static size_t merge_roots(ly_identity_t *id, const ly_chain_t *more) {
  size_t added = 0;
  for (size_t i = 0; i < more->n; i++)
    if (!chain_has(&id->bundle, &more->certs[i]) &&
        ly_chain_push(&id->bundle, more->certs[i].der, more->certs[i].len) == 0)
      added++;
  return added;
}

/* The CA's bundle replaces ours: the CA has the last word on which roots
 * are current (a retired root goes). 1 when it changed. */
static int adopt_bundle(ly_identity_t *id, ProtobufCBinaryData *roots,
                        size_t n) {
  if (n == 0)
    return 0;
  ly_chain_t fresh = {0};
  for (size_t i = 0; i < n; i++)
    if (ly_chain_push(&fresh, roots[i].data, roots[i].len) != 0) {
      ly_chain_free(&fresh);
      return UV_ENOMEM;
    }
  int same = fresh.n == id->bundle.n;
  for (size_t i = 0; same && i < n; i++)
    same = chain_has(&id->bundle, &fresh.certs[i]);
  if (same) {
    ly_chain_free(&fresh);
    return 0;
  }
  ly_chain_free(&id->bundle);
  id->bundle = fresh;
  char nr[16];
  ly_log(LY_INFO, "bundle_updated", "roots", ly_fmt(nr, sizeof(nr), "%zu", n),
         NULL);
  return 1;
}

static void on_signed(int code, const char *message,
                      const ProtobufCMessage *msg, void *data) {
  ly_identity_t *id = data;
  ly_key_t *key = id->pending_key;
  id->pending_key = NULL;
  id->in_flight = 0;
  if (id->stopping || code == LY_RPC_CANCELLED) {
    ly_key_free(key);
    return;
  }
  if (code != LY_RPC_OK) {
    if (have_identity(id))
      id->rotations[1]++;
    set_error(id, "%s: %s", ly_rpc_code_name(code), message);
    char n[16];
    ly_log(failure_level(id), "svid_request_failed", "code",
           ly_rpc_code_name(code), "reason", message, "have_identity",
           have_identity(id) ? "true" : "false", "failures",
           ly_fmt(n, sizeof(n), "%u", id->attempt + 1), NULL);
    ly_key_free(key);
    schedule_retry(id, code == LY_RPC_UNAVAILABLE);
    return;
  }
  const Lanyard__Ca__V1__SignResponse *resp =
      (const Lanyard__Ca__V1__SignResponse *)msg;
  ly_chain_t chain = {0};
  ly_cert_info_t info;
  const char *why = "empty chain";
  int rc = resp->n_chain > 0 ? 0 : LY_ECERT;
  for (size_t i = 0; rc == 0 && i < resp->n_chain; i++)
    rc = ly_chain_push(&chain, resp->chain[i].data, resp->chain[i].len);
  /* The response came over TLS verified by our current bundle, so the
   * CA's bundle in it is trusted; the SVID must verify against it. */
  if (rc == 0 && adopt_bundle(id, resp->bundle, resp->n_bundle) > 0 &&
      have_identity(id))
    update_rpc_ctx(id);
  if (rc == 0 && resp->n_bundle > 0) /* the CA's bundle came with it */
    ly_upstream_ok(&id->bundle_refresh, "bundle_refresh");
  if (rc == 0)
    rc = ly_svid_verify(&chain, &id->bundle, now_s(), id->cfg->trust_domain,
                        &info, &why);
  if (rc == 0 && strcmp(info.spiffe_id, id->cfg->spiffe_id) != 0) {
    rc = LY_ECERT;
    why = "bad_identity: the CA issued another SPIFFE ID";
  }
  if (rc == 0 &&
      !ly_key_matches_cert(key, chain.certs[0].der, chain.certs[0].len)) {
    rc = LY_ECERT;
    why = "bad_identity: the SVID is not for our key";
  }
  if (rc != 0) {
    set_error(id, "%s%s", "issued SVID rejected: ", why);
    ly_log(LY_ERROR, "svid_rejected", "reason", why, NULL);
    id->quiet = 0;
    if (have_identity(id))
      id->rotations[1]++;
    ly_chain_free(&chain);
    ly_key_free(key);
    schedule_retry(id, 0);
    return;
  }
  install(id, key, &chain, &info);
}

/* The credential for a first SVID, read fresh each time (the kubelet
 * rotates projected tokens). */
static int read_token(ly_identity_t *id, char **token, int *is_k8s) {
  const char *path = id->cfg->ca.token_file;
  *is_k8s = 0;
  if (!path) {
    path = id->cfg->ca.k8s_token_file;
    *is_k8s = 1;
  }
  size_t len = 0;
  int rc = ly_file_read(path, TOKEN_MAX, token, &len);
  if (rc != 0) {
    set_error(id, "cannot read the token file %s: %s", path, ly_strerror(rc));
    return rc;
  }
  while (len > 0 && ((*token)[len - 1] == '\n' || (*token)[len - 1] == '\r' ||
                     (*token)[len - 1] == ' '))
    (*token)[--len] = '\0';
  return 0;
}

static void request(ly_identity_t *id) {
  if (id->in_flight || id->stopping)
    return;
  Lanyard__Ca__V1__SignRequest req = LANYARD__CA__V1__SIGN_REQUEST__INIT;
  ly_der_t csr = {0};
  char *token = NULL;
  int is_k8s = 0, rc;
  const char *kind = "renewal";
  if ((rc = ly_key_generate(&id->pending_key)) != 0 ||
      (rc = ly_csr_create_dns(id->pending_key, id->cfg->spiffe_id,
                              &id->cfg->dns_name, id->cfg->dns_name ? 1 : 0,
                              &csr)) != 0) {
    set_error(id, "%s%s", "cannot make a key and CSR: ", ly_strerror(rc));
    goto out;
  }
  if (!have_identity(id)) {
    if ((rc = read_token(id, &token, &is_k8s)) != 0)
      goto out;
    if (is_k8s) {
      req.credential_case = LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_K8S_TOKEN;
      req.k8s_token = token;
      kind = "k8s_token";
    } else {
      req.credential_case =
          LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN;
      req.join_token = token;
      kind = "join_token";
    }
    /* Renewal contexts carry our SVID; a first request must not. */
    if ((rc = update_rpc_ctx(id)) != 0)
      goto out;
  }
  req.csr.data = csr.der;
  req.csr.len = csr.len;
  req.ttl_seconds = (uint32_t)(id->cfg->svid.ttl_ms / 1000);
  ly_log(id->quiet ? LY_DEBUG : LY_INFO, "svid_requested", "spiffe_id",
         id->cfg->spiffe_id, "credential", kind, NULL);
  id->in_flight = 1;
  rc = ly_rpc_client_call(id->rpc, "Sign", &req.base, CALL_TIMEOUT_MS,
                          on_signed, id);
  if (rc != 0) {
    id->in_flight = 0;
    set_error(id, "%s%s", "cannot call the CA: ", ly_strerror(rc));
    goto out;
  }
out:
  if (rc != 0) {
    char n[16];
    ly_log(failure_level(id), "svid_request_failed", "reason", id->last_error,
           "failures", ly_fmt(n, sizeof(n), "%u", id->attempt + 1), NULL);
    ly_key_free(id->pending_key);
    id->pending_key = NULL;
    schedule_retry(id, 0);
  }
  free(csr.der);
  if (token) {
    ly_wipe(token, strlen(token));
    free(token);
  }
}

static void on_bundle(int code, const char *message,
                      const ProtobufCMessage *msg, void *data) {
  ly_identity_t *id = data;
  if (code != LY_RPC_OK) {
    if (code != LY_RPC_CANCELLED && !id->stopping)
      ly_upstream_failed(&id->bundle_refresh, "bundle_refresh",
                         uv_now(id->loop), ly_rpc_code_name(code), message);
    return;
  }
  ly_upstream_ok(&id->bundle_refresh, "bundle_refresh");
  const Lanyard__Ca__V1__TrustBundleResponse *r =
      (const Lanyard__Ca__V1__TrustBundleResponse *)msg;
  if (adopt_bundle(id, r->roots, r->n_roots) > 0)
    bundle_changed(id);
}

static void refresh_bundle(ly_identity_t *id) {
  Lanyard__Ca__V1__TrustBundleRequest req =
      LANYARD__CA__V1__TRUST_BUNDLE_REQUEST__INIT;
  ly_rpc_client_call(id->rpc, "TrustBundle", &req.base, CALL_TIMEOUT_MS,
                     on_bundle, id);
}

static void on_bundle_timer(uv_timer_t *t) {
  refresh_bundle(t->data);
}

/* The roots of a PEM file; *why is set when the text is not a bundle. */
static int read_roots(const char *path, ly_chain_t *out, const char **why) {
  char *pem = NULL;
  size_t len = 0;
  int rc = ly_file_read(path, BUNDLE_MAX, &pem, &len);
  if (rc != 0)
    return rc;
  rc = ly_chain_from_pem(pem, len, out, why);
  free(pem);
  return rc;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Adds the roots of a PEM file to the bundle and logs `done` with how
 * many were new, or logs `failed` (a missing file only if `enoent_too`).
 * The count, or a negative error. */
static int merge_file(ly_identity_t *id, const char *path, const char *done,
                      const char *failed, int enoent_too) {
  ly_chain_t roots = {0};
  const char *why = NULL;
  int rc = read_roots(path, &roots, &why);
  if (rc != 0) {
    if (rc != UV_ENOENT || enoent_too)
      ly_log(LY_WARN, failed, "path", path, "reason",
             why ? why : ly_strerror(rc), NULL);
    return rc;
  }
  size_t added = merge_roots(id, &roots);
  ly_chain_free(&roots);
  char na[16];
  ly_log(LY_INFO, done, "path", path, "roots_added",
         ly_fmt(na, sizeof(na), "%zu", added), NULL);
  return (int)added;
}

/* Re-reads ca.bundle when it changed, or always with `force`, and adds
 * its new roots (an operator put the new root there after a rotation),
 * then asks the CA for its bundle, which has the last word, and retries
 * at once a request that waits. Polled rather than watched: a Kubernetes
 * ConfigMap is updated by swapping a symlink to a new directory, which an
 * inotify watch on the file never sees; one stat every 5 s costs
 * nothing, as on the CA. Inode and size are compared besides mtime: a
 * copied-in file may keep its mtime. */
static void reload_bootstrap(ly_identity_t *id, int force) {
  const char *path = id->cfg->ca.bundle;
  struct stat st;
  if (stat(path, &st) == 0) {
    if (!force && same_file(&st, &id->boot_st))
      return;
    id->boot_st = st; /* a bad file is reported once, not every poll */
  } else if (!force) {
    return; /* gone for a moment during an update: the next poll */
  }
  int added = merge_file(id, path, "bootstrap_bundle_reloaded",
                         "bootstrap_bundle_reload_failed", 1);
  if (added < 0)
    return;
  if (added > 0)
    bundle_changed(id);
  refresh_bundle(id);
  if ((!have_identity(id) || id->attempt > 0) && !id->in_flight) {
    uv_timer_stop(&id->timer);
    request(id);
  }
}

static void on_boot_timer(uv_timer_t *t) {
  reload_bootstrap(t->data, 0);
}

/* The bundle this agent last wrote out came from the CA, over TLS
 * verified by the bundle the agent held then: start from it as well as
 * from ca.bundle, so that an agent restarted after a root rotation still
 * knows the CA when ca.bundle lags behind. Both are trusted until the CA
 * sends its own. Whoever can write svid.dir can also replace the key in
 * it, so it must be the agent's alone, like the config. */
static void restore_bundle(ly_identity_t *id) {
  if (!id->cfg->svid.dir)
    return;
  char path[4096];
  snprintf(path, sizeof(path), "%s/bundle.pem", id->cfg->svid.dir);
  merge_file(id, path, "bundle_restored", "bundle_restore_failed", 0);
}

int ly_identity_start(uv_loop_t *loop, const ly_agent_config_t *cfg,
                      ly_identity_change_cb on_change, void *data,
                      ly_identity_t **out, const char **why) {
  ly_identity_t *id = calloc(1, sizeof(*id));
  if (!id)
    return UV_ENOMEM;
  int rc = stat(cfg->ca.bundle, &id->boot_st) == 0
               ? read_roots(cfg->ca.bundle, &id->bundle, why)
               : uv_translate_sys_error(errno);
  if (rc != 0 && why && !*why)
    *why = "cannot read the bootstrap bundle"; /* else: not a bundle */
  if (rc == 0 && wc_InitRng(&id->rng) != 0) {
    rc = LY_ECRYPTO;
    *why = "no random number generator";
  }
  char server_id[LY_SPIFFE_ID_MAX + 1];
  ly_ca_server_id(cfg->trust_domain, server_id, sizeof(server_id));
  if (rc == 0)
    rc = ly_rpc_client_new(loop, &lanyard__ca__v1__ca__descriptor,
                           cfg->ca.address.host, cfg->ca.address.port,
                           server_id, &id->rpc);
  if (rc != 0) {
    ly_chain_free(&id->bundle);
    free(id);
    return rc;
  }
  id->loop = loop;
  id->cfg = cfg;
  id->on_change = on_change;
  id->data = data;
  restore_bundle(id);
  uv_timer_init(loop, &id->timer);
  uv_timer_init(loop, &id->expiry);
  uv_timer_init(loop, &id->bundle_timer);
  uv_timer_init(loop, &id->boot_timer);
  id->timer.data = id->expiry.data = id->bundle_timer.data = id;
  id->boot_timer.data = id;
  update_rpc_ctx(id);
  uv_timer_start(&id->bundle_timer, on_bundle_timer, BUNDLE_REFRESH_MS,
                 BUNDLE_REFRESH_MS);
  uv_timer_start(&id->boot_timer, on_boot_timer, BOOTSTRAP_POLL_MS,
                 BOOTSTRAP_POLL_MS);
  request(id);
  *out = id;
  return 0;
}

void ly_identity_rotate_now(ly_identity_t *id) {
  uv_timer_stop(&id->timer);
  request(id);
}

void ly_identity_reload(ly_identity_t *id) {
  reload_bootstrap(id, 1);
}

void ly_identity_view(const ly_identity_t *id, ly_identity_view_t *v) {
  v->have = have_identity(id);
  v->chain = &id->chain;
  v->key = id->key;
  v->bundle = &id->bundle;
  v->info = &id->info;
  v->renew_at = id->renew_at;
  v->last_error = id->last_error;
  v->rotations_ok = id->rotations[0];
  v->rotations_failed = id->rotations[1];
  v->rpc = id->rpc;
  /* Expired: the timer dropped it, or it ran out a moment ago. */
  v->expired = !v->have && (id->lost_at != 0 || id->chain.n > 0);
  v->expired_at = id->lost_at ? id->lost_at : id->info.not_after;
  v->bundle_refresh = &id->bundle_refresh;
}

static void handle_closed(uv_handle_t *h) {
  ly_identity_t *id = h->data;
  if (--id->handles_open > 0)
    return;
  ly_chain_free(&id->bundle);
  ly_chain_free(&id->chain);
  ly_key_free(id->key);
  wc_FreeRng(&id->rng);
  free(id);
}

void ly_identity_stop(ly_identity_t *id) {
  id->stopping = 1;
  ly_rpc_client_free(id->rpc); /* on_signed sees CANCELLED */
  id->handles_open = 4;
  uv_close((uv_handle_t *)&id->timer, handle_closed);
  uv_close((uv_handle_t *)&id->expiry, handle_closed);
  uv_close((uv_handle_t *)&id->bundle_timer, handle_closed);
  uv_close((uv_handle_t *)&id->boot_timer, handle_closed);
}
