/* One YAML document <-> JSON, for manifests.
 *
 * Plain scalars are typed as kubectl reads them (YAML 1.1, like the
 * go-yaml library it uses): null, booleans (true/false, yes/no, on/off),
 * integers (decimal, 0x hex, 0-prefixed octal: a volume's
 * `defaultMode: 0644` is 420), floats. Quoted scalars and !!str are
 * strings (libyaml's loader gives every untagged scalar the !!str tag, so
 * an explicit one cannot be told apart: it is typed like the rest). Aliases are
 * expanded (libyaml's loader resolves them). Writing quotes every string that
 * would read back as something else. */
#include "lanyard/k8s.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 100

static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES",  "on",   "On",   "ON"};
static const char *const falses[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
/* Read as booleans by go-yaml v2 too: quoted when written. */
static const char *const also_quoted[] = {"y", "Y", "n", "N", "=", "<<"};

static int in(const char *s, const char *const *set, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, set[i]))
      return 1;
  return 0;
}
#define IN(s, set) in(s, set, sizeof(set) / sizeof(set[0]))

static int all_digits(const char *s, const char *digits) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s != '_' && !strchr(digits, *s))
      return 0;
  return 1;
}

static int is_float(const char *s) {
  const char *p = s;
  int digits = 0;
  if (*p == '+' || *p == '-')
    p++;
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF"))
    return 1;
  for (; *p >= '0' && *p <= '9'; p++)
    digits++;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++)
      digits++;
  if (!digits)
    return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return 0;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return *p == '\0';
}

/* JSON has no infinity: a number too large for a double stays text. */
static json_t *real_or_string(const char *s) {
  double d = strtod(s, NULL);
  return isfinite(d) ? json_real(d) : json_string(s);
}

/* A plain scalar as kubectl would type it. */
static json_t *plain_scalar(const char *s) {
  const char *p = s;
  char *end;
  if (IN(s, nulls))
    return json_null();
  if (IN(s, trues))
    return json_true();
  if (IN(s, falses))
    return json_false();
  if (strchr(s, '_') && strlen(s) < 64 &&
      (*p == '+' || *p == '-' || (*p >= '0' && *p <= '9'))) {
    /* 1_000 is 1000 in YAML 1.1: type it without the underscores. */
    char clean[64];
    size_t n = 0;
    for (const char *q = s; *q; q++)
      if (*q != '_')
        clean[n++] = *q;
    clean[n] = '\0';
    if (n && !strchr(clean, '_')) {
      json_t *j = plain_scalar(clean);
      if (!json_is_string(j) && !json_is_null(j) && !json_is_boolean(j))
        return j;
      json_decref(j);
    }
    return json_string(s);
  }
  if (*p == '+' || *p == '-')
    p++;
  {
    long long v;
    errno = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        all_digits(p + 2, "0123456789abcdefABCDEF"))
      v = strtoll(s, &end, 16);
    else if (p[0] == '0' && (p[1] == 'o') && all_digits(p + 2, "01234567"))
      v = strtoll(p + 2, &end, 8) * (s[0] == '-' ? -1 : 1);
    else if (p[0] == '0' && p[1] && all_digits(p + 1, "01234567"))
      v = strtoll(s, &end, 8);
    else if (all_digits(p, "0123456789"))
      v = strtoll(s, &end, 10);
    else
      goto not_int;
    if (errno == 0 && *end == '\0')
      return json_integer(v);
    return real_or_string(s); /* beyond 64 bits */
  }
