/* `lanyard ca root prepare | activate | retire | status` and
 * `lanyard ca intermediate rotate`: root and intermediate rotation on a
 * running CA, with no restart anywhere.
 *
 * The commands act on the CA's directory (the one holding ca.yaml):
 *   root-<n>.pem/.key, signing-<n>.pem/.key  each root and intermediate made
 *                                            here (keys 0600, never rewritten)
 *   rotation.json                            which is pending, active,
 *                                            previous or retired (atomic)
 *   bundle.pem, signing.pem/.key             the files ca.yaml names, which
 *                                            the running CA polls (5 s, and
 *                                            before each Sign) and reloads
 * Nothing talks to the CA process but its admin API, read-only: the
 * commands write files, the CA follows them (ca_load.c), agents follow the
 * CA's bundle (TrustBundle, Sign responses).
 *
 * Root states: pending (in the bundle, not signing), active (signing),
 * previous (in the bundle, no longer signing: its SVIDs age out), retired
 * (out of the bundle), other (a bundle root these commands did not make
 * and leave alone). Intermediates: pending, active, retired.
 *
 * The two steps that can cause an outage refuse unless it is safe:
 * activate until every live agent (state ok in /api/mesh) holds the new
 * root; retire until no live SVID (the inventory, and what each live
 * agent's current SVID chains to) depends on the old root. --force skips
 * the check, and says what it skipped.
 */
#include "ca/ca.h"

#include "admin/admin.h"
#include "lanyard/cli.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

int ly_cmd_ca_root(int argc, char **argv);
int ly_cmd_ca_intermediate(int argc, char **argv);

#define PEM_MAX (1u << 20)
#define ADMIN_TIMEOUT_MS 3000
#define FOLLOW_WAIT_S 15 /* how long activate waits to see the CA switch */
#define NAMES_SHOWN 5    /* blockers named in a refusal */
#define FP_SHORT 12

typedef struct {
  const char *cmd; /* "ca root activate", for messages */
  ly_ca_config_t *cfg;
  char dir[4096]; /* the CA's directory */
  char state_path[4200];
  json_t *state; /* rotation.json */
  ly_hostport_t admin;
  int force;
  int json; /* status --json */
  uint64_t root_ms, signing_ms;
} rot_t;

/* ---- files ---------------------------------------------------------- */

static void path_in(const rot_t *r, const char *name, char *out, size_t len) {
  if (name[0] == '/')
    snprintf(out, len, "%s", name);
  else
    snprintf(out, len, "%s/%s", r->dir, name);
}

static int read_chain(const char *path, ly_chain_t *out) {
  char *pem = NULL;
  size_t len = 0;
  const char *why = NULL;
  int rc = ly_file_read(path, PEM_MAX, &pem, &len);
  if (rc == 0)
    rc = ly_chain_from_pem(pem, len, out, &why);
  free(pem);
  return rc;
}

static int write_chain(const char *path, const ly_chain_t *c, int create) {
  char *pem = NULL;
  size_t len = 0;
  LY_GUARD(ly_chain_to_pem(c, &pem, &len));
  int rc = create ? ly_file_create(path, pem, len, 0644)
                  : ly_file_write_atomic(path, pem, len, 0644);
  free(pem);
  return rc;
}

static int write_key(const char *path, const ly_key_t *k) {
  char *pem = NULL;
  size_t len = 0;
  LY_GUARD(ly_key_to_pem(k, &pem, &len));
  int rc = ly_file_create(path, pem, len, 0600);
  ly_wipe(pem, len);
  free(pem);
  return rc;
}

/* Copies src over dst atomically with mode (the signing files). */
static int copy_atomic(const char *src, const char *dst, mode_t mode) {
  char *data = NULL;
  size_t len = 0;
  LY_GUARD(ly_file_read(src, PEM_MAX, &data, &len));
  int rc = ly_file_write_atomic(dst, data, len, mode);
  ly_wipe(data, len);
  free(data);
  return rc;
}

static void fp_of(const ly_der_t *d, char out[LY_SHA256_HEX_LEN]) {
  ly_der_sha256_hex(d->der, d->len, out);
}

static int64_t not_after_of(const ly_der_t *d) {
  ly_cert_info_t ci;
  return ly_cert_info(d->der, d->len, &ci) == 0 ? ci.not_after : 0;
}

/* ---- state ---------------------------------------------------------- */

static const char *sget(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static json_t *list(const rot_t *r, const char *which) {
  return json_object_get(r->state, which);
}

/* The first entry of a list in this state, or NULL. */
static json_t *find(const rot_t *r, const char *which, const char *state) {
  size_t i;
  json_t *e;
  json_array_foreach(list(r, which), i, e) {
    if (!strcmp(sget(e, "state"), state))
      return e;
  }
  return NULL;
}

static json_t *find_name(const rot_t *r, const char *which, const char *name) {
  size_t i;
  json_t *e;
  json_array_foreach(list(r, which), i, e) {
    if (!strcmp(sget(e, "name"), name))
      return e;
  }
  return NULL;
}

static json_t *entry(const char *name, const char *cert, const char *key,
                     const ly_der_t *d, const char *state) {
  char fp[LY_SHA256_HEX_LEN];
  fp_of(d, fp);
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "name", name, "cert", cert,
                   "key", key, "sha256", fp, "not_after",
                   (json_int_t)not_after_of(d), "state", state);
}

