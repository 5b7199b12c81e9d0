/* The admin HTTP server: one request per connection, on the agent's
 * control loop, next to everything else that loop does.
 *
 * So a client can cost it little and never stall it: a connection owns
 * one fixed buffer (head plus body limits, inside the connection's own
 * allocation), one timer and its TCP handle, and lives at most the
 * request deadline, the write deadline and the linger time; there are at
 * most LY_HTTP_MAX_CONNS of them; the handler runs synchronously and must
 * not block. The limits and the reasons for them are in lanyard/http.h.
 *
 * A connection goes READ_HEAD -> READ_BODY -> WRITE -> LINGER -> closed,
 * skipping ahead on errors and deadlines; memory is freed only once both
 * of its handles have closed (libuv's rule), and the server's once the
 * listener and every connection have.
 */
#include "lanyard/http.h"
#include "lanyard/acceptor.h"

#include "lanyard/log.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_CAP (LY_HTTP_HEAD_MAX + LY_HTTP_BODY_MAX)
/* An incomplete head is parsed again when a line may have ended, or after
 * this many more bytes: rescanning on every byte a slow client sends
 * would cost the loop quadratic time. */
#define RESCAN_BYTES 512
/* Connections refused for the limit are logged at most this often: a
 * flood must not turn into a flood of log lines. */
#define REFUSAL_LOG_MS 10000
#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
/* Longest Content-Type or Allow value a handler may set. */
#define FIELD_VALUE_MAX 200

typedef enum {
  CONN_READ_HEAD, /* reading until the head parses or fails */
  CONN_READ_BODY, /* reading the body, to drop it */
  CONN_WRITE,     /* the response is being written, then the write side shut */
  CONN_LINGER,    /* discarding input until the peer closes or time is up */
} conn_state_t;

typedef struct http_conn_s http_conn_t;

struct ly_http_server_s {
  ly_acceptor_t listener;
  ly_http_handler_cb handler;
  void *data;
  http_conn_t *conns; /* not yet closing, doubly linked, for stop */
  size_t nconns;      /* counted until both of their handles have closed */
  uint16_t port;
  int stopping, listener_open;
  uint64_t refused, refusal_logged_at;
  int refusal_logged;
};

struct http_conn_s {
  ly_http_server_t *server;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  conn_state_t state;
  int closing, open_handles; /* a deferred answer counts as a handle */
  int deferred;
  size_t len;       /* bytes in buf */
  size_t parsed_at; /* len when the head was last parsed; 0: never */
  size_t need;      /* CONN_READ_BODY: head plus body bytes */
  ly_http_request_t req;
  char *body;     /* the handler's, freed with the connection */
  char head[768]; /* the response head */
  char ebody[48]; /* an error response's body */
  char peer[64];
  http_conn_t *prev, *next;
  char buf[BUF_CAP];
};

