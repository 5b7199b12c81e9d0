/* ca_load: keeps a CA busy with Sign calls and reports how many
 * certificates it issued per second, for the CA benchmark.
 *
 *   ca_load --ca HOST:PORT --bundle bundle.pem --td TD --csr csr.der
 *           (--join-token TOKEN | --cert svid.pem --key svid.key)
 *           [--conns 16] [--duration 5] [--inflight 1] [--server-pid PID]
 *
 * Opens --conns RPC clients, each its own TLS connection (presenting the
 * SVID with --cert/--key: an mTLS renewal, so the CSR must ask for the
 * SVID's SPIFFE ID), and keeps --inflight Sign calls outstanding on each
 * for --duration seconds after a 0.5 s warm-up that is not counted (it
 * absorbs the handshakes). Every call sends the same CSR: the CA signs
 * each anew with a fresh serial, so the work per call is the same.
 *
 * Prints one line:
 *   issued=N errors=E seconds=S per_second=X p50_ms=.. p99_ms=..
 * ending, with --server-pid (the CA's process, on this machine), in
 * server_cpu_s=..: its user + system time over the measured window, read
 * here so that the window is exactly the one counted. Exits 0 when at
 * least one certificate was issued and nothing failed. One libuv loop,
 * single-threaded, like the CA.
 */
#include "ca/ca.h"
#include "lanyard/config.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"
#include "lanyard/x509.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#define WARMUP_MS 500
#define CALL_TIMEOUT_MS 10000

typedef enum { PHASE_WARMUP = 0, PHASE_MEASURE, PHASE_DONE } phase_t;

typedef struct {
  const char *ca, *bundle, *td, *csr, *join, *cert, *key;
  unsigned conns, inflight;
  double duration;
  int server_pid; /* 0: none */
} opts_t;

/* One outstanding call: which client it runs on and when it started. */
typedef struct {
  ly_rpc_client_t *client;
  uint64_t started; /* uv_hrtime */
} slot_t;

typedef struct {
  uv_loop_t *loop;
  phase_t phase;
  Lanyard__Ca__V1__SignRequest req; /* the same request for every call */
  ly_rpc_client_t **clients;
  unsigned nclients;
  slot_t *slots; /* conns * inflight */
  uv_timer_t warmup, stop;
  uint64_t duration_ms;
  uint64_t t_start, t_end; /* uv_hrtime of the measured window */
  int server_pid;
  double cpu_start, cpu_end; /* the server's CPU seconds at both ends */
  uint64_t issued, errors;
  uint32_t *lat_us; /* latency of each measured call */
  size_t nlat, caplat;
  int first_error_shown;
} load_t;

static load_t L;

static void die(const char *msg) {
  fprintf(stderr, "ca_load: %s\n", msg);
  exit(2);
}

static char *slurp(const char *path, size_t *len) {
  char *data = NULL;
  if (ly_file_read(path, 1u << 20, &data, len) != 0) {
    fprintf(stderr, "ca_load: cannot read %s\n", path);
    exit(2);
  }
  return data;
}

static void record_latency(uint64_t ns) {
  if (L.nlat == L.caplat) {
    size_t cap = L.caplat ? 2 * L.caplat : 4096;
    uint32_t *p = realloc(L.lat_us, cap * sizeof(*p));
    if (!p)
      die("out of memory");
    L.lat_us = p;
    L.caplat = cap;
  }
  L.lat_us[L.nlat++] = (uint32_t)(ns / 1000);
}

/* A Sign answer counts as issued only if it is OK and carries a leaf
 * certificate that parses and names a SPIFFE ID. */
static int response_ok(int code, const ProtobufCMessage *m) {
  if (code != LY_RPC_OK || !m ||
      m->descriptor != &lanyard__ca__v1__sign_response__descriptor)
    return 0;
  const Lanyard__Ca__V1__SignResponse *r =
      (const Lanyard__Ca__V1__SignResponse *)m;
  ly_cert_info_t info;
  return r->n_chain > 0 &&
         ly_cert_info(r->chain[0].data, r->chain[0].len, &info) == 0 &&
         info.spiffe_id[0] != '\0';
}

/* User + system CPU seconds of a process (all its threads), from
 * /proc/PID/stat; -1 when unreadable. comm may hold spaces and ')', so
 * the fields are counted after the last ')'. */