/* Without rotation.json, the state is what `ca init` left: the bundle's
 * root that the signing certificate chains to is active (its files are
 * root.pem/root.key when they hold it), the others are left alone. */
static int derive_state(rot_t *r) {
  ly_chain_t roots = {0}, signing = {0}, init_root = {0};
  int rc = read_chain(r->cfg->bundle, &roots);
  if (rc == 0)
    rc = read_chain(r->cfg->signing_cert, &signing);
  if (rc != 0 || roots.n == 0 || signing.n == 0) {
    ly_cli_error(r->cmd, "cannot read %s and %s: %s", r->cfg->bundle,
                 r->cfg->signing_cert, ly_strerror(rc ? rc : LY_ECERT));
    ly_chain_free(&roots);
    ly_chain_free(&signing);
    return rc ? rc : LY_ECERT;
  }
  char init_path[4200], init_fp[LY_SHA256_HEX_LEN] = "";
  path_in(r, "root.pem", init_path, sizeof(init_path));
  if (read_chain(init_path, &init_root) == 0 && init_root.n == 1)
    fp_of(&init_root.certs[0], init_fp);
  json_t *rs = json_array(), *is = json_array();
  char active[32] = "";
  for (size_t i = 0; i < roots.n; i++) {
    ly_chain_t one = {.certs = &roots.certs[i], .n = 1};
    char fp[LY_SHA256_HEX_LEN], name[32];
    fp_of(&roots.certs[i], fp);
    snprintf(name, sizeof(name), "root-%zu", i + 1);
    int signs =
        !active[0] &&
        ly_chain_verify(&signing, &one, (int64_t)time(NULL), NULL, NULL) == 0;
    int from_init = !strcmp(fp, init_fp);
    if (signs)
      snprintf(active, sizeof(active), "%s", name);
    json_array_append_new(rs,
                          entry(name, from_init ? "root.pem" : "",
                                from_init ? "root.key" : "", &roots.certs[i],
                                signs ? "active" : "other"));
  }
  json_t *in = entry("signing-1", "", "", &signing.certs[0], "active");
  json_object_set_new(in, "root", json_string(active));
  json_array_append_new(is, in);
  r->state = json_pack("{s:i,s:o,s:o}", "version", 1, "roots", rs,
                       "intermediates", is);
  ly_chain_free(&roots);
  ly_chain_free(&signing);
  ly_chain_free(&init_root);
  return r->state ? 0 : UV_ENOMEM;
}

static int load_state(rot_t *r) {
  json_error_t err = {.line = 0};
  if (access(r->state_path, F_OK) != 0)
    return derive_state(r);
  r->state = json_load_file(r->state_path, 0, &err);
  if (!r->state || !json_is_array(list(r, "roots")) ||
      !json_is_array(list(r, "intermediates"))) {
    ly_cli_error(r->cmd, "%s:%d:%d: %s", r->state_path, err.line, err.column,
                 r->state ? "not a rotation state" : err.text);
    return LY_EPARSE;
  }
  return 0;
}

static int save_state(rot_t *r) {
  char *text = json_dumps(r->state, JSON_INDENT(2));
  if (!text)
    return UV_ENOMEM;
  size_t len = strlen(text);
  text[len] = '\n'; /* over the NUL: the file ends in a newline */
  int rc = ly_file_write_atomic(r->state_path, text, len + 1, 0644);
  free(text);
  if (rc != 0)
    ly_cli_error(r->cmd, "%s: %s", r->state_path, ly_strerror(rc));
  return rc;
}

/* A name not used yet for root-<n> / signing-<n>, nor as a file. */
static void next_name(const rot_t *r, const char *prefix, char *out,
                      size_t len) {
  for (int n = 1;; n++) {
    char pem[64], path[4200];
    snprintf(out, len, "%s-%d", prefix, n);
    snprintf(pem, sizeof(pem), "%s.pem", out);
    path_in(r, pem, path, sizeof(path));
    if (!find_name(r, "roots", out) && !find_name(r, "intermediates", out) &&
        access(path, F_OK) != 0)
      return;
  }
}

/* ---- the running CA and its mesh ----------------------------------- */

static json_t *fetch_mesh(const rot_t *r, char *why_out, size_t len) {
  int status = 0;
  char *body = NULL;
  const char *why = NULL;
  if (ly_http_get(&r->admin, "/api/mesh", ADMIN_TIMEOUT_MS, &status, &body,
                  &why) != 0) {
    snprintf(why_out, len, "http://%s:%u/api/mesh: %s", r->admin.host,
             r->admin.port, why);
    return NULL;
  }
  json_t *doc = status == 200 ? json_loads(body, 0, NULL) : NULL;
  if (!doc)
    snprintf(why_out, len, "http://%s:%u/api/mesh: HTTP %d, or not JSON",
             r->admin.host, r->admin.port, status);
  free(body);
  return doc;
}

typedef struct {
  size_t n;
  char shown[NAMES_SHOWN][LY_SPIFFE_ID_MAX + 80];
  size_t n_shown;
} names_t;

static void names_add(names_t *l, const char *name) {
  l->n++;
  for (size_t i = 0; i < l->n_shown; i++)
    if (!strcmp(l->shown[i], name))
      return;
  if (l->n_shown < NAMES_SHOWN)
    snprintf(l->shown[l->n_shown++], sizeof(l->shown[0]), "%s", name);
}

