#include "lanyard/cli.h"
#include "lanyard/log.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ly_cli_error(const char *command, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lanyard %s: ", command);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void ly_cli_name(char **argv, const char *command) {
  static char name[64]; /* argv keeps pointing at it: one command a run */
  snprintf(name, sizeof(name), "lanyard %s", command);
  argv[0] = name;
}

int ly_daemon_args(int argc, char **argv, const char *name,
                   const char *config_name, ly_daemon_args_t *out) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check", no_argument, NULL, 'k'},
      {"log-json", no_argument, NULL, 'j'},
      {"log-level", required_argument, NULL, 'l'},
      {"iptables", no_argument, NULL, 'I'},
      {"from-env", no_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  int c;
  out->config = NULL;
  out->check = 0;
  out->iptables = 0;
  out->from_env = 0;
  optind = 1;
  ly_cli_name(argv, name);
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      out->config = optarg;
      break;
    case 'k':
      out->check = 1;
      break;
    case 'e':
      out->from_env = 1;
      break;
    case 'j':
      ly_log_set_json(1);
      break;
    case 'l':
      if (ly_log_parse_level(optarg) != 0) {
        ly_cli_error(name, "--log-level: debug, info, warn or error");
        return LY_EXIT_USAGE;
      }
      break;
    case 'I':
      out->iptables = 1;
      break;
    case 'h':
      printf(
          "usage: lanyard %s -c %s [--check] [--log-json] [--log-level "
          "info]%s\n"
          "%s",
          name, config_name, strcmp(name, "agent") == 0 ? " [--iptables]" : "",
          strcmp(name, "agent") == 0
              ? "       lanyard agent --from-env [--check] ...  (in a "
                "Kubernetes pod: the config comes from LANYARD_* variables)\n"
                "  --iptables  install the interception rules first (as root "
                "with\n              CAP_NET_ADMIN), then run as UID 1337 with "
                "no capabilities\n"
              : "");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (out->from_env && strcmp(name, "agent") != 0) {
    ly_cli_error(name, "--from-env is for the agent in a Kubernetes pod");
    return LY_EXIT_USAGE;
  }
  if (out->iptables && strcmp(name, "agent") != 0) {
    ly_cli_error(name, "--iptables is an agent option");
    return LY_EXIT_USAGE;
  }
  if (!out->config == !out->from_env) {
    ly_cli_error(name, "-c %s is required%s", config_name,
                 strcmp(name, "agent") == 0 ? " (or --from-env, not both)"
                                            : "");
    return LY_EXIT_USAGE;
  }
  return -1;
}
