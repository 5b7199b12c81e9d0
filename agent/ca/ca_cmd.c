/* `lanyard ca init | token | serve` */
#include "ca/ca.h"

#include "lanyard/b64.h"
#include "lanyard/cli.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int ly_cmd_ca_serve(int argc, char **argv);
int ly_cmd_ca_bootstrap(int argc, char **argv);
int ly_cmd_ca_certs(int argc, char **argv);
int ly_cmd_ca_root(int argc, char **argv);
int ly_cmd_ca_intermediate(int argc, char **argv);

static const char *const init_files[] = {
    "root.pem",   "root.key",     "signing.pem", "signing.key",
    "bundle.pem", "token.secret", "ca.yaml",
};

static int write_new(const char *dir, const char *name, const void *data,
                     size_t len, mode_t mode) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int rc = ly_file_create(path, data, len, mode);
  if (rc != 0)
    ly_cli_error("ca init", "%s: %s", path, ly_strerror(rc));
  return rc;
}

static int write_cert(const char *dir, const char *name, const ly_der_t *d) {
  ly_chain_t one = {.certs = (ly_der_t *)d, .n = 1};
  char *pem = NULL;
  size_t len = 0;
  LY_GUARD(ly_chain_to_pem(&one, &pem, &len));
  int rc = write_new(dir, name, pem, len, 0644);
  free(pem);
  return rc;
}

static int write_key(const char *dir, const char *name, const ly_key_t *k) {
  char *pem = NULL;
  size_t len = 0;
  LY_GUARD(ly_key_to_pem(k, &pem, &len));
  int rc = write_new(dir, name, pem, len, 0600);
  ly_wipe(pem, len);
  free(pem);
  return rc;
}

/* PEM text as a YAML literal block, each line indented by `ind`. */
static int append_block(char **out, size_t *len, size_t *cap, const char *pem,
                        const char *ind) {
  for (const char *p = pem; *p;) {
    size_t line = strcspn(p, "\n");
    size_t need = *len + strlen(ind) + line + 2;
    if (need > *cap) {
      char *grown = realloc(*out, need * 2);
      if (!grown)
        return LY_EUNAVAILABLE;
      *out = grown;
      *cap = need * 2;
    }
    *len += (size_t)sprintf(*out + *len, "%s%.*s\n", ind, (int)line, p);
    p += line + (p[line] == '\n');
  }
  return 0;
}

/* --helm-values FILE: the trust root and the issuer for charts/lanyard, in
 * the chart's value names (like Linkerd's identityTrustAnchorsPEM and
 * issuer). The root key is not in it: the cluster never needs it. */
static int write_helm_values(const char *path, const char *td,
                             const ly_der_t *root, const ly_der_t *signing,
                             const ly_key_t *signing_key,
                             const char *secret_text) {
  ly_chain_t r = {.certs = (ly_der_t *)root, .n = 1};
  ly_chain_t s = {.certs = (ly_der_t *)signing, .n = 1};
  char *root_pem = NULL, *signing_pem = NULL, *key_pem = NULL, *out = NULL;
  size_t root_len = 0, signing_len = 0, key_len = 0, len = 0, cap = 0;
  int rc;
  if ((rc = ly_chain_to_pem(&r, &root_pem, &root_len)) != 0 ||
      (rc = ly_chain_to_pem(&s, &signing_pem, &signing_len)) != 0 ||
      (rc = ly_key_to_pem(signing_key, &key_pem, &key_len)) != 0)
    goto out;
  cap = 8192;
  if (!(out = malloc(cap))) {
    rc = LY_EUNAVAILABLE;
    goto out;
  }
  len = (size_t)snprintf(
      out, cap,
      "# Written by `lanyard ca init --helm-values`: the trust root and the\n"
      "# issuer for charts/lanyard (helm install -f THIS_FILE). Secret: the\n"
      "# issuer key signs every workload certificate of %s.\n"
      "trustDomain: %s\n"
      "trustAnchorsPEM: |\n",
      td, td);
  if ((rc = append_block(&out, &len, &cap, root_pem, "  ")) != 0)
    goto out;
  len += (size_t)snprintf(out + len, cap - len, "issuer:\n  crtPEM: |\n");
  if ((rc = append_block(&out, &len, &cap, signing_pem, "    ")) != 0)
    goto out;
  len += (size_t)snprintf(out + len, cap - len, "  keyPEM: |\n");
  if ((rc = append_block(&out, &len, &cap, key_pem, "    ")) != 0)
    goto out;
  char line[128];
  snprintf(line, sizeof(line), "  tokenSecret: \"%.*s\"\n",
           (int)strcspn(secret_text, "\n"), secret_text);
  if ((rc = append_block(&out, &len, &cap, line, "")) != 0)
    goto out;
  rc = ly_file_create(path, out, len, 0600);
  if (rc != 0)
    ly_cli_error("ca init", "%s: %s", path, ly_strerror(rc));
out:
  if (key_pem) {
    ly_wipe(key_pem, key_len);
    free(key_pem);
  }
  if (out) {
    ly_wipe(out, len);
    free(out);
  }
  free(root_pem);
  free(signing_pem);
  return rc;
}

