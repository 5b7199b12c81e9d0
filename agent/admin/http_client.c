/* A blocking HTTP GET for the terminal commands (lanyard status, mesh):
 * one request, Connection: close, the whole answer read until the server
 * closes. Never used inside an event loop. */
#include "admin/admin.h"

#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ANSWER_MAX (16u << 20)

static int connect_to(const ly_hostport_t *hp, int timeout_ms) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%u", hp->port);
  if (getaddrinfo(hp->host, port, &hints, &ai) != 0)
    return -1;
  int fd = -1;
  for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  return fd;
}

int ly_http_get(const ly_hostport_t *hp, const char *path, int timeout_ms,
                int *status, char **body, const char **why) {
  int fd = connect_to(hp, timeout_ms);
  LY_ENSURE_WHY(fd >= 0, LY_EUNAVAILABLE, why, "cannot connect");
  /* Host: the address connected to, as the admin servers want it. */
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char host[80] = "localhost";
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
    ly_addr_format((struct sockaddr *)&ss, host, sizeof(host));
  char req[512];
  int n = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                   "User-Agent: lanyard\r\n\r\n",
                   path, host);
  if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
    close(fd);
    *why = "cannot send the request";
    return LY_EUNAVAILABLE;
  }
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap + 1);
  ssize_t r = 0;
  while (buf && (r = read(fd, buf + len, cap - len)) > 0) {
    len += (size_t)r;
    if (len == cap) {
      char *grown = cap < ANSWER_MAX ? realloc(buf, cap * 2 + 1) : NULL;
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  close(fd);
  if (!buf || r < 0) {
    free(buf);
    *why = r < 0 ? "no answer in time" : "answer too large";
    return LY_EUNAVAILABLE;
  }
  buf[len] = '\0';
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
    free(buf);
    *why = "not an HTTP answer";
    return LY_EPROTO;
  }
  sep += 4;
  memmove(buf, sep, len - (size_t)(sep - buf) + 1);
  *body = buf;
  return 0;
}
