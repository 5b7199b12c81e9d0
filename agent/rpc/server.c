/* RPC server: accepts TLS connections, reads frames, dispatches them to a
 * protobuf-c service by method name, writes the responses.
 *
 * A connection has a handshake deadline and an idle deadline, and the
 * server a connection limit, so a slow or silent peer costs one timer and
 * one small buffer at most, and can never stall other callers: everything
 * runs on one event loop and no handler blocks.
 */
#include "lanyard/acceptor.h"
#include "lanyard/cause.h"
#include "lanyard/err.h"
#include "lanyard/log.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"
#include "lanyard/x509.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_MS 120000
#define MAX_CONNECTIONS 4096
/* A closing connection may take this long to get its last bytes out to a
 * peer that does not read; then it is dropped. */
#define LINGER_MS 5000
/* Responses queued toward a peer beyond this stop us reading (and so
 * answering) its requests until it reads: pipelining cannot make the CA
 * hold more. */
#define WRITE_LIMIT (256 * 1024)
/* A summary of the lines the limiter left out, this long after the first
 * of them. */
#define SUMMARY_MS 1000
/* Calls that end in a protocol error (unknown method, bad body) before a
 * connection is dropped: nobody well-behaved makes more than a few. */
#define MAX_BAD_CALLS 16

typedef struct server_conn_s server_conn_t;

struct ly_rpc_server_s {
  ly_acceptor_t listener;
  WOLFSSL_CTX *ctx;
  ProtobufCService *service;
  server_conn_t *conns; /* doubly linked, until each socket is gone */
  size_t nconns;
  /* Lines about single connections (failed handshakes, timeouts, bad
   * frames): a flood of bad connections must not flood the log. */
  ly_log_limiter_t log_limit;
  uv_timer_t summary; /* says how many lines were left out */
  int stopping, listener_gone, summary_gone; /* freed when stopped and all
                                                are gone */
};

struct server_conn_s {
  ly_rpc_server_t *server;
  ly_tls_conn_t *tls;
  uv_timer_t timer;
  ly_rpc_reader_t reader;
  ly_chain_t peer_chain; /* the client's certificates, if it sent any */
  unsigned bad_calls;
  char peer[64];
  server_conn_t *prev, *next;
};

struct ly_rpc_call_s {
  server_conn_t *conn;
  uint32_t call_id;
  const char *method;
  int code;
  char message[512];
  int done;
};

void ly_rpc_call_fail(ly_rpc_call_t *call, int code, const char *fmt, ...) {
  va_list ap;
  call->code = code;
  va_start(ap, fmt);
  vsnprintf(call->message, sizeof(call->message), fmt, ap);
  va_end(ap);
}

WOLFSSL *ly_rpc_call_ssl(ly_rpc_call_t *call) {
  return call->conn->tls->ssl;
}

const ly_chain_t *ly_rpc_call_peer_chain(ly_rpc_call_t *call) {
  return &call->conn->peer_chain;
}

const char *ly_rpc_call_peer(ly_rpc_call_t *call) {
  return call->conn->peer;
}

static void timer_closed(uv_handle_t *h) {
  server_conn_t *sc = h->data;
  ly_rpc_reader_free(&sc->reader);
  ly_chain_free(&sc->peer_chain);
  free(sc);
}

static void log_summary(ly_rpc_server_t *s) {
  ly_log_suppressed(&s->log_limit, "rpc_log_suppressed",
                    "lines about failed or refused connections");
}

static void on_summary(uv_timer_t *t) {
  log_summary(t->data);
}

/* May a line about one connection be written? The agent's refusal-log
 * limiter (20 at once, then 10 a second); the line carries in
 * *suppressed how many were left out before it, and a summary line
 * SUMMARY_MS after a line is left out counts those nobody else reported. */
static int may_log(ly_rpc_server_t *s, char *buf, size_t len,
                   const char **suppressed) {
  uint64_t n = 0;
  *suppressed = NULL;
  if (!ly_log_limit(&s->log_limit, uv_now(s->listener.poll.loop), &n)) {
    if (!s->stopping && !uv_is_active((uv_handle_t *)&s->summary))
      uv_timer_start(&s->summary, on_summary, SUMMARY_MS, 0);
    return 0;
  }
  if (n > 0)
    *suppressed = ly_fmt(buf, len, "%llu", (unsigned long long)n);
  return 1;
}

