/* The agent's admin endpoints (127.0.0.1:15020 by default):
 *
 *   GET  /metrics   Prometheus text format 0.0.4
 *   GET  /healthz   200 while the process serves
 *   GET  /readyz    200 with a valid SVID, else 503 and why
 *   GET  /status    JSON: identity, bundle, success rates, failures
 *   POST /rotate    renew the SVID now (202)
 *
 * HEAD works wherever GET does. Bind it to loopback: it tells anyone who
 * can reach it who this workload talks to, and /rotate costs a signing.
 */
#include "admin/admin.h"

#include "lanyard/log.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void text(ly_http_response_t *res, int status, const char *msg) {
  res->status = status;
  res->body = strdup(msg);
  res->len = res->body ? strlen(res->body) : 0;
}

void ly_admin_body(ly_http_response_t *res, const char *type, char *body,
                   size_t len) {
  if (!body) {
    text(res, 500, "out of memory\n");
    return;
  }
  res->status = 200;
  res->content_type = type;
  res->body = body;
  res->len = len;
}

/* 1 when the request may go on: a known path with the wrong method gets
 * 405, with the methods it takes. */
int ly_admin_method(const ly_http_request_t *req, ly_http_response_t *res,
                    const char *allow) {
  int post = strcmp(req->method, "POST") == 0;
  if (strcmp(allow, "POST") == 0 ? post : !post)
    return 1;
  res->allow = allow;
  text(res, 405, "method not allowed\n");
  return 0;
}

void ly_admin_not_found(ly_http_response_t *res) {
  text(res, 404, "not found\n");
}

int ly_admin_host_ok(const ly_http_request_t *req, ly_http_response_t *res) {
  char host[256];
  snprintf(host, sizeof(host), "%s", req->host);
  char *h = host, *end;
  if (*h == '[') { /* [v6]:port */
    end = strchr(h, ']');
    if (end)
      *end = '\0';
    h++;
  } else if ((end = strrchr(h, ':')) != NULL) {
    *end = '\0';
  }
  unsigned char addr[16];
  if (!req->host[0] || strcasecmp(h, "localhost") == 0 ||
      inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)
    return 1;
  text(res, 403, "the Host must be an IP address or localhost\n");
  return 0;
}

/* The same drain as SIGTERM, through the agent's own signal handler. */
static void on_quit(uv_timer_t *t) {
  (void)t;
  kill(getpid(), SIGTERM);
}

static void handle(const ly_http_request_t *req, ly_http_response_t *res,
                   void *data) {
  ly_agent_admin_t *a = data;
  size_t len = 0;
  if (!ly_admin_host_ok(req, res))
    return;
  if (strcmp(req->path, "/healthz") == 0) {
    if (ly_admin_method(req, res, "GET, HEAD"))
      text(res, 200, "ok\n");
  } else if (strcmp(req->path, "/readyz") == 0) {
    if (!ly_admin_method(req, res, "GET, HEAD"))
      return;
    ly_identity_view_t v;
    ly_identity_view(a->obs.identity, &v);
    if (v.have) {
      text(res, 200, "ready\n");
    } else if (v.expired) {
      char msg[700], at[32];
      time_t t = (time_t)v.expired_at;
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
      snprintf(msg, sizeof(msg), "expired: the SVID ran out at %s%s%s\n", at,
               v.last_error[0] ? "; last renewal error: " : "", v.last_error);
      text(res, 503, msg);
    } else {
      char msg[600];
      snprintf(msg, sizeof(msg), "no valid SVID yet%s%s\n",
               v.last_error[0] ? ": " : "", v.last_error);
      text(res, 503, msg);
    }
  } else if (strcmp(req->path, "/metrics") == 0) {
    if (ly_admin_method(req, res, "GET, HEAD")) {
      char *body = ly_observer_metrics(&a->obs, &len);
      ly_admin_body(res, LY_PROM_CONTENT_TYPE, body, len);
    }
  } else if (strcmp(req->path, "/status") == 0) {
    if (ly_admin_method(req, res, "GET, HEAD")) {
      char *body = ly_observer_status_json(&a->obs, &len);
      ly_admin_body(res, "application/json", body, len);
    }
  } else if (strcmp(req->path, "/rotate") == 0) {
    if (!ly_admin_method(req, res, "POST"))
      return;
    /* A page in a browser on the node could post here (the port is on
     * loopback, not private to the operator). */
    if (req->from_browser) {
      text(res, 403, "refused: sent by a web page (Origin or Sec-Fetch-*)\n");
      return;
    }
    ly_log(LY_INFO, "rotation_requested", "via", "admin", NULL);
    ly_identity_rotate_now(a->obs.identity);
    text(res, 202, "rotation started\n");
  } else if (strncmp(req->path, "/app-health/", 12) == 0) {
    if (ly_admin_method(req, res, "GET, HEAD"))
      ly_app_health_handle(a->app_probes, a->loop, req, res);
  } else if (strcmp(req->path, "/quitquitquit") == 0) {
    if (!ly_admin_method(req, res, "POST"))
      return;
    /* Ends the agent (a Job's last step, with the sidecar not native):
     * only from inside the pod, and never from a web page. */
    if (!req->peer_loopback || req->from_browser) {
      text(res, 403, "refused: only from loopback, and not from a web page\n");
      return;
    }
    ly_log(LY_INFO, "quit_requested", "via", "admin", NULL);
    if (!uv_is_active((uv_handle_t *)&a->quit))
      uv_timer_start(&a->quit, on_quit, 100, 0); /* the answer goes first */
    text(res, 200, "draining, then exiting\n");
  } else {
    ly_admin_not_found(res);
  }
}

int ly_agent_admin_start(ly_agent_admin_t *a, uv_loop_t *loop,
                         const ly_agent_config_t *cfg, ly_identity_t *identity,
                         ly_dataplane_t *dp, char *err, size_t errlen) {
  ly_observer_init(&a->obs, loop, cfg, identity, dp);
  a->loop = loop;
  a->app_probes = ly_app_probes_from_env();
  uv_timer_init(loop, &a->quit);
  int rc = ly_http_server_start(loop, cfg->admin.host, cfg->admin.port, handle,
                                a, &a->http, err, errlen);
  if (rc != 0)
    ly_agent_admin_stop(a);
  return rc;
}

void ly_agent_admin_stop(ly_agent_admin_t *a) {
  ly_http_server_stop(a->http);
  a->http = NULL;
  ly_observer_stop(&a->obs);
  uv_close((uv_handle_t *)&a->quit, NULL);
  json_decref(a->app_probes); /* probes in flight hold their own copies */
  a->app_probes = NULL;
}
