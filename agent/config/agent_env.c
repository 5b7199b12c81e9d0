/* `lanyard agent --from-env`: the agent's config in a Kubernetes pod, from
 * the environment the injection sets, so no per-pod file is generated.
 *
 *   LANYARD_TRUST_DOMAIN     trust_domain        default cluster.local
 *   LANYARD_NAMESPACE        namespace           required (downward API)
 *   LANYARD_SERVICE_ACCOUNT  service_account     required (downward API)
 *   LANYARD_CA_ADDR          ca.address          required
 *   LANYARD_BUNDLE_FILE      ca.bundle           required (the ConfigMap)
 *   LANYARD_TOKEN_FILE       ca.k8s_token_file   required (projected token)
 *   LANYARD_TTL              svid.ttl            default 1h
 *   LANYARD_ADMIN            admin               default 0.0.0.0:15020
 *   LANYARD_MODE             mode                default strict
 *   LANYARD_INBOUND_PORT     inbound.port        default 15006
 *   LANYARD_OUTBOUND_PORT    outbound.port       default 15001
 *   LANYARD_MESHED_CIDRS     outbound.meshed     default the private ranges
 *                            (comma-separated)   10/8, 172.16/12, 192.168/16,
 *                                                fd00::/8, less the API
 *                                                server's address
 *
 * Transparent interception is on in both directions. The variables become
 * YAML text that goes through the same schema as agent.yaml, so the values
 * are checked exactly as in a file, and each error is reported with the
 * variable that caused it ("LANYARD_TTL=soon: invalid duration: ..."). */
#include "lanyard/config.h"

#include "lanyard/err.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define ENV_NAME "environment"
#define WHO "lanyard agent --from-env" /* for errors found here */
#define MAX_LINES 128

typedef struct {
  char *text;
  size_t len, cap;
  int line;                   /* lines written so far */
  const char *var[MAX_LINES]; /* the variable each line came from */
  int failed;
} yaml_t;

