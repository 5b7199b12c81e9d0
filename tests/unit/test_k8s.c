/* The sidecar rendering (agent/k8s): what goes into a pod, in what order,
 * what is skipped and why, that a second injection changes nothing and
 * removal gives back the original; the JSON Patch diff (RFC 6901
 * escaping, arrays grown at the front); YAML typing both ways. */
#include "lanyard/k8s.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static json_t *pod(const char *json) {
  json_error_t e;
  json_t *j = json_loads(json, 0, &e);
  if (!j)
    fail_msg("bad test JSON: %s", e.text);
  return j;
}

#define BASIC                                                                  \
  "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"initContainers\":[{\"name\":"    \
  "\"own\",\"image\":\"x\"}],\"containers\":[{\"name\":\"app\",\"image\":"     \
  "\"x\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}],"              \
  "\"readinessProbe\":{\"httpGet\":{\"path\":\"/h\",\"port\":\"http\"}},"      \
  "\"livenessProbe\":{\"tcpSocket\":{\"port\":8080},\"periodSeconds\":5}}]}}"

static const char *cname(json_t *arr, size_t i) {
  return json_string_value(json_object_get(json_array_get(arr, i), "name"));
}

static void test_native_order_and_security(void **state) {
  ly_k8s_opts_t o;
  char why[256];
  json_t *p = pod(BASIC);
  ly_k8s_opts_init(&o);
  assert_int_equal(ly_k8s_inject(p, "shop", &o, why, sizeof(why)),
                   LY_K8S_INJECTED);
  json_t *spec = json_object_get(p, "spec");
  json_t *inits = json_object_get(spec, "initContainers");
  /* rules, then the agent, then the pod's own (they get the mesh) */
  assert_int_equal(json_array_size(inits), 3);
  assert_string_equal(cname(inits, 0), LY_K8S_INIT_NAME);
  assert_string_equal(cname(inits, 1), LY_K8S_AGENT_NAME);
  assert_string_equal(cname(inits, 2), "own");
  json_t *agent = json_array_get(inits, 1);
  assert_string_equal(
      json_string_value(json_object_get(agent, "restartPolicy")), "Always");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(agent, "startupProbe"), "httpGet"),
          "path")),
      "/readyz");
  json_t *sc = json_object_get(agent, "securityContext");
  assert_int_equal(json_integer_value(json_object_get(sc, "runAsUser")), 1337);
  assert_true(json_is_true(json_object_get(sc, "runAsNonRoot")));
  assert_true(json_is_true(json_object_get(sc, "readOnlyRootFilesystem")));
  assert_true(json_is_false(json_object_get(sc, "allowPrivilegeEscalation")));
  /* the init step: NET_ADMIN and NET_RAW, everything else dropped */
  json_t *caps = json_object_get(
      json_object_get(json_array_get(inits, 0), "securityContext"),
      "capabilities");
  assert_int_equal(json_array_size(json_object_get(caps, "add")), 2);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(caps, "add"), 0)),
      "NET_ADMIN");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(caps, "add"), 1)),
      "NET_RAW");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(caps, "drop"), 0)),
      "ALL");
  /* the token volume */
  json_t *tok = json_array_get(json_object_get(spec, "volumes"), 0);
  json_t *sat = json_object_get(
      json_array_get(
          json_object_get(json_object_get(tok, "projected"), "sources"), 0),
      "serviceAccountToken");
  assert_string_equal(json_string_value(json_object_get(sat, "audience")),
                      "lanyard-ca");
  assert_int_equal(
      json_integer_value(json_object_get(sat, "expirationSeconds")), 3600);
  json_decref(p);
}

