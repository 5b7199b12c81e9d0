/* The mesh-wide report table. See mesh.h. */
#include "ca/mesh.h"

#include "lanyard/err.h"
#include "lanyard/spiffe.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  uint64_t attempts, successes;
} rate_t;

typedef struct {
  char *spiffe_id, *instance;
  int64_t not_before, not_after; /* from the verified certificate */
  char serial[64];
  char svid_root[LY_SHA256_HEX_LEN]; /* the root it chains to; "" unknown */
  char addr[64];                     /* the connection's IP address */
  uint64_t last_ms, stale_ms;
  int stale; /* set by rows(): silent for stale_ms */
  Lanyard__Ca__V1__ReportRequest *report; /* our own copy */
  rate_t history[LY_MESH_HISTORY];        /* last minute, at each report */
  size_t hist_head, hist_count;
} entry_t;

struct ly_mesh_s {
  entry_t *entries;
  size_t n, cap;
};

ly_mesh_t *ly_mesh_new(void) {
  return calloc(1, sizeof(ly_mesh_t));
}

static void entry_free(entry_t *e) {
  free(e->spiffe_id);
  free(e->instance);
  if (e->report)
    protobuf_c_message_free_unpacked(&e->report->base, NULL);
}

void ly_mesh_free(ly_mesh_t *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++)
    entry_free(&m->entries[i]);
  free(m->entries);
  free(m);
}

static void expire(ly_mesh_t *m, uint64_t now_ms) {
  for (size_t i = 0; i < m->n;) {
    const entry_t *e = &m->entries[i];
    if (now_ms > e->last_ms + e->stale_ms + LY_MESH_KEEP_STALE_MS) {
      entry_free(&m->entries[i]);
      m->entries[i] = m->entries[--m->n];
    } else {
      i++;
    }
  }
}

/* Reasons are short lowercase words; peers are SPIFFE IDs or "". */
static int valid_reason(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > 32)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((r[i] >= 'a' && r[i] <= 'z') || r[i] == '_'))
      return 0;
  return 1;
}

/* Printable ASCII, 1..max bytes (0..max with `empty`): safe in JSON,
 * logs and labels. */
static int printable_or_empty(const char *s, size_t max, int empty) {
  size_t n = strlen(s);
  if ((n == 0 && !empty) || n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x21 || s[i] > 0x7e)
      return 0;
  return 1;
}

static int printable(const char *s, size_t max) {
  return printable_or_empty(s, max, 0);
}

static int sha256_hex(const char *s) {
  if (strlen(s) != 64)
    return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return 0;
  return 1;
}

static int check_report(const Lanyard__Ca__V1__ReportRequest *r,
                        const char **why) {
  ly_spiffe_id_t id;
  if (protobuf_c_message_get_packed_size(&r->base) > LY_REPORT_MAX) {
    *why = "report too large";
    return LY_EPARSE;
  }
  if (!r->inbound || !r->outbound) {
    *why = "inbound and outbound counters are required";
    return LY_EPARSE;
  }
  if (r->inbound->n_windows > 3 || r->outbound->n_windows > 3) {
    *why = "at most three windows (60, 300, 3600 s) per direction";
    return LY_EPARSE;
  }
  if (r->n_top_peers > 2 * LY_MESH_MAX_PEERS) {
    *why = "too many top peers";
    return LY_EPARSE;
  }
  if (!printable(r->instance, 64)) {
    *why = "instance must be 1 to 64 printable ASCII characters";
    return LY_EPARSE;
  }
  /* Fields older agents leave empty. */
  if (!printable_or_empty(r->hostname, 253, 1) ||
      !printable_or_empty(r->agent_version, 64, 1)) {
    *why = "hostname and agent_version must be printable ASCII";
    return LY_EPARSE;
  }
  if (r->n_bundle_root_sha256 > LY_MESH_MAX_ROOTS) {
    *why = "too many bundle roots";
    return LY_EPARSE;
  }
  for (size_t i = 0; i < r->n_bundle_root_sha256; i++)
    if (!sha256_hex(r->bundle_root_sha256[i])) {
      *why = "bundle_root_sha256 must be 64 lowercase hex digits";
      return LY_EPARSE;
    }
  if (r->n_failures > LY_MESH_MAX_REASONS) {
    *why = "too many failure reasons";
    return LY_EPARSE;
  }
  for (size_t i = 0; i < r->n_failures; i++)
    if (!valid_reason(r->failures[i]->reason)) {
      *why = "a failure reason is not a lowercase word";
      return LY_EPARSE;
    }
  for (size_t i = 0; i < r->n_top_peers; i++)
    if (r->top_peers[i]->spiffe_id[0] &&
        ly_spiffe_id_parse(r->top_peers[i]->spiffe_id,
                           strlen(r->top_peers[i]->spiffe_id), &id, why) != 0)
      return LY_EPARSE;
  return 0;
}

