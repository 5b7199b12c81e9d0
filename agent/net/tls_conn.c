#include "lanyard/tls_conn.h"

#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <wolfssl/error-ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One TLS record at most, plus its header and tag. */
#define RECORD_MAX (16384 + 512)
#define PLAINTEXT_CHUNK 16384
/* Bulk transfers move in blocks of four records: one read syscall, one
 * write syscall and one allocation per 64 KiB instead of per record. All
 * such blocks (ciphertext read, plaintext delivered, ciphertext to
 * write) have one size, so they can come from one per-thread pool. */
#define BATCH (4 * PLAINTEXT_CHUNK)
#define BLOCK (BATCH + 2 * RECORD_MAX)
/* Ciphertext held for wolfSSL: a paused connection stops reading, so this
 * only bounds a peer that sends faster than we decrypt. */
#define IN_LIMIT (256u * 1024)
/* A TLS handshake record starts with this content type. */
#define TLS_HANDSHAKE 0x16

/* Output ciphertext and its write request in one allocation: flush hands
 * the block to uv_write as it is. */
struct ly_tls_out_s {
  uv_write_t req;
  ly_tls_conn_t *conn;
  size_t len, cap;
  char data[];
};
typedef struct ly_tls_out_s out_t;

/* A few spare blocks per data-plane thread, so a busy connection's
 * buffers go back and forth without reaching the allocator (which would
 * return the pages to the kernel and fault them in again each time),
 * while an idle connection holds none. Other threads do not keep any. */
#define POOL_BLOCKS 2
typedef struct {
  void *block[POOL_BLOCKS];
  int n, enabled;
} pool_t;
static _Thread_local pool_t pool;

void ly_tls_conn_pool_begin(void) {
  pool.enabled = 1;
}

void ly_tls_conn_pool_end(void) {
  while (pool.n > 0)
    free(pool.block[--pool.n]);
  pool.enabled = 0;
}

static void *block_get(void) {
  if (pool.n > 0)
    return pool.block[--pool.n];
  return malloc(BLOCK);
}

/* A block (of at least BLOCK bytes) is no longer needed. */
static void block_put(void *b) {
  if (!pool.enabled || pool.n == POOL_BLOCKS)
    free(b);
  else
    pool.block[pool.n++] = b;
}

void ly_tls_conn_data_free(char *buf, size_t len) {
  if (len >= BATCH / 2) /* never shrunk: a whole block */
    block_put(buf);
  else
    free(buf);
}

/* Hands a block with len bytes of data to someone who counts it by len
 * (queues toward slow readers): a mostly empty block is cut to size. */
static char *fit(char *buf, size_t len) {
  if (len >= BATCH / 2)
    return buf;
  char *small = realloc(buf, len ? len : 1);
  return small ? small : buf;
}

static void in_release(ly_tls_conn_t *c) {
  if (c->in_cap == BLOCK)
    block_put(c->in);
  else
    free(c->in);
  c->in = NULL;
  c->in_off = c->in_len = c->in_cap = 0; /* rec_left goes on */
}

static void out_release(out_t *o) {
  if (sizeof(*o) + o->cap == BLOCK)
    block_put(o);
  else
    free(o);
}

/* Room for `bytes` more ciphertext in c->out: a pool block when they
 * fill most of one; else what they need (exact: all that is coming, as
 * a write knows; or at least a record, for a handshake flight that
 * arrives in pieces). */
static int out_reserve(ly_tls_conn_t *c, size_t bytes, int exact) {
  size_t need = (c->out ? c->out->len : 0) + bytes;
  if (c->out && need <= c->out->cap)
    return 0;
  out_t *o;
  size_t cap;
  if (!c->out && need <= BLOCK - sizeof(*o) && need > BATCH / 2) {
    o = block_get();
    cap = BLOCK - sizeof(*o);
  } else {
    cap = need < RECORD_MAX && !c->out && !exact ? RECORD_MAX : need;
    o = realloc(c->out, sizeof(*o) + cap);
  }
  if (!o)
    return -1;
  if (!c->out)
    o->len = 0;
  o->cap = cap;
  c->out = o;
  return 0;
}

