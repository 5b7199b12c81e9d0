/* origdst_echo: a TCP server for the interception tests. For every
 * connection it writes the original destination, as ly_original_dst
 * recovers it, and closes:
 *
 *   origdst_echo --port 15006 [--bind ADDR] [--tag TEXT]
 *
 * answers "10.0.0.2:8080\n" (or "[fd00::2]:8080\n"), prefixed by "TEXT "
 * with --tag, or "none <error>\n" when there is no conntrack entry. The
 * default bind address is "::", dual-stack, so one listener sees IPv4 (as
 * v4-mapped peers) and IPv6. Prints "listening PORT" once it accepts
 * connections; exits 0 on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE /* accept4 */
#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void die(const char *what) {
  fprintf(stderr, "origdst_echo: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int listen_on(const char *bind_addr, unsigned port) {
  struct sockaddr_storage ss = {0};
  socklen_t len = 0;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof(*s6);
  } else if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    len = sizeof(*s4);
  } else {
    errno = EINVAL;
    die("--bind is not an IP address");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    die("bind");
  if (listen(fd, 64) != 0)
    die("listen");
  return fd;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                       {"bind", required_argument, NULL, 'b'},
                                       {"tag", required_argument, NULL, 't'},
                                       {0}};
  const char *bind_addr = "::", *tag = NULL;
  unsigned port = 0;
  int c;
  while ((c = getopt_long(argc, argv, "p:b:t:", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      port = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 'b':
      bind_addr = optarg;
      break;
    case 't':
      tag = optarg;
      break;
    default:
      fprintf(stderr, "usage: origdst_echo --port P [--bind ADDR] "
                      "[--tag TEXT]\n");
      return 2;
    }
  }
  if (port == 0 || port > 65535) {
    fprintf(stderr, "origdst_echo: --port 1..65535 is required\n");
    return 2;
  }
  /* No SA_RESTART: the signal must interrupt accept(). */
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int lfd = listen_on(bind_addr, port);
  printf("listening %u\n", port);
  fflush(stdout);
  while (!stopping) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      die("accept");
    }
    struct sockaddr_storage dst;
    char addr[INET6_ADDRSTRLEN + 16], line[256];
    int rc = ly_original_dst(fd, &dst);
    if (rc == 0)
      ly_addr_format((struct sockaddr *)&dst, addr, sizeof(addr));
    else
      snprintf(addr, sizeof(addr), "none %s", ly_err_name(rc));
    int n = snprintf(line, sizeof(line), "%s%s%s\n", tag ? tag : "",
                     tag ? " " : "", addr);
    if (write(fd, line, (size_t)n) < 0)
      fprintf(stderr, "origdst_echo: write: %s\n", strerror(errno));
    printf("%s", line); /* the test's log */
    fflush(stdout);
    close(fd);
  }
  close(lfd);
  return 0;
}
