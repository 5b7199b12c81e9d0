/* `lanyard ca serve -c ca.yaml [--check]`: the CA's RPC server.
 *
 * The server presents an SVID of its own, spiffe://<td>/lanyard/ca, issued
 * at start by the signing intermediate and kept in memory only (each
 * replica makes its own), renewed at half its life. The same TLS context
 * carries the bundle, so agents renewing over mTLS are verified by it; a
 * changed bundle file or signing certificate/key (root and intermediate
 * rotation, rotate_cmd.c) rebuilds the context, no restart: the files are
 * polled every BUNDLE_POLL_MS and before each Sign.
 */
#include "ca/ca.h"
#include "lanyard/acceptor.h"

#include "lanyard/cli.h"
#include "lanyard/http.h"
#include "lanyard/err.h"
#include "lanyard/log.h"
#include "lanyard/memtrim.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ly_cmd_ca_serve(int argc, char **argv);

#define SERVING_TTL_S (24 * 3600)
#define BUNDLE_POLL_MS 5000

typedef struct {
  ly_ca_t ca;
  ly_rpc_server_t *server;
  ly_http_server_t *admin;
  uv_timer_t timer;
  uv_signal_t sigint, sigterm, sighup;
  ly_memtrim_t trim;
  int64_t serving_renew_at;
  struct timespec ctx_bundle; /* the bundle file the context was built on */
  unsigned ctx_signer_gen;    /* and the signer it was issued by */
} serve_t;

/* A fresh serving identity and a TLS context around it and the bundle. */
static int make_ctx(ly_ca_t *ca, WOLFSSL_CTX **out, int64_t *renew_at) {
  char id[LY_SPIFFE_ID_MAX + 1];
  ly_ca_server_id(ca->cfg->trust_domain, id, sizeof(id));
  ly_key_t *key = NULL;
  ly_der_t csr_der = {0}, cert = {0};
  ly_csr_t csr;
  ly_chain_t chain = {0};
  const char *why = NULL;
  int64_t now = (int64_t)time(NULL);
  int64_t not_after = now + SERVING_TTL_S;
  const ly_chain_t *signer_chain = ly_signer_chain(ca->signer);
  ly_cert_info_t signing;
  int rc;
  if ((rc = ly_cert_info(signer_chain->certs[0].der, signer_chain->certs[0].len,
                         &signing)) != 0)
    goto out;
  if (not_after > signing.not_after)
    not_after = signing.not_after;
  /* The CSR is only a way to get the public key in DER form. */
  if ((rc = ly_key_generate(&key)) != 0 ||
      (rc = ly_csr_create(key, id, &csr_der)) != 0 ||
      (rc = ly_csr_check(csr_der.der, csr_der.len, &csr, &why)) != 0 ||
      (rc = ly_signer_issue(ca->signer, csr.pubkey, csr.pubkey_len, id,
                            now - LY_CA_BACKDATE_S, not_after, &cert)) != 0 ||
      (rc = ly_chain_push(&chain, cert.der, cert.len)) != 0)
    goto out;
  for (size_t i = 0; i < signer_chain->n; i++)
    if ((rc = ly_chain_push(&chain, signer_chain->certs[i].der,
                            signer_chain->certs[i].len)) != 0)
      goto out;
  ly_tls_ctx_opts_t opts = {.is_server = 1,
                            .chain = &chain,
                            .key = key,
                            .roots = &ca->roots,
                            .require_peer_cert = 0,
                            .capture_peer_chain = 1};
  if ((rc = ly_tls_ctx_new(&opts, out, &why)) != 0)
    goto out;
  *renew_at = now + (not_after - now) / 2;
out:
  if (rc != 0)
    ly_log(LY_ERROR, "ca_serving_identity_failed", "reason",
           why ? why : ly_strerror(rc), NULL);
  ly_key_free(key);
  free(csr_der.der);
  free(cert.der);
  ly_chain_free(&chain);
  return rc;
}

static void on_timer(uv_timer_t *t) {
  serve_t *sv = t->data;
  ly_ca_reload_bundle(&sv->ca);
  ly_ca_reload_signer(&sv->ca);
  ly_kube_tick(sv->ca.kube);
  ly_ca_log_suppressed(&sv->ca);
  /* Compared with what the context was built on, not with the last
   * reload: RPCs reload the bundle and the signer too. A new signer means
   * a new serving certificate: before its old root is retired, the CA's
   * own identity must chain to the new one. */
  int bundle_changed = sv->ctx_bundle.tv_sec != sv->ca.bundle_mtime.tv_sec ||
                       sv->ctx_bundle.tv_nsec != sv->ca.bundle_mtime.tv_nsec;
  int signer_changed = sv->ctx_signer_gen != sv->ca.signer_gen;
  if (!bundle_changed && !signer_changed &&
      (int64_t)time(NULL) < sv->serving_renew_at)
    return;
  WOLFSSL_CTX *ctx;
  struct timespec built_on = sv->ca.bundle_mtime;
  unsigned gen = sv->ca.signer_gen;
  if (make_ctx(&sv->ca, &ctx, &sv->serving_renew_at) != 0)
    return; /* the current context keeps serving; retried next tick */
  sv->ctx_bundle = built_on;
  sv->ctx_signer_gen = gen;
  ly_rpc_server_set_ctx(sv->server, ctx);
  wolfSSL_CTX_free(ctx);
  ly_log(LY_INFO, "ca_tls_context_rotated", "reason",
         bundle_changed   ? "bundle changed"
         : signer_changed ? "signer changed"
                          : "serving certificate renewal",
         NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  serve_t *sv = s->data;
  ly_log(LY_INFO, "ca_stopping", "signal",
         signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  ly_rpc_server_stop(sv->server);
  ly_http_server_stop(sv->admin);
  ly_kube_stop(sv->ca.kube);
  ly_ca_log_suppressed(&sv->ca);
  uv_close((uv_handle_t *)&sv->timer, NULL);
  uv_close((uv_handle_t *)&sv->sigint, NULL);
  uv_close((uv_handle_t *)&sv->sigterm, NULL);
  ly_memtrim_stop(&sv->trim);
  uv_close((uv_handle_t *)&sv->sighup, NULL);
  /* Closing the handle restored the default action, which is to exit
   * at once: a SIGHUP while draining must not cut the drain short. */
  signal(SIGHUP, SIG_IGN);
}

/* SIGHUP: the bundle and signing files and the cluster's JWKS now, rather
 * than at the next poll. The rest of the config (addresses, paths) takes a
 * restart. */
static void on_sighup(uv_signal_t *s, int signum) {
  serve_t *sv = s->data;
  (void)signum;
  ly_log(LY_INFO, "ca_reloading", "signal", "SIGHUP", NULL);
  ly_kube_refresh(sv->ca.kube);
  on_timer(&sv->timer);
}

static int listen_addr(const ly_hostport_t *hp, struct sockaddr_storage *ss) {
  if (uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)ss) == 0)
    return 0;
  return uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)ss);
}

