/* The CA's link to the Kubernetes API server: the cluster's JWKS (to
 * verify projected service-account tokens) and the trust-bundle ConfigMap.
 *
 * Requests are blocking HTTPS (admin/http_client.c) run on libuv's worker
 * threads; their results are applied on the CA's loop, so signing never
 * waits for the API server. At most one request of each kind is in
 * flight. The JWKS is fetched at start, every JWKS_REFRESH_S, and again
 * when a token names a key id the set does not have (such fetches at most
 * once per REFETCH_MIN_S: made-up kids cannot hammer the API server).
 * A failed fetch keeps the last good set.
 *
 * The bundle goes to the ConfigMap through the API server (PATCH, or POST
 * when it does not exist yet) rather than into a file: pods mount the
 * ConfigMap, and the kubelet refreshes mounted ConfigMaps in place, so a
 * root rotation reaches running pods without restarts; a file written by
 * the CA would reach no other pod. A pod can only mount a ConfigMap of its
 * own namespace, so with bundle_namespace_selector the CA writes one into
 * every namespace the selector picks (rescanned every NS_RESCAN_S, as
 * Istio's istiod does for istio-ca-root-cert). Every CA replica publishes
 * the same bundle (the same file, from the same Secret): writes agree.
 */
#include "ca/ca.h"

#include "admin/admin.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/log.h"

#include <ctype.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JWKS_REFRESH_S 300
#define REFETCH_MIN_S 10
#define FAIL_LOG_EVERY_S 60
#define REQUEST_TIMEOUT_MS 5000
#define TOKEN_MAX 16384
#define NS_RESCAN_S 30
#define DEFAULT_API_SERVER "https://kubernetes.default.svc"

enum { JOB_JWKS, JOB_BUNDLE, JOB__COUNT };

typedef struct {
  uv_work_t work;
  ly_kube_t *kube;
  int kind;
  struct timespec bundle_mtime; /* JOB_BUNDLE: the file published */
  json_t *done;                 /* namespaces that have it: {ns: true} */
  json_t *updated;              /* ... those this job updated */
  int failed;
  const char *where; /* what failed: a namespace, or the listing */
  char failed_ns[64];
  /* result */
  int rc, status;
  const char *why;
  char *body;
} job_t;

struct ly_kube_s {
  ly_ca_t *ca;
  uv_loop_t *loop;
  const ly_ca_config_t *cfg;
  ly_url_t jwks_url, api;
  char ns[64], name[254];
  int busy[JOB__COUNT];
  int64_t last_fetch; /* start of the last JWKS fetch */
  int64_t last_kid;   /* ... of the last one an unknown kid caused */
  int64_t last_ok;    /* last good JWKS (0: never) */
  int64_t logged_fail[JOB__COUNT];
  /* The ConfigMaps: `done` lists the namespaces that have the bundle file
   * of mtime `published`; `pending`: the last round failed somewhere. */
  struct timespec published;
  json_t *done;
  int pending;
  int64_t last_scan;
  atomic_int stopping; /* also read by the workers: stop early */
};

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

/* The bearer token, re-read each time: projected tokens rotate. NULL when
 * there is none (a cluster may serve its JWKS to anyone). */
