#include "lanyard/config.h"

#include "config/schema.h"
#include "lanyard/dataplane.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/spiffe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define AG(field) offsetof(ly_agent_config_t, field)
#define LS(field) offsetof(ly_listener_config_t, field)
static const uint64_t min_ttl_ms = 5000;

static int f_own_id(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f);
static int f_ca(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f);
static int f_fraction(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                      const ly_field_t *f);
static int f_workers(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                     const ly_field_t *f);
static int f_listeners(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f);
static int f_inbound_allow(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                           const ly_field_t *f);
static int f_meshed(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f);
static int f_cidr(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f);
static int f_count(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                   const ly_field_t *f);
static int f_limits(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f);

static const char *const mode_names[] = {"strict", "permissive", NULL};
static const char *const listener_modes[] = {"server", "client", NULL};
static const char *const unmeshed_names[] = {"passthrough", "deny", NULL};

/* What --check expects of each file. A Kubernetes token is not called
 * a secret here: the kubelet mounts projected tokens 0644 by default. */
static const ly_file_spec_t token_spec = {"the token file", LY_FILE_PLAIN, 1};
static const ly_file_spec_t k8s_token_spec = {"the Kubernetes token file",
                                              LY_FILE_PLAIN, 0};
static const ly_file_spec_t bundle_spec = {"the CA bundle", LY_FILE_CERTS, 0};
static const ly_file_spec_t svid_dir_spec = {"svid.dir", LY_FILE_DIR, 0};

enum { CA_TOKEN, CA_K8S_TOKEN };
static const ly_field_t ca_fields[] = {
    [CA_TOKEN] =
        LY_ARG("token_file", ly_f_path, 0, AG(ca.token_file), &token_spec),
    [CA_K8S_TOKEN] = LY_ARG("k8s_token_file", ly_f_path, 0,
                            AG(ca.k8s_token_file), &k8s_token_spec),
    LY_KEY("address", ly_f_address, 1, AG(ca.address)),
    LY_ARG("bundle", ly_f_path, 1, AG(ca.bundle), &bundle_spec),
    LY_END,
};

static const ly_field_t svid_fields[] = {
    LY_ARG("ttl", ly_f_duration, 0, AG(svid.ttl_ms), &min_ttl_ms),
    LY_KEY("renew_fraction", f_fraction, 0, AG(svid.renew_fraction)),
    LY_ARG("dir", ly_f_path, 0, AG(svid.dir), &svid_dir_spec),
    LY_END,
};

/* limits: ranges wide enough for any sane deployment, narrow enough that
 * a unit slip (5ms for 5s, 1d for 1s) is caught. */
static const uint64_t connect_range[2] = {100, 5 * 60000};
static const uint64_t handshake_range[2] = {100, 5 * 60000};
static const uint64_t idle_range[2] = {1000, 7 * 86400000ull};
static const uint64_t drain_range[2] = {100, 3600000};
static const uint64_t sniff_range[2] = {10, 60000};
static const long max_conn_range[2] = {1, 1048576};
static const long buffer_range[2] = {16384, 64L << 20};
enum { LIM_HANDSHAKE, LIM_SNIFF };
static const ly_field_t limits_fields[] = {
    [LIM_HANDSHAKE] = LY_ARG("handshake_timeout", ly_f_duration_range, 0,
                             AG(limits.handshake_timeout_ms), handshake_range),
    [LIM_SNIFF] = LY_ARG("sniff_timeout", ly_f_duration_range, 0,
                         AG(limits.sniff_timeout_ms), sniff_range),
    LY_ARG("connect_timeout", ly_f_duration_range, 0,
           AG(limits.connect_timeout_ms), connect_range),
    LY_ARG("idle_timeout", ly_f_duration_range, 0, AG(limits.idle_timeout_ms),
           idle_range),
    LY_ARG("drain_timeout", ly_f_duration_range, 0, AG(limits.drain_timeout_ms),
           drain_range),
    LY_ARG("max_connections", f_count, 0, AG(limits.max_connections),
           max_conn_range),
    LY_ARG("buffer_limit", f_count, 0, AG(limits.buffer_limit), buffer_range),
    LY_END,
};

