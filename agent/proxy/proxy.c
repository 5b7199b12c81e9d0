/* The splice between a plaintext TCP connection and an mTLS connection.
 *
 *   server listener:  peer --mTLS--> [tls | proxy | plain] --> forward
 *   client listener:  app --plain--> [plain | proxy | tls] --mTLS--> connect
 *
 * Each direction is bounded: bytes queued toward one side beyond the
 * buffer limit pause reading from the other, and reading resumes when the
 * queue drains (below half the limit for the plaintext side, to empty for
 * the TLS side), so a slow reader never makes the agent buffer without
 * bound. A FIN or close_notify from one side becomes a FIN (or
 * close_notify) toward the other, and the connection ends when both
 * directions have.
 *
 * Lifetime: a proxy owns three handles (the TLS connection, the plaintext
 * TCP handle, one timer); it is freed when the last of them has closed.
 */
#include "lanyard/cause.h"
#include "lanyard/err.h"
#include "lanyard/intercept.h"
#include "lanyard/log.h"
#include "lanyard/peer.h"
#include "lanyard/stats.h"
#include "lanyard/tls.h"
#include "lanyard/tls_conn.h"
#include "net/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ly_proxy_s {
  ly_worker_t *w;
  ly_worker_listener_t *wl;
  const ly_listener_t *l;
  ly_tls_pair_t *pair; /* the contexts this connection started with */
  struct sockaddr_storage target; /* where the other side connects */
  ly_session_slot_t *slot;        /* client side: the session cache entry */
  WOLFSSL_SESSION *offered;       /* the slot's session when it was offered */
  char *offered_peer;             /* and the server it was made with */
  int64_t offered_not_after;
  ly_proxy_t *prev, *next;
  ly_tls_conn_t *tls;
  uv_tcp_t plain;
  uv_connect_t connect_req;
  uv_shutdown_t plain_shutdown;
  uv_timer_t timer;
  ly_peer_check_t pc;
  uint64_t started_ns;   /* when the handshake began (uv_hrtime) */
  uint64_t handshake_ns; /* how long it took, once it finished */
  int handles;           /* open handles; freed at 0 */
  size_t plain_queue;    /* bytes written toward the plaintext side */
  unsigned inbound : 1, plain_open : 1, established : 1, closing : 1,
      tls_ended : 1, plain_ended : 1, plain_paused : 1, plain_fin_sent : 1,
      plain_fin_done : 1, resumed : 1, session_decided : 1, plaintext : 1,
      agent_peer : 1, counted : 1, got_ticket : 1, awaiting_verdict : 1,
      sniffing : 1;
  char peer[64]; /* where the accepted connection came from */
};

typedef struct {
  uv_write_t req;
  ly_proxy_t *p;
  char *buf;
  size_t len;
} plain_write_t;

static void proxy_close(ly_proxy_t *p, int abort);

static ly_dir_t dir_of(const ly_proxy_t *p) {
  return p->inbound ? LY_DIR_INBOUND : LY_DIR_OUTBOUND;
}

/* The end of the connection's mTLS attempt, counted once. An inbound
 * client that never sent a byte made no attempt when it just closed (a
 * TCP probe), nor in permissive mode, where it may be a plaintext client
 * waiting for its server to speak first. */
static void count_attempt(ly_proxy_t *p, ly_reason_t reason) {
  if (p->counted)
    return;
  p->counted = 1;
  const ly_tls_conn_t *t = p->tls;
  if (p->inbound && t && t->started && !t->saw_first_byte &&
      (t->allow_plaintext || t->eof))
    return;
  uint64_t ns = p->handshake_ns ? p->handshake_ns
                : p->started_ns ? uv_hrtime() - p->started_ns
                                : 0;
  ly_stats_attempt(&p->w->stats, dir_of(p), reason, ns, p->resumed,
                   p->pc.peer_id);
}

