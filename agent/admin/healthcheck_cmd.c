/* `lanyard healthcheck`: exits 0 once the local agent's /readyz answers
 * 200. The non-native Kubernetes rendering runs it as the agent
 * container's postStart hook: kubelet starts the next container only when
 * the hook returns, so the app starts after the agent has an identity.
 * Also a container HEALTHCHECK for Docker and podman. */
#include "admin.h"
#include "lanyard/cli.h"
#include "lanyard/config.h"
#include "lanyard/duration.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ly_cmd_healthcheck(int argc, char **argv) {
  static const struct option opts[] = {{"admin", required_argument, NULL, 'a'},
                                       {"wait", required_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *addr = "127.0.0.1:15020", *why = NULL;
  uint64_t wait_ms = 0;
  ly_hostport_t hp;
  int c;

  optind = 1;
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
      printf("usage: lanyard healthcheck [--admin HOST:PORT] [--wait DUR]\n\n"
             "Exits 0 when the agent's /readyz answers 200 (127.0.0.1:15020);\n"
             "with --wait, keeps asking (every 200ms) for that long.\n");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (optind != argc || ly_hostport_parse(addr, 1, &hp, &why) != 0) {
    fprintf(stderr, "lanyard healthcheck: --admin %s: %s\n", addr,
            why ? why : "unexpected arguments");
    return LY_EXIT_USAGE;
  }
  uint64_t until = now_ms() + wait_ms;
  for (;;) {
    int status = 0;
    char *body = NULL;
    why = NULL;
    int rc = ly_http_get(&hp, "/readyz", 2000, &status, &body, &why);
    free(body);
    if (rc == 0 && status == 200)
      return LY_EXIT_OK;
    if (now_ms() >= until) {
      if (rc != 0)
        fprintf(stderr, "lanyard healthcheck: %s: %s\n", addr, why);
      else
        fprintf(stderr, "lanyard healthcheck: %s/readyz: HTTP %d\n", addr,
                status);
      return LY_EXIT_FAIL;
    }
    usleep(200 * 1000);
  }
}