/* A copy the table owns (the report's size is capped). */
static Lanyard__Ca__V1__ReportRequest *
copy_report(const Lanyard__Ca__V1__ReportRequest *r) {
  Lanyard__Ca__V1__ReportRequest tmp = *r;
  size_t len = protobuf_c_message_get_packed_size(&tmp.base);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf)
    return NULL;
  protobuf_c_message_pack(&tmp.base, buf);
  Lanyard__Ca__V1__ReportRequest *copy =
      lanyard__ca__v1__report_request__unpack(NULL, len, buf);
  free(buf);
  return copy;
}

static rate_t window(const Lanyard__Ca__V1__DirectionReport *d,
                     uint32_t seconds) {
  rate_t r = {0, 0};
  for (size_t i = 0; d && i < d->n_windows; i++)
    if (d->windows[i]->seconds == seconds) {
      r.attempts = d->windows[i]->attempts;
      r.successes = d->windows[i]->successes;
    }
  return r;
}

/* The entry of (id, instance): found, or a new one. A full table (or an
 * identity at its cap) makes room by dropping the entry silent longest,
 * so an agent that floods the table only pushes out its own or stale
 * entries, never blocks a newcomer. NULL when out of memory. */
static entry_t *entry_for(ly_mesh_t *m, const char *id, const char *instance) {
  size_t same = 0, stalest = SIZE_MAX, stalest_same = SIZE_MAX;
  for (size_t i = 0; i < m->n; i++) {
    entry_t *e = &m->entries[i];
    if (strcmp(e->spiffe_id, id) != 0) {
      if (stalest == SIZE_MAX || e->last_ms < m->entries[stalest].last_ms)
        stalest = i;
      continue;
    }
    if (strcmp(e->instance, instance) == 0)
      return e;
    same++;
    if (stalest_same == SIZE_MAX ||
        e->last_ms < m->entries[stalest_same].last_ms)
      stalest_same = i;
  }
  size_t drop = same >= LY_MESH_MAX_INSTANCES ? stalest_same
                : m->n >= LY_MESH_MAX_ENTRIES ? stalest
                                              : SIZE_MAX;
  if (drop != SIZE_MAX) {
    entry_free(&m->entries[drop]);
    m->entries[drop] = m->entries[--m->n];
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    entry_t *grown = realloc(m->entries, cap * sizeof(*grown));
    if (!grown)
      return NULL;
    m->entries = grown;
    m->cap = cap;
  }
  entry_t *e = &m->entries[m->n];
  memset(e, 0, sizeof(*e));
  e->spiffe_id = strdup(id);
  e->instance = strdup(instance);
  if (!e->spiffe_id || !e->instance) {
    entry_free(e);
    return NULL;
  }
  m->n++;
  return e;
}

