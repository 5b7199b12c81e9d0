#define _GNU_SOURCE /* vasprintf */
#include "lanyard/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void ly_diag_init(ly_diag_t *d) {
  d->lines = NULL;
  d->n = d->cap = 0;
}

void ly_diag_free(ly_diag_t *d) {
  if (!d)
    return;
  for (size_t i = 0; i < d->n; i++)
    free(d->lines[i]);
  free(d->lines);
  ly_diag_init(d);
}

/* Loaders count their own errors, so a diagnostic lost to a failed
 * allocation never makes a bad file look valid. */
void ly_diag_add(ly_diag_t *d, const char *file, int line, int col,
                 const char *fmt, ...) {
  char *msg = NULL, *out = NULL;
  va_list ap;
  va_start(ap, fmt);
  int rc = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (rc < 0)
    return;
  rc = line > 0 ? asprintf(&out, "%s:%d:%d: %s", file, line, col, msg)
                : asprintf(&out, "%s: %s", file, msg);
  free(msg);
  if (rc < 0)
    return;
  /* Messages quote values from the file; keep each one a single line. */
  for (char *c = out; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      *c = '?';
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 8;
    char **lines = realloc(d->lines, cap * sizeof(*lines));
    if (!lines) {
      free(out);
      return;
    }
    d->lines = lines;
    d->cap = cap;
  }
  d->lines[d->n++] = out;
}

void ly_diag_print(const ly_diag_t *d, FILE *out) {
  for (size_t i = 0; i < d->n; i++)
    fprintf(out, "%s\n", d->lines[i]);
}
