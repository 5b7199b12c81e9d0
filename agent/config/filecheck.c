/* --check's look at the files a config names: each problem at the key's
 * line:column, with its cause in words, so the operator can fix it
 * without starting the daemon. Only with LY_CONFIG_CHECK_FILES: a normal
 * start reads the files itself and says what went wrong there. */
#include "config/schema.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/x509.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (1u << 20)

static const char *cause(int err) {
  switch (err) {
  case ENOENT:
    return "no such file";
  case EACCES:
  case EPERM:
    return "permission denied";
  case EISDIR:
    return "is a directory";
  case ENOTDIR:
    return "a part of the path is not a directory";
  case ELOOP:
    return "too many symbolic links";
  default:
    return strerror(err);
  }
}

/* A directory the agent can write to, or can create: the nearest one
 * that exists on the way up is writable. */
static void check_dir(ly_schema_t *s, const ly_ynode_t *v, const char *dir,
                      const ly_file_spec_t *spec) {
  char path[4096];
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      LY_SCHEMA_ERR(s, v, "%s '%s' is not a directory", spec->what, v->str);
    else if (access(dir, W_OK) != 0)
      LY_SCHEMA_ERR(s, v, "%s '%s' is not writable: %s", spec->what, v->str,
                    cause(errno));
    return;
  }
  snprintf(path, sizeof(path), "%s", dir);
  int err = errno;
  while (err == ENOENT) {
    char *slash = strrchr(path, '/');
    if (!slash)
      snprintf(path, sizeof(path), ".");
    else
      slash[slash == path] = '\0'; /* "/a" goes up to "/" */
    if (stat(path, &st) == 0)
      err = !S_ISDIR(st.st_mode)      ? ENOTDIR
            : access(path, W_OK) != 0 ? errno
                                      : 0;
    else
      err = errno;
    if (!slash)
      break;
  }
  if (err)
    LY_SCHEMA_ERR(s, v, "%s '%s' cannot be created: %s", spec->what, v->str,
                  cause(err));
}

/* The content: PEM of the kind asked for. */
static void check_pem(ly_schema_t *s, const ly_ynode_t *v, const char *data,
                      size_t len, const ly_file_spec_t *spec) {
  if (!strstr(data, "-----BEGIN ")) {
    LY_SCHEMA_ERR(s, v, "%s '%s' is not PEM", spec->what, v->str);
    return;
  }
  if (spec->kind == LY_FILE_KEY) {
    if (!strstr(data, "PRIVATE KEY-----"))
      LY_SCHEMA_ERR(s, v, "%s '%s' holds no PEM private key", spec->what,
                    v->str);
    return;
  }
  ly_chain_t certs = {0};
  const char *why = NULL;
  if (ly_chain_from_pem(data, len, &certs, &why) != 0)
    LY_SCHEMA_ERR(s, v, "%s '%s': %s", spec->what, v->str,
                  why ? why : "not PEM certificates");
  else if (certs.n == 0)
    LY_SCHEMA_ERR(s, v, "%s '%s' holds no PEM certificate", spec->what, v->str);
  ly_chain_free(&certs);
}

void ly_schema_check_file(ly_schema_t *s, const ly_ynode_t *v, const char *path,
                          const ly_file_spec_t *spec) {
  struct stat st;
  if (spec->kind == LY_FILE_DIR) {
    check_dir(s, v, path, spec);
    return;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == EACCES && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    errno = EISDIR;
  if (fd < 0) {
    LY_SCHEMA_ERR(s, v, "cannot read %s '%s': %s", spec->what, v->str,
                  cause(errno));
    return;
  }
  int rc = fstat(fd, &st);
  close(fd);
  if (rc != 0 || S_ISDIR(st.st_mode)) {
    LY_SCHEMA_ERR(s, v, "cannot read %s '%s': %s", spec->what, v->str,
                  rc != 0 ? cause(errno) : cause(EISDIR));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    LY_SCHEMA_ERR(s, v, "%s '%s' is not a regular file", spec->what, v->str);
    return;
  }
  if (st.st_size == 0) {
    LY_SCHEMA_ERR(s, v, "%s '%s' is empty", spec->what, v->str);
    return;
  }
  /* A secret others can read is worth saying, not worth refusing: the
   * directory above may keep them out. */
  if (spec->secret && (st.st_mode & (S_IRGRP | S_IROTH)))
    ly_diag_warn(s->diag, s->file, v->line, v->col,
                 "%s '%s' is readable by group or others (mode 0%03o); "
                 "chmod 600 it",
                 spec->what, v->str, (unsigned)(st.st_mode & 0777));
  if (spec->kind != LY_FILE_CERTS && spec->kind != LY_FILE_KEY)
    return;
  char *data = NULL;
  size_t len = 0;
  rc = ly_file_read(path, FILE_MAX, &data, &len);
  if (rc != 0) {
    LY_SCHEMA_ERR(s, v, "cannot read %s '%s': %s", spec->what, v->str,
                  rc == LY_ETOO_BIG ? "larger than 1 MiB" : ly_strerror(rc));
    return;
  }
  check_pem(s, v, data, len, spec);
  ly_wipe(data, len);
  free(data);
}
