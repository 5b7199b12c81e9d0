#include "lanyard/config.h"

#include "config/schema.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include "lanyard/spiffe.h"
#include "lanyard/x509.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define CA(field) offsetof(ly_ca_config_t, field)
static const uint64_t min_ttl_ms = 5000;

static int f_svid(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f);
static int f_kubernetes(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                        const ly_field_t *f);
static int f_url(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                 const ly_field_t *f);
static int f_max_entries(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                         const ly_field_t *f);
static int f_configmap(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f);
static int f_dns_names(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f);

/* What --check expects of each file. */
static const ly_file_spec_t cert_spec = {"the signing certificate",
                                         LY_FILE_CERTS, 0};
static const ly_file_spec_t key_spec = {"the signing key", LY_FILE_KEY, 1};
static const ly_file_spec_t bundle_spec = {"the trust bundle", LY_FILE_CERTS,
                                           0};
static const ly_file_spec_t secret_spec = {"the token secret", LY_FILE_PLAIN,
                                           1};
static const ly_file_spec_t jwks_spec = {"the JWKS file", LY_FILE_PLAIN, 0};
static const ly_file_spec_t k8s_ca_spec = {"the API server's CA file",
                                           LY_FILE_CERTS, 0};

static const ly_field_t signing_fields[] = {
    LY_ARG("cert", ly_f_path, 1, CA(signing_cert), &cert_spec),
    LY_ARG("key", ly_f_path, 1, CA(signing_key), &key_spec),
    LY_END,
};

enum { SVID_DEFAULT, SVID_MAX };
static const ly_field_t svid_fields[] = {
    [SVID_DEFAULT] = LY_ARG("default_ttl", ly_f_duration, 0, CA(default_ttl_ms),
                            &min_ttl_ms),
    [SVID_MAX] =
        LY_ARG("max_ttl", ly_f_duration, 0, CA(max_ttl_ms), &min_ttl_ms),
    LY_END,
};

enum { K8S_JWKS, K8S_JWKS_URL };
static const ly_field_t k8s_fields[] = {
    [K8S_JWKS] = LY_ARG("jwks", ly_f_path, 0, CA(kubernetes.jwks), &jwks_spec),
    [K8S_JWKS_URL] = LY_KEY("jwks_url", f_url, 0, CA(kubernetes.jwks_url)),
    LY_KEY("issuer", ly_f_string, 1, CA(kubernetes.issuer)),
    LY_KEY("audience", ly_f_string, 0, CA(kubernetes.audience)),
    LY_ARG("ca_file", ly_f_path, 0, CA(kubernetes.ca_file), &k8s_ca_spec),
    /* not checked as a file: the kubelet may not have projected it yet */
    LY_KEY("token_file", ly_f_path, 0, CA(kubernetes.token_file)),
    LY_KEY("api_server", f_url, 0, CA(kubernetes.api_server)),
    LY_KEY("bundle_configmap", f_configmap, 0, CA(kubernetes.bundle_configmap)),
    LY_KEY("bundle_namespace_selector", ly_f_string, 0,
           CA(kubernetes.bundle_namespace_selector)),
    LY_END,
};

static const ly_field_t inventory_fields[] = {
    LY_KEY("file", ly_f_path, 0, CA(inventory.file)),
    LY_KEY("max_entries", f_max_entries, 0, CA(inventory.max_entries)),
    LY_END,
};

static const ly_field_t ca_fields[] = {
    LY_KEY("trust_domain", ly_f_trust_domain, 1, CA(trust_domain)),
    LY_KEY("listen", ly_f_listen, 0, CA(listen)),
    LY_KEY("admin", ly_f_listen, 0, CA(admin)),
    LY_ARG("signing", ly_f_map, 1, 0, signing_fields),
    LY_ARG("bundle", ly_f_path, 1, CA(bundle), &bundle_spec),
    LY_ARG("token_secret", ly_f_path, 1, CA(token_secret), &secret_spec),
    LY_KEY("svid", f_svid, 0, 0),
    LY_KEY("kubernetes", f_kubernetes, 0, 0),
    LY_ARG("inventory", ly_f_map, 0, 0, inventory_fields),
    LY_KEY("dns_names", f_dns_names, 0, 0),
    LY_END,
};

