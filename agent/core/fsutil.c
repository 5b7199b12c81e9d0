#include "lanyard/fsutil.h"

#include "lanyard/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

int ly_file_read(const char *path, size_t max, char **data, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int rc = 0;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) {
    rc = UV_ENOMEM;
    goto out;
  }
  for (;;) {
    if (n == cap) {
      if (cap >= max) {
        rc = LY_ETOO_BIG;
        goto out;
      }
      cap = cap * 2 > max ? max : cap * 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        rc = UV_ENOMEM;
        goto out;
      }
      buf = nb;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = uv_translate_sys_error(errno);
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    rc = LY_ETOO_BIG;
    goto out;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  buf = NULL;
out:
  if (buf) {
    ly_wipe(buf, n);
    free(buf);
  }
  close(fd);
  return rc;
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return uv_translate_sys_error(errno);
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int ly_file_write_atomic(const char *path, const void *data, size_t len,
                         mode_t mode) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp)
    return UV_ENOMEM;
  snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp);
  int rc = 0;
  if (fd < 0) {
    rc = uv_translate_sys_error(errno);
    goto out;
  }
  if (fchmod(fd, mode) != 0 || (rc = write_all(fd, data, len)) != 0 ||
      fsync(fd) != 0) {
    rc = rc ? rc : uv_translate_sys_error(errno);
    close(fd);
    unlink(tmp);
    goto out;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    rc = uv_translate_sys_error(errno);
    unlink(tmp);
  }
out:
  free(tmp);
  return rc;
}

int ly_file_create(const char *path, const void *data, size_t len,
                   mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  int rc = fchmod(fd, mode) == 0 ? write_all(fd, data, len)
                                 : uv_translate_sys_error(errno);
  if (rc == 0 && fsync(fd) != 0)
    rc = uv_translate_sys_error(errno);
  close(fd);
  if (rc != 0)
    unlink(path);
  return rc;
}

int ly_dir_create(const char *path, mode_t mode) {
  struct stat st;
  if (stat(path, &st) == 0)
    return S_ISDIR(st.st_mode) ? 0 : UV_ENOTDIR;
  char *p = strdup(path);
  if (!p)
    return UV_ENOMEM;
  int rc = 0;
  /* Each prefix that ends before a slash, then the whole path; the ones
   * that exist fail with EEXIST, and a file in the way shows up as
   * ENOTDIR on the next one. */
  for (size_t i = 1, len = strlen(p); rc == 0 && i <= len; i++) {
    if (i < len && (p[i] != '/' || p[i - 1] == '/'))
      continue;
    char c = p[i];
    p[i] = '\0';
    if (mkdir(p, mode) == 0) {
      /* mkdir applies the umask; the mode asked for is the mode meant. */
      if (chmod(p, mode) != 0)
        rc = uv_translate_sys_error(errno);
    } else if (errno != EEXIST) {
      rc = uv_translate_sys_error(errno);
    }
    p[i] = c;
  }
  free(p);
  if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
    rc = UV_ENOTDIR;
  return rc;
}

char *ly_path_resolve(const char *base_file, const char *path) {
  if (path[0] == '/')
    return strdup(path);
  const char *slash = strrchr(base_file, '/');
  if (!slash)
    return strdup(path);
  size_t dlen = (size_t)(slash - base_file);
  size_t plen = strlen(path);
  char *out = malloc(dlen + 1 + plen + 1);
  if (!out)
    return NULL;
  memcpy(out, base_file, dlen);
  out[dlen] = '/';
  memcpy(out + dlen + 1, path, plen + 1);
  return out;
}

void ly_wipe(void *p, size_t len) {
  volatile unsigned char *v = p;
  while (len--)
    *v++ = 0;
}
