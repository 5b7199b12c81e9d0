/* Small file helpers used by the CLI and the control plane (never on the
 * data path: they block). */
#ifndef LANYARD_FSUTIL_H
#define LANYARD_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole file of at most `max` bytes into a NUL-terminated malloc'd
 * buffer (*len excludes the NUL). 0, a negative errno-style code (UV_ENOENT,
 * ...), or LY_ETOO_BIG. */
int ly_file_read(const char *path, size_t max, char **data, size_t *len);

/* Writes data to path atomically: a temporary file in the same directory
 * with `mode`, fsync, rename over path. Readers see the old or the new
 * file, never a mix. */
int ly_file_write_atomic(const char *path, const void *data, size_t len,
                         mode_t mode);

/* Writes a new file, failing with UV_EEXIST if it is there (O_EXCL). */
int ly_file_create(const char *path, const void *data, size_t len, mode_t mode);

/* Makes sure the directory `path` exists, creating it and any missing
 * parents (like mkdir -p) with exactly `mode`; directories already there
 * keep theirs. 0, UV_ENOTDIR when something else is in the way, or the
 * error of the mkdir that failed. */
int ly_dir_create(const char *path, mode_t mode);

/* Joins a path relative to the directory of `base_file` (absolute paths
 * come back unchanged). Returns a malloc'd string, or NULL. */
char *ly_path_resolve(const char *base_file, const char *path);

/* Wipes secrets so the compiler cannot elide it. */
void ly_wipe(void *p, size_t len);

#endif