/* Client side, after a full handshake: the server has accepted our
 * certificate once it sends a session ticket or application data (a TLS
 * 1.3 server sends either only after checking the client's Finished), or
 * closes without objecting. Its refusal is a fatal alert (tls_end). */
static void server_accepted(ly_proxy_t *p) {
  if (!p->awaiting_verdict)
    return;
  p->awaiting_verdict = 0;
  count_attempt(p, LY_REASON_NONE);
}

static void release(ly_proxy_t *p) {
  if (--p->handles > 0)
    return;
  ly_worker_t *w = p->w;
  if (p->prev)
    p->prev->next = p->next;
  else
    w->proxies = p->next;
  if (p->next)
    p->next->prev = p->prev;
  atomic_fetch_sub(&w->dp->active, 1);
  ly_stat_add(&w->stats.dir[dir_of(p)].closed, 1);
  ly_tls_pair_unref(p->pair);
  free(p->offered_peer);
  free(p);
  ly_worker_proxy_gone(w);
}

static void handle_closed(uv_handle_t *h) {
  release(h->data);
}

/* Where the connection goes: the destination outbound, the local app
 * inbound; NULL while unknown (a capture without its original
 * destination). */
static const char *target_name(const ly_proxy_t *p, char *buf, size_t len) {
  if (p->target.ss_family == AF_UNSPEC)
    return NULL;
  return ly_addr_format((const struct sockaddr *)&p->target, buf, len);
}

/* Every refusal is counted; its log line is rate-limited (all workers
 * share one budget), and the next line that gets through says how many
 * were left out. The line names the remote party (peer=: the client
 * inbound, the server outbound), where the connection was going (dest=
 * outbound, app= inbound: the local port it was for), the reason, its
 * cause in words, and wolfSSL's code when TLS failed. */
static void refuse(ly_proxy_t *p, ly_reason_t reason, const char *cause) {
  count_attempt(p, reason);
  uint64_t suppressed = 0;
  if (!ly_log_limit(&p->w->dp->refusal_log, uv_now(&p->w->loop), &suppressed)) {
    proxy_close(p, 1);
    return;
  }
  char n[24], code[16], target[80];
  const ly_tls_conn_t *t = p->tls;
  int tls_error = t && t->ssl_error ? t->ssl_error : p->pc.tls_error;
  const char *where = target_name(p, target, sizeof(target));
  ly_log(
      LY_WARN, "mtls_refused", "listener", p->l->name, "direction",
      ly_dir_name(dir_of(p)), "peer", p->inbound ? p->peer : where, "peer_id",
      p->pc.peer_id[0] ? p->pc.peer_id : NULL, p->inbound ? "app" : "dest",
      where, "reason", ly_reason_name(reason), "cause", cause, "tls_error",
      tls_error ? ly_fmt(code, sizeof(code), "%d", tls_error) : NULL,
      "suppressed",
      suppressed ? ly_fmt(n, sizeof(n), "%llu", (unsigned long long)suppressed)
                 : NULL,
      NULL);
  proxy_close(p, 1);
}

/* Client side: keep the newest session with the target for resumption.
 * Its ticket arrives after the handshake, with the first data. */
static int on_new_ticket(WOLFSSL *ssl, const unsigned char *ticket, int len,
                         void *data) {
  ly_proxy_t *p = data;
  p->got_ticket = 1;
  server_accepted(p);
  return 0;
}

/* Decided once, at the first data (a ticket arrives before any) or at
 * the close: saved only when this connection brought a ticket. A
 * resumption with a young ticket brings none (tickets.c), and a session
 * whose ticket the server turned down (a full handshake without a new
 * one) would pair the old ticket with new secrets; that slot is emptied
 * instead. */