int ly_mesh_record(ly_mesh_t *m, const ly_cert_info_t *cert,
                   const char *svid_root, const char *peer,
                   const Lanyard__Ca__V1__ReportRequest *r, uint64_t now_ms,
                   const char **why) {
  LY_GUARD(check_report(r, why));
  expire(m, now_ms);
  Lanyard__Ca__V1__ReportRequest *copy = copy_report(r);
  entry_t *e = copy ? entry_for(m, cert->spiffe_id, r->instance) : NULL;
  if (!e) {
    if (copy)
      protobuf_c_message_free_unpacked(&copy->base, NULL);
    *why = "out of memory";
    return LY_ETOO_BIG;
  }
  if (e->report)
    protobuf_c_message_free_unpacked(&e->report->base, NULL);
  e->report = copy;
  e->not_before = cert->not_before;
  e->not_after = cert->not_after;
  snprintf(e->serial, sizeof(e->serial), "%s", cert->serial_hex);
  snprintf(e->svid_root, sizeof(e->svid_root), "%s",
           svid_root ? svid_root : "");
  /* The address without the port: the port is the agent's ephemeral one. */
  /* "1.2.3.4:port" or "[v6]:port". */
  const char *p = peer ? peer : "", *end = NULL;
  if (*p == '[')
    end = strchr(++p, ']');
  else
    end = strrchr(p, ':');
  snprintf(e->addr, sizeof(e->addr), "%.*s",
           (int)(end ? (size_t)(end - p) : strlen(p)), p);
  e->last_ms = now_ms;
  /* The agent's own interval, within reason: silence for three of them
   * means something is wrong with it. */
  uint64_t interval = r->interval_seconds;
  interval = interval < 1 ? 1 : interval > 60 ? 60 : interval;
  e->stale_ms = 3 * interval * 1000;
  rate_t in = window(r->inbound, 60), out = window(r->outbound, 60);
  e->history[e->hist_head] =
      (rate_t){in.attempts + out.attempts, in.successes + out.successes};
  e->hist_head = (e->hist_head + 1) % LY_MESH_HISTORY;
  if (e->hist_count < LY_MESH_HISTORY)
    e->hist_count++;
  return 0;
}

/* ---- per identity ---------------------------------------------------------
 */

static const uint32_t window_seconds[] = {60, 300, 3600};
static const char *const window_names[] = {"1m", "5m", "60m"};
#define NWIN 3

typedef struct {
  const char *spiffe_id;
  const entry_t *first; /* entries [first, first + n) share the identity */
  size_t n, stale;      /* instances, of which silent */
  rate_t total[2], win[NWIN][2];
  int64_t not_before, not_after; /* the certificate expiring first */
  const char *serial;
  uint64_t last_ms;
  double worst; /* the lower 5m success rate; 2 without traffic */
} row_t;

static int by_identity(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  int c = strcmp(x->spiffe_id, y->spiffe_id);
  return c ? c : strcmp(x->instance, y->instance);
}

static void add_direction(rate_t *total, rate_t win[NWIN][2], int d,
                          const Lanyard__Ca__V1__DirectionReport *dr) {
  total[d].attempts += dr->attempts;
  total[d].successes += dr->successes;
  for (int w = 0; w < NWIN; w++) {
    rate_t r = window(dr, window_seconds[w]);
    win[w][d].attempts += r.attempts;
    win[w][d].successes += r.successes;
  }
}

static int worst_first(const void *a, const void *b) {
  const row_t *x = a, *y = b;
  if (x->worst != y->worst)
    return x->worst < y->worst ? -1 : 1;
  return strcmp(x->spiffe_id, y->spiffe_id);
}

/* Whether an instance's numbers count in its row: a silent agent's last
 * report is old news while a replica still reports; when all are silent,
 * their last word is all there is. */
static int counts(const row_t *row, const entry_t *e) {
  return !e->stale || row->stale == row->n;
}

/* Adds up the row's entries [first, first + n). */
static void aggregate(row_t *row) {
  for (size_t i = 0; i < row->n; i++) {
    const entry_t *e = &row->first[i];
    if (e->last_ms > row->last_ms)
      row->last_ms = e->last_ms;
    if (!counts(row, e))
      continue;
    add_direction(row->total, row->win, 0, e->report->inbound);
    add_direction(row->total, row->win, 1, e->report->outbound);
    if (!row->serial || e->not_after < row->not_after) {
      row->not_before = e->not_before;
      row->not_after = e->not_after;
      row->serial = e->serial;
    }
  }
  row->worst = 2;
  for (int d = 0; d < 2; d++) {
    rate_t r = row->win[1][d];
    if (r.attempts && (double)r.successes / (double)r.attempts < row->worst)
      row->worst = (double)r.successes / (double)r.attempts;
  }
}

