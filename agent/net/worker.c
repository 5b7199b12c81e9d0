/* Worker threads, their listening sockets and their mailboxes. */
#include "net/worker.h"
#include "lanyard/tls_conn.h"

#include "lanyard/err.h"
#include "lanyard/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

void ly_dataplane_defaults(ly_dataplane_limits_t *l) {
  l->connect_timeout_ms = 5000;
  l->handshake_timeout_ms = 10000;
  l->idle_timeout_ms = 3600 * 1000; /* long-lived streams are normal */
  l->drain_timeout_ms = 15000;
  l->sniff_timeout_ms = 1000;
  l->max_connections = 16384;
  l->buffer_limit = 256 * 1024;
}

static int resolve(const ly_hostport_t *hp, struct sockaddr_storage *out) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%u", hp->port);
  int rc = getaddrinfo(hp->host, port, &hints, &ai);
  if (rc != 0 || !ai)
    return UV_EAI_NONAME;
  memcpy(out, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  return 0;
}

static size_t addr_len(const struct sockaddr_storage *a) {
  return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                  : sizeof(struct sockaddr_in);
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t len) {
  const unsigned char *b = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

ly_session_slot_t *ly_worker_session(ly_worker_t *w, const void *listener,
                                     const struct sockaddr_storage *addr) {
  uint32_t h = fnv1a(2166136261u, &listener, sizeof(listener));
  h = fnv1a(h, addr, addr_len(addr));
  ly_session_slot_t *slot = &w->sessions[h % LY_SESSION_SLOTS];
  if (slot->listener != listener ||
      memcmp(&slot->addr, addr, addr_len(addr)) != 0) {
    if (slot->session)
      wolfSSL_SESSION_free(slot->session);
    free(slot->peer);
    memset(slot, 0, sizeof(*slot));
    slot->listener = listener;
    memcpy(&slot->addr, addr, addr_len(addr));
  }
  return slot;
}

/* Descriptors kept for the control plane (renewal, the CA connection,
 * admin clients, files), whatever the data path holds. */
#define FD_RESERVE_MAX 256

/* Each proxied connection holds two descriptors (its two sides): the
 * connection cap keeps them within the limit, less the reserve. */
static unsigned connection_cap(unsigned configured) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return configured;
  rlim_t reserve =
      rl.rlim_cur / 4 < FD_RESERVE_MAX ? rl.rlim_cur / 4 : FD_RESERVE_MAX;
  rlim_t cap = (rl.rlim_cur - reserve) / 2;
  return cap < configured ? (unsigned)(cap ? cap : 1) : configured;
}

static ly_dir_t dir_of_listener(const ly_listener_t *l) {
  return l->kind == LY_LISTEN_SERVER || l->kind == LY_LISTEN_INBOUND
             ? LY_DIR_INBOUND
             : LY_DIR_OUTBOUND;
}

/* A connection the data path would not take: counted, and logged within
 * the shared budget. */
static void overload(ly_worker_listener_t *wl, const char *reason,
                     const char *detail) {
  ly_worker_t *w = wl->worker;
  ly_dir_stats_t *ds = &w->stats.dir[dir_of_listener(wl->listener)];
  ly_stat_add(strcmp(reason, "limit") == 0 ? &ds->refused_limit
                                           : &ds->accept_failed,
              1);
  uint64_t suppressed = 0;
  if (ly_log_limit(&w->dp->overload_log, uv_now(&w->loop), &suppressed)) {
    char max[24], n[24];
    ly_log(LY_WARN, "connection_refused", "listener", wl->listener->name,
           "reason", reason, "detail", detail, "max_connections",
           ly_fmt(max, sizeof(max), "%u", w->dp->limits.max_connections),
           "suppressed",
           suppressed
               ? ly_fmt(n, sizeof(n), "%llu", (unsigned long long)suppressed)
               : NULL,
           NULL);
  }
}

static void on_accept(ly_acceptor_t *a, int fd) {
  ly_worker_listener_t *wl = a->data;
  ly_worker_t *w = wl->worker;
  if (fd < 0) {
    overload(wl, "accept_failed", uv_strerror(fd));
    return;
  }
  if (atomic_load(&w->dp->active) >= w->dp->limits.max_connections) {
    close(fd); /* a quick refusal beats a wait in the backlog */
    overload(wl, "limit", "connection limit reached");
    return;
  }
  ly_proxy_accept(wl, fd);
}

static void close_handles(ly_worker_t *w) {
  uv_close((uv_handle_t *)&w->wake, NULL);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
}

void ly_worker_proxy_gone(ly_worker_t *w) {
  if (w->draining && w->proxies == NULL)
    close_handles(w);
}

static void on_drain_deadline(uv_timer_t *t) {
  ly_worker_t *w = t->data;
  ly_proxy_close_all(w); /* proxies end; the last one closes the loop */
}

