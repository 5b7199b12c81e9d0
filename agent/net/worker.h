/* Internal to the data plane: a worker and the listeners it serves. */
#ifndef LANYARD_NET_WORKER_H
#define LANYARD_NET_WORKER_H

#include "lanyard/acceptor.h"
#include "lanyard/dataplane.h"
#include "lanyard/log.h"
#include "lanyard/stats.h"

#include <stdatomic.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct ly_worker_s ly_worker_t;
typedef struct ly_proxy_s ly_proxy_t;

typedef enum {
  LY_LISTEN_SERVER,   /* explicit: mTLS in, plaintext to `forward` */
  LY_LISTEN_CLIENT,   /* explicit: plaintext in, mTLS to `connect` */
  LY_LISTEN_INBOUND,  /* captured inbound: mTLS in, to the original port */
  LY_LISTEN_OUTBOUND, /* captured outbound: to the original destination */
} ly_listen_kind_t;

/* A listener, resolved once at start. */
typedef struct {
  ly_listen_kind_t kind;
  const char *name;
  ly_hostport_t listen;
  struct sockaddr_storage target; /* explicit: forward or connect */
  const char *const *allow;       /* server: NULL when any ID goes */
  size_t nallow;
  const char *expect; /* client: the server's expected ID, or NULL */
} ly_listener_t;

/* The newest TLS session with a destination, for resumption, and the
 * identity the destination proved when it was made (and until when its
 * certificate was valid). Keyed by listener and address, so each
 * listener's policy decides about its own sessions, and checked again
 * before every offer (proxy.c). Direct-mapped: a miss costs one full
 * handshake. */
#define LY_SESSION_SLOTS 64
typedef struct {
  const void *listener;
  struct sockaddr_storage addr;
  WOLFSSL_SESSION *session;
  char *peer;
  int64_t peer_not_after;
} ly_session_slot_t;

/* Per worker, per listener: the worker's own listening socket. */
typedef struct {
  ly_acceptor_t acceptor;
  ly_worker_t *worker;
  const ly_listener_t *listener;
} ly_worker_listener_t;

struct ly_worker_s {
  struct ly_dataplane_s *dp;
  unsigned index;
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t drain_timer;
  /* mailbox: written by publish/stop under lock, read on wake */
  uv_mutex_t lock;
  ly_tls_pair_t *next;
  int has_next, stop_requested;
  /* loop-thread only */
  ly_tls_pair_t *pair; /* what new connections use; NULL: no identity */
  ly_worker_listener_t *listeners;
  size_t nlisteners;
  ly_proxy_t *proxies; /* every live proxy connection, for drain */
  ly_session_slot_t sessions[LY_SESSION_SLOTS];
  int draining;
  ly_stats_t stats;     /* written here, read by the control thread */
  char read_buf[65536]; /* plaintext reads: wolfSSL copies them at once */
};

struct ly_dataplane_s {
  const ly_agent_config_t *cfg;
  ly_dataplane_limits_t limits;
  ly_listener_t *listeners;
  size_t nlisteners;
  ly_worker_t *workers;
  unsigned nworkers;
  atomic_uint active;            /* proxied connections, all workers */
  ly_log_limiter_t refusal_log;  /* mtls_refused lines, all workers */
  ly_log_limiter_t overload_log; /* connection_refused lines */
};

/* worker.c: the session slot for a listener's destination (never NULL). */
ly_session_slot_t *ly_worker_session(ly_worker_t *w, const void *listener,
                                     const struct sockaddr_storage *addr);
/* worker.c: a proxy of this worker has been freed. */
void ly_worker_proxy_gone(ly_worker_t *w);
/* proxy.c: a new connection accepted by a worker listener; takes fd. */
void ly_proxy_accept(ly_worker_listener_t *wl, int fd);
/* proxy.c: close every connection of the worker (end of drain). */
void ly_proxy_close_all(ly_worker_t *w);

#endif
