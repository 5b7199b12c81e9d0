#include "lanyard/cli.h"
#include "lanyard/log.h"

#include <getopt.h>
#include <stdio.h>

int ly_daemon_args(int argc, char **argv, const char *name,
                   const char *config_name, ly_daemon_args_t *out) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check", no_argument, NULL, 'k'},
      {"log-json", no_argument, NULL, 'j'},
      {"log-level", required_argument, NULL, 'l'},
      {"iptables", no_argument, NULL, 'I'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  int c;
  out->config = NULL;
  out->check = 0;
  out->iptables = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      out->config = optarg;
      break;
    case 'k':
      out->check = 1;
      break;
    case 'j':
      ly_log_set_json(1);
      break;
    case 'l':
      if (ly_log_parse_level(optarg) != 0) {
        fprintf(stderr, "%s: --log-level: debug, info, warn or error\n", name);
        return LY_EXIT_USAGE;
      }
      break;
    case 'I':
      if (!out->agent_flags) {
        fprintf(stderr, "%s: --iptables is an agent option\n", name);
        return LY_EXIT_USAGE;
      }
      out->iptables = 1;
      break;
    case 'h':
      printf("usage: %s -c %s [--check] [--log-json] [--log-level info]%s\n",
             name, config_name, out->agent_flags ? " [--iptables]" : "");
      if (out->agent_flags)
        printf("  --iptables  install the interception rules first (as root "
               "with\n              CAP_NET_ADMIN), then run as UID 1337 "
               "with no capabilities\n");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (!out->config) {
    fprintf(stderr, "%s: -c %s is required\n", name, config_name);
    return LY_EXIT_USAGE;
  }
  return -1;
}
