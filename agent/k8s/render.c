/* The sidecar rendering: what `lanyard inject` and `lanyard injector` add
 * to a pod (see include/lanyard/k8s.h and PRODUCT.md "Kubernetes").
 *
 * Order of the init containers, and why:
 *   native sidecar:  lanyard-init, lanyard-agent, <the pod's own>
 *     the rules go in first, then the agent starts (kubelet waits for its
 *     startup probe on /readyz), so the pod's own init containers already
 *     have the mesh, and the app starts with an identity;
 *   fallback:        <the pod's own>, lanyard-init
 *     without a native sidecar nothing could carry the pod's own init
 *     containers' traffic once the rules are in, so they run first, with
 *     the plain network; the agent is then the first app container, and
 *     its postStart hook holds the others until it is ready.
 */
#include "lanyard/k8s.h"
#include "lanyard/duration.h"
#include "lanyard/intercept.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_VOL "lanyard-token"
#define BUNDLE_VOL "lanyard-trust-bundle"
#define RUN_VOL "lanyard-run"
#define TOKEN_DIR "/var/run/secrets/lanyard/tokens"
#define BUNDLE_DIR "/var/run/secrets/lanyard/bundle"
#define RUN_DIR "/var/run/lanyard"

void ly_k8s_opts_init(ly_k8s_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->image = "lanyard:" LANYARD_VERSION;
  o->ca_addr = "lanyard-ca.lanyard.svc:15012";
  o->lanyard_namespace = "lanyard";
  o->bundle_configmap = "lanyard-trust-bundle";
  o->native_sidecar = 1;
}

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t len,
                                                      const char *fmt, ...) {
  va_list ap;
  if (!why || !len)
    return;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

/* --- annotations ---------------------------------------------------------- */

static const char *const known_annotations[] = {
    "inject",
    "mode",
    "exclude-inbound-ports",
    "exclude-outbound-ports",
    "exclude-outbound-cidrs",
    "include-inbound-ports",
    "ttl",
    "native-sidecar",
    "proxy-cpu",
    "proxy-memory",
    "status",
};

/* The settings, after pod annotations over namespace annotations over
 * options. Strings point into the JSON trees (or are static). */
typedef struct {
  int inject;
  int strict;
  int native;
  const char *exclude_in, *exclude_out, *exclude_cidrs, *include_in;
  const char *ttl, *cpu, *memory;
} settings_t;

static const char *ann_get(const json_t *pod_ann, const json_t *ns_ann,
                           const char *name) {
  char key[64];
  snprintf(key, sizeof(key), LY_K8S_ANN_PREFIX "%s", name);
  const json_t *v = pod_ann ? json_object_get(pod_ann, key) : NULL;
  if (!v && ns_ann)
    v = json_object_get(ns_ann, key);
  return v ? json_string_value(v) : NULL;
}

/* A Kubernetes resource quantity ("10m", "16Mi", "0.5", "1e3"), > 0. */
static int is_quantity(const char *s) {
  static const char *const suffixes[] = {"",   "m",  "k",  "M",  "G",
                                         "T",  "P",  "E",  "Ki", "Mi",
                                         "Gi", "Ti", "Pi", "Ei"};
  const char *p = s;
  int digits = 0, nonzero = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++)
    nonzero |= *p != '0';
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      nonzero |= *p != '0';
  if (!digits || !nonzero)
    return 0;
  if (*p == 'e' || *p == 'E') {
    const char *q = p + 1;
    if (*q == '+' || *q == '-')
      q++;
    if (*q >= '0' && *q <= '9') {
      while (*q >= '0' && *q <= '9')
        q++;
      return *q == '\0';
    }
  }
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
    if (!strcmp(p, suffixes[i]))
      return 1;
  return 0;
}