static void test_probes_rewritten_and_restored(void **state) {
  ly_k8s_opts_t o;
  char why[256];
  json_t *orig = pod(BASIC), *p = json_deep_copy(orig);
  ly_k8s_opts_init(&o);
  assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                   LY_K8S_INJECTED);
  json_t *app = json_array_get(
      json_object_get(json_object_get(p, "spec"), "containers"), 0);
  json_t *rp =
      json_object_get(json_object_get(app, "readinessProbe"), "httpGet");
  assert_string_equal(json_string_value(json_object_get(rp, "path")),
                      "/app-health/app/readiness");
  assert_int_equal(json_integer_value(json_object_get(rp, "port")), 15020);
  json_t *lp = json_object_get(app, "livenessProbe");
  assert_null(json_object_get(lp, "tcpSocket"));
  assert_int_equal(json_integer_value(json_object_get(lp, "periodSeconds")), 5);
  /* the originals, with the named port resolved, for the agent */
  json_t *env = json_object_get(
      json_array_get(
          json_object_get(json_object_get(p, "spec"), "initContainers"), 1),
      "env");
  const char *probes = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(env, i, e) {
    if (!strcmp(json_string_value(json_object_get(e, "name")),
                "LANYARD_APP_PROBES"))
      probes = json_string_value(json_object_get(e, "value"));
  }
  assert_non_null(probes);
  json_t *pj = pod(probes);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(pj, "app/readiness"), "port")),
                   8080);
  assert_non_null(
      json_object_get(json_object_get(pj, "app/liveness"), "tcpSocket"));
  json_decref(pj);
  /* a second injection changes nothing; removal restores the original */
  json_t *once = json_deep_copy(p);
  assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                   LY_K8S_UNCHANGED);
  assert_true(json_equal(p, once));
  assert_int_equal(ly_k8s_remove(p, why, sizeof(why)), LY_K8S_REMOVED);
  assert_true(json_equal(p, orig));
  assert_int_equal(ly_k8s_remove(p, why, sizeof(why)), LY_K8S_NOT_INJECTED);
  json_decref(once);
  json_decref(orig);
  json_decref(p);
}

static void test_fallback_first_container(void **state) {
  ly_k8s_opts_t o;
  char why[256];
  json_t *p = pod(BASIC);
  ly_k8s_opts_init(&o);
  o.native_sidecar = 0;
  assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                   LY_K8S_INJECTED);
  json_t *spec = json_object_get(p, "spec");
  json_t *inits = json_object_get(spec, "initContainers");
  /* the pod's own init containers run before the rules: plain network */
  assert_string_equal(cname(inits, 0), "own");
  assert_string_equal(cname(inits, 1), LY_K8S_INIT_NAME);
  json_t *agent = json_array_get(json_object_get(spec, "containers"), 0);
  assert_string_equal(cname(json_object_get(spec, "containers"), 0),
                      LY_K8S_AGENT_NAME);
  assert_null(json_object_get(agent, "restartPolicy"));
  json_t *cmd = json_object_get(
      json_object_get(
          json_object_get(json_object_get(agent, "lifecycle"), "postStart"),
          "exec"),
      "command");
  assert_string_equal(json_string_value(json_array_get(cmd, 1)), "healthcheck");
  /* the pod annotation wins over the option */
  json_t *q = pod("{\"metadata\":{\"annotations\":{\"lanyard.io/"
                  "native-sidecar\":\"true\"}},\"spec\":{\"containers\":[{"
                  "\"name\":\"a\"}]}}");
  assert_int_equal(ly_k8s_inject(q, NULL, &o, why, sizeof(why)),
                   LY_K8S_INJECTED);
  assert_string_equal(
      cname(json_object_get(json_object_get(q, "spec"), "initContainers"), 1),
      LY_K8S_AGENT_NAME);
  json_decref(q);
  json_decref(p);
}

