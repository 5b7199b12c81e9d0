/* Data-path statistics: per-worker counters, their sums, and the sliding
 * success-rate windows. See lanyard/stats.h. */
#include "lanyard/stats.h"

#include <stdlib.h>
#include <string.h>

const double ly_hs_bucket_le[LY_HS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

const uint64_t ly_window_ms[LY_NWINDOWS] = {60000, 300000, 3600000};
const char *const ly_window_name[LY_NWINDOWS] = {"1m", "5m", "60m"};

const char *ly_dir_name(ly_dir_t d) {
  return d == LY_DIR_INBOUND ? "inbound" : "outbound";
}

static uint64_t load(const uint64_t *c) {
  return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The slot for a peer identity, or NULL when every slot is taken. */
static ly_peer_stat_t *peer_slot(ly_stats_t *s, const char *id) {
  for (size_t i = 0; i < LY_PEER_SLOTS; i++) {
    ly_peer_stat_t *p = &s->peers[i];
    if (!p->id) {
      char *copy = strdup(id);
      if (!copy)
        return NULL;
      __atomic_store_n(&p->id, copy, __ATOMIC_RELEASE);
      return p;
    }
    if (strcmp(p->id, id) == 0)
      return p;
  }
  return NULL;
}

void ly_stats_attempt(ly_stats_t *s, ly_dir_t d, ly_reason_t reason,
                      uint64_t handshake_ns, int resumed, const char *peer_id) {
  ly_dir_stats_t *ds = &s->dir[d];
  int ok = reason == LY_REASON_NONE;
  if (ok) {
    ly_stat_add(&ds->mtls_ok, 1);
    if (resumed)
      ly_stat_add(&ds->resumed, 1);
    /* Only completed handshakes have a duration worth a histogram. */
    double secs = (double)handshake_ns / 1e9;
    size_t b = 0;
    while (b < LY_HS_BUCKETS && secs > ly_hs_bucket_le[b])
      b++;
    ly_stat_add(&ds->hs_bucket[b], 1);
    ly_stat_add(&ds->hs_sum_ns, handshake_ns);
  } else {
    ly_stat_add(&ds->mtls_failed, 1);
    ly_stat_add(&ds->failures[reason], 1);
  }
  ly_peer_stat_t *p = peer_slot(s, peer_id ? peer_id : "");
  if (!p) {
    ly_stat_add(&s->peers_others[d], 1);
    return;
  }
  ly_stat_add(&p->attempts[d], 1);
  if (!ok)
    ly_stat_add(&p->failures[d], 1);
}

void ly_stats_free(ly_stats_t *s) {
  for (size_t i = 0; i < LY_PEER_SLOTS; i++) {
    free(s->peers[i].id);
    s->peers[i].id = NULL;
  }
}

void ly_stats_sum(ly_dir_stats_t acc[LY_DIR__COUNT], const ly_stats_t *src) {
  _Static_assert(sizeof(ly_dir_stats_t) % sizeof(uint64_t) == 0,
                 "ly_dir_stats_t holds only uint64_t counters");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    uint64_t *to = (uint64_t *)&acc[d];
    const uint64_t *from = (const uint64_t *)&src->dir[d];
    for (size_t i = 0; i < sizeof(ly_dir_stats_t) / sizeof(uint64_t); i++)
      to[i] += load(&from[i]);
  }
}

void ly_stats_peers(const ly_stats_t *src, ly_peer_total_t *peers, size_t *n,
                    size_t cap) {
  for (size_t i = 0; i < LY_PEER_SLOTS; i++) {
    const char *id = __atomic_load_n(&src->peers[i].id, __ATOMIC_ACQUIRE);
    if (!id)
      break;
    size_t j = 0;
    while (j < *n && strcmp(peers[j].id, id) != 0)
      j++;
    if (j == *n) {
      if (*n == cap)
        continue;
      memset(&peers[j], 0, sizeof(peers[j]));
      peers[j].id = id;
      (*n)++;
    }
    for (int d = 0; d < LY_DIR__COUNT; d++) {
      peers[j].attempts[d] += load(&src->peers[i].attempts[d]);
      peers[j].failures[d] += load(&src->peers[i].failures[d]);
    }
  }
}

/* ---- windows ------------------------------------------------------------- */

void ly_windows_init(ly_windows_t *w, uint64_t now_ms) {
  memset(w, 0, sizeof(*w));
  w->at_ms[0] = now_ms;
  w->head = 1;
  w->count = 1;
}

static size_t newest(const ly_windows_t *w) {
  return (w->head + LY_WINDOW_SAMPLES - 1) % LY_WINDOW_SAMPLES;
}

void ly_windows_sample(ly_windows_t *w, uint64_t now_ms,
                       const ly_rate_t now[LY_DIR__COUNT]) {
  if (now_ms < w->at_ms[newest(w)] + LY_WINDOW_STEP_MS)
    return;
  w->at_ms[w->head] = now_ms;
  memcpy(w->rate[w->head], now, sizeof(w->rate[0]));
  w->head = (w->head + 1) % LY_WINDOW_SAMPLES;
  if (w->count < LY_WINDOW_SAMPLES)
    w->count++;
}

void ly_windows_get(const ly_windows_t *w, uint64_t now_ms,
                    const ly_rate_t now[LY_DIR__COUNT], uint64_t window_ms,
                    ly_rate_t out[LY_DIR__COUNT]) {
  /* From the newest sample back to the first one old enough; the oldest
   * kept sample when none is (a young agent: it is the zero sample). */
  size_t base = newest(w);
  for (size_t k = 0; k < w->count; k++) {
    size_t i = (w->head + LY_WINDOW_SAMPLES - 1 - k) % LY_WINDOW_SAMPLES;
    base = i;
    if (now_ms >= w->at_ms[i] + window_ms)
      break;
  }
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    out[d].attempts = now[d].attempts - w->rate[base][d].attempts;
    out[d].successes = now[d].successes - w->rate[base][d].successes;
  }
}
