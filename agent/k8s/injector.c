/* `lanyard injector`: the sidecar rendering as a mutating admission
 * webhook. HTTPS (TLS 1.3), AdmissionReview in, AdmissionReview out with
 * an RFC 6902 patch from the same rendering as `lanyard inject`.
 *
 * Why a blocking server with a thread per connection, and not the admin
 * server on libuv: a review is a whole pod (the admin server takes 1 KiB
 * bodies), the rate is the API server's pod creations, and wolfSSL on a
 * blocking socket needs no I/O glue. Connections are capped; each has one
 * deadline for the whole request, so a slow client costs one thread for
 * LY_HTTP_REQUEST_TIMEOUT_MS at most.
 *
 * The serving certificate comes from the Lanyard CA (--bundle with
 * --token-file or --join-token-file): an SVID for the injector's own
 * SPIFFE ID with the DNS SAN <service>.<namespace>.svc, renewed at half
 * its lifetime by the agent's identity module (injector_svid.c) and
 * swapped in memory. Or from --cert/--key files, read again when either
 * changes (checked at most once a second). Either way connections in
 * flight keep the context they started with (refcounted), new ones get
 * the new one; a pair that does not load is logged and the old one keeps
 * serving. */
#define _GNU_SOURCE /* asprintf, accept4 */
#include "k8s/injector_svid.h"
#include "lanyard/b64.h"
#include "lanyard/cli.h"
#include "lanyard/fsutil.h"
#include "lanyard/http.h"
#include "lanyard/k8s.h"
#include "lanyard/duration.h"
#include "lanyard/err.h"
#include "lanyard/log.h"
#include "lanyard/spiffe.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INJ_MAX_CONNS 32
#define INJ_DEFAULT_MAX_BYTES (3u << 20) /* the API server's own limit */

/* A TLS context shared by connections; freed by the last one out. */
typedef struct {
  WOLFSSL_CTX *ctx;
  atomic_int refs;
} ctx_ref_t;

typedef struct {
  const char *cert, *key;
  size_t max_bytes;
  ly_k8s_opts_t opts;
  pthread_mutex_t mu;
  pthread_cond_t got_cert; /* the first SVID from the CA */
  ctx_ref_t *current;
  struct stat cert_st, key_st;
  atomic_int conns;
} injector_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  stopping = sig;
}

static void ctx_unref(ctx_ref_t *c) {
  if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
    wolfSSL_CTX_free(c->ctx);
    free(c);
  }
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
         a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A server context from a PEM chain and key; NULL with *why. */
static WOLFSSL_CTX *ctx_from_pem(const char *c, size_t clen, const char *k,
                                 size_t klen, const char **why) {
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
  if (!ctx) {
    *why = "out of memory";
    return NULL;
  }
  if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)c,
                                               (long)clen) != WOLFSSL_SUCCESS) {
    *why = "the certificate file holds no PEM certificate chain";
  } else if (wolfSSL_CTX_use_PrivateKey_buffer(
                 ctx, (const unsigned char *)k, (long)klen,
                 WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
    *why = "the key file holds no PEM private key";
  } else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
    *why = "the key does not match the certificate";
  } else {
    return ctx;
  }
  wolfSSL_CTX_free(ctx);
  return NULL;
}

/* A server context from the PEM files; NULL with *why. */
static WOLFSSL_CTX *load_ctx(const char *cert, const char *key,
                             const char **why) {
  char *c = NULL, *k = NULL;
  size_t clen, klen = 0;
  WOLFSSL_CTX *ctx = NULL;
  if (ly_file_read(cert, 1u << 20, &c, &clen) != 0)
    *why = "cannot read the certificate file";
  else if (ly_file_read(key, 1u << 20, &k, &klen) != 0)
    *why = "cannot read the key file";
  else
    ctx = ctx_from_pem(c, clen, k, klen, why);
  if (k)
    ly_wipe(k, klen);
  free(k);
  free(c);
  return ctx;
}

