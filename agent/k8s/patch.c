/* The webhook's answer: an RFC 6902 JSON Patch from the pod as sent to the
 * pod as rendered. Maps are compared key by key; arrays by their common
 * head and tail, so containers put in front of the pod's own become
 * "add" at an index and the pod's own are never replaced (a patch that
 * rewrote whole arrays would undo another webhook's changes). */
#include "lanyard/k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* path + "/" + the token escaped per RFC 6901 ('~' -> ~0, '/' -> ~1). */
static char *child_path(const char *path, const char *token) {
  size_t n = strlen(path) + 2;
  for (const char *p = token; *p; p++)
    n += (*p == '~' || *p == '/') ? 2 : 1;
  char *out = malloc(n), *w = out;
  if (!out)
    return NULL;
  w += sprintf(w, "%s/", path);
  for (const char *p = token; *p; p++) {
    if (*p == '~') {
      *w++ = '~';
      *w++ = '0';
    } else if (*p == '/') {
      *w++ = '~';
      *w++ = '1';
    } else {
      *w++ = *p;
    }
  }
  *w = '\0';
  return out;
}

static char *index_path(const char *path, size_t i) {
  char tok[32];
  snprintf(tok, sizeof(tok), "%zu", i);
  return child_path(path, tok);
}

static int op(json_t *patch, const char *what, const char *path,
              const json_t *value) {
  json_t *o = json_pack("{s:s, s:s}", "op", what, "path", path);
  if (!o)
    return -1;
  if (value)
    json_object_set_new(o, "value", json_deep_copy(value));
  return json_array_append_new(patch, o);
}

static int diff(json_t *patch, const char *path, const json_t *a,
                const json_t *b);

static int diff_objects(json_t *patch, const char *path, const json_t *a,
                        const json_t *b) {
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach((json_t *)a, k, v) {
    char *p = child_path(path, k);
    json_t *w = json_object_get(b, k);
    if (!p)
      return -1;
    rc = w ? diff(patch, p, v, w) : op(patch, "remove", p, NULL);
    free(p);
    if (rc != 0)
      return rc;
  }
  json_object_foreach((json_t *)b, k, v) {
    if (json_object_get(a, k))
      continue;
    char *p = child_path(path, k);
    if (!p)
      return -1;
    rc = op(patch, "add", p, v);
    free(p);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int diff_arrays(json_t *patch, const char *path, const json_t *a,
                       const json_t *b) {
  size_t na = json_array_size(a), nb = json_array_size(b), head = 0, tail = 0;
  int rc = 0;
  while (head < na && head < nb &&
         json_equal(json_array_get(a, head), json_array_get(b, head)))
    head++;
  while (tail < na - head && tail < nb - head &&
         json_equal(json_array_get(a, na - 1 - tail),
                    json_array_get(b, nb - 1 - tail)))
    tail++;
  size_t ma = na - head - tail, mb = nb - head - tail;
  if (ma == mb) {
    /* Same length: element by element (a container changed inside). */
    for (size_t i = 0; i < ma && rc == 0; i++) {
      char *p = index_path(path, head + i);
      if (!p)
        return -1;
      rc = diff(patch, p, json_array_get(a, head + i),
                json_array_get(b, head + i));
      free(p);
    }
    return rc;
  }
  /* Out with the old middle (from its end, so indices stay valid), in
   * with the new one. */
  for (size_t i = ma; i > 0 && rc == 0; i--) {
    char *p = index_path(path, head + i - 1);
    if (!p)
      return -1;
    rc = op(patch, "remove", p, NULL);
    free(p);
  }
  for (size_t i = 0; i < mb && rc == 0; i++) {
    char *p = (tail == 0) ? child_path(path, "-") : index_path(path, head + i);
    if (!p)
      return -1;
    rc = op(patch, "add", p, json_array_get(b, head + i));
    free(p);
  }
  return rc;
}

static int diff(json_t *patch, const char *path, const json_t *a,
                const json_t *b) {
  if (json_equal(a, b))
    return 0;
  if (json_is_object(a) && json_is_object(b))
    return diff_objects(patch, path, a, b);
  if (json_is_array(a) && json_is_array(b))
    return diff_arrays(patch, path, a, b);
  return op(patch, "replace", path, b);
}

json_t *ly_k8s_json_diff(const json_t *from, const json_t *to) {
  json_t *patch = json_array();
  if (!patch)
    return NULL;
  if (diff(patch, "", from, to) != 0) {
    json_decref(patch);
    return NULL;
  }
  return patch;
}
