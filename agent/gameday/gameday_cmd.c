/* lanyard gameday: rotation game days. The drills themselves (bring up
 * the local netns mesh, drive traffic, inject faults, measure, chart) are
 * an operator tool written in Python 3 (Debian's python3, standard
 * library only): deploy/gameday/gameday.py, installed beside the binary
 * as <prefix>/share/lanyard/deploy/gameday/gameday.py. This command finds
 * that script and hands it the arguments, with LANYARD set to this
 * binary so the mesh runs the same build. */
#include "lanyard/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRIPT "deploy/gameday/gameday.py"

static int readable(const char *path) {
  return access(path, R_OK) == 0;
}

/* The script: $LANYARD_GAMEDAY_SCRIPT, else the installed copy next to
 * the binary (<prefix>/bin/lanyard -> <prefix>/share/lanyard/...), else
 * the source tree this binary was built from (a build directory). */
static int find_script(const char *self, char *out, size_t len) {
  const char *env = getenv("LANYARD_GAMEDAY_SCRIPT");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return readable(out) ? 0 : -1;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", self);
  char *slash = strrchr(dir, '/');
  if (slash) {
    *slash = '\0';
    snprintf(out, len, "%s/../share/lanyard/%s", dir, SCRIPT);
    if (readable(out))
      return 0;
  }
#ifdef LY_SOURCE_DIR
  snprintf(out, len, "%s/%s", LY_SOURCE_DIR, SCRIPT);
  if (readable(out))
    return 0;
#endif
  return -1;
}

int ly_cmd_gameday(int argc, char **argv) {
  char self[PATH_MAX], script[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    fprintf(stderr, "lanyard gameday: cannot find this binary: %s\n",
            strerror(errno));
    return LY_EXIT_FAIL;
  }
  self[n] = '\0';
  if (find_script(self, script, sizeof(script)) != 0) {
    fprintf(stderr,
            "lanyard gameday: the drill script %s is not installed beside "
            "this binary (share/lanyard/%s) nor in the source tree; set "
            "LANYARD_GAMEDAY_SCRIPT to its path\n",
            SCRIPT, SCRIPT);
    return LY_EXIT_FAIL;
  }
  /* The mesh (deploy/local/mesh.sh) runs this very binary. */
  if (!getenv("LANYARD"))
    setenv("LANYARD", self, 1);
  char **args = calloc((size_t)argc + 2, sizeof(*args));
  if (!args)
    return LY_EXIT_FAIL;
  args[0] = "python3";
  args[1] = script;
  for (int i = 1; i < argc; i++)
    args[i + 1] = argv[i];
  execvp("python3", args);
  fprintf(stderr,
          "lanyard gameday: needs Python 3 (the drills are a Python script, "
          "standard library only; on Debian: apt-get install python3): %s\n",
          strerror(errno));
  free(args);
  return LY_EXIT_FAIL;
}