static void names_print(FILE *out, const names_t *l) {
  for (size_t i = 0; i < l->n_shown; i++)
    fprintf(out, "    %s\n", l->shown[i]);
  if (l->n > l->n_shown)
    fprintf(out, "    ... and others (%zu in all)\n", l->n);
}

static int has_string(const json_t *a, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    if (json_is_string(v) && !strcmp(json_string_value(v), s))
      return 1;
  }
  return 0;
}

/* Calls fn for each live agent (state ok) of the mesh. */
static void each_live_agent(const json_t *mesh,
                            void (*fn)(const json_t *w, const json_t *a,
                                       void *data),
                            void *data) {
  size_t i, k;
  json_t *w, *a;
  json_array_foreach(json_object_get(mesh, "workloads"), i, w) {
    json_array_foreach(json_object_get(w, "agents"), k, a) {
      if (!strcmp(sget(a, "state"), "ok"))
        fn(w, a, data);
    }
  }
}

typedef struct {
  const char *fp;
  names_t *out;
} agent_check_t;

static void agent_name(const json_t *w, const json_t *a, char *out,
                       size_t len) {
  snprintf(out, len, "%s (instance %s)", sget(w, "name"), sget(a, "instance"));
}

static void lacks_root(const json_t *w, const json_t *a, void *data) {
  agent_check_t *c = data;
  if (has_string(json_object_get(a, "bundle_root_sha256"), c->fp))
    return;
  char name[LY_SPIFFE_ID_MAX + 80];
  agent_name(w, a, name, sizeof(name));
  names_add(c->out, name);
}

static void svid_off_root(const json_t *w, const json_t *a, void *data) {
  agent_check_t *c = data;
  if (!strcmp(sget(a, "svid_root_sha256"), c->fp))
    return;
  char name[LY_SPIFFE_ID_MAX + 80];
  agent_name(w, a, name, sizeof(name));
  names_add(c->out, name);
}

typedef struct {
  const char *fp;
  int64_t now;
  names_t *out;
} inv_check_t;

static int inv_off_root(const ly_issued_t *c, void *data) {
  inv_check_t *k = data;
  if (c->not_after > k->now && strcmp(c->root_sha256, k->fp) != 0)
    names_add(k->out, c->spiffe_id);
  return 0;
}

/* What blocks activating root `fp`: live agents without it. -1 when the
 * mesh cannot be read (*why). */
static int activate_blockers(const json_t *mesh, const char *fp, names_t *out) {
  agent_check_t c = {.fp = fp, .out = out};
  memset(out, 0, sizeof(*out));
  each_live_agent(mesh, lacks_root, &c);
  return (int)out->n;
}

/* What blocks retiring everything but root `fp`: live SVIDs in the
 * inventory, and live agents' current SVIDs, that do not chain to it. */
static void retire_blockers(const rot_t *r, const json_t *mesh, const char *fp,
                            names_t *inv, names_t *agents, int *inv_rc) {
  memset(inv, 0, sizeof(*inv));
  memset(agents, 0, sizeof(*agents));
  inv_check_t k = {.fp = fp, .now = (int64_t)time(NULL), .out = inv};
  *inv_rc = ly_inventory_each(r->cfg->inventory.file, inv_off_root, &k);
  if (*inv_rc == UV_ENOENT)
    *inv_rc = 0; /* nothing issued */
  if (mesh) {
    agent_check_t c = {.fp = fp, .out = agents};
    each_live_agent(mesh, svid_off_root, &c);
  }
}

/* Waits until the CA's /api/mesh shows it signing with `fp`: 1, 0 when it
 * did not in FOLLOW_WAIT_S, -1 at once when the CA does not answer (*why:
 * it takes the files when it starts). */
static int wait_signing(const rot_t *r, const char *fp, char *why, size_t len) {
  for (int i = 0; i < FOLLOW_WAIT_S * 4; i++) {
    json_t *m = fetch_mesh(r, why, len);
    if (!m)
      return -1;
    const char *now =
        m ? sget(json_object_get(json_object_get(m, "ca"), "signing"), "sha256")
          : "";
    int same = !strcmp(now, fp);
    json_decref(m);
    if (same)
      return 1;
    usleep(250 * 1000);
  }
  return 0;
}

/* ---- making roots and intermediates --------------------------------- */

/* A new intermediate under the root `root` (its cert and key files),
 * written as <name>.pem/.key, into the intermediates list as `state`. */