static void on_linger(uv_timer_t *t) {
  server_conn_t *sc = t->data;
  ly_tls_conn_abort(sc->tls);
}

static void conn_close(server_conn_t *sc) {
  if (sc->tls->closing)
    return;
  /* The timer outlives the TLS connection: it bounds the graceful close,
   * and is closed (freeing sc) once the connection is gone. */
  uv_timer_start(&sc->timer, on_linger, LINGER_MS, 0);
  ly_tls_conn_close(sc->tls);
}

static void on_timeout(uv_timer_t *t) {
  server_conn_t *sc = t->data;
  char n[24];
  const char *suppressed;
  if (may_log(sc->server, n, sizeof(n), &suppressed))
    ly_log(LY_INFO, "rpc_conn_timeout", "peer", sc->peer, "phase",
           sc->tls->handshake_done == 1 ? "idle" : "handshake", "suppressed",
           suppressed, NULL);
  conn_close(sc);
}

static void send_frame(server_conn_t *sc, uint32_t id, const char *method,
                       int code, const char *message,
                       const ProtobufCMessage *body) {
  uint8_t *buf;
  size_t len;
  int rc = ly_rpc_frame_pack(id, method, code, message, body, &buf, &len);
  if (rc == LY_ETOO_BIG && body) {
    /* the response itself is too big: say so instead */
    send_frame(sc, id, method, LY_RPC_RESOURCE_EXHAUSTED,
               "response exceeds the frame size limit", NULL);
    return;
  }
  if (rc != 0 || ly_tls_conn_write(sc->tls, buf, len) != 0)
    conn_close(sc);
  if (rc == 0)
    free(buf);
}

/* The service's closure: one response per call. */
static void call_done(const ProtobufCMessage *response, void *closure_data) {
  ly_rpc_call_t *call = closure_data;
  if (call->done)
    return;
  call->done = 1;
  if (response == NULL && call->code == LY_RPC_OK) {
    call->code = LY_RPC_INTERNAL;
    snprintf(call->message, sizeof(call->message), "no response");
  }
  send_frame(call->conn, call->call_id, call->method, call->code, call->message,
             call->code == LY_RPC_OK ? response : NULL);
}

static void dispatch(server_conn_t *sc, const Lanyard__Ca__V1__Frame *f) {
  ProtobufCService *svc = sc->server->service;
  const ProtobufCMethodDescriptor *m =
      protobuf_c_service_descriptor_get_method_by_name(svc->descriptor,
                                                       f->method);
  if (!m) {
    char msg[128];
    snprintf(msg, sizeof(msg), "unknown method '%.64s'", f->method);
    send_frame(sc, f->call_id, f->method, LY_RPC_UNIMPLEMENTED, msg, NULL);
    if (++sc->bad_calls > MAX_BAD_CALLS)
      conn_close(sc);
    return;
  }
  ProtobufCMessage *req =
      protobuf_c_message_unpack(m->input, NULL, f->body.len, f->body.data);
  if (!req) {
    send_frame(sc, f->call_id, f->method, LY_RPC_INVALID_ARGUMENT,
               "request body does not decode", NULL);
    if (++sc->bad_calls > MAX_BAD_CALLS)
      conn_close(sc);
    return;
  }
  ly_rpc_call_t call = {
      .conn = sc, .call_id = f->call_id, .method = m->name, .code = LY_RPC_OK};
  svc->invoke(svc, (unsigned)(m - svc->descriptor->methods), req, call_done,
              &call);
  if (!call.done) /* a method that forgot its closure still answers */
    call_done(NULL, &call);
  ly_rpc_wipe_message(req); /* join tokens, JWTs */
  protobuf_c_message_free_unpacked(req, NULL);
}

/* A connection that closed (or was reset) before it sent a byte is a
 * TCP probe (a readiness check, a port scan, a load balancer's health
 * check), not a failed handshake: a debug line only. */