/* Makes ctx the one new connections get; 0, or -1 (ctx freed). */
static int install_ctx(injector_t *in, WOLFSSL_CTX *ctx) {
  ctx_ref_t *n = calloc(1, sizeof(*n));
  if (!n) {
    wolfSSL_CTX_free(ctx);
    return -1;
  }
  n->ctx = ctx;
  atomic_init(&n->refs, 1);
  pthread_mutex_lock(&in->mu);
  ctx_ref_t *old = in->current;
  in->current = n;
  pthread_cond_broadcast(&in->got_cert);
  pthread_mutex_unlock(&in->mu);
  ctx_unref(old);
  return 0;
}

/* A new SVID from the CA (the identity thread). */
static void on_svid(const char *chain, size_t chain_len, const char *key,
                    size_t key_len, const ly_cert_info_t *info, void *data) {
  injector_t *in = data;
  const char *why = NULL;
  WOLFSSL_CTX *ctx = ctx_from_pem(chain, chain_len, key, key_len, &why);
  if (!ctx || install_ctx(in, ctx) != 0) {
    ly_log(LY_WARN, "injector_cert_reload_failed", "reason",
           why ? why : "out of memory", NULL);
    return;
  }
  ly_log(LY_INFO, "injector_cert_installed", "serial", info->serial_hex,
         "spiffe_id", info->spiffe_id, NULL);
}

/* Loads the pair when the files changed since the last load (or at
 * first). Returns 0, or -1 when there is no context at all. */
static int maybe_reload(injector_t *in) {
  struct stat cs, ks;
  const char *why = NULL;
  if (stat(in->cert, &cs) != 0 || stat(in->key, &ks) != 0) {
    if (!in->current) {
      fprintf(stderr, "lanyard injector: %s: cannot read it\n",
              stat(in->cert, &cs) != 0 ? in->cert : in->key);
      return -1;
    }
    return 0; /* mid-rotation (a file renamed away): try again later */
  }
  if (in->current && same_file(&cs, &in->cert_st) &&
      same_file(&ks, &in->key_st))
    return 0;
  WOLFSSL_CTX *ctx = load_ctx(in->cert, in->key, &why);
  if (!ctx) {
    if (!in->current) {
      fprintf(stderr, "lanyard injector: %s, %s: %s\n", in->cert, in->key, why);
      return -1;
    }
    ly_log(LY_WARN, "injector_cert_reload_failed", "reason", why, NULL);
    /* Not again until the files change once more. */
    in->cert_st = cs;
    in->key_st = ks;
    return 0;
  }
  int had = in->current != NULL;
  if (install_ctx(in, ctx) != 0)
    return had ? 0 : -1;
  if (had)
    ly_log(LY_INFO, "injector_cert_reloaded", "cert", in->cert, NULL);
  in->cert_st = cs;
  in->key_st = ks;
  return 0;
}

/* --- the review ---------------------------------------------------------- */

typedef struct {
  int status; /* HTTP status */
  char *body; /* malloc'd */
  const char *type;
} reply_t;

static void reply_text(reply_t *r, int status, const char *msg) {
  r->status = status;
  r->type = "text/plain; charset=utf-8";
  if (asprintf(&r->body, "%s\n", msg) < 0)
    r->body = NULL;
}

/* The AdmissionReview answer for a parsed review; 0, or -1 with a 400
 * already in r. */
