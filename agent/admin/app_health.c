/* /app-health/<container>/<probe>: the app's own Kubernetes probes, run by
 * the agent.
 *
 * Injection points an app container's httpGet and tcpSocket probes at the
 * agent's admin port, because under strict mTLS the kubelet (which has no
 * SVID) can no longer reach the app's port, and records the originals in
 * LANYARD_APP_PROBES: {"<container>/<probe>": {"httpGet": {...},
 * "port": N} or {"tcpSocket": {...}, "port": N}}. The agent runs the
 * original against the app on loopback, from its own UID (which the
 * iptables rules leave alone), and answers as the kubelet would judge:
 * 200 when an HTTP probe got 200-399 or a TCP probe connected, else 503
 * with the reason. HTTPS probes are checked like the kubelet's, without
 * verifying the app's certificate: by a TCP connect (documented).
 *
 * A probe blocks (connect, request), so it runs on libuv's thread pool and
 * the answer is deferred: the agent's control loop never waits on an app. */
#include "admin/admin.h"

#include "lanyard/err.h"
#include "lanyard/log.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The kubelet gives up at the probe's timeoutSeconds (default 1 s) and
 * counts a failure; this only bounds a probe nobody waits for anymore. */
#define PROBE_TIMEOUT_MS 10000
#define PATH_MAX_LEN 255

typedef struct {
  uv_work_t work;
  ly_http_pending_t *pending;
  int http; /* 1: httpGet over plain HTTP; 0: a TCP connect */
  uint16_t port;
  char path[PATH_MAX_LEN + 1];
  int status; /* the app's HTTP status, or 0 */
  char why[400];
} probe_t;

json_t *ly_app_probes_from_env(void) {
  const char *env = getenv("LANYARD_APP_PROBES");
  if (!env || !*env)
    return NULL;
  json_error_t err;
  json_t *probes = json_loads(env, 0, &err);
  if (!json_is_object(probes)) {
    ly_log(LY_WARN, "app_probes_invalid", "reason",
           probes ? "not a JSON object" : err.text, NULL);
    json_decref(probes);
    return NULL;
  }
  return probes;
}

static int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {PROBE_TIMEOUT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* connect too */
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void run_probe(uv_work_t *w) {
  probe_t *p = w->data;
  if (!p->http) {
    int fd = tcp_connect(p->port);
    if (fd < 0)
      snprintf(p->why, sizeof(p->why), "cannot connect to 127.0.0.1:%u: %s",
               p->port, strerror(errno));
    else
      close(fd);
    return;
  }
  ly_hostport_t hp = {"127.0.0.1", p->port};
  char *body = NULL;
  const char *why = NULL;
  if (ly_http_get(&hp, p->path, PROBE_TIMEOUT_MS, &p->status, &body, &why) != 0)
    snprintf(p->why, sizeof(p->why), "GET http://127.0.0.1:%u%s: %s", p->port,
             p->path, why ? why : "failed");
  free(body);
}

static void answer(ly_http_pending_t *pending, int status, const char *msg) {
  ly_http_response_t res = {.status = status};
  res.body = strdup(msg);
  res.len = res.body ? strlen(res.body) : 0;
  ly_http_finish(pending, &res);
}

static void probe_done(uv_work_t *w, int status) {
  probe_t *p = w->data;
  char msg[512];
  if (status != 0) /* cancelled: the loop is closing */
    snprintf(msg, sizeof(msg), "probe cancelled\n");
  else if (p->why[0])
    snprintf(msg, sizeof(msg), "%s\n", p->why);
  else if (p->http)
    snprintf(msg, sizeof(msg), "the app answered %d\n", p->status);
  else
    snprintf(msg, sizeof(msg), "the app accepts connections on port %u\n",
             p->port);
  int ok = status == 0 && !p->why[0] &&
           (!p->http || (p->status >= 200 && p->status < 400));
  answer(p->pending, ok ? 200 : 503, msg);
  free(p);
}

/* The probe's plain-HTTP path with its query, if it fits a request line. */
static int probe_path(const json_t *get, char *out, size_t len) {
  const char *path = json_string_value(json_object_get(get, "path"));
  if (!path || !*path)
    path = "/";
  if (path[0] != '/' || strlen(path) >= len || strpbrk(path, " \r\n\t"))
    return -1;
  snprintf(out, len, "%s", path);
  return 0;
}

void ly_app_health_handle(json_t *probes, uv_loop_t *loop,
                          const ly_http_request_t *req,
                          ly_http_response_t *res) {
  const char *key = req->path + strlen("/app-health/");
  const json_t *probe = json_object_get(probes, key);
  json_int_t port = json_integer_value(json_object_get(probe, "port"));
  if (!probe || port < 1 || port > 65535) {
    ly_admin_not_found(res);
    return;
  }
  probe_t *p = calloc(1, sizeof(*p));
  if (!p) {
    res->status = 500;
    return;
  }
  p->port = (uint16_t)port;
  const json_t *get = json_object_get(probe, "httpGet");
  const char *scheme = json_string_value(json_object_get(get, "scheme"));
  p->http = get && !(scheme && strcasecmp(scheme, "HTTPS") == 0);
  if (p->http && probe_path(get, p->path, sizeof(p->path)) != 0) {
    free(p);
    res->status = 500;
    res->body = strdup("the recorded probe's path is not usable\n");
    res->len = res->body ? strlen(res->body) : 0;
    return;
  }
  p->work.data = p;
  p->pending = ly_http_defer(req);
  if (uv_queue_work(loop, &p->work, run_probe, probe_done) != 0) {
    answer(p->pending, 500, "cannot run the probe\n");
    free(p);
  }
}