static void handshake_failed(server_conn_t *sc, int status) {
  ly_tls_conn_t *c = sc->tls;
  if (!c->saw_first_byte && (c->eof || status != LY_ETLS)) {
    ly_log(LY_DEBUG, "tcp_probe", "peer", sc->peer, NULL);
    return;
  }
  char n[24], code[16];
  const char *suppressed;
  if (!may_log(sc->server, n, sizeof(n), &suppressed))
    return;
  ly_cause_t why = ly_tls_conn_cause(c);
  ly_log(LY_WARN, "rpc_handshake_failed", "peer", sc->peer, "reason",
         ly_reason_name(why.reason), "cause", why.cause, "tls_error",
         c->ssl_error ? ly_fmt(code, sizeof(code), "%d", c->ssl_error) : NULL,
         "suppressed", suppressed, NULL);
}

static void on_handshake(ly_tls_conn_t *c, int status) {
  server_conn_t *sc = c->data;
  if (status != 0) {
    handshake_failed(sc, status);
    conn_close(sc);
    return;
  }
  /* repeating, so uv_timer_again on activity pushes it back */
  uv_timer_start(&sc->timer, on_timeout, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
}

/* Answers the whole frames buffered, until the peer has too much unread
 * output; then stops reading until it drains (on_drain). */
static void process(server_conn_t *sc) {
  ly_tls_conn_t *c = sc->tls;
  int err = 0;
  while (!c->closing && c->write_queue_bytes <= WRITE_LIMIT) {
    ProtobufCMessage *m = ly_rpc_reader_next(&sc->reader, &err);
    if (!m)
      break;
    Lanyard__Ca__V1__Frame *f = (Lanyard__Ca__V1__Frame *)m;
    dispatch(sc, f);
    ly_rpc_wipe_message(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (c->closing)
    return;
  if (c->write_queue_bytes > WRITE_LIMIT)
    ly_tls_conn_pause(c);
  else
    ly_tls_conn_resume(c);
  if (err != 0) {
    const char *why =
        err == LY_ETOO_BIG ? "frame too large" : "malformed frame";
    char n[24];
    const char *suppressed;
    if (may_log(sc->server, n, sizeof(n), &suppressed))
      ly_log(LY_WARN, "rpc_bad_frame", "peer", sc->peer, "reason", why,
             "suppressed", suppressed, NULL);
    send_frame(sc, 0, "",
               err == LY_ETOO_BIG ? LY_RPC_RESOURCE_EXHAUSTED
                                  : LY_RPC_INVALID_ARGUMENT,
               why, NULL);
    conn_close(sc);
  }
}

static void on_data(ly_tls_conn_t *c, char *buf, size_t len) {
  server_conn_t *sc = c->data;
  uv_timer_again(&sc->timer);
  int err = ly_rpc_reader_feed(&sc->reader, buf, len);
  free(buf);
  if (err != 0) {
    char n[24];
    const char *suppressed;
    if (may_log(sc->server, n, sizeof(n), &suppressed))
      ly_log(LY_WARN, "rpc_bad_frame", "peer", sc->peer, "reason",
             "too much unanswered input", "suppressed", suppressed, NULL);
    conn_close(sc);
    return;
  }
  process(sc);
}

static void on_drain(ly_tls_conn_t *c) {
  process(c->data);
}

static void on_end(ly_tls_conn_t *c, int status) {
  conn_close(c->data);
}

static void server_free(ly_rpc_server_t *s) {
  ly_log_limiter_destroy(&s->log_limit);
  wolfSSL_CTX_free(s->ctx);
  free(s);
}

/* Freed once stopped and every handle is gone. */
static void maybe_free(ly_rpc_server_t *s) {
  if (s->listener_gone && s->summary_gone && !s->conns)
    server_free(s);
}

/* The socket is gone: the connection leaves the server, which may go too
 * (a connection closing gracefully can outlive ly_rpc_server_stop). */
static void on_close(ly_tls_conn_t *c) {
  server_conn_t *sc = c->data;
  ly_rpc_server_t *s = sc->server;
  if (sc->prev)
    sc->prev->next = sc->next;
  else
    s->conns = sc->next;
  if (sc->next)
    sc->next->prev = sc->prev;
  s->nconns--;
  uv_close((uv_handle_t *)&sc->timer, timer_closed);
  maybe_free(s);
}

static const ly_tls_conn_cbs_t conn_cbs = {
    .on_handshake = on_handshake,
    .on_data = on_data,
    .on_end = on_end,
    .on_drain = on_drain,
    .on_close = on_close,
};

static void on_connection(ly_acceptor_t *a, int fd) {
  ly_rpc_server_t *s = a->data;
  uv_loop_t *loop = a->poll.loop;
  if (fd < 0) {
    ly_log(LY_WARN, "rpc_accept_failed", "reason", uv_strerror(fd), NULL);
    return;
  }
  server_conn_t *sc = calloc(1, sizeof(*sc));
  if (!sc) {
    close(fd);
    return;
  }
  sc->server = s;
  if (ly_tls_conn_new(loop, s->ctx, 1, &conn_cbs, sc, &sc->tls) != 0) {
    close(fd);
    free(sc);
    return;
  }
  uv_timer_init(loop, &sc->timer);
  sc->timer.data = sc;
  sc->next = s->conns;
  if (s->conns)
    s->conns->prev = sc;
  s->conns = sc;
  s->nconns++;
  if (uv_tcp_open(&sc->tls->tcp, fd) != 0) {
    close(fd);
    conn_close(sc);
    return;
  }
  ly_tcp_peer_name(&sc->tls->tcp, sc->peer, sizeof(sc->peer));
  if (s->nconns > MAX_CONNECTIONS) {
    char n[24];
    const char *suppressed;
    if (may_log(s, n, sizeof(n), &suppressed))
      ly_log(LY_WARN, "rpc_conn_refused", "peer", sc->peer, "reason",
             "connection limit", "suppressed", suppressed, NULL);
    conn_close(sc);
    return;
  }
  /* the verify callback records the client's chain here (renewals) */
  wolfSSL_SetCertCbCtx(sc->tls->ssl, &sc->peer_chain);
  if (ly_tls_set_alpn(sc->tls->ssl, LY_ALPN_CA) != 0 ||
      ly_tls_conn_start(sc->tls) != 0) {
    conn_close(sc);
    return;
  }
  uv_timer_start(&sc->timer, on_timeout, HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
}

int ly_rpc_server_start(uv_loop_t *loop, const struct sockaddr *addr,
                        WOLFSSL_CTX *ctx, ProtobufCService *service,
                        ly_rpc_server_t **out) {
  ly_rpc_server_t *s = calloc(1, sizeof(*s));
  LY_ENSURE(s != NULL, UV_ENOMEM);
  int fd = -1, rc;
  if ((rc = ly_listen_socket(addr, 0, 511, &fd)) != 0 ||
      (rc = ly_acceptor_start(&s->listener, loop, fd, on_connection)) != 0) {
    free(s);
    return rc;
  }
  s->listener.data = s;
  s->service = service;
  ly_log_limiter_init(&s->log_limit);
  uv_timer_init(loop, &s->summary);
  s->summary.data = s;
  wolfSSL_CTX_up_ref(ctx);
  s->ctx = ctx;
  *out = s;
  return 0;
}

void ly_rpc_server_set_ctx(ly_rpc_server_t *s, WOLFSSL_CTX *ctx) {
  wolfSSL_CTX_up_ref(ctx);
  wolfSSL_CTX_free(s->ctx); /* live sessions hold their own reference */
  s->ctx = ctx;
}

static void listener_closed(ly_acceptor_t *a) {
  ly_rpc_server_t *s = a->data;
  s->listener_gone = 1;
  maybe_free(s);
}

static void summary_closed(uv_handle_t *h) {
  ly_rpc_server_t *s = h->data;
  s->summary_gone = 1;
  maybe_free(s);
}

void ly_rpc_server_stop(ly_rpc_server_t *s) {
  if (s->stopping)
    return;
  s->stopping = 1;
  for (server_conn_t *sc = s->conns; sc; sc = sc->next) {
    conn_close(sc);
    ly_tls_conn_abort(sc->tls); /* no lingering on the way out */
  }
  log_summary(s); /* what the limiter left out, before the timer goes */
  uv_close((uv_handle_t *)&s->summary, summary_closed);
  ly_acceptor_close(&s->listener, listener_closed);
}
