/* `lanyard agent -c agent.yaml [--check]` */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "admin/admin.h"
#include "lanyard/cli.h"
#include "lanyard/config.h"
#include "lanyard/dataplane.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/identity.h"
#include "lanyard/log.h"
#include "lanyard/memtrim.h"
#include "lanyard/acceptor.h"
#include "lanyard/tls.h"
#include "lanyard/intercept.h"
#include "lanyard/netns_watch.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const ly_agent_config_t *cfg;
  ly_identity_t *identity;
  ly_dataplane_t *dp;
  ly_agent_admin_t admin;
  uv_signal_t sigint, sigterm, sighup;
  ly_memtrim_t trim;
  ly_netns_watch_t netns;
} agent_t;

/* A new identity or bundle: build the data path's contexts here, on the
 * control thread, and hand them to the workers. Connections already
 * established keep the contexts they started with. */
static void on_identity(ly_identity_t *id, void *data) {
  agent_t *a = data;
  ly_identity_view_t v;
  ly_identity_view(id, &v);
  if (!a->dp)
    return;
  if (!v.have) {
    ly_dataplane_publish(a->dp, NULL);
    return;
  }
  WOLFSSL_CTX *server = NULL, *client = NULL;
  const char *why = NULL;
  ly_tls_ctx_opts_t o = {.chain = v.chain,
                         .key = v.key,
                         .roots = v.bundle,
                         .require_peer_cert = 1,
                         .spiffe_peer = 1};
  o.is_server = 1;
  int rc = ly_tls_ctx_new(&o, &server, &why);
  o.is_server = 0;
  if (rc == 0)
    rc = ly_tls_ctx_new(&o, &client, &why);
  if (rc != 0) {
    ly_log(LY_ERROR, "tls_context_failed", "reason", why, NULL);
  } else {
    ly_tls_pair_t *pair = ly_tls_pair_new(server, client, v.bundle);
    if (pair) {
      ly_dataplane_publish(a->dp, pair);
      ly_tls_pair_unref(pair);
      ly_log(LY_INFO, "tls_context_published", "serial", v.info->serial_hex,
             NULL);
    }
  }
  if (server)
    wolfSSL_CTX_free(server);
  if (client)
    wolfSSL_CTX_free(client);
}

/* --iptables: a container's agent installs its own rules (the ports come
 * from its config), then gives up root for good. Doing it here rather
 * than in a one-shot init container means that an agent restarted into
 * a new namespace (see netns_watch.h) brings the rules with it. */
static int install_rules_and_drop(const ly_agent_config_t *cfg) {
  if (!cfg->inbound.enabled && !cfg->outbound.enabled) {
    ly_log(LY_ERROR, "agent_start_failed", "reason",
           "--iptables needs transparent mode (an inbound: or outbound: "
           "section in the config)",
           NULL);
    return -1;
  }
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  o.inbound_port = cfg->inbound.port ? cfg->inbound.port : o.inbound_port;
  o.outbound_port = cfg->outbound.port ? cfg->outbound.port : o.outbound_port;
  o.admin_port = cfg->admin.port ? cfg->admin.port : o.admin_port;
  int families[2] = {AF_INET, AF_INET6};
  int nfam = ly_iptables_want_ipv6(&o) ? 2 : 1;
  for (int i = 0; i < nfam; i++) {
    const char *why = NULL;
    int rc = ly_iptables_apply(&o, families[i], &why);
    if (rc != 0) {
      ly_log(LY_ERROR, "iptables_install_failed", "family",
             families[i] == AF_INET6 ? "ipv6" : "ipv4", "reason",
             why ? why : "-", "error", ly_strerror(rc), NULL);
      return -1;
    }
    ly_log(LY_INFO, "iptables_installed", "family",
           families[i] == AF_INET6 ? "ipv6" : "ipv4", NULL);
  }
  /* Root (and every capability with it) goes: the rules exempt the
   * proxy UID's own traffic, so the agent must run as exactly that UID. */
  if (getuid() == 0 || geteuid() == 0) {
    gid_t gid = (gid_t)o.proxy_uid;
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(o.proxy_uid, o.proxy_uid, o.proxy_uid) != 0 ||
        setuid(0) == 0) {
      ly_log(LY_ERROR, "privilege_drop_failed", "reason", strerror(errno),
             NULL);
      return -1;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  } else if (getuid() != o.proxy_uid) {
    ly_log(LY_ERROR, "agent_start_failed", "reason",
           "with --iptables the agent must start as root or as UID 1337", NULL);
    return -1;
  }
  return 0;
}

/* The namespace is dead: no peer can reach this agent any more. Exit at
 * once (draining is pointless) and non-zero, so the container's restart
 * policy starts it again in the app's new namespace. */
static void on_netns_lost(ly_netns_watch_t *w) {
  (void)w;
  fflush(stdout);
  fflush(stderr);
  _exit(LY_EXIT_FAIL);
}