static const uint64_t min_report_interval_ms = 1000;
static const ly_field_t report_fields[] = {
    LY_ARG("interval", ly_f_duration, 0, AG(report.interval_ms),
           &min_report_interval_ms),
    LY_END,
};

enum {
  L_NAME,
  L_MODE,
  L_LISTEN,
  L_FORWARD,
  L_CONNECT,
  L_ALLOW,
  L_EXPECT,
  L_EXPOSE
};
static const char *const booleans[] = {"false", "true", NULL};
static const ly_field_t listener_fields[] = {
    [L_NAME] = LY_KEY("name", ly_f_string, 1, LS(name)),
    [L_MODE] = LY_ARG("mode", ly_f_enum, 1, LS(mode), listener_modes),
    [L_LISTEN] = LY_KEY("listen", ly_f_listen, 1, LS(listen)),
    [L_FORWARD] = LY_KEY("forward", ly_f_address, 0, LS(forward)),
    [L_CONNECT] = LY_KEY("connect", ly_f_address, 0, LS(connect)),
    [L_ALLOW] = LY_LIST("allow", ly_f_patterns, 0, LS(allow), LS(nallow)),
    [L_EXPECT] = LY_KEY("expect", ly_f_spiffe_id, 0, LS(expect)),
    [L_EXPOSE] = LY_ARG("expose", ly_f_enum, 0, LS(expose), booleans),
    LY_END,
};

static const ly_field_t rule_fields[] = {
    LY_LIST("ports", ly_f_ports, 0, offsetof(ly_inbound_rule_t, ports),
            offsetof(ly_inbound_rule_t, nports)),
    LY_LIST("from", ly_f_patterns, 1, offsetof(ly_inbound_rule_t, from),
            offsetof(ly_inbound_rule_t, nfrom)),
    LY_END,
};

static const ly_field_t meshed_fields[] = {
    LY_KEY("cidr", f_cidr, 1, 0),
    LY_LIST("ports", ly_f_ports, 0, offsetof(ly_cidr_t, ports),
            offsetof(ly_cidr_t, nports)),
    LY_END,
};

static const ly_field_t inbound_fields[] = {
    LY_KEY("port", ly_f_port, 0, AG(inbound.port)),
    LY_KEY("allow", f_inbound_allow, 0, 0),
    LY_END,
};

static const ly_field_t outbound_fields[] = {
    LY_KEY("port", ly_f_port, 0, AG(outbound.port)),
    LY_KEY("meshed", f_meshed, 0, 0),
    LY_ARG("unmeshed", ly_f_enum, 0, AG(outbound.deny_unmeshed),
           unmeshed_names),
    LY_END,
};

enum { A_SPIFFE_ID, A_NAMESPACE, A_SERVICE_ACCOUNT, A_INBOUND, A_OUTBOUND };
static const ly_field_t agent_fields[] = {
    [A_SPIFFE_ID] = LY_KEY("spiffe_id", f_own_id, 0, AG(spiffe_id)),
    [A_NAMESPACE] = LY_KEY("namespace", ly_f_string, 0, SIZE_MAX),
    [A_SERVICE_ACCOUNT] = LY_KEY("service_account", ly_f_string, 0, SIZE_MAX),
    [A_INBOUND] = LY_ARG("inbound", ly_f_map, 0, 0, inbound_fields),
    [A_OUTBOUND] = LY_ARG("outbound", ly_f_map, 0, 0, outbound_fields),
    LY_KEY("trust_domain", ly_f_trust_domain, 1, AG(trust_domain)),
    LY_KEY("ca", f_ca, 1, 0),
    LY_ARG("svid", ly_f_map, 0, 0, svid_fields),
    /* Port 0: several agents on one host each get a free port (the agent
     * says which in $LANYARD_RUN_DIR/agent-PID.json). */
    LY_ARG("admin", ly_f_listen, 0, AG(admin), "port 0 ok"),
    LY_ARG("report", ly_f_map, 0, 0, report_fields),
    LY_KEY("workers", f_workers, 0, AG(workers)),
    LY_KEY("limits", f_limits, 0, 0),
    LY_ARG("mode", ly_f_enum, 0, AG(mode), mode_names),
    LY_KEY("listeners", f_listeners, 0, 0),
    LY_END,
};