static char *read_token(const char *path) {
  char *tok = NULL;
  size_t len = 0;
  if (!path || ly_file_read(path, TOKEN_MAX, &tok, &len) != 0)
    return NULL;
  while (len > 0 &&
         (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
    tok[--len] = '\0';
  return tok;
}

static void wipe_free(char *s) {
  if (s) {
    ly_wipe(s, strlen(s));
    free(s);
  }
}

static void jwks_work(job_t *j) {
  const ly_kube_t *k = j->kube;
  char *tok = read_token(k->cfg->kubernetes.token_file);
  ly_http_req_t req = {.url = &k->jwks_url,
                       .ca_file = k->cfg->kubernetes.ca_file,
                       .bearer = tok,
                       .timeout_ms = REQUEST_TIMEOUT_MS};
  j->rc = ly_http_fetch(&req, &j->status, &j->body, NULL, &j->why);
  wipe_free(tok);
}

/* {"data":{"bundle.pem":...}}, and, to create it, the whole object. */
static char *configmap_json(const ly_kube_t *k, const char *ns, const char *pem,
                            int whole) {
  json_t *o = json_pack("{s:{s:s}}", "data", "bundle.pem", pem);
  if (o && whole) {
    json_object_set_new(o, "apiVersion", json_string("v1"));
    json_object_set_new(o, "kind", json_string("ConfigMap"));
    json_object_set_new(o, "metadata",
                        json_pack("{s:s,s:s,s:{s:s}}", "name", k->name,
                                  "namespace", ns, "labels",
                                  "app.kubernetes.io/part-of", "lanyard"));
  }
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* One namespace's ConfigMap: PATCH, or POST when there is none yet.
 * 0, or -1 with j->rc / j->status / j->why saying why. */
static int publish_one(job_t *j, const char *ns, const char *pem,
                       const char *tok) {
  const ly_kube_t *k = j->kube;
  char *patch = configmap_json(k, ns, pem, 0);
  char *create = configmap_json(k, ns, pem, 1);
  char *body = NULL;
  ly_url_t url = k->api;
  snprintf(url.path, sizeof(url.path), "/api/v1/namespaces/%s/configmaps/%s",
           ns, k->name);
  ly_http_req_t req = {.method = "PATCH",
                       .url = &url,
                       .ca_file = k->cfg->kubernetes.ca_file,
                       .bearer = tok,
                       .content_type = "application/merge-patch+json",
                       .body = patch,
                       .body_len = patch ? strlen(patch) : 0,
                       .timeout_ms = REQUEST_TIMEOUT_MS};
  int rc = -1;
  if (!patch || !create) {
    j->rc = LY_EUNAVAILABLE;
    j->why = "out of memory";
    goto out;
  }
  j->rc = ly_http_fetch(&req, &j->status, &body, NULL, &j->why);
  if (j->rc == 0 && j->status == 404) {
    free(body);
    body = NULL;
    snprintf(url.path, sizeof(url.path), "/api/v1/namespaces/%s/configmaps",
             ns);
    req.method = "POST";
    req.content_type = "application/json";
    req.body = create;
    req.body_len = strlen(create);
    j->rc = ly_http_fetch(&req, &j->status, &body, NULL, &j->why);
  }
  rc = j->rc == 0 && j->status / 100 == 2 ? 0 : -1;
out:
  free(body);
  free(patch);
  free(create);
  return rc;
}

/* The namespaces the label selector picks, appended to out. */
static int list_namespaces(job_t *j, const char *tok, json_t *out) {
  const ly_kube_t *k = j->kube;
  ly_url_t url = k->api;
  int n =
      snprintf(url.path, sizeof(url.path), "/api/v1/namespaces?labelSelector=");
  for (const unsigned char *p =
           (const unsigned char *)k->cfg->kubernetes.bundle_namespace_selector;
       *p && n < (int)sizeof(url.path) - 4; p++)
    n += snprintf(url.path + n, sizeof(url.path) - (size_t)n,
                  isalnum(*p) || strchr("-._~", *p) ? "%c" : "%%%02X", *p);
  ly_http_req_t req = {.url = &url,
                       .ca_file = k->cfg->kubernetes.ca_file,
                       .bearer = tok,
                       .timeout_ms = REQUEST_TIMEOUT_MS};
  char *body = NULL;
  j->rc = ly_http_fetch(&req, &j->status, &body, NULL, &j->why);
  if (j->rc != 0 || j->status != 200) {
    free(body);
    return -1;
  }
  json_t *list = json_loads(body, 0, NULL), *item;
  free(body);
  size_t i;
  json_array_foreach(json_object_get(list, "items"), i, item) {
    json_t *name = json_object_get(json_object_get(item, "metadata"), "name");
    if (json_is_string(name))
      json_array_append(out, name);
  }
  json_decref(list);
  return list ? 0 : -1;
}

/* Publishes to every target namespace not in j->done yet. */
static void bundle_work(job_t *j) {
  const ly_kube_t *k = j->kube;
  char *pem = NULL, *tok = NULL;
  size_t len = 0;
  json_t *targets = json_array();
  if ((j->rc = ly_file_read(k->cfg->bundle, 1u << 20, &pem, &len)) != 0) {
    j->why = "cannot read the bundle file";
    j->failed = 1;
    goto out;
  }
  tok = read_token(k->cfg->kubernetes.token_file);
  if (k->ns[0])
    json_array_append_new(targets, json_string(k->ns));
  if (k->cfg->kubernetes.bundle_namespace_selector &&
      list_namespaces(j, tok, targets) != 0) {
    j->failed = 1;
    j->where = "listing namespaces";
  }
  size_t i;
  json_t *ns;
  json_array_foreach(targets, i, ns) {
    const char *name = json_string_value(ns);
    if (atomic_load(&k->stopping))
      break; /* shutting down: the next CA finishes the round */
    if (json_object_get(j->done, name))
      continue;
    if (publish_one(j, name, pem, tok) == 0) {
      json_object_set_new(j->done, name, json_true());
      json_array_append(j->updated, ns);
    } else {
      j->failed = 1;
      snprintf(j->failed_ns, sizeof(j->failed_ns), "%s", name);
      j->where = j->failed_ns;
    }
  }
out:
  json_decref(targets);
  free(pem);
  wipe_free(tok);
}

static void on_work(uv_work_t *w) {
  job_t *j = w->data;
  if (j->kind == JOB_JWKS)
    jwks_work(j);
  else
    bundle_work(j);
}

static void log_failure(ly_kube_t *k, int kind, const char *reason) {
  /* a failing API server must not flood the log */
  if (now_s() - k->logged_fail[kind] < FAIL_LOG_EVERY_S)
    return;
  k->logged_fail[kind] = now_s();
  if (kind == JOB_JWKS)
    ly_log(LY_WARN, "jwks_fetch_failed", "url", k->cfg->kubernetes.jwks_url,
           "reason", reason, "keeping",
           k->ca->jwks ? "the last good key set" : "no keys yet", NULL);
  else
    ly_log(LY_WARN, "bundle_configmap_failed", "configmap",
           k->cfg->kubernetes.bundle_configmap, "reason", reason, NULL);
}

static void jwks_done(ly_kube_t *k, job_t *j) {
  char reason[160];
  if (j->rc != 0) {
    log_failure(k, JOB_JWKS, j->why);
    return;
  }
  if (j->status != 200) {
    snprintf(reason, sizeof(reason), "HTTP status %d%s", j->status,
             j->status == 401 || j->status == 403
                 ? " (the CA's token may not read it: bind the role "
                   "system:service-account-issuer-discovery)"
                 : "");
    log_failure(k, JOB_JWKS, reason);
    return;
  }
  ly_jwks_t *fresh = NULL;
  const char *why = "malformed";
  if (ly_jwks_parse(j->body, strlen(j->body), &fresh, &why) != 0) {
    snprintf(reason, sizeof(reason), "bad JWKS: %s", why);
    log_failure(k, JOB_JWKS, reason);
    return;
  }
  ly_jwks_free(k->ca->jwks);
  k->ca->jwks = fresh;
  if (!k->last_ok || k->logged_fail[JOB_JWKS])
    ly_log(LY_INFO, "jwks_fetched", "url", k->cfg->kubernetes.jwks_url, NULL);
  k->last_ok = now_s();
  k->logged_fail[JOB_JWKS] = 0;
}

static void bundle_done(ly_kube_t *k, job_t *j) {
  char reason[200];
  size_t i;
  json_t *ns;
  json_array_foreach(j->updated, i, ns)
      ly_log(LY_INFO, "bundle_configmap_updated", "namespace",
             json_string_value(ns), "name", k->name, NULL);
  /* a bundle that changed meanwhile starts again from an empty set */
  if (j->bundle_mtime.tv_sec == k->published.tv_sec &&
      j->bundle_mtime.tv_nsec == k->published.tv_nsec) {
    json_decref(k->done);
    k->done = json_incref(j->done);
  }
  k->pending = j->failed;
  if (!j->failed) {
    k->logged_fail[JOB_BUNDLE] = 0;
    return;
  }
  if (j->rc == 0)
    snprintf(reason, sizeof(reason), "%s: HTTP status %d%s", j->where,
             j->status,
             j->status == 403 ? " (RBAC: the CA may not do this)" : "");
  else
    snprintf(reason, sizeof(reason), "%s: %s", j->where ? j->where : "bundle",
             j->why);
  log_failure(k, JOB_BUNDLE, reason);
}

static void after_work(uv_work_t *w, int status) {
  job_t *j = w->data;
  ly_kube_t *k = j->kube;
  k->busy[j->kind] = 0;
  if (!k->stopping && status == 0) {
    if (j->kind == JOB_JWKS)
      jwks_done(k, j);
    else
      bundle_done(k, j);
  }
  free(j->body);
  json_decref(j->done);
  json_decref(j->updated);
  free(j);
}

static void start_job(ly_kube_t *k, int kind) {
  job_t *j = calloc(1, sizeof(*j));
  if (!j)
    return;
  j->kube = k;
  j->kind = kind;
  j->work.data = j;
  j->bundle_mtime = k->ca->bundle_mtime;
  if (kind == JOB_JWKS)
    k->last_fetch = now_s();
  if (kind == JOB_BUNDLE) {
    k->last_scan = now_s();
    j->done = json_deep_copy(k->done);
    j->updated = json_array();
    if (!j->done || !j->updated) {
      json_decref(j->done);
      json_decref(j->updated);
      free(j);
      return;
    }
  }
  if (uv_queue_work(k->loop, &j->work, on_work, after_work) != 0) {
    json_decref(j->done);
    json_decref(j->updated);
    free(j);
    return;
  }
  k->busy[kind] = 1;
}

int ly_kube_start(ly_ca_t *ca, uv_loop_t *loop, ly_kube_t **out) {
  const ly_ca_config_t *cfg = ca->cfg;
  *out = NULL;
  if (!cfg->kubernetes.jwks_url && !cfg->kubernetes.bundle_configmap)
    return 0;
  ly_kube_t *k = calloc(1, sizeof(*k));
  if (!k)
    return UV_ENOMEM;
  k->ca = ca;
  k->loop = loop;
  k->cfg = cfg;
  const char *why = NULL;
  const char *api = cfg->kubernetes.api_server ? cfg->kubernetes.api_server
                    : cfg->kubernetes.jwks_url ? cfg->kubernetes.jwks_url
                                               : DEFAULT_API_SERVER;
  if ((cfg->kubernetes.jwks_url &&
       ly_url_parse(cfg->kubernetes.jwks_url, &k->jwks_url, &why) != 0) ||
      ly_url_parse(api, &k->api, &why) != 0) {
    ly_log(LY_ERROR, "kubernetes_config_failed", "reason", why, NULL);
    free(k);
    return LY_ECONFIG;
  }
  if (cfg->kubernetes.bundle_configmap) {
    /* checked by the config: ns/name, or name with a namespace selector */
    const char *cm = cfg->kubernetes.bundle_configmap;
    const char *slash = strchr(cm, '/');
    if (slash)
      snprintf(k->ns, sizeof(k->ns), "%.*s", (int)(slash - cm), cm);
    snprintf(k->name, sizeof(k->name), "%s", slash ? slash + 1 : cm);
  }
  k->done = json_object();
  if (!k->done) {
    free(k);
    return UV_ENOMEM;
  }
  /* a fake "changed" for the first tick */
  k->published.tv_nsec = -1;
  *out = k;
  ly_kube_tick(k);
  return 0;
}

void ly_kube_tick(ly_kube_t *k) {
  if (!k || k->stopping)
    return;
  if (k->cfg->kubernetes.jwks_url && !k->busy[JOB_JWKS]) {
    /* no keys yet: keep trying at the refetch pace */
    int64_t every = k->last_ok ? JWKS_REFRESH_S : REFETCH_MIN_S;
    if (!k->last_fetch || now_s() - k->last_fetch >= every)
      start_job(k, JOB_JWKS);
  }
  if (!k->cfg->kubernetes.bundle_configmap || k->busy[JOB_BUNDLE])
    return;
  int changed = k->published.tv_sec != k->ca->bundle_mtime.tv_sec ||
                k->published.tv_nsec != k->ca->bundle_mtime.tv_nsec;
  if (changed) {
    k->published = k->ca->bundle_mtime;
    json_object_clear(k->done);
  }
  /* newly labelled namespaces are found by scanning again */
  if (changed || k->pending ||
      (k->cfg->kubernetes.bundle_namespace_selector &&
       now_s() - k->last_scan >= NS_RESCAN_S))
    start_job(k, JOB_BUNDLE);
}

int ly_kube_unknown_kid(ly_kube_t *k) {
  if (!k || !k->cfg->kubernetes.jwks_url || k->stopping)
    return 0;
  if (k->busy[JOB_JWKS])
    return 1; /* it gets the set as it is now */
  /* Only fetches that tokens cause count: a rotation right after a
   * periodic fetch is still followed at once. */
  if (k->last_kid && now_s() - k->last_kid < REFETCH_MIN_S)
    return 0;
  k->last_kid = now_s();
  ly_log(LY_INFO, "jwks_refetch", "reason", "token names an unknown key id",
         NULL);
  start_job(k, JOB_JWKS);
  return 1;
}

void ly_kube_refresh(ly_kube_t *k) {
  if (!k || k->stopping)
    return;
  if (k->cfg->kubernetes.jwks_url && !k->busy[JOB_JWKS])
    start_job(k, JOB_JWKS);
  k->last_scan = 0; /* and look for new namespaces now */
}

void ly_kube_stop(ly_kube_t *k) {
  if (k)
    k->stopping = 1;
}

void ly_kube_free(ly_kube_t *k) {
  if (k)
    json_decref(k->done);
  free(k);
}
