/* `lanyard status` and `lanyard mesh`: the admin endpoints, readable in a
 * terminal.
 *
 *   lanyard status [--admin HOST:PORT] [--window 1m|5m|60m] [--json]
 *   lanyard mesh [--ca-admin HOST:PORT] [--window 1m|5m|60m]
 *                [-o wide|json] [--instances] [--full-ids]
 *                [--watch [SECONDS]]
 *
 * Both read the same JSON the endpoints serve (/status, /api/mesh); with
 * --json (-o json) they print it as it came. */
#include "admin/admin.h"

#include "lanyard/cli.h"
#include "lanyard/config.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

typedef struct {
  const char *cmd; /* "status" or "mesh", for messages */
  ly_hostport_t admin;
  int admin_given; /* else: the default, or an agent's run file */
  const char *window;
  int json, wide, instances, full_ids;
  int watch_s; /* 0: once */
} view_opts_t;

/* `lanyard status` exit codes (in its --help). */
#define STATUS_VALID 0
#define STATUS_NO_IDENTITY 1
#define STATUS_UNREACHABLE 2

/* Short root fingerprints: enough to tell roots apart in a rotation. */
#define FP_SHORT 12

static int parse_opts(int argc, char **argv, const char *addr_flag,
                      const char *default_addr, const char *usage,
                      view_opts_t *o) {
  const struct option longopts[] = {
      {addr_flag, required_argument, NULL, 'a'},
      {"window", required_argument, NULL, 'w'},
      {"json", no_argument, NULL, 'j'},
      {"watch", optional_argument, NULL, 'W'},
      {"output", required_argument, NULL, 'o'}, /* mesh only, as below */
      {"instances", no_argument, NULL, 'i'},
      {"full-ids", no_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *addr = default_addr, *why = NULL;
  memset(o, 0, sizeof(*o));
  o->cmd = argv[0];
  o->window = "5m";
  int c;
  optind = 1;
  ly_cli_name(argv, o->cmd);
  while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
    switch (c) {
    case 'a':
      addr = optarg;
      o->admin_given = 1;
      break;
    case 'o':
      if (strcmp(optarg, "json") == 0) {
        o->json = 1;
      } else if (strcmp(optarg, "wide") == 0) {
        o->wide = 1;
      } else {
        ly_cli_error(o->cmd, "-o is wide or json");
        return LY_EXIT_USAGE;
      }
      break;
    case 'i':
      o->instances = 1;
      break;
    case 'F':
      o->full_ids = 1;
      break;
    case 'w':
      o->window = optarg;
      break;
    case 'j':
      o->json = 1;
      break;
    case 'W': /* --watch, --watch=5 or --watch 5 */
      if (!optarg && optind < argc && argv[optind][0] >= '0' &&
          argv[optind][0] <= '9')
        optarg = argv[optind++];
      o->watch_s = optarg ? atoi(optarg) : 2;
      if (o->watch_s < 1 || o->watch_s > 3600) {
        ly_cli_error(o->cmd, "--watch takes 1 to 3600 seconds");
        return LY_EXIT_USAGE;
      }
      break;
    case 'h':
      printf("%s", usage);
      return LY_EXIT_OK;
    default:
      fprintf(stderr, "%s", usage);
      return LY_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s", usage);
    return LY_EXIT_USAGE;
  }
  if (strcmp(o->window, "1m") && strcmp(o->window, "5m") &&
      strcmp(o->window, "60m")) {
    ly_cli_error(o->cmd, "--window is 1m, 5m or 60m");
    return LY_EXIT_USAGE;
  }
  if (ly_hostport_parse(addr, 1, &o->admin, &why) != 0) {
    ly_cli_error(o->cmd, "--%s %s: %s", addr_flag, addr, why);
    return LY_EXIT_USAGE;
  }
  return -1;
}

/* GET path as JSON; NULL after printing why. With raw, the text too. */
static json_t *fetch(const view_opts_t *o, const char *path, char **raw) {
  int status = 0;
  char *body = NULL;
  const char *why = NULL;
  if (ly_http_get(&o->admin, path, TIMEOUT_MS, &status, &body, &why) != 0) {
    ly_cli_error(o->cmd, "http://%s:%u%s: %s", o->admin.host, o->admin.port,
                 path, why);
    return NULL;
  }
  if (status != 200) {
    ly_cli_error(o->cmd, "http://%s:%u%s: HTTP %d", o->admin.host,
                 o->admin.port, path, status);
    free(body);
    return NULL;
  }
  json_error_t err;
  json_t *doc = json_loads(body, 0, &err);
  if (!doc)
    ly_cli_error(o->cmd, "%s: bad JSON: %s", path, err.text);
  if (raw)
    *raw = body;
  else
    free(body);
  return doc;
}

static const char *span(json_int_t s, char *buf, size_t len) {
  const char *sign = s < 0 ? "-" : "";
  if (s < 0)
    s = -s;
  if (s >= 86400)
    snprintf(buf, len, "%s%lldd%lldh", sign, (long long)(s / 86400),
             (long long)(s % 86400 / 3600));
  else if (s >= 3600)
    snprintf(buf, len, "%s%lldh%lldm", sign, (long long)(s / 3600),
             (long long)(s % 3600 / 60));
  else if (s >= 60)
    snprintf(buf, len, "%s%lldm%llds", sign, (long long)(s / 60),
             (long long)(s % 60));
  else
    snprintf(buf, len, "%s%llds", sign, (long long)s);
  return buf;
}

/* "75.0% 9/12" or "-     0/0" for a {attempts, successes, success_rate}. */
static const char *rate(json_t *r, char *buf, size_t len) {
  json_int_t a = json_integer_value(json_object_get(r, "attempts"));
  json_int_t s = json_integer_value(json_object_get(r, "successes"));
  char frac[48];
  snprintf(frac, sizeof(frac), "%lld/%lld", (long long)s, (long long)a);
  if (a == 0)
    snprintf(buf, len, "%-7s %s", "-", frac);
  else
    snprintf(buf, len, "%6.1f%% %s", 100.0 * (double)s / (double)a, frac);
  return buf;
}

/* "not_authorized 2, plaintext_rejected 1" or "-". */
static const char *reasons(json_t *f, char *buf, size_t len) {
  const char *k;
  json_t *v;
  size_t o = 0;
  buf[0] = '\0';
  json_object_foreach(f, k, v) {
    int n = snprintf(buf + o, len - o, "%s%s %lld", o ? ", " : "", k,
                     (long long)json_integer_value(v));
    if (n < 0 || (size_t)n >= len - o)
      break;
    o += (size_t)n;
  }
  return o ? buf : "-";
}

static const char *when(json_t *t, int64_t now, char *buf, size_t len) {
  if (!json_is_integer(t))
    return "-";
  time_t at = (time_t)json_integer_value(t);
  struct tm tm;
  char iso[32], in[24];
  gmtime_r(&at, &tm);
  strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(buf, len, "%s (in %s)", iso,
           span((json_int_t)(at - now), in, sizeof(in)));
  return buf;
}

/* "ab12cd34ef56, 0f1e2d3c4b5a" from an array of hex strings (or of objects
 * with "sha256"); "-" when empty. */
static const char *fingerprints(json_t *list, char *buf, size_t len) {
  size_t i, o = 0;
  json_t *v;
  buf[0] = '\0';
  json_array_foreach(list, i, v) {
    const char *h = json_is_object(v)
                        ? json_string_value(json_object_get(v, "sha256"))
                        : json_string_value(v);
    if (!h)
      continue;
    int n = snprintf(buf + o, len - o, "%s%.*s", o ? "," : "", FP_SHORT, h);
    if (n < 0 || (size_t)n >= len - o)
      break;
    o += (size_t)n;
  }
  return o ? buf : "-";
}

/* "3s ago" / "never" for a unix time, as seen at `now`. */
static const char *ago(json_t *t, int64_t now, char *buf, size_t len) {
  char s[24];
  if (!json_is_integer(t))
    return "never";
  snprintf(buf, len, "%s ago",
           span((json_int_t)(now - json_integer_value(t)), s, sizeof(s)));
  return buf;
}

/* ---- lanyard status ---------------------------------------------------- */

static const char status_usage[] =
    "usage: lanyard status [--admin HOST:PORT] [--window 1m|5m|60m] "
    "[--json]\n"
    "The local agent's identity and mTLS success rates, from its admin\n"
    "endpoint: --admin, else 127.0.0.1:15020, else the one agent that\n"
    "listed itself in $LANYARD_RUN_DIR (default /run/lanyard; agents with\n"
    "admin: HOST:0 do).\n"
    "Exit status: 0 the agent holds a valid identity; 1 it has none (not\n"
    "yet, or expired); 2 the agent cannot be reached (or bad usage).\n";

/* One line about a periodic exchange with the CA ("report", "bundle
 * refresh"): fine, or failing and since when. */
static void print_upstream(const char *label, json_t *u, int64_t now) {
  char b1[48], b2[48];
  if (!json_is_object(u))
    return;
  json_int_t failing =
      json_integer_value(json_object_get(u, "consecutive_failures"));
  const char *err = json_string_value(json_object_get(u, "last_error"));
  if (failing == 0 && !json_is_integer(json_object_get(u, "last_success"))) {
    printf("%-14s not yet\n", label); /* no SVID yet: nothing sent */
    return;
  }
  if (failing == 0) {
    printf("%-14s ok, last %s\n", label,
           ago(json_object_get(u, "last_success"), now, b1, sizeof(b1)));
    return;
  }
  printf("%-14s FAILING (%lld in a row, last success %s): %s (%s)\n", label,
         (long long)failing,
         ago(json_object_get(u, "last_success"), now, b1, sizeof(b1)),
         err ? err : "?",
         ago(json_object_get(u, "last_error_at"), now, b2, sizeof(b2)));
}

static void print_status(json_t *doc) {
  json_t *id = json_object_get(doc, "identity");
  json_t *mtls = json_object_get(doc, "mtls");
  int64_t now = (int64_t)json_integer_value(json_object_get(doc, "time"));
  char b1[128], b2[128], b3[128], b4[128], b5[512];
  const char *state = "NO VALID SVID";
  if (json_is_true(json_object_get(id, "valid")))
    state = "valid";
  else if (json_is_true(json_object_get(id, "expired")))
    state = "EXPIRED";
  printf("identity       %s (%s)\n",
         json_string_value(json_object_get(doc, "spiffe_id")), state);
  json_t *serial = json_object_get(id, "serial");
  printf("serial         %s\n",
         json_is_string(serial) ? json_string_value(serial) : "-");
  printf("not after      %s\n",
         when(json_is_integer(json_object_get(id, "not_after"))
                  ? json_object_get(id, "not_after")
                  : json_object_get(id, "expired_at"),
              now, b1, sizeof(b1)));
  printf("next rotation  %s\n",
         when(json_object_get(id, "next_rotation"), now, b1, sizeof(b1)));
  printf("rotations      %lld ok, %lld failed\n",
         (long long)json_integer_value(
             json_object_get(json_object_get(id, "rotations"), "success")),
         (long long)json_integer_value(
             json_object_get(json_object_get(id, "rotations"), "failure")));
  json_t *roots = json_object_get(id, "bundle_roots");
  printf("bundle         %zu root(s): %s\n", json_array_size(roots),
         fingerprints(roots, b5, sizeof(b5)));
  printf("mode           %s\n",
         json_string_value(json_object_get(doc, "mode")));
  const char *host = json_string_value(json_object_get(doc, "hostname"));
  const char *ver = json_string_value(json_object_get(doc, "version"));
  if (host && ver)
    printf("agent          lanyard %s on %s\n", ver, host);
  print_upstream("report", json_object_get(doc, "report"), now);
  print_upstream("bundle refresh", json_object_get(doc, "bundle_refresh"), now);
  const char *last = json_string_value(json_object_get(id, "last_error"));
  if (last && *last)
    printf("last error     %s\n", last);
  printf("\n%-10s %-22s %-22s %-22s %-22s\n", "mTLS", "1m", "5m", "60m",
         "since start");
  const char *dirs[] = {"inbound", "outbound"};
  for (int d = 0; d < 2; d++) {
    json_t *dj = json_object_get(mtls, dirs[d]);
    json_t *w = json_object_get(dj, "windows");
    printf("%-10s %-22s %-22s %-22s %-22s\n", dirs[d],
           rate(json_object_get(w, "1m"), b1, sizeof(b1)),
           rate(json_object_get(w, "5m"), b2, sizeof(b2)),
           rate(json_object_get(w, "60m"), b3, sizeof(b3)),
           rate(json_object_get(dj, "total"), b4, sizeof(b4)));
  }
  for (int d = 0; d < 2; d++)
    printf("%s failures: %s\n", dirs[d],
           reasons(json_object_get(json_object_get(mtls, dirs[d]), "failures"),
                   b5, sizeof(b5)));
  json_t *peers = json_object_get(doc, "top_peers");
  if (json_array_size(peers))
    printf("\ntop peers\n");
  size_t i;
  json_t *p;
  json_array_foreach(peers, i, p) {
    const char *pid = json_string_value(json_object_get(p, "spiffe_id"));
    printf("  %-9s %-50s %lld attempts, %lld failed\n",
           json_string_value(json_object_get(p, "direction")),
           pid && *pid ? pid : "(unauthenticated)",
           (long long)json_integer_value(json_object_get(p, "attempts")),
           (long long)json_integer_value(json_object_get(p, "failures")));
  }
}

/* Without --admin: the default address when an agent answers there, else
 * the one live agent of the run directory. -1 to go on (o->admin set),
 * else the exit code. */
static int find_agent(view_opts_t *o) {
  int status = 0;
  char *body = NULL;
  const char *why = NULL;
  if (o->admin_given || ly_http_get(&o->admin, "/healthz", TIMEOUT_MS, &status,
                                    &body, &why) == 0) {
    free(body);
    return -1;
  }
  ly_runfile_t found[16];
  size_t n = ly_runfile_find(found, 16);
  if (n == 0)
    return -1; /* fetch says why the default did not answer */
  if (n > 1) {
    ly_cli_error(o->cmd, "%zu agents run here (%s); pick one with --admin:", n,
                 ly_run_dir());
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, "  --admin %-22s pid %-7ld %s\n", found[i].admin,
              found[i].pid, found[i].spiffe_id);
    return STATUS_UNREACHABLE;
  }
  if (ly_hostport_parse(found[0].admin, 0, &o->admin, &why) != 0) {
    ly_cli_error(o->cmd, "%s/agent-%ld.json: admin %s: %s", ly_run_dir(),
                 found[0].pid, found[0].admin, why);
    return STATUS_UNREACHABLE;
  }
  return -1;
}

int ly_cmd_status(int argc, char **argv) {
  view_opts_t o;
  int rc = parse_opts(argc, argv, "admin", "127.0.0.1:15020", status_usage, &o);
  if (rc >= 0)
    return rc;
  if ((rc = find_agent(&o)) >= 0)
    return rc;
  char *raw = NULL;
  json_t *doc = fetch(&o, "/status", &raw);
  if (!doc) {
    free(raw);
    return STATUS_UNREACHABLE;
  }
  if (o.json)
    printf("%s\n", raw);
  else
    print_status(doc);
  rc = json_is_true(json_object_get(json_object_get(doc, "identity"), "valid"))
           ? STATUS_VALID
           : STATUS_NO_IDENTITY;
  free(raw);
  json_decref(doc);
  return rc;
}

/* ---- lanyard mesh ------------------------------------------------------ */

static const char mesh_usage[] =
    "usage: lanyard mesh [--ca-admin HOST:PORT] [--window 1m|5m|60m]\n"
    "                    [-o wide|json] [--instances] [--full-ids]\n"
    "                    [--watch [SECONDS]]\n"
    "Every workload identity of the mesh, worst mTLS success rate first,\n"
    "from the CA's admin endpoint (default 127.0.0.1:15014). Workloads are\n"
    "named namespace/service-account (IDs of the shape /ns/NS/sa/SA), else\n"
    "by the ID's path; --full-ids shows SPIFFE IDs. --instances: a row per\n"
    "agent (host, version, address). -o wide adds the bundle roots every\n"
    "agent holds (SHA-256, first 12 hex digits) and the serial; -o json\n"
    "(or --json) prints /api/mesh. An agent silent for three report\n"
    "intervals is shown STALE, and dropped after ten minutes.\n";

/* The workload's name as the options want it. */
static const char *wl_name(const view_opts_t *o, json_t *w) {
  const char *id = json_string_value(json_object_get(w, "spiffe_id"));
  const char *name = json_string_value(json_object_get(w, "name"));
  return o->full_ids || !name ? (id ? id : "?") : name;
}

/* "3s" or "2m5s STALE". */
static const char *last_report(json_t *x, char *buf, size_t len) {
  char s[24];
  json_int_t age =
      json_integer_value(json_object_get(x, "last_report_age_seconds"));
  const char *state = json_string_value(json_object_get(x, "state"));
  snprintf(buf, len, "%s%s", span(age, s, sizeof(s)),
           state && strcmp(state, "stale") == 0 ? " STALE" : "");
  return buf;
}

static void print_ca(json_t *ca, int64_t now) {
  char b1[256], b2[64];
  json_t *roots = json_object_get(ca, "roots"), *r;
  size_t i;
  if (!json_is_object(ca))
    return;
  printf("CA roots:");
  json_array_foreach(roots, i, r) {
    printf("%s %.*s (expires %s)", i ? "," : "", FP_SHORT,
           json_string_value(json_object_get(r, "sha256")),
           when(json_object_get(r, "not_after"), now, b1, sizeof(b1)));
  }
  json_t *sg = json_object_get(ca, "signing");
  if (json_is_object(sg))
    printf("; signing certificate expires in %s",
           span(json_integer_value(json_object_get(sg, "expires_in_seconds")),
                b2, sizeof(b2)));
  printf("\n");
}

static size_t name_width(const view_opts_t *o, json_t *list) {
  size_t width = 8, i;
  json_t *w;
  json_array_foreach(list, i, w) {
    size_t n = strlen(wl_name(o, w));
    if (n > width)
      width = n;
  }
  return width;
}

static json_t *win_of(json_t *x, const char *dir, const char *window) {
  return json_object_get(json_object_get(json_object_get(x, dir), "windows"),
                         window);
}

static void print_workloads(const view_opts_t *o, json_t *list, int nw) {
  char b1[64], b2[64], b3[512], b4[32], b5[48], b6[256];
  char in_head[32], out_head[32];
  snprintf(in_head, sizeof(in_head), "INBOUND %s", o->window);
  snprintf(out_head, sizeof(out_head), "OUTBOUND %s", o->window);
  printf("%-*s %-22s %-22s %-9s %-12s %-4s ", nw, "WORKLOAD", in_head, out_head,
         "EXPIRES", "LAST REPORT", "INST");
  if (o->wide)
    printf("%-27s %-34s ", "ROOTS", "SERIAL");
  printf("FAILURES\n");
  size_t i;
  json_t *w;
  json_array_foreach(list, i, w) {
    char inst[24];
    json_int_t n = json_integer_value(json_object_get(w, "instances"));
    json_int_t st = json_integer_value(json_object_get(w, "stale_instances"));
    if (st)
      snprintf(inst, sizeof(inst), "%lld (%lld stale)", (long long)n,
               (long long)st);
    else
      snprintf(inst, sizeof(inst), "%lld", (long long)n);
    printf("%-*s %-22s %-22s %-9s %-12s %-4s ", nw, wl_name(o, w),
           rate(win_of(w, "inbound", o->window), b1, sizeof(b1)),
           rate(win_of(w, "outbound", o->window), b2, sizeof(b2)),
           span(json_integer_value(json_object_get(w, "expires_in_seconds")),
                b4, sizeof(b4)),
           last_report(w, b5, sizeof(b5)), inst);
    if (o->wide)
      printf("%-27s %-34s ",
             fingerprints(json_object_get(w, "bundle_root_sha256"), b6,
                          sizeof(b6)),
             json_string_value(json_object_get(w, "serial")));
    printf("%s\n", reasons(json_object_get(w, "failures"), b3, sizeof(b3)));
  }
}

static const char *str_or_dash(json_t *v) {
  return json_is_string(v) ? json_string_value(v) : "-";
}

static void print_instances(const view_opts_t *o, json_t *list, int nw) {
  char b1[64], b2[64], b4[32], b5[48], b6[256];
  printf("%-*s %-24s %-9s %-16s %-22s %-22s %-9s %-12s", nw, "WORKLOAD", "HOST",
         "VERSION", "ADDRESS", "INBOUND", "OUTBOUND", "EXPIRES", "LAST REPORT");
  if (o->wide)
    printf(" %-27s %-34s %s", "ROOTS", "SERIAL", "INSTANCE");
  printf("\n");
  size_t i, k;
  json_t *w, *a;
  json_array_foreach(list, i, w) {
    json_array_foreach(json_object_get(w, "agents"), k, a) {
      json_t *host = json_object_get(a, "hostname");
      printf("%-*s %-24s %-9s %-16s %-22s %-22s %-9s %-12s", nw, wl_name(o, w),
             json_is_string(host) ? json_string_value(host)
                                  : str_or_dash(json_object_get(a, "instance")),
             str_or_dash(json_object_get(a, "agent_version")),
             str_or_dash(json_object_get(a, "address")),
             rate(win_of(a, "inbound", o->window), b1, sizeof(b1)),
             rate(win_of(a, "outbound", o->window), b2, sizeof(b2)),
             span(json_integer_value(json_object_get(a, "expires_in_seconds")),
                  b4, sizeof(b4)),
             last_report(a, b5, sizeof(b5)));
      if (o->wide)
        printf(" %-27s %-34s %s",
               fingerprints(json_object_get(a, "bundle_root_sha256"), b6,
                            sizeof(b6)),
               str_or_dash(json_object_get(a, "serial")),
               str_or_dash(json_object_get(a, "instance")));
      printf("\n");
    }
  }
}

static void print_mesh(const view_opts_t *o, json_t *doc) {
  char b4[32];
  json_t *runway = json_object_get(doc, "runway_seconds");
  json_t *list = json_object_get(doc, "workloads");
  int64_t now =
      (int64_t)json_integer_value(json_object_get(doc, "generated_at"));
  printf("trust domain %s: %zu workload(s); identity runway %s\n",
         json_string_value(json_object_get(doc, "trust_domain")),
         json_array_size(list),
         json_is_integer(runway)
             ? span(json_integer_value(runway), b4, sizeof(b4))
             : "- (no workload reporting)");
  print_ca(json_object_get(doc, "ca"), now);
  int nw = (int)name_width(o, list);
  if (o->instances)
    print_instances(o, list, nw);
  else
    print_workloads(o, list, nw);
}

int ly_cmd_mesh(int argc, char **argv) {
  view_opts_t o;
  int rc =
      parse_opts(argc, argv, "ca-admin", "127.0.0.1:15014", mesh_usage, &o);
  if (rc >= 0)
    return rc;
  int interactive = isatty(STDOUT_FILENO);
  for (;;) {
    char *raw = NULL;
    json_t *doc = fetch(&o, "/api/mesh", &raw);
    if (!doc && !o.watch_s) {
      free(raw);
      return LY_EXIT_FAIL;
    }
    if (doc) {
      if (o.watch_s && interactive && !o.json)
        printf("\033[H\033[2J"); /* redraw in place */
      if (o.json) {
        /* one document per line, so --watch --json is a JSON stream */
        char *line = json_dumps(doc, JSON_COMPACT);
        printf("%s\n", line ? line : "");
        free(line);
      } else {
        print_mesh(&o, doc);
      }
      fflush(stdout);
    }
    free(raw);
    json_decref(doc);
    if (!o.watch_s)
      return LY_EXIT_OK;
    sleep((unsigned)o.watch_s);
  }
}