/* wolfSSL I/O callbacks: memory only. */
/* wolfSSL asks for as much as its buffer holds and moves what is left of
 * a read beyond the record it parses (ShrinkInputBuffer: a tenth of a
 * bulk transfer's time). So it gets one record at a time: the header,
 * whole, then at most the rest of that record. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  ly_tls_conn_t *c = ctx;
  size_t avail = c->in_len - c->in_off;
  if (c->rec_left == 0) { /* at a record boundary */
    if (avail < 5)
      return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
    const unsigned char *h = (const unsigned char *)c->in + c->in_off;
    c->rec_left = 5 + ((size_t)h[3] << 8 | h[4]);
  }
  if (avail == 0)
    return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
  if (avail > c->rec_left)
    avail = c->rec_left;
  size_t n = (size_t)sz < avail ? (size_t)sz : avail;
  c->rec_left -= n;
  memcpy(buf, c->in + c->in_off, n);
  c->in_off += n;
  if (c->in_off == c->in_len) /* drained: an idle connection holds none */
    in_release(c);
  return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  ly_tls_conn_t *c = ctx;
  if (out_reserve(c, (size_t)sz, 0) != 0)
    return WOLFSSL_CBIO_ERR_GENERAL;
  memcpy(c->out->data + c->out->len, buf, (size_t)sz);
  c->out->len += (size_t)sz;
  return sz;
}

static void on_written(uv_write_t *req, int status) {
  out_t *o = (out_t *)req;
  ly_tls_conn_t *c = o->conn;
  c->write_queue_bytes -= o->len;
  out_release(o);
  if (c->write_queue_bytes == 0 && !c->closing && c->cbs->on_drain)
    c->cbs->on_drain(c);
}

static int flush(ly_tls_conn_t *c) {
  out_t *o = c->out;
  if (!o || o->len == 0 || uv_is_closing((uv_handle_t *)&c->tcp))
    return 0;
  c->out = NULL;
  o->conn = c;
  uv_buf_t b = uv_buf_init(o->data, (unsigned)o->len);
  int rc = uv_write(&o->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc != 0) {
    out_release(o);
    return rc;
  }
  c->write_queue_bytes += o->len;
  return 0;
}

