/* Data-path statistics: what /metrics, /status and the CA report are made
 * of.
 *
 * Each worker owns one ly_stats_t and is its only writer; the control
 * thread reads every worker's copy and sums them. Counters are plain
 * uint64_t written with relaxed atomic stores (one writer: no read-modify-
 * write, no lock prefix) and read with relaxed atomic loads, so a reader
 * sees each counter whole, never torn; counters read together may be a
 * few events apart, which is fine for monitoring.
 *
 * An mTLS attempt is a connection on which mutual TLS was required: every
 * inbound connection in strict mode (plaintext ones fail with
 * plaintext_rejected), every TLS inbound connection in permissive mode,
 * and every outbound connection to a meshed destination. It succeeds when
 * the handshake completes with an authorized peer, and otherwise fails
 * with exactly one reason of ly_reason_t. Plaintext let through by
 * permissive mode and unmeshed passthrough are connections, not attempts.
 */
#ifndef LANYARD_STATS_H
#define LANYARD_STATS_H

#include "lanyard/peer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { LY_DIR_INBOUND = 0, LY_DIR_OUTBOUND, LY_DIR__COUNT } ly_dir_t;

const char *ly_dir_name(ly_dir_t d); /* "inbound", "outbound" */

/* Handshake duration buckets (upper bounds, seconds); one more for +Inf. */
#define LY_HS_BUCKETS 14
extern const double ly_hs_bucket_le[LY_HS_BUCKETS];

/* One direction's counters. Only uint64_t members: ly_stats_sum adds them
 * member by member. */
typedef struct {
  uint64_t mtls_ok, mtls_failed;         /* attempts, by result */
  uint64_t failures[LY_REASON__COUNT];   /* failed attempts, by reason */
  uint64_t resumed;                      /* successes by session resumption */
  uint64_t conns_tls, conns_plain;       /* accepted connections */
  uint64_t opened, closed;               /* active = opened - closed */
  uint64_t refused_limit;                /* closed at once: connection cap */
  uint64_t accept_failed;                /* accept(2) out of fds or memory */
  uint64_t bytes_rx, bytes_tx;           /* from / to the peer side */
  uint64_t hs_bucket[LY_HS_BUCKETS + 1]; /* per bucket, not cumulative */
  uint64_t hs_sum_ns;
} ly_dir_stats_t;

/* Attempts per peer identity, for the report's top peers. The first
 * LY_PEER_SLOTS distinct identities a worker sees get a slot for the
 * worker's lifetime; later ones are counted in `others`. The empty ID
 * stands for peers that proved no identity. */
#define LY_PEER_SLOTS 32
typedef struct {
  char *id; /* published once, with release order; never changes */
  uint64_t attempts[LY_DIR__COUNT], failures[LY_DIR__COUNT];
} ly_peer_stat_t;

typedef struct {
  ly_dir_stats_t dir[LY_DIR__COUNT];
  ly_peer_stat_t peers[LY_PEER_SLOTS];
  uint64_t peers_others[LY_DIR__COUNT];
} ly_stats_t;

/* ---- writers (the owning worker only) ---------------------------------- */

static inline void ly_stat_add(uint64_t *c, uint64_t n) {
  __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
                   __ATOMIC_RELAXED);
}

/* The end of an mTLS attempt: reason LY_REASON_NONE for success. peer_id
 * may be "" or NULL when the peer proved no identity. */
void ly_stats_attempt(ly_stats_t *s, ly_dir_t d, ly_reason_t reason,
                      uint64_t handshake_ns, int resumed, const char *peer_id);

/* Frees the peer IDs (after the worker has stopped). */
void ly_stats_free(ly_stats_t *s);

/* ---- readers ------------------------------------------------------------ */

/* Adds a consistent-enough copy of `src`'s direction counters into `acc`
 * (which the caller zeroed). */
void ly_stats_sum(ly_dir_stats_t acc[LY_DIR__COUNT], const ly_stats_t *src);

/* Per peer identity, summed over workers; bounded by the caller's array. */
typedef struct {
  const char *id; /* points into a worker's slot: valid while it runs */
  uint64_t attempts[LY_DIR__COUNT], failures[LY_DIR__COUNT];
} ly_peer_total_t;

/* Merges `src`'s peers into peers[0..*n) (capacity cap; identities beyond
 * it are dropped). */
void ly_stats_peers(const ly_stats_t *src, ly_peer_total_t *peers, size_t *n,
                    size_t cap);

/* ---- success-rate windows ------------------------------------------------ */

typedef struct {
  uint64_t attempts, successes;
} ly_rate_t;

/* Sliding windows over cumulative attempts: samples every
 * LY_WINDOW_STEP_MS, kept for the longest window. A window of W ms counts
 * what happened since the newest sample at least W old (so between W and
 * W + one step), or since the agent started when it is younger than W. */
#define LY_WINDOW_STEP_MS 5000u
#define LY_WINDOW_MAX_MS (60u * 60u * 1000u)
#define LY_WINDOW_SAMPLES (LY_WINDOW_MAX_MS / LY_WINDOW_STEP_MS + 2)

typedef struct {
  uint64_t at_ms[LY_WINDOW_SAMPLES];
  ly_rate_t rate[LY_WINDOW_SAMPLES][LY_DIR__COUNT];
  size_t head, count; /* ring: newest at head - 1 */
} ly_windows_t;

/* Starts with a zero sample at now_ms. */
void ly_windows_init(ly_windows_t *w, uint64_t now_ms);
/* Records the cumulative counts if a step has passed since the last. */
void ly_windows_sample(ly_windows_t *w, uint64_t now_ms,
                       const ly_rate_t now[LY_DIR__COUNT]);
/* What happened in the last window_ms, given the cumulative counts now. */
void ly_windows_get(const ly_windows_t *w, uint64_t now_ms,
                    const ly_rate_t now[LY_DIR__COUNT], uint64_t window_ms,
                    ly_rate_t out[LY_DIR__COUNT]);

/* The windows every view shows: 1, 5 and 60 minutes. */
#define LY_NWINDOWS 3
extern const uint64_t ly_window_ms[LY_NWINDOWS];
extern const char *const ly_window_name[LY_NWINDOWS]; /* "1m", "5m", "60m" */

#endif
