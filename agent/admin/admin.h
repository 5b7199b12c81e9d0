/* The admin HTTP endpoints of the agent and the CA, and what they share. */
#ifndef LANYARD_ADMIN_ADMIN_H
#define LANYARD_ADMIN_ADMIN_H

#include "lanyard/http.h"
#include "observe/observe.h"

#include <jansson.h>

#define LY_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct {
  ly_observer_t obs;
  ly_http_server_t *http;
  uv_loop_t *loop;
  json_t *app_probes; /* LANYARD_APP_PROBES (Kubernetes), or NULL */
  uv_timer_t quit;    /* POST /quitquitquit: SIGTERM once answered */
} ly_agent_admin_t;

/* Starts the observer and the admin server on cfg->admin. 0, or an error
 * with a message in err (the address is taken, ...). */
int ly_agent_admin_start(ly_agent_admin_t *a, uv_loop_t *loop,
                         const ly_agent_config_t *cfg, ly_identity_t *identity,
                         ly_dataplane_t *dp, char *err, size_t errlen);
void ly_agent_admin_stop(ly_agent_admin_t *a);

/* Route helpers: a 200 with a malloc'd body (NULL: 500); the method check
 * (allow: "GET, HEAD" or "POST"; 0 after answering 405); a 404. */
void ly_admin_body(ly_http_response_t *res, const char *type, char *body,
                   size_t len);
int ly_admin_method(const ly_http_request_t *req, ly_http_response_t *res,
                    const char *allow);
void ly_admin_not_found(ly_http_response_t *res);
/* A Host that is a name other than localhost means a browser was led
 * here by a DNS name that now points at loopback (DNS rebinding): 403,
 * and 0. Clients that name the admin by address, or send no Host
 * (HTTP/1.0), pass. */
int ly_admin_host_ok(const ly_http_request_t *req, ly_http_response_t *res);

/* app_health.c: the app's probes recorded by injection (see there). */
json_t *ly_app_probes_from_env(void);
void ly_app_health_handle(json_t *probes, uv_loop_t *loop,
                          const ly_http_request_t *req,
                          ly_http_response_t *res);

/* http_client.c: GET http://host:port/path, blocking, for the terminal
 * commands. 0 with the status and the body (malloc'd, NUL-terminated), or
 * an error with *why. */
int ly_http_get(const ly_hostport_t *hp, const char *path, int timeout_ms,
                int *status, char **body, const char **why);

/* An http:// or https:// URL split up (the port defaults by scheme). */
typedef struct {
  int tls;
  ly_hostport_t hp;
  char path[1024]; /* with the query; "/" if none */
} ly_url_t;
int ly_url_parse(const char *url, ly_url_t *out, const char **why);

/* One request, blocking (timeouts on each read and write): for worker
 * threads and terminal commands, never an event loop. https: the server
 * is verified against ca_file and must be named url->hp.host. */
typedef struct {
  const char *method; /* default GET */
  const ly_url_t *url;
  const char *ca_file;
  const char *bearer; /* Authorization: Bearer, or NULL */
  const char *content_type;
  const char *body;
  size_t body_len;
  int timeout_ms;
} ly_http_req_t;
/* 0 with the status and the body (malloc'd, NUL-terminated, length in
 * *body_len when not NULL), or an error with *why. */
int ly_http_fetch(const ly_http_req_t *req, int *status, char **body,
                  size_t *body_len, const char **why);

/* runfile.c: $LANYARD_RUN_DIR (default /run/lanyard)/agent-<pid>.json,
 * written by an agent whose admin port the kernel picked. */
const char *ly_run_dir(void);
/* Creates the directory (0755) and the file; its path into `path`. */
int ly_runfile_write(const char *spiffe_id, const char *host, uint16_t port,
                     char *path, size_t pathlen);
typedef struct {
  long pid;
  char admin[96];
  char spiffe_id[2100];
} ly_runfile_t;
/* The files of agents still running, up to max; how many. */
size_t ly_runfile_find(ly_runfile_t *out, size_t max);

#endif
