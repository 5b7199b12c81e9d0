#include "config/schema.h"

#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/spiffe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(obj, off, type) ((type *)((char *)(obj) + (off)))

void ly_schema_error(ly_schema_t *s, int line, int col, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  ly_diag_add(s->diag, s->file, line, col, "%s", msg);
  s->nerr++;
}

static void oom(ly_schema_t *s, const ly_ynode_t *at) {
  LY_SCHEMA_ERR(s, at, "out of memory");
}

/* Levenshtein distance, capped: anything above 3 is "far". */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 3)
    return 99;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The one known key within two edits of a typo, or NULL (none, or more
 * than one: a guess between two would mislead). */
static const char *suggest(const ly_field_t *fields, const char *key) {
  const char *hit = NULL;
  for (size_t k = 0; fields[k].key; k++) {
    if (edit_distance(key, fields[k].key) <= 2) {
      if (hit)
        return NULL;
      hit = fields[k].key;
    }
  }
  return hit;
}

uint32_t ly_schema_map(ly_schema_t *s, const ly_ynode_t *map, const char *where,
                       const ly_field_t *fields, void *obj, uint32_t *ok) {
  uint32_t seen = 0, valid = 0;
  for (size_t i = 0; i < map->n; i++) {
    const ly_ypair_t *p = &map->pairs[i];
    size_t k = 0;
    while (fields[k].key && strcmp(fields[k].key, p->key) != 0)
      k++;
    if (!fields[k].key) {
      const char *near = suggest(fields, p->key);
      char hint[96] = "";
      if (near)
        snprintf(hint, sizeof(hint), "; did you mean '%s'?", near);
      if (*where)
        ly_schema_error(s, p->line, p->col, "unknown key '%.100s' in %s%s",
                        p->key, where, hint);
      else
        ly_schema_error(s, p->line, p->col,
                        "unknown key '%.100s' at the top level%s", p->key,
                        hint);
      continue;
    }
    seen |= 1u << k;
    if (fields[k].fn(s, p->value, obj, &fields[k]) == 0)
      valid |= 1u << k;
  }
  for (size_t k = 0; fields[k].key; k++)
    if (fields[k].required && !(seen & (1u << k)))
      LY_SCHEMA_ERR(s, map, "missing required key '%s'", fields[k].key);
  if (ok)
    *ok = valid;
  return seen;
}

int ly_schema_kind(ly_schema_t *s, const ly_ynode_t *v, ly_ynode_kind_t kind) {
  if (v->invalid)
    return -1; /* reported when the tree was built */
  if (v->kind == kind)
    return 0;
  switch (kind) {
  case LY_YNODE_MAP:
    LY_SCHEMA_ERR(s, v, "expected a mapping");
    break;
  case LY_YNODE_SEQ:
    LY_SCHEMA_ERR(s, v, "expected a list");
    break;
  case LY_YNODE_SCALAR:
  default:
    LY_SCHEMA_ERR(s, v, "expected a string");
    break;
  }
  return -1;
}

int ly_schema_str(ly_schema_t *s, const ly_ynode_t *v, const char **out) {
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_SCALAR));
  if (v->plain &&
      (!*v->str || !strcmp(v->str, "~") || !strcmp(v->str, "null"))) {
    LY_SCHEMA_ERR(s, v, "expected a string, not null");
    return -1;
  }
  if (!*v->str) {
    LY_SCHEMA_ERR(s, v, "expected a non-empty string");
    return -1;
  }
  *out = v->str;
  return 0;
}

int ly_schema_int(ly_schema_t *s, const ly_ynode_t *v, long min, long max,
                  const char *what, long *out) {
  if (v->invalid)
    return -1;
  const char *p = v->kind == LY_YNODE_SCALAR && v->plain ? v->str : "";
  long n = 0;
  int neg = *p == '-';
  p += neg;
  if (!*p || strspn(p, "0123456789") != strlen(p)) {
    LY_SCHEMA_ERR(s, v, "expected an integer");
    return -1;
  }
  /* saturate: anything this long is out of range anyway */
  for (; *p && n < 1000000000L; p++)
    n = n * 10 + (*p - '0');
  n = neg ? -n : n;
  if (n < min || n > max) {
    LY_SCHEMA_ERR(s, v, "%s must be %ld..%ld", what, min, max);
    return -1;
  }
  *out = n;
  return 0;
}