/* Records wolfSSL's error code (from wolfSSL_get_error) and its text. */
static void set_error_code(ly_tls_conn_t *c, int err) {
  c->ssl_error = err;
  WOLFSSL_ALERT_HISTORY h;
  if (wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS &&
      h.last_rx.level == alert_fatal)
    c->peer_alert = h.last_rx.code;
  char text[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n((unsigned long)c->ssl_error, text, sizeof(text));
  snprintf(c->error_text, sizeof(c->error_text), "%s (%d)", text, c->ssl_error);
}

static void set_error(ly_tls_conn_t *c, int ret) {
  set_error_code(c, wolfSSL_get_error(c->ssl, ret));
}

static void end(ly_tls_conn_t *c, int status) {
  if (c->ended || c->closing)
    return;
  c->ended = 1;
  c->cbs->on_end(c, status);
}

static void handshake_failed(ly_tls_conn_t *c, int status) {
  c->handshake_done = -1;
  c->cbs->on_handshake(c, status);
}

/* Raw mode: what was read is the data. The buffer changes hands. */
static void deliver_raw(ly_tls_conn_t *c) {
  if (c->closing || c->ended || c->paused || c->in_len == 0)
    return;
  size_t len = c->in_len;
  char *buf = c->in_cap == BLOCK ? fit(c->in, len) : c->in;
  c->in = NULL;
  c->in_off = c->in_len = c->in_cap = 0;
  c->cbs->on_data(c, buf, len);
}

static void drive(ly_tls_conn_t *c) {
  if (c->raw) {
    deliver_raw(c);
    return;
  }
  if (c->handshake_done == 0) {
    int ret = c->is_server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
    int frc = flush(c);
    if (ret != WOLFSSL_SUCCESS) {
      int err = wolfSSL_get_error(c->ssl, ret);
      if (frc == 0 &&
          (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE))
        return;
      set_error(c, ret);
      handshake_failed(c, LY_ETLS);
      return;
    }
    c->handshake_done = 1;
    c->cbs->on_handshake(c, 0);
  }
  if (c->handshake_done != 1)
    return;
  while (!c->closing && !c->ended && !c->paused) {
    /* Up to four records per delivery: one plaintext write for them. */
    char *buf = block_get();
    if (!buf) {
      end(c, UV_ENOMEM);
      return;
    }
    size_t filled = 0;
    int n;
    do {
      n = wolfSSL_read(c->ssl, buf + filled, (int)(BATCH - filled));
      if (flush(c) != 0) { /* post-handshake messages, alerts */
        block_put(buf);
        end(c, UV_EIO);
        return;
      }
      if (n > 0)
        filled += (size_t)n;
    } while (n > 0 && BATCH - filled >= PLAINTEXT_CHUNK);
    /* Now: on_data may write on this connection, which changes what
     * wolfSSL_get_error would say about the read. */
    int err = n > 0 ? 0 : wolfSSL_get_error(c->ssl, n);
    if (filled > 0) {
      c->cbs->on_data(c, fit(buf, filled), filled);
      if (n > 0)
        continue;
      if (c->closing || c->ended || c->paused)
        return; /* the error, if any, is seen again on the next read */
    } else {
      block_put(buf);
    }
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
      return;
    if (err == WOLFSSL_ERROR_ZERO_RETURN) {
      end(c, 0);
      return;
    }
    if (c->eof && (err == SOCKET_PEER_CLOSED_E || err == SOCKET_ERROR_E)) {
      end(c, UV_EOF);
      return;
    }
    set_error_code(c, err);
    end(c, LY_ETLS);
    return;
  }
}

/* Re-entry guard: a callback inside drive() may resume this connection;
 * the running loop then simply goes on. */
static void pump(ly_tls_conn_t *c) {
  if (c->in_pump)
    return;
  c->in_pump = 1;
  drive(c);
  c->in_pump = 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ly_tls_conn_t *c = h->data;
  if (!c->in) {
    c->in = block_get();
    c->in_cap = c->in ? BLOCK : 0;
  } else if (c->in_off > 0) { /* a partial record left: to the front */
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  size_t need = c->in_len + RECORD_MAX;
  if (need > c->in_cap) {
    /* Never below BLOCK: a buffer handed on full enough to look like a
     * pool block (ly_tls_conn_data_free) must be at least that big. */
    need = c->in_len + BATCH > BLOCK ? c->in_len + BATCH : BLOCK;
    char *nb = need <= IN_LIMIT ? realloc(c->in, need) : NULL;
    if (!nb) {
      *buf = uv_buf_init(NULL, 0); /* read_cb sees UV_ENOBUFS */
      return;
    }
    c->in = nb;
    c->in_cap = need;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ly_tls_conn_t *c = s->data;
  if (nread == 0 || c->closing)
    return;
  if (nread < 0 && nread != UV_EOF) {
    snprintf(c->error_text, sizeof(c->error_text), "%s",
             uv_strerror((int)nread));
    if (c->handshake_done != 0) {
      end(c, (int)nread);
      return;
    }
    /* A reset during the handshake is the peer going away, as a FIN
     * is (a peer that closes with our data unread resets): wolfSSL
     * judges both alike, so the cause and code do not depend on which
     * came. */
    c->eof = 1;
    uv_read_stop(s);
    pump(c);
    if (!c->closing && c->handshake_done == 0)
      handshake_failed(c, (int)nread);
    return;
  }
  if (nread == UV_EOF) {
    c->eof = 1;
    uv_read_stop(s);
  } else {
    if (!c->saw_first_byte && c->is_server) {
      c->saw_first_byte = 1;
      if ((unsigned char)buf->base[0] != TLS_HANDSHAKE) {
        /* Not TLS at all: say so, rather than wolfSSL's parse error. */
        c->not_tls = 1;
        if (c->allow_plaintext) { /* permissive: carry it as it is */
          c->raw = 1;
          c->handshake_done = 1;
          c->in_len += (size_t)nread;
          c->cbs->on_handshake(c, 0);
          pump(c);
          return;
        }
        snprintf(c->error_text, sizeof(c->error_text),
                 "the client did not start a TLS handshake");
        handshake_failed(c, LY_ETLS);
        return;
      }
    }
    c->in_len += (size_t)nread;
  }
  pump(c);
  if (c->eof && !c->closing && !c->ended && !c->paused) {
    if (c->handshake_done == 0) {
      snprintf(c->error_text, sizeof(c->error_text),
               "connection closed during the handshake");
      handshake_failed(c, UV_EOF);
    } else if (c->handshake_done == 1) {
      end(c, UV_EOF);
    }
  }
}

int ly_tls_conn_new(uv_loop_t *loop, WOLFSSL_CTX *ctx, int is_server,
                    const ly_tls_conn_cbs_t *cbs, void *data,
                    ly_tls_conn_t **out) {
  ly_tls_conn_t *c = calloc(1, sizeof(*c));
  LY_ENSURE(c != NULL, UV_ENOMEM);
  c->raw = ctx == NULL;
  if (!c->raw && !(c->ssl = wolfSSL_new(ctx))) {
    free(c);
    return UV_ENOMEM;
  }
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0) {
    if (c->ssl)
      wolfSSL_free(c->ssl);
    free(c);
    return rc;
  }
  if (c->ssl) {
    wolfSSL_SSLSetIORecv(c->ssl, io_recv);
    wolfSSL_SSLSetIOSend(c->ssl, io_send);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    wolfSSL_set_using_nonblock(c->ssl, 1);
  }
  c->tcp.data = c;
  c->cbs = cbs;
  c->data = data;
  c->is_server = is_server != 0;
  *out = c;
  return 0;
}

int ly_tls_conn_start(ly_tls_conn_t *c) {
  LY_ENSURE(!c->started, UV_EALREADY);
  c->started = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  LY_GUARD(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb));
  if (c->raw) { /* nothing to negotiate */
    c->handshake_done = 1;
    c->cbs->on_handshake(c, 0);
  } else if (!c->is_server) {
    pump(c); /* sends the ClientHello */
  }
  return 0;
}

int ly_tls_conn_assume_plaintext(ly_tls_conn_t *c) {
  LY_ENSURE(c->is_server && c->allow_plaintext && c->started &&
                !c->saw_first_byte && !c->eof && !c->closing &&
                c->handshake_done == 0,
            UV_EINVAL);
  /* whatever the client sends later is data, even a 0x16 */
  c->saw_first_byte = 1;
  c->not_tls = 1;
  c->raw = 1;
  c->handshake_done = 1;
  c->cbs->on_handshake(c, 0);
  return 0;
}

int ly_tls_conn_write(ly_tls_conn_t *c, const void *data, size_t len) {
  LY_ENSURE(c->handshake_done == 1 && !c->closing && !c->shut, UV_ENOTCONN);
  if (c->raw) {
    if (out_reserve(c, len, 1) != 0 ||
        io_send(NULL, (char *)data, (int)len, c) < 0)
      return UV_ENOMEM;
    return flush(c);
  }
  /* All the records' ciphertext in one block, allocated once. */
  size_t records = (len + PLAINTEXT_CHUNK - 1) / PLAINTEXT_CHUNK;
  LY_ENSURE(out_reserve(c, len + records * 64, 1) == 0, UV_ENOMEM);
  const char *p = data;
  while (len > 0) {
    int chunk = len > PLAINTEXT_CHUNK ? PLAINTEXT_CHUNK : (int)len;
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

void ly_tls_conn_pause(ly_tls_conn_t *c) {
  if (c->paused)
    return;
  c->paused = 1;
  if (!c->eof && !c->closing)
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void ly_tls_conn_resume(ly_tls_conn_t *c) {
  if (!c->paused || c->closing)
    return;
  c->paused = 0;
  if (!c->eof)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  /* wolfSSL may hold decrypted or undelivered data already */
  pump(c);
  if (c->eof && !c->closing && !c->ended && !c->paused &&
      c->handshake_done == 1)
    end(c, UV_EOF);
}

static void free_conn(uv_handle_t *h) {
  ly_tls_conn_t *c = h->data;
  if (c->cbs->on_close)
    c->cbs->on_close(c);
  if (c->ssl)
    wolfSSL_free(c->ssl);
  free(c->in);
  free(c->out);
  free(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  ly_tls_conn_t *c = req->handle->data;
  free(req);
  if (status == UV_ECANCELED) /* aborted: uv_close is under way */
    return;
  c->shutdown_pending = 0;
  if (c->closing) /* close waited for the FIN to go out */
    uv_close((uv_handle_t *)&c->tcp, free_conn);
}

/* close_notify, then a FIN once every queued write is out. */
static int send_fin(ly_tls_conn_t *c, uv_shutdown_cb cb) {
  if (c->handshake_done == 1 && !c->raw)
    wolfSSL_shutdown(c->ssl); /* queues close_notify */
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req)
    return UV_ENOMEM;
  int rc = flush(c);
  if (rc == 0)
    rc = uv_shutdown(req, (uv_stream_t *)&c->tcp, cb);
  if (rc != 0)
    free(req);
  return rc;
}

void ly_tls_conn_shutdown(ly_tls_conn_t *c) {
  if (c->shut || c->closing)
    return;
  c->shut = 1;
  c->shutdown_pending = send_fin(c, shutdown_cb) == 0;
}

void ly_tls_conn_close(ly_tls_conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  /* A graceful end lets the last response and the close_notify reach the
   * peer before the FIN, also when the peer half-closed first; a failed
   * handshake just closes. */
  if (c->shutdown_pending) /* shutdown_cb closes after the FIN */
    return;
  if (c->handshake_done == 1 && !c->shut && send_fin(c, shutdown_cb) == 0) {
    c->shutdown_pending = 1;
    return;
  }
  uv_close((uv_handle_t *)&c->tcp, free_conn);
}

void ly_tls_conn_abort(ly_tls_conn_t *c) {
  if (c->closing && !c->shutdown_pending)
    return; /* uv_close already under way */
  c->closing = 1;
  c->shutdown_pending = 0; /* its callback sees UV_ECANCELED and frees */
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, free_conn);
}

const char *ly_tls_conn_error(const ly_tls_conn_t *c) {
  return c->error_text;
}

void ly_tcp_peer_name(const uv_tcp_t *h, char *buf, size_t len) {
  struct sockaddr_storage ss = {.ss_family = AF_UNSPEC};
  int sl = sizeof(ss);
  uv_tcp_getpeername(h, (struct sockaddr *)&ss, &sl);
  ly_addr_format((struct sockaddr *)&ss, buf, len);
}