static void on_signal(uv_signal_t *s, int signum) {
  agent_t *a = s->data;
  ly_log(LY_INFO, "agent_stopping", "signal",
         signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  ly_memtrim_stop(&a->trim);
  ly_netns_watch_stop(&a->netns);
  uv_close((uv_handle_t *)&a->sighup, NULL);
  /* Closing the handle restored the default action, which is to exit
   * at once: a SIGHUP while draining must not cut the drain short. */
  signal(SIGHUP, SIG_IGN);
  ly_agent_admin_stop(&a->admin);
  if (a->dp) {
    /* Stop accepting, let connections finish up to the drain deadline. */
    ly_dataplane_stop(a->dp);
    a->dp = NULL;
    ly_log(LY_INFO, "agent_drained", NULL);
  }
  ly_identity_stop(a->identity);
}

/* SIGHUP reloads what can change under a running agent: the bootstrap
 * bundle, the CA's bundle, and a request that waits for its retry. The
 * config itself is read once (listeners would need a restart). */
static void on_sighup(uv_signal_t *s, int signum) {
  agent_t *a = s->data;
  (void)signum;
  ly_log(LY_INFO, "agent_reloading", "signal", "SIGHUP", NULL);
  ly_identity_reload(a->identity);
}

int ly_cmd_agent(int argc, char **argv) {
  ly_daemon_args_t args = {0};
  int rc = ly_daemon_args(argc, argv, "agent", "agent.yaml", &args);
  if (rc >= 0)
    return rc;
  const char *cfg_path = args.config, *why = NULL;
  int check = args.check;
  ly_diag_t diag;
  ly_diag_init(&diag);
  ly_agent_config_t *cfg = NULL;
  rc = LY_EXIT_USAGE;
  /* --check looks at the files too, whatever else is wrong (filecheck.c) */
  int bad = (args.from_env ? ly_agent_config_from_env(&cfg, &diag)
                           : ly_agent_config_load_ex(
                                 cfg_path, check ? LY_CONFIG_CHECK_FILES : 0,
                                 &cfg, &diag)) != 0;
  ly_diag_print(&diag, stderr);
  if (bad)
    goto out;
  if (check) {
    printf("%s: OK\n", args.from_env ? "the environment" : cfg_path);
    rc = LY_EXIT_OK;
    goto out;
  }
  /* Bulk transfers free and reuse the same buffers at a high rate; with
   * glibc's default 128 KiB trim threshold each worker's heap hands its
   * top pages back to the kernel and faults them in again (a tenth of a
   * bulk transfer's time in perf). Keep up to 4 MiB per arena instead. */
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  if (args.iptables && install_rules_and_drop(cfg) != 0) {
    rc = LY_EXIT_FAIL;
    goto out;
  }
  ly_fd_limit_raise(); /* the data plane sizes its connection cap from it */
  uv_loop_t *loop = uv_default_loop();
  agent_t a = {.cfg = cfg};
  ly_dataplane_limits_t limits;
  ly_dataplane_defaults(&limits);
  limits.connect_timeout_ms = cfg->limits.connect_timeout_ms;
  limits.handshake_timeout_ms = cfg->limits.handshake_timeout_ms;
  limits.idle_timeout_ms = cfg->limits.idle_timeout_ms;
  limits.drain_timeout_ms = cfg->limits.drain_timeout_ms;
  limits.sniff_timeout_ms = cfg->limits.sniff_timeout_ms;
  limits.max_connections = (unsigned)cfg->limits.max_connections;
  limits.buffer_limit = (size_t)cfg->limits.buffer_limit;
  char err[512];
  rc = ly_dataplane_start(cfg, &limits, &a.dp, err, sizeof(err));
  if (rc != 0) {
    ly_log(LY_ERROR, "agent_start_failed", "reason", err, NULL);
    rc = LY_EXIT_FAIL;
    goto out;
  }
  rc = ly_identity_start(loop, cfg, on_identity, &a, &a.identity, &why);
  if (rc != 0) {
    ly_log(LY_ERROR, "agent_start_failed", "reason",
           why ? why : ly_strerror(rc), NULL);
    ly_dataplane_stop(a.dp);
    rc = LY_EXIT_FAIL;
    goto out;
  }
  if (ly_agent_admin_start(&a.admin, loop, cfg, a.identity, a.dp, err,
                           sizeof(err)) != 0) {
    ly_log(LY_ERROR, "agent_start_failed", "reason", err, NULL);
    ly_identity_stop(a.identity);
    ly_dataplane_stop(a.dp);
    uv_run(loop, UV_RUN_DEFAULT); /* let the handles close */
    rc = LY_EXIT_FAIL;
    goto out;
  }
  char runfile[4096] = "";
  if (cfg->admin.port == 0) {
    /* admin: HOST:0: the kernel picked the port; say which, in the log
     * and in a file `lanyard status` looks for. */
    uint16_t port = ly_http_server_port(a.admin.http);
    char p[8];
    ly_log(LY_INFO, "admin_listening", "host", cfg->admin.host, "port",
           ly_fmt(p, sizeof(p), "%u", port), NULL);
    int wrc = ly_runfile_write(cfg->spiffe_id, cfg->admin.host, port, runfile,
                               sizeof(runfile));
    if (wrc != 0) {
      ly_log(LY_WARN, "run_file_failed", "path", runfile, "reason",
             ly_strerror(wrc), NULL);
      runfile[0] = '\0';
    }
  }
  uv_signal_init(loop, &a.sigint);
  uv_signal_init(loop, &a.sigterm);
  uv_signal_init(loop, &a.sighup);
  a.sigint.data = a.sigterm.data = a.sighup.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  ly_memtrim_start(&a.trim, loop);
  uv_signal_start(&a.sighup, on_sighup, SIGHUP);
  ly_netns_watch_start(&a.netns, loop, on_netns_lost);
  ly_log(LY_INFO, "agent_started", "spiffe_id", cfg->spiffe_id, "ca",
         cfg->ca.address.host, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  if (runfile[0])
    unlink(runfile);
  rc = LY_EXIT_OK;
out:
  ly_agent_config_free(cfg);
  ly_diag_free(&diag);
  return rc;
}