/* ly_f_enum stores an int. */
_Static_assert(sizeof(ly_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ly_listener_mode_t) == sizeof(int), "enum size");

static int f_own_id(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f) {
  LY_GUARD(ly_f_spiffe_id(s, v, obj, f));
  ly_spiffe_id_t id;
  ly_spiffe_id_parse(v->str, strlen(v->str), &id, NULL);
  if (ly_spiffe_id_reserved(&id)) {
    LY_SCHEMA_ERR(s, v,
                  "SPIFFE IDs under /lanyard/ are reserved for Lanyard itself");
    return -1;
  }
  return 0;
}

static int f_ca(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f) {
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  uint32_t seen = ly_schema_map(s, v, "ca", ca_fields, obj, NULL);
  if (!(seen & (1u << CA_TOKEN | 1u << CA_K8S_TOKEN)))
    LY_SCHEMA_ERR(s, v,
                  "missing required key 'token_file' (or 'k8s_token_file')");
  ly_schema_exclusive(s, v, "token_file", "k8s_token_file");
  return 0;
}

static int f_fraction(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                      const ly_field_t *f) {
  char *end = NULL;
  if (v->invalid)
    return -1;
  double d = v->kind == LY_YNODE_SCALAR && v->plain && *v->str
                 ? strtod(v->str, &end)
                 : NAN;
  if (!end || *end || !isfinite(d)) {
    LY_SCHEMA_ERR(s, v, "expected a number");
    return -1;
  }
  if (d < 0.1 || d > 0.9) {
    LY_SCHEMA_ERR(s, v, "renew_fraction must be between 0.1 and 0.9");
    return -1;
  }
  *(double *)((char *)obj + f->off) = d;
  return 0;
}

/* A whole number in f->arg's range {min, max}, stored as uint64_t. */
static int f_count(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                   const ly_field_t *f) {
  const long *range = f->arg;
  long n;
  LY_GUARD(ly_schema_int(s, v, range[0], range[1], f->key, &n));
  *(uint64_t *)((char *)obj + f->off) = (uint64_t)n;
  return 0;
}

/* The sniff must end before the handshake deadline it runs under. */
static int f_limits(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f) {
  const ly_agent_config_t *c = obj;
  uint32_t ok;
  char a[32], b[32];
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  ly_schema_map(s, v, "limits", limits_fields, obj, &ok);
  if (!(ok & 1u << LIM_SNIFF) && !(ok & 1u << LIM_HANDSHAKE))
    return 0;
  if (c->limits.sniff_timeout_ms < c->limits.handshake_timeout_ms)
    return 0;
  const ly_ypair_t *at = ly_ynode_find(v, "sniff_timeout");
  if (!at || !(ok & 1u << LIM_SNIFF))
    at = ly_ynode_find(v, "handshake_timeout");
  LY_SCHEMA_ERR(
      s, at->value,
      "sniff_timeout (%s) must be less than handshake_timeout (%s)",
      ly_duration_format(c->limits.sniff_timeout_ms, a, sizeof(a)),
      ly_duration_format(c->limits.handshake_timeout_ms, b, sizeof(b)));
  return -1;
}

static int f_workers(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                     const ly_field_t *f) {
  ly_agent_config_t *c = obj;
  if (v->invalid)
    return -1;
  const char *str = v->kind == LY_YNODE_SCALAR && v->plain ? v->str : "";
  if (!strcmp(str, "auto")) {
    c->workers = 0;
    return 0;
  }
  size_t len = strlen(str);
  int n =
      len > 0 && len <= 3 && strspn(str, "0123456789") == len ? atoi(str) : 0;
  if (n < 1 || n > 256) {
    LY_SCHEMA_ERR(s, v, "workers must be auto or 1..256");
    return -1;
  }
  c->workers = n;
  return 0;
}

/* Server listeners forward plaintext and check the client's ID; client
 * listeners connect with mTLS and check the server's. The keys of one
 * kind make no sense on the other, so they are errors, not ignored. */
