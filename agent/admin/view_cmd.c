/* `lanyard status` and `lanyard mesh`: the admin endpoints, readable in a
 * terminal.
 *
 *   lanyard status [--admin HOST:PORT] [--window 1m|5m|60m] [--json]
 *   lanyard mesh [--ca-admin HOST:PORT] [--window 1m|5m|60m] [--json]
 *                [--watch [SECONDS]]
 *
 * Both read the same JSON the endpoints serve (/status, /api/mesh); with
 * --json they print it as it came. */
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
  const char *window;
  int json;
  int watch_s; /* 0: once */
} view_opts_t;

static int parse_opts(int argc, char **argv, const char *addr_flag,
                      const char *default_addr, const char *usage,
                      view_opts_t *o) {
  const struct option longopts[] = {{addr_flag, required_argument, NULL, 'a'},
                                    {"window", required_argument, NULL, 'w'},
                                    {"json", no_argument, NULL, 'j'},
                                    {"watch", optional_argument, NULL, 'W'},
                                    {"help", no_argument, NULL, 'h'},
                                    {NULL, 0, NULL, 0}};
  const char *addr = default_addr, *why = NULL;
  memset(o, 0, sizeof(*o));
  o->cmd = argv[0];
  o->window = "5m";
  int c;
  optind = 1;
  ly_cli_name(argv, o->cmd);
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'a':
      addr = optarg;
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

/* ---- lanyard status ---------------------------------------------------- */

static const char status_usage[] =
    "usage: lanyard status [--admin HOST:PORT] [--window 1m|5m|60m] "
    "[--json]\n"
    "The local agent's identity and mTLS success rates, from its admin\n"
    "endpoint (default 127.0.0.1:15020).\n";

static void print_status(json_t *doc) {
  json_t *id = json_object_get(doc, "identity");
  json_t *mtls = json_object_get(doc, "mtls");
  int64_t now = (int64_t)json_integer_value(json_object_get(doc, "time"));
  char b1[128], b2[128], b3[128], b4[128], b5[512];
  printf("identity       %s (%s)\n",
         json_string_value(json_object_get(doc, "spiffe_id")),
         json_is_true(json_object_get(id, "valid")) ? "valid"
                                                    : "NO VALID SVID");
  json_t *serial = json_object_get(id, "serial");
  printf("serial         %s\n",
         json_is_string(serial) ? json_string_value(serial) : "-");
  printf("not after      %s\n",
         when(json_object_get(id, "not_after"), now, b1, sizeof(b1)));
  printf("next rotation  %s\n",
         when(json_object_get(id, "next_rotation"), now, b1, sizeof(b1)));
  printf("rotations      %lld ok, %lld failed\n",
         (long long)json_integer_value(
             json_object_get(json_object_get(id, "rotations"), "success")),
         (long long)json_integer_value(
             json_object_get(json_object_get(id, "rotations"), "failure")));
  printf("bundle         %zu root(s)\n",
         json_array_size(json_object_get(id, "bundle_roots")));
  printf("mode           %s\n",
         json_string_value(json_object_get(doc, "mode")));
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

int ly_cmd_status(int argc, char **argv) {
  view_opts_t o;
  int rc = parse_opts(argc, argv, "admin", "127.0.0.1:15020", status_usage, &o);
  if (rc >= 0)
    return rc;
  char *raw = NULL;
  json_t *doc = fetch(&o, "/status", &raw);
  if (!doc) {
    free(raw);
    return LY_EXIT_FAIL;
  }
  if (o.json)
    printf("%s\n", raw);
  else
    print_status(doc);
  free(raw);
  json_decref(doc);
  return LY_EXIT_OK;
}

/* ---- lanyard mesh ------------------------------------------------------ */

static const char mesh_usage[] =
    "usage: lanyard mesh [--ca-admin HOST:PORT] [--window 1m|5m|60m] "
    "[--json] [--watch [SECONDS]]\n"
    "Every workload identity of the mesh, worst mTLS success rate first,\n"
    "from the CA's admin endpoint (default 127.0.0.1:15014).\n";

static void print_mesh(json_t *doc, const char *window) {
  char b1[64], b2[64], b3[512], b4[32], b5[32];
  json_t *runway = json_object_get(doc, "runway_seconds");
  json_t *list = json_object_get(doc, "workloads");
  printf("trust domain %s: %zu workload(s); identity runway %s\n",
         json_string_value(json_object_get(doc, "trust_domain")),
         json_array_size(list),
         json_is_integer(runway)
             ? span(json_integer_value(runway), b4, sizeof(b4))
             : "- (no workload reporting)");
  char in_head[32], out_head[32];
  snprintf(in_head, sizeof(in_head), "INBOUND %s", window);
  snprintf(out_head, sizeof(out_head), "OUTBOUND %s", window);
  printf("%-50s %-22s %-22s %-9s %-7s %-4s %s\n", "WORKLOAD", in_head, out_head,
         "EXPIRES", "REPORT", "INST", "FAILURES");
  size_t i;
  json_t *w;
  json_array_foreach(list, i, w) {
    json_t *in = json_object_get(
        json_object_get(json_object_get(w, "inbound"), "windows"), window);
    json_t *out = json_object_get(
        json_object_get(json_object_get(w, "outbound"), "windows"), window);
    printf(
        "%-50s %-22s %-22s %-9s %-7s %-4lld %s\n",
        json_string_value(json_object_get(w, "spiffe_id")),
        rate(in, b1, sizeof(b1)), rate(out, b2, sizeof(b2)),
        span(json_integer_value(json_object_get(w, "expires_in_seconds")), b4,
             sizeof(b4)),
        span(json_integer_value(json_object_get(w, "last_report_age_seconds")),
             b5, sizeof(b5)),
        (long long)json_integer_value(json_object_get(w, "instances")),
        reasons(json_object_get(w, "failures"), b3, sizeof(b3)));
  }
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
        print_mesh(doc, o.window);
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