static void review(injector_t *in, const char *body, size_t len, reply_t *r) {
  json_error_t jerr;
  char why[512] = "", msg[700];
  json_t *rv = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *req = json_object_get(rv, "request");
  const char *uid = json_string_value(json_object_get(req, "uid"));
  const char *api = json_string_value(json_object_get(rv, "apiVersion"));
  const char *kind = json_string_value(json_object_get(rv, "kind"));

  if (!rv) {
    snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s",
             jerr.line, jerr.column, jerr.text);
    reply_text(r, 400, msg);
    return;
  }
  if (!json_is_object(rv) || !kind || strcmp(kind, "AdmissionReview") || !api ||
      (strcmp(api, "admission.k8s.io/v1") &&
       strcmp(api, "admission.k8s.io/v1beta1"))) {
    reply_text(r, 400,
               "not an AdmissionReview (apiVersion admission.k8s.io/v1)");
    json_decref(rv);
    return;
  }
  if (!json_is_object(req) || !uid || !*uid) {
    reply_text(r, 400, "the AdmissionReview has no request.uid");
    json_decref(rv);
    return;
  }
  json_t *resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", 1);
  json_t *warnings = json_array();
  const char *op = json_string_value(json_object_get(req, "operation"));
  json_t *obj = json_object_get(req, "object");
  json_t *tmpl = NULL, *work = NULL;
  if (op && !strcmp(op, "CREATE") && json_is_object(obj)) {
    work = json_deep_copy(obj);
    tmpl = ly_k8s_pod_template(work);
    if (!tmpl && !json_object_get(work, "kind"))
      tmpl = work; /* a Pod sent without its kind */
  }
  if (tmpl) {
    const char *ns = json_string_value(json_object_get(req, "namespace"));
    ly_k8s_outcome_t oc = ly_k8s_inject(tmpl, ns, &in->opts, why, sizeof(why));
    if (oc == LY_K8S_ERROR) {
      /* Never a silently broken pod: the creation fails, and says why. */
      json_object_set_new(resp, "allowed", json_false());
      json_object_set_new(resp, "status",
                          json_pack("{s:i, s:s, s:s}", "code", 400, "reason",
                                    "BadRequest", "message", why));
    } else {
      if (oc == LY_K8S_SKIPPED) {
        snprintf(msg, sizeof(msg), "lanyard: not injected: %s", why);
        json_array_append_new(warnings, json_string(msg));
      }
      json_t *patch = ly_k8s_json_diff(obj, work);
      if (json_array_size(patch)) {
        char *p = json_dumps(patch, JSON_COMPACT);
        char *b64 = p ? malloc(ly_b64_len(strlen(p)) + 1) : NULL;
        if (b64) {
          ly_b64_encode(p, strlen(p), b64);
          json_object_set_new(resp, "patchType", json_string("JSONPatch"));
          json_object_set_new(resp, "patch", json_string(b64));
        }
        free(b64);
        free(p);
      }
      json_decref(patch);
    }
  }
  json_decref(work);
  if (json_array_size(warnings))
    json_object_set(resp, "warnings", warnings);
  json_decref(warnings);
  json_t *out = json_pack("{s:s, s:s, s:o}", "apiVersion", api, "kind",
                          "AdmissionReview", "response", resp);
  r->status = 200;
  r->type = "application/json";
  r->body = json_dumps(out, JSON_COMPACT);
  if (!r->body)
    reply_text(r, 500, "out of memory");
  json_decref(out);
  json_decref(rv);
}

/* --- one connection ------------------------------------------------------ */

typedef struct {
  injector_t *in;
  int fd;
  ctx_ref_t *ctx;
} conn_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *status_text(int s) {
  switch (s) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 501:
    return "Not Implemented";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Internal Server Error";
  }
}

/* Head and body in one write: two small writes would meet Nagle and the
 * client's delayed ACK (40 ms per review). */
static void send_reply(WOLFSSL *ssl, reply_t *r, int head_only) {
  size_t blen = r->body && !head_only ? strlen(r->body) : 0;
  char *msg = NULL;
  int n = asprintf(&msg,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
                   "%zu\r\nConnection: close\r\n\r\n%s",
                   r->status, status_text(r->status),
                   r->type ? r->type : "text/plain; charset=utf-8",
                   r->body ? strlen(r->body) : 0, blen ? r->body : "");
  if (n > 0)
    wolfSSL_write(ssl, msg, n);
  free(msg);
}