static int check_annotations(const json_t *ann, const char *where, char *why,
                             size_t whylen) {
  const char *key;
  json_t *v;
  if (!ann)
    return 0;
  if (!json_is_object(ann)) {
    say(why, whylen, "%s annotations must be a map of strings", where);
    return -1;
  }
  json_object_foreach((json_t *)ann, key, v) {
    if (strncmp(key, LY_K8S_ANN_PREFIX, strlen(LY_K8S_ANN_PREFIX)) != 0)
      continue;
    const char *name = key + strlen(LY_K8S_ANN_PREFIX);
    size_t i, n = sizeof(known_annotations) / sizeof(known_annotations[0]);
    for (i = 0; i < n && strcmp(name, known_annotations[i]); i++)
      ;
    if (i == n) {
      say(why, whylen,
          "%s annotation %s: unknown (known: inject, mode, "
          "exclude-inbound-ports, exclude-outbound-ports, "
          "exclude-outbound-cidrs, include-inbound-ports, ttl, "
          "native-sidecar, proxy-cpu, proxy-memory)",
          where, key);
      return -1;
    }
    if (!json_is_string(v)) {
      say(why, whylen, "%s annotation %s: must be a string (quote it)", where,
          key);
      return -1;
    }
  }
  return 0;
}

static int bad(char *why, size_t whylen, const char *name, const char *value,
               const char *what) {
  say(why, whylen, "annotation " LY_K8S_ANN_PREFIX "%s: '%s': %s", name, value,
      what);
  return -1;
}

static int settings_read(const json_t *pod_ann, const ly_k8s_opts_t *o,
                         settings_t *s, char *why, size_t whylen) {
  const json_t *ns_ann = o->ns_annotations;
  const char *v, *w = NULL;
  ly_ports_t ports;
  ly_iptables_opts_t ipt;
  uint64_t ms;

  if (check_annotations(pod_ann, "pod", why, whylen) != 0 ||
      check_annotations(ns_ann, "namespace", why, whylen) != 0)
    return -1;
  memset(s, 0, sizeof(*s));
  s->inject = 1;
  s->strict = 1;
  s->native = o->native_sidecar;
#define ANN(name) (v = ann_get(pod_ann, ns_ann, name))
  if (ANN("inject")) {
    if (strcmp(v, "enabled") && strcmp(v, "disabled"))
      return bad(why, whylen, "inject", v, "must be enabled or disabled");
    s->inject = !strcmp(v, "enabled");
  }
  if (ANN("mode")) {
    if (strcmp(v, "strict") && strcmp(v, "permissive"))
      return bad(why, whylen, "mode", v, "must be strict or permissive");
    s->strict = !strcmp(v, "strict");
  }
  if (ANN("native-sidecar")) {
    if (strcmp(v, "true") && strcmp(v, "false"))
      return bad(why, whylen, "native-sidecar", v, "must be true or false");
    s->native = !strcmp(v, "true");
  }
  if (ANN("exclude-inbound-ports")) {
    if (ly_iptables_parse_ports(v, &ports, &w) != 0)
      return bad(why, whylen, "exclude-inbound-ports", v, w);
    s->exclude_in = v;
  }
  if (ANN("exclude-outbound-ports")) {
    if (ly_iptables_parse_ports(v, &ports, &w) != 0)
      return bad(why, whylen, "exclude-outbound-ports", v, w);
    s->exclude_out = v;
  }
  if (ANN("include-inbound-ports")) {
    if (strcmp(v, "*") && ly_iptables_parse_ports(v, &ports, &w) != 0)
      return bad(why, whylen, "include-inbound-ports", v,
                 "must be '*' or a comma-separated list of ports");
    s->include_in = v;
  }
  if (ANN("exclude-outbound-cidrs")) {
    ly_iptables_opts_init(&ipt);
    if (ly_iptables_parse_cidrs(v, &ipt, &w) != 0)
      return bad(why, whylen, "exclude-outbound-cidrs", v, w);
    s->exclude_cidrs = v;
  }
  if (ANN("ttl")) {
    if (ly_duration_parse(v, &ms, &w) != 0)
      return bad(why, whylen, "ttl", v, w ? w : "is not a duration like 1h");
    if (ms < 60000)
      return bad(why, whylen, "ttl", v, "is under a minute");
    s->ttl = v;
  }
  if (ANN("proxy-cpu")) {
    if (!is_quantity(v))
      return bad(why, whylen, "proxy-cpu", v,
                 "is not a CPU quantity like 10m or 0.5");
    s->cpu = v;
  }
  if (ANN("proxy-memory")) {
    if (!is_quantity(v))
      return bad(why, whylen, "proxy-memory", v,
                 "is not a memory quantity like 16Mi");
    s->memory = v;
  }
#undef ANN
  return 0;
}

