/* `lanyard inject`: manifests in, the same manifests with the sidecar in
 * every pod template out (stdout), one line per workload on stderr.
 *
 * The text is cut into documents at "---" lines, and a document is
 * rewritten only when its object changed: everything else (other kinds,
 * skipped and already-injected workloads, comments between documents)
 * goes out byte for byte. That is what makes a second injection give the
 * same bytes. A rewritten document keeps the comments before and after
 * it; comments inside it are lost (libyaml does not keep them).
 * Nothing is written on any error: half a manifest is worse than none. */
#define _GNU_SOURCE /* asprintf */
#include "lanyard/cli.h"
#include "lanyard/fsutil.h"
#include "lanyard/k8s.h"

#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INJECT_MAX_INPUT (64u << 20)

typedef struct {
  char *buf;
  size_t len, cap;
} out_t;

static int out_add(out_t *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    size_t cap = (o->cap ? o->cap * 2 : 65536) + n;
    char *nb = realloc(o->buf, cap);
    if (!nb)
      return -1;
    o->buf = nb;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
  return 0;
}

typedef struct {
  ly_k8s_opts_t opts;
  const char *ns; /* for objects without metadata.namespace */
  int remove;
  int errors;
  const char *file;
} run_t;

static void lower(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

static void object_name(const json_t *obj, char *buf, size_t len) {
  const char *kind = json_string_value(json_object_get(obj, "kind"));
  const json_t *meta = json_object_get(obj, "metadata");
  const char *name = json_string_value(json_object_get(meta, "name"));
  if (!name)
    name = json_string_value(json_object_get(meta, "generateName"));
  snprintf(buf, len, "%s/%s", kind ? kind : "object", name ? name : "");
  char *slash = strchr(buf, '/');
  if (slash) {
    *slash = '\0';
    lower(buf);
    *slash = '/';
  }
}

/* Injects (or removes) every pod template in obj; 1 if obj changed. */
static int process(run_t *r, json_t *obj) {
  const char *kind = json_string_value(json_object_get(obj, "kind"));
  json_t *items = json_object_get(obj, "items");
  char name[300], why[512] = "";
  int changed = 0;

  if (kind && strlen(kind) >= 4 && !strcmp(kind + strlen(kind) - 4, "List") &&
      json_is_array(items)) {
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) changed |= process(r, it);
    return changed;
  }
  json_t *tmpl = ly_k8s_pod_template(obj);
  if (!tmpl)
    return 0;
  object_name(obj, name, sizeof(name));
  const char *ns = json_string_value(
      json_object_get(json_object_get(obj, "metadata"), "namespace"));
  if (!ns || !*ns)
    ns = r->ns;
  json_t *before = json_deep_copy(tmpl);
  ly_k8s_outcome_t oc =
      r->remove ? ly_k8s_remove(tmpl, why, sizeof(why))
                : ly_k8s_inject(tmpl, ns, &r->opts, why, sizeof(why));
  changed = !json_equal(before, tmpl);
  json_decref(before);
  switch (oc) {
  case LY_K8S_INJECTED:
    fprintf(stderr, "%s injected\n", name);
    break;
  case LY_K8S_UNCHANGED:
    fprintf(stderr, "%s unchanged (already injected)\n", name);
    break;
  case LY_K8S_SKIPPED:
    fprintf(stderr, "%s skipped: %s\n", name, why);
    break;
  case LY_K8S_REMOVED:
    fprintf(stderr, "%s removed\n", name);
    break;
  case LY_K8S_NOT_INJECTED:
    fprintf(stderr, "%s not injected\n", name);
    break;
  case LY_K8S_ERROR:
  default:
    fprintf(stderr, "lanyard inject: %s: %s: %s\n", r->file, name, why);
    r->errors++;
    break;
  }
  return changed;
}

static int is_separator(const char *line, size_t n) {
  return n >= 3 && !memcmp(line, "---", 3) &&
         (n == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\n' ||
          line[3] == '\r');
}

/* A line that only a comment or nothing: kept around a rewritten
 * document. Column 0 only: an indented one may belong to a block
 * scalar. */
