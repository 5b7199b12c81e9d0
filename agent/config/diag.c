#define _GNU_SOURCE /* vasprintf */
#include "lanyard/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void ly_diag_init(ly_diag_t *d) {
  d->lines = NULL;
  d->n = d->cap = d->nwarn = 0;
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
static int add(ly_diag_t *d, const char *file, int line, int col,
               const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static int add(ly_diag_t *d, const char *file, int line, int col,
               const char *kind, const char *fmt, va_list ap) {
  char *msg = NULL, *out = NULL;
  int rc = vasprintf(&msg, fmt, ap);
  if (rc < 0)
    return -1;
  rc = line > 0 ? asprintf(&out, "%s:%d:%d: %s%s", file, line, col, kind, msg)
                : asprintf(&out, "%s: %s%s", file, kind, msg);
  free(msg);
  if (rc < 0)
    return -1;
  /* Messages quote values from the file; keep each one a single line. */
  for (char *c = out; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      *c = '?';
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 8;
    char **lines = realloc(d->lines, cap * sizeof(*lines));
    if (!lines) {
      free(out);
      return -1;
    }
    d->lines = lines;
    d->cap = cap;
  }
  d->lines[d->n++] = out;
  return 0;
}

void ly_diag_add(ly_diag_t *d, const char *file, int line, int col,
                 const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add(d, file, line, col, "", fmt, ap);
  va_end(ap);
}

void ly_diag_warn(ly_diag_t *d, const char *file, int line, int col,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (add(d, file, line, col, "warning: ", fmt, ap) == 0)
    d->nwarn++;
  va_end(ap);
}

size_t ly_diag_errors(const ly_diag_t *d) {
  return d->n - d->nwarn;
}

void ly_diag_print(const ly_diag_t *d, FILE *out) {
  for (size_t i = 0; i < d->n; i++)
    fprintf(out, "%s\n", d->lines[i]);
}