static int make_intermediate(rot_t *r, const json_t *root, const char *state,
                             json_t **made) {
  char cert_path[4200], key_path[4200], name[32], file[64];
  ly_chain_t root_cert = {0};
  ly_key_t *root_key = NULL, *key = NULL;
  ly_der_t der = {0};
  char *pem = NULL;
  size_t len = 0;
  const char *why = NULL;
  int rc;
  if (!*sget(root, "key")) {
    ly_cli_error(r->cmd,
                 "no key file is known for %s (rotation.json): an "
                 "intermediate needs it",
                 sget(root, "name"));
    return LY_ECONFIG;
  }
  path_in(r, sget(root, "cert"), cert_path, sizeof(cert_path));
  path_in(r, sget(root, "key"), key_path, sizeof(key_path));
  if ((rc = read_chain(cert_path, &root_cert)) != 0 ||
      (rc = ly_file_read(key_path, PEM_MAX, &pem, &len)) != 0 ||
      (rc = ly_key_from_pem(pem, len, &root_key, &why)) != 0) {
    ly_cli_error(r->cmd, "%s / %s: %s", cert_path, key_path,
                 why ? why : ly_strerror(rc));
    goto out;
  }
  int64_t now = (int64_t)time(NULL);
  int64_t na = now + (int64_t)(r->signing_ms / 1000);
  int64_t root_na = not_after_of(&root_cert.certs[0]);
  if (na > root_na) /* an intermediate cannot outlive its root */
    na = root_na;
  next_name(r, "signing", name, sizeof(name));
  if ((rc = ly_ca_create_intermediate(root_key, &root_cert.certs[0],
                                      r->cfg->trust_domain, now - 60, na, &key,
                                      &der)) != 0)
    goto out;
  ly_chain_t one = {.certs = &der, .n = 1};
  snprintf(file, sizeof(file), "%s.key", name);
  path_in(r, file, key_path, sizeof(key_path));
  if ((rc = write_key(key_path, key)) != 0) {
    ly_cli_error(r->cmd, "%s: %s", key_path, ly_strerror(rc));
    goto out;
  }
  snprintf(file, sizeof(file), "%s.pem", name);
  path_in(r, file, cert_path, sizeof(cert_path));
  if ((rc = write_chain(cert_path, &one, 1)) != 0) {
    ly_cli_error(r->cmd, "%s: %s", cert_path, ly_strerror(rc));
    goto out;
  }
  char kname[64];
  snprintf(kname, sizeof(kname), "%s.key", name);
  *made = entry(name, file, kname, &der, state);
  json_object_set_new(*made, "root", json_string(sget(root, "name")));
  json_array_append(list(r, "intermediates"), *made);
  json_decref(*made); /* the list holds it */
out:
  if (pem) {
    ly_wipe(pem, len);
    free(pem);
  }
  ly_key_free(root_key);
  ly_key_free(key);
  ly_chain_free(&root_cert);
  free(der.der);
  return rc;
}

/* Makes `in` the signing intermediate: its key, then its certificate, over
 * the files ca.yaml names (the CA reloads the pair when both match), and
 * every other active intermediate retired. */
static int switch_signing(rot_t *r, json_t *in) {
  char cert[4200], key[4200];
  path_in(r, sget(in, "cert"), cert, sizeof(cert));
  path_in(r, sget(in, "key"), key, sizeof(key));
  int rc = copy_atomic(key, r->cfg->signing_key, 0600);
  if (rc == 0)
    rc = copy_atomic(cert, r->cfg->signing_cert, 0644);
  if (rc != 0) {
    ly_cli_error(r->cmd, "writing %s and %s: %s", r->cfg->signing_key,
                 r->cfg->signing_cert, ly_strerror(rc));
    return rc;
  }
  size_t i;
  json_t *e;
  json_array_foreach(list(r, "intermediates"), i, e) {
    if (e != in && !strcmp(sget(e, "state"), "active"))
      json_object_set_new(e, "state", json_string("retired"));
  }
  json_object_set_new(in, "state", json_string("active"));
  return 0;
}

static void say_followed(const rot_t *r, const json_t *in) {
  char why[256];
  int seen = wait_signing(r, sget(in, "sha256"), why, sizeof(why));
  if (seen > 0)
    printf("the CA signs with %s now (seen on its admin API)\n",
           sget(in, "name"));
  else if (seen < 0)
    printf("the CA is not answering (%s): it signs with %s when it "
           "starts\n",
           why, sget(in, "name"));
  else
    printf("warning: the CA at %s:%u does not show %s as its signing "
           "certificate after %d s (it polls %s every 5 s; see its log for "
           "signer_reload_failed)\n",
           r->admin.host, r->admin.port, sget(in, "name"), FOLLOW_WAIT_S,
           r->cfg->signing_cert);
}

/* ---- the commands ----------------------------------------------------- */

/* Is the root with this fingerprint in bundle.pem now. */
static int in_bundle(const rot_t *r, const char *fp) {
  ly_chain_t bundle = {0};
  int found = 0;
  if (read_chain(r->cfg->bundle, &bundle) == 0)
    for (size_t i = 0; i < bundle.n && !found; i++) {
      char b[LY_SHA256_HEX_LEN];
      fp_of(&bundle.certs[i], b);
      found = !strcmp(b, fp);
    }
  ly_chain_free(&bundle);
  return found;
}

/* Appends a root (its entry's cert file) to bundle.pem, atomically, unless
 * it is there. The number of roots in the bundle, or a negative error. */
static int add_to_bundle(rot_t *r, const json_t *root) {
  char path[4200];
  ly_chain_t cert = {0}, bundle = {0};
  path_in(r, sget(root, "cert"), path, sizeof(path));
  int rc = read_chain(path, &cert);
  if (rc == 0 && cert.n != 1)
    rc = LY_ECERT;
  if (rc == 0)
    rc = read_chain(r->cfg->bundle, &bundle);
  if (rc == 0 && !in_bundle(r, sget(root, "sha256")) &&
      (rc = ly_chain_push(&bundle, cert.certs[0].der, cert.certs[0].len)) == 0)
    rc = write_chain(r->cfg->bundle, &bundle, 0);
  if (rc != 0)
    ly_cli_error(r->cmd, "adding %s to %s: %s", path, r->cfg->bundle,
                 ly_strerror(rc));
  int n = rc == 0 ? (int)bundle.n : rc;
  ly_chain_free(&cert);
  ly_chain_free(&bundle);
  return n;
}

