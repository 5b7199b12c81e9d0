/* $LANYARD_RUN_DIR/agent-<pid>.json: where an agent's admin endpoint is
 * when it listens on a port the kernel picked (admin: 127.0.0.1:0), so
 * that several agents share a host and `lanyard status` still finds them.
 *
 *   {"pid": 4242, "admin": "127.0.0.1:40123", "spiffe_id": "spiffe://..."}
 */
#include "admin/admin.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ly_run_dir(void) {
  const char *d = getenv("LANYARD_RUN_DIR");
  return d && *d ? d : "/run/lanyard";
}

int ly_runfile_write(const char *spiffe_id, const char *host, uint16_t port,
                     char *path, size_t pathlen) {
  const char *dir = ly_run_dir();
  snprintf(path, pathlen, "%s/agent-%ld.json", dir, (long)getpid());
  int rc = ly_dir_create(dir, 0755);
  if (rc != 0)
    return rc;
  char admin[96];
  snprintf(admin, sizeof(admin), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
           port);
  json_t *doc = json_pack("{s:I,s:s,s:s}", "pid", (json_int_t)getpid(), "admin",
                          admin, "spiffe_id", spiffe_id);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (!text)
    return UV_ENOMEM;
  size_t len = strlen(text);
  text[len] = '\n'; /* json_dumps left room for the NUL: reuse it */
  rc = ly_file_write_atomic(path, text, len + 1, 0644);
  free(text);
  return rc;
}

/* A process that exists (EPERM: it does, and is not ours). */
static int alive(long pid) {
  return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

size_t ly_runfile_find(ly_runfile_t *out, size_t max) {
  DIR *d = opendir(ly_run_dir());
  if (!d)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    long pid;
    char tail[8];
    if (sscanf(de->d_name, "agent-%ld.%7s", &pid, tail) != 2 ||
        strcmp(tail, "json") != 0 || !alive(pid))
      continue; /* a file left by an agent that died is ignored */
    char path[4096], *text = NULL;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", ly_run_dir(), de->d_name);
    if (ly_file_read(path, 4096, &text, &len) != 0)
      continue;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    const char *admin = json_string_value(json_object_get(doc, "admin"));
    const char *id = json_string_value(json_object_get(doc, "spiffe_id"));
    if (admin && n < max) {
      out[n].pid = pid;
      snprintf(out[n].admin, sizeof(out[n].admin), "%s", admin);
      snprintf(out[n].spiffe_id, sizeof(out[n].spiffe_id), "%s", id ? id : "?");
      n++;
    }
    json_decref(doc);
  }
  closedir(d);
  return n;
}