not_int:
  if (is_float(s) && !strstr(s, "inf") && !strstr(s, "Inf") &&
      !strstr(s, "INF"))
    return real_or_string(s);
  return json_string(s);
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *n, int depth,
                       char *err, size_t errlen) {
  if (depth > MAX_DEPTH) {
    snprintf(err, errlen, "%zu:%zu: nested too deep", n->start_mark.line + 1,
             n->start_mark.column + 1);
    return NULL;
  }
  switch (n->type) {
  case YAML_SCALAR_NODE: {
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length) {
      snprintf(err, errlen, "%zu:%zu: a NUL byte in a string",
               n->start_mark.line + 1, n->start_mark.column + 1);
      return NULL;
    }
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
      return json_string(v);
    json_t *j = plain_scalar(v);
    if (!j)
      snprintf(err, errlen, "%zu:%zu: not UTF-8", n->start_mark.line + 1,
               n->start_mark.column + 1);
    return j;
  }
  case YAML_SEQUENCE_NODE: {
    json_t *a = json_array();
    for (yaml_node_item_t *i = n->data.sequence.items.start;
         i < n->data.sequence.items.top; i++) {
      json_t *v =
          convert(doc, yaml_document_get_node(doc, *i), depth + 1, err, errlen);
      if (!v) {
        json_decref(a);
        return NULL;
      }
      json_array_append_new(a, v);
    }
    return a;
  }
  case YAML_MAPPING_NODE: {
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      if (k->type != YAML_SCALAR_NODE) {
        snprintf(err, errlen, "%zu:%zu: a key must be a scalar",
                 k->start_mark.line + 1, k->start_mark.column + 1);
        json_decref(o);
        return NULL;
      }
      const char *key = (const char *)k->data.scalar.value;
      if (json_object_get(o, key)) {
        snprintf(err, errlen, "%zu:%zu: duplicate key '%s'",
                 k->start_mark.line + 1, k->start_mark.column + 1, key);
        json_decref(o);
        return NULL;
      }
      json_t *v = convert(doc, yaml_document_get_node(doc, p->value), depth + 1,
                          err, errlen);
      if (!v) {
        json_decref(o);
        return NULL;
      }
      if (json_object_set_new(o, key, v) != 0) {
        snprintf(err, errlen, "%zu:%zu: key is not UTF-8",
                 k->start_mark.line + 1, k->start_mark.column + 1);
        json_decref(o);
        return NULL;
      }
    }
    return o;
  }
  case YAML_NO_NODE:
  default:
    return json_null();
  }
}