static int ca_init(int argc, char **argv) {
  static const struct option opts[] = {
      {"trust-domain", required_argument, NULL, 't'},
      {"dir", required_argument, NULL, 'd'},
      {"listen", required_argument, NULL, 'l'},
      {"admin", required_argument, NULL, 'a'},
      {"root-ttl", required_argument, NULL, 'r'},
      {"signing-ttl", required_argument, NULL, 's'},
      {"helm-values", required_argument, NULL, 'H'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  const char *td = NULL, *dir = NULL, *helm = NULL, *listen = "127.0.0.1:15012",
             *admin = "127.0.0.1:15014", *why = NULL;
  uint64_t root_ms = 3650ull * 86400000, signing_ms = 1825ull * 86400000;
  int c;
  optind = 1;
  ly_cli_name(argv, "ca init");
  while ((c = getopt_long(argc, argv, "t:d:h", opts, NULL)) != -1) {
    switch (c) {
    case 't':
      td = optarg;
      break;
    case 'd':
      dir = optarg;
      break;
    case 'l':
      listen = optarg;
      break;
    case 'a':
      admin = optarg;
      break;
    case 'H':
      helm = optarg;
      break;
    case 'r':
    case 's':
      if (ly_duration_parse(optarg, c == 'r' ? &root_ms : &signing_ms, &why) !=
          0) {
        ly_cli_error("ca init", "--%s: %s",
                     c == 'r' ? "root-ttl" : "signing-ttl", why);
        return LY_EXIT_USAGE;
      }
      break;
    case 'h':
      printf("usage: lanyard ca init --trust-domain TD --dir DIR "
             "[--listen ADDR] [--admin ADDR]\n"
             "                        [--root-ttl 3650d] "
             "[--signing-ttl 1825d] [--helm-values FILE]\n"
             "  --helm-values FILE  also write the root and the issuer as "
             "values for\n"
             "                      charts/lanyard (mode 0600); --dir may "
             "then be left out\n"
             "                      (the root key is then not kept)\n");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (!td || (!dir && !helm)) {
    ly_cli_error("ca init",
                 "--trust-domain and --dir (or --helm-values) are required");
    return LY_EXIT_USAGE;
  }
  if (ly_trust_domain_check(td, strlen(td), &why) != 0) {
    ly_cli_error("ca init", "--trust-domain '%s': %s", td, why);
    return LY_EXIT_USAGE;
  }
  ly_hostport_t hp;
  if (ly_hostport_parse(listen, 0, &hp, &why) != 0 ||
      ly_hostport_parse(admin, 0, &hp, &why) != 0) {
    ly_cli_error("ca init", "bad address: %s", why);
    return LY_EXIT_USAGE;
  }
  if (signing_ms > root_ms) {
    ly_cli_error("ca init", "--signing-ttl must not exceed --root-ttl");
    return LY_EXIT_USAGE;
  }
  struct stat hst;
  if (helm && stat(helm, &hst) == 0) {
    ly_cli_error("ca init", "%s already exists; refusing to overwrite it",
                 helm);
    return LY_EXIT_FAIL;
  }
  if (dir && mkdir(dir, 0700) != 0 && errno != EEXIST) {
    ly_cli_error("ca init", "%s: %s", dir, strerror(errno));
    return LY_EXIT_FAIL;
  }
  /* Refuse before writing anything: a half-overwritten CA is worse than
   * none. */
  for (size_t i = 0; dir && i < sizeof(init_files) / sizeof(init_files[0]);
       i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, init_files[i]);
    if (stat(path, &st) == 0) {
      ly_cli_error("ca init", "%s already exists; refusing to overwrite a CA",
                   path);
      return LY_EXIT_FAIL;
    }
  }

  int64_t now = (int64_t)time(NULL);
  ly_key_t *root_key = NULL, *signing_key = NULL;
  ly_der_t root = {0}, signing = {0};
  unsigned char secret[LY_TOKEN_SECRET_LEN];
  char secret_text[64];
  char yaml[2048];
  int rc = ly_ca_create_root(td, now - 60, now + (int64_t)(root_ms / 1000),
                             &root_key, &root);
  if (rc == 0)
    rc = ly_ca_create_intermediate(root_key, &root, td, now - 60,
                                   now + (int64_t)(signing_ms / 1000),
                                   &signing_key, &signing);
  if (rc == 0)
    rc = ly_token_secret_generate(secret);
  if (rc != 0) {
    ly_cli_error("ca init", "%s", ly_strerror(rc));
    goto out;
  }
  ly_b64url_encode(secret, sizeof(secret), secret_text);
  strcat(secret_text, "\n");
  int n = snprintf(yaml, sizeof(yaml),
                   "# Written by `lanyard ca init`; paths are relative to "
                   "this file.\n"
                   "trust_domain: %s\n"
                   "listen: %s\n"
                   "admin: %s\n"
                   "signing:\n"
                   "  cert: signing.pem\n"
                   "  key: signing.key\n"
                   "bundle: bundle.pem\n"
                   "token_secret: token.secret\n"
                   "svid:\n"
                   "  default_ttl: 1h\n"
                   "  max_ttl: 24h\n",
                   td, listen, admin);
  if (helm && (rc = write_helm_values(helm, td, &root, &signing, signing_key,
                                      secret_text)) != 0)
    goto out;
  if (!dir) {
    printf("Helm values for trust domain %s written to %s (mode 0600)\n"
           "  helm install lanyard charts/lanyard -n lanyard "
           "--create-namespace -f %s\n"
           "  The root key was not kept (give --dir to keep it for signing "
           "the next\n  intermediate).\n",
           td, helm, helm);
    goto out;
  }
  if ((rc = write_cert(dir, "root.pem", &root)) != 0 ||
      (rc = write_key(dir, "root.key", root_key)) != 0 ||
      (rc = write_cert(dir, "signing.pem", &signing)) != 0 ||
      (rc = write_key(dir, "signing.key", signing_key)) != 0 ||
      (rc = write_cert(dir, "bundle.pem", &root)) != 0 ||
      (rc = write_new(dir, "token.secret", secret_text, strlen(secret_text),
                      0600)) != 0 ||
      (rc = write_new(dir, "ca.yaml", yaml, (size_t)n, 0644)) != 0)
    goto out;
  printf("CA for trust domain %s created in %s\n"
         "  root.pem / root.key   the root (move root.key offline: only\n"
         "                        signing a new intermediate needs it)\n"
         "  signing.pem / .key    the intermediate that signs SVIDs\n"
         "  bundle.pem            the trust bundle agents start with\n"
         "  token.secret          signs join tokens\n"
         "  ca.yaml               run: lanyard ca serve -c %s/ca.yaml\n",
         td, dir, dir);
  if (helm)
    printf("  %s  values for charts/lanyard (mode 0600)\n", helm);
out:
  ly_key_free(root_key);
  ly_key_free(signing_key);
  free(root.der);
  free(signing.der);
  ly_wipe(secret, sizeof(secret));
  ly_wipe(secret_text, sizeof(secret_text));
  return rc == 0 ? LY_EXIT_OK : LY_EXIT_FAIL;
}

/* A token to standard output, or to a new 0600 file (atomically replaced):
 * a redirection would leave a bearer credential readable under umask 022. */
static int emit_token(const char *token, const char *out_path) {
  if (!out_path) {
    printf("%s\n", token);
    return LY_EXIT_OK;
  }
  size_t len = strlen(token);
  char *line = malloc(len + 2);
  if (!line)
    return LY_EXIT_FAIL;
  memcpy(line, token, len);
  line[len] = '\n';
  int rc = ly_file_write_atomic(out_path, line, len + 1, 0600);
  ly_wipe(line, len + 1);
  free(line);
  if (rc != 0) {
    ly_cli_error("ca token", "--out %s: %s", out_path, ly_strerror(rc));
    return LY_EXIT_FAIL;
  }
  return LY_EXIT_OK;
}

static int ca_token(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"spiffe-id", required_argument, NULL, 'i'},
      {"ttl", required_argument, NULL, 't'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  const char *cfg_path = NULL, *id = NULL, *out_path = NULL, *why = NULL;
  uint64_t ttl_ms = 15 * 60000;
  int c;
  optind = 1;
  ly_cli_name(argv, "ca token");
  while ((c = getopt_long(argc, argv, "c:i:t:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      cfg_path = optarg;
      break;
    case 'i':
      id = optarg;
      break;
    case 'o':
      out_path = optarg;
      break;
    case 't':
      if (ly_duration_parse(optarg, &ttl_ms, &why) != 0 || ttl_ms < 1000) {
        ly_cli_error("ca token", "--ttl: %s", why ? why : "at least 1s");
        return LY_EXIT_USAGE;
      }
      break;
    case 'h':
      printf("usage: lanyard ca token -c ca.yaml --spiffe-id ID [--ttl 15m] "
             "[--out FILE]\n"
             "  ID is a workload's SPIFFE ID (it needs a path), or one ending "
             "in /* for\n  every ID below it. The token is valid for --ttl "
             "(default 15 minutes).\n  It is a bearer credential: --out "
             "writes it to FILE with mode 0600\n  (else it goes to standard "
             "output).\n");
      return LY_EXIT_OK;
    default:
      return LY_EXIT_USAGE;
    }
  }
  if (!cfg_path || !id) {
    ly_cli_error("ca token", "-c and --spiffe-id are required");
    return LY_EXIT_USAGE;
  }
  if (ly_spiffe_pattern_check(id, &why) != 0) {
    ly_cli_error("ca token", "--spiffe-id '%s': %s", id, why);
    return LY_EXIT_USAGE;
  }
  ly_diag_t diag;
  ly_diag_init(&diag);
  ly_ca_config_t *cfg = NULL;
  ly_ca_t ca;
  int rc = LY_EXIT_USAGE;
  if (ly_ca_config_load(cfg_path, &cfg, &diag) != 0 ||
      ly_ca_load(&ca, cfg, 0, &diag) != 0) {
    ly_diag_print(&diag, stderr);
    goto out;
  }
  ly_spiffe_id_t base;
  size_t len = strlen(id);
  if (len >= 2 && id[len - 1] == '*')
    len -= 2;
  ly_spiffe_id_parse(id, len, &base, NULL);
  if (!ly_spiffe_id_in_domain(&base, cfg->trust_domain)) {
    ly_cli_error("ca token", "'%s' is not in trust domain '%s'", id,
                 cfg->trust_domain);
  } else if (ly_spiffe_id_reserved(&base)) {
    ly_cli_error("ca token", "IDs under /lanyard/ are reserved");
  } else {
    char *token = NULL;
    int64_t exp = (int64_t)time(NULL) + (int64_t)(ttl_ms / 1000);
    rc = LY_EXIT_FAIL;
    if (ly_token_mint(ca.token_secret, id, exp, &token) == 0) {
      rc = emit_token(token, out_path);
      ly_wipe(token, strlen(token));
      free(token);
    }
  }
  ly_ca_free(&ca);
out:
  ly_ca_config_free(cfg);
  ly_diag_free(&diag);
  return rc;
}

int ly_cmd_ca(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "init"))
    return ca_init(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "token"))
    return ca_token(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "serve"))
    return ly_cmd_ca_serve(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "certs"))
    return ly_cmd_ca_certs(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "bootstrap"))
    return ly_cmd_ca_bootstrap(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "root"))
    return ly_cmd_ca_root(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "intermediate"))
    return ly_cmd_ca_intermediate(argc - 1, argv + 1);
  FILE *out =
      argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
          ? stdout
          : stderr;
  fprintf(out, "usage: lanyard ca <init|token|serve|certs|root|intermediate|"
               "bootstrap> [options]\n"
               "  init   create a root, a signing intermediate, a bundle, a "
               "token secret and ca.yaml\n"
               "  token  mint a join token for a SPIFFE ID (or ID/*)\n"
               "  serve  run the CA's RPC server (-c ca.yaml [--check])\n"
               "  certs  list the certificates this CA issued (-c ca.yaml)\n"
               "  root   prepare | activate | retire | status: rotate the "
               "root, no restart\n"
               "  intermediate rotate: a new signing intermediate, no restart\n"
               "  bootstrap  init unless done, mint join tokens into a "
               "directory, serve\n             (containers)\n");
  return out == stdout ? LY_EXIT_OK : LY_EXIT_USAGE;
}