static int is_trivia(const char *line, size_t n, int first) {
  size_t i = 0;
  if (first && is_separator(line, n)) {
    for (i = 3; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
      ;
    return i == n || line[i] == '#' || line[i] == '\n' || line[i] == '\r';
  }
  if (n && line[0] == '#')
    return 1;
  for (; i < n; i++)
    if (!isspace((unsigned char)line[i]))
      return 0;
  return 1;
}

static size_t line_len(const char *s, size_t n) {
  const char *nl = memchr(s, '\n', n);
  return nl ? (size_t)(nl - s) + 1 : n;
}

static int do_chunk(run_t *r, out_t *out, const char *c, size_t n,
                    size_t first_line) {
  json_t *obj = NULL;
  char err[256];
  if (ly_k8s_yaml_to_json(c, n, &obj, err, sizeof(err)) != 0) {
    /* err is "line:col: ..." within the chunk */
    unsigned long l = strtoul(err, NULL, 10);
    const char *rest = strchr(err, ':');
    fprintf(stderr, "lanyard inject: %s:%zu:%s\n", r->file,
            first_line + (l ? l - 1 : 0), rest ? rest + 1 : err);
    r->errors++;
    return 0;
  }
  if (!json_is_object(obj) || !process(r, obj)) {
    json_decref(obj);
    return out_add(out, c, n);
  }
  /* Rewritten: the comments and blank lines around it stay. */
  size_t head = 0, tail = n, l;
  int first = 1;
  while (head < n &&
         is_trivia(c + head, l = line_len(c + head, n - head), first)) {
    head += l;
    first = 0;
  }
  while (tail > head) {
    size_t s = tail;
    if (c[s - 1] == '\n')
      s--;
    while (s > head && c[s - 1] != '\n')
      s--;
    if (s <= head || !is_trivia(c + s, tail - s, 0))
      break;
    tail = s;
  }
  char *yaml = ly_k8s_json_to_yaml(obj);
  json_decref(obj);
  if (!yaml)
    return -1;
  int rc = 0;
  if (first && n >= 3 && is_separator(c, line_len(c, n)))
    rc |= out_add(out, "---\n", 4);
  rc |= out_add(out, c, head);
  rc |= out_add(out, yaml, strlen(yaml));
  rc |= out_add(out, c + tail, n - tail);
  free(yaml);
  return rc;
}

static int do_text(run_t *r, out_t *out, const char *text, size_t len) {
  size_t start = 0, pos = 0, line = 1, start_line = 1;
  if (out->len && out->buf[out->len - 1] != '\n')
    out_add(out, "\n", 1);
  if (out->len)
    out_add(out, "---\n", 4); /* the next file's documents */
  while (pos < len) {
    size_t l = line_len(text + pos, len - pos);
    if (pos > start && is_separator(text + pos, l)) {
      if (do_chunk(r, out, text + start, pos - start, start_line) != 0)
        return -1;
      start = pos;
      start_line = line;
    }
    pos += l;
    line++;
  }
  if (pos > start && do_chunk(r, out, text + start, pos - start, start_line))
    return -1;
  return 0;
}

static int do_path(run_t *r, out_t *out, const char *path);

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int do_dir(run_t *r, out_t *out, const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0;
  int rc = 0;
  if (!d) {
    fprintf(stderr, "lanyard inject: %s: cannot read the folder\n", path);
    return -1;
  }
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' ||
        !((l > 5 && !strcmp(e->d_name + l - 5, ".yaml")) ||
          (l > 4 && !strcmp(e->d_name + l - 4, ".yml")) ||
          (l > 5 && !strcmp(e->d_name + l - 5, ".json"))))
      continue;
    char **nn = realloc(names, (n + 1) * sizeof(*names));
    if (!nn)
      break;
    names = nn;
    if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
      break;
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof(*names), name_cmp);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0)
      rc = do_path(r, out, names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}

static int do_path(run_t *r, out_t *out, const char *path) {
  char *data = NULL;
  size_t len = 0;
  struct stat st;
  int rc;

  if (strcmp(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return do_dir(r, out, path);
  if (!strcmp(path, "-")) {
    out_t in = {0};
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), stdin)) > 0) {
      if (in.len + got > INJECT_MAX_INPUT || out_add(&in, buf, got) != 0) {
        fprintf(stderr, "lanyard inject: stdin: larger than 64 MiB\n");
        free(in.buf);
        return -1;
      }
    }
    data = in.buf;
    len = in.len;
  } else if ((rc = ly_file_read(path, INJECT_MAX_INPUT, &data, &len)) != 0) {
    fprintf(stderr, "lanyard inject: %s: cannot read it\n", path);
    return -1;
  }
  r->file = strcmp(path, "-") ? path : "stdin";
  rc = data ? do_text(r, out, data, len) : 0;
  free(data);
  return rc;
}