/* Groups the (sorted) entries into rows, worst first. *nrows rows. */
static row_t *rows(ly_mesh_t *m, uint64_t now_ms, size_t *nrows) {
  expire(m, now_ms);
  if (m->n) /* qsort's base may not be NULL, even for no elements */
    qsort(m->entries, m->n, sizeof(entry_t), by_identity);
  row_t *out = calloc(m->n ? m->n : 1, sizeof(row_t));
  if (!out)
    return NULL;
  size_t n = 0;
  for (size_t i = 0; i < m->n; i++) {
    entry_t *e = &m->entries[i];
    e->stale = now_ms > e->last_ms + e->stale_ms;
    row_t *row = n && strcmp(out[n - 1].spiffe_id, e->spiffe_id) == 0
                     ? &out[n - 1]
                     : NULL;
    if (!row) {
      row = &out[n++];
      row->spiffe_id = e->spiffe_id;
      row->first = e;
    }
    row->n++;
    row->stale += (size_t)e->stale;
  }
  for (size_t i = 0; i < n; i++)
    aggregate(&out[i]);
  qsort(out, n, sizeof(row_t), worst_first);
  *nrows = n;
  return out;
}

void ly_mesh_workload_name(const char *id, char *out, size_t len) {
  const char *path =
      strncmp(id, "spiffe://", 9) == 0 ? strchr(id + 9, '/') : NULL;
  if (!path) {
    snprintf(out, len, "%s", id);
    return;
  }
  char ns[256], sa[256], extra;
  /* exactly /ns/X/sa/Y, no more segments */
  if (strlen(path) < sizeof(ns) &&
      sscanf(path, "/ns/%255[^/]/sa/%255[^/]%c", ns, sa, &extra) == 2)
    snprintf(out, len, "%s/%s", ns, sa);
  else
    snprintf(out, len, "%s", path);
}

/* ---- JSON ------------------------------------------------------------------
 */

static json_t *rate_json(rate_t r) {
  return json_pack("{s:I,s:I,s:o}", "attempts", (json_int_t)r.attempts,
                   "successes", (json_int_t)r.successes, "success_rate",
                   r.attempts
                       ? json_real((double)r.successes / (double)r.attempts)
                       : json_null());
}

static json_t *direction_json(const row_t *row, int d) {
  json_t *w = json_object();
  for (int i = 0; i < NWIN; i++)
    json_object_set_new(w, window_names[i], rate_json(row->win[i][d]));
  return json_pack("{s:{s:I,s:I},s:o}", "total", "attempts",
                   (json_int_t)row->total[d].attempts, "successes",
                   (json_int_t)row->total[d].successes, "windows", w);
}

static json_t *failures_json(const row_t *row) {
  json_t *f = json_object();
  for (size_t i = 0; i < row->n; i++) {
    const Lanyard__Ca__V1__ReportRequest *r = row->first[i].report;
    for (size_t k = 0; counts(row, &row->first[i]) && k < r->n_failures; k++) {
      const char *reason = r->failures[k]->reason;
      json_int_t add =
          (json_int_t)(r->failures[k]->inbound + r->failures[k]->outbound);
      json_t *have = json_object_get(f, reason);
      json_object_set_new(
          f, reason, json_integer(add + (have ? json_integer_value(have) : 0)));
    }
  }
  return f;
}

static int busier_first(const void *a, const void *b) {
  json_int_t x =
      json_integer_value(json_object_get(*(json_t *const *)a, "attempts"));
  json_int_t y =
      json_integer_value(json_object_get(*(json_t *const *)b, "attempts"));
  return x < y ? 1 : x > y ? -1 : 0;
}

/* The row's instances' top peers added up (a hash on direction and ID,
 * so many instances cost linear time), the busiest LY_MESH_MAX_PEERS. */