static void begin_drain(ly_worker_t *w) {
  if (w->draining)
    return;
  w->draining = 1;
  /* What the kernel already queued is served like any connection before
   * the drain; only connections that arrive after the close are refused. */
  for (size_t i = 0; i < w->nlisteners; i++) {
    ly_acceptor_sweep(&w->listeners[i].acceptor);
    ly_acceptor_close(&w->listeners[i].acceptor, NULL);
  }
  if (w->proxies == NULL) {
    close_handles(w);
    return;
  }
  uv_timer_start(&w->drain_timer, on_drain_deadline,
                 w->dp->limits.drain_timeout_ms, 0);
}

static void on_wake(uv_async_t *a) {
  ly_worker_t *w = a->data;
  uv_mutex_lock(&w->lock);
  int has_next = w->has_next, stop = w->stop_requested;
  ly_tls_pair_t *next = w->next;
  w->has_next = 0;
  w->next = NULL;
  uv_mutex_unlock(&w->lock);
  if (has_next) {
    /* Live connections hold their own references to the old pair. */
    ly_tls_pair_unref(w->pair);
    w->pair = next;
  }
  if (stop)
    begin_drain(w);
}

static void worker_main(void *arg) {
  ly_worker_t *w = arg;
  ly_tls_conn_pool_begin();
  uv_run(&w->loop, UV_RUN_DEFAULT);
  ly_tls_conn_pool_end();
}

static int worker_init(ly_dataplane_t *dp, ly_worker_t *w, unsigned index,
                       char *err, size_t errlen) {
  w->dp = dp;
  w->index = index;
  LY_GUARD(uv_loop_init(&w->loop));
  uv_mutex_init(&w->lock);
  uv_async_init(&w->loop, &w->wake, on_wake);
  w->wake.data = w;
  uv_timer_init(&w->loop, &w->drain_timer);
  w->drain_timer.data = w;
  w->listeners = calloc(dp->nlisteners, sizeof(*w->listeners));
  if (!w->listeners && dp->nlisteners)
    return UV_ENOMEM;
  for (size_t i = 0; i < dp->nlisteners; i++) {
    ly_worker_listener_t *wl = &w->listeners[i];
    const ly_listener_t *l = &dp->listeners[i];
    struct sockaddr_storage ss;
    int fd = -1;
    /* SO_REUSEPORT: each worker listens on its own socket bound to the
     * same address and the kernel balances new connections between them,
     * with no accept lock and no hand-off between threads. */
    int rc = resolve(&l->listen, &ss);
    if (rc == 0)
      rc = ly_listen_socket((struct sockaddr *)&ss, 1, 1024, &fd);
    if (rc != 0) {
      snprintf(err, errlen, "listener '%s': cannot listen on %s:%u: %s",
               l->name, l->listen.host, l->listen.port, uv_strerror(rc));
      return rc;
    }
    wl->worker = w;
    wl->listener = l;
    wl->acceptor.data = wl;
    w->nlisteners++;
    if ((rc = ly_acceptor_start(&wl->acceptor, &w->loop, fd, on_accept)) != 0) {
      snprintf(err, errlen, "listener '%s': %s", l->name, uv_strerror(rc));
      return rc;
    }
  }
  return 0;
}

static ly_listener_t *add_listener(ly_dataplane_t *dp, ly_listen_kind_t kind,
                                   const char *name, const char *host,
                                   uint16_t port) {
  ly_listener_t *l = &dp->listeners[dp->nlisteners++];
  l->kind = kind;
  l->name = name;
  snprintf(l->listen.host, sizeof(l->listen.host), "%s", host);
  l->listen.port = port;
  return l;
}

static int ipv6_available(void) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

/* Explicit listeners as configured; capture listeners for transparent
 * mode on every address of both families (REDIRECT rewrites the
 * destination to the receiving interface's address). */
static int build_listeners(ly_dataplane_t *dp, const ly_agent_config_t *cfg,
                           char *err, size_t errlen) {
  dp->listeners = calloc(cfg->nlisteners + 4, sizeof(*dp->listeners));
  if (!dp->listeners)
    return UV_ENOMEM;
  for (size_t i = 0; i < cfg->nlisteners; i++) {
    const ly_listener_config_t *lc = &cfg->listeners[i];
    int server = lc->mode == LY_LISTENER_SERVER;
    ly_listener_t *l =
        add_listener(dp, server ? LY_LISTEN_SERVER : LY_LISTEN_CLIENT, lc->name,
                     lc->listen.host, lc->listen.port);
    l->allow = lc->nallow ? (const char *const *)lc->allow : NULL;
    l->nallow = lc->nallow;
    l->expect = lc->expect;
    const ly_hostport_t *target = server ? &lc->forward : &lc->connect;
    if (resolve(target, &l->target) != 0) {
      snprintf(err, errlen, "listener '%s': cannot resolve %s", lc->name,
               target->host);
      return UV_EAI_NONAME;
    }
  }
  int v6 = ipv6_available();
  if (cfg->inbound.enabled) {
    add_listener(dp, LY_LISTEN_INBOUND, "inbound", "0.0.0.0",
                 cfg->inbound.port);
    if (v6)
      add_listener(dp, LY_LISTEN_INBOUND, "inbound", "::", cfg->inbound.port);
  }
  if (cfg->outbound.enabled) {
    add_listener(dp, LY_LISTEN_OUTBOUND, "outbound", "0.0.0.0",
                 cfg->outbound.port);
    if (v6)
      add_listener(dp, LY_LISTEN_OUTBOUND, "outbound",
                   "::", cfg->outbound.port);
  }
  return 0;
}

