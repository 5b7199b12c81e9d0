/* The CA's mesh table: names, stale agents and when they are dropped,
 * per-agent fields, and the roots a workload's agents hold. Clock values
 * are passed in, so ten minutes of silence take no time. */
#include "ca/mesh.h"

#include "lanyard/err.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define T0 1000000u /* ms, the CA's monotonic clock */
#define WEB "spiffe://example.org/ns/default/sa/web"
#define ROOT_A                                                                 \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ROOT_B                                                                 \
  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void name_is(const char *id, const char *want) {
  char out[512];
  ly_mesh_workload_name(id, out, sizeof(out));
  assert_string_equal(out, want);
}

static void test_names(void **state) {
  (void)state;
  name_is(WEB, "default/web");
  name_is("spiffe://example.org/ns/prod/sa/api-v2", "prod/api-v2");
  name_is("spiffe://example.org/ns/prod/sa/api/extra", "/ns/prod/sa/api/extra");
  name_is("spiffe://example.org/ns/prod/sa/", "/ns/prod/sa/");
  name_is("spiffe://example.org/billing", "/billing");
  name_is("spiffe://example.org/ns/a/b/sa/c", "/ns/a/b/sa/c");
}

typedef struct {
  Lanyard__Ca__V1__ReportRequest req;
  Lanyard__Ca__V1__DirectionReport in, out;
  Lanyard__Ca__V1__RateWindow win;
  Lanyard__Ca__V1__RateWindow *winp[1];
  char *roots[2];
} report_t;

/* A report from `instance` with `attempts` inbound in the 5m window. */
static void report_init(report_t *r, const char *instance, uint64_t attempts,
                        int nroots, const char *root0, const char *root1) {
  lanyard__ca__v1__report_request__init(&r->req);
  lanyard__ca__v1__direction_report__init(&r->in);
  lanyard__ca__v1__direction_report__init(&r->out);
  lanyard__ca__v1__rate_window__init(&r->win);
  r->win.seconds = 300;
  r->win.attempts = r->win.successes = attempts;
  r->winp[0] = &r->win;
  r->in.attempts = r->in.successes = attempts;
  r->in.n_windows = 1;
  r->in.windows = r->winp;
  r->req.spiffe_id = WEB;
  r->req.instance = (char *)instance;
  r->req.interval_seconds = 1;
  r->req.inbound = &r->in;
  r->req.outbound = &r->out;
  r->req.hostname = "web-7d9f";
  r->req.agent_version = "0.1.0";
  r->roots[0] = (char *)root0;
  r->roots[1] = (char *)root1;
  r->req.n_bundle_root_sha256 = (size_t)nroots;
  r->req.bundle_root_sha256 = r->roots;
}

static ly_cert_info_t cert(void) {
  ly_cert_info_t c;
  memset(&c, 0, sizeof(c));
  snprintf(c.spiffe_id, sizeof(c.spiffe_id), "%s", WEB);
  snprintf(c.serial_hex, sizeof(c.serial_hex), "0abc");
  c.not_before = 1700000000;
  c.not_after = 1700003600;
  return c;
}

static json_t *doc_at(ly_mesh_t *m, uint64_t now_ms) {
  size_t len = 0;
  char *text = ly_mesh_json(m, "example.org", NULL, NULL, now_ms, &len);
  assert_non_null(text);
  json_t *doc = json_loads(text, 0, NULL);
  free(text);
  assert_non_null(doc);
  return doc;
}

static json_t *web(json_t *doc) {
  json_t *list = json_object_get(doc, "workloads");
  return json_array_size(list) ? json_array_get(list, 0) : NULL;
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static json_int_t num(json_t *o, const char *k) {
  return json_integer_value(json_object_get(o, k));
}

static void test_stale_then_dropped(void **state) {
  (void)state;
  ly_mesh_t *m = ly_mesh_new();
  ly_cert_info_t c = cert();
  report_t r;
  const char *why = NULL;
  report_init(&r, "web-7d9f/10", 5, 1, ROOT_A, NULL);
  assert_int_equal(
      ly_mesh_record(m, &c, ROOT_A, "10.1.2.3:40001", &r.req, T0, &why), 0);

  json_t *doc = doc_at(m, T0 + 3000); /* 3 intervals: not yet stale */
  json_t *w = web(doc);
  assert_string_equal(str(w, "name"), "default/web");
  assert_string_equal(str(w, "state"), "ok");
  json_t *a = json_array_get(json_object_get(w, "agents"), 0);
  assert_string_equal(str(a, "hostname"), "web-7d9f");
  assert_string_equal(str(a, "agent_version"), "0.1.0");
  assert_string_equal(str(a, "address"), "10.1.2.3");
  assert_string_equal(str(a, "state"), "ok");
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(a, "bundle_root_sha256"), 0)),
                      ROOT_A);
  /* what its SVID chains to, as the CA found: what root retire checks */
  assert_string_equal(str(a, "svid_root_sha256"), ROOT_A);
  json_decref(doc);

  doc = doc_at(m, T0 + 3001); /* silent past three intervals: stale */
  w = web(doc);
  assert_string_equal(str(w, "state"), "stale");
  assert_int_equal(num(w, "stale_instances"), 1);
  assert_true(json_is_null(json_object_get(doc, "runway_seconds")));
  json_decref(doc);

  doc = doc_at(m, T0 + 3000 + LY_MESH_KEEP_STALE_MS); /* ten minutes on */
  assert_non_null(web(doc));
  json_decref(doc);

  doc = doc_at(m, T0 + 3001 + LY_MESH_KEEP_STALE_MS); /* then forgotten */
  assert_null(web(doc));
  json_decref(doc);
  ly_mesh_free(m);
}

