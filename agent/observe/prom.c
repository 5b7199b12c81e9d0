/* A growing text buffer and the Prometheus text format. */
#include "lanyard/prom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ly_buf_printf(ly_buf_t *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = b->data ? vsnprintf(b->data + b->len, room, fmt, ap) : -2;
    va_end(ap);
    if (n == -1) {
      b->failed = 1;
      return;
    }
    if (n >= 0 && (size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    size_t want = b->cap ? b->cap * 2 : 4096;
    while (n > 0 && want - b->len <= (size_t)n)
      want *= 2;
    char *grown = realloc(b->data, want);
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = want;
    b->data[b->len] = '\0';
  }
}

char *ly_buf_take(ly_buf_t *b, size_t *len) {
  if (b->failed || !b->data) {
    ly_buf_free(b);
    return NULL;
  }
  char *out = b->data;
  *len = b->len;
  memset(b, 0, sizeof(*b));
  return out;
}

void ly_buf_free(ly_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void ly_prom_family(ly_buf_t *b, const char *name, const char *type,
                    const char *help) {
  ly_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(ly_buf_t *b, const char *name, const char *suffix,
                        const char *labels, const char *extra) {
  int has = labels && *labels, more = extra && *extra;
  ly_buf_printf(b, "%s%s%s%s%s%s%s", name, suffix, has || more ? "{" : "",
                has ? labels : "", has && more ? "," : "", more ? extra : "",
                has || more ? "} " : " ");
}

void ly_prom_u64(ly_buf_t *b, const char *name, const char *labels,
                 uint64_t v) {
  sample_head(b, name, "", labels, NULL);
  ly_buf_printf(b, "%llu\n", (unsigned long long)v);
}

void ly_prom_f64(ly_buf_t *b, const char *name, const char *labels, double v) {
  sample_head(b, name, "", labels, NULL);
  ly_buf_printf(b, "%.9g\n", v);
}

void ly_prom_histogram(ly_buf_t *b, const char *name, const char *labels,
                       const double *le, const uint64_t *counts, size_t n,
                       double sum) {
  uint64_t cum = 0;
  char bound[48];
  for (size_t i = 0; i <= n; i++) {
    cum += counts[i];
    if (i < n)
      snprintf(bound, sizeof(bound), "le=\"%g\"", le[i]);
    else
      snprintf(bound, sizeof(bound), "le=\"+Inf\"");
    sample_head(b, name, "_bucket", labels, bound);
    ly_buf_printf(b, "%llu\n", (unsigned long long)cum);
  }
  sample_head(b, name, "_sum", labels, NULL);
  ly_buf_printf(b, "%.9g\n", sum);
  sample_head(b, name, "_count", labels, NULL);
  ly_buf_printf(b, "%llu\n", (unsigned long long)cum);
}

const char *ly_prom_label(const char *value, char *out, size_t len) {
  size_t o = 0;
  for (const char *p = value; *p && o + 3 < len; p++) {
    if (*p == '\\' || *p == '"') {
      out[o++] = '\\';
      out[o++] = *p;
    } else if (*p == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
  return out;
}
