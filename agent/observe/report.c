/* Reports to the CA: every report.interval, the agent's mTLS counters, its
 * busiest peers and its certificate, over the same mTLS connection as its
 * renewals. The CA files the report under the identity of the client
 * certificate, so an agent can only ever report for itself. A report that
 * fails is not retried: the next one carries the newer totals anyway; the
 * failure is logged (rate-limited) and shown in /status. */
#include "observe/observe.h"

#include "lanyard/log.h"
#include "lanyard/rpc.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <string.h>

#define REPORT_TIMEOUT_MS 5000

static void on_reported(int code, const char *message,
                        const ProtobufCMessage *resp, void *data) {
  ly_observer_t *o = data;
  o->report_in_flight = 0;
  if (code == LY_RPC_OK)
    ly_upstream_ok(&o->report, "report");
  else if (code != LY_RPC_CANCELLED)
    ly_upstream_failed(&o->report, "report", uv_now(o->loop),
                       ly_rpc_code_name(code), message);
}

typedef struct {
  Lanyard__Ca__V1__ReportRequest req;
  Lanyard__Ca__V1__DirectionReport dir[LY_DIR__COUNT];
  Lanyard__Ca__V1__RateWindow win[LY_DIR__COUNT][LY_NWINDOWS];
  Lanyard__Ca__V1__RateWindow *winp[LY_DIR__COUNT][LY_NWINDOWS];
  Lanyard__Ca__V1__ReasonCount reason[LY_REASON__COUNT];
  Lanyard__Ca__V1__ReasonCount *reasonp[LY_REASON__COUNT];
  Lanyard__Ca__V1__PeerCount peer[LY_REPORT_TOP_PEERS * LY_DIR__COUNT];
  Lanyard__Ca__V1__PeerCount *peerp[LY_REPORT_TOP_PEERS * LY_DIR__COUNT];
  char root[LY_REPORT_ROOTS][65];
  char *rootp[LY_REPORT_ROOTS];
} report_t;

static void fill(report_t *r, ly_observer_t *o, const ly_obs_snapshot_t *s) {
  lanyard__ca__v1__report_request__init(&r->req);
  r->req.spiffe_id = (char *)o->cfg->spiffe_id;
  r->req.instance = o->instance;
  r->req.interval_seconds = (uint32_t)(o->cfg->report.interval_ms / 1000);
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    Lanyard__Ca__V1__DirectionReport *dr = &r->dir[d];
    lanyard__ca__v1__direction_report__init(dr);
    dr->attempts = s->total[d].attempts;
    dr->successes = s->total[d].successes;
    for (int w = 0; w < LY_NWINDOWS; w++) {
      Lanyard__Ca__V1__RateWindow *rw = &r->win[d][w];
      lanyard__ca__v1__rate_window__init(rw);
      rw->seconds = (uint32_t)(ly_window_ms[w] / 1000);
      rw->attempts = s->window[w][d].attempts;
      rw->successes = s->window[w][d].successes;
      r->winp[d][w] = rw;
    }
    dr->n_windows = LY_NWINDOWS;
    dr->windows = r->winp[d];
  }
  r->req.inbound = &r->dir[LY_DIR_INBOUND];
  r->req.outbound = &r->dir[LY_DIR_OUTBOUND];
  size_t n = 0;
  for (int reason = LY_REASON_NONE + 1; reason < LY_REASON__COUNT; reason++) {
    uint64_t in = s->dir[LY_DIR_INBOUND].failures[reason];
    uint64_t out = s->dir[LY_DIR_OUTBOUND].failures[reason];
    if (!in && !out)
      continue;
    lanyard__ca__v1__reason_count__init(&r->reason[n]);
    r->reason[n].reason = (char *)ly_reason_name(reason);
    r->reason[n].inbound = in;
    r->reason[n].outbound = out;
    r->reasonp[n] = &r->reason[n];
    n++;
  }
  r->req.n_failures = n;
  r->req.failures = r->reasonp;
  n = 0;
  for (size_t i = 0; i < s->npeers && i < LY_REPORT_TOP_PEERS; i++)
    for (int d = 0; d < LY_DIR__COUNT; d++) {
      if (!s->peers[i].attempts[d])
        continue;
      Lanyard__Ca__V1__PeerCount *pc = &r->peer[n];
      lanyard__ca__v1__peer_count__init(pc);
      pc->spiffe_id = (char *)s->peers[i].id;
      pc->inbound = d == LY_DIR_INBOUND;
      pc->attempts = s->peers[i].attempts[d];
      pc->failures = s->peers[i].failures[d];
      r->peerp[n++] = pc;
    }
  r->req.n_top_peers = n;
  r->req.top_peers = r->peerp;
  r->req.not_after = s->id.info->not_after;
  r->req.serial = (char *)s->id.info->serial_hex;
  r->req.next_rotation = s->id.renew_at;
  r->req.rotations = s->id.rotations_ok;
  r->req.hostname = o->hostname;
  r->req.agent_version = LANYARD_VERSION;
  /* What this agent trusts now, so a root rotation can be followed. */
  n = 0;
  for (size_t i = 0; i < s->id.bundle->n && n < LY_REPORT_ROOTS; i++)
    if (ly_der_sha256_hex(s->id.bundle->certs[i].der,
                          s->id.bundle->certs[i].len, r->root[n]) == 0) {
      r->rootp[n] = r->root[n];
      n++;
    }
  r->req.n_bundle_root_sha256 = n;
  r->req.bundle_root_sha256 = r->rootp;
}

void ly_report_maybe_send(ly_observer_t *o) {
  uint64_t now = uv_now(o->loop);
  if (o->report_in_flight ||
      now < o->last_report_ms + o->cfg->report.interval_ms)
    return;
  ly_obs_snapshot_t s;
  ly_observer_snapshot(o, &s);
  if (!s.id.have) /* reports travel over mTLS: they need an SVID */
    return;
  o->last_report_ms = now;
  report_t r;
  fill(&r, o, &s);
  /* The CA refuses reports beyond LY_REPORT_MAX: long peer IDs go first. */
  while (r.req.n_top_peers > 0 &&
         protobuf_c_message_get_packed_size(&r.req.base) > LY_REPORT_MAX)
    r.req.n_top_peers--;
  /* Set before the call: `done` may run inside it (no connection). */
  o->report_in_flight = 1;
  if (ly_rpc_client_call(s.id.rpc, "Report", &r.req.base, REPORT_TIMEOUT_MS,
                         on_reported, o) != 0)
    o->report_in_flight = 0;
}
