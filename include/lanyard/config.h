/* Configuration: ca.yaml and agent.yaml, parsed strictly.
 *
 * libyaml builds a node tree that keeps file, line and column on every
 * node; a schema per file turns it into the structs below. Unknown keys,
 * wrong types, bad durations, addresses, SPIFFE IDs and missing required
 * keys are all errors, and every error is collected (not just the first)
 * as "file:line:column: message", line and column 1-based, pointing at the
 * offending key or value. Nothing is applied unless the whole file is
 * valid. Relative paths resolve against the config file's directory.
 *
 * The structs own all their memory; free them with the matching _free.
 */
#ifndef LANYARD_CONFIG_H
#define LANYARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Collected diagnostics, each one a full "file:line:col: message" line.
 * Warnings ("file:line:col: warning: message") are among the n lines and
 * counted in nwarn too: they never make a config invalid. */
typedef struct {
  char **lines;
  size_t n, cap;
  size_t nwarn;
} ly_diag_t;

void ly_diag_init(ly_diag_t *d);
void ly_diag_free(ly_diag_t *d);
/* Adds one; line/col 0 leaves them out ("file: message"). */
void ly_diag_add(ly_diag_t *d, const char *file, int line, int col,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Adds a warning. */
void ly_diag_warn(ly_diag_t *d, const char *file, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The lines that are errors, not warnings. */
size_t ly_diag_errors(const ly_diag_t *d);
void ly_diag_print(const ly_diag_t *d, FILE *out);

/* host:port. host is an IP literal (IPv6 in brackets in the text, stored
 * without them) or, where the key allows it, a DNS name. */
typedef struct {
  char host[256];
  uint16_t port;
} ly_hostport_t;

/* Parses "host:port" / "[v6]:port". allow_names: accept DNS names (for
 * addresses we connect to); otherwise only IP literals (to listen on).
 * Port 1..65535; with LY_HOSTPORT_PORT0 or'ed into allow_names, also 0
 * (listen on a port the kernel picks). 0 or LY_EPARSE with *why. */
#define LY_HOSTPORT_PORT0 2
int ly_hostport_parse(const char *s, int allow_names, ly_hostport_t *out,
                      const char **why);

/* A CIDR (v4 or v6) with an optional port list: "10.0.0.0/8",
 * "10.1.2.3/32:8080" is not accepted; ports are given separately in the
 * YAML mapping form { cidr: 10.0.0.0/8, ports: [80, 443] }. */
typedef struct {
  int family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  uint8_t prefix_len;
  uint16_t *ports; /* NULL/0: every port */
  size_t nports;
} ly_cidr_t;

int ly_cidr_parse(const char *s, ly_cidr_t *out, const char **why);

typedef struct {
  char *file; /* the config file as given */
  char *trust_domain;
  ly_hostport_t listen; /* RPC over TLS; default 127.0.0.1:15012 */
  ly_hostport_t admin;  /* HTTP admin; default 127.0.0.1:15014 */
  char *signing_cert;   /* resolved paths */
  char *signing_key;
  char *bundle;
  char *token_secret;
  uint64_t default_ttl_ms; /* svid.default_ttl, default 1h */
  uint64_t max_ttl_ms;     /* svid.max_ttl, default 24h; >= default_ttl */
  struct {
    int enabled; /* the kubernetes: section is present */
    char *jwks;  /* resolved path; exactly one of jwks / jwks_url */
    char *jwks_url;
    char *issuer;
    char *audience; /* default "lanyard-ca" */
    /* For jwks_url and the bundle ConfigMap: the API server's CA and the
     * bearer token (re-read at each request: projected tokens rotate).
     * Defaults: the pod's service account, LY_K8S_SA_DIR. */
    char *ca_file;
    char *token_file;
    char *api_server;       /* default: jwks_url's origin */
    char *bundle_configmap; /* "namespace/name" or "name", NULL: none */
    char *bundle_namespace_selector; /* label selector: also into these */
  } kubernetes;
  struct {
    char *file;         /* resolved; default certs.jsonl beside the config */
    size_t max_entries; /* 0: LY_INVENTORY_DEFAULT_MAX */
  } inventory;
  /* dns_names: which DNS SANs the CA signs for which SPIFFE ID, one pair
   * per allowed name; none by default. */
  struct {
    char *id;
    char *name;
  } * dns_names;
  size_t ndns_names;
} ly_ca_config_t;

/* 1 if dns_names allows `name` in an SVID for `id` (names compare without
 * case, as DNS does). */
int ly_ca_config_dns_allowed(const ly_ca_config_t *c, const char *id,
                             const char *name);

#define LY_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef enum { LY_MODE_STRICT = 0, LY_MODE_PERMISSIVE } ly_mode_t;
typedef enum { LY_LISTENER_SERVER = 0, LY_LISTENER_CLIENT } ly_listener_mode_t;

typedef struct {
  char *name;
  ly_listener_mode_t mode;
  ly_hostport_t listen;
  ly_hostport_t forward; /* server: plaintext target (names allowed) */
  ly_hostport_t connect; /* client: mTLS target (names allowed) */
  char **allow;          /* server: SPIFFE ID patterns (exact or .../*) */
  size_t nallow;
  char *expect; /* client: expected server ID; NULL: any in the domain */
  int expose;   /* client: listen beyond loopback (expose: true) */
} ly_listener_config_t;

typedef struct {
  uint16_t *ports; /* NULL/0: every port */
  size_t nports;
  char **from; /* SPIFFE ID patterns */
  size_t nfrom;
} ly_inbound_rule_t;

typedef struct {
  char *file;
  char *trust_domain;
  char *spiffe_id; /* spiffe_id, or built from namespace + service_account */
  /* A DNS SAN requested next to the URI SAN: `lanyard injector`'s serving
   * name (<service>.<namespace>.svc). Never from a file; not freed. */
  const char *dns_name;
  struct {
    ly_hostport_t address;
    char *bundle;         /* resolved path: bootstrap trust */
    char *token_file;     /* exactly one of token_file / k8s_token_file */
    char *k8s_token_file; /* both resolved paths */
  } ca;
  struct {
    uint64_t ttl_ms;       /* default 1h; at least 5s */
    double renew_fraction; /* default 0.5; within [0.1, 0.9] */
    char *dir;             /* resolved path or NULL */
  } svid;
  ly_hostport_t admin; /* default 127.0.0.1:15020 */
  struct {
    uint64_t interval_ms; /* report.interval: default 5s, at least 1s */
  } report;
  /* limits: the data path's timeouts and bounds. Defaults are
   * ly_dataplane_defaults' (agent_config.c fills them in). */
  struct {
    uint64_t connect_timeout_ms;   /* 100ms..5m, default 5s */
    uint64_t handshake_timeout_ms; /* 100ms..5m, default 10s */
    uint64_t idle_timeout_ms;      /* 1s..7d, default 1h */
    uint64_t drain_timeout_ms;     /* 100ms..1h, default 15s */
    uint64_t sniff_timeout_ms;     /* 10ms..1m, < handshake, default 1s */
    uint64_t max_connections;      /* 1..1048576, default 16384 */
    uint64_t buffer_limit;         /* bytes, 16384..67108864, 262144 */
  } limits;
  int workers;    /* 0 = auto (one per core), else 1..256 */
  ly_mode_t mode; /* default strict */
  ly_listener_config_t *listeners;
  size_t nlisteners;
  struct {
    int enabled;   /* the inbound: section is present (transparent mode) */
    uint16_t port; /* default 15006 */
    ly_inbound_rule_t *allow;
    size_t nallow;
  } inbound;
  struct {
    int enabled;   /* the outbound: section is present */
    uint16_t port; /* default 15001 */
    ly_cidr_t *meshed;
    size_t nmeshed;
    int deny_unmeshed; /* unmeshed: deny (default passthrough) */
  } outbound;
} ly_agent_config_t;

/* Loads and validates. On any error returns LY_ECONFIG with every problem
 * in `diag` (which the caller initialized) and *out untouched. A missing
 * or unreadable file is one diagnostic naming the file. */
int ly_ca_config_load(const char *path, ly_ca_config_t **out, ly_diag_t *diag);
int ly_agent_config_load(const char *path, ly_agent_config_t **out,
                         ly_diag_t *diag);

/* The same, for --check: also examines every file the config names (at
 * the key's line:column, even when other keys are wrong): missing,
 * unreadable, a directory, empty, not PEM are errors; a key or token
 * readable by group or others is a warning. */
#define LY_CONFIG_CHECK_FILES 1u
int ly_ca_config_load_ex(const char *path, unsigned flags, ly_ca_config_t **out,
                         ly_diag_t *diag);
int ly_agent_config_load_ex(const char *path, unsigned flags,
                            ly_agent_config_t **out, ly_diag_t *diag);
/* The same from YAML text (yaml, len) instead of the file's contents;
 * path still names it in messages and anchors relative paths. */
int ly_agent_config_parse(const char *path, const char *yaml, size_t len,
                          unsigned flags, ly_agent_config_t **out,
                          ly_diag_t *diag);
/* The agent's config from the environment a Kubernetes injection sets
 * (agent_env.c lists the variables); errors name the variable. */
int ly_agent_config_from_env(ly_agent_config_t **out, ly_diag_t *diag);
void ly_ca_config_free(ly_ca_config_t *c);
void ly_agent_config_free(ly_agent_config_t *c);

/* --check for the config part: loads a "ca" or "agent" config with its
 * files checked, prints every diagnostic to stderr (one line each,
 * nothing else) and returns the exit code: 0 valid (warnings allowed),
 * 2 invalid. */
int ly_config_check_print(const char *kind, const char *path);

#endif