static int f_svid(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f) {
  const ly_ca_config_t *c = obj;
  const uint32_t both = 1u << SVID_DEFAULT | 1u << SVID_MAX;
  uint32_t ok;
  char a[32], b[32];
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  uint32_t seen = ly_schema_map(s, v, "svid", svid_fields, obj, &ok);
  if (((ok | ~seen) & both) != both || c->max_ttl_ms >= c->default_ttl_ms)
    return 0; /* a bad value was reported already */
  const ly_ypair_t *max = ly_ynode_find(v, "max_ttl");
  LY_SCHEMA_ERR(s, (max ? max : ly_ynode_find(v, "default_ttl"))->value,
                "max_ttl (%s) must be at least default_ttl (%s)",
                ly_duration_format(c->max_ttl_ms, a, sizeof(a)),
                ly_duration_format(c->default_ttl_ms, b, sizeof(b)));
  return -1;
}

static int f_kubernetes(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                        const ly_field_t *f) {
  ly_ca_config_t *c = obj;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  c->kubernetes.enabled = 1;
  uint32_t seen = ly_schema_map(s, v, "kubernetes", k8s_fields, obj, NULL);
  if (!(seen & (1u << K8S_JWKS | 1u << K8S_JWKS_URL)))
    LY_SCHEMA_ERR(s, v, "missing required key 'jwks' (or 'jwks_url')");
  ly_schema_exclusive(s, v, "jwks", "jwks_url");
  const char *cm = c->kubernetes.bundle_configmap;
  if (cm && !strchr(cm, '/') && !c->kubernetes.bundle_namespace_selector)
    LY_SCHEMA_ERR(s, ly_ynode_find(v, "bundle_configmap")->value,
                  "a bundle_configmap without a namespace needs "
                  "bundle_namespace_selector (which namespaces get it)");
  return 0;
}

static int f_url(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                 const ly_field_t *f) {
  const char *str;
  LY_GUARD(ly_schema_str(s, v, &str));
  size_t skip = !strncmp(str, "https://", 8)  ? 8
                : !strncmp(str, "http://", 7) ? 7
                                              : 0;
  if (!skip || !str[skip]) {
    LY_SCHEMA_ERR(s, v, "expected an http:// or https:// URL");
    return -1;
  }
  return ly_f_string(s, v, obj, f);
}

/* namespace/name or name, DNS names (what the API server accepts). */
static int f_configmap(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f) {
  const char *str;
  LY_GUARD(ly_schema_str(s, v, &str));
  const char *slash = strchr(str, '/');
  const char *name = slash ? slash + 1 : str;
  int ok = (!slash || (slash > str && slash - str <= 63)) && name[0] &&
           !strchr(name, '/') && strlen(name) <= 253;
  for (const char *p = str; ok && *p; p++)
    ok = p == slash || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
         *p == '-' || (*p == '.' && p >= name);
  if (!ok) {
    LY_SCHEMA_ERR(s, v,
                  "expected namespace/name or name (lower-case DNS names)");
    return -1;
  }
  return ly_f_string(s, v, obj, f);
}

/* dns_names: { <SPIFFE ID>: [<host name>, ...] }. Only names listed here
 * go into an SVID, so a workload cannot claim a Service's name (the
 * webhook's serving certificate is the one that needs it). */
static int f_dns_names(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                       const ly_field_t *f) {
  ly_ca_config_t *c = obj;
  LY_GUARD(ly_schema_kind(s, v, LY_YNODE_MAP));
  for (size_t i = 0; i < v->n; i++) {
    const ly_ypair_t *p = &v->pairs[i];
    const char *why = NULL;
    if (ly_spiffe_workload_id_parse(p->key, strlen(p->key), NULL, &why) != 0) {
      ly_schema_error(s, p->line, p->col, "dns_names: '%s': %s", p->key,
                      why ? why : "not a SPIFFE ID");
      continue;
    }
    if (ly_schema_kind(s, p->value, LY_YNODE_SEQ) != 0)
      continue;
    for (size_t j = 0; j < p->value->n; j++) {
      const ly_ynode_t *item = p->value->items[j];
      const char *name;
      if (ly_schema_str(s, item, &name) != 0)
        continue;
      if (!ly_dns_name_valid(name)) {
        LY_SCHEMA_ERR(s, item, "'%s' is not a DNS host name (no wildcards)",
                      name);
        continue;
      }
      void *grown =
          realloc(c->dns_names, (c->ndns_names + 1) * sizeof(*c->dns_names));
      if (!grown) {
        ly_schema_error(s, 0, 0, "out of memory");
        return -1;
      }
      c->dns_names = grown;
      c->dns_names[c->ndns_names].id = strdup(p->key);
      c->dns_names[c->ndns_names].name = strdup(name);
      c->ndns_names++;
      if (!c->dns_names[c->ndns_names - 1].id ||
          !c->dns_names[c->ndns_names - 1].name) {
        ly_schema_error(s, 0, 0, "out of memory");
        return -1;
      }
    }
  }
  return 0;
}

