/* The agent's counters as metrics and as the /status document. */
#include "observe/observe.h"

#include "lanyard/prom.h"
#include "lanyard/rpc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 1000

static void totals(const ly_dir_stats_t dir[LY_DIR__COUNT],
                   ly_rate_t out[LY_DIR__COUNT]) {
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    out[d].attempts = dir[d].mtls_ok + dir[d].mtls_failed;
    out[d].successes = dir[d].mtls_ok;
  }
}

/* Opened minus closed, never below zero: the two counters are read one
 * after the other while the worker goes on. */
static uint64_t active(const ly_dir_stats_t *d) {
  return d->opened > d->closed ? d->opened - d->closed : 0;
}

static void read_counters(ly_observer_t *o, ly_dir_stats_t dir[LY_DIR__COUNT],
                          ly_peer_total_t *peers, size_t *npeers) {
  memset(dir, 0, sizeof(ly_dir_stats_t) * LY_DIR__COUNT);
  *npeers = 0;
  if (o->dp)
    ly_dataplane_stats(o->dp, dir, peers, npeers, LY_OBS_PEERS);
}

static void on_tick(uv_timer_t *t) {
  ly_observer_t *o = t->data;
  ly_dir_stats_t dir[LY_DIR__COUNT];
  ly_peer_total_t peers[LY_OBS_PEERS];
  size_t npeers;
  ly_rate_t now[LY_DIR__COUNT];
  read_counters(o, dir, peers, &npeers);
  totals(dir, now);
  ly_windows_sample(&o->windows, uv_now(o->loop), now);
  if (o->dp)
    ly_dataplane_log_summary(o->dp);
  ly_report_maybe_send(o);
}

void ly_observer_init(ly_observer_t *o, uv_loop_t *loop,
                      const ly_agent_config_t *cfg, ly_identity_t *identity,
                      ly_dataplane_t *dp) {
  memset(o, 0, sizeof(*o));
  o->loop = loop;
  o->cfg = cfg;
  o->identity = identity;
  o->dp = dp;
  o->started_ms = uv_now(loop);
  ly_windows_init(&o->windows, o->started_ms);
  snprintf(o->hostname, sizeof(o->hostname), "agent");
  gethostname(o->hostname, sizeof(o->hostname) - 1);
  /* The instance name goes into the CA's table as printable ASCII of at
   * most 64 bytes: a long host name is cut. */
  snprintf(o->instance, sizeof(o->instance), "%.50s/%ld", o->hostname,
           (long)getpid());
  uv_timer_init(loop, &o->tick);
  o->tick.data = o;
  uv_timer_start(&o->tick, on_tick, TICK_MS, TICK_MS);
}

void ly_observer_stop(ly_observer_t *o) {
  uv_close((uv_handle_t *)&o->tick, NULL);
}

static uint64_t peer_volume(const ly_peer_total_t *p) {
  return p->attempts[LY_DIR_INBOUND] + p->attempts[LY_DIR_OUTBOUND];
}

static int busiest_first(const void *a, const void *b) {
  uint64_t va = peer_volume(a), vb = peer_volume(b);
  return va < vb ? 1 : va > vb ? -1 : 0;
}

void ly_observer_snapshot(ly_observer_t *o, ly_obs_snapshot_t *s) {
  read_counters(o, s->dir, s->peers, &s->npeers);
  qsort(s->peers, s->npeers, sizeof(s->peers[0]), busiest_first);
  totals(s->dir, s->total);
  uint64_t now_ms = uv_now(o->loop);
  for (int w = 0; w < LY_NWINDOWS; w++)
    ly_windows_get(&o->windows, now_ms, s->total, ly_window_ms[w],
                   s->window[w]);
  ly_identity_view(o->identity, &s->id);
  s->now_s = (int64_t)time(NULL);
}

/* ---- /metrics -------------------------------------------------------------
 */

static const char *const rpc_methods[] = {"Sign", "TrustBundle", "Report"};

