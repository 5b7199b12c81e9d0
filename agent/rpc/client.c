/* RPC client: one lazily made TLS connection to the CA, reused by later
 * calls, replaced when our identity changes.
 *
 * States of the connection: none -> resolving -> connecting ->
 * handshaking -> ready. Calls queue until ready; any failure on the way
 * fails every queued call with UNAVAILABLE and the reason, and the next
 * call starts over. One 250 ms timer enforces per-call deadlines.
 */
#include "lanyard/cause.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/log.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"
#include "lanyard/x509.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 250

typedef enum {
  CONN_NONE = 0,
  CONN_RESOLVING,
  CONN_CONNECTING,
  CONN_HANDSHAKING,
  CONN_READY,
} conn_state_t;

typedef struct call_s {
  struct call_s *next;
  uint32_t id;
  const ProtobufCMethodDescriptor *method;
  uint8_t *frame; /* packed request; freed once sent */
  size_t frame_len;
  uint64_t deadline; /* uv_now */
  int sent;
  ly_rpc_done_cb done;
  void *data;
  uint64_t *results; /* the client's counters for this method, by code */
} call_t;

/* Per connection, so callbacks of an abandoned connection (its resolve or
 * connect still in flight) find it detached and touch nothing else. */
typedef struct {
  ly_rpc_client_t *client; /* NULL once abandoned */
  ly_tls_conn_t *tls;
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  ly_rpc_reader_t reader;
  int has_tls;
} conn_t;

struct ly_rpc_client_s {
  uv_loop_t *loop;
  const ProtobufCServiceDescriptor *svc;
  char host[256];
  char port[8];
  char server_id[LY_SPIFFE_ID_MAX + 1];
  WOLFSSL_CTX *ctx;
  conn_t *conn;
  conn_state_t state;
  int reconnect; /* the ctx changed: replace the connection when idle */
  call_t *calls; /* in order */
  uint32_t next_id;
  uv_timer_t tick;
  int freeing;
  uint64_t *results; /* [method][code]: calls finished */
};

static void free_frame(call_t *call) {
  if (call->frame)
    ly_wipe(call->frame, call->frame_len); /* may carry a token */
  free(call->frame);
  call->frame = NULL;
}

static void finish(call_t *call, int code, const char *msg,
                   const ProtobufCMessage *resp) {
  if (code >= 0 && code < LY_RPC_NCODES)
    call->results[code]++;
  call->done(code, msg, resp, call->data);
  free_frame(call);
  free(call);
}

static void fail_all(ly_rpc_client_t *c, int code, const char *msg) {
  call_t *list = c->calls;
  c->calls = NULL;
  while (list) {
    call_t *next = list->next;
    finish(list, code, msg, NULL);
    list = next;
  }
}

static void conn_closed(ly_tls_conn_t *tls) {
  conn_t *conn = tls->data;
  ly_rpc_reader_free(&conn->reader);
  free(conn);
}

/* Detaches the current connection and closes it. */
static void drop_conn(ly_rpc_client_t *c) {
  conn_t *conn = c->conn;
  c->conn = NULL;
  c->state = CONN_NONE;
  if (!conn)
    return;
  conn->client = NULL;
  if (conn->has_tls)
    ly_tls_conn_abort(conn->tls); /* frees conn in conn_closed */
  /* else: a resolve is in flight and frees conn when it completes */
}

static void conn_failed(ly_rpc_client_t *c, const char *reason) {
  drop_conn(c);
  fail_all(c, LY_RPC_UNAVAILABLE, reason);
}

static void send_pending(ly_rpc_client_t *c) {
  for (call_t *call = c->calls; call; call = call->next) {
    if (call->sent)
      continue;
    if (ly_tls_conn_write(c->conn->tls, call->frame, call->frame_len) != 0) {
      conn_failed(c, "write to the CA failed");
      return;
    }
    call->sent = 1;
    free_frame(call);
  }
}

/* The CA (or what answers at its address) refused or broke the
 * handshake: a line that names it and says why in words (cause.h), and
 * the same words for the calls that fail. */