static void save_session(ly_proxy_t *p) {
  if (!p->slot || !p->tls || !p->established || p->session_decided)
    return;
  p->session_decided = 1;
  if (!p->got_ticket && p->resumed)
    return;
  /* The slot may have been taken over by another destination since. */
  ly_session_slot_t *slot = ly_worker_session(p->w, p->l, &p->target);
  if (!p->got_ticket) {
    if (p->offered && slot->session == p->offered) {
      wolfSSL_SESSION_free(slot->session);
      slot->session = NULL;
    }
    return;
  }
  WOLFSSL_SESSION *s = wolfSSL_get1_session(p->tls->ssl);
  if (!s)
    return;
  if (slot->session)
    wolfSSL_SESSION_free(slot->session);
  free(slot->peer);
  slot->session = s;
  slot->peer = strdup(p->pc.peer_id);
  slot->peer_not_after = p->pc.peer_not_after;
}

/* Client side: may this connection offer the cached session? Only if the
 * server it proved to be still satisfies this connection's policy and
 * its certificate is still valid; otherwise a full handshake checks the
 * server afresh (and refuses it with a reason). */
static void offer_session(ly_proxy_t *p) {
  p->slot = ly_worker_session(p->w, p->l, &p->target);
  ly_session_slot_t *slot = p->slot;
  p->offered = slot->session;
  if (!slot->session || !slot->peer || !ly_peer_admits(&p->pc, slot->peer) ||
      slot->peer_not_after <= (int64_t)time(NULL))
    return;
  /* a copy: the slot may go to another destination before the handshake */
  p->offered_peer = strdup(slot->peer);
  if (p->offered_peer && wolfSSL_set_session(p->tls->ssl, slot->session))
    p->offered_not_after = slot->peer_not_after;
}

static void arm(ly_proxy_t *p, uint64_t ms);

/* Permissive mode: the sniff window is over. A client still silent is
 * taken for plaintext (its server speaks first); one that started a TLS
 * handshake gets the rest of the handshake timeout. */
static void sniff_over(ly_proxy_t *p) {
  const ly_dataplane_limits_t *lim = &p->w->dp->limits;
  if (ly_tls_conn_assume_plaintext(p->tls) != 0)
    arm(p, lim->handshake_timeout_ms - lim->sniff_timeout_ms);
}

static void on_timeout(uv_timer_t *t) {
  ly_proxy_t *p = t->data;
  if (p->sniffing) {
    p->sniffing = 0;
    sniff_over(p);
  } else if (p->established) { /* idle */
    char target[80];
    const char *where = target_name(p, target, sizeof(target));
    ly_log(LY_INFO, "connection_idle_timeout", "listener", p->l->name, "peer",
           p->inbound ? p->peer : where, p->inbound ? "app" : "dest", where,
           NULL);
    proxy_close(p, 1);
  } else if (p->tls && p->tls->handshake_done == 1) { /* inbound, local */
    refuse(p, LY_REASON_CONNECT_FAILED,
           "the local app did not accept the connection in time");
  } else if (p->tls && p->tls->started) {
    refuse(p, LY_REASON_HANDSHAKE_TIMEOUT,
           "the TLS handshake did not finish in time (a stuck peer, or a "
           "plaintext client waiting for the server to speak)");
  } else {
    refuse(p, LY_REASON_CONNECT_FAILED,
           "the destination did not accept the connection in time");
  }
}

static void arm(ly_proxy_t *p, uint64_t ms) {
  p->sniffing = 0;
  uv_timer_start(&p->timer, on_timeout, ms, 0);
}

/* Activity: push the idle deadline back (cheap: a heap update only when
 * the timer is re-armed, which uv_timer_again does in place). */
static void touch(ly_proxy_t *p) {
  if (p->established)
    uv_timer_again(&p->timer);
}

/* Both directions have ended: close, gracefully. */
static void maybe_done(ly_proxy_t *p) {
  if (p->tls_ended && p->plain_ended && p->plain_fin_done)
    proxy_close(p, 0);
}

/* ---- plaintext side ------------------------------------------------- */