/* Files first, then rotation.json, then the bundle: a prepare cut short
 * leaves a pending root that is not in the bundle yet, which a second
 * prepare adds (and activate refuses, even with --force). */
static int root_prepare(rot_t *r) {
  json_t *busy = find(r, "roots", "pending");
  if (busy && !in_bundle(r, sget(busy, "sha256"))) {
    int n = add_to_bundle(r, busy);
    if (n < 0)
      return LY_EXIT_FAIL;
    printf("finished preparing %s: %s now holds %d roots\n", sget(busy, "name"),
           r->cfg->bundle, n);
    return LY_EXIT_OK;
  }
  if (!busy)
    busy = find(r, "roots", "previous");
  if (busy) {
    ly_cli_error(r->cmd,
                 "a rotation is in progress (%s is %s): finish it first "
                 "(`lanyard ca root status`)",
                 sget(busy, "name"), sget(busy, "state"));
    return LY_EXIT_FAIL;
  }
  char name[32], cert_file[64], key_file[64], path[4200];
  next_name(r, "root", name, sizeof(name));
  snprintf(cert_file, sizeof(cert_file), "%s.pem", name);
  snprintf(key_file, sizeof(key_file), "%s.key", name);
  int64_t now = (int64_t)time(NULL);
  ly_key_t *key = NULL;
  ly_der_t der = {0};
  json_t *root = NULL, *in = NULL;
  int n = 0;
  int rc = ly_ca_create_root(r->cfg->trust_domain, now - 60,
                             now + (int64_t)(r->root_ms / 1000), &key, &der);
  ly_chain_t one = {.certs = &der, .n = 1};
  path_in(r, key_file, path, sizeof(path));
  if (rc == 0 && (rc = write_key(path, key)) != 0)
    ly_cli_error(r->cmd, "%s: %s", path, ly_strerror(rc));
  path_in(r, cert_file, path, sizeof(path));
  if (rc == 0 && (rc = write_chain(path, &one, 1)) != 0)
    ly_cli_error(r->cmd, "%s: %s", path, ly_strerror(rc));
  if (rc != 0)
    goto out;
  root = entry(name, cert_file, key_file, &der, "pending");
  json_array_append(list(r, "roots"), root);
  if ((rc = make_intermediate(r, root, "pending", &in)) != 0 ||
      (rc = save_state(r)) != 0)
    goto out;
  /* The new root joins the bundle agents fetch; signing stays as it is. */
  if ((n = add_to_bundle(r, root)) < 0) {
    rc = n;
    goto out;
  }
  printf("prepared %s (sha256 %.*s) and its intermediate %s\n"
         "  %s now holds %d roots; the CA and the agents pick it up "
         "without a restart\n"
         "  next: `lanyard ca root activate -c %s` once every agent holds "
         "%s (`lanyard ca root status`)\n",
         name, FP_SHORT, sget(root, "sha256"), sget(in, "name"), r->cfg->bundle,
         n, r->cfg->file, name);
out:
  json_decref(root);
  ly_key_free(key);
  free(der.der);
  return rc == 0 ? LY_EXIT_OK : LY_EXIT_FAIL;
}

static int root_activate(rot_t *r) {
  json_t *root = find(r, "roots", "pending"), *in = NULL;
  size_t i;
  json_t *e;
  if (!root) {
    ly_cli_error(r->cmd, "no pending root: run `lanyard ca root prepare` "
                         "first");
    return LY_EXIT_FAIL;
  }
  json_array_foreach(list(r, "intermediates"), i, e) {
    if (!strcmp(sget(e, "state"), "pending") &&
        !strcmp(sget(e, "root"), sget(root, "name")))
      in = e;
  }
  if (!in) {
    ly_cli_error(r->cmd, "no pending intermediate under %s in %s",
                 sget(root, "name"), r->state_path);
    return LY_EXIT_FAIL;
  }
  if (!in_bundle(r, sget(root, "sha256"))) { /* not even --force */
    ly_cli_error(r->cmd,
                 "%s is not in %s: an interrupted prepare; run `lanyard ca "
                 "root prepare` again to finish it",
                 sget(root, "name"), r->cfg->bundle);
    return LY_EXIT_FAIL;
  }
  char why[512];
  json_t *mesh = fetch_mesh(r, why, sizeof(why));
  names_t lack;
  if (!mesh && !r->force) {
    ly_cli_error(r->cmd,
                 "refusing: cannot tell which agents hold %s: %s "
                 "(--admin ADDR, or --force)",
                 sget(root, "name"), why);
    return LY_EXIT_FAIL;
  }
  if (mesh && activate_blockers(mesh, sget(root, "sha256"), &lack) > 0) {
    if (!r->force) {
      ly_cli_error(r->cmd,
                   "refusing: %zu live agent(s) do not hold %s in their "
                   "bundle yet; SVIDs from it would be refused by them:",
                   lack.n, sget(root, "name"));
      names_print(stderr, &lack);
      fprintf(stderr, "  agents refresh their bundle every 5 minutes and at "
                      "each renewal (SIGHUP: at once); --force skips this "
                      "check\n");
      json_decref(mesh);
      return LY_EXIT_FAIL;
    }
    printf("--force: %zu live agent(s) lack %s\n", lack.n, sget(root, "name"));
  }
  json_decref(mesh);
  if (switch_signing(r, in) != 0)
    return LY_EXIT_FAIL;
  json_array_foreach(list(r, "roots"), i, e) {
    if (!strcmp(sget(e, "state"), "active"))
      json_object_set_new(e, "state", json_string("previous"));
  }
  json_object_set_new(root, "state", json_string("active"));
  if (save_state(r) != 0)
    return LY_EXIT_FAIL;
  printf("activated %s: new SVIDs are signed by %s\n", sget(root, "name"),
         sget(in, "name"));
  say_followed(r, in);
  printf("  next: `lanyard ca root retire -c %s` once no live SVID chains "
         "to the previous root\n",
         r->cfg->file);
  return LY_EXIT_OK;
}