int ly_k8s_check_annotations(const json_t *ann, char *why, size_t whylen) {
  ly_k8s_opts_t o;
  settings_t s;
  ly_k8s_opts_init(&o);
  o.ns_annotations = ann;
  return settings_read(NULL, &o, &s, why, whylen);
}

/* --- helpers ---------------------------------------------------------------
 */

static json_t *obj_child(json_t *parent, const char *key, json_t *status,
                         const char *created_name) {
  json_t *c = json_object_get(parent, key);
  if (!c) {
    c = json_object();
    json_object_set_new(parent, key, c);
    if (status)
      json_array_append_new(json_object_get(status, "created"),
                            json_string(created_name));
  }
  return c;
}

static json_t *arr_child(json_t *parent, const char *key, json_t *status,
                         const char *created_name) {
  json_t *c = json_object_get(parent, key);
  if (!c) {
    c = json_array();
    json_object_set_new(parent, key, c);
    json_array_append_new(json_object_get(status, "created"),
                          json_string(created_name));
  }
  return c;
}

static json_t *find_named(const json_t *arr, const char *name) {
  size_t i;
  json_t *it;
  json_array_foreach(arr, i, it) {
    const char *n = json_string_value(json_object_get(it, "name"));
    if (n && !strcmp(n, name))
      return it;
  }
  return NULL;
}

static json_t *env_field(const char *name, const char *path) {
  return json_pack("{s:s, s:{s:{s:s}}}", "name", name, "valueFrom", "fieldRef",
                   "fieldPath", path);
}

