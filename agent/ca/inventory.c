/* The certificate inventory: one JSON line per certificate this CA replica
 * issued, appended as it signs, so `lanyard ca certs` can list them and a
 * root retirement can tell which live SVIDs still chain to the old root.
 *
 * A plain append-only file rather than a database: an issuance costs one
 * write(2) (no fsync: losing the last lines in a power cut loses only
 * history, never a credential), it survives restarts, and operators can
 * read it with jq. It is bounded: once it holds twice `max` lines, it is
 * rewritten (atomically) with the newest `max`. Each replica keeps its
 * own; the listing says which file it read. A failed write is logged and
 * never stops the CA from signing. */
#include "ca/inventory.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* Longest line read back: the fields are bounded (an ID is at most 2048). */
#define LINE_MAX_BYTES 8192

struct ly_inventory_s {
  char *path;
  size_t max;   /* lines kept at compaction */
  size_t lines; /* lines in the file now */
  int fd;
  int warned; /* the last write failed: do not log every issuance */
};

static size_t count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = 0;
  int c;
  while ((c = getc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

static int open_append(ly_inventory_t *inv) {
  inv->fd = open(inv->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  return inv->fd < 0 ? -errno : 0;
}

int ly_inventory_open(const char *path, size_t max, ly_inventory_t **out) {
  ly_inventory_t *inv = calloc(1, sizeof(*inv));
  if (!inv || !(inv->path = strdup(path))) {
    free(inv);
    return UV_ENOMEM;
  }
  inv->max = max ? max : LY_INVENTORY_DEFAULT_MAX;
  inv->lines = count_lines(path);
  int rc = open_append(inv);
  if (rc != 0) {
    ly_inventory_close(inv);
    return rc;
  }
  *out = inv;
  return 0;
}

void ly_inventory_close(ly_inventory_t *inv) {
  if (!inv)
    return;
  if (inv->fd >= 0)
    close(inv->fd);
  free(inv->path);
  free(inv);
}

const char *ly_inventory_path(const ly_inventory_t *inv) {
  return inv->path;
}

/* Keeps the newest inv->max lines: read, rewrite atomically, reopen. */
static int compact(ly_inventory_t *inv) {
  char *data = NULL;
  size_t len = 0;
  int rc =
      ly_file_read(inv->path, (inv->lines + 1) * LINE_MAX_BYTES, &data, &len);
  if (rc != 0)
    return rc;
  /* The newest lines start after the (max+1)-th newline from the end. */
  const char *start = data + len;
  size_t seen = 0;
  while (start > data && !(start[-1] == '\n' && ++seen > inv->max))
    start--;
  size_t kept_len = (size_t)(data + len - start);
  rc = ly_file_write_atomic(inv->path, start, kept_len, 0640);
  free(data);
  if (rc != 0)
    return rc;
  close(inv->fd);
  inv->lines = count_lines(inv->path);
  return open_append(inv);
}

int ly_inventory_add(ly_inventory_t *inv, const ly_issued_t *c) {
  json_t *o = json_pack(
      "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "serial", c->serial, "spiffe_id",
      c->spiffe_id, "issued_at", (json_int_t)c->issued_at, "not_before",
      (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after,
      "credential", c->credential, "caller", c->caller, "intermediate_sha256",
      c->intermediate_sha256, "root_sha256", c->root_sha256);
  char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!line)
    return UV_ENOMEM;
  size_t n = strlen(line);
  line[n] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
  ssize_t w = inv->fd >= 0 ? write(inv->fd, line, n + 1) : -1;
  int rc = w == (ssize_t)(n + 1) ? 0 : w < 0 ? -errno : UV_EIO;
  free(line);
  if (rc == 0) {
    inv->lines++;
    if (inv->lines >= 2 * inv->max)
      rc = compact(inv);
  }
  if (rc != 0 && !inv->warned)
    ly_log(LY_WARN, "inventory_write_failed", "file", inv->path, "reason",
           ly_strerror(rc), NULL);
  inv->warned = rc != 0;
  return rc;
}

int ly_inventory_each(const char *path, ly_inventory_fn fn, void *data) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  char *buf = malloc(LINE_MAX_BYTES);
  if (!buf) {
    fclose(f);
    return UV_ENOMEM;
  }
  int rc = 0;
  while (rc == 0 && fgets(buf, LINE_MAX_BYTES, f)) {
    json_t *o = json_loads(buf, 0, NULL);
    ly_issued_t c = {0};
    json_int_t issued_at, not_before, not_after;
    /* A torn last line (a crash mid-write) or a foreign line is skipped. */
    if (o &&
        json_unpack(o, "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "serial",
                    &c.serial, "spiffe_id", &c.spiffe_id, "issued_at",
                    &issued_at, "not_before", &not_before, "not_after",
                    &not_after, "credential", &c.credential, "caller",
                    &c.caller, "intermediate_sha256", &c.intermediate_sha256,
                    "root_sha256", &c.root_sha256) == 0) {
      c.issued_at = issued_at;
      c.not_before = not_before;
      c.not_after = not_after;
      rc = fn(&c, data);
    }
    json_decref(o);
  }
  free(buf);
  fclose(f);
  return rc;
}
