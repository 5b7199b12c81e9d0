#include "lanyard/config.h"

#include "lanyard/cli.h"
#include "lanyard/err.h"

#include <string.h>

int ly_config_check_print(const char *kind, const char *path) {
  ly_diag_t d;
  int rc = LY_ECONFIG;
  ly_diag_init(&d);
  if (strcmp(kind, "ca") == 0) {
    ly_ca_config_t *c = NULL;
    rc = ly_ca_config_load_ex(path, LY_CONFIG_CHECK_FILES, &c, &d);
    ly_ca_config_free(c);
  } else if (strcmp(kind, "agent") == 0) {
    ly_agent_config_t *c = NULL;
    rc = ly_agent_config_load_ex(path, LY_CONFIG_CHECK_FILES, &c, &d);
    ly_agent_config_free(c);
  } else {
    ly_diag_add(&d, path, 0, 0, "unknown kind of config '%s'", kind);
  }
  if (rc != 0 && d.n == 0)
    ly_diag_add(&d, path, 0, 0, "%s", ly_strerror(rc));
  ly_diag_print(&d, stderr);
  ly_diag_free(&d);
  return rc == 0 ? LY_EXIT_OK : LY_EXIT_USAGE;
}