int ly_cmd_ca_serve(int argc, char **argv) {
  ly_daemon_args_t args = {0};
  int rc = ly_daemon_args(argc, argv, "ca serve", "ca.yaml", &args);
  if (rc >= 0)
    return rc;
  const char *cfg_path = args.config;
  int check = args.check;
  ly_diag_t diag;
  ly_diag_init(&diag);
  ly_ca_config_t *cfg = NULL;
  serve_t sv;
  memset(&sv, 0, sizeof(sv));
  rc = LY_EXIT_USAGE;
  /* --check looks at the files too, whatever else is wrong (filecheck.c);
   * ly_ca_load then checks that they make one CA. */
  if (ly_ca_config_load_ex(cfg_path, check ? LY_CONFIG_CHECK_FILES : 0, &cfg,
                           &diag) != 0 ||
      ly_ca_load(&sv.ca, cfg, check, &diag) != 0) {
    ly_diag_print(&diag, stderr);
    goto out;
  }
  ly_diag_print(&diag, stderr); /* warnings */
  if (check) {
    printf("%s: OK\n", cfg_path);
    ly_ca_free(&sv.ca);
    rc = LY_EXIT_OK;
    goto out;
  }

  rc = LY_EXIT_FAIL;
  ly_fd_limit_raise();
  uv_loop_t *loop = uv_default_loop();
  struct sockaddr_storage addr;
  WOLFSSL_CTX *ctx = NULL;
  int err;
  if (ly_ca_service_init(&sv.ca, loop) != 0 ||
      ly_kube_start(&sv.ca, loop, &sv.ca.kube) != 0)
    goto free_ca;
  sv.ctx_bundle = sv.ca.bundle_mtime;
  if (listen_addr(&cfg->listen, &addr) != 0 ||
      make_ctx(&sv.ca, &ctx, &sv.serving_renew_at) != 0)
    goto free_ca;
  err = ly_rpc_server_start(loop, (struct sockaddr *)&addr, ctx,
                            &sv.ca.service.base, &sv.server);
  wolfSSL_CTX_free(ctx);
  if (err != 0) {
    char port[8];
    ly_log(LY_ERROR, "ca_listen_failed", "host", cfg->listen.host, "port",
           ly_fmt(port, sizeof(port), "%u", cfg->listen.port), "reason",
           uv_strerror(err), NULL);
    goto free_ca;
  }
  char admin_err[300];
  if (ly_ca_admin_start(&sv.ca, &sv.admin, admin_err, sizeof(admin_err)) != 0) {
    ly_log(LY_ERROR, "ca_listen_failed", "reason", admin_err, NULL);
    ly_rpc_server_stop(sv.server);
    uv_run(loop, UV_RUN_DEFAULT);
    goto free_ca;
  }
  uv_timer_init(loop, &sv.timer);
  sv.timer.data = &sv;
  uv_timer_start(&sv.timer, on_timer, BUNDLE_POLL_MS, BUNDLE_POLL_MS);
  uv_signal_init(loop, &sv.sigint);
  uv_signal_init(loop, &sv.sigterm);
  uv_signal_init(loop, &sv.sighup);
  sv.sigint.data = sv.sigterm.data = sv.sighup.data = &sv;
  uv_signal_start(&sv.sigint, on_signal, SIGINT);
  uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
  ly_memtrim_start(&sv.trim, loop);
  uv_signal_start(&sv.sighup, on_sighup, SIGHUP);
  char port[8], roots[8];
  ly_log(LY_INFO, "ca_started", "trust_domain", cfg->trust_domain, "listen",
         cfg->listen.host, "port",
         ly_fmt(port, sizeof(port), "%u", cfg->listen.port), "roots",
         ly_fmt(roots, sizeof(roots), "%zu", sv.ca.roots.n), NULL);
  if (ly_ca_fault_omit_intermediate())
    ly_log(LY_WARN, "ca_fault_injection", "fault", "omit_intermediate",
           "reason",
           "LANYARD_FAULT_OMIT_INTERMEDIATE=1: SVIDs are sent without their "
           "intermediate (a game-day drill; never set it in production)",
           NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  rc = LY_EXIT_OK;
free_ca:
  ly_ca_free(&sv.ca);
out:
  ly_ca_config_free(cfg);
  ly_diag_free(&diag);
  return rc;
}
