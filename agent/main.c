/* lanyard: one binary, subcommands (like consul or step). */
#include "lanyard/cli.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"agent", ly_cmd_agent, "run the per-pod agent (-c agent.yaml)"},
    {"ca", ly_cmd_ca,
     "the certificate authority: init, token, serve, certs, bootstrap"},
    {"iptables", ly_cmd_iptables,
     "install the interception rules (init container)"},
    {"healthcheck", ly_cmd_healthcheck,
     "exit 0 when the agent or CA admin port says ready (probes)"},
    {"status", ly_cmd_status, "the local agent's identity and mTLS rates"},
    {"mesh", ly_cmd_mesh, "every workload's mTLS success rate (CA admin)"},
    {"check", ly_cmd_check,
     "check expiry and bundle agreement across the mesh (CA admin)"},
    {"inject", ly_cmd_inject, "add the sidecar to Kubernetes manifests"},
    {"injector", ly_cmd_injector,
     "the Kubernetes admission webhook (same rendering)"},
    {"gameday", ly_cmd_gameday,
     "rotation game days: drills on a local mesh (list, run)"},
    {"svid", ly_cmd_svid, "verify an SVID against a bundle"},
    {"version", ly_cmd_version, "print version and crypto build"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: lanyard <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
  fprintf(out, "\nRun 'lanyard <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  /* A peer that resets a connection must cost that connection only: with
   * SIGPIPE ignored, writes fail with EPIPE and are handled where they
   * happen. */
  signal(SIGPIPE, SIG_IGN);
  wolfSSL_Init();
  if (argc < 2) {
    usage(stderr);
    return LY_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return LY_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version"))
    return ly_cmd_version(argc - 1, argv + 1);
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(argv[1], commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "lanyard: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return LY_EXIT_USAGE;
}