static void usage(FILE *out) {
  static const char *const lines[] = {
      "usage: lanyard inject -f FILE|DIR|- [-f ...] [options]",
      "",
      "Adds the Lanyard sidecar to every pod template in the manifests",
      "(Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,",
      "List items) and writes them to stdout; other documents pass through.",
      "One line per workload on stderr. Injecting twice changes nothing.",
      "",
      "  -f, --filename PATH          a file, a folder (*.yaml, *.yml, *.json)",
      "                               or - for stdin; repeatable",
      "  --remove                     take the injection out instead",
      "  --native-sidecar=BOOL        agent as a native sidecar (true)",
      "  --namespace NS               for objects that name none (default)",
      "  --namespace-annotation K=V   the namespace's lanyard.io/ annotations",
      "  --image IMAGE                the agent's image (lanyard:VERSION)",
      "  --ca-addr HOST:PORT          the CA (lanyard-ca.lanyard.svc:15012)",
      "  --lanyard-namespace NS       Lanyard's own namespace (lanyard)",
  };
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    fprintf(out, "%s\n", lines[i]);
}

enum {
  OPT_REMOVE = 256,
  OPT_NATIVE,
  OPT_NS,
  OPT_NS_ANN,
  OPT_IMAGE,
  OPT_CA,
  OPT_LY_NS,
};

int ly_cmd_inject(int argc, char **argv) {
  static const struct option opts[] = {
      {"filename", required_argument, NULL, 'f'},
      {"remove", no_argument, NULL, OPT_REMOVE},
      {"native-sidecar", optional_argument, NULL, OPT_NATIVE},
      {"namespace", required_argument, NULL, OPT_NS},
      {"namespace-annotation", required_argument, NULL, OPT_NS_ANN},
      {"image", required_argument, NULL, OPT_IMAGE},
      {"ca-addr", required_argument, NULL, OPT_CA},
      {"lanyard-namespace", required_argument, NULL, OPT_LY_NS},
      {"help", no_argument, NULL, 'h'},
      {0}};
  run_t r = {0};
  const char *files[64];
  size_t nfiles = 0;
  json_t *ns_ann = json_object();
  out_t out = {0};
  int c, rc = LY_EXIT_OK;

  ly_k8s_opts_init(&r.opts);
  r.ns = "default";
  optind = 1;
  while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      if (nfiles == sizeof(files) / sizeof(files[0])) {
        fprintf(stderr, "lanyard inject: at most 64 -f\n");
        return LY_EXIT_USAGE;
      }
      files[nfiles++] = optarg;
      break;
    case OPT_REMOVE:
      r.remove = 1;
      break;
    case OPT_NATIVE:
      if (!optarg || !strcmp(optarg, "true"))
        r.opts.native_sidecar = 1;
      else if (!strcmp(optarg, "false"))
        r.opts.native_sidecar = 0;
      else {
        fprintf(stderr, "lanyard inject: --native-sidecar is true or false\n");
        return LY_EXIT_USAGE;
      }
      break;
    case OPT_NS:
      r.ns = optarg;
      break;
    case OPT_NS_ANN: {
      const char *eq = strchr(optarg, '=');
      if (!eq || eq == optarg) {
        fprintf(stderr, "lanyard inject: --namespace-annotation wants "
                        "KEY=VALUE\n");
        return LY_EXIT_USAGE;
      }
      char *key = strndup(optarg, (size_t)(eq - optarg));
      json_object_set_new(ns_ann, key, json_string(eq + 1));
      free(key);
      break;
    }
    case OPT_IMAGE:
      r.opts.image = optarg;
      break;
    case OPT_CA:
      r.opts.ca_addr = optarg;
      break;
    case OPT_LY_NS:
      r.opts.lanyard_namespace = optarg;
      break;
    case 'h':
      usage(stdout);
      return LY_EXIT_OK;
    default:
      usage(stderr);
      return LY_EXIT_USAGE;
    }
  }
  if (optind < argc || nfiles == 0) {
    fprintf(stderr, "lanyard inject: %s\n",
            nfiles ? "unexpected arguments" : "say what to read with -f");
    usage(stderr);
    json_decref(ns_ann);
    return LY_EXIT_USAGE;
  }
  r.opts.ns_annotations = json_object_size(ns_ann) ? ns_ann : NULL;
  for (size_t i = 0; i < nfiles && rc == LY_EXIT_OK; i++)
    if (do_path(&r, &out, files[i]) != 0)
      rc = LY_EXIT_FAIL;
  if (rc == LY_EXIT_OK && r.errors) {
    fprintf(stderr, "lanyard inject: %d error%s, nothing written\n", r.errors,
            r.errors == 1 ? "" : "s");
    rc = LY_EXIT_FAIL;
  }
  if (rc == LY_EXIT_OK && out.len &&
      fwrite(out.buf, 1, out.len, stdout) != out.len)
    rc = LY_EXIT_FAIL;
  if (fflush(stdout) != 0)
    rc = LY_EXIT_FAIL;
  free(out.buf);
  json_decref(ns_ann);
  return rc;
}