static void plain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ly_proxy_t *p = h->data;
  /* One shared buffer per worker: wolfSSL_write copies it right away. */
  *buf = uv_buf_init(p->w->read_buf, sizeof(p->w->read_buf));
}

static void plain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ly_proxy_t *p = s->data;
  if (n == 0 || p->closing)
    return;
  if (n < 0) {
    uv_read_stop(s);
    if (n != UV_EOF) {
      proxy_close(p, 1);
      return;
    }
    p->plain_ended = 1;
    ly_tls_conn_shutdown(p->tls); /* close_notify + FIN toward the peer */
    maybe_done(p);
    return;
  }
  touch(p);
  ly_stat_add(&p->w->stats.dir[dir_of(p)].bytes_tx, (uint64_t)n);
  if (ly_tls_conn_write(p->tls, buf->base, (size_t)n) != 0) {
    proxy_close(p, 1);
    return;
  }
  if (p->tls->write_queue_bytes > p->w->dp->limits.buffer_limit) {
    uv_read_stop(s);
    p->plain_paused = 1;
  }
}

static void plain_start(ly_proxy_t *p) {
  p->plain_paused = 0;
  uv_read_start((uv_stream_t *)&p->plain, plain_alloc, plain_read);
}

static void plain_written(uv_write_t *req, int status) {
  plain_write_t *pw = (plain_write_t *)req;
  ly_proxy_t *p = pw->p;
  p->plain_queue -= pw->len;
  ly_tls_conn_data_free(pw->buf, pw->len);
  free(pw);
  if (status != 0 || p->closing) {
    if (status != 0 && status != UV_ECANCELED)
      proxy_close(p, 1);
    return;
  }
  if (p->tls->paused && p->plain_queue <= p->w->dp->limits.buffer_limit / 2)
    ly_tls_conn_resume(p->tls);
}

static void plain_fin_sent(uv_shutdown_t *req, int status) {
  ly_proxy_t *p = req->data;
  if (status == UV_ECANCELED)
    return;
  p->plain_fin_done = 1;
  maybe_done(p);
}

/* ---- TLS side --------------------------------------------------------- */

static void tls_data(ly_tls_conn_t *c, char *buf, size_t len) {
  ly_proxy_t *p = c->data;
  plain_write_t *pw = malloc(sizeof(*pw));
  if (!pw || p->closing) {
    free(buf);
    free(pw);
    if (!p->closing)
      proxy_close(p, 1);
    return;
  }
  touch(p);
  ly_stat_add(&p->w->stats.dir[dir_of(p)].bytes_rx, len);
  server_accepted(p);
  if (!p->session_decided)
    save_session(p);
  pw->p = p;
  pw->buf = buf; /* written as it is: no copy */
  pw->len = len;
  uv_buf_t b = uv_buf_init(buf, (unsigned)len);
  if (uv_write(&pw->req, (uv_stream_t *)&p->plain, &b, 1, plain_written) != 0) {
    free(buf);
    free(pw);
    proxy_close(p, 1);
    return;
  }
  p->plain_queue += len;
  if (p->plain_queue > p->w->dp->limits.buffer_limit)
    ly_tls_conn_pause(c);
}

static void tls_end(ly_tls_conn_t *c, int status) {
  ly_proxy_t *p = c->data;
  if (p->awaiting_verdict && c->peer_alert) {
    ly_cause_t why = ly_cause_of_alert(c->peer_alert, NULL);
    p->awaiting_verdict = 0;
    refuse(p, why.reason, why.cause);
    return;
  }
  if (status != 0 && status != UV_EOF) {
    proxy_close(p, 1);
    return;
  }
  p->tls_ended = 1;
  if (!p->plain_fin_sent) {
    p->plain_fin_sent = 1;
    p->plain_shutdown.data = p;
    if (uv_shutdown(&p->plain_shutdown, (uv_stream_t *)&p->plain,
                    plain_fin_sent) != 0) {
      proxy_close(p, 1);
      return;
    }
  }
  maybe_done(p);
}

