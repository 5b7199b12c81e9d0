/* `lanyard injector`: placeholder until the webhook lands. */
#include "lanyard/cli.h"

#include <stdio.h>

int ly_cmd_injector(int argc, char **argv) {
  fprintf(stderr, "lanyard injector: not built yet\n");
  return LY_EXIT_FAIL;
}
