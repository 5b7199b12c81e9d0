/* `lanyard healthcheck [--admin HOST:PORT] [--wait DURATION]`: the
 * container health test, with no curl in the image.
 *
 * Exit 0 when the agent (or the CA: point --admin at its admin port)
 * answers /readyz with 200; 1 with the reason otherwise: its 503 body
 * ("no valid SVID yet: ..."), or that nothing answers. --wait polls until
 * ready or the duration has passed, for scripts that start a mesh, and
 * for the non-native Kubernetes rendering, which runs it as the agent
 * container's postStart hook: kubelet starts the next container only when
 * the hook returns, so the app starts after the agent has an identity. */
#include "admin/admin.h"

#include "lanyard/cli.h"
#include "lanyard/config.h"
#include "lanyard/duration.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 2000
#define POLL_MS 250

static const char usage[] =
    "usage: lanyard healthcheck [--admin HOST:PORT] [--wait DURATION]\n"
    "Exit 0 when the agent (default admin 127.0.0.1:15020) or the CA\n"
    "(--admin 127.0.0.1:15014) is ready, 1 and why when it is not.\n"
    "--wait 30s polls until ready or 30 seconds have passed.\n";

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One probe: 1 ready, 0 not (reason in msg). */
static int probe(const ly_hostport_t *hp, char *msg, size_t len) {
  int status = 0;
  char *body = NULL;
  const char *why = NULL;
  if (ly_http_get(hp, "/readyz", TIMEOUT_MS, &status, &body, &why) != 0) {
    snprintf(msg, len, "nothing answers on %s:%u: %s", hp->host, hp->port, why);
    return 0;
  }
  /* The body's first line says why (or "ready"). */
  size_t n = body ? strcspn(body, "\n") : 0;
  if (status == 200)
    snprintf(msg, len, "%.*s", (int)n, body ? body : "");
  else
    snprintf(msg, len, "not ready (HTTP %d): %.*s", status, (int)n,
             body ? body : "");
  free(body);
  return status == 200;
}

int ly_cmd_healthcheck(int argc, char **argv) {
  static const struct option opts[] = {{"admin", required_argument, NULL, 'a'},
                                       {"wait", required_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *addr = "127.0.0.1:15020", *why = NULL;
  uint64_t wait_ms = 0;
  int c;
  optind = 1;
  ly_cli_name(argv, "healthcheck");
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'a':
      addr = optarg;
      break;
    case 'w':
      if (ly_duration_parse(optarg, &wait_ms, &why) != 0) {
        fprintf(stderr, "lanyard healthcheck: --wait %s: %s\n", optarg, why);
        return LY_EXIT_USAGE;
      }
      break;
    case 'h':
      printf("%s", usage);
      return LY_EXIT_OK;
    default:
      fprintf(stderr, "%s", usage);
      return LY_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s", usage);
    return LY_EXIT_USAGE;
  }
  ly_hostport_t hp;
  if (ly_hostport_parse(addr, 1, &hp, &why) != 0) {
    fprintf(stderr, "lanyard healthcheck: --admin %s: %s\n", addr, why);
    return LY_EXIT_USAGE;
  }
  char msg[640];
  uint64_t deadline = now_ms() + wait_ms;
  while (!probe(&hp, msg, sizeof(msg))) {
    if (now_ms() >= deadline) {
      fprintf(stderr, "lanyard healthcheck: %s\n", msg);
      return LY_EXIT_FAIL;
    }
    usleep(POLL_MS * 1000);
  }
  printf("%s\n", msg);
  return LY_EXIT_OK;
}