int ly_dataplane_start(const ly_agent_config_t *cfg,
                       const ly_dataplane_limits_t *limits,
                       ly_dataplane_t **out, char *err, size_t errlen) {
  ly_dataplane_t *dp = calloc(1, sizeof(*dp));
  LY_ENSURE(dp != NULL, UV_ENOMEM);
  dp->cfg = cfg;
  dp->limits = *limits;
  dp->limits.max_connections = connection_cap(limits->max_connections);
  ly_log_limiter_init(&dp->refusal_log);
  ly_log_limiter_init(&dp->overload_log);
  int rc = build_listeners(dp, cfg, err, errlen);
  unsigned n =
      cfg->workers ? (unsigned)cfg->workers : uv_available_parallelism();
  dp->workers = rc == 0 ? calloc(n, sizeof(*dp->workers)) : NULL;
  if (rc == 0 && !dp->workers)
    rc = UV_ENOMEM;
  for (unsigned i = 0; rc == 0 && i < n; i++) {
    rc = worker_init(dp, &dp->workers[i], i, err, errlen);
    dp->nworkers++;
  }
  for (unsigned i = 0; rc == 0 && i < n; i++)
    rc = uv_thread_create(&dp->workers[i].thread, worker_main, &dp->workers[i]);
  if (rc != 0) {
    /* Nothing has run yet: a failed start only has sockets to close. */
    for (unsigned i = 0; i < dp->nworkers; i++)
      for (size_t j = 0; j < dp->workers[i].nlisteners; j++)
        if (dp->workers[i].listeners[j].acceptor.fd >= 0)
          close(dp->workers[i].listeners[j].acceptor.fd);
    return rc;
  }
  struct rlimit rl;
  char fds[24], max[24], nw[24];
  getrlimit(RLIMIT_NOFILE, &rl);
  ly_log(LY_INFO, "dataplane_started", "workers",
         ly_fmt(nw, sizeof(nw), "%u", n), "fd_limit",
         ly_fmt(fds, sizeof(fds), "%llu", (unsigned long long)rl.rlim_cur),
         "max_connections",
         ly_fmt(max, sizeof(max), "%u", dp->limits.max_connections), NULL);
  *out = dp;
  return 0;
}

void ly_dataplane_publish(ly_dataplane_t *dp, ly_tls_pair_t *pair) {
  for (unsigned i = 0; i < dp->nworkers; i++) {
    ly_worker_t *w = &dp->workers[i];
    if (pair)
      ly_tls_pair_ref(pair);
    uv_mutex_lock(&w->lock);
    ly_tls_pair_unref(w->next); /* never picked up: superseded */
    w->next = pair;
    w->has_next = 1;
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wake);
  }
}

void ly_dataplane_stop(ly_dataplane_t *dp) {
  for (unsigned i = 0; i < dp->nworkers; i++) {
    ly_worker_t *w = &dp->workers[i];
    uv_mutex_lock(&w->lock);
    w->stop_requested = 1;
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wake);
  }
  for (unsigned i = 0; i < dp->nworkers; i++) {
    ly_worker_t *w = &dp->workers[i];
    uv_thread_join(&w->thread);
    uv_loop_close(&w->loop);
    uv_mutex_destroy(&w->lock);
    ly_tls_pair_unref(w->pair);
    ly_tls_pair_unref(w->next);
    for (size_t j = 0; j < LY_SESSION_SLOTS; j++) {
      if (w->sessions[j].session)
        wolfSSL_SESSION_free(w->sessions[j].session);
      free(w->sessions[j].peer);
    }
    free(w->listeners);
    ly_stats_free(&w->stats);
  }
  free(dp->workers);
  free(dp->listeners);
  ly_log_limiter_destroy(&dp->refusal_log);
  ly_log_limiter_destroy(&dp->overload_log);
  free(dp);
}

unsigned ly_dataplane_active(const ly_dataplane_t *dp) {
  return atomic_load(&dp->active);
}

void ly_dataplane_stats(const ly_dataplane_t *dp,
                        ly_dir_stats_t acc[LY_DIR__COUNT],
                        ly_peer_total_t *peers, size_t *npeers, size_t cap) {
  *npeers = 0;
  for (unsigned i = 0; i < dp->nworkers; i++) {
    ly_stats_sum(acc, &dp->workers[i].stats);
    ly_stats_peers(&dp->workers[i].stats, peers, npeers, cap);
  }
}

void ly_dataplane_log_summary(ly_dataplane_t *dp) {
  ly_log_suppressed(&dp->refusal_log, "mtls_refusals_suppressed", NULL);
}
