/* `lanyard ca certs -c ca.yaml [--id PREFIX] [--expiring DUR] [--json]`:
 * the certificates this CA replica issued, newest first, read from its
 * inventory file (inventory.c), so it works with the CA stopped too. */
#include "ca/inventory.h"

#include "lanyard/cli.h"
#include "lanyard/config.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct {
  const char *id_prefix;
  int64_t expiring_before; /* 0: any; else live and not_after before this */
  int64_t now;
  json_t *rows; /* matching entries, oldest first */
} filter_t;

static int collect(const ly_issued_t *c, void *data) {
  filter_t *f = data;
  if (f->id_prefix &&
      strncmp(c->spiffe_id, f->id_prefix, strlen(f->id_prefix)) != 0)
    return 0;
  if (f->expiring_before &&
      (c->not_after < f->now || c->not_after > f->expiring_before))
    return 0;
  json_t *o = json_pack(
      "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "serial", c->serial, "spiffe_id",
      c->spiffe_id, "issued_at", (json_int_t)c->issued_at, "not_before",
      (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after,
      "credential", c->credential, "caller", c->caller, "intermediate_sha256",
      c->intermediate_sha256, "root_sha256", c->root_sha256);
  return o ? json_array_append_new(f->rows, o) : -1;
}

static const char *when(int64_t t, char *buf, size_t len) {
  struct tm tm;
  time_t tt = (time_t)t;
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
  return buf;
}

static void print_table(const json_t *rows, int64_t now) {
  printf("%-34s %-48s %-21s %-10s %-10s %-21s %s\n", "SERIAL", "SPIFFE ID",
         "NOT AFTER", "LEFT", "CREDENTIAL", "CALLER", "ROOT");
  for (size_t i = json_array_size(rows); i-- > 0;) {
    const json_t *o = json_array_get(rows, i);
    int64_t na = json_integer_value(json_object_get(o, "not_after"));
    char t[32], left[32] = "expired";
    if (na >= now)
      ly_duration_format((uint64_t)(na - now) * 1000, left, sizeof(left));
    const char *root = json_string_value(json_object_get(o, "root_sha256"));
    printf("%-34s %-48s %-21s %-10s %-10s %-21s %.12s\n",
           json_string_value(json_object_get(o, "serial")),
           json_string_value(json_object_get(o, "spiffe_id")),
           when(na, t, sizeof(t)), left,
           json_string_value(json_object_get(o, "credential")),
           json_string_value(json_object_get(o, "caller")),
           root && *root ? root : "-");
  }
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: lanyard ca certs -c ca.yaml [--id PREFIX] [--expiring DUR] "
          "[--json]\n"
          "  every certificate this CA replica issued, newest first, from "
          "its inventory\n"
          "  (inventory.file in ca.yaml; each replica keeps its own)\n"
          "  --id PREFIX     only SPIFFE IDs that start with PREFIX\n"
          "  --expiring DUR  only certificates still valid that expire "
          "within DUR (e.g. 10m)\n"
          "  --json          a JSON array, newest first\n");
}

int ly_cmd_ca_certs(int argc, char **argv);
int ly_cmd_ca_certs(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"id", required_argument, NULL, 'i'},
      {"expiring", required_argument, NULL, 'e'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  const char *config = NULL, *why = NULL;
  int as_json = 0, o;
  uint64_t expiring_ms = 0;
  filter_t f = {.now = (int64_t)time(NULL)};
  optind = 1;
  ly_cli_name(argv, "ca certs");
  while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (o) {
    case 'c':
      config = optarg;
      break;
    case 'i':
      f.id_prefix = optarg;
      break;
    case 'e':
      if (ly_duration_parse(optarg, &expiring_ms, &why) != 0) {
        ly_cli_error("ca certs", "--expiring %s: %s", optarg, why);
        return LY_EXIT_USAGE;
      }
      f.expiring_before = f.now + (int64_t)(expiring_ms / 1000);
      break;
    case 'j':
      as_json = 1;
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
  ly_ca_config_t *cfg = NULL;
  if (ly_ca_config_load(config, &cfg, &diag) != 0) {
    ly_diag_print(&diag, stderr);
    ly_diag_free(&diag);
    return LY_EXIT_USAGE;
  }
  ly_diag_free(&diag);
  f.rows = json_array();
  int rc =
      f.rows ? ly_inventory_each(cfg->inventory.file, collect, &f) : UV_ENOMEM;
  if (rc == UV_ENOENT)
    rc = 0; /* nothing issued yet */
  if (rc != 0) {
    ly_cli_error("ca certs", "%s: %s", cfg->inventory.file, ly_strerror(rc));
  } else if (as_json) {
    json_t *newest_first = json_array();
    for (size_t i = json_array_size(f.rows); i-- > 0;)
      json_array_append(newest_first, json_array_get(f.rows, i));
    char *text = json_dumps(newest_first, JSON_INDENT(2));
    puts(text ? text : "[]");
    free(text);
    json_decref(newest_first);
  } else {
    printf("# %zu certificates in %s (this replica's inventory)\n",
           json_array_size(f.rows), cfg->inventory.file);
    print_table(f.rows, f.now);
  }
  json_decref(f.rows);
  ly_ca_config_free(cfg);
  return rc == 0 ? LY_EXIT_OK : LY_EXIT_FAIL;
}