static void listener_rules(ly_schema_t *s, const ly_ynode_t *item,
                           const ly_listener_config_t *l, uint32_t seen,
                           uint32_t ok) {
  static const struct {
    int key;
    ly_listener_mode_t mode;
  } only[] = {{L_FORWARD, LY_LISTENER_SERVER},
              {L_ALLOW, LY_LISTENER_SERVER},
              {L_CONNECT, LY_LISTENER_CLIENT},
              {L_EXPECT, LY_LISTENER_CLIENT},
              {L_EXPOSE, LY_LISTENER_CLIENT}};
  if (!(ok & 1u << L_MODE))
    return; /* reported already */
  if (l->mode == LY_LISTENER_SERVER && !(seen & 1u << L_FORWARD))
    LY_SCHEMA_ERR(s, item, "missing required key 'forward' (server listener)");
  if (l->mode == LY_LISTENER_CLIENT && !(seen & 1u << L_CONNECT))
    LY_SCHEMA_ERR(s, item, "missing required key 'connect' (client listener)");
  /* A client listener lends this agent's identity to whoever connects:
   * loopback only, unless the operator says otherwise. */
  const char *host = l->listen.host;
  const ly_ypair_t *listen = ly_ynode_find(item, "listen");
  if (l->mode == LY_LISTENER_CLIENT && (ok & 1u << L_LISTEN) && listen &&
      !l->expose && strncmp(host, "127.", 4) != 0 && strcmp(host, "::1") != 0)
    LY_SCHEMA_ERR(s, listen->value,
                  "a client listener accepts plaintext and connects with "
                  "this agent's identity: listen on 127.0.0.1 or ::1, or set "
                  "expose: true");
  for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
    const ly_ypair_t *p = ly_ynode_find(item, listener_fields[only[i].key].key);
    if (p && l->mode != only[i].mode)
      ly_schema_error(s, p->line, p->col, "'%s' is only for %s listeners",
                      p->key, listener_modes[only[i].mode]);
  }
}

/* Whether two listen addresses take the same connections. The data plane
 * binds with SO_REUSEPORT (one socket per worker), so the kernel would let
 * a second listener share the first one's port and split its connections
 * between two forwards: refuse it here. "::" takes IPv4 too (dual stack),
 * "0.0.0.0" every IPv4 address. Port 0 is the kernel's pick, never shared. */
static int listen_overlap(const ly_hostport_t *a, const ly_hostport_t *b) {
  if (a->port == 0 || a->port != b->port)
    return 0;
  int v6a = strchr(a->host, ':') != NULL, v6b = strchr(b->host, ':') != NULL;
  if (!strcmp(a->host, "::") || !strcmp(b->host, "::"))
    return 1;
  if (v6a != v6b)
    return 0;
  return !strcmp(a->host, b->host) || !strcmp(a->host, "0.0.0.0") ||
         !strcmp(b->host, "0.0.0.0");
}

static int f_listeners(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f) {
  ly_agent_config_t *c = obj;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_SEQ));
  if (v->n == 0)
    return 0;
  if (!(c->listeners = calloc(v->n, sizeof(*c->listeners)))) {
    LY_SCHEMA_ERR(s, v, "out of memory");
    return -1;
  }
  c->nlisteners = v->n;
  for (size_t i = 0; i < v->n; i++) {
    const ly_ynode_t *item = v->items[i];
    ly_listener_config_t *l = &c->listeners[i];
    if (ly_schema_kind(s, item, LY_YNODE_MAP) != 0)
      continue;
    uint32_t ok;
    uint32_t seen =
        ly_schema_map(s, item, "listeners", listener_fields, l, &ok);
    listener_rules(s, item, l, seen, ok);
    for (size_t j = 0; l->name && j < i; j++) {
      if (c->listeners[j].name && !strcmp(c->listeners[j].name, l->name)) {
        const ly_ypair_t *name = ly_ynode_find(item, "name");
        LY_SCHEMA_ERR(s, name->value,
                      "duplicate listener name '%.100s' (first at line %d)",
                      l->name, ly_ynode_find(v->items[j], "name")->value->line);
        break;
      }
    }
    for (size_t j = 0; (ok & 1u << L_LISTEN) && j < i; j++) {
      const ly_ypair_t *first = ly_ynode_find(v->items[j], "listen");
      if (first && c->listeners[j].listen.port &&
          listen_overlap(&c->listeners[j].listen, &l->listen)) {
        LY_SCHEMA_ERR(s, ly_ynode_find(item, "listen")->value,
                      "listener '%.100s' would share its address with "
                      "listener '%.100s' (line %d), which listens on "
                      "%s: each listener needs an address of its own",
                      l->name ? l->name : "?",
                      c->listeners[j].name ? c->listeners[j].name : "?",
                      first->value->line, first->value->str);
        break;
      }
    }
  }
  return 0;
}