static void metrics_mtls(ly_buf_t *b, const ly_obs_snapshot_t *s) {
  char l[160];
  ly_prom_family(b, "lanyard_mtls_handshakes_total", "counter",
                 "mTLS attempts by direction and result (success, failure).");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\",result=\"success\"",
             ly_dir_name(d));
    ly_prom_u64(b, "lanyard_mtls_handshakes_total", l, s->dir[d].mtls_ok);
    snprintf(l, sizeof(l), "direction=\"%s\",result=\"failure\"",
             ly_dir_name(d));
    ly_prom_u64(b, "lanyard_mtls_handshakes_total", l, s->dir[d].mtls_failed);
  }
  ly_prom_family(b, "lanyard_mtls_handshake_failures_total", "counter",
                 "Failed mTLS attempts by direction and reason.");
  for (int d = 0; d < LY_DIR__COUNT; d++)
    for (int r = LY_REASON_NONE + 1; r < LY_REASON__COUNT; r++) {
      snprintf(l, sizeof(l), "direction=\"%s\",reason=\"%s\"", ly_dir_name(d),
               ly_reason_name(r));
      ly_prom_u64(b, "lanyard_mtls_handshake_failures_total", l,
                  s->dir[d].failures[r]);
    }
  ly_prom_family(b, "lanyard_mtls_resumptions_total", "counter",
                 "Successful mTLS attempts that resumed a TLS session.");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_mtls_resumptions_total", l, s->dir[d].resumed);
  }
  ly_prom_family(b, "lanyard_mtls_handshake_duration_seconds", "histogram",
                 "Duration of completed mTLS handshakes.");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\"", ly_dir_name(d));
    ly_prom_histogram(b, "lanyard_mtls_handshake_duration_seconds", l,
                      ly_hs_bucket_le, s->dir[d].hs_bucket, LY_HS_BUCKETS,
                      (double)s->dir[d].hs_sum_ns / 1e9);
  }
}

static void metrics_connections(ly_buf_t *b, const ly_obs_snapshot_t *s) {
  char l[160];
  ly_prom_family(b, "lanyard_connections_active", "gauge",
                 "Connections open now, handshaking ones included.");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_connections_active", l, active(&s->dir[d]));
  }
  ly_prom_family(b, "lanyard_connections_total", "counter",
                 "Connections proxied, by whether the peer side was TLS.");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\",tls=\"true\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_connections_total", l, s->dir[d].conns_tls);
    snprintf(l, sizeof(l), "direction=\"%s\",tls=\"false\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_connections_total", l, s->dir[d].conns_plain);
  }
  ly_prom_family(b, "lanyard_connections_refused_total", "counter",
                 "Connections closed on accept, before any TLS: at the "
                 "connection cap (limit), or when accept failed for want "
                 "of descriptors or memory (accept_failed).");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\",reason=\"limit\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_connections_refused_total", l,
                s->dir[d].refused_limit);
    snprintf(l, sizeof(l), "direction=\"%s\",reason=\"accept_failed\"",
             ly_dir_name(d));
    ly_prom_u64(b, "lanyard_connections_refused_total", l,
                s->dir[d].accept_failed);
  }
  ly_prom_family(b, "lanyard_bytes_total", "counter",
                 "Payload bytes received from (rx) and sent to (tx) the "
                 "peer side.");
  for (int d = 0; d < LY_DIR__COUNT; d++) {
    snprintf(l, sizeof(l), "direction=\"%s\",flow=\"rx\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_bytes_total", l, s->dir[d].bytes_rx);
    snprintf(l, sizeof(l), "direction=\"%s\",flow=\"tx\"", ly_dir_name(d));
    ly_prom_u64(b, "lanyard_bytes_total", l, s->dir[d].bytes_tx);
  }
}