/* A silent replica: counted and flagged, its numbers left out while the
 * other reports; the workload's roots are those every live agent holds. */
static void test_replicas(void **state) {
  (void)state;
  ly_mesh_t *m = ly_mesh_new();
  ly_cert_info_t c = cert();
  report_t r1, r2;
  const char *why = NULL;
  report_init(&r1, "web-1/10", 7, 2, ROOT_A, ROOT_B);
  report_init(&r2, "web-2/11", 100, 1, ROOT_A, NULL);
  assert_int_equal(
      ly_mesh_record(m, &c, NULL, "[fd00::5]:40002", &r2.req, T0, &why), 0);
  assert_int_equal(
      ly_mesh_record(m, &c, NULL, "10.0.0.1:1", &r1.req, T0 + 1000, &why), 0);

  json_t *doc = doc_at(m, T0 + 2000);
  json_t *w = web(doc);
  assert_int_equal(num(w, "instances"), 2);
  assert_int_equal(num(w, "stale_instances"), 0);
  json_t *roots = json_object_get(w, "bundle_root_sha256");
  assert_int_equal(json_array_size(roots), 1); /* B: only web-1 has it */
  assert_string_equal(json_string_value(json_array_get(roots, 0)), ROOT_A);
  json_t *a = json_array_get(json_object_get(w, "agents"), 1);
  assert_string_equal(str(a, "instance"), "web-2/11");
  assert_string_equal(str(a, "address"), "fd00::5");
  json_decref(doc);

  /* web-1 goes on reporting; web-2 falls silent */
  for (uint64_t t = T0 + 2000; t <= T0 + 5000; t += 1000)
    assert_int_equal(
        ly_mesh_record(m, &c, NULL, "10.0.0.1:1", &r1.req, t, &why), 0);
  doc = doc_at(m, T0 + 5000);
  w = web(doc);
  assert_string_equal(str(w, "state"), "ok");
  assert_int_equal(num(w, "stale_instances"), 1);
  json_t *in5 = json_object_get(
      json_object_get(json_object_get(w, "inbound"), "windows"), "5m");
  assert_int_equal(num(in5, "attempts"), 7); /* web-2's 100 left out */
  roots = json_object_get(w, "bundle_root_sha256");
  assert_int_equal(json_array_size(roots), 2); /* web-1's alone now */
  json_decref(doc);
  ly_mesh_free(m);
}

static void test_refused(void **state) {
  (void)state;
  ly_mesh_t *m = ly_mesh_new();
  ly_cert_info_t c = cert();
  report_t r;
  const char *why = NULL;
  report_init(&r, "web-1/10", 1, 1, "AAAA", NULL);
  assert_int_equal(ly_mesh_record(m, &c, NULL, "10.0.0.1:1", &r.req, T0, &why),
                   LY_EPARSE);
  assert_non_null(strstr(why, "bundle_root_sha256"));
  report_init(&r, "web-1/10", 1, 0, NULL, NULL);
  r.req.hostname = "bad host";
  assert_int_equal(ly_mesh_record(m, &c, NULL, "10.0.0.1:1", &r.req, T0, &why),
                   LY_EPARSE);
  /* an older agent: no hostname, version or roots */
  report_init(&r, "web-1/10", 1, 0, NULL, NULL);
  r.req.hostname = "";
  r.req.agent_version = "";
  assert_int_equal(ly_mesh_record(m, &c, NULL, "10.0.0.1:1", &r.req, T0, &why),
                   0);
  json_t *doc = doc_at(m, T0);
  json_t *a = json_array_get(json_object_get(web(doc), "agents"), 0);
  assert_true(json_is_null(json_object_get(a, "hostname")));
  assert_int_equal(json_array_size(json_object_get(a, "bundle_root_sha256")),
                   0);
  json_decref(doc);
  ly_mesh_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_stale_then_dropped),
      cmocka_unit_test(test_replicas),
      cmocka_unit_test(test_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