static void serve(conn_t *c) {
  injector_t *in = c->in;
  WOLFSSL *ssl = wolfSSL_new(c->ctx->ctx);
  uint64_t deadline = now_ms() + LY_HTTP_REQUEST_TIMEOUT_MS;
  size_t cap = LY_HTTP_HEAD_MAX + in->max_bytes + 1, len = 0, head_len = 0;
  char *buf = malloc(cap);
  ly_http_request_t req;
  reply_t r = {0};
  int rc = LY_HTTP_INCOMPLETE;

  if (!ssl || !buf || wolfSSL_set_fd(ssl, c->fd) != WOLFSSL_SUCCESS)
    goto done;
  if (wolfSSL_accept(ssl) != WOLFSSL_SUCCESS)
    goto done; /* not TLS, or a client that gave up: nothing to answer */
  /* The head, then as many body bytes as Content-Length says. */
  for (;;) {
    if (rc == LY_HTTP_INCOMPLETE) {
      rc = ly_http_parse_body_max(buf, len, &req, &head_len, in->max_bytes);
      if (rc != 0 && rc != LY_HTTP_INCOMPLETE)
        break;
    }
    if (rc == 0 && len >= head_len + req.content_length)
      break;
    if (now_ms() > deadline) {
      rc = 408;
      break;
    }
    int got = wolfSSL_read(ssl, buf + len, (int)(cap - len - 1));
    if (got <= 0) {
      rc = now_ms() > deadline ? 408 : -1;
      break;
    }
    len += (size_t)got;
  }
  if (rc == -1)
    goto done; /* the client went away */
  if (rc != 0) {
    char msg[80];
    snprintf(msg, sizeof(msg), "%s", status_text(rc));
    if (rc == 413)
      snprintf(msg, sizeof(msg), "the review is larger than %zu bytes",
               in->max_bytes);
    reply_text(&r, rc, msg);
  } else if (!strcmp(req.path, "/healthz") || !strcmp(req.path, "/readyz")) {
    reply_text(&r, 200, "ok");
  } else if (strcmp(req.method, "POST")) {
    reply_text(&r, 405, "POST an AdmissionReview");
  } else if (req.content_length == 0) {
    reply_text(&r, 400, "no body: POST an AdmissionReview");
  } else {
    review(in, buf + head_len, req.content_length, &r);
  }
  send_reply(ssl, &r, rc == 0 && !strcmp(req.method, "HEAD"));
  wolfSSL_shutdown(ssl);
  if (rc != 0) {
    /* A refused request may still be arriving (a 413 is known from the
     * head): closing on unread input would send a reset that can destroy
     * the answer on its way. Drain for a while, keep nothing. */
    char sink[4096];
    struct timeval tv = {0, 200 * 1000};
    uint64_t until = now_ms() + LY_HTTP_LINGER_MS;
    shutdown(c->fd, SHUT_WR);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (now_ms() < until && recv(c->fd, sink, sizeof(sink), 0) > 0)
      ;
  }
done:
  free(r.body);
  free(buf);
  wolfSSL_free(ssl);
}

static void *conn_main(void *arg) {
  conn_t *c = arg;
  serve(c);
  close(c->fd);
  ctx_unref(c->ctx);
  atomic_fetch_sub(&c->in->conns, 1);
  free(c);
  return NULL;
}

/* --- listening -------------------------------------------------------------
 */

