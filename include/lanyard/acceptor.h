/* Listening sockets that accept without ever spinning, and the process's
 * descriptor budget.
 *
 * libuv's uv_listen answers EMFILE by closing a spare descriptor,
 * accepting and dropping the waiting connection, and reopening the spare.
 * In a process with several threads another thread can take the freed
 * descriptor first; the listener then retries accept in a loop that never
 * returns, and the loop's timers, signals and other handles stop with it.
 * An acceptor polls the listening socket itself instead: it accepts at
 * most a batch per wakeup (other handles get their turn), and when accept
 * fails for want of descriptors or memory it reports the error once and
 * stops polling for LY_ACCEPT_PAUSE_MS; the connections wait in the
 * kernel's backlog meanwhile.
 *
 * Threads: an acceptor lives on one loop and is used on its thread only.
 * Lifetime: the caller owns the memory; ly_acceptor_close closes the
 * socket and calls `closed` once every handle is closed (the memory may be
 * freed there).
 */
#ifndef LANYARD_ACCEPTOR_H
#define LANYARD_ACCEPTOR_H

#include <sys/socket.h>
#include <uv.h>

#define LY_ACCEPT_PAUSE_MS 250

typedef struct ly_acceptor_s ly_acceptor_t;

/* fd >= 0: a new connection (non-blocking, close-on-exec), now the
 * callee's. fd < 0: accept failed with this libuv error (UV_EMFILE,
 * UV_ENFILE, UV_ENOBUFS, UV_ENOMEM, or any other error not about one
 * connection); the acceptor has paused. */
typedef void (*ly_accept_cb)(ly_acceptor_t *a, int fd);

struct ly_acceptor_s {
  uv_poll_t poll;
  uv_timer_t pause;
  int fd;
  int open_handles, closing;
  ly_accept_cb on_accept;
  void (*closed)(ly_acceptor_t *a);
  void *data; /* the user's */
};

/* A bound, listening, non-blocking socket for addr (SO_REUSEADDR; with
 * reuseport, SO_REUSEPORT too; IPv6 sockets are IPv6-only). 0 or a
 * negative libuv error. */
int ly_listen_socket(const struct sockaddr *addr, int reuseport, int backlog,
                     int *fd_out);

/* Starts accepting on a listening socket, which the acceptor now owns
 * (also on failure). 0 or a negative libuv error. */
int ly_acceptor_start(ly_acceptor_t *a, uv_loop_t *loop, int fd,
                      ly_accept_cb on_accept);

/* Stops accepting and closes the socket; `closed` (may be NULL) runs once
 * the handles are closed. Idempotent. */
void ly_acceptor_close(ly_acceptor_t *a, void (*closed)(ly_acceptor_t *a));

/* Accepts every connection the kernel has queued (on_accept for each), for
 * a listener about to close: those clients already see an established
 * connection, which closing the socket would reset. */
void ly_acceptor_sweep(ly_acceptor_t *a);

/* The local port of the listening socket, or 0. */
unsigned ly_acceptor_port(const ly_acceptor_t *a);

/* Raises the soft RLIMIT_NOFILE to the hard limit (a daemon that holds
 * connections should not stop at the 1,024 most shells hand down) and
 * returns the soft limit in force. */
unsigned ly_fd_limit_raise(void);

#endif
