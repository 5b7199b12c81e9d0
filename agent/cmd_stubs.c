#include "lanyard/cli.h"
#include <stdio.h>
int ly_cmd_ca(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 2; }
int ly_cmd_agent(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 2; }