static void tls_drain(ly_tls_conn_t *c) {
  ly_proxy_t *p = c->data;
  if (p->plain_paused && !p->plain_ended && !p->closing)
    plain_start(p);
}

static void established(ly_proxy_t *p) {
  p->established = 1;
  ly_dir_stats_t *ds = &p->w->stats.dir[dir_of(p)];
  ly_stat_add(p->plaintext ? &ds->conns_plain : &ds->conns_tls, 1);
  arm(p, p->w->dp->limits.idle_timeout_ms);
  uv_timer_set_repeat(&p->timer, p->w->dp->limits.idle_timeout_ms);
  char target[80];
  const char *where = target_name(p, target, sizeof(target));
  ly_log(LY_DEBUG, p->plaintext ? "plaintext_established" : "mtls_established",
         "listener", p->l->name, "direction",
         p->inbound ? "inbound" : "outbound", "peer",
         p->inbound ? p->peer : where, "peer_id", p->pc.peer_id,
         p->inbound ? "app" : "dest", where, "resumed",
         p->resumed ? "true" : "false", "agent",
         p->agent_peer ? "true" : "false", NULL);
  plain_start(p);
  ly_tls_conn_resume(p->tls);
}

/* The proxy of a finished connect, or NULL when it is gone or failed
 * (then refused with connect_failed). */
static ly_proxy_t *connected(uv_connect_t *req, int status) {
  ly_proxy_t *p = req->data;
  if (p->closing)
    return NULL;
  if (status != 0) {
    char cause[120];
    refuse(p, LY_REASON_CONNECT_FAILED,
           ly_fmt(cause, sizeof(cause), "%s did not accept the connection: %s",
                  p->inbound ? "the local app" : "the destination",
                  uv_strerror(status)));
    return NULL;
  }
  return p;
}

static void plain_connected(uv_connect_t *req, int status) {
  ly_proxy_t *p = connected(req, status);
  if (p)
    established(p);
}

static void tls_handshake(ly_tls_conn_t *c, int status) {
  ly_proxy_t *p = c->data;
  if (status != 0) {
    if (p->inbound && !c->saw_first_byte && c->eof) {
      /* Closed (or reset) before a byte: a TCP probe (a readiness check,
       * a port scan), no mTLS attempt and no refusal worth a warning. */
      p->counted = 1;
      ly_log(LY_DEBUG, "tcp_probe", "listener", p->l->name, "peer", p->peer,
             NULL);
      proxy_close(p, 1);
      return;
    }
    ly_cause_t why = ly_tls_conn_cause(c);
    refuse(p, why.reason, why.cause);
    return;
  }
  p->plaintext = c->raw;
  p->agent_peer = !c->raw && ly_tls_alpn_is(c->ssl, LY_ALPN_MESH);
  p->resumed = !c->raw && wolfSSL_session_reused(c->ssl) == 1;
  /* A resumed client session proved the server's identity when it was
   * first made (offer_session checked it against this connection's
   * policy); the server side learns the peer from its ticket and checks
   * it there (tickets.c). Checked once more here: a resumption nobody
   * vouches for is refused. */
  if (p->resumed && !p->inbound) {
    const char *id = p->offered_peer;
    if (!id || !ly_peer_admits(&p->pc, id)) {
      refuse(p, LY_REASON_BAD_IDENTITY,
             "the resumed session's server is not the expected identity");
      return;
    }
    snprintf(p->pc.peer_id, sizeof(p->pc.peer_id), "%s", id);
    p->pc.peer_not_after = p->offered_not_after;
  }
  p->handshake_ns = uv_hrtime() - p->started_ns;
  if (c->raw)
    p->counted = 1; /* plaintext let in by permissive mode */
  else if (!p->inbound && !p->resumed)
    p->awaiting_verdict = 1; /* the server has yet to judge us */
  else
    count_attempt(p, LY_REASON_NONE); /* a resumption was judged already */
  if (!p->inbound) {
    established(p);
    return;
  }
  /* Authorized: only now reach for the local service. */
  ly_tls_conn_pause(c);
  p->connect_req.data = p;
  arm(p, p->w->dp->limits.connect_timeout_ms);
  if (uv_tcp_connect(&p->connect_req, &p->plain,
                     (const struct sockaddr *)&p->target, plain_connected) != 0)
    refuse(p, LY_REASON_CONNECT_FAILED, "cannot start the connection");
}