static void handshake_failed(ly_rpc_client_t *c, ly_tls_conn_t *tls,
                             char *reason, size_t len) {
  char dest[300], code[16];
  ly_cause_t why = ly_tls_conn_cause(tls);
  snprintf(dest, sizeof(dest), "%s:%s", c->host, c->port);
  ly_log(LY_WARN, "ca_handshake_failed", "dest", dest, "reason",
         ly_reason_name(why.reason), "cause", why.cause, "tls_error",
         tls->ssl_error ? ly_fmt(code, sizeof(code), "%d", tls->ssl_error)
                        : NULL,
         NULL);
  snprintf(reason, len, "TLS handshake with the CA at %s failed: %s", dest,
           why.cause);
}

static void on_handshake(ly_tls_conn_t *tls, int status) {
  conn_t *conn = tls->data;
  ly_rpc_client_t *c = conn->client;
  char reason[600];
  if (!c)
    return;
  if (status != 0) {
    handshake_failed(c, tls, reason, sizeof(reason));
    conn_failed(c, reason);
    return;
  }
  /* wolfSSL verified the chain against our bundle; now the identity. */
  ly_der_t leaf = {0};
  ly_cert_info_t info;
  if (ly_tls_peer_leaf(tls->ssl, &leaf) != 0 ||
      ly_cert_info(leaf.der, leaf.len, &info) != 0) {
    free(leaf.der);
    conn_failed(c, "the CA presented no readable certificate");
    return;
  }
  free(leaf.der);
  if (strcmp(info.spiffe_id, c->server_id) != 0) {
    snprintf(reason, sizeof(reason),
             "the server is not the CA: it presented '%.180s', expected "
             "'%.180s'",
             info.spiffe_id[0] ? info.spiffe_id : "(no SPIFFE ID)",
             c->server_id);
    conn_failed(c, reason);
    return;
  }
  c->state = CONN_READY;
  send_pending(c);
}

static call_t *take_call(ly_rpc_client_t *c, uint32_t id) {
  for (call_t **p = &c->calls; *p; p = &(*p)->next)
    if ((*p)->id == id) {
      call_t *call = *p;
      *p = call->next;
      return call;
    }
  return NULL;
}

static void maybe_replace_conn(ly_rpc_client_t *c) {
  if (c->reconnect && c->calls == NULL) {
    c->reconnect = 0;
    drop_conn(c);
  }
}