static void metrics_identity(ly_buf_t *b, const ly_obs_snapshot_t *s) {
  char l[160], code[32];
  ly_prom_family(b, "lanyard_identity_ready", "gauge",
                 "1 while the agent holds a valid SVID.");
  ly_prom_u64(b, "lanyard_identity_ready", NULL, (uint64_t)s->id.have);
  if (s->id.have) {
    ly_prom_family(b, "lanyard_certificate_expiry_timestamp_seconds", "gauge",
                   "When the current SVID expires (unix time).");
    ly_prom_u64(b, "lanyard_certificate_expiry_timestamp_seconds", NULL,
                (uint64_t)s->id.info->not_after);
    ly_prom_family(b, "lanyard_certificate_next_rotation_timestamp_seconds",
                   "gauge", "When the current SVID will be renewed.");
    ly_prom_u64(b, "lanyard_certificate_next_rotation_timestamp_seconds", NULL,
                (uint64_t)s->id.renew_at);
  }
  ly_prom_family(b, "lanyard_certificate_rotations_total", "counter",
                 "SVID renewals by result.");
  ly_prom_u64(b, "lanyard_certificate_rotations_total", "result=\"success\"",
              s->id.rotations_ok);
  ly_prom_u64(b, "lanyard_certificate_rotations_total", "result=\"failure\"",
              s->id.rotations_failed);
  ly_prom_family(b, "lanyard_ca_requests_total", "counter",
                 "Calls to the CA by method and result (a status code).");
  for (size_t m = 0; m < sizeof(rpc_methods) / sizeof(*rpc_methods); m++)
    for (int c = 0; c < LY_RPC_NCODES; c++) {
      uint64_t n = ly_rpc_client_results(s->id.rpc, rpc_methods[m], c);
      if (n == 0 && c != LY_RPC_OK)
        continue; /* only codes that happened, and always ok */
      ly_rpc_code_lower(c, code, sizeof(code));
      snprintf(l, sizeof(l), "method=\"%s\",result=\"%s\"", rpc_methods[m],
               code);
      ly_prom_u64(b, "lanyard_ca_requests_total", l, n);
    }
}

char *ly_observer_metrics(ly_observer_t *o, size_t *len) {
  ly_obs_snapshot_t s;
  ly_observer_snapshot(o, &s);
  ly_buf_t b = {0};
  ly_prom_family(&b, "lanyard_build_info", "gauge", "The running version.");
  ly_prom_u64(&b, "lanyard_build_info",
              "version=\"" LANYARD_VERSION "\",component=\"agent\"", 1);
  metrics_mtls(&b, &s);
  metrics_connections(&b, &s);
  metrics_identity(&b, &s);
  return ly_buf_take(&b, len);
}

/* ---- /status --------------------------------------------------------------
 */

/* {"attempts": a, "successes": s, "success_rate": s/a or null} */
static json_t *rate_json(const ly_rate_t *r) {
  return json_pack("{s:I,s:I,s:o}", "attempts", (json_int_t)r->attempts,
                   "successes", (json_int_t)r->successes, "success_rate",
                   r->attempts
                       ? json_real((double)r->successes / (double)r->attempts)
                       : json_null());
}

static json_t *direction_json(const ly_obs_snapshot_t *s, ly_dir_t d) {
  json_t *windows = json_object(), *failures = json_object();
  for (int w = 0; w < LY_NWINDOWS; w++)
    json_object_set_new(windows, ly_window_name[w],
                        rate_json(&s->window[w][d]));
  for (int r = LY_REASON_NONE + 1; r < LY_REASON__COUNT; r++)
    if (s->dir[d].failures[r])
      json_object_set_new(failures, ly_reason_name(r),
                          json_integer((json_int_t)s->dir[d].failures[r]));
  return json_pack("{s:o,s:o,s:o,s:I,s:I}", "total", rate_json(&s->total[d]),
                   "windows", windows, "failures", failures, "resumed",
                   (json_int_t)s->dir[d].resumed, "active",
                   (json_int_t)(active(&s->dir[d])));
}