static void test_skips(void **state) {
  static const struct {
    const char *json, *ns, *why;
  } cases[] = {
      {"{\"spec\":{\"hostNetwork\":true,\"containers\":[{\"name\":\"a\"}]}}",
       "default", "hostNetwork"},
      {"{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}", "kube-system",
       "kube-system"},
      {"{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}", "lanyard",
       "Lanyard's own"},
      {"{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"istio-proxy\"}"
       "]}}",
       "default", "istio-proxy"},
      {"{\"metadata\":{\"annotations\":{\"lanyard.io/inject\":\"disabled\"}},"
       "\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
       "default", "inject: disabled"},
      /* not injected: a bad annotation that would do nothing is no error */
      {"{\"metadata\":{\"annotations\":{\"lanyard.io/proxy-cpu\":\"lots\"}},"
       "\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
       "kube-system", "kube-system"},
      {"{\"metadata\":{\"annotations\":{\"lanyard.io/inject\":\"disabled\","
       "\"lanyard.io/ttl\":\"soon\"}},\"spec\":{\"containers\":[{\"name\":"
       "\"a\"}]}}",
       "default", "inject: disabled"},
  };
  ly_k8s_opts_t o;
  ly_k8s_opts_init(&o);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char why[256] = "";
    json_t *p = pod(cases[i].json), *copy = json_deep_copy(p);
    assert_int_equal(ly_k8s_inject(p, cases[i].ns, &o, why, sizeof(why)),
                     LY_K8S_SKIPPED);
    assert_non_null(strstr(why, cases[i].why));
    assert_true(json_equal(p, copy));
    json_decref(p);
    json_decref(copy);
  }
}

static void test_namespace_annotations(void **state) {
  ly_k8s_opts_t o;
  char why[256];
  json_t *ns = pod("{\"lanyard.io/inject\":\"disabled\"}");
  ly_k8s_opts_init(&o);
  o.ns_annotations = ns;
  json_t *p = pod("{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}");
  assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                   LY_K8S_SKIPPED);
  json_decref(p);
  /* the pod's annotation wins */
  p = pod("{\"metadata\":{\"annotations\":{\"lanyard.io/inject\":"
          "\"enabled\"}},\"spec\":{\"containers\":[{\"name\":\"a\"}]}}");
  assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                   LY_K8S_INJECTED);
  json_decref(p);
  json_decref(ns);
}

static void test_bad_annotations_name_themselves(void **state) {
  static const char *const cases[][2] = {
      {"inject", "maybe"},
      {"mode", "loose"},
      {"exclude-inbound-ports", "80,x"},
      {"exclude-outbound-ports", "0"},
      {"exclude-outbound-cidrs", "10.0.0.0/33"},
      {"include-inbound-ports", "all"},
      {"ttl", "soon"},
      {"native-sidecar", "yes"},
      {"proxy-cpu", "lots"},
      {"proxy-memory", "0"},
      {"injekt", "enabled"},
  };
  ly_k8s_opts_t o;
  ly_k8s_opts_init(&o);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char why[512] = "", key[64];
    json_t *p = pod("{\"metadata\":{\"annotations\":{}},\"spec\":{"
                    "\"containers\":[{\"name\":\"a\"}]}}");
    snprintf(key, sizeof(key), "lanyard.io/%s", cases[i][0]);
    json_object_set_new(
        json_object_get(json_object_get(p, "metadata"), "annotations"), key,
        json_string(cases[i][1]));
    json_t *copy = json_deep_copy(p);
    assert_int_equal(ly_k8s_inject(p, NULL, &o, why, sizeof(why)),
                     LY_K8S_ERROR);
    if (!strstr(why, key))
      fail_msg("%s: the error does not name it: %s", key, why);
    assert_true(json_equal(p, copy));
    json_decref(p);
    json_decref(copy);
  }
}