static void tls_closed(ly_tls_conn_t *c) {
  ly_proxy_t *p = c->data;
  p->tls = NULL;
  release(p);
}

static const ly_tls_conn_cbs_t tls_cbs = {
    .on_handshake = tls_handshake,
    .on_data = tls_data,
    .on_end = tls_end,
    .on_drain = tls_drain,
    .on_close = tls_closed,
};

static void tls_connected(uv_connect_t *req, int status) {
  ly_proxy_t *p = connected(req, status);
  if (!p)
    return;
  arm(p, p->w->dp->limits.handshake_timeout_ms);
  p->started_ns = uv_hrtime();
  if (ly_tls_conn_start(p->tls) != 0)
    refuse(p, LY_REASON_PROTOCOL, "cannot start the handshake");
}

/* ---- lifecycle ------------------------------------------------------- */

static void proxy_close(ly_proxy_t *p, int abort) {
  if (p->closing)
    return;
  server_accepted(p); /* it ended with no refusal */
  p->closing = 1;
  save_session(p);
  uv_close((uv_handle_t *)&p->timer, handle_closed);
  if (p->plain_open)
    uv_close((uv_handle_t *)&p->plain, handle_closed);
  if (p->tls) {
    if (abort)
      ly_tls_conn_abort(p->tls);
    else
      ly_tls_conn_close(p->tls);
  }
}

/* Captured inbound: the allow rule for the original port. With no rules,
 * any SVID of the trust domain; otherwise the first rule whose ports
 * include the port (or that lists none) decides, and a port no rule
 * covers admits nobody. */
static void inbound_policy(ly_proxy_t *p, uint16_t port) {
  static const char *const nobody[] = {NULL};
  const ly_agent_config_t *cfg = p->w->dp->cfg;
  if (cfg->inbound.nallow == 0)
    return;
  p->pc.allow = nobody;
  p->pc.nallow = 0;
  for (size_t i = 0; i < cfg->inbound.nallow; i++) {
    const ly_inbound_rule_t *r = &cfg->inbound.allow[i];
    int covers = r->nports == 0;
    for (size_t j = 0; j < r->nports && !covers; j++)
      covers = r->ports[j] == port;
    if (covers) {
      p->pc.allow = (const char *const *)r->from;
      p->pc.nallow = r->nfrom;
      return;
    }
  }
}

static uint16_t port_of(const struct sockaddr_storage *a) {
  return ntohs(a->ss_family == AF_INET6
                   ? ((const struct sockaddr_in6 *)a)->sin6_port
                   : ((const struct sockaddr_in *)a)->sin_port);
}

