#include "lanyard/tls_conn.h"

#include "lanyard/err.h"

#include <wolfssl/error-ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One TLS record at most, plus its header and tag. */
#define READ_CHUNK (16384 + 512)
/* Control-plane messages are small; a peer that makes us hold more
 * ciphertext than this without progress is misbehaving. */
#define BUF_LIMIT (1u << 20)

typedef struct {
  uv_write_t req;
  ly_tls_conn_t *conn;
  size_t len;
  char data[];
} write_req_t;

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  LY_ENSURE(need <= BUF_LIMIT, LY_ETOO_BIG);
  size_t ncap = *cap ? *cap : 4096;
  while (ncap < need)
    ncap *= 2;
  char *nb = realloc(*buf, ncap);
  LY_ENSURE(nb != NULL, UV_ENOMEM);
  *buf = nb;
  *cap = ncap;
  return 0;
}

/* wolfSSL I/O callbacks: memory only. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  ly_tls_conn_t *c = ctx;
  size_t avail = c->in_len - c->in_off;
  if (avail == 0)
    return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = (size_t)sz < avail ? (size_t)sz : avail;
  memcpy(buf, c->in + c->in_off, n);
  c->in_off += n;
  if (c->in_off == c->in_len)
    c->in_off = c->in_len = 0;
  return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  ly_tls_conn_t *c = ctx;
  if (grow(&c->out, &c->out_cap, c->out_len + (size_t)sz) != 0)
    return WOLFSSL_CBIO_ERR_GENERAL;
  memcpy(c->out + c->out_len, buf, (size_t)sz);
  c->out_len += (size_t)sz;
  return sz;
}

static void on_written(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  w->conn->write_queue_bytes -= w->len;
  free(w);
}

static int flush(ly_tls_conn_t *c) {
  if (c->out_len == 0 || uv_is_closing((uv_handle_t *)&c->tcp))
    return 0;
  write_req_t *w = malloc(sizeof(*w) + c->out_len);
  LY_ENSURE(w != NULL, UV_ENOMEM);
  memcpy(w->data, c->out, c->out_len);
  w->conn = c;
  w->len = c->out_len;
  c->out_len = 0;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc != 0) {
    free(w);
    return rc;
  }
  c->write_queue_bytes += w->len;
  return 0;
}

static void set_error(ly_tls_conn_t *c, int ret) {
  c->ssl_error = wolfSSL_get_error(c->ssl, ret);
  char text[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n((unsigned long)c->ssl_error, text, sizeof(text));
  snprintf(c->error_text, sizeof(c->error_text), "%s (%d)", text, c->ssl_error);
}

static void end(ly_tls_conn_t *c, int status) {
  if (c->ended || c->closing)
    return;
  c->ended = 1;
  c->cbs->on_end(c, status);
}

/* Drives the handshake and delivers whatever can be decrypted. */
static void pump(ly_tls_conn_t *c) {
  if (!c->handshake_done) {
    int ret = c->is_server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
    int frc = flush(c);
    if (ret != WOLFSSL_SUCCESS) {
      int err = wolfSSL_get_error(c->ssl, ret);
      if (frc == 0 &&
          (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE))
        return;
      set_error(c, ret);
      c->handshake_done = -1;
      c->cbs->on_handshake(c, LY_ETLS);
      return;
    }
    c->handshake_done = 1;
    c->cbs->on_handshake(c, 0);
  }
  char buf[16384];
  while (!c->closing && !c->ended) {
    int n = wolfSSL_read(c->ssl, buf, sizeof(buf));
    if (flush(c) != 0) {
      end(c, UV_EIO);
      return;
    }
    if (n > 0) {
      c->cbs->on_data(c, buf, (size_t)n);
      continue;
    }
    int err = wolfSSL_get_error(c->ssl, n);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
      return;
    if (err == WOLFSSL_ERROR_ZERO_RETURN ||
        (c->eof && err == SOCKET_PEER_CLOSED_E)) {
      end(c, 0);
      return;
    }
    set_error(c, n);
    end(c, c->eof ? UV_EOF : LY_ETLS);
    return;
  }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ly_tls_conn_t *c = h->data;
  if (grow(&c->in, &c->in_cap, c->in_len + READ_CHUNK) != 0) {
    *buf = uv_buf_init(NULL, 0); /* read_cb sees UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(c->in + c->in_len, READ_CHUNK);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ly_tls_conn_t *c = s->data;
  if (nread == 0 || c->closing)
    return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      snprintf(c->error_text, sizeof(c->error_text), "%s",
               uv_strerror((int)nread));
      if (!c->handshake_done) {
        c->handshake_done = -1;
        c->cbs->on_handshake(c, (int)nread);
      } else {
        end(c, (int)nread);
      }
      return;
    }
    c->eof = 1;
    uv_read_stop(s);
  } else {
    c->in_len += (size_t)nread;
  }
  pump(c);
  if (c->eof && !c->closing && !c->ended) {
    if (c->handshake_done != 1) {
      if (c->handshake_done == 0) {
        snprintf(c->error_text, sizeof(c->error_text),
                 "connection closed during the handshake");
        c->handshake_done = -1;
        c->cbs->on_handshake(c, UV_EOF);
      }
    } else {
      end(c, 0);
    }
  }
}

int ly_tls_conn_new(uv_loop_t *loop, WOLFSSL_CTX *ctx, int is_server,
                    const ly_tls_conn_cbs_t *cbs, void *data,
                    ly_tls_conn_t **out) {
  ly_tls_conn_t *c = calloc(1, sizeof(*c));
  LY_ENSURE(c != NULL, UV_ENOMEM);
  c->ssl = wolfSSL_new(ctx);
  if (!c->ssl) {
    free(c);
    return UV_ENOMEM;
  }
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0) {
    wolfSSL_free(c->ssl);
    free(c);
    return rc;
  }
  wolfSSL_SSLSetIORecv(c->ssl, io_recv);
  wolfSSL_SSLSetIOSend(c->ssl, io_send);
  wolfSSL_SetIOReadCtx(c->ssl, c);
  wolfSSL_SetIOWriteCtx(c->ssl, c);
  wolfSSL_set_using_nonblock(c->ssl, 1);
  c->tcp.data = c;
  c->cbs = cbs;
  c->data = data;
  c->is_server = is_server;
  *out = c;
  return 0;
}

int ly_tls_conn_start(ly_tls_conn_t *c) {
  LY_ENSURE(!c->started, UV_EALREADY);
  c->started = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  LY_GUARD(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb));
  if (!c->is_server)
    pump(c); /* sends the ClientHello */
  return 0;
}

int ly_tls_conn_write(ly_tls_conn_t *c, const void *data, size_t len) {
  LY_ENSURE(c->handshake_done == 1 && !c->closing, UV_ENOTCONN);
  const char *p = data;
  while (len > 0) {
    int chunk = len > 16384 ? 16384 : (int)len;
    int n = wolfSSL_write(c->ssl, p, chunk);
    if (n <= 0) {
      set_error(c, n);
      return LY_ETLS;
    }
    p += n;
    len -= (size_t)n;
  }
  return flush(c);
}

static void close_cb(uv_handle_t *h) {
  ly_tls_conn_t *c = h->data;
  if (c->cbs->on_close)
    c->cbs->on_close(c);
  wolfSSL_free(c->ssl);
  free(c->in);
  free(c->out);
  free(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  uv_handle_t *h = (uv_handle_t *)req->handle;
  free(req);
  uv_close(h, close_cb);
}

void ly_tls_conn_close(ly_tls_conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  if (c->handshake_done == 1 && !c->eof) {
    wolfSSL_shutdown(c->ssl); /* queues close_notify */
    /* A shutdown request runs after every queued write, so the last
     * response and the close_notify reach the peer before the FIN. */
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req && flush(c) == 0 &&
        uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) == 0)
      return;
    free(req);
  }
  uv_close((uv_handle_t *)&c->tcp, close_cb);
}

const char *ly_tls_conn_error(const ly_tls_conn_t *c) {
  return c->error_text;
}

void ly_tls_conn_peer_name(const ly_tls_conn_t *c, char *buf, size_t len) {
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof(ip));
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof(ip));
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}