static void on_data(ly_tls_conn_t *tls, char *buf, size_t len) {
  conn_t *conn = tls->data;
  ly_rpc_client_t *c = conn->client;
  int err = c ? ly_rpc_reader_feed(&conn->reader, buf, len) : 0;
  free(buf);
  if (!c)
    return;
  while (err == 0 && c->conn == conn) {
    ProtobufCMessage *m = ly_rpc_reader_next(&conn->reader, &err);
    if (!m)
      break;
    const Lanyard__Ca__V1__Frame *f = (const Lanyard__Ca__V1__Frame *)m;
    call_t *call = take_call(c, f->call_id);
    if (!call && f->call_id == 0 && (int)f->code != LY_RPC_OK) {
      /* a connection-level refusal from the server */
      char reason[400];
      snprintf(reason, sizeof(reason), "the CA closed the connection: %.300s",
               f->message);
      protobuf_c_message_free_unpacked(m, NULL);
      conn_failed(c, reason);
      return;
    }
    if (call) {
      ProtobufCMessage *resp = NULL;
      if ((int)f->code == LY_RPC_OK) {
        resp = protobuf_c_message_unpack(call->method->output, NULL,
                                         f->body.len, f->body.data);
        if (!resp)
          finish(call, LY_RPC_INTERNAL, "response does not decode", NULL);
        else
          finish(call, LY_RPC_OK, "", resp);
        if (resp)
          protobuf_c_message_free_unpacked(resp, NULL);
      } else {
        finish(call, (int)f->code, f->message, NULL);
      }
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (err != 0 && c->conn == conn)
    conn_failed(c, "malformed frame from the CA");
  else if (c->conn == conn)
    maybe_replace_conn(c);
}

static void on_end(ly_tls_conn_t *tls, int status) {
  conn_t *conn = tls->data;
  if (!conn->client)
    return;
  /* TLS 1.3: the CA judges our certificate after our handshake is done,
   * and says no with an alert. */
  if (tls->peer_alert) {
    char reason[600];
    handshake_failed(conn->client, tls, reason, sizeof(reason));
    conn_failed(conn->client, reason);
    return;
  }
  conn_failed(conn->client, "the CA closed the connection");
}

static const ly_tls_conn_cbs_t conn_cbs = {
    .on_handshake = on_handshake,
    .on_data = on_data,
    .on_end = on_end,
    .on_close = conn_closed,
};

static void on_connect(uv_connect_t *req, int status) {
  conn_t *conn = req->data;
  ly_rpc_client_t *c = conn->client;
  if (!c) {
    /* abandoned while connecting: drop_conn already closed the handle */
    return;
  }
  if (status != 0) {
    char reason[300];
    snprintf(reason, sizeof(reason), "cannot connect to the CA at %s:%s: %s",
             c->host, c->port, uv_strerror(status));
    conn_failed(c, reason);
    return;
  }
  c->state = CONN_HANDSHAKING;
  if (ly_tls_set_alpn(conn->tls->ssl, LY_ALPN_CA) != 0 ||
      ly_tls_conn_start(conn->tls) != 0)
    conn_failed(c, "cannot start TLS");
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *ai) {
  conn_t *conn = req->data;
  ly_rpc_client_t *c = conn->client;
  if (!c) {
    uv_freeaddrinfo(ai);
    free(conn);
    return;
  }
  char reason[400];
  if (status != 0 || !ai) {
    snprintf(reason, sizeof(reason), "cannot resolve the CA address %s: %s",
             c->host, uv_strerror(status));
    uv_freeaddrinfo(ai);
    conn_failed(c, reason);
    return;
  }
  int rc = ly_tls_conn_new(c->loop, c->ctx, 0, &conn_cbs, conn, &conn->tls);
  if (rc == 0) {
    conn->has_tls = 1;
    c->state = CONN_CONNECTING;
    conn->connect.data = conn;
    rc = uv_tcp_connect(&conn->connect, &conn->tls->tcp, ai->ai_addr,
                        on_connect);
  }
  uv_freeaddrinfo(ai);
  if (rc != 0) {
    snprintf(reason, sizeof(reason), "cannot connect to the CA: %s",
             uv_strerror(rc));
    if (!conn->has_tls)
      free(conn), c->conn = NULL;
    conn_failed(c, reason);
  }
}

static void start_conn(ly_rpc_client_t *c) {
  conn_t *conn = calloc(1, sizeof(*conn));
  if (!conn) {
    fail_all(c, LY_RPC_UNAVAILABLE, "out of memory");
    return;
  }
  conn->client = c;
  conn->gai.data = conn;
  c->conn = conn;
  c->state = CONN_RESOLVING;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(c->loop, &conn->gai, on_resolved, c->host, c->port,
                          &hints);
  if (rc != 0) {
    c->conn = NULL;
    c->state = CONN_NONE;
    free(conn);
    fail_all(c, LY_RPC_UNAVAILABLE, uv_strerror(rc));
  }
}

static void on_tick(uv_timer_t *t) {
  ly_rpc_client_t *c = t->data;
  uint64_t now = uv_now(c->loop);
  int sent_expired = 0;
  call_t *expired = NULL;
  for (call_t **p = &c->calls; *p;) {
    call_t *call = *p;
    if (call->deadline > now) {
      p = &call->next;
      continue;
    }
    *p = call->next;
    sent_expired |= call->sent;
    call->next = expired;
    expired = call;
  }
  /* A sent call that got no answer makes the connection suspect: the
   * other calls sent on it fail too, unsent ones wait for a new one. */
  if (sent_expired) {
    drop_conn(c);
    for (call_t **p = &c->calls; *p;) {
      call_t *call = *p;
      if (!call->sent) {
        p = &call->next;
        continue;
      }
      *p = call->next;
      finish(call, LY_RPC_UNAVAILABLE, "the CA did not answer in time", NULL);
    }
  }
  while (expired) {
    call_t *next = expired->next;
    finish(expired, LY_RPC_DEADLINE_EXCEEDED, "the CA did not answer in time",
           NULL);
    expired = next;
  }
  if (c->calls && c->state == CONN_NONE && !c->freeing)
    start_conn(c);
}

int ly_rpc_client_new(uv_loop_t *loop, const ProtobufCServiceDescriptor *svc,
                      const char *host, uint16_t port, const char *server_id,
                      ly_rpc_client_t **out) {
  ly_rpc_client_t *c = calloc(1, sizeof(*c));
  LY_ENSURE(c != NULL, UV_ENOMEM);
  c->loop = loop;
  c->svc = svc;
  snprintf(c->host, sizeof(c->host), "%s", host);
  snprintf(c->port, sizeof(c->port), "%u", (unsigned)port);
  snprintf(c->server_id, sizeof(c->server_id), "%s", server_id);
  c->next_id = 1;
  c->results = calloc(svc->n_methods * LY_RPC_NCODES, sizeof(*c->results));
  if (!c->results) {
    free(c);
    return UV_ENOMEM;
  }
  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
  uv_unref((uv_handle_t *)&c->tick); /* deadlines alone keep no loop alive */
  *out = c;
  return 0;
}

void ly_rpc_client_set_ctx(ly_rpc_client_t *c, WOLFSSL_CTX *ctx) {
  wolfSSL_CTX_up_ref(ctx);
  if (c->ctx)
    wolfSSL_CTX_free(c->ctx);
  c->ctx = ctx;
  c->reconnect = c->conn != NULL;
  maybe_replace_conn(c);
}

int ly_rpc_client_call(ly_rpc_client_t *c, const char *method,
                       const ProtobufCMessage *request, uint64_t timeout_ms,
                       ly_rpc_done_cb done, void *data) {
  LY_ENSURE(c->ctx != NULL && !c->freeing, UV_EINVAL);
  const ProtobufCMethodDescriptor *m =
      protobuf_c_service_descriptor_get_method_by_name(c->svc, method);
  LY_ENSURE(m != NULL && request->descriptor == m->input, UV_EINVAL);
  call_t *call = calloc(1, sizeof(*call));
  LY_ENSURE(call != NULL, UV_ENOMEM);
  call->id = c->next_id++;
  if (c->next_id == 0) /* 0 is the server's connection-level id */
    c->next_id = 1;
  call->method = m;
  call->results = &c->results[(size_t)(m - c->svc->methods) * LY_RPC_NCODES];
  call->done = done;
  call->data = data;
  call->deadline = uv_now(c->loop) + timeout_ms;
  int rc = ly_rpc_frame_pack(call->id, m->name, 0, NULL, request, &call->frame,
                             &call->frame_len);
  if (rc != 0) {
    free(call);
    return rc;
  }
  call_t **tail = &c->calls;
  while (*tail)
    tail = &(*tail)->next;
  *tail = call;
  if (c->state == CONN_NONE)
    start_conn(c); /* may fail the call at once, through done */
  else if (c->state == CONN_READY)
    send_pending(c);
  return 0;
}

static void tick_closed(uv_handle_t *h) {
  ly_rpc_client_t *c = h->data;
  if (c->ctx)
    wolfSSL_CTX_free(c->ctx);
  free(c->results);
  free(c);
}

void ly_rpc_client_free(ly_rpc_client_t *c) {
  c->freeing = 1;
  drop_conn(c);
  fail_all(c, LY_RPC_CANCELLED, "client closed");
  uv_close((uv_handle_t *)&c->tick, tick_closed);
}

uint64_t ly_rpc_client_results(const ly_rpc_client_t *c, const char *method,
                               int code) {
  const ProtobufCMethodDescriptor *m =
      protobuf_c_service_descriptor_get_method_by_name(c->svc, method);
  if (!m || code < 0 || code >= LY_RPC_NCODES)
    return 0;
  return c->results[(size_t)(m - c->svc->methods) * LY_RPC_NCODES + code];
}