static json_t *env_value(const char *name, const char *value) {
  return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *resources(const settings_t *s) {
  return json_pack("{s:{s:s, s:s}}", "requests", "cpu", s->cpu ? s->cpu : "10m",
                   "memory", s->memory ? s->memory : "16Mi");
}

static json_t *readyz_probe(int period, int failures) {
  return json_pack("{s:{s:s, s:i, s:s}, s:i, s:i}", "httpGet", "path",
                   "/readyz", "port", LY_K8S_ADMIN_PORT, "scheme", "HTTP",
                   "periodSeconds", period, "failureThreshold", failures);
}

/* --- the containers ---------------------------------------------------------
 */

static json_t *init_container(const ly_k8s_opts_t *o, const settings_t *s) {
  char n[16];
  json_t *cmd = json_pack("[s, s]", "lanyard", "iptables");
  json_t *c;
#define ARG(flag, val)                                                         \
  do {                                                                         \
    json_array_append_new(cmd, json_string(flag));                             \
    json_array_append_new(cmd, json_string(val));                              \
  } while (0)
  snprintf(n, sizeof(n), "%d", LY_K8S_PROXY_UID);
  ARG("--proxy-uid", n);
  snprintf(n, sizeof(n), "%d", LY_K8S_INBOUND_PORT);
  ARG("--inbound-port", n);
  snprintf(n, sizeof(n), "%d", LY_K8S_OUTBOUND_PORT);
  ARG("--outbound-port", n);
  snprintf(n, sizeof(n), "%d", LY_K8S_ADMIN_PORT);
  ARG("--admin-port", n);
  if (s->exclude_in) {
    /* The admin port stays exempt either way (--admin-port). */
    ARG("--exclude-inbound-ports", s->exclude_in);
  }
  if (s->exclude_out)
    ARG("--exclude-outbound-ports", s->exclude_out);
  if (s->include_in)
    ARG("--include-inbound-ports", s->include_in);
  if (s->exclude_cidrs)
    ARG("--exclude-outbound-cidrs", s->exclude_cidrs);
#undef ARG
  /* Root in the pod's network namespace for iptables-restore, with the
   * two capabilities it needs and nothing else. iptables takes its lock
   * under /run, so the root filesystem stays writable for this one
   * short-lived step. */
  c = json_pack("{s:s, s:s, s:s, s:o, s:o, s:{s:b, s:b, s:b, s:i, s:i, s:b, "
                "s:{s:[s, s], s:[s]}}}",
                "name", LY_K8S_INIT_NAME, "image", o->image, "imagePullPolicy",
                "IfNotPresent", "command", cmd, "resources", resources(s),
                "securityContext", "privileged", 0, "allowPrivilegeEscalation",
                0, "runAsNonRoot", 0, "runAsUser", 0, "runAsGroup", 0,
                "readOnlyRootFilesystem", 0, "capabilities", "add", "NET_ADMIN",
                "NET_RAW", "drop", "ALL");
  return c;
}

static json_t *agent_container(const ly_k8s_opts_t *o, const settings_t *s,
                               int native, const json_t *app_probes) {
  char port[16];
  json_t *env, *c;
  snprintf(port, sizeof(port), "%d", LY_K8S_INBOUND_PORT);
  env = json_array();
  json_array_append_new(env,
                        env_field("LANYARD_NAMESPACE", "metadata.namespace"));
  json_array_append_new(
      env, env_field("LANYARD_SERVICE_ACCOUNT", "spec.serviceAccountName"));
  json_array_append_new(env, env_field("LANYARD_POD_NAME", "metadata.name"));
  json_array_append_new(env, env_field("LANYARD_POD_IP", "status.podIP"));
  json_array_append_new(env, env_value("LANYARD_CA_ADDR", o->ca_addr));
  json_array_append_new(env,
                        env_value("LANYARD_TOKEN_FILE", TOKEN_DIR "/token"));
  json_array_append_new(
      env, env_value("LANYARD_BUNDLE_FILE", BUNDLE_DIR "/bundle.pem"));
  json_array_append_new(env, env_value("LANYARD_ADMIN", "0.0.0.0:15020"));
  json_array_append_new(env, env_value("LANYARD_INBOUND_PORT", port));
  snprintf(port, sizeof(port), "%d", LY_K8S_OUTBOUND_PORT);
  json_array_append_new(env, env_value("LANYARD_OUTBOUND_PORT", port));
  json_array_append_new(
      env, env_value("LANYARD_MODE", s->strict ? "strict" : "permissive"));
  if (s->ttl)
    json_array_append_new(env, env_value("LANYARD_TTL", s->ttl));
  if (json_object_size(app_probes)) {
    char *probes = json_dumps(app_probes, JSON_COMPACT | JSON_SORT_KEYS);
    json_array_append_new(env, env_value("LANYARD_APP_PROBES", probes));
    free(probes);
  }
  c = json_pack(
      "{s:s, s:s, s:s, s:[s, s, s], s:[{s:s, s:i, s:s}], s:o, s:o, "
      "s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:s}], "
      "s:{s:i, s:i, s:b, s:b, s:b, s:b, s:{s:[s]}, s:{s:s}}}",
      "name", LY_K8S_AGENT_NAME, "image", o->image, "imagePullPolicy",
      "IfNotPresent", "command", "lanyard", "agent", "--from-env", "ports",
      "name", "lanyard-admin", "containerPort", LY_K8S_ADMIN_PORT, "protocol",
      "TCP", "env", env, "resources", resources(s), "volumeMounts", "name",
      TOKEN_VOL, "mountPath", TOKEN_DIR, "readOnly", 1, "name", BUNDLE_VOL,
      "mountPath", BUNDLE_DIR, "readOnly", 1, "name", RUN_VOL, "mountPath",
      RUN_DIR, "securityContext", "runAsUser", LY_K8S_PROXY_UID, "runAsGroup",
      LY_K8S_PROXY_UID, "runAsNonRoot", 1, "readOnlyRootFilesystem", 1,
      "allowPrivilegeEscalation", 0, "privileged", 0, "capabilities", "drop",
      "ALL", "seccompProfile", "type", "RuntimeDefault");
  json_object_set_new(c, "readinessProbe", readyz_probe(2, 3));
  if (native) {
    /* kubelet starts the next container only once this passes: the
     * pod's own init containers and the app find the agent ready. */
    json_object_set_new(c, "restartPolicy", json_string("Always"));
    json_object_set_new(c, "startupProbe", readyz_probe(1, 120));
  } else {
    /* The first container's postStart hook holds the next container's
     * start until it returns: the app starts after the agent is ready. */
    json_object_set_new(c, "lifecycle",
                        json_pack("{s:{s:{s:[s, s, s, s, s, s]}}}", "postStart",
                                  "exec", "command", "lanyard", "healthcheck",
                                  "--admin", "127.0.0.1:15020", "--wait",
                                  "2m"));
  }
  return c;
}

static json_t *volumes(const ly_k8s_opts_t *o) {
  return json_pack(
      "[{s:s, s:{s:[{s:{s:s, s:i, s:s}}]}}, {s:s, s:{s:s, s:b}}, "
      "{s:s, s:{s:s}}]",
      "name", TOKEN_VOL, "projected", "sources", "serviceAccountToken",
      "audience", "lanyard-ca", "expirationSeconds", 3600, "path", "token",
      "name", BUNDLE_VOL, "configMap", "name", o->bundle_configmap, "optional",
      0, "name", RUN_VOL, "emptyDir", "medium", "Memory");
}

/* --- probes -----------------------------------------------------------------
 */

static const char *const probe_keys[] = {"livenessProbe", "readinessProbe",
                                         "startupProbe"};
static const char *const probe_names[] = {"liveness", "readiness", "startup"};

/* The handler's port as a number: itself, or the container port it
 * names. 0 when it names none. */
static json_int_t resolve_port(const json_t *container, const json_t *port) {
  size_t i;
  json_t *p;
  if (json_is_integer(port))
    return json_integer_value(port);
  if (!json_is_string(port))
    return 0;
  const char *s = json_string_value(port);
  if (*s >= '0' && *s <= '9')
    return strtol(s, NULL, 10);
  json_array_foreach(json_object_get(container, "ports"), i, p) {
    const char *n = json_string_value(json_object_get(p, "name"));
    if (n && !strcmp(n, s))
      return json_integer_value(json_object_get(p, "containerPort"));
  }
  return 0;
}

/* Points the container's httpGet and tcpSocket probes at the agent's
 * /app-health/<container>/<probe>, and records the originals. */
static void rewrite_probes(json_t *container, json_t *app_probes) {
  const char *name = json_string_value(json_object_get(container, "name"));
  if (!name)
    return;
  for (size_t i = 0; i < 3; i++) {
    json_t *probe = json_object_get(container, probe_keys[i]);
    const char *kind = "httpGet";
    json_t *h = json_object_get(probe, kind);
    if (!h) {
      kind = "tcpSocket";
      h = json_object_get(probe, kind);
    }
    if (!json_is_object(h))
      continue;
    json_int_t port = resolve_port(container, json_object_get(h, "port"));
    if (port < 1 || port > 65535)
      continue; /* kubelet would fail it too: leave it as written */
    char key[300], path[320];
    snprintf(key, sizeof(key), "%s/%s", name, probe_names[i]);
    snprintf(path, sizeof(path), "/app-health/%s", key);
    json_object_set_new(app_probes, key,
                        json_pack("{s:O, s:I}", kind, h, "port", port));
    json_t *rewritten = json_pack("{s:s, s:i, s:s}", "path", path, "port",
                                  LY_K8S_ADMIN_PORT, "scheme", "HTTP");
    if (!strcmp(kind, "httpGet")) {
      json_object_set_new(probe, "httpGet", rewritten);
    } else {
      json_object_del(probe, "tcpSocket");
      json_object_set_new(probe, "httpGet", rewritten);
    }
  }
}

static void restore_probes(json_t *spec, const char *probes_json) {
  json_t *app = json_loads(probes_json, 0, NULL);
  const char *key;
  json_t *orig;
  json_object_foreach(app, key, orig) {
    char cname[256];
    const char *slash = strrchr(key, '/');
    if (!slash || (size_t)(slash - key) >= sizeof(cname))
      continue;
    memcpy(cname, key, (size_t)(slash - key));
    cname[slash - key] = '\0';
    json_t *c = find_named(json_object_get(spec, "containers"), cname);
    if (!c)
      c = find_named(json_object_get(spec, "initContainers"), cname);
    for (size_t i = 0; c && i < 3; i++) {
      if (strcmp(slash + 1, probe_names[i]))
        continue;
      json_t *probe = json_object_get(c, probe_keys[i]);
      if (!probe)
        continue;
      json_object_del(probe, "httpGet");
      if (json_object_get(orig, "httpGet"))
        json_object_set(probe, "httpGet", json_object_get(orig, "httpGet"));
      else
        json_object_set(probe, "tcpSocket", json_object_get(orig, "tcpSocket"));
    }
  }
  json_decref(app);
}

/* --- inject and remove -------------------------------------------------------
 */

static const char *mesh_sidecar(const json_t *spec) {
  static const char *const others[] = {"istio-proxy", "linkerd-proxy"};
  for (size_t i = 0; i < 2; i++)
    if (find_named(json_object_get(spec, "containers"), others[i]) ||
        find_named(json_object_get(spec, "initContainers"), others[i]))
      return others[i];
  return NULL;
}

static const char *template_ns(const json_t *tmpl, const char *ns) {
  if (ns && *ns)
    return ns;
  ns = json_string_value(
      json_object_get(json_object_get(tmpl, "metadata"), "namespace"));
  return ns && *ns ? ns : "default";
}

/* Removes the entries this status names from arr (by name). */
static void drop_named(json_t *arr, const json_t *names) {
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n) {
    size_t j;
    json_t *it;
    json_array_foreach(arr, j, it) {
      const char *got = json_string_value(json_object_get(it, "name"));
      if (got && json_string_value(n) && !strcmp(got, json_string_value(n))) {
        json_array_remove(arr, j);
        break;
      }
    }
  }
}