static int f_inbound_allow(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                           const ly_field_t *f) {
  ly_agent_config_t *c = obj;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_SEQ));
  if (v->n == 0)
    return 0;
  if (!(c->inbound.allow = calloc(v->n, sizeof(*c->inbound.allow)))) {
    LY_SCHEMA_ERR(s, v, "out of memory");
    return -1;
  }
  c->inbound.nallow = v->n;
  for (size_t i = 0; i < v->n; i++)
    if (ly_schema_kind(s, v->items[i], LY_YNODE_MAP) == 0)
      ly_schema_map(s, v->items[i], "inbound.allow", rule_fields,
                    &c->inbound.allow[i], NULL);
  return 0;
}

static int f_cidr(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f) {
  ly_cidr_t *out = obj, tmp;
  const char *str, *why = NULL;
  LY_GUARD(ly_schema_str(s, v, &str));
  if (ly_cidr_parse(str, &tmp, &why) != 0) {
    LY_SCHEMA_ERR(s, v, "invalid CIDR: %s", why);
    return -1;
  }
  /* keep ports: the mapping form may list them first */
  out->family = tmp.family;
  memcpy(out->addr, tmp.addr, sizeof(out->addr));
  out->prefix_len = tmp.prefix_len;
  return 0;
}

static int f_meshed(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                    const ly_field_t *f) {
  ly_agent_config_t *c = obj;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_SEQ));
  if (v->n == 0)
    return 0;
  if (!(c->outbound.meshed = calloc(v->n, sizeof(*c->outbound.meshed)))) {
    LY_SCHEMA_ERR(s, v, "out of memory");
    return -1;
  }
  c->outbound.nmeshed = v->n;
  for (size_t i = 0; i < v->n; i++) {
    const ly_ynode_t *item = v->items[i];
    ly_cidr_t *cidr = &c->outbound.meshed[i];
    if (item->invalid)
      continue;
    if (item->kind == LY_YNODE_SCALAR)
      f_cidr(s, item, cidr, NULL);
    else if (item->kind == LY_YNODE_MAP)
      ly_schema_map(s, item, "outbound.meshed", meshed_fields, cidr, NULL);
    else
      LY_SCHEMA_ERR(s, item, "expected a CIDR or a mapping with 'cidr'");
  }
  return 0;
}

/* spiffe_id, or namespace + service_account: exactly one of the two. */
static void identity_rules(ly_schema_t *s, const ly_ynode_t *root,
                           uint32_t seen, ly_agent_config_t *c) {
  const ly_ypair_t *ns = ly_ynode_find(root, "namespace");
  const ly_ypair_t *sa = ly_ynode_find(root, "service_account");
  const char *why = NULL;
  ly_spiffe_id_t id;
  if (seen & 1u << A_SPIFFE_ID) {
    if (ns || sa)
      ly_schema_exclusive(s, root, "spiffe_id",
                          ns ? "namespace" : "service_account");
    return;
  }
  if (!ns && !sa) {
    LY_SCHEMA_ERR(s, root,
                  "missing required key 'spiffe_id' (or "
                  "'namespace' and 'service_account')");
    return;
  }
  if (!ns || !sa) {
    LY_SCHEMA_ERR(s, root, "missing required key '%s' (with '%s')",
                  ns ? "service_account" : "namespace", ns ? ns->key : sa->key);
    return;
  }
  const ly_ynode_t *nv = ns->value, *sv = sa->value;
  if (!s->td || nv->kind != LY_YNODE_SCALAR || sv->kind != LY_YNODE_SCALAR ||
      nv->invalid || sv->invalid || !*nv->str || !*sv->str)
    return; /* reported already */
  if (ly_spiffe_id_for_k8s(s->td, nv->str, sv->str, &id, &why) != 0) {
    LY_SCHEMA_ERR(s, nv, "invalid SPIFFE ID: %s", why);
    return;
  }
  if (!(c->spiffe_id = strdup(id.id)))
    LY_SCHEMA_ERR(s, nv, "out of memory");
}

