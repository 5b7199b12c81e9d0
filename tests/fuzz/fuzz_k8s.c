/* The injection path on arbitrary manifests, with its promises checked:
 * YAML in, the rendering, YAML out and back gives the same object;
 * injecting an injected template changes nothing; removal gives back the
 * template as it was; the patch to the injected pod is empty only when
 * nothing changed. */
#include "lanyard/k8s.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): release builds define NDEBUG. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_k8s: %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void roundtrip(const json_t *obj) {
  char *y = ly_k8s_json_to_yaml(obj), err[256];
  json_t *back = NULL;
  CHECK(y);
  CHECK(ly_k8s_yaml_to_json(y, strlen(y), &back, err, sizeof(err)) == 0);
  CHECK(json_equal(obj, back));
  json_decref(back);
  free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *obj = NULL;
  char err[256], why[512];
  if (size > 65536 ||
      ly_k8s_yaml_to_json((const char *)data, size, &obj, err, sizeof(err)))
    return 0;
  if (!json_is_object(obj)) {
    if (obj)
      roundtrip(obj);
    json_decref(obj);
    return 0;
  }
  roundtrip(obj);
  json_t *tmpl = ly_k8s_pod_template(obj);
  if (!tmpl)
    tmpl = obj;
  json_t *orig = json_deep_copy(tmpl);
  ly_k8s_opts_t o;
  ly_k8s_opts_init(&o);
  o.native_sidecar = size & 1;
  ly_k8s_outcome_t r = ly_k8s_inject(tmpl, NULL, &o, why, sizeof(why));
  const char *st = json_string_value(json_object_get(
      json_object_get(json_object_get(orig, "metadata"), "annotations"),
      LY_K8S_STATUS_ANN));
  if (r == LY_K8S_ERROR) {
    CHECK(json_equal(tmpl, orig));
  } else if (r == LY_K8S_INJECTED || r == LY_K8S_UNCHANGED) {
    json_t *once = json_deep_copy(tmpl);
    CHECK(ly_k8s_inject(tmpl, NULL, &o, why, sizeof(why)) == LY_K8S_UNCHANGED);
    CHECK(json_equal(tmpl, once));
    json_t *patch = ly_k8s_json_diff(orig, once);
    CHECK(patch && (json_array_size(patch) > 0) == !json_equal(orig, once));
    json_decref(patch);
    roundtrip(obj);
    CHECK(ly_k8s_remove(tmpl, why, sizeof(why)) == LY_K8S_REMOVED);
    if (!st) /* an original that was not injected comes back as it was */
      CHECK(json_equal(tmpl, orig));
    json_decref(once);
  }
  json_decref(orig);
  json_decref(obj);
  return 0;
}