ly_k8s_outcome_t ly_k8s_remove(json_t *tmpl, char *why, size_t whylen) {
  json_t *meta = json_object_get(tmpl, "metadata");
  json_t *ann = json_object_get(meta, "annotations");
  json_t *spec = json_object_get(tmpl, "spec");
  const char *st = json_string_value(json_object_get(ann, LY_K8S_STATUS_ANN));
  json_t *status, *agent;
  size_t i;
  json_t *it;

  if (!st)
    return LY_K8S_NOT_INJECTED;
  status = json_loads(st, 0, NULL);
  if (!json_is_object(status) || !json_is_object(spec)) {
    json_decref(status);
    say(why, whylen, "annotation " LY_K8S_STATUS_ANN " is not Lanyard's");
    return LY_K8S_ERROR;
  }
  agent =
      find_named(json_object_get(spec, "initContainers"), LY_K8S_AGENT_NAME);
  if (!agent)
    agent = find_named(json_object_get(spec, "containers"), LY_K8S_AGENT_NAME);
  json_array_foreach(json_object_get(agent, "env"), i, it) {
    const char *n = json_string_value(json_object_get(it, "name"));
    if (n && !strcmp(n, "LANYARD_APP_PROBES"))
      restore_probes(spec, json_string_value(json_object_get(it, "value")));
  }
  drop_named(json_object_get(spec, "initContainers"),
             json_object_get(status, "initContainers"));
  drop_named(json_object_get(spec, "containers"),
             json_object_get(status, "containers"));
  drop_named(json_object_get(spec, "volumes"),
             json_object_get(status, "volumes"));
  json_object_del(ann, LY_K8S_STATUS_ANN);
  /* What the injection created, it takes away again (if still empty). */
  /* Innermost first: metadata.annotations before metadata. */
  json_t *created = json_object_get(status, "created");
  for (i = json_array_size(created); i > 0; i--) {
    const char *c = json_string_value(json_array_get(created, i - 1));
    if (!c)
      continue;
    if (!strcmp(c, "spec.initContainers") &&
        !json_array_size(json_object_get(spec, "initContainers")))
      json_object_del(spec, "initContainers");
    if (!strcmp(c, "spec.volumes") &&
        !json_array_size(json_object_get(spec, "volumes")))
      json_object_del(spec, "volumes");
    if (!strcmp(c, "metadata.annotations") && !json_object_size(ann))
      json_object_del(meta, "annotations");
    if (!strcmp(c, "metadata") &&
        !json_object_size(json_object_get(tmpl, "metadata")))
      json_object_del(tmpl, "metadata");
  }
  json_decref(status);
  return LY_K8S_REMOVED;
}

