/* The data plane: worker threads, each with its own libuv loop and its own
 * listening sockets (SO_REUSEPORT: the kernel spreads connections), and
 * the proxy connections they carry. No locks on the data path: a worker
 * hears of a new identity through its mailbox (a uv_async_t and a slot
 * under a mutex touched only by publish and the worker's wake-up), and
 * swaps its own TLS context pointers; connections keep the context they
 * started with until they end.
 */
#ifndef LANYARD_DATAPLANE_H
#define LANYARD_DATAPLANE_H

#include "lanyard/config.h"
#include "lanyard/stats.h"
#include "lanyard/tls.h"

#include <stdint.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Limits and timeouts (milliseconds). Defaults in ly_dataplane_defaults. */
typedef struct {
  uint64_t connect_timeout_ms;   /* upstream TCP connect */
  uint64_t handshake_timeout_ms; /* TLS handshake */
  uint64_t idle_timeout_ms;      /* no bytes either way */
  uint64_t drain_timeout_ms;     /* SIGTERM: how long connections may finish */
  uint64_t sniff_timeout_ms;     /* permissive: silence this long means a
                                    plaintext client (server speaks first) */
  unsigned max_connections;      /* proxied connections, all workers */
  size_t buffer_limit;           /* bytes queued toward one side before
                                    reading from the other side pauses */
} ly_dataplane_limits_t;

void ly_dataplane_defaults(ly_dataplane_limits_t *l);

typedef struct ly_dataplane_s ly_dataplane_t;

/* Opens every listener (errors name the listener), then starts the
 * workers. The config must outlive the data plane. */
int ly_dataplane_start(const ly_agent_config_t *cfg,
                       const ly_dataplane_limits_t *limits,
                       ly_dataplane_t **out, char *err, size_t errlen);

/* New contexts for new connections (NULL: no identity; connections are
 * refused with no_identity). Takes its own references. Any thread. */
void ly_dataplane_publish(ly_dataplane_t *dp, ly_tls_pair_t *pair);

/* Stops accepting; established connections may finish until the drain
 * timeout, then are closed. Returns once every worker has stopped. */
void ly_dataplane_stop(ly_dataplane_t *dp);

/* Connections open right now, all workers (for tests and status). */
unsigned ly_dataplane_active(const ly_dataplane_t *dp);

/* The workers' statistics, summed: direction counters into acc (zeroed by
 * the caller), and up to cap peer identities into peers[0..*npeers). Peer
 * IDs stay valid until ly_dataplane_stop. Control thread. */
void ly_dataplane_stats(const ly_dataplane_t *dp,
                        ly_dir_stats_t acc[LY_DIR__COUNT],
                        ly_peer_total_t *peers, size_t *npeers, size_t cap);

/* A summary line (mtls_refusals_suppressed) with how many refusal lines
 * the log limiter left out since a line last said so: a flood that stops
 * leaves no later refusal line to carry the count. Control thread, once
 * a second. */
void ly_dataplane_log_summary(ly_dataplane_t *dp);

#endif