static json_t *peers_json(const row_t *row) {
  json_t *by_key = json_object();
  size_t count = 0;
  for (size_t i = 0; i < row->n; i++) {
    const Lanyard__Ca__V1__ReportRequest *r = row->first[i].report;
    for (size_t k = 0; counts(row, &row->first[i]) && k < r->n_top_peers; k++) {
      const Lanyard__Ca__V1__PeerCount *p = r->top_peers[k];
      const char *dir = p->inbound ? "inbound" : "outbound";
      char key[LY_SPIFFE_ID_MAX + 16];
      snprintf(key, sizeof(key), "%s %s", dir, p->spiffe_id);
      json_t *v = json_object_get(by_key, key);
      if (!v) {
        v = json_pack("{s:s,s:s,s:I,s:I}", "spiffe_id", p->spiffe_id,
                      "direction", dir, "attempts", (json_int_t)0, "failures",
                      (json_int_t)0);
        json_object_set_new(by_key, key, v);
        count++;
      }
      json_integer_set(json_object_get(v, "attempts"),
                       json_integer_value(json_object_get(v, "attempts")) +
                           (json_int_t)p->attempts);
      json_integer_set(json_object_get(v, "failures"),
                       json_integer_value(json_object_get(v, "failures")) +
                           (json_int_t)p->failures);
    }
  }
  json_t **all = calloc(count ? count : 1, sizeof(*all));
  json_t *peers = json_array();
  if (all) {
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(by_key, key, v) all[n++] = v;
    qsort(all, n, sizeof(*all), busier_first);
    for (size_t i = 0; i < n && i < LY_MESH_MAX_PEERS; i++)
      json_array_append(peers, all[i]);
    free(all);
  }
  json_decref(by_key);
  return peers;
}

/* Oldest first: point k from the end adds up every instance's k-th most
 * recent report. */
static json_t *history_json(const row_t *row) {
  size_t depth = 0;
  for (size_t i = 0; i < row->n; i++)
    if (row->first[i].hist_count > depth)
      depth = row->first[i].hist_count;
  json_t *h = json_array();
  for (size_t back = depth; back-- > 0;) {
    rate_t sum = {0, 0};
    for (size_t i = 0; i < row->n; i++) {
      const entry_t *e = &row->first[i];
      if (back >= e->hist_count || !counts(row, e))
        continue;
      rate_t r = e->history[(e->hist_head + LY_MESH_HISTORY - 1 - back) %
                            LY_MESH_HISTORY];
      sum.attempts += r.attempts;
      sum.successes += r.successes;
    }
    json_array_append_new(h, sum.attempts ? json_real((double)sum.successes /
                                                      (double)sum.attempts)
                                          : json_null());
  }
  return h;
}

/* Seconds until the first workload still reporting loses its identity. */
static int64_t runway(const row_t *r, size_t n, int64_t now_s, int *have) {
  int64_t first = 0;
  *have = 0;
  for (size_t i = 0; i < n; i++)
    if (r[i].stale < r[i].n && (!*have || r[i].not_after < first)) {
      first = r[i].not_after;
      *have = 1;
    }
  return first - now_s;
}

/* The roots every counted instance holds (a rotation is complete for the
 * workload when the new root is in it). */
static json_t *common_roots_json(const row_t *row) {
  json_t *out = json_array();
  const entry_t *base = NULL;
  for (size_t i = 0; i < row->n && !base; i++)
    if (counts(row, &row->first[i]))
      base = &row->first[i];
  for (size_t k = 0; base && k < base->report->n_bundle_root_sha256; k++) {
    const char *h = base->report->bundle_root_sha256[k];
    int all = 1;
    for (size_t i = 0; i < row->n && all; i++) {
      const Lanyard__Ca__V1__ReportRequest *r = row->first[i].report;
      if (!counts(row, &row->first[i]))
        continue;
      int has = 0;
      for (size_t j = 0; j < r->n_bundle_root_sha256 && !has; j++)
        has = strcmp(r->bundle_root_sha256[j], h) == 0;
      all = has;
    }
    if (all)
      json_array_append_new(out, json_string(h));
  }
  return out;
}