/* Injects into a template that carries no injection. */
static ly_k8s_outcome_t inject_fresh(json_t *tmpl, const char *ns,
                                     const ly_k8s_opts_t *o, char *why,
                                     size_t whylen) {
  json_t *meta = json_object_get(tmpl, "metadata");
  json_t *spec = json_object_get(tmpl, "spec");
  json_t *pod_ann = meta ? json_object_get(meta, "annotations") : NULL;
  settings_t s;
  const char *other;
  size_t i, j;
  json_t *it;

  if (!json_is_object(spec) ||
      !json_is_array(json_object_get(spec, "containers"))) {
    say(why, whylen, "the pod spec has no containers");
    return LY_K8S_ERROR;
  }
  if (meta && !json_is_object(meta)) {
    say(why, whylen, "metadata is not a map");
    return LY_K8S_ERROR;
  }
  static const char *const lists[] = {"containers", "initContainers",
                                      "volumes"};
  for (i = 0; i < 3; i++) {
    json_t *l = json_object_get(spec, lists[i]);
    if (l && !json_is_array(l)) {
      say(why, whylen, "spec.%s is not a list", lists[i]);
      return LY_K8S_ERROR;
    }
    json_array_foreach(l, j, it) {
      if (!json_is_object(it)) {
        say(why, whylen, "spec.%s[%zu] is not a map", lists[i], j);
        return LY_K8S_ERROR;
      }
    }
  }
  /* The skips come before the annotations are judged: a pod that is not
   * injected is never refused over an annotation that does nothing. */
  ns = template_ns(tmpl, ns);
  if (json_is_true(json_object_get(spec, "hostNetwork"))) {
    say(why, whylen, "hostNetwork (the rules would catch the node's traffic)");
    return LY_K8S_SKIPPED;
  }
  if (!strcmp(ns, "kube-system") || !strcmp(ns, "kube-public") ||
      !strcmp(ns, "kube-node-lease")) {
    say(why, whylen, "system namespace %s", ns);
    return LY_K8S_SKIPPED;
  }
  if (o->lanyard_namespace && !strcmp(ns, o->lanyard_namespace)) {
    say(why, whylen, "namespace %s is Lanyard's own", ns);
    return LY_K8S_SKIPPED;
  }
  if ((other = mesh_sidecar(spec))) {
    say(why, whylen, "another mesh's sidecar (%s)", other);
    return LY_K8S_SKIPPED;
  }
  const char *inject = ann_get(json_is_object(pod_ann) ? pod_ann : NULL,
                               o->ns_annotations, "inject");
  if (inject && !strcmp(inject, "disabled")) {
    say(why, whylen, "annotation " LY_K8S_ANN_PREFIX "inject: disabled");
    return LY_K8S_SKIPPED;
  }
  if (settings_read(pod_ann, o, &s, why, whylen) != 0)
    return LY_K8S_ERROR;
  /* Names key the probes and the removal: each must be unique (as the
   * API server demands) and short. */
  for (i = 0; i < 2; i++) {
    json_t *l = json_object_get(spec, lists[i]);
    json_array_foreach(l, j, it) {
      const char *n = json_string_value(json_object_get(it, "name"));
      if (!n || !*n || strlen(n) > 253) {
        say(why, whylen, "spec.%s[%zu] has no valid name", lists[i], j);
        return LY_K8S_ERROR;
      }
      for (size_t k = 0; k < 2; k++) {
        json_t *m = json_object_get(spec, lists[k]);
        size_t x;
        json_t *c;
        json_array_foreach(m, x, c) {
          const char *on = json_string_value(json_object_get(c, "name"));
          if (c != it && on && !strcmp(on, n)) {
            say(why, whylen, "two containers are named %s", n);
            return LY_K8S_ERROR;
          }
        }
      }
    }
  }
  static const char *const ours[] = {LY_K8S_INIT_NAME, LY_K8S_AGENT_NAME};
  for (i = 0; i < 2; i++)
    if (find_named(json_object_get(spec, "containers"), ours[i]) ||
        find_named(json_object_get(spec, "initContainers"), ours[i])) {
      say(why, whylen, "a container is already named %s", ours[i]);
      return LY_K8S_ERROR;
    }
  static const char *const vols[] = {TOKEN_VOL, BUNDLE_VOL, RUN_VOL};
  for (i = 0; i < 3; i++)
    if (find_named(json_object_get(spec, "volumes"), vols[i])) {
      say(why, whylen, "a volume is already named %s", vols[i]);
      return LY_K8S_ERROR;
    }

  /* From here on nothing fails. */
  json_t *status =
      json_pack("{s:s, s:[], s:[], s:[], s:[]}", "version", LANYARD_VERSION,
                "initContainers", "containers", "volumes", "created");
  json_t *app_probes = json_object();
  json_array_foreach(json_object_get(spec, "containers"), i, it)
      rewrite_probes(it, app_probes);
  json_array_foreach(json_object_get(spec, "initContainers"), i, it) {
    const char *rp = json_string_value(json_object_get(it, "restartPolicy"));
    if (rp && !strcmp(rp, "Always")) /* the pod's own native sidecars */
      rewrite_probes(it, app_probes);
  }
  meta = obj_child(tmpl, "metadata", status, "metadata");
  json_t *ann = obj_child(meta, "annotations", status, "metadata.annotations");
  json_t *inits =
      arr_child(spec, "initContainers", status, "spec.initContainers");
  json_t *vol = arr_child(spec, "volumes", status, "spec.volumes");
  json_t *agent = agent_container(o, &s, s.native, app_probes);
  json_t *init = init_container(o, &s);
  json_t *names_init = json_object_get(status, "initContainers");
  json_array_append_new(names_init, json_string(LY_K8S_INIT_NAME));
  if (s.native) {
    json_array_insert_new(inits, 0, init);
    json_array_insert_new(inits, 1, agent);
    json_array_append_new(names_init, json_string(LY_K8S_AGENT_NAME));
  } else {
    json_array_append_new(inits, init);
    json_array_insert_new(json_object_get(spec, "containers"), 0, agent);
    json_array_append_new(json_object_get(status, "containers"),
                          json_string(LY_K8S_AGENT_NAME));
  }
  json_t *v = volumes(o);
  json_array_foreach(v, i, it) {
    json_array_append(vol, it);
    json_array_append_new(json_object_get(status, "volumes"),
                          json_incref(json_object_get(it, "name")));
  }
  json_decref(v);
  json_decref(app_probes);
  char *st = json_dumps(status, JSON_COMPACT);
  json_object_set_new(ann, LY_K8S_STATUS_ANN, json_string(st));
  free(st);
  json_decref(status);
  return LY_K8S_INJECTED;
}