int ly_k8s_yaml_to_json(const char *text, size_t len, json_t **out, char *err,
                        size_t errlen) {
  yaml_parser_t p;
  yaml_document_t doc;
  int rc = 0;

  *out = NULL;
  if (!yaml_parser_initialize(&p)) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  if (!yaml_parser_load(&p, &doc)) {
    snprintf(err, errlen, "%zu:%zu: %s", p.problem_mark.line + 1,
             p.problem_mark.column + 1, p.problem ? p.problem : "bad YAML");
    yaml_parser_delete(&p);
    return -1;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    /* One document per call: a second one is the caller's bug. */
    yaml_document_t next;
    if (yaml_parser_load(&p, &next)) {
      if (yaml_document_get_root_node(&next)) {
        snprintf(err, errlen, "%zu:%zu: more than one document",
                 p.mark.line + 1, p.mark.column + 1);
        rc = -1;
      }
      yaml_document_delete(&next);
    }
    if (rc == 0) {
      /* An empty document ("---" alone) is no object either. */
      int empty = root->type == YAML_SCALAR_NODE &&
                  root->data.scalar.length == 0 &&
                  root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
      if (!empty) {
        *out = convert(&doc, root, 0, err, errlen);
        if (!*out)
          rc = -1;
      }
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  return rc;
}

/* --- writing -----------------------------------------------------------------
 */

typedef struct {
  char *buf;
  size_t len, cap;
  int oom;
} sink_t;

static int sink_write(void *data, unsigned char *b, size_t n) {
  sink_t *s = data;
  if (s->len + n + 1 > s->cap) {
    size_t cap = (s->cap ? s->cap * 2 : 4096) + n;
    char *nb = realloc(s->buf, cap);
    if (!nb) {
      s->oom = 1;
      return 0;
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, b, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return 1;
}

/* YAML 1.1 also reads 1:30 as a (base 60) number and 2024-01-31 as a
 * date: such strings are quoted too. */
static int looks_sexagesimal_or_date(const char *s) {
  const char *p = s;
  if (*p == '+' || *p == '-')
    p++;
  if (!(*p >= '0' && *p <= '9'))
    return 0;
  if (strlen(s) >= 8 && s[4] == '-' && strspn(s, "0123456789") == 4)
    return 1; /* a date, or a timestamp */
  int colon = 0;
  for (; *p; p++) {
    if (*p == ':')
      colon = 1;
    else if (!(*p >= '0' && *p <= '9') && *p != '.' && *p != '_')
      return 0;
  }
  return colon;
}

static int needs_quotes(const char *s) {
  if (IN(s, also_quoted) || looks_sexagesimal_or_date(s))
    return 1;
  json_t *j = plain_scalar(s);
  int q = !json_is_string(j);
  json_decref(j);
  /* Leading or trailing blanks vanish from plain scalars; libyaml quotes
   * those itself, and other characters plain style cannot hold. */
  return q;
}

static int emit_scalar(yaml_emitter_t *e, const char *v, int quote) {
  yaml_event_t ev;
  yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
  if (quote)
    style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  else if (strchr(v, '\n'))
    style = YAML_LITERAL_SCALAR_STYLE;
  yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v,
                               (int)strlen(v), !quote, 1, style);
  return yaml_emitter_emit(e, &ev);
}

static int emit(yaml_emitter_t *e, const json_t *j) {
  yaml_event_t ev;
  char num[64];
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                        YAML_BLOCK_MAPPING_STYLE);
    if (!yaml_emitter_emit(e, &ev))
      return 0;
    json_object_foreach((json_t *)j, k, v) {
      if (!emit_scalar(e, k, needs_quotes(k)) || !emit(e, v))
        return 0;
    }
    yaml_mapping_end_event_initialize(&ev);
    return yaml_emitter_emit(e, &ev);
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *v;
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                         YAML_BLOCK_SEQUENCE_STYLE);
    if (!yaml_emitter_emit(e, &ev))
      return 0;
    json_array_foreach(j, i, v) {
      if (!emit(e, v))
        return 0;
    }
    yaml_sequence_end_event_initialize(&ev);
    return yaml_emitter_emit(e, &ev);
  }
  case JSON_STRING:
    return emit_scalar(e, json_string_value(j),
                       needs_quotes(json_string_value(j)));
  case JSON_INTEGER:
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return emit_scalar(e, num, 0);
  case JSON_REAL:
    snprintf(num, sizeof(num), "%.17g", json_real_value(j));
    if (!strpbrk(num, ".eE"))
      strcat(num, ".0"); /* stays a float when read back */
    return emit_scalar(e, num, 0);
  case JSON_TRUE:
    return emit_scalar(e, "true", 0);
  case JSON_FALSE:
    return emit_scalar(e, "false", 0);
  case JSON_NULL:
  default:
    return emit_scalar(e, "null", 0);
  }
}

char *ly_k8s_json_to_yaml(const json_t *doc) {
  yaml_emitter_t e;
  yaml_event_t ev;
  sink_t s = {0};
  int ok;

  if (!yaml_emitter_initialize(&e))
    return NULL;
  yaml_emitter_set_output(&e, sink_write, &s);
  yaml_emitter_set_unicode(&e, 1);
  yaml_emitter_set_width(&e, -1); /* no folding of long strings */
  yaml_emitter_set_indent(&e, 2);
  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
  ok = yaml_emitter_emit(&e, &ev);
  yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
  ok = ok && yaml_emitter_emit(&e, &ev);
  ok = ok && emit(&e, doc);
  yaml_document_end_event_initialize(&ev, 1);
  ok = ok && yaml_emitter_emit(&e, &ev);
  yaml_stream_end_event_initialize(&ev);
  ok = ok && yaml_emitter_emit(&e, &ev);
  ok = ok && yaml_emitter_flush(&e);
  yaml_emitter_delete(&e);
  if (!ok || s.oom) {
    free(s.buf);
    return NULL;
  }
  return s.buf;
}