static json_t *identity_json(const ly_obs_snapshot_t *s) {
  const ly_identity_view_t *v = &s->id;
  json_t *roots = json_array();
  for (size_t i = 0; i < v->bundle->n; i++) {
    ly_cert_info_t ri;
    char fp[65];
    const ly_der_t *c = &v->bundle->certs[i];
    if (ly_cert_info(c->der, c->len, &ri) == 0 &&
        ly_der_sha256_hex(c->der, c->len, fp) == 0)
      json_array_append_new(roots,
                            json_pack("{s:s,s:s,s:I}", "sha256", fp, "serial",
                                      ri.serial_hex, "not_after",
                                      (json_int_t)ri.not_after));
  }
  json_t *id = json_pack(
      "{s:b,s:o,s:{s:I,s:I},s:s,s:o}", "valid", v->have, "bundle_roots", roots,
      "rotations", "success", (json_int_t)v->rotations_ok, "failure",
      (json_int_t)v->rotations_failed, "last_error", v->last_error, "serial",
      v->chain->n ? json_string(v->info->serial_hex) : json_null());
  json_object_set_new(id, "expired", json_boolean(v->expired));
  if (v->expired)
    json_object_set_new(id, "expired_at", json_integer(v->expired_at));
  if (v->chain->n) {
    json_object_set_new(id, "not_before", json_integer(v->info->not_before));
    json_object_set_new(id, "not_after", json_integer(v->info->not_after));
    json_object_set_new(id, "next_rotation", json_integer(v->renew_at));
    json_object_set_new(id, "expires_in_seconds",
                        json_integer(v->info->not_after - s->now_s));
  }
  return id;
}

static json_t *time_or_null(int64_t t) {
  return t ? json_integer(t) : json_null();
}

/* {"last_success", "last_error", "last_error_at", "consecutive_failures"} */
static json_t *upstream_json(const ly_upstream_t *u) {
  return json_pack("{s:o,s:o,s:o,s:I}", "last_success",
                   time_or_null(u->last_ok), "last_error",
                   u->last_error_at ? json_string(u->last_error) : json_null(),
                   "last_error_at", time_or_null(u->last_error_at),
                   "consecutive_failures", (json_int_t)u->failing);
}

char *ly_observer_status_json(ly_observer_t *o, size_t *len) {
  ly_obs_snapshot_t s;
  ly_observer_snapshot(o, &s);
  json_t *peers = json_array();
  for (size_t i = 0; i < s.npeers && i < LY_REPORT_TOP_PEERS; i++)
    for (int d = 0; d < LY_DIR__COUNT; d++)
      if (s.peers[i].attempts[d])
        json_array_append_new(
            peers, json_pack("{s:s,s:s,s:I,s:I}", "spiffe_id", s.peers[i].id,
                             "direction", ly_dir_name(d), "attempts",
                             (json_int_t)s.peers[i].attempts[d], "failures",
                             (json_int_t)s.peers[i].failures[d]));
  json_t *doc = json_pack(
      "{s:s,s:s,s:s,s:b,s:I,s:I,s:o,s:{s:o,s:o},s:o}", "spiffe_id",
      o->cfg->spiffe_id, "trust_domain", o->cfg->trust_domain, "mode",
      o->cfg->mode == LY_MODE_STRICT ? "strict" : "permissive", "ready",
      s.id.have, "time", (json_int_t)s.now_s, "uptime_seconds",
      (json_int_t)((uv_now(o->loop) - o->started_ms) / 1000), "identity",
      identity_json(&s), "mtls", "inbound", direction_json(&s, LY_DIR_INBOUND),
      "outbound", direction_json(&s, LY_DIR_OUTBOUND), "top_peers", peers);
  if (doc) {
    json_object_set_new(doc, "report", upstream_json(&o->report));
    json_object_set_new(doc, "bundle_refresh",
                        upstream_json(s.id.bundle_refresh));
    json_object_set_new(doc, "hostname", json_string(o->hostname));
    json_object_set_new(doc, "instance", json_string(o->instance));
    json_object_set_new(doc, "version", json_string(LANYARD_VERSION));
  }
  char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
  json_decref(doc);
  *len = text ? strlen(text) : 0;
  return text;
}