ly_k8s_outcome_t ly_k8s_inject(json_t *tmpl, const char *ns,
                               const ly_k8s_opts_t *o, char *why,
                               size_t whylen) {
  json_t *work;
  ly_k8s_outcome_t r;

  if (!json_is_object(tmpl)) {
    say(why, whylen, "the pod template is not a map");
    return LY_K8S_ERROR;
  }
  /* Render from the original, on a copy: an error leaves tmpl alone, and
   * a second injection that changes nothing is seen as such. */
  work = json_deep_copy(tmpl);
  r = ly_k8s_remove(work, why, whylen);
  if (r == LY_K8S_ERROR) {
    json_decref(work);
    return r;
  }
  int was_injected = r == LY_K8S_REMOVED;
  r = inject_fresh(work, ns, o, why, whylen);
  if (r == LY_K8S_INJECTED && was_injected && json_equal(work, tmpl))
    r = LY_K8S_UNCHANGED;
  if (r != LY_K8S_ERROR && !json_equal(work, tmpl)) {
    /* Replace the contents in place: callers hold tmpl. */
    json_object_clear(tmpl);
    json_object_update(tmpl, work);
  }
  json_decref(work);
  return r;
}

json_t *ly_k8s_pod_template(json_t *obj) {
  const char *kind = json_string_value(json_object_get(obj, "kind"));
  static const char *const workloads[] = {
      "Deployment", "StatefulSet",           "DaemonSet",
      "ReplicaSet", "ReplicationController", "Job"};
  if (!kind)
    return NULL;
  if (!strcmp(kind, "Pod"))
    return obj;
  for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
    if (!strcmp(kind, workloads[i]))
      return json_object_get(json_object_get(obj, "spec"), "template");
  if (!strcmp(kind, "CronJob"))
    return json_object_get(
        json_object_get(
            json_object_get(json_object_get(obj, "spec"), "jobTemplate"),
            "spec"),
        "template");
  return NULL;
}
