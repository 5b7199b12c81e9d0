/* A TLS connection over a libuv TCP handle, for the control plane (RPC).
 *
 * wolfSSL never touches the socket: its I/O callbacks read ciphertext from
 * `in` (filled by uv_read) and append ciphertext to `out` (handed to
 * uv_write), so one event loop drives any number of connections and the
 * TLS code stays independent of the loop.
 *
 * Lifetime: ly_tls_conn_new allocates; ly_tls_conn_close starts an
 * asynchronous close; on_close runs exactly once after that and the memory
 * is freed when it returns. Calling close from inside any callback is
 * fine. Every callback runs on the loop's thread.
 */
#ifndef LANYARD_TLS_CONN_H
#define LANYARD_TLS_CONN_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stddef.h>
#include <uv.h>

typedef struct ly_tls_conn_s ly_tls_conn_t;

typedef struct {
  /* The handshake finished (status 0) or failed (negative; the reason is
   * in ly_tls_conn_error). After a failure, close the connection. */
  void (*on_handshake)(ly_tls_conn_t *c, int status);
  /* Decrypted application data. */
  void (*on_data)(ly_tls_conn_t *c, const char *buf, size_t len);
  /* The peer closed (status 0) or the connection failed (negative). */
  void (*on_end)(ly_tls_conn_t *c, int status);
  /* Last call; the connection is freed when it returns. */
  void (*on_close)(ly_tls_conn_t *c);
} ly_tls_conn_cbs_t;

struct ly_tls_conn_s {
  uv_tcp_t tcp; /* connect or accept on this, then ly_tls_conn_start */
  WOLFSSL *ssl;
  const ly_tls_conn_cbs_t *cbs;
  void *data; /* the user's */
  char *in;   /* ciphertext received, wolfSSL not done with it yet */
  size_t in_off, in_len, in_cap;
  char *out; /* ciphertext produced, not yet written */
  size_t out_len, out_cap;
  size_t write_queue_bytes; /* handed to uv_write, not yet written */
  int is_server;
  int started, handshake_done, eof, closing, ended;
  int ssl_error;        /* wolfSSL_get_error code of the last failure */
  char error_text[160]; /* and its text */
};

/* Allocates a connection with a new WOLFSSL from ctx (ALPN set by the
 * caller's ctx setup). 0 or a negative code. */
int ly_tls_conn_new(uv_loop_t *loop, WOLFSSL_CTX *ctx, int is_server,
                    const ly_tls_conn_cbs_t *cbs, void *data,
                    ly_tls_conn_t **out);

/* Starts reading and (client side) sends the ClientHello. Call once the
 * TCP handle is connected or accepted. */
int ly_tls_conn_start(ly_tls_conn_t *c);

/* Encrypts and queues data. 0 or a negative code (then close). */
int ly_tls_conn_write(ly_tls_conn_t *c, const void *data, size_t len);

/* Sends close_notify (best effort) and closes. Idempotent. */
void ly_tls_conn_close(ly_tls_conn_t *c);

/* The reason of the last failure, for logs ("" if none). */
const char *ly_tls_conn_error(const ly_tls_conn_t *c);

/* "ip:port" of the peer, for logs. */
void ly_tls_conn_peer_name(const ly_tls_conn_t *c, char *buf, size_t len);

#endif