static void print_retire_blockers(FILE *out, const char *root,
                                  const names_t *inv, const names_t *agents) {
  if (inv->n) {
    fprintf(out, "  %zu live SVID(s) in the inventory do not chain to %s:\n",
            inv->n, root);
    names_print(out, inv);
  }
  if (agents->n) {
    fprintf(out,
            "  %zu live agent(s) present an SVID that does not chain "
            "to %s:\n",
            agents->n, root);
    names_print(out, agents);
  }
}

static int root_retire(rot_t *r) {
  json_t *old = find(r, "roots", "previous"),
         *active = find(r, "roots", "active");
  if (!old || !active) {
    ly_cli_error(r->cmd, "no previous root to retire (`lanyard ca root "
                         "status`)");
    return LY_EXIT_FAIL;
  }
  char why[512];
  json_t *mesh = fetch_mesh(r, why, sizeof(why));
  names_t inv, agents;
  int inv_rc;
  retire_blockers(r, mesh, sget(active, "sha256"), &inv, &agents, &inv_rc);
  int blocked = inv.n || agents.n || !mesh || inv_rc != 0;
  int no_mesh = !mesh;
  json_decref(mesh);
  if (blocked && !r->force) {
    ly_cli_error(r->cmd,
                 "refusing to retire %s: it would cut off live "
                 "identities",
                 sget(old, "name"));
    if (no_mesh)
      fprintf(stderr, "  cannot see the agents' SVIDs: %s\n", why);
    if (inv_rc != 0)
      fprintf(stderr, "  cannot read the inventory %s: %s\n",
              r->cfg->inventory.file, ly_strerror(inv_rc));
    print_retire_blockers(stderr, sget(active, "name"), &inv, &agents);
    fprintf(stderr, "  SVIDs renew at half their life: wait for them to "
                    "expire (--force skips this check)\n");
    return LY_EXIT_FAIL;
  }
  if (blocked) {
    printf("--force: retiring with live identities on %s:\n",
           sget(old, "name"));
    print_retire_blockers(stdout, sget(active, "name"), &inv, &agents);
  }
  ly_chain_t bundle = {0}, kept = {0};
  int rc = read_chain(r->cfg->bundle, &bundle);
  for (size_t i = 0; rc == 0 && i < bundle.n; i++) {
    char fp[LY_SHA256_HEX_LEN];
    fp_of(&bundle.certs[i], fp);
    if (strcmp(fp, sget(old, "sha256")) != 0)
      rc = ly_chain_push(&kept, bundle.certs[i].der, bundle.certs[i].len);
  }
  if (rc == 0 && kept.n == 0)
    rc = LY_ECERT; /* never an empty bundle */
  if (rc == 0)
    rc = write_chain(r->cfg->bundle, &kept, 0);
  if (rc != 0)
    ly_cli_error(r->cmd, "%s: %s", r->cfg->bundle, ly_strerror(rc));
  size_t i;
  json_t *e;
  if (rc == 0) {
    json_object_set_new(old, "state", json_string("retired"));
    json_array_foreach(list(r, "intermediates"), i, e) {
      if (!strcmp(sget(e, "root"), sget(old, "name")))
        json_object_set_new(e, "state", json_string("retired"));
    }
    rc = save_state(r);
  }
  if (rc == 0)
    printf("retired %s: %s holds %zu root(s); the CA and the agents drop it "
           "without a restart\n",
           sget(old, "name"), r->cfg->bundle, kept.n);
  ly_chain_free(&bundle);
  ly_chain_free(&kept);
  return rc == 0 ? LY_EXIT_OK : LY_EXIT_FAIL;
}

static int intermediate_rotate(rot_t *r) {
  json_t *root = find(r, "roots", "active"), *in = NULL;
  if (!root) {
    ly_cli_error(r->cmd, "no active root in %s", r->state_path);
    return LY_EXIT_FAIL;
  }
  if (make_intermediate(r, root, "pending", &in) != 0 ||
      switch_signing(r, in) != 0 || save_state(r) != 0)
    return LY_EXIT_FAIL;
  printf("rotated the signing intermediate: %s (sha256 %.*s) under %s; the "
         "bundle is unchanged\n",
         sget(in, "name"), FP_SHORT, sget(in, "sha256"), sget(root, "name"));
  say_followed(r, in);
  return LY_EXIT_OK;
}

static const char *when(int64_t t, char *buf, size_t len) {
  struct tm tm;
  time_t tt = (time_t)t;
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
  return buf;
}

static json_t *names_json(const names_t *l) {
  json_t *a = json_array();
  for (size_t i = 0; i < l->n_shown; i++)
    json_array_append_new(a, json_string(l->shown[i]));
  return json_pack("{s:I,s:o}", "count", (json_int_t)l->n, "first", a);
}