static void test_diff_escapes_and_inserts(void **state) {
  json_t *a = pod("{\"metadata\":{\"annotations\":{\"x/y\":\"1\"}},"
                  "\"spec\":{\"initContainers\":[{\"name\":\"one\"}]}}");
  json_t *b = pod("{\"metadata\":{\"annotations\":{\"x/y\":\"1\","
                  "\"lanyard.io/st~x\":\"2\"}},\"spec\":{\"initContainers\":"
                  "[{\"name\":\"new\"},{\"name\":\"one\"}]}}");
  json_t *patch = ly_k8s_json_diff(a, b);
  char *s = json_dumps(patch, JSON_COMPACT);
  assert_string_equal(
      s, "[{\"op\":\"add\",\"path\":\"/metadata/annotations/"
         "lanyard.io~1st~0x\",\"value\":\"2\"},{\"op\":\"add\",\"path\":"
         "\"/spec/initContainers/0\",\"value\":{\"name\":\"new\"}}]");
  free(s);
  json_decref(patch);
  /* nothing to do: an empty patch */
  patch = ly_k8s_json_diff(b, b);
  assert_int_equal(json_array_size(patch), 0);
  json_decref(patch);
  json_decref(a);
  json_decref(b);
}

static void test_yaml_typing(void **state) {
  static const char text[] = "a: 0644\nb: \"0644\"\nc: yes\nd: 'true'\n"
                             "e: 1.5\nf: ~\ng: 0x1F\nh: \"\"\n"
                             "i: 1_000\nk: a_b\n";
  json_t *j;
  char err[128];
  assert_int_equal(
      ly_k8s_yaml_to_json(text, strlen(text), &j, err, sizeof(err)), 0);
  assert_int_equal(json_integer_value(json_object_get(j, "a")), 420);
  assert_string_equal(json_string_value(json_object_get(j, "b")), "0644");
  assert_true(json_is_true(json_object_get(j, "c")));
  assert_string_equal(json_string_value(json_object_get(j, "d")), "true");
  assert_true(json_is_real(json_object_get(j, "e")));
  assert_true(json_is_null(json_object_get(j, "f")));
  assert_int_equal(json_integer_value(json_object_get(j, "g")), 31);
  assert_int_equal(json_integer_value(json_object_get(j, "i")), 1000);
  assert_string_equal(json_string_value(json_object_get(j, "k")), "a_b");
  /* strings that YAML 1.1 would read as numbers or dates are quoted */
  json_object_set_new(j, "s1", json_string("1_000"));
  json_object_set_new(j, "s2", json_string("12:30"));
  json_object_set_new(j, "s3", json_string("2024-01-31"));
  json_object_set_new(j, "s4", json_string("y"));
  json_object_set_new(j, "s5", json_string("1e3"));
  /* written back, every string stays a string */
  char *y = ly_k8s_json_to_yaml(j);
  json_t *back;
  assert_int_equal(ly_k8s_yaml_to_json(y, strlen(y), &back, err, sizeof(err)),
                   0);
  assert_true(json_equal(j, back));
  static const char *const quoted[] = {"s1: \"1_000\"", "s2: \"12:30\"",
                                       "s3: \"2024-01-31\"", "s4: \"y\"",
                                       "s5: \"1e3\""};
  for (size_t i = 0; i < 5; i++)
    if (!strstr(y, quoted[i]))
      fail_msg("not quoted: %s in\n%s", quoted[i], y);
  free(y);
  json_decref(back);
  json_decref(j);
  /* errors carry line and column */
  assert_int_equal(
      ly_k8s_yaml_to_json("a: b\n  c: d\n", 12, &j, err, sizeof(err)), -1);
  assert_true(!strncmp(err, "2:", 2));
  assert_int_equal(
      ly_k8s_yaml_to_json("a: 1\na: 2\n", 10, &j, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "duplicate"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_native_order_and_security),
      cmocka_unit_test(test_probes_rewritten_and_restored),
      cmocka_unit_test(test_fallback_first_container),
      cmocka_unit_test(test_skips),
      cmocka_unit_test(test_namespace_annotations),
      cmocka_unit_test(test_bad_annotations_name_themselves),
      cmocka_unit_test(test_diff_escapes_and_inserts),
      cmocka_unit_test(test_yaml_typing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