int ly_f_string(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f) {
  const char *str;
  LY_GUARD(ly_schema_str(s, v, &str));
  if (f->off == SIZE_MAX)
    return 0;
  if ((*AT(obj, f->off, char *) = strdup(str)) == NULL) {
    oom(s, v);
    return -1;
  }
  return 0;
}

int ly_f_path(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f) {
  const char *str;
  LY_GUARD(ly_schema_str(s, v, &str));
  char *path = ly_path_resolve(s->file, str);
  if (!path) {
    oom(s, v);
    return -1;
  }
  *AT(obj, f->off, char *) = path;
  if (!s->check_files || !f->arg)
    return 0;
  int before = s->nerr;
  ly_schema_check_file(s, v, path, f->arg);
  return s->nerr == before ? 0 : -1;
}

int ly_f_duration(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f) {
  const char *str, *why = NULL;
  const uint64_t *min = f->arg;
  uint64_t ms;
  char buf[32];
  LY_GUARD(ly_schema_str(s, v, &str));
  if (ly_duration_parse(str, &ms, &why) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid duration: %s", why);
    return -1;
  }
  if (min && ms < *min) {
    LY_SCHEMA_ERR(s, v, "%s must be at least %s", f->key,
                  ly_duration_format(*min, buf, sizeof(buf)));
    return -1;
  }
  *AT(obj, f->off, uint64_t) = ms;
  return 0;
}

int ly_f_duration_range(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                        const ly_field_t *f) {
  const uint64_t *range = f->arg;
  const char *str, *why = NULL;
  uint64_t ms;
  char lo[32], hi[32];
  LY_GUARD(ly_schema_str(s, v, &str));
  if (ly_duration_parse(str, &ms, &why) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid duration: %s", why);
    return -1;
  }
  if (ms < range[0] || ms > range[1]) {
    LY_SCHEMA_ERR(s, v, "%s must be %s..%s", f->key,
                  ly_duration_format(range[0], lo, sizeof(lo)),
                  ly_duration_format(range[1], hi, sizeof(hi)));
    return -1;
  }
  *AT(obj, f->off, uint64_t) = ms;
  return 0;
}

static int hostport(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f, int allow_names) {
  const char *str, *why = NULL;
  LY_GUARD(ly_schema_str(s, v, &str));
  if (ly_hostport_parse(str, allow_names, AT(obj, f->off, ly_hostport_t),
                        &why) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid address: %s", why);
    return -1;
  }
  return 0;
}

int ly_f_listen(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f) {
  return hostport(s, v, obj, f, f->arg ? LY_HOSTPORT_PORT0 : 0);
}

int ly_f_address(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                 const ly_field_t *f) {
  return hostport(s, v, obj, f, 1);
}

int ly_f_port(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f) {
  long n;
  LY_GUARD(ly_schema_int(s, v, 1, 65535, "port", &n));
  *AT(obj, f->off, uint16_t) = (uint16_t)n;
  return 0;
}

/* Checks that v is a non-empty list; 0 or -1. */
static int nonempty_list(ly_schema_t *s, const ly_ynode_t *v,
                         const char *hint) {
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_SEQ));
  if (v->n == 0) {
    LY_SCHEMA_ERR(s, v, "expected a non-empty list%s", hint);
    return -1;
  }
  return 0;
}

int ly_f_ports(ly_schema_t *s, const ly_ynode_t *v, void *obj,
               const ly_field_t *f) {
  LY_GUARD(nonempty_list(s, v, " (leave 'ports' out for every port)"));
  uint16_t *ports = calloc(v->n, sizeof(*ports));
  int bad = 0;
  if (!ports) {
    oom(s, v);
    return -1;
  }
  for (size_t i = 0; i < v->n; i++) {
    long n = 0;
    bad |= ly_schema_int(s, v->items[i], 1, 65535, "port", &n);
    ports[i] = (uint16_t)n;
  }
  if (bad) {
    free(ports);
    return -1;
  }
  *AT(obj, f->off, uint16_t *) = ports;
  *AT(obj, f->off2, size_t) = v->n;
  return 0;
}

int ly_f_enum(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f) {
  const char *const *names = f->arg;
  const char *str;
  char list[256] = "";
  size_t n = 0;
  LY_GUARD(ly_schema_str(s, v, &str));
  for (; names[n]; n++) {
    if (strcmp(names[n], str) == 0) {
      *AT(obj, f->off, int) = (int)n;
      return 0;
    }
  }
  for (size_t i = 0, len = 0; i < n && len < sizeof(list); i++)
    len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                            i == 0       ? ""
                            : i + 1 == n ? " or "
                                         : ", ",
                            names[i]);
  LY_SCHEMA_ERR(s, v, "expected %s", list);
  return -1;
}