static void put(yaml_t *y, const char *var, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put(yaml_t *y, const char *var, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || y->line >= MAX_LINES) {
    y->failed = 1;
    return;
  }
  if (y->len + (size_t)n + 2 > y->cap) {
    size_t cap = (y->len + (size_t)n + 2) * 2;
    char *t = realloc(y->text, cap);
    if (!t) {
      y->failed = 1;
      return;
    }
    y->text = t;
    y->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(y->text + y->len, y->cap - y->len, fmt, ap);
  va_end(ap);
  y->len += (size_t)n;
  y->text[y->len++] = '\n';
  y->text[y->len] = '\0';
  y->var[y->line++] = var;
}

/* A YAML double-quoted scalar; control characters cannot be in one. */
static int quoted(const char *v, char *out, size_t len) {
  size_t o = 0;
  out[o++] = '"';
  for (; *v; v++) {
    if ((unsigned char)*v < 0x20 || *v == 0x7f || o + 4 >= len)
      return -1;
    if (*v == '"' || *v == '\\')
      out[o++] = '\\';
    out[o++] = *v;
  }
  out[o++] = '"';
  out[o] = '\0';
  return 0;
}

/* key: "value" from the variable, or the default; a required variable
 * that is unset is an error naming it. */
static void scalar(yaml_t *y, ly_diag_t *diag, const char *indent,
                   const char *key, const char *var, const char *dflt) {
  const char *v = getenv(var);
  if (!v || !*v)
    v = dflt;
  if (!v) {
    ly_diag_add(diag, WHO, 0, 0, "%s is required", var);
    return;
  }
  char q[1024];
  if (quoted(v, q, sizeof(q)) != 0) {
    ly_diag_add(diag, WHO, 0, 0, "%s: too long, or holds a control byte", var);
    return;
  }
  put(y, var, "%s%s: %s", indent, key, q);
}

/* Ports are integers, which the schema takes only unquoted. */
static void port(yaml_t *y, ly_diag_t *diag, const char *indent,
                 const char *key, const char *var, const char *dflt) {
  const char *v = getenv(var);
  if (!v || !*v)
    v = dflt;
  if (strlen(v) > 0 && strlen(v) < 8 && strspn(v, "0123456789") == strlen(v))
    put(y, var, "%s%s: %s", indent, key, v);
  else
    ly_diag_add(diag, WHO, 0, 0, "%s=%s: expected a port number", var, v);
}

/* One CIDR list entry; an IPv4 range holding `hole` (the API server) is
 * written as the ranges around it: for each prefix length below the
 * range's, the half the hole is not in. */
static void meshed_entry(yaml_t *y, ly_diag_t *diag, const char *var,
                         const char *cidr, const struct in_addr *hole) {
  char q[128], net[INET_ADDRSTRLEN];
  unsigned len;
  struct in_addr a;
  if (hole && sscanf(cidr, "%15[0-9.]/%u", net, &len) == 2 && len <= 32 &&
      inet_pton(AF_INET, net, &a) == 1) {
    uint32_t base = ntohl(a.s_addr), h = ntohl(hole->s_addr);
    uint32_t mask = len ? ~0u << (32 - len) : 0;
    if ((h & mask) == (base & mask) && len < 32) {
      for (unsigned bit = len + 1; bit <= 32; bit++) {
        uint32_t sib = ((h >> (32 - bit)) ^ 1u) << (32 - bit);
        struct in_addr s = {htonl(sib)};
        inet_ntop(AF_INET, &s, net, sizeof(net));
        put(y, var, "    - \"%s/%u\"", net, bit);
      }
      return;
    }
  }
  if (quoted(cidr, q, sizeof(q)) != 0)
    ly_diag_add(diag, WHO, 0, 0, "%s: bad entry", var);
  else
    put(y, var, "    - %s", q);
}

/* By default, the private ranges (where pod and service addresses live)
 * get mTLS, except the API server (KUBERNETES_SERVICE_HOST, which the
 * kubelet sets in every container): apps reach it directly. */
static void meshed(yaml_t *y, ly_diag_t *diag) {
  const char *var = "LANYARD_MESHED_CIDRS";
  const char *v = getenv(var);
  struct in_addr api, *hole = NULL;
  if (!v || !*v) {
    v = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fd00::/8";
    const char *k = getenv("KUBERNETES_SERVICE_HOST");
    if (k && inet_pton(AF_INET, k, &api) == 1)
      hole = &api;
  }
  put(y, NULL, "  meshed:");
  char *list = strdup(v), *save = NULL;
  if (!list) {
    y->failed = 1;
    return;
  }
  for (char *c = strtok_r(list, ", ", &save); c;
       c = strtok_r(NULL, ", ", &save))
    meshed_entry(y, diag, var, c, hole);
  free(list);
}

/* "environment:LINE:COL: message" -> "VAR=value: message". */
static void name_variables(const yaml_t *y, ly_diag_t *diag) {
  for (size_t i = 0; i < diag->n; i++) {
    int line = 0, col = 0, off = 0;
    if (sscanf(diag->lines[i], ENV_NAME ":%d:%d: %n", &line, &col, &off) < 2 ||
        off == 0 || line < 1 || line > y->line)
      continue;
    const char *var = y->var[line - 1];
    const char *v = var ? getenv(var) : NULL;
    if (!var)
      continue;
    const char *msg = diag->lines[i] + off;
    size_t n = strlen(var) + strlen(v ? v : "(default)") + strlen(msg) + 4;
    char *named = malloc(n);
    if (!named)
      continue;
    snprintf(named, n, "%s=%s: %s", var, v ? v : "(default)", msg);
    free(diag->lines[i]);
    diag->lines[i] = named;
  }
}

int ly_agent_config_from_env(ly_agent_config_t **out, ly_diag_t *diag) {
  yaml_t y = {0};
  size_t before = diag->n;
  scalar(&y, diag, "", "trust_domain", "LANYARD_TRUST_DOMAIN", "cluster.local");
  scalar(&y, diag, "", "namespace", "LANYARD_NAMESPACE", NULL);
  scalar(&y, diag, "", "service_account", "LANYARD_SERVICE_ACCOUNT", NULL);
  put(&y, NULL, "ca:");
  scalar(&y, diag, "  ", "address", "LANYARD_CA_ADDR", NULL);
  scalar(&y, diag, "  ", "bundle", "LANYARD_BUNDLE_FILE", NULL);
  scalar(&y, diag, "  ", "k8s_token_file", "LANYARD_TOKEN_FILE", NULL);
  if (getenv("LANYARD_TTL") && *getenv("LANYARD_TTL")) {
    put(&y, NULL, "svid:");
    scalar(&y, diag, "  ", "ttl", "LANYARD_TTL", NULL);
  }
  scalar(&y, diag, "", "admin", "LANYARD_ADMIN", "0.0.0.0:15020");
  scalar(&y, diag, "", "mode", "LANYARD_MODE", "strict");
  put(&y, NULL, "inbound:");
  port(&y, diag, "  ", "port", "LANYARD_INBOUND_PORT", "15006");
  put(&y, NULL, "outbound:");
  port(&y, diag, "  ", "port", "LANYARD_OUTBOUND_PORT", "15001");
  meshed(&y, diag);
  int rc = LY_ECONFIG;
  if (y.failed)
    rc = UV_ENOMEM;
  else if (diag->n == before)
    rc = ly_agent_config_parse(ENV_NAME, y.text, y.len, 0, out, diag);
  name_variables(&y, diag);
  free(y.text);
  return rc;
}
