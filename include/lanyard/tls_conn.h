/* A TLS connection over a libuv TCP handle, for the data path and the RPC.
 *
 * wolfSSL never touches the socket: its I/O callbacks read ciphertext from
 * `in` (filled by uv_read) and append ciphertext to an output block that
 * is handed to uv_write as it is, so one event loop drives any number of
 * connections and the TLS code stays independent of the loop.
 *
 * Copies per 16 KB record, and why this shape:
 *   receive: kernel -> `in` (one read(2) may carry several records),
 *            `in` -> wolfSSL's record buffer (its I/O contract), decrypted
 *            in place, -> a fresh 16 KB buffer handed to on_data, which
 *            the proxy writes out as it is (no further copy).
 *   send:    caller's plaintext -> wolfSSL encrypts into its buffer ->
 *            io_send appends to the output block -> the block itself is
 *            the uv_write request (no copy in flush).
 * Syscalls, measured with `strace -c` on a server agent while 256 MiB
 * went through a client/server agent pair: about a quarter of a read(2),
 * of a write(2) and of an epoll_wait(2) per 16 KiB record, because libuv
 * reads 64 KiB at a time and one flush writes the four records they
 * become in a single write(2). Giving wolfSSL the socket would save the
 * `in` copy but read record by record; the benchmark decides that trade.
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
  /* Decrypted application data in a malloc'd buffer that the callee owns
   * (and frees, best with ly_tls_conn_data_free). */
  void (*on_data)(ly_tls_conn_t *c, char *buf, size_t len);
  /* The peer finished sending: 0 after close_notify, UV_EOF after a bare
   * TCP FIN, another negative code on error. Writing may go on. */
  void (*on_end)(ly_tls_conn_t *c, int status);
  /* Optional: every queued write has reached the kernel. */
  void (*on_drain)(ly_tls_conn_t *c);
  /* Last call; the connection is freed when it returns. */
  void (*on_close)(ly_tls_conn_t *c);
} ly_tls_conn_cbs_t;

struct ly_tls_conn_s {
  uv_tcp_t tcp; /* connect or accept on this, then ly_tls_conn_start */
  WOLFSSL *ssl;
  const ly_tls_conn_cbs_t *cbs;
  void *data; /* the user's */
  void *peer; /* the ly_peer_check_t of a data-path connection, or NULL */
  char *in;   /* ciphertext received, wolfSSL not done with it yet */
  size_t in_off, in_len, in_cap;
  size_t rec_left; /* bytes of the current record not yet given wolfSSL */
  struct ly_tls_out_s *out; /* ciphertext produced, not yet written */
  size_t write_queue_bytes; /* handed to uv_write, not yet written */
  unsigned is_server : 1, started : 1, eof : 1, closing : 1, ended : 1,
      paused : 1, in_pump : 1, shut : 1, shutdown_pending : 1,
      saw_first_byte : 1, not_tls : 1, raw : 1, allow_plaintext : 1;
  int handshake_done;   /* 0 in progress, 1 done, -1 failed */
  int ssl_error;        /* wolfSSL_get_error code of the last failure */
  int peer_alert;       /* the fatal alert the peer sent (RFC 8446 6), or 0 */
  char error_text[160]; /* and its text */
};

/* A data-plane thread keeps a few buffers for reuse between begin (when
 * it starts) and end (before it exits, which frees them). */
void ly_tls_conn_pool_begin(void);
void ly_tls_conn_pool_end(void);

/* Frees a buffer from on_data; on a pooling thread, for the next one. */
void ly_tls_conn_data_free(char *buf, size_t len);

/* Allocates a connection with a new WOLFSSL from ctx, or, with ctx NULL,
 * a raw one (plain TCP behind the same interface: unmeshed destinations).
 * A server connection with allow_plaintext set turns raw when the client
 * does not start with a TLS handshake (permissive mode). 0 or a negative
 * code. */
int ly_tls_conn_new(uv_loop_t *loop, WOLFSSL_CTX *ctx, int is_server,
                    const ly_tls_conn_cbs_t *cbs, void *data,
                    ly_tls_conn_t **out);

/* Starts reading and (client side) sends the ClientHello. Call once the
 * TCP handle is connected or accepted. */
int ly_tls_conn_start(ly_tls_conn_t *c);

/* Permissive mode, a client that has sent nothing yet: take it for a
 * plaintext one whose server speaks first (SMTP, MySQL). The connection
 * turns raw and on_handshake reports success. 0, or UV_EINVAL when it is
 * not a server connection with allow_plaintext still waiting for its
 * first byte. */
int ly_tls_conn_assume_plaintext(ly_tls_conn_t *c);

/* Encrypts and queues data. 0 or a negative code (then close). */
int ly_tls_conn_write(ly_tls_conn_t *c, const void *data, size_t len);

/* Backpressure: stop delivering data (and reading from the socket) until
 * resumed. Safe to call from any callback. */
void ly_tls_conn_pause(ly_tls_conn_t *c);
void ly_tls_conn_resume(ly_tls_conn_t *c);

/* Half-close: close_notify and a TCP FIN after every queued write; data
 * from the peer keeps coming. */
void ly_tls_conn_shutdown(ly_tls_conn_t *c);

/* Sends close_notify (best effort) and closes once queued data is out.
 * Idempotent. A peer that stops reading can hold this up: use abort on
 * errors and deadlines. */
void ly_tls_conn_close(ly_tls_conn_t *c);

/* Closes now, dropping whatever is queued. Also after close. */
void ly_tls_conn_abort(ly_tls_conn_t *c);

/* The reason of the last failure, for logs ("" if none). */
const char *ly_tls_conn_error(const ly_tls_conn_t *c);

/* "ip:port" (or "[ip]:port") of a TCP handle's peer, for logs. */
void ly_tcp_peer_name(const uv_tcp_t *h, char *buf, size_t len);

#endif