/* ":15017" (every address), "127.0.0.1:15017" or "[::1]:15017". */
static int listen_on(const char *spec, char *why, size_t whylen) {
  char host[64] = "";
  const char *colon = strrchr(spec, ':');
  struct sockaddr_storage ss = {0};
  socklen_t sl;
  char *end;
  long port;
  if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
    snprintf(why, whylen, "--listen wants HOST:PORT or :PORT");
    return -1;
  }
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || colon[1] == '\0') {
    snprintf(why, whylen, "--listen: the port must be 0..65535");
    return -1;
  }
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (!host[0] || !strcmp(host, "::")) {
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    s6->sin6_port = htons((uint16_t)port);
    sl = sizeof(*s6);
  } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    sl = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    sl = sizeof(*s6);
  } else {
    snprintf(why, whylen, "--listen: '%s' is not an IP address", host);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && !host[0]) { /* no IPv6 here: every IPv4 address then */
    memset(&ss, 0, sizeof(ss));
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    sl = sizeof(*s4);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  int one = 1, zero = 0;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6 && !host[0])
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
      listen(fd, 128) != 0) {
    snprintf(why, whylen, "--listen %s: %s", spec, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

static void usage(FILE *out) {
  static const char *const lines[] = {
      "usage: lanyard injector --trust-domain TD --bundle FILE",
      "           (--token-file F | --join-token-file F) [options]",
      "       lanyard injector --cert FILE --key FILE [options]",
      "",
      "The mutating admission webhook: AdmissionReview v1 over HTTPS in,",
      "the sidecar as a JSON Patch out (the rendering of `lanyard inject`).",
      "The serving certificate comes from the CA at --ca-addr: an SVID for",
      "spiffe://TD/ns/NS/sa/SA with the DNS SAN SERVICE.NS.svc (the CA's",
      "dns_names must allow it), renewed at half its lifetime and swapped",
      "without a restart. Or from files, read again when they change.",
      "",
      "  --listen ADDR           HOST:PORT or :PORT (:15017)",
      "  --trust-domain TD       the trust domain",
      "  --bundle FILE           the CA's trust anchors (PEM)",
      "  --token-file FILE       a projected service-account token",
      "  --join-token-file FILE  a join token (`lanyard ca token`)",
      "  --service NAME          the webhook's Service (lanyard-injector)",
      "  --service-account SA    the injector's own (lanyard-injector)",
      "  --cert-ttl DURATION     the serving certificate's lifetime (1h)",
      "  --cert FILE, --key FILE the serving certificate chain and key (PEM)",
      "  --max-bytes N           largest review accepted (3145728); 413 above",
      "  --native-sidecar=BOOL   agent as a native sidecar (true)",
      "  --image IMAGE           the agent's image (lanyard:VERSION)",
      "  --ca-addr HOST:PORT     the CA (lanyard-ca.lanyard.svc:15012)",
      "  --lanyard-namespace NS  Lanyard's own namespace (lanyard)",
      "  --default-annotation K=V  a lanyard.io/ annotation for every pod",
      "                          that does not set it (repeatable)",
      "  --mode M, --ttl D, --proxy-cpu Q, --proxy-memory Q",
      "                          short for --default-annotation",
      "                          lanyard.io/mode=M (ttl, proxy-cpu, ...)",
  };
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    fprintf(out, "%s\n", lines[i]);
}

enum {
  OPT_LISTEN = 256,
  OPT_CERT,
  OPT_KEY,
  OPT_MAX,
  OPT_NATIVE,
  OPT_IMAGE,
  OPT_CA,
  OPT_LY_NS,
  OPT_DEFAULT_ANN,
  OPT_TD,
  OPT_BUNDLE,
  OPT_TOKEN,
  OPT_JOIN_TOKEN,
  OPT_SERVICE,
  OPT_SA,
  OPT_CERT_TTL,
  OPT_SHORT_ANN, /* --mode, --ttl, --proxy-cpu, --proxy-memory */
};

int ly_cmd_injector(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {"max-bytes", required_argument, NULL, OPT_MAX},
      {"native-sidecar", optional_argument, NULL, OPT_NATIVE},
      {"image", required_argument, NULL, OPT_IMAGE},
      {"ca-addr", required_argument, NULL, OPT_CA},
      {"lanyard-namespace", required_argument, NULL, OPT_LY_NS},
      {"default-annotation", required_argument, NULL, OPT_DEFAULT_ANN},
      {"trust-domain", required_argument, NULL, OPT_TD},
      {"bundle", required_argument, NULL, OPT_BUNDLE},
      {"token-file", required_argument, NULL, OPT_TOKEN},
      {"join-token-file", required_argument, NULL, OPT_JOIN_TOKEN},
      {"service", required_argument, NULL, OPT_SERVICE},
      {"service-account", required_argument, NULL, OPT_SA},
      {"cert-ttl", required_argument, NULL, OPT_CERT_TTL},
      {"mode", required_argument, NULL, OPT_SHORT_ANN},
      {"ttl", required_argument, NULL, OPT_SHORT_ANN},
      {"proxy-cpu", required_argument, NULL, OPT_SHORT_ANN},
      {"proxy-memory", required_argument, NULL, OPT_SHORT_ANN},
      {"help", no_argument, NULL, 'h'},
      {0}};
  static injector_t in;
  json_t *defaults = json_object();
  const char *listen_spec = ":15017";
  char why[256], *end;
  int c, idx;
  /* the CA-issued serving certificate: an agent config of our own */
  static ly_agent_config_t id_cfg;
  const char *service = "lanyard-injector", *sa = "lanyard-injector";
  const char *join_token = NULL, *k8s_token = NULL, *cert_ttl = NULL;
  char *spiffe_id = NULL, *dns_name = NULL;
  memset(&id_cfg, 0, sizeof(id_cfg));

  memset(&in, 0, sizeof(in));
  ly_k8s_opts_init(&in.opts);
  in.max_bytes = INJ_DEFAULT_MAX_BYTES;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
    switch (c) {
    case OPT_LISTEN:
      listen_spec = optarg;
      break;
    case OPT_CERT:
      in.cert = optarg;
      break;
    case OPT_KEY:
      in.key = optarg;
      break;
    case OPT_MAX:
      in.max_bytes = strtoul(optarg, &end, 10);
      if (*end || optarg[0] < '0' || optarg[0] > '9' || in.max_bytes < 1024 ||
          in.max_bytes > (64u << 20)) {
        fprintf(stderr, "lanyard injector: --max-bytes is 1024..67108864\n");
        goto usage_fail;
      }
      break;
    case OPT_NATIVE:
      if (!optarg || !strcmp(optarg, "true"))
        in.opts.native_sidecar = 1;
      else if (!strcmp(optarg, "false"))
        in.opts.native_sidecar = 0;
      else {
        fprintf(stderr,
                "lanyard injector: --native-sidecar is true or false\n");
        goto usage_fail;
      }
      break;
    case OPT_IMAGE:
      in.opts.image = optarg;
      break;
    case OPT_CA:
      in.opts.ca_addr = optarg;
      break;
    case OPT_LY_NS:
      in.opts.lanyard_namespace = optarg;
      break;
    case OPT_TD:
      id_cfg.trust_domain = optarg;
      break;
    case OPT_BUNDLE:
      id_cfg.ca.bundle = optarg;
      break;
    case OPT_TOKEN:
      k8s_token = optarg;
      break;
    case OPT_JOIN_TOKEN:
      join_token = optarg;
      break;
    case OPT_SERVICE:
      service = optarg;
      break;
    case OPT_SA:
      sa = optarg;
      break;
    case OPT_CERT_TTL:
      cert_ttl = optarg;
      break;
    case OPT_SHORT_ANN: {
      /* the chart's values, as the annotation of the same name */
      char key[64];
      snprintf(key, sizeof(key), "lanyard.io/%s", opts[idx].name);
      json_object_set_new(defaults, key, json_string(optarg));
      break;
    }
    case OPT_DEFAULT_ANN: {
      /* The chart's values (mode, TTL, resources) arrive this way: they
       * act like namespace annotations, the pod's own win. */
      const char *eq = strchr(optarg, '=');
      if (!eq || eq == optarg) {
        fprintf(stderr, "lanyard injector: --default-annotation wants "
                        "KEY=VALUE\n");
        goto usage_fail;
      }
      char *key = strndup(optarg, (size_t)(eq - optarg));
      json_object_set_new(defaults, key, json_string(eq + 1));
      free(key);
      break;
    }
    case 'h':
      usage(stdout);
      json_decref(defaults);
      return LY_EXIT_OK;
    default:
      usage(stderr);
      goto usage_fail;
    }
  }
  int from_ca = id_cfg.ca.bundle || k8s_token || join_token;
  const char *bad = optind < argc ? "unexpected arguments" : NULL;
  if (!bad && from_ca && (in.cert || in.key))
    bad = "--cert/--key or --bundle with a token, not both";
  else if (!bad && !from_ca && (!in.cert || !in.key))
    bad = "--bundle with --token-file or --join-token-file needed (or "
          "--cert and --key)";
  else if (!bad && from_ca &&
           (!id_cfg.ca.bundle || !id_cfg.trust_domain ||
            !k8s_token == !join_token))
    bad = "--trust-domain, --bundle and one of --token-file, "
          "--join-token-file needed";
  if (bad) {
    fprintf(stderr, "lanyard injector: %s\n", bad);
    usage(stderr);
    goto usage_fail;
  }
  if (from_ca) {
    const char *w = NULL;
    const char *ns = in.opts.lanyard_namespace;
    uint64_t ttl_ms = 3600 * 1000;
    if (cert_ttl &&
        (ly_duration_parse(cert_ttl, &ttl_ms, &w) != 0 || ttl_ms < 5000)) {
      fprintf(stderr, "lanyard injector: --cert-ttl: %s\n",
              w ? w : "at least 5s");
      goto usage_fail;
    }
    if (ly_hostport_parse(in.opts.ca_addr, 1, &id_cfg.ca.address, &w) != 0) {
      fprintf(stderr, "lanyard injector: --ca-addr: %s\n", w);
      goto usage_fail;
    }
    if (asprintf(&spiffe_id, "spiffe://%s/ns/%s/sa/%s", id_cfg.trust_domain, ns,
                 sa) < 0 ||
        asprintf(&dns_name, "%s.%s.svc", service, ns) < 0)
      goto usage_fail;
    if (ly_spiffe_workload_id_parse(spiffe_id, strlen(spiffe_id), NULL, &w) !=
            0 ||
        !ly_dns_name_valid(dns_name)) {
      fprintf(stderr, "lanyard injector: %s, %s: %s\n", spiffe_id, dns_name,
              w ? w : "not a DNS name");
      goto usage_fail;
    }
    id_cfg.spiffe_id = spiffe_id;
    id_cfg.dns_name = dns_name;
    id_cfg.ca.token_file = (char *)join_token;
    id_cfg.ca.k8s_token_file = (char *)k8s_token;
    id_cfg.svid.ttl_ms = ttl_ms;
    id_cfg.svid.renew_fraction = 0.5;
  }
  if (ly_k8s_check_annotations(defaults, why, sizeof(why)) != 0) {
    fprintf(stderr, "lanyard injector: --default-annotation: %s\n", why);
    goto usage_fail;
  }
  in.opts.ns_annotations = json_object_size(defaults) ? defaults : NULL;
  pthread_mutex_init(&in.mu, NULL);
  pthread_cond_init(&in.got_cert, NULL);
  struct sigaction sa_ = {0};
  sa_.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
  sigaction(SIGTERM, &sa_, NULL);
  sigaction(SIGINT, &sa_, NULL);
  if (from_ca) {
    const char *w = NULL;
    int rc = ly_injector_svid_start(&id_cfg, on_svid, &in, &w);
    if (rc != 0) {
      fprintf(stderr, "lanyard injector: %s: %s\n", id_cfg.ca.bundle,
              w ? w : ly_strerror(rc));
      json_decref(defaults);
      free(spiffe_id);
      free(dns_name);
      return LY_EXIT_FAIL;
    }
    /* Listen only with a certificate: the readiness probe is a TCP
     * connect, and a webhook without one would fail every review. */
    pthread_mutex_lock(&in.mu);
    while (!in.current && !stopping) {
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_sec += 1; /* a signal does not wake a condition wait */
      pthread_cond_timedwait(&in.got_cert, &in.mu, &t);
    }
    pthread_mutex_unlock(&in.mu);
    if (!in.current) {
      ly_injector_svid_stop();
      json_decref(defaults);
      return LY_EXIT_OK;
    }
  } else if (maybe_reload(&in) != 0) {
    goto usage_fail;
  }
  int lfd = listen_on(listen_spec, why, sizeof(why));
  if (lfd < 0) {
    fprintf(stderr, "lanyard injector: %s\n", why);
    ctx_unref(in.current);
    json_decref(defaults);
    return LY_EXIT_FAIL;
  }
  struct sockaddr_storage bound;
  socklen_t bl = sizeof(bound);
  char port[8] = "?";
  if (getsockname(lfd, (struct sockaddr *)&bound, &bl) == 0)
    snprintf(port, sizeof(port), "%u",
             ntohs(bound.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&bound)->sin6_port
                       : ((struct sockaddr_in *)&bound)->sin_port));
  ly_log(LY_INFO, "injector_listening", "listen", listen_spec, "port", port,
         NULL);

  uint64_t checked = now_ms();
  while (!stopping) {
    struct pollfd p = {lfd, POLLIN, 0};
    int n = poll(&p, 1, 1000);
    if (!from_ca && now_ms() - checked >= 1000) {
      maybe_reload(&in);
      checked = now_ms();
    }
    if (n <= 0)
      continue;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    if (atomic_fetch_add(&in.conns, 1) >= INJ_MAX_CONNS) {
      /* Over the cap: closed at once; the API server retries. */
      atomic_fetch_sub(&in.conns, 1);
      close(fd);
      continue;
    }
    struct timeval tv = {LY_HTTP_REQUEST_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* wolfSSL writes the handshake's flights in pieces: without this,
     * Nagle and the client's delayed ACK add 40 ms to every review. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_t *cn = calloc(1, sizeof(*cn));
    pthread_t th;
    pthread_attr_t attr;
    if (!cn) {
      close(fd);
      atomic_fetch_sub(&in.conns, 1);
      continue;
    }
    cn->in = &in;
    cn->fd = fd;
    pthread_mutex_lock(&in.mu);
    cn->ctx = in.current;
    atomic_fetch_add(&cn->ctx->refs, 1);
    pthread_mutex_unlock(&in.mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, conn_main, cn) != 0) {
      ctx_unref(cn->ctx);
      close(fd);
      free(cn);
      atomic_fetch_sub(&in.conns, 1);
    }
    pthread_attr_destroy(&attr);
  }
  ly_log(LY_INFO, "injector_stopping", "signal",
         stopping == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  close(lfd);
  /* Let the connections in flight finish (each has a deadline). */
  for (int i = 0; i < 200 && atomic_load(&in.conns) > 0; i++)
    usleep(100 * 1000);
  ly_injector_svid_stop();
  ctx_unref(in.current);
  /* Connections still running (past their deadline) may read the
   * defaults: they are left to the process's exit. */
  if (atomic_load(&in.conns) == 0)
    json_decref(defaults);
  return LY_EXIT_OK;
usage_fail:
  json_decref(defaults);
  free(spiffe_id);
  free(dns_name);
  return LY_EXIT_USAGE;
}