/* status --json: rotation.json's lists with in_bundle / signing added, and
 * the next step with what blocks it (the first few names and a count). */
static int status_json(rot_t *r) {
  char why[512];
  json_t *mesh = fetch_mesh(r, why, sizeof(why));
  const char *signing =
      mesh ? sget(json_object_get(json_object_get(mesh, "ca"), "signing"),
                  "sha256")
           : "";
  json_t *doc = json_deep_copy(r->state), *e;
  size_t i;
  json_array_foreach(json_object_get(doc, "roots"), i, e) {
    json_object_set_new(e, "in_bundle",
                        json_boolean(in_bundle(r, sget(e, "sha256"))));
  }
  json_array_foreach(json_object_get(doc, "intermediates"), i, e) {
    json_object_set_new(e, "signing",
                        json_boolean(!strcmp(signing, sget(e, "sha256"))));
  }
  json_object_set_new(doc, "ca",
                      json_pack("{s:b,s:s}", "reachable", mesh != NULL, "error",
                                mesh ? "" : why));
  json_t *pending = find(r, "roots", "pending"),
         *previous = find(r, "roots", "previous"),
         *active = find(r, "roots", "active"), *next;
  if (pending) {
    names_t lack = {0};
    if (mesh)
      activate_blockers(mesh, sget(pending, "sha256"), &lack);
    next = json_pack("{s:s,s:s,s:b,s:o}", "step", "activate", "root",
                     sget(pending, "name"), "ready", mesh && lack.n == 0,
                     "agents_lacking_root", names_json(&lack));
  } else if (previous && active) {
    names_t inv, agents;
    int inv_rc;
    retire_blockers(r, mesh, sget(active, "sha256"), &inv, &agents, &inv_rc);
    next = json_pack("{s:s,s:s,s:b,s:o,s:o}", "step", "retire", "root",
                     sget(previous, "name"), "ready",
                     mesh && inv_rc == 0 && inv.n == 0 && agents.n == 0,
                     "inventory_svids_off_root", names_json(&inv),
                     "agents_off_root", names_json(&agents));
  } else {
    next = json_pack("{s:s,s:b}", "step", "prepare", "ready", 1);
  }
  json_object_set_new(doc, "next", next);
  char *text = json_dumps(doc, JSON_INDENT(2));
  puts(text ? text : "{}");
  free(text);
  json_decref(doc);
  json_decref(mesh);
  return LY_EXIT_OK;
}

static int root_status(rot_t *r) {
  if (r->json)
    return status_json(r);
  char why[512], t[32];
  json_t *mesh = fetch_mesh(r, why, sizeof(why));
  const char *signing =
      mesh ? sget(json_object_get(json_object_get(mesh, "ca"), "signing"),
                  "sha256")
           : "";
  size_t i;
  json_t *e;
  printf("%-12s %-9s %-12s %-20s %s\n", "ROOT", "STATE", "SHA256", "NOT AFTER",
         "IN BUNDLE");
  json_array_foreach(list(r, "roots"), i, e) {
    printf(
        "%-12s %-9s %-12.12s %-20s %s\n", sget(e, "name"), sget(e, "state"),
        sget(e, "sha256"),
        when(json_integer_value(json_object_get(e, "not_after")), t, sizeof(t)),
        in_bundle(r, sget(e, "sha256")) ? "yes" : "no");
  }
  printf("\n%-12s %-9s %-12s %-20s %s\n", "INTERMEDIATE", "STATE", "SHA256",
         "NOT AFTER", "ROOT");
  json_array_foreach(list(r, "intermediates"), i, e) {
    printf(
        "%-12s %-9s %-12.12s %-20s %s%s\n", sget(e, "name"), sget(e, "state"),
        sget(e, "sha256"),
        when(json_integer_value(json_object_get(e, "not_after")), t, sizeof(t)),
        sget(e, "root"),
        !strcmp(signing, sget(e, "sha256")) ? "  (the CA signs with it)" : "");
  }
  printf("\n");
  if (!mesh)
    printf("CA: not reachable (%s): agents not checked\n", why);
  json_t *pending = find(r, "roots", "pending"),
         *previous = find(r, "roots", "previous"),
         *active = find(r, "roots", "active");
  if (pending) {
    names_t lack = {0};
    if (mesh && activate_blockers(mesh, sget(pending, "sha256"), &lack) > 0) {
      printf("next: activate %s: blocked: %zu live agent(s) lack it:\n",
             sget(pending, "name"), lack.n);
      names_print(stdout, &lack);
    } else if (mesh) {
      printf("next: activate %s: ready (every live agent holds it)\n",
             sget(pending, "name"));
    } else {
      printf("next: activate %s\n", sget(pending, "name"));
    }
  } else if (previous && active) {
    names_t inv, agents;
    int inv_rc;
    retire_blockers(r, mesh, sget(active, "sha256"), &inv, &agents, &inv_rc);
    if (inv.n || agents.n) {
      printf("next: retire %s: blocked:\n", sget(previous, "name"));
      print_retire_blockers(stdout, sget(active, "name"), &inv, &agents);
    } else {
      printf("next: retire %s: %s\n", sget(previous, "name"),
             mesh ? "ready (no live SVID chains to it)" : "check the agents");
    }
  } else {
    printf("next: nothing in progress (`lanyard ca root prepare` starts a "
           "root rotation)\n");
  }
  json_decref(mesh);
  return LY_EXIT_OK;
}