int ly_ca_config_dns_allowed(const ly_ca_config_t *c, const char *id,
                             const char *name) {
  for (size_t i = 0; i < c->ndns_names; i++)
    if (strcmp(c->dns_names[i].id, id) == 0 &&
        strcasecmp(c->dns_names[i].name, name) == 0)
      return 1;
  return 0;
}

static int f_max_entries(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                         const ly_field_t *f) {
  long n;
  LY_GUARD(ly_schema_int(s, v, 100, 10000000, f->key, &n));
  ((ly_ca_config_t *)obj)->inventory.max_entries = (size_t)n;
  return 0;
}

int ly_ca_config_load(const char *path, ly_ca_config_t **out, ly_diag_t *diag) {
  return ly_ca_config_load_ex(path, 0, out, diag);
}

int ly_ca_config_load_ex(const char *path, unsigned flags, ly_ca_config_t **out,
                         ly_diag_t *diag) {
  ly_schema_t s = {.file = path,
                   .diag = diag,
                   .check_files = (flags & LY_CONFIG_CHECK_FILES) != 0};
  ly_ynode_t *tree = NULL;
  ly_ca_config_t *c = calloc(1, sizeof(*c));
  if (!c)
    return UV_ENOMEM;
  c->listen = (ly_hostport_t){"127.0.0.1", 15012};
  c->admin = (ly_hostport_t){"127.0.0.1", 15014};
  c->default_ttl_ms = 3600 * 1000;
  c->max_ttl_ms = 24 * 3600 * 1000;
  const ly_ynode_t *root = ly_schema_load(&s, path, &tree);
  if (root)
    ly_schema_map(&s, root, "", ca_fields, c, NULL);
  if (root && !c->inventory.file &&
      !(c->inventory.file = ly_path_resolve(path, "certs.jsonl")))
    ly_schema_error(&s, 0, 0, "out of memory");
  /* In a pod, the service account's own CA and token are the defaults. */
  if (c->kubernetes.enabled &&
      ((!c->kubernetes.ca_file &&
        !(c->kubernetes.ca_file = strdup(LY_K8S_SA_DIR "/ca.crt"))) ||
       (!c->kubernetes.token_file &&
        !(c->kubernetes.token_file = strdup(LY_K8S_SA_DIR "/token")))))
    ly_schema_error(&s, 0, 0, "out of memory");
  if ((c->kubernetes.enabled && !c->kubernetes.audience &&
       !(c->kubernetes.audience = strdup("lanyard-ca"))) ||
      !(c->file = strdup(path)))
    ly_schema_error(&s, 0, 0, "out of memory");
  ly_ynode_free(tree);
  if (s.nerr) {
    ly_ca_config_free(c);
    return LY_ECONFIG;
  }
  *out = c;
  return 0;
}

void ly_ca_config_free(ly_ca_config_t *c) {
  if (!c)
    return;
  free(c->file);
  free(c->trust_domain);
  free(c->signing_cert);
  free(c->signing_key);
  free(c->bundle);
  free(c->token_secret);
  free(c->kubernetes.jwks);
  free(c->kubernetes.jwks_url);
  free(c->kubernetes.issuer);
  free(c->kubernetes.audience);
  free(c->kubernetes.ca_file);
  free(c->kubernetes.token_file);
  free(c->kubernetes.api_server);
  free(c->kubernetes.bundle_configmap);
  free(c->kubernetes.bundle_namespace_selector);
  free(c->inventory.file);
  for (size_t i = 0; i < c->ndns_names; i++) {
    free(c->dns_names[i].id);
    free(c->dns_names[i].name);
  }
  free(c->dns_names);
  free(c);
}