static json_t *strings_json(char **v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static json_t *str_or_null(const char *s) {
  return s && *s ? json_string(s) : json_null();
}

/* One agent: where it runs, what it runs, what it trusts, how it fares. */
static json_t *instance_json(const entry_t *e, uint64_t now_ms, int64_t now_s) {
  row_t one = {
      .spiffe_id = e->spiffe_id, .first = e, .n = 1, .stale = (size_t)e->stale};
  aggregate(&one);
  const Lanyard__Ca__V1__ReportRequest *r = e->report;
  json_int_t age = (json_int_t)((now_ms - e->last_ms) / 1000);
  return json_pack(
      "{s:s,s:o,s:o,s:o,s:s,s:I,s:I,s:I,s:I,s:s,s:o,s:o,s:o,s:o}", "instance",
      e->instance, "hostname", str_or_null(r->hostname), "agent_version",
      str_or_null(r->agent_version), "address", str_or_null(e->addr), "state",
      e->stale ? "stale" : "ok", "last_report_age_seconds", age, "not_before",
      (json_int_t)e->not_before, "not_after", (json_int_t)e->not_after,
      "expires_in_seconds", (json_int_t)(e->not_after - now_s), "serial",
      e->serial, "svid_root_sha256", str_or_null(e->svid_root),
      "bundle_root_sha256",
      strings_json(r->bundle_root_sha256, r->n_bundle_root_sha256), "inbound",
      direction_json(&one, 0), "outbound", direction_json(&one, 1));
}

static json_t *workload_json(const row_t *row, uint64_t now_ms, int64_t now_s) {
  char name[LY_SPIFFE_ID_MAX + 1];
  ly_mesh_workload_name(row->spiffe_id, name, sizeof(name));
  json_t *agents = json_array();
  for (size_t k = 0; k < row->n; k++)
    json_array_append_new(agents, instance_json(&row->first[k], now_ms, now_s));
  json_t *w = json_pack(
      "{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
      "spiffe_id", row->spiffe_id, "name", name, "state",
      row->stale == row->n ? "stale" : "ok", "instances", (json_int_t)row->n,
      "stale_instances", (json_int_t)row->stale, "last_report_age_seconds",
      (json_int_t)((now_ms - row->last_ms) / 1000), "not_before",
      (json_int_t)row->not_before, "not_after", (json_int_t)row->not_after,
      "expires_in_seconds", (json_int_t)(row->not_after - now_s), "serial",
      row->serial, "inbound", direction_json(row, 0), "outbound",
      direction_json(row, 1), "failures", failures_json(row), "top_peers",
      peers_json(row), "history", history_json(row), "bundle_root_sha256",
      common_roots_json(row), "agents", agents);
  return w;
}

static json_t *cert_json(const ly_der_t *c, int64_t now_s) {
  ly_cert_info_t ci;
  char fp[65];
  if (ly_cert_info(c->der, c->len, &ci) != 0 ||
      ly_der_sha256_hex(c->der, c->len, fp) != 0)
    return json_null();
  return json_pack("{s:s,s:s,s:I,s:I}", "sha256", fp, "serial", ci.serial_hex,
                   "not_after", (json_int_t)ci.not_after, "expires_in_seconds",
                   (json_int_t)(ci.not_after - now_s));
}

/* The CA's roots and the certificate it signs with: when they expire is
 * the mesh's horizon, and the roots' fingerprints are what agents'
 * bundle_root_sha256 should list. */
static json_t *ca_json(const ly_chain_t *roots, const ly_chain_t *signing,
                       int64_t now_s) {
  json_t *r = json_array();
  for (size_t i = 0; roots && i < roots->n; i++)
    json_array_append_new(r, cert_json(&roots->certs[i], now_s));
  return json_pack("{s:o,s:o}", "roots", r, "signing",
                   signing && signing->n ? cert_json(&signing->certs[0], now_s)
                                         : json_null());
}

char *ly_mesh_json(ly_mesh_t *m, const char *trust_domain,
                   const ly_chain_t *roots, const ly_chain_t *signing,
                   uint64_t now_ms, size_t *len) {
  size_t n = 0;
  row_t *r = rows(m, now_ms, &n);
  if (!r)
    return NULL;
  int64_t now_s = (int64_t)time(NULL);
  json_t *list = json_array();
  uint32_t interval = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < r[i].n; k++)
      if (r[i].first[k].report->interval_seconds > interval)
        interval = r[i].first[k].report->interval_seconds;
    json_array_append_new(list, workload_json(&r[i], now_ms, now_s));
  }
  int have;
  int64_t run = runway(r, n, now_s, &have);
  json_t *doc =
      json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "trust_domain", trust_domain,
                "generated_at", (json_int_t)now_s, "report_interval_seconds",
                (json_int_t)(interval ? interval : 5), "stale_drop_seconds",
                (json_int_t)(LY_MESH_KEEP_STALE_MS / 1000), "runway_seconds",
                have ? json_integer(run) : json_null(), "ca",
                ca_json(roots, signing, now_s), "workloads", list);
  free(r);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  *len = text ? strlen(text) : 0;
  return text;
}

