/* The agent's observability: what its counters add up to, as Prometheus
 * metrics, as the /status document, and as reports to the CA. Runs on the
 * control loop; reads the workers' counters without stopping them. */
#ifndef LANYARD_OBSERVE_OBSERVE_H
#define LANYARD_OBSERVE_OBSERVE_H

#include "lanyard/config.h"
#include "lanyard/dataplane.h"
#include "lanyard/identity.h"
#include "lanyard/stats.h"

#include <uv.h>

/* Peer identities a snapshot keeps (reports send the top 10 of them). */
#define LY_OBS_PEERS 64
#define LY_REPORT_TOP_PEERS 10
#define LY_REPORT_ROOTS 16 /* bundle fingerprints a report carries */

typedef struct {
  uv_loop_t *loop;
  const ly_agent_config_t *cfg;
  ly_identity_t *identity;
  ly_dataplane_t *dp; /* NULL once drained */
  ly_windows_t windows;
  uv_timer_t tick; /* samples the windows, sends reports */
  uint64_t started_ms, last_report_ms;
  int report_in_flight;
  char hostname[256];
  char instance[320];   /* host name and pid: tells replicas apart */
  ly_upstream_t report; /* how reports to the CA fare */
} ly_observer_t;

/* Everything the views show, read at one moment. */
typedef struct {
  ly_dir_stats_t dir[LY_DIR__COUNT];
  ly_peer_total_t peers[LY_OBS_PEERS]; /* busiest first */
  size_t npeers;
  ly_rate_t total[LY_DIR__COUNT];
  ly_rate_t window[LY_NWINDOWS][LY_DIR__COUNT];
  ly_identity_view_t id;
  int64_t now_s;
} ly_obs_snapshot_t;

void ly_observer_init(ly_observer_t *o, uv_loop_t *loop,
                      const ly_agent_config_t *cfg, ly_identity_t *identity,
                      ly_dataplane_t *dp);
void ly_observer_stop(ly_observer_t *o); /* closes the timer */
void ly_observer_snapshot(ly_observer_t *o, ly_obs_snapshot_t *s);

/* Prometheus text and the /status JSON, malloc'd (NULL: out of memory). */
char *ly_observer_metrics(ly_observer_t *o, size_t *len);
char *ly_observer_status_json(ly_observer_t *o, size_t *len);

/* report.c: sends a report if one is due (called every tick). */
void ly_report_maybe_send(ly_observer_t *o);

#endif
