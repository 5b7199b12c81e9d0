/* Listening sockets and the accept loop (see lanyard/acceptor.h). */
#define _GNU_SOURCE /* accept4 */
#include "lanyard/acceptor.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

/* Per wakeup: enough to drain a burst, few enough that a flood on one
 * listener cannot starve the loop's other handles. */
#define ACCEPT_BATCH 64

int ly_listen_socket(const struct sockaddr *addr, int reuseport, int backlog,
                     int *fd_out) {
  int fd =
      socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int one = 1;
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  /* IPv6 capture sockets sit beside IPv4 ones on the same port */
  if (addr->sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      bind(fd, addr, len) != 0 || listen(fd, backlog) != 0) {
    int rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

static void on_readable(uv_poll_t *h, int status, int events);

static void on_pause_end(uv_timer_t *t) {
  ly_acceptor_t *a = t->data;
  uv_poll_start(&a->poll, UV_READABLE, on_readable);
}

/* Accepts up to max queued connections, handing each to on_accept. 0:
 * the queue is empty (or max was reached); else the errno that stopped
 * it, an error about the listener rather than one connection. */
static int accept_queued(ly_acceptor_t *a, int max) {
  for (int i = 0; i < max && !a->closing; i++) {
    int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      a->on_accept(a, fd);
      continue;
    }
    switch (errno) {
    case EAGAIN:
      return 0;
    case ECONNABORTED: /* about that one connection only (accept(2)) */
    case EINTR:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
      continue;
    default:
      return errno;
    }
  }
  return 0;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  ly_acceptor_t *a = h->data;
  (void)status;
  (void)events;
  int err = accept_queued(a, ACCEPT_BATCH);
  if (err != 0) {
    /* Out of descriptors or memory (or worse): retrying at once would
     * fail again, and a level-triggered poll would spin on it. */
    uv_poll_stop(&a->poll);
    uv_timer_start(&a->pause, on_pause_end, LY_ACCEPT_PAUSE_MS, 0);
    a->on_accept(a, uv_translate_sys_error(err));
  }
}

int ly_acceptor_start(ly_acceptor_t *a, uv_loop_t *loop, int fd,
                      ly_accept_cb on_accept) {
  a->fd = fd;
  a->on_accept = on_accept;
  a->closed = NULL;
  a->open_handles = 0;
  a->closing = 0;
  int rc = uv_poll_init(loop, &a->poll, fd);
  if (rc != 0) {
    close(fd);
    a->fd = -1;
    return rc;
  }
  uv_timer_init(loop, &a->pause);
  a->poll.data = a->pause.data = a;
  a->open_handles = 2;
  uv_poll_start(&a->poll, UV_READABLE,
                on_readable); /* fails on bad args only */
  return 0;
}

/* Bounds the sweep: a listen backlog holds at most somaxconn entries. */
#define SWEEP_MAX 65536

void ly_acceptor_sweep(ly_acceptor_t *a) {
  if (a->fd >= 0 && a->open_handles > 0)
    accept_queued(a, SWEEP_MAX); /* an error: nothing more can be had */
}

/* The socket is closed only once its poll handle is (libuv's rule). */
static void handle_closed(uv_handle_t *h) {
  ly_acceptor_t *a = h->data;
  if (--a->open_handles > 0)
    return;
  close(a->fd);
  a->fd = -1;
  if (a->closed)
    a->closed(a);
}

void ly_acceptor_close(ly_acceptor_t *a, void (*closed)(ly_acceptor_t *a)) {
  if (a->closing)
    return;
  a->closing = 1;
  a->closed = closed;
  if (a->open_handles == 0) { /* never started */
    if (a->fd >= 0)
      close(a->fd);
    a->fd = -1;
    if (closed)
      closed(a);
    return;
  }
  uv_close((uv_handle_t *)&a->poll, handle_closed);
  uv_close((uv_handle_t *)&a->pause, handle_closed);
}

unsigned ly_acceptor_port(const ly_acceptor_t *a) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (a->fd < 0 || getsockname(a->fd, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return ntohs(ss.ss_family == AF_INET6
                   ? ((struct sockaddr_in6 *)&ss)->sin6_port
                   : ((struct sockaddr_in *)&ss)->sin_port);
}

unsigned ly_fd_limit_raise(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur > 1u << 30 ? 1u << 30 : (unsigned)rl.rlim_cur;
}