/* Is the original destination meshed (in outbound.meshed)? */
static int meshed(const ly_agent_config_t *cfg,
                  const struct sockaddr_storage *a) {
  const uint8_t *ip =
      a->ss_family == AF_INET6
          ? ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr
          : (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
  uint16_t port = port_of(a);
  for (size_t i = 0; i < cfg->outbound.nmeshed; i++) {
    const ly_cidr_t *c = &cfg->outbound.meshed[i];
    if (c->family != a->ss_family)
      continue;
    unsigned bits = c->prefix_len, full = bits / 8, rest = bits % 8;
    if (memcmp(c->addr, ip, full) != 0)
      continue;
    if (rest && ((c->addr[full] ^ ip[full]) & (0xff << (8 - rest))))
      continue;
    int port_ok = c->nports == 0;
    for (size_t j = 0; j < c->nports && !port_ok; j++)
      port_ok = c->ports[j] == port;
    if (port_ok)
      return 1;
  }
  return 0;
}

/* The destination of a captured connection, and whether it may be taken:
 * a connection that reached the capture port without being redirected
 * would make the agent connect to itself. */
static int original_destination(ly_proxy_t *p, uv_tcp_t *accepted) {
  uv_os_fd_t fd;
  char addr[80];
  if (uv_fileno((uv_handle_t *)accepted, &fd) != 0 ||
      ly_original_dst(fd, &p->target) != 0) {
    refuse(p, LY_REASON_PROTOCOL, "no original destination (not redirected)");
    return -1;
  }
  if (port_of(&p->target) == p->l->listen.port &&
      ly_addr_is_local((struct sockaddr *)&p->target)) {
    refuse(p, LY_REASON_PROTOCOL,
           ly_addr_format((struct sockaddr *)&p->target, addr, sizeof(addr)));
    return -1;
  }
  return 0;
}

/* Captured inbound traffic goes to the same port on localhost. */
static void to_localhost(struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)a)->sin6_addr = in6addr_loopback;
  } else {
    ((struct sockaddr_in *)a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
}

/* The accepted socket becomes one of the proxy's TCP handles. */
static int adopt(uv_tcp_t *h, int fd) {
  if (uv_tcp_open(h, fd) != 0) {
    close(fd);
    return -1;
  }
  return 0;
}

void ly_proxy_accept(ly_worker_listener_t *wl, int fd) {
  ly_worker_t *w = wl->worker;
  const ly_listener_t *l = wl->listener;
  const ly_agent_config_t *cfg = w->dp->cfg;
  int inbound = l->kind == LY_LISTEN_SERVER || l->kind == LY_LISTEN_INBOUND;
  ly_proxy_t *p = calloc(1, sizeof(*p));
  if (!p) {
    close(fd);
    return;
  }
  p->w = w;
  p->wl = wl;
  p->l = l;
  p->inbound = inbound;
  p->target = l->target;
  p->pc.trust_domain = cfg->trust_domain;
  p->pc.allow = l->kind == LY_LISTEN_SERVER ? l->allow : NULL;
  p->pc.nallow = l->nallow;
  p->pc.expect = l->kind == LY_LISTEN_CLIENT ? l->expect : NULL;
  uv_timer_init(&w->loop, &p->timer);
  uv_tcp_init(&w->loop, &p->plain);
  p->timer.data = p->plain.data = p;
  p->plain_open = 1;
  p->handles = 2;
  p->next = w->proxies;
  if (w->proxies)
    w->proxies->prev = p;
  w->proxies = p;
  atomic_fetch_add(&w->dp->active, 1);
  ly_stat_add(&w->stats.dir[dir_of(p)].opened, 1);
  if (w->pair) {
    p->pair = w->pair;
    ly_tls_pair_ref(p->pair);
    p->pc.roots = &p->pair->roots;
  }

  /* Inbound, the accepted socket is the TLS side; outbound, the plain
   * side. A TLS connection needs a context, except an unmeshed
   * passthrough, which is a raw one. */
  WOLFSSL_CTX *ctx =
      p->pair ? (inbound ? p->pair->server : p->pair->client) : NULL;
  if (inbound) {
    if (!ctx || ly_tls_conn_new(&w->loop, ctx, 1, &tls_cbs, p, &p->tls)) {
      if (adopt(&p->plain, fd) == 0)
        ly_tcp_peer_name(&p->plain, p->peer, sizeof(p->peer));
      refuse(p, LY_REASON_NO_IDENTITY,
             "this agent holds no valid SVID yet (see svid_request_failed "
             "in its log)");
      return;
    }
    p->handles++;
    ly_peer_check_attach(p->tls, &p->pc);
    ly_tls_offer_alpn(p->tls->ssl, LY_ALPN_MESH);
    if (adopt(&p->tls->tcp, fd) != 0) {
      proxy_close(p, 1);
      return;
    }
    ly_tcp_peer_name(&p->tls->tcp, p->peer, sizeof(p->peer));
    if (l->kind == LY_LISTEN_INBOUND) {
      if (original_destination(p, &p->tls->tcp) != 0)
        return;
      inbound_policy(p, port_of(&p->target));
      to_localhost(&p->target);
      p->tls->allow_plaintext = cfg->mode == LY_MODE_PERMISSIVE;
    }
  } else {
    if (adopt(&p->plain, fd) != 0) {
      proxy_close(p, 1);
      return;
    }
    ly_tcp_peer_name(&p->plain, p->peer, sizeof(p->peer));
    int passthrough = 0;
    if (l->kind == LY_LISTEN_OUTBOUND) {
      if (original_destination(p, &p->plain) != 0)
        return;
      if (!meshed(cfg, &p->target)) {
        if (cfg->outbound.deny_unmeshed) {
          refuse(p, LY_REASON_NOT_AUTHORIZED,
                 "destination is not meshed and outbound.unmeshed is deny");
          return;
        }
        passthrough = 1;
        p->counted = 1; /* not an mTLS attempt */
      }
    }
    if (!passthrough && !ctx) {
      refuse(p, LY_REASON_NO_IDENTITY,
             "this agent holds no valid SVID yet (see svid_request_failed "
             "in its log)");
      return;
    }
    if (ly_tls_conn_new(&w->loop, passthrough ? NULL : ctx, 0, &tls_cbs, p,
                        &p->tls) != 0) {
      proxy_close(p, 1);
      return;
    }
    p->handles++;
    if (!passthrough) {
      ly_peer_check_attach(p->tls, &p->pc);
      /* Agent to agent: say so. Explicit client listeners may talk to
       * any TLS server (nginx refuses unknown ALPN protocols). */
      if (l->kind == LY_LISTEN_OUTBOUND)
        ly_tls_offer_alpn(p->tls->ssl, LY_ALPN_MESH);
      offer_session(p);
      /* after set_session, which may copy the cached ticket in */
      wolfSSL_set_SessionTicket_cb(p->tls->ssl, on_new_ticket, p);
    }
  }
  if (inbound) {
    /* Permissive: a client silent for sniff_timeout is plaintext. The
     * sniff is shorter than the handshake timeout (config checks). */
    int sniff =
        p->tls->allow_plaintext &&
        w->dp->limits.sniff_timeout_ms < w->dp->limits.handshake_timeout_ms;
    arm(p, sniff ? w->dp->limits.sniff_timeout_ms
                 : w->dp->limits.handshake_timeout_ms);
    p->sniffing = sniff;
    p->started_ns = uv_hrtime();
    if (ly_tls_conn_start(p->tls) != 0)
      refuse(p, LY_REASON_PROTOCOL, "cannot start the handshake");
    return;
  }
  /* outbound: hold the app's bytes until the mTLS session is up */
  uv_tcp_nodelay(&p->plain, 1);
  p->connect_req.data = p;
  arm(p, w->dp->limits.connect_timeout_ms);
  if (uv_tcp_connect(&p->connect_req, &p->tls->tcp,
                     (const struct sockaddr *)&p->target, tls_connected) != 0)
    refuse(p, LY_REASON_CONNECT_FAILED, "cannot start the connection");
}

void ly_proxy_close_all(ly_worker_t *w) {
  for (ly_proxy_t *p = w->proxies; p; p = p->next)
    proxy_close(p, 1);
}
