/* `lanyard ca bootstrap`: the CA of a container mesh, in one command with
 * no shell around it.
 *
 *   lanyard ca bootstrap --dir DIR --trust-domain TD --join-dir JOIN
 *       [--listen ADDR] [--admin ADDR] [--token NAME=SPIFFE_ID]...
 *       [--token-ttl 24h] [--serve] [--log-json] [--log-level LEVEL]
 *
 * 1. DIR/ca.yaml missing: `ca init` into DIR (the state volume's first
 *    start). Present: the CA is kept as it is.
 * 2. JOIN/bundle.pem: the trust bundle agents start with.
 * 3. Each --token: a fresh join token in JOIN/NAME.token, mode 0600 and
 *    owned by whoever runs this (UID 1337 in the image, the agents' UID).
 *    Minted at every start: they never sit in a compose file, and a
 *    restarted CA hands out new ones.
 * 4. --serve: `ca serve -c DIR/ca.yaml`, in this process.
 * Each step is the command of the same name, run with the same checks. */
#include "lanyard/cli.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TOKENS 32

int ly_cmd_ca_serve(int argc, char **argv);
int ly_cmd_ca(int argc, char **argv);
int ly_cmd_ca_bootstrap(int argc, char **argv);

static const char usage[] =
    "usage: lanyard ca bootstrap --dir DIR --trust-domain TD --join-dir JOIN\n"
    "         [--listen ADDR] [--admin ADDR] [--token NAME=SPIFFE_ID]...\n"
    "         [--token-ttl 24h] [--serve] [--log-json] [--log-level LEVEL]\n"
    "Creates the CA in DIR unless it exists, writes JOIN/bundle.pem and a\n"
    "fresh join token per --token in JOIN/NAME.token (mode 0600), then with\n"
    "--serve runs the CA.\n";

/* A token name becomes a file name: letters, digits, '-', '_', '.'. */
static int name_ok(const char *s, size_t n) {
  if (n == 0 || n > 64 || s[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' ||
          (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= 'A' && s[i] <= 'Z')))
      return 0;
  return 1;
}

static int copy_bundle(const char *dir, const char *join) {
  char from[4096], to[4096], *pem = NULL;
  size_t len = 0;
  snprintf(from, sizeof(from), "%s/bundle.pem", dir);
  snprintf(to, sizeof(to), "%s/bundle.pem", join);
  int rc = ly_file_read(from, 1u << 20, &pem, &len);
  if (rc == 0)
    rc = ly_file_write_atomic(to, pem, len, 0644);
  free(pem);
  if (rc != 0)
    fprintf(stderr, "lanyard ca bootstrap: %s -> %s: %s\n", from, to,
            ly_strerror(rc));
  return rc;
}

int ly_cmd_ca_bootstrap(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'},
      {"trust-domain", required_argument, NULL, 't'},
      {"join-dir", required_argument, NULL, 'J'},
      {"listen", required_argument, NULL, 'l'},
      {"admin", required_argument, NULL, 'a'},
      {"token", required_argument, NULL, 'T'},
      {"token-ttl", required_argument, NULL, 'L'},
      {"serve", no_argument, NULL, 's'},
      {"log-json", no_argument, NULL, 'j'},
      {"log-level", required_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  const char *dir = NULL, *td = NULL, *join = NULL, *listen = NULL,
             *admin = NULL, *ttl = "24h", *log_level = NULL;
  const char *tokens[MAX_TOKENS];
  int ntokens = 0, serve = 0, log_json = 0, c;
  optind = 1;
  ly_cli_name(argv, "ca bootstrap");
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      dir = optarg;
      break;
    case 't':
      td = optarg;
      break;
    case 'J':
      join = optarg;
      break;
    case 'l':
      listen = optarg;
      break;
    case 'a':
      admin = optarg;
      break;
    case 'T':
      if (ntokens == MAX_TOKENS) {
        fprintf(stderr, "lanyard ca bootstrap: at most %d --token\n",
                MAX_TOKENS);
        return LY_EXIT_USAGE;
      }
      tokens[ntokens++] = optarg;
      break;
    case 'L':
      ttl = optarg;
      break;
    case 's':
      serve = 1;
      break;
    case 'j':
      log_json = 1;
      break;
    case 'v':
      log_level = optarg;
      break;
    case 'h':
      printf("%s", usage);
      return LY_EXIT_OK;
    default:
      fprintf(stderr, "%s", usage);
      return LY_EXIT_USAGE;
    }
  }
  if (!dir || !td || !join || optind != argc) {
    fprintf(stderr, "%s", usage);
    return LY_EXIT_USAGE;
  }
  for (int i = 0; i < ntokens; i++) {
    const char *eq = strchr(tokens[i], '=');
    if (!eq || !name_ok(tokens[i], (size_t)(eq - tokens[i]))) {
      fprintf(stderr,
              "lanyard ca bootstrap: --token %s: want NAME=SPIFFE_ID, NAME "
              "of letters, digits, '-', '_' or '.'\n",
              tokens[i]);
      return LY_EXIT_USAGE;
    }
  }

  char cfg[4096];
  snprintf(cfg, sizeof(cfg), "%s/ca.yaml", dir);
  if (access(cfg, F_OK) != 0) {
    char *init[11] = {"ca",       "init",  "--trust-domain",
                      (char *)td, "--dir", (char *)dir};
    int n = 6;
    if (listen) {
      init[n++] = "--listen";
      init[n++] = (char *)listen;
    }
    if (admin) {
      init[n++] = "--admin";
      init[n++] = (char *)admin;
    }
    init[n] = NULL;
    int rc = ly_cmd_ca(n, init);
    if (rc != LY_EXIT_OK)
      return rc;
  } else {
    printf("lanyard ca bootstrap: %s exists, the CA is kept\n", cfg);
  }
  if (copy_bundle(dir, join) != 0)
    return LY_EXIT_FAIL;
  for (int i = 0; i < ntokens; i++) {
    const char *eq = strchr(tokens[i], '=');
    char out[4096];
    snprintf(out, sizeof(out), "%s/%.*s.token", join, (int)(eq - tokens[i]),
             tokens[i]);
    char *tok[] = {
        "ca",    "token",     "-c",    cfg, "--spiffe-id", (char *)eq + 1,
        "--ttl", (char *)ttl, "--out", out, NULL};
    int rc = ly_cmd_ca(10, tok);
    if (rc != LY_EXIT_OK)
      return rc;
    printf("lanyard ca bootstrap: join token for %s in %s\n", eq + 1, out);
  }
  fflush(stdout);
  if (!serve)
    return LY_EXIT_OK;
  char *srv[7] = {"serve", "-c", cfg};
  int n = 3;
  if (log_json)
    srv[n++] = "--log-json";
  if (log_level) {
    srv[n++] = "--log-level";
    srv[n++] = (char *)log_level;
  }
  srv[n] = NULL;
  return ly_cmd_ca_serve(n, srv);
}