static double proc_cpu_seconds(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long long utime, stime;
  /* after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (!p ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void send_sign(slot_t *s);

static void on_signed(int code, const char *message, const ProtobufCMessage *m,
                      void *data) {
  slot_t *s = data;
  if (L.phase == PHASE_DONE)
    return; /* cancelled by the shutdown, or late: not counted */
  if (L.phase == PHASE_MEASURE) {
    if (response_ok(code, m)) {
      L.issued++;
      record_latency(uv_hrtime() - s->started);
    } else {
      L.errors++;
    }
  }
  if (code != LY_RPC_OK && !L.first_error_shown) {
    /* one line is enough to say why; the count says how often */
    fprintf(stderr, "ca_load: first error: code=%s message=%s\n",
            ly_rpc_code_name(code), message);
    L.first_error_shown = 1;
  }
  send_sign(s);
}

static void send_sign(slot_t *s) {
  s->started = uv_hrtime();
  if (ly_rpc_client_call(s->client, "Sign", &L.req.base, CALL_TIMEOUT_MS,
                         on_signed, s) != 0)
    die("cannot start a Sign call");
}

static void on_stop(uv_timer_t *t);

/* The measured window starts when the warm-up really ended (a busy
 * machine may run the timer late) and lasts --duration from there. */
static void on_warmup(uv_timer_t *t) {
  L.phase = PHASE_MEASURE;
  L.t_start = uv_hrtime();
  if (L.server_pid)
    L.cpu_start = proc_cpu_seconds(L.server_pid);
  uv_timer_start(&L.stop, on_stop, L.duration_ms, 0);
}

static void on_stop(uv_timer_t *t) {
  L.t_end = uv_hrtime();
  if (L.server_pid)
    L.cpu_end = proc_cpu_seconds(L.server_pid);
  L.phase = PHASE_DONE;
  /* Freeing cancels the calls in flight (their callbacks see PHASE_DONE)
   * and closes every handle, so the loop ends. */
  for (unsigned i = 0; i < L.nclients; i++)
    ly_rpc_client_free(L.clients[i]);
  uv_close((uv_handle_t *)&L.warmup, NULL);
  uv_close((uv_handle_t *)&L.stop, NULL);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static double percentile_ms(double p) {
  if (L.nlat == 0)
    return 0.0;
  size_t i = (size_t)(p * (double)(L.nlat - 1) + 0.5);
  return L.lat_us[i] / 1000.0;
}

static void usage(void) {
  die("usage: ca_load --ca HOST:PORT --bundle bundle.pem --td TD --csr FILE "
      "(--join-token T | --cert svid.pem --key svid.key) [--conns 16] "
      "[--duration 5] [--inflight 1] [--server-pid PID]");
}

static void parse_args(int argc, char **argv, opts_t *o) {
  *o = (opts_t){.conns = 16, .inflight = 1, .duration = 5.0};
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc)
      usage();
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--ca"))
      o->ca = v;
    else if (!strcmp(k, "--bundle"))
      o->bundle = v;
    else if (!strcmp(k, "--td"))
      o->td = v;
    else if (!strcmp(k, "--csr"))
      o->csr = v;
    else if (!strcmp(k, "--join-token"))
      o->join = v;
    else if (!strcmp(k, "--cert"))
      o->cert = v;
    else if (!strcmp(k, "--key"))
      o->key = v;
    else if (!strcmp(k, "--conns"))
      o->conns = (unsigned)atoi(v);
    else if (!strcmp(k, "--inflight"))
      o->inflight = (unsigned)atoi(v);
    else if (!strcmp(k, "--duration"))
      o->duration = atof(v);
    else if (!strcmp(k, "--server-pid"))
      o->server_pid = atoi(v);
    else
      usage();
  }
  if (!o->ca || !o->bundle || !o->td || !o->csr)
    usage();
  /* exactly one credential: a join token, or an SVID to renew */
  if (!!o->join == !!(o->cert && o->key) || !!o->cert != !!o->key)
    usage();
  if (o->conns < 1 || o->conns > 4096 || o->inflight < 1 ||
      o->inflight > 1024 || !(o->duration > 0) || o->server_pid < 0)
    die("--conns 1..4096, --inflight 1..1024, --duration > 0, --server-pid "
        "a PID");
}

/* The CSR as DER, from a DER or PEM file. */
static unsigned char *load_csr(const char *path, size_t *out_len) {
  size_t len;
  char *raw = slurp(path, &len);
  unsigned char *der = malloc(len);
  if (!der)
    die("out of memory");
  int dlen = wc_CertPemToDer((unsigned char *)raw, (int)len, der, (int)len,
                             CERTREQ_TYPE);
  if (dlen <= 0) { /* DER already */
    memcpy(der, raw, len);
    dlen = (int)len;
  }
  free(raw);
  *out_len = (size_t)dlen;
  return der;
}

