/* Text for the admin endpoints: a growing buffer, and the Prometheus text
 * exposition format (version 0.0.4) written into it.
 *
 *   ly_prom_family(b, "lanyard_x_total", "counter", "What it counts.");
 *   ly_prom_u64(b, "lanyard_x_total", "direction=\"inbound\"", 12);
 *
 * Label sets are passed preformatted; values that come from outside (a
 * SPIFFE ID) go through ly_prom_label first.
 */
#ifndef LANYARD_PROM_H
#define LANYARD_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data; /* NUL-terminated; NULL until something is written */
  size_t len, cap;
  int failed; /* out of memory: the content is incomplete */
} ly_buf_t;

void ly_buf_printf(ly_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the text over (the caller frees it); NULL if anything failed. */
char *ly_buf_take(ly_buf_t *b, size_t *len);
void ly_buf_free(ly_buf_t *b);

/* # HELP and # TYPE lines. */
void ly_prom_family(ly_buf_t *b, const char *name, const char *type,
                    const char *help);
/* One sample; labels may be NULL or "" for none. */
void ly_prom_u64(ly_buf_t *b, const char *name, const char *labels, uint64_t v);
void ly_prom_f64(ly_buf_t *b, const char *name, const char *labels, double v);
/* A histogram from per-bucket (not cumulative) counts: n bounds, counts
 * has n + 1 entries (the last is above every bound). */
void ly_prom_histogram(ly_buf_t *b, const char *name, const char *labels,
                       const double *le, const uint64_t *counts, size_t n,
                       double sum);
/* Escapes a label value (backslash, quote, newline) into out. */
const char *ly_prom_label(const char *value, char *out, size_t len);

#endif