/* ---- metrics
 * ----------------------------------------------------------------- */

void ly_mesh_metrics(ly_mesh_t *m, uint64_t now_ms, ly_buf_t *b) {
  size_t n = 0;
  row_t *r = rows(m, now_ms, &n);
  if (!r) {
    b->failed = 1;
    return;
  }
  size_t agents = 0, stale = 0, workloads = 0;
  for (size_t i = 0; i < n; i++) {
    agents += r[i].n - r[i].stale;
    stale += r[i].stale;
    workloads += r[i].stale < r[i].n;
  }
  ly_prom_family(b, "lanyard_mesh_workloads", "gauge",
                 "Workload identities with a reporting agent.");
  ly_prom_u64(b, "lanyard_mesh_workloads", NULL, workloads);
  ly_prom_family(b, "lanyard_mesh_agents", "gauge", "Agents reporting.");
  ly_prom_u64(b, "lanyard_mesh_agents", NULL, agents);
  ly_prom_family(b, "lanyard_mesh_agents_stale", "gauge",
                 "Agents silent for three report intervals (kept for ten "
                 "minutes, then forgotten).");
  ly_prom_u64(b, "lanyard_mesh_agents_stale", NULL, stale);
  int have;
  int64_t run = runway(r, n, (int64_t)time(NULL), &have);
  if (have) {
    ly_prom_family(b, "lanyard_mesh_identity_runway_seconds", "gauge",
                   "If the CA stayed down: seconds until the first "
                   "reporting workload loses its identity.");
    ly_prom_f64(b, "lanyard_mesh_identity_runway_seconds", NULL, (double)run);
  }
  char id[LY_SPIFFE_ID_MAX * 2 + 1], l[LY_SPIFFE_ID_MAX * 2 + 64];
  ly_prom_family(b, "lanyard_mesh_mtls_success_ratio", "gauge",
                 "mTLS success ratio over the last 5 minutes, per workload "
                 "identity and direction (no sample without attempts).");
  for (size_t i = 0; i < n; i++)
    for (int d = 0; d < 2; d++) {
      rate_t w = r[i].win[1][d];
      if (!w.attempts)
        continue;
      snprintf(l, sizeof(l), "spiffe_id=\"%s\",direction=\"%s\"",
               ly_prom_label(r[i].spiffe_id, id, sizeof(id)),
               d ? "outbound" : "inbound");
      ly_prom_f64(b, "lanyard_mesh_mtls_success_ratio", l,
                  (double)w.successes / (double)w.attempts);
    }
  ly_prom_family(b, "lanyard_mesh_certificate_expiry_timestamp_seconds",
                 "gauge", "The earliest SVID expiry per workload identity.");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof(l), "spiffe_id=\"%s\"",
             ly_prom_label(r[i].spiffe_id, id, sizeof(id)));
    ly_prom_u64(b, "lanyard_mesh_certificate_expiry_timestamp_seconds", l,
                (uint64_t)r[i].not_after);
  }
  free(r);
}