static WOLFSSL_CTX *make_ctx(const opts_t *o, ly_chain_t *roots,
                             ly_chain_t *chain, ly_key_t **key) {
  const char *why = NULL;
  size_t len;
  char *pem = slurp(o->bundle, &len);
  if (ly_chain_from_pem(pem, len, roots, &why) != 0)
    die("bad --bundle");
  free(pem);
  if (o->cert) {
    pem = slurp(o->cert, &len);
    if (ly_chain_from_pem(pem, len, chain, &why) != 0)
      die("bad --cert");
    free(pem);
    pem = slurp(o->key, &len);
    if (ly_key_from_pem(pem, len, key, &why) != 0)
      die("bad --key");
    ly_wipe(pem, len);
    free(pem);
  }
  ly_tls_ctx_opts_t t = {
      .is_server = 0, .roots = roots, .chain = chain, .key = *key};
  WOLFSSL_CTX *ctx;
  if (ly_tls_ctx_new(&t, &ctx, &why) != 0)
    die(why);
  return ctx;
}

static void start_clients(const opts_t *o, WOLFSSL_CTX *ctx) {
  ly_hostport_t hp;
  const char *why = NULL;
  if (ly_hostport_parse(o->ca, 1, &hp, &why) != 0)
    die("bad --ca");
  char server_id[LY_SPIFFE_ID_MAX + 1];
  ly_ca_server_id(o->td, server_id, sizeof(server_id));
  L.clients = calloc(o->conns, sizeof(*L.clients));
  L.slots = calloc((size_t)o->conns * o->inflight, sizeof(*L.slots));
  if (!L.clients || !L.slots)
    die("out of memory");
  for (unsigned i = 0; i < o->conns; i++) {
    if (ly_rpc_client_new(L.loop, &lanyard__ca__v1__ca__descriptor, hp.host,
                          hp.port, server_id, &L.clients[i]) != 0)
      die("cannot make an RPC client");
    ly_rpc_client_set_ctx(L.clients[i], ctx);
    L.nclients++;
  }
  /* Calls of one client queue on its single connection until the
   * handshake is done, then go out pipelined. */
  for (unsigned i = 0; i < o->conns; i++)
    for (unsigned j = 0; j < o->inflight; j++) {
      slot_t *s = &L.slots[(size_t)i * o->inflight + j];
      s->client = L.clients[i];
      send_sign(s);
    }
}

int main(int argc, char **argv) {
  opts_t o;
  parse_args(argc, argv, &o);
  wolfSSL_Init();
  L.loop = uv_default_loop();

  size_t csr_len;
  unsigned char *csr = load_csr(o.csr, &csr_len);
  L.req = (Lanyard__Ca__V1__SignRequest)LANYARD__CA__V1__SIGN_REQUEST__INIT;
  L.req.csr.data = csr;
  L.req.csr.len = csr_len;
  if (o.join) {
    L.req.credential_case =
        LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN;
    L.req.join_token = (char *)o.join;
  } /* else: no credential field; the client certificate is the proof */

  ly_chain_t roots = {0}, chain = {0};
  ly_key_t *key = NULL;
  WOLFSSL_CTX *ctx = make_ctx(&o, &roots, &chain, &key);
  start_clients(&o, ctx);

  uv_timer_init(L.loop, &L.warmup);
  uv_timer_init(L.loop, &L.stop);
  L.duration_ms = (uint64_t)(o.duration * 1000);
  L.server_pid = o.server_pid;
  if (L.server_pid && proc_cpu_seconds(L.server_pid) < 0)
    die("--server-pid: cannot read its /proc/PID/stat");
  uv_update_time(L.loop); /* the setup above took time: count from now */
  uv_timer_start(&L.warmup, on_warmup, WARMUP_MS, 0);
  uv_run(L.loop, UV_RUN_DEFAULT);

  double seconds = (double)(L.t_end - L.t_start) / 1e9;
  qsort(L.lat_us, L.nlat, sizeof(*L.lat_us), cmp_u32);
  printf("issued=%llu errors=%llu seconds=%.3f per_second=%.1f p50_ms=%.2f "
         "p99_ms=%.2f",
         (unsigned long long)L.issued, (unsigned long long)L.errors, seconds,
         seconds > 0 ? (double)L.issued / seconds : 0.0, percentile_ms(0.50),
         percentile_ms(0.99));
  if (L.server_pid)
    printf(" server_cpu_s=%.2f", L.cpu_end - L.cpu_start);
  printf("\n");

  int rc = uv_loop_close(L.loop) == 0 ? 0 : 1;
  wolfSSL_CTX_free(ctx);
  ly_chain_free(&roots);
  ly_chain_free(&chain);
  ly_key_free(key);
  free(csr);
  free(L.clients);
  free(L.slots);
  free(L.lat_us);
  return rc == 0 && L.issued > 0 && L.errors == 0 ? 0 : 1;
}