/* ---- arguments ---------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: lanyard ca root <prepare|activate|retire|status> -c ca.yaml "
          "[options]\n"
          "       lanyard ca intermediate rotate -c ca.yaml [options]\n"
          "  prepare   make a new root and its intermediate; add the root to "
          "the bundle\n"
          "  activate  sign with the new intermediate (refused until every "
          "live agent\n"
          "            holds the new root)\n"
          "  retire    drop the previous root from the bundle (refused while "
          "a live SVID\n"
          "            chains to it)\n"
          "  status    each root and intermediate, and what blocks the next "
          "step\n"
          "  rotate    a new signing intermediate under the active root\n"
          "options:\n"
          "  --admin ADDR        the CA's admin address (default: admin in "
          "ca.yaml)\n"
          "  --force             skip the safety check (activate, retire)\n"
          "  --json              status as JSON (next.step, next.ready, "
          "blockers)\n"
          "  --root-ttl DUR      the new root's lifetime (default 3650d)\n"
          "  --signing-ttl DUR   the new intermediate's (default 1825d)\n");
}

static int run(const char *cmd, const char *verb, int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"admin", required_argument, NULL, 'a'},
      {"force", no_argument, NULL, 'f'},
      {"root-ttl", required_argument, NULL, 'r'},
      {"signing-ttl", required_argument, NULL, 's'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  rot_t r;
  memset(&r, 0, sizeof(r));
  r.cmd = cmd;
  r.root_ms = 3650ull * 86400000;
  r.signing_ms = 1825ull * 86400000;
  const char *config = NULL, *admin = NULL, *why = NULL;
  int c;
  optind = 1;
  ly_cli_name(argv, cmd);
  while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config = optarg;
      break;
    case 'a':
      admin = optarg;
      break;
    case 'f':
      r.force = 1;
      break;
    case 'j':
      r.json = 1;
      break;
    case 'r':
    case 's':
      if (ly_duration_parse(optarg, c == 'r' ? &r.root_ms : &r.signing_ms,
                            &why) != 0) {
        ly_cli_error(cmd, "--%s: %s", c == 'r' ? "root-ttl" : "signing-ttl",
                     why);
        return LY_EXIT_USAGE;
      }
      break;
    case 'h':
      usage(stdout);
      return LY_EXIT_OK;
    default:
      usage(stderr);
      return LY_EXIT_USAGE;
    }
  }
  if (!config || optind != argc) {
    usage(stderr);
    return LY_EXIT_USAGE;
  }
  ly_diag_t diag;
  ly_diag_init(&diag);
  if (ly_ca_config_load(config, &r.cfg, &diag) != 0) {
    ly_diag_print(&diag, stderr);
    ly_diag_free(&diag);
    return LY_EXIT_USAGE;
  }
  ly_diag_free(&diag);
  r.admin = r.cfg->admin;
  if (admin && ly_hostport_parse(admin, 1, &r.admin, &why) != 0) {
    ly_cli_error(cmd, "--admin %s: %s", admin, why);
    ly_ca_config_free(r.cfg);
    return LY_EXIT_USAGE;
  }
  char copy[4096];
  snprintf(copy, sizeof(copy), "%s", config);
  snprintf(r.dir, sizeof(r.dir), "%s", dirname(copy));
  snprintf(r.state_path, sizeof(r.state_path), "%s/rotation.json", r.dir);
  /* One rotation command at a time: two prepares would both append. The
   * lock goes with the process. */
  int rc = LY_EXIT_FAIL, lock = -1;
  if (strcmp(verb, "status") != 0) {
    char lock_path[4200];
    snprintf(lock_path, sizeof(lock_path), "%s/rotation.lock", r.dir);
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
      ly_cli_error(cmd, "%s: %s", lock_path,
                   errno == EWOULDBLOCK ? "another rotation command is running"
                                        : strerror(errno));
      if (lock >= 0)
        close(lock);
      ly_ca_config_free(r.cfg);
      return LY_EXIT_FAIL;
    }
  }
  if (load_state(&r) == 0) {
    if (!strcmp(verb, "prepare"))
      rc = root_prepare(&r);
    else if (!strcmp(verb, "activate"))
      rc = root_activate(&r);
    else if (!strcmp(verb, "retire"))
      rc = root_retire(&r);
    else if (!strcmp(verb, "status"))
      rc = root_status(&r);
    else
      rc = intermediate_rotate(&r);
  }
  json_decref(r.state);
  ly_ca_config_free(r.cfg);
  if (lock >= 0)
    close(lock);
  return rc;
}

int ly_cmd_ca_root(int argc, char **argv) {
  static const char *const verbs[] = {"prepare", "activate", "retire",
                                      "status"};
  static const char *const names[] = {"ca root prepare", "ca root activate",
                                      "ca root retire", "ca root status"};
  for (size_t i = 0; argc >= 2 && i < 4; i++)
    if (!strcmp(argv[1], verbs[i]))
      return run(names[i], verbs[i], argc - 1, argv + 1);
  int help =
      argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
  usage(help ? stdout : stderr);
  return help ? LY_EXIT_OK : LY_EXIT_USAGE;
}

int ly_cmd_ca_intermediate(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "rotate"))
    return run("ca intermediate rotate", "rotate", argc - 1, argv + 1);
  int help =
      argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
  usage(help ? stdout : stderr);
  return help ? LY_EXIT_OK : LY_EXIT_USAGE;
}