static const struct {
  int status;
  const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

/* The reason phrase; clients ignore it, so an unlisted status gets a
 * generic one by class. */
static const char *reason(int status) {
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
    if (reasons[i].status == status)
      return reasons[i].reason;
  return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "OK";
}

static void server_maybe_free(ly_http_server_t *s) {
  if (s->stopping && !s->listener_open && s->nconns == 0)
    free(s);
}

static void conn_release(http_conn_t *c) {
  if (--c->open_handles > 0)
    return;
  ly_http_server_t *s = c->server;
  free(c->body);
  free(c);
  s->nconns--;
  server_maybe_free(s);
}

static void on_handle_closed(uv_handle_t *h) {
  conn_release(h->data);
}

/* Closes now; whatever is queued is dropped. Idempotent. */
static void conn_close(http_conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  ly_http_server_t *s = c->server;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_timer(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void on_shutdown(uv_shutdown_t *r, int status) {
  http_conn_t *c = r->data;
  if (c->closing)
    return;
  if (status != 0) {
    conn_close(c);
    return;
  }
  /* Lingering: closing with unread input would send a reset, and a reset
   * can destroy the response before the client reads it. */
  c->state = CONN_LINGER;
  uv_timer_start(&c->timer, on_timer, LY_HTTP_LINGER_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

static void on_write(uv_write_t *w, int status) {
  http_conn_t *c = w->data;
  if (c->closing) /* canceled by a close: nothing to do */
    return;
  c->shutdown_req.data = c;
  if (status != 0 ||
      uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c);
}

/* Writes the response with one uv_write, within the write deadline; the
 * write side is shut down after it. body stays valid until the
 * connection is freed. */
static void send_response(http_conn_t *c, int status, const char *ctype,
                          const char *allow, const char *body, size_t len) {
  char st[8];
  ly_log(LY_DEBUG, "http_response", "peer", c->peer, "method",
         c->req.method[0] ? c->req.method : NULL, "path",
         c->req.path[0] ? c->req.path : NULL, "status",
         ly_fmt(st, sizeof(st), "%d", status), NULL);
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->state = CONN_WRITE;
  uv_timer_start(&c->timer, on_timer, LY_HTTP_WRITE_TIMEOUT_MS, 0);
  int n = snprintf(c->head, sizeof(c->head),
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n"
                   "X-Content-Type-Options: nosniff\r\n"
                   "Connection: close\r\n"
                   "%s%s%s"
                   "\r\n",
                   status, reason(status), ctype, len, allow ? "Allow: " : "",
                   allow ? allow : "", allow ? "\r\n" : "");
  if (n < 0 || (size_t)n >= sizeof(c->head)) { /* cannot: values are short */
    conn_close(c);
    return;
  }
  uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                      uv_buf_init((char *)body, (unsigned)len)};
  /* HEAD: the same head, Content-Length included, and no body. */
  unsigned nbufs = len > 0 && strcmp(c->req.method, "HEAD") != 0 ? 2 : 1;
  c->write_req.data = c;
  if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write) !=
      0)
    conn_close(c);
}

/* An error response: the status and a short text body ("uri too long"). */
static void send_error(http_conn_t *c, int status) {
  const char *r = reason(status);
  size_t n = 0;
  for (; r[n] && n < sizeof(c->ebody) - 2; n++)
    c->ebody[n] =
        (r[n] >= 'A' && r[n] <= 'Z') ? (char)(r[n] - 'A' + 'a') : r[n];
  c->ebody[n++] = '\n';
  c->ebody[n] = '\0';
  send_response(c, status, DEFAULT_CONTENT_TYPE, NULL, c->ebody, n);
}

/* A value a handler put in a response field: printable ASCII, short, so
 * a bug there cannot split the response. */
static int field_value_ok(const char *v) {
  size_t n = 0;
  for (; v[n]; n++)
    if ((unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e ||
        n >= FIELD_VALUE_MAX)
      return 0;
  return n > 0;
}

static void respond(http_conn_t *c, const ly_http_response_t *res);

static int is_loopback(const char *peer) {
  return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 ||
         strncmp(peer, "[::ffff:127.", 12) == 0;
}

static void dispatch(http_conn_t *c) {
  ly_http_server_t *s = c->server;
  ly_http_response_t res = {0};
  uv_read_stop((uv_stream_t *)&c->tcp); /* one request per connection */
  c->req.peer_loopback = is_loopback(c->peer);
  s->handler(&c->req, &res, s->data);
  if (c->deferred) { /* answered by ly_http_finish */
    uv_timer_stop(&c->timer);
    return;
  }
  respond(c, &res);
}

ly_http_pending_t *ly_http_defer(const ly_http_request_t *req) {
  http_conn_t *c = (http_conn_t *)((char *)req - offsetof(http_conn_t, req));
  c->deferred = 1;
  c->open_handles++; /* kept until ly_http_finish */
  return (ly_http_pending_t *)c;
}

void ly_http_finish(ly_http_pending_t *p, ly_http_response_t *res) {
  http_conn_t *c = (http_conn_t *)p;
  c->deferred = 0;
  if (c->closing)
    free(res->body);
  else
    respond(c, res);
  conn_release(c);
}

static void respond(http_conn_t *c, const ly_http_response_t *r) {
  ly_http_response_t res = *r;
  c->body = res.body;
  if (c->closing) /* the handler stopped the server */
    return;
  const char *ctype =
      res.content_type ? res.content_type : DEFAULT_CONTENT_TYPE;
  if (res.status < 200 || res.status > 599 || (res.len > 0 && !res.body) ||
      !field_value_ok(ctype) || (res.allow && !field_value_ok(res.allow))) {
    char st[16];
    ly_log(LY_ERROR, "http_bad_handler_response", "path", c->req.path, "status",
           ly_fmt(st, sizeof(st), "%d", res.status), NULL);
    send_error(c, 500);
    return;
  }
  send_response(c, res.status, ctype, res.allow, res.body, res.len);
}

static void on_timer(uv_timer_t *t) {
  http_conn_t *c = t->data;
  switch (c->state) {
  case CONN_READ_HEAD:
  case CONN_READ_BODY:
    send_error(c, 408);
    break;
  case CONN_WRITE: /* a client that does not read */
    ly_log(LY_DEBUG, "http_write_timeout", "peer", c->peer, NULL);
    conn_close(c);
    break;
  case CONN_LINGER:
  default:
    conn_close(c);
    break;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  http_conn_t *c = h->data;
  if (c->state == CONN_LINGER) /* dropped on arrival */
    *b = uv_buf_init(c->buf, sizeof(c->buf));
  else /* 0 bytes when full: on_read gets UV_ENOBUFS */
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

/* Whether the head may have become complete or wrong since the last
 * parse (see RESCAN_BYTES). */
static int worth_parsing(const http_conn_t *c, const char *fresh, size_t n) {
  return c->parsed_at == 0 || memchr(fresh, '\n', n) != NULL ||
         c->len - c->parsed_at >= RESCAN_BYTES || c->len >= LY_HTTP_HEAD_MAX;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  http_conn_t *c = st->data;
  if (c->closing || nread == 0)
    return;
  if (nread < 0) { /* EOF, reset, or no room: there is nobody to answer */
    conn_close(c);
    return;
  }
  const char *fresh = c->buf + c->len;
  switch (c->state) {
  case CONN_READ_HEAD: {
    c->len += (size_t)nread;
    if (!worth_parsing(c, fresh, (size_t)nread))
      return;
    c->parsed_at = c->len;
    size_t head_len;
    int rc = ly_http_parse(c->buf, c->len, &c->req, &head_len);
    if (rc == LY_HTTP_INCOMPLETE)
      return;
    if (rc != 0) {
      send_error(c, rc);
      return;
    }
    c->need = head_len + c->req.content_length; /* <= BUF_CAP */
    c->state = CONN_READ_BODY;
    if (c->len >= c->need)
      dispatch(c);
    break;
  }
  case CONN_READ_BODY:
    c->len += (size_t)nread;
    if (c->len >= c->need)
      dispatch(c);
    break;
  case CONN_LINGER:
  case CONN_WRITE: /* not reading then */
  default:
    break;
  }
}

static void peer_name(const uv_tcp_t *t, char *buf, size_t len) {
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  snprintf(buf, len, "?");
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) != 0)
    return;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
  } else if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
  }
}

/* Over the limit, or out of descriptors: closed at once, without a
 * response; logged once per REFUSAL_LOG_MS with the count. */
static void refuse(ly_http_server_t *s, int fd, const char *reason) {
  if (fd >= 0)
    close(fd);
  s->refused++;
  uint64_t now = uv_now(s->listener.poll.loop);
  if (!s->refusal_logged || now - s->refusal_logged_at >= REFUSAL_LOG_MS) {
    char n[24], max[24];
    ly_log(LY_WARN, "http_conn_refused", "reason", reason, "limit",
           ly_fmt(max, sizeof(max), "%d", LY_HTTP_MAX_CONNS), "refused",
           ly_fmt(n, sizeof(n), "%llu", (unsigned long long)s->refused), NULL);
    s->refused = 0;
    s->refusal_logged = 1;
    s->refusal_logged_at = now;
  }
}

static void on_connection(ly_acceptor_t *a, int fd) {
  ly_http_server_t *s = a->data;
  uv_loop_t *loop = a->poll.loop;
  if (fd < 0) {
    refuse(s, -1, uv_strerror(fd));
    return;
  }
  http_conn_t *c = NULL;
  if (s->nconns >= LY_HTTP_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
    refuse(s, fd, "connection limit");
    return;
  }
  c->server = s;
  uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    conn_close(c);
    return;
  }
  peer_name(&c->tcp, c->peer, sizeof(c->peer));
  /* from accept, not from the last byte: a drip cannot extend it */
  uv_timer_start(&c->timer, on_timer, LY_HTTP_REQUEST_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

static void on_listener_closed(ly_acceptor_t *a) {
  ly_http_server_t *s = a->data;
  s->listener_open = 0;
  server_maybe_free(s);
}

static void set_err(char *err, size_t errlen, const char *where,
                    const char *why) {
  if (err && errlen > 0)
    snprintf(err, errlen, "admin %s: %s", where, why);
}

int ly_http_server_start(uv_loop_t *loop, const char *host, uint16_t port,
                         ly_http_handler_cb handler, void *data,
                         ly_http_server_t **out, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  char where[96];
  int v6 = host && strchr(host, ':') != NULL, rc;
  snprintf(where, sizeof(where), v6 ? "[%.64s]:%u" : "%.64s:%u",
           host ? host : "", port);
  if (!host || !handler ||
      (v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
          : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss)) != 0) {
    set_err(err, errlen, where, "not an IP address");
    return UV_EINVAL;
  }
  ly_http_server_t *s = calloc(1, sizeof(*s));
  if (!s) {
    set_err(err, errlen, where, uv_strerror(UV_ENOMEM));
    return UV_ENOMEM;
  }
  int fd = -1;
  if ((rc = ly_listen_socket((const struct sockaddr *)&ss, 0, 128, &fd)) != 0 ||
      (rc = ly_acceptor_start(&s->listener, loop, fd, on_connection)) != 0) {
    set_err(err, errlen, where, uv_strerror(rc));
    free(s);
    return rc;
  }
  s->listener.data = s;
  s->listener_open = 1;
  s->handler = handler;
  s->data = data;
  s->port = (uint16_t)ly_acceptor_port(&s->listener);
  *out = s;
  return 0;
}

uint16_t ly_http_server_port(const ly_http_server_t *s) {
  return s ? s->port : 0;
}

void ly_http_server_stop(ly_http_server_t *s) {
  if (!s || s->stopping)
    return;
  s->stopping = 1;
  while (s->conns)
    conn_close(s->conns);
  ly_acceptor_close(&s->listener, on_listener_closed);
}