int ly_f_trust_domain(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                      const ly_field_t *f) {
  const char *str, *why = NULL;
  LY_GUARD(ly_schema_str(s, v, &str));
  if (ly_trust_domain_check(str, strlen(str), &why) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid trust domain: %s", why);
    return -1;
  }
  return ly_f_string(s, v, obj, f);
}

/* A workload's ID or a pattern ("<id>/*"): valid, and in the trust
 * domain. Only a pattern's base may be the bare trust domain. */
static int id_check(ly_schema_t *s, const ly_ynode_t *v, int pattern,
                    const char **out) {
  const char *str, *why = NULL;
  ly_spiffe_id_t id;
  LY_GUARD(ly_schema_str(s, v, &str));
  size_t len = strlen(str);
  int prefix = pattern && len >= 2 && !strcmp(str + len - 2, "/*");
  if ((prefix ? ly_spiffe_id_parse(str, len - 2, &id, &why)
              : ly_spiffe_workload_id_parse(str, len, &id, &why)) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid SPIFFE ID%s: %s", pattern ? " pattern" : "",
                  why);
    return -1;
  }
  if (s->td && !ly_spiffe_id_in_domain(&id, s->td)) {
    LY_SCHEMA_ERR(s, v, "SPIFFE ID%s %s is outside trust domain %s",
                  pattern ? " pattern" : "", str, s->td);
    return -1;
  }
  *out = str;
  return 0;
}

int ly_f_spiffe_id(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                   const ly_field_t *f) {
  const char *str;
  LY_GUARD(id_check(s, v, 0, &str));
  return ly_f_string(s, v, obj, f);
}

int ly_f_patterns(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f) {
  LY_GUARD(nonempty_list(s, v, ""));
  char **list = calloc(v->n, sizeof(*list));
  int bad = 0;
  if (!list) {
    oom(s, v);
    return -1;
  }
  for (size_t i = 0; i < v->n; i++) {
    const char *str;
    if (id_check(s, v->items[i], 1, &str) != 0)
      bad = -1;
    else if ((list[i] = strdup(str)) == NULL)
      oom(s, v), bad = -1;
  }
  if (bad) {
    for (size_t i = 0; i < v->n; i++)
      free(list[i]);
    free(list);
    return -1;
  }
  *AT(obj, f->off, char **) = list;
  *AT(obj, f->off2, size_t) = v->n;
  return 0;
}

int ly_f_map(ly_schema_t *s, const ly_ynode_t *v, void *obj,
             const ly_field_t *f) {
  int before = s->nerr;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  ly_schema_map(s, v, f->key, f->arg, obj, NULL);
  return s->nerr == before ? 0 : -1;
}

const ly_ynode_t *ly_schema_load(ly_schema_t *s, const char *path,
                                 ly_ynode_t **tree) {
  if ((s->data ? ly_yaml_parse(path, s->data, s->len, tree, s->diag)
               : ly_yaml_load(path, tree, s->diag)) != 0)
    s->nerr++;
  const ly_ynode_t *root = *tree;
  if (!root) {
    if (s->nerr == 0)
      ly_schema_error(s, 1, 1, "the file is empty; expected a mapping");
    return NULL;
  }
  if (ly_schema_kind(s, root, LY_YNODE_MAP) != 0)
    return NULL;
  const ly_ypair_t *td = ly_ynode_find(root, "trust_domain");
  if (td && td->value->kind == LY_YNODE_SCALAR && !td->value->invalid &&
      ly_trust_domain_check(td->value->str, strlen(td->value->str), NULL) == 0)
    s->td = td->value->str;
  return root;
}

void ly_schema_exclusive(ly_schema_t *s, const ly_ynode_t *map, const char *a,
                         const char *b) {
  const ly_ypair_t *pa = ly_ynode_find(map, a), *pb = ly_ynode_find(map, b);
  if (!pa || !pb)
    return;
  const ly_ypair_t *later = pa > pb ? pa : pb;
  ly_schema_error(s, later->line, later->col,
                  "'%s' and '%s' are mutually exclusive", a, b);
}