int ly_agent_config_load(const char *path, ly_agent_config_t **out,
                         ly_diag_t *diag) {
  return ly_agent_config_load_ex(path, 0, out, diag);
}

int ly_agent_config_load_ex(const char *path, unsigned flags,
                            ly_agent_config_t **out, ly_diag_t *diag) {
  return ly_agent_config_parse(path, NULL, 0, flags, out, diag);
}

int ly_agent_config_parse(const char *path, const char *yaml, size_t len,
                          unsigned flags, ly_agent_config_t **out,
                          ly_diag_t *diag) {
  ly_schema_t s = {.file = path,
                   .diag = diag,
                   .check_files = (flags & LY_CONFIG_CHECK_FILES) != 0,
                   .data = yaml,
                   .len = len};
  ly_ynode_t *tree = NULL;
  ly_agent_config_t *c = calloc(1, sizeof(*c));
  if (!c)
    return UV_ENOMEM;
  c->svid.ttl_ms = 3600 * 1000;
  c->svid.renew_fraction = 0.5;
  c->admin = (ly_hostport_t){"127.0.0.1", 15020};
  c->report.interval_ms = 5000;
  c->mode = LY_MODE_STRICT;
  c->inbound.port = 15006;
  c->outbound.port = 15001;
  ly_dataplane_limits_t dl;
  ly_dataplane_defaults(&dl);
  c->limits.connect_timeout_ms = dl.connect_timeout_ms;
  c->limits.handshake_timeout_ms = dl.handshake_timeout_ms;
  c->limits.idle_timeout_ms = dl.idle_timeout_ms;
  c->limits.drain_timeout_ms = dl.drain_timeout_ms;
  c->limits.sniff_timeout_ms = dl.sniff_timeout_ms;
  c->limits.max_connections = dl.max_connections;
  c->limits.buffer_limit = dl.buffer_limit;
  const ly_ynode_t *root = ly_schema_load(&s, path, &tree);
  if (root) {
    uint32_t seen = ly_schema_map(&s, root, "", agent_fields, c, NULL);
    identity_rules(&s, root, seen, c);
    /* transparent interception is on for each section that is present */
    c->inbound.enabled = (seen & 1u << A_INBOUND) != 0;
    c->outbound.enabled = (seen & 1u << A_OUTBOUND) != 0;
  }
  if (!(c->file = strdup(path)))
    ly_schema_error(&s, 0, 0, "out of memory");
  ly_ynode_free(tree);
  if (s.nerr) {
    ly_agent_config_free(c);
    return LY_ECONFIG;
  }
  *out = c;
  return 0;
}

void ly_agent_config_free(ly_agent_config_t *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->nlisteners; i++) {
    ly_listener_config_t *l = &c->listeners[i];
    free(l->name);
    for (size_t j = 0; j < l->nallow; j++)
      free(l->allow[j]);
    free(l->allow);
    free(l->expect);
  }
  for (size_t i = 0; i < c->inbound.nallow; i++) {
    ly_inbound_rule_t *r = &c->inbound.allow[i];
    free(r->ports);
    for (size_t j = 0; j < r->nfrom; j++)
      free(r->from[j]);
    free(r->from);
  }
  for (size_t i = 0; i < c->outbound.nmeshed; i++)
    free(c->outbound.meshed[i].ports);
  free(c->file);
  free(c->trust_domain);
  free(c->spiffe_id);
  free(c->ca.bundle);
  free(c->ca.token_file);
  free(c->ca.k8s_token_file);
  free(c->svid.dir);
  free(c->listeners);
  free(c->inbound.allow);
  free(c->outbound.meshed);
  free(c);
}
