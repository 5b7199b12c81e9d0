/* `lanyard check [--strict] [--ca-admin ADDR | -c ca.yaml] [--ascii]`:
 * the mesh's health in one screen, like `linkerd check`. One line per
 * check, from the CA's admin endpoints (/readyz, /api/mesh):
 *   - the CA is reachable and ready to sign;
 *   - its roots and its signing intermediate: expired is a problem, under
 *     30 days a warning;
 *   - every reporting agent's certificate: expired is a problem, past the
 *     point where it should have been renewed (3/4 of its life) a warning;
 *   - bundle agreement: every agent trusts exactly the CA's roots. A root
 *     the CA has that an agent lacks is a problem (that agent refuses
 *     peers under it); one the agent still has that the CA dropped is a
 *     warning (a retired root still trusted).
 * Exit 0 when there is no problem (with --strict: no warning either),
 * 1 otherwise, 2 on usage errors. */
#include "admin/admin.h"

#include "lanyard/cli.h"
#include "lanyard/config.h"

#include <getopt.h>
#include <jansson.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 5000
#define WARN_DAYS 30
#define FP_SHORT 12

enum { OK, WARN, FAIL };

typedef struct {
  int ascii;
  size_t n[3];
} report_t;

static void line(report_t *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void line(report_t *r, int level, const char *fmt, ...) {
  static const char *const utf8[] = {"\xe2\x9c\x94", "\xe2\x80\xbc",
                                     "\xc3\x97"}; /* ✔ ‼ × */
  static const char *const ascii[] = {"[ok]  ", "[warn]", "[FAIL]"};
  va_list ap;
  va_start(ap, fmt);
  printf("%s ", r->ascii ? ascii[level] : utf8[level]);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  r->n[level]++;
}

/* "3d 4h", "42m", "expired 2h ago" */
static const char *human(json_int_t s, char *buf, size_t len) {
  json_int_t a = s < 0 ? -s : s;
  if (a >= 86400)
    snprintf(buf, len, "%lldd", (long long)(a / 86400));
  else if (a >= 3600)
    snprintf(buf, len, "%lldh%lldm", (long long)(a / 3600),
             (long long)(a % 3600 / 60));
  else if (a >= 60)
    snprintf(buf, len, "%lldm", (long long)(a / 60));
  else
    snprintf(buf, len, "%llds", (long long)a);
  return buf;
}

static void check_ca_cert(report_t *r, const char *what, json_t *c) {
  const char *fp = json_string_value(json_object_get(c, "sha256"));
  json_t *left = json_object_get(c, "expires_in_seconds");
  char h[32];
  if (!fp || !json_is_integer(left)) {
    line(r, FAIL, "%s: not readable from the CA", what);
    return;
  }
  json_int_t s = json_integer_value(left);
  if (s <= 0)
    line(r, FAIL, "%s %.*s expired %s ago", what, FP_SHORT, fp,
         human(s, h, sizeof(h)));
  else if (s < WARN_DAYS * 86400)
    line(r, WARN, "%s %.*s expires in %s (under %d days: rotate it)", what,
         FP_SHORT, fp, human(s, h, sizeof(h)), WARN_DAYS);
  else
    line(r, OK, "%s %.*s valid for %s", what, FP_SHORT, fp,
         human(s, h, sizeof(h)));
}

static int has_string(json_t *array, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(array, i,
                     v) if (json_is_string(v) &&
                            !strcmp(json_string_value(v), s)) return 1;
  return 0;
}

/* Workload certificates and bundle agreement, over the reporting agents. */
static void check_agents(report_t *r, json_t *mesh) {
  json_t *roots = json_object_get(json_object_get(mesh, "ca"), "roots");
  json_t *ca_fps = json_array();
  size_t i, k;
  json_t *v, *w, *a;
  json_array_foreach(roots, i, v)
      json_array_append(ca_fps, json_object_get(v, "sha256"));
  size_t agents = 0, stale = 0, certs_bad = 0, bundle_bad = 0;
  json_int_t soonest = -1;
  char h[32];
  json_array_foreach(json_object_get(mesh, "workloads"), i, w) {
    const char *id = json_string_value(json_object_get(w, "spiffe_id"));
    json_array_foreach(json_object_get(w, "agents"), k, a) {
      const char *inst = json_string_value(json_object_get(a, "instance"));
      const char *state = json_string_value(json_object_get(a, "state"));
      if (state && !strcmp(state, "stale")) {
        stale++; /* silent: maybe gone; `lanyard mesh` lists them */
        continue;
      }
      agents++;
      json_int_t nb = json_integer_value(json_object_get(a, "not_before"));
      json_int_t na = json_integer_value(json_object_get(a, "not_after"));
      json_int_t left =
          json_integer_value(json_object_get(a, "expires_in_seconds"));
      if (left <= 0) {
        line(r, FAIL, "%s (%s): certificate expired %s ago", id, inst,
             human(left, h, sizeof(h)));
        certs_bad++;
      } else if (na > nb && left * 4 < na - nb) {
        line(r, WARN,
             "%s (%s): certificate expires in %s and was not renewed at "
             "half-life (is the CA reachable from it?)",
             id, inst, human(left, h, sizeof(h)));
        certs_bad++;
      }
      if (left > 0 && (soonest < 0 || left < soonest))
        soonest = left;
      json_t *theirs = json_object_get(a, "bundle_root_sha256");
      size_t m;
      json_array_foreach(ca_fps, m, v) {
        if (has_string(theirs, json_string_value(v)))
          continue;
        line(r, FAIL,
             "%s (%s): does not trust the CA's root %.*s (its bundle is "
             "behind: it refuses peers certified under that root)",
             id, inst, FP_SHORT, json_string_value(v));
        bundle_bad++;
      }
      json_array_foreach(theirs, m, v) {
        if (has_string(ca_fps, json_string_value(v)))
          continue;
        line(r, WARN,
             "%s (%s): still trusts root %.*s, which the CA no longer has", id,
             inst, FP_SHORT, json_string_value(v));
        bundle_bad++;
      }
    }
  }
  json_decref(ca_fps);
  if (!agents) {
    line(r, OK, "no agents report to this CA yet%s",
         stale ? " (only stale ones)" : "");
    return;
  }
  if (!certs_bad)
    line(r, OK,
         "workload certificates: %zu agents, all valid (soonest expiry "
         "in %s)",
         agents, human(soonest, h, sizeof(h)));
  if (!bundle_bad)
    line(r, OK,
         "bundle agreement: %zu agents trust exactly the CA's %zu "
         "root%s",
         agents, json_array_size(roots),
         json_array_size(roots) == 1 ? "" : "s");
  if (stale)
    printf("  (%zu stale agent%s not counted: see `lanyard mesh`)\n", stale,
           stale == 1 ? "" : "s");
}

static const char usage[] =
    "usage: lanyard check [--strict] [--ca-admin HOST:PORT | -c ca.yaml] "
    "[--ascii]\n"
    "  Checks the mesh through the CA's admin endpoint (default "
    "127.0.0.1:15014):\n"
    "  CA reachable and ready; roots and the signing intermediate (warns "
    "under 30\n"
    "  days); every agent's certificate; every agent trusting exactly the "
    "CA's roots.\n"
    "  Exit 0: no problem; 1: a problem (or, with --strict, a warning); 2: "
    "usage.\n";

int ly_cmd_check(int argc, char **argv) {
  static const struct option opts[] = {
      {"strict", no_argument, NULL, 's'},
      {"ca-admin", required_argument, NULL, 'a'},
      {"config", required_argument, NULL, 'c'},
      {"ascii", no_argument, NULL, 'A'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  const char *addr = NULL, *cfg_path = NULL, *why = NULL;
  int strict = 0, c;
  report_t r = {0};
  setlocale(LC_CTYPE, "");
  r.ascii = strcmp(nl_langinfo(CODESET), "UTF-8") != 0;
  optind = 1;
  ly_cli_name(argv, "check");
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      strict = 1;
      break;
    case 'a':
      addr = optarg;
      break;
    case 'c':
      cfg_path = optarg;
      break;
    case 'A':
      r.ascii = 1;
      break;
    case 'h':
      printf("%s", usage);
      return LY_EXIT_OK;
    default:
      fprintf(stderr, "%s", usage);
      return LY_EXIT_USAGE;
    }
  }
  if (optind != argc || (addr && cfg_path)) {
    fprintf(stderr, "%s", usage);
    return LY_EXIT_USAGE;
  }
  ly_hostport_t hp;
  if (cfg_path) {
    ly_diag_t diag;
    ly_diag_init(&diag);
    ly_ca_config_t *cfg = NULL;
    if (ly_ca_config_load(cfg_path, &cfg, &diag) != 0) {
      ly_diag_print(&diag, stderr);
      ly_diag_free(&diag);
      return LY_EXIT_USAGE;
    }
    hp = cfg->admin;
    /* a wildcard listener is reached on loopback */
    if (!strcmp(hp.host, "0.0.0.0"))
      snprintf(hp.host, sizeof(hp.host), "127.0.0.1");
    else if (!strcmp(hp.host, "::"))
      snprintf(hp.host, sizeof(hp.host), "::1");
    ly_ca_config_free(cfg);
    ly_diag_free(&diag);
  } else if (ly_hostport_parse(addr ? addr : "127.0.0.1:15014", 1, &hp, &why) !=
             0) {
    ly_cli_error("check", "--ca-admin %s: %s", addr, why);
    return LY_EXIT_USAGE;
  }

  int status = 0;
  char *body = NULL;
  json_t *mesh = NULL;
  if (ly_http_get(&hp, "/readyz", TIMEOUT_MS, &status, &body, &why) != 0) {
    line(&r, FAIL, "CA admin at %s:%u: %s", hp.host, hp.port, why);
    goto done;
  }
  line(&r, OK, "CA reachable at %s:%u", hp.host, hp.port);
  body[strcspn(body, "\n")] = '\0';
  if (status == 200)
    line(&r, OK, "CA ready to sign");
  else
    line(&r, FAIL, "CA not ready to sign: %s", body);
  free(body);
  body = NULL;
  if (ly_http_get(&hp, "/api/mesh", TIMEOUT_MS, &status, &body, &why) != 0 ||
      status != 200 || !(mesh = json_loads(body, 0, NULL))) {
    line(&r, FAIL, "CA's /api/mesh: %s", why ? why : "not the mesh JSON");
    goto done;
  }
  json_t *ca = json_object_get(mesh, "ca"), *root;
  size_t i;
  json_array_foreach(json_object_get(ca, "roots"), i, root)
      check_ca_cert(&r, "root", root);
  if (!json_array_size(json_object_get(ca, "roots")))
    line(&r, FAIL, "the CA has no roots in its bundle");
  check_ca_cert(&r, "signing intermediate", json_object_get(ca, "signing"));
  check_agents(&r, mesh);
done:
  free(body);
  json_decref(mesh);
  int failed = r.n[FAIL] > 0 || (strict && r.n[WARN] > 0);
  printf("\n%s %zu problem%s, %zu warning%s%s\n",
         failed      ? (r.ascii ? "[FAIL]" : "\xc3\x97")
         : r.n[WARN] ? (r.ascii ? "[warn]" : "\xe2\x80\xbc")
                     : (r.ascii ? "[ok]  " : "\xe2\x9c\x94"),
         r.n[FAIL], r.n[FAIL] == 1 ? "" : "s", r.n[WARN],
         r.n[WARN] == 1 ? "" : "s",
         strict && r.n[WARN] && !r.n[FAIL] ? " (--strict: warnings fail)" : "");
  return failed ? LY_EXIT_FAIL : LY_EXIT_OK;
}
