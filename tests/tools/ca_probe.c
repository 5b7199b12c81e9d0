/* ca_probe: sends one request to a running CA and prints its answer, for
 * the integration tests. CSRs come from files (made by the openssl CLI, so
 * the CA is tested against an independent encoder).
 *
 *   ca_probe --ca HOST:PORT --bundle bundle.pem --td TD
 *            [--cert svid.pem --key svid.key]      mTLS client identity
 *            sign --csr FILE [--join-token T | --k8s-token T] [--ttl S]
 *            [--out chain.pem]
 *   ca_probe ... bundle
 *   ca_probe ... report --spiffe-id ID [--instance NAME] [--attempts N]
 *                            a Report claiming ID: N inbound attempts, all
 *                            successful
 *   ca_probe ... raw HEX     write raw bytes after the handshake, print
 *                            the first frame the server answers with
 *
 * Prints "code=NAME message=..." and exits 0 when an answer arrived.
 */
#include "ca/ca.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/rpc.h"
#include "lanyard/tls.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/wolfcrypt/asn_public.h>

static int answered;
static const char *out_path;

static void die(const char *msg) {
  fprintf(stderr, "ca_probe: %s\n", msg);
  exit(2);
}

static char *slurp(const char *path, size_t *len) {
  char *data = NULL;
  if (ly_file_read(path, 1u << 20, &data, len) != 0)
    die("cannot read a file");
  return data;
}

static void on_done(int code, const char *message, const ProtobufCMessage *m,
                    void *data) {
  ly_rpc_client_t *c = data;
  answered = 1;
  printf("code=%s message=%s\n", ly_rpc_code_name(code), message);
  if (code == LY_RPC_OK && out_path &&
      m->descriptor == &lanyard__ca__v1__sign_response__descriptor) {
    const Lanyard__Ca__V1__SignResponse *r =
        (const Lanyard__Ca__V1__SignResponse *)m;
    ly_chain_t chain = {0};
    for (size_t i = 0; i < r->n_chain; i++)
      ly_chain_push(&chain, r->chain[i].data, r->chain[i].len);
    char *pem;
    size_t len;
    if (ly_chain_to_pem(&chain, &pem, &len) == 0) {
      ly_file_write_atomic(out_path, pem, len, 0644);
      free(pem);
    }
    ly_chain_free(&chain);
  }
  ly_rpc_client_free(c);
}

/* raw mode: a bare TLS connection */
static const char *raw_hex;
static ly_rpc_reader_t raw_reader;

static void raw_handshake(ly_tls_conn_t *c, int status) {
  if (status != 0) {
    printf("handshake_failed %s\n", ly_tls_conn_error(c));
    ly_tls_conn_close(c);
    return;
  }
  size_t n = strlen(raw_hex) / 2;
  unsigned char *b = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    sscanf(raw_hex + 2 * i, "%2hhx", &b[i]);
  ly_tls_conn_write(c, b, n);
  free(b);
}

static void raw_data(ly_tls_conn_t *c, char *buf, size_t len) {
  int err = 0;
  ly_rpc_reader_feed(&raw_reader, buf, len);
  free(buf);
  ProtobufCMessage *m = ly_rpc_reader_next(&raw_reader, &err);
  if (!m)
    return;
  const Lanyard__Ca__V1__Frame *f = (const Lanyard__Ca__V1__Frame *)m;
  printf("code=%s message=%s\n", ly_rpc_code_name((int)f->code), f->message);
  answered = 1;
  protobuf_c_message_free_unpacked(m, NULL);
  ly_tls_conn_close(c);
}

static void raw_end(ly_tls_conn_t *c, int status) {
  if (!answered)
    printf("closed\n");
  answered = 1;
  ly_tls_conn_close(c);
}

static void raw_closed(ly_tls_conn_t *c) {
  ly_rpc_reader_free(&raw_reader);
}

static const ly_tls_conn_cbs_t raw_cbs = {
    .on_handshake = raw_handshake,
    .on_data = raw_data,
    .on_end = raw_end,
    .on_close = raw_closed,
};

static void raw_connected(uv_connect_t *req, int status) {
  ly_tls_conn_t *c = req->data;
  if (status != 0) {
    printf("connect_failed %s\n", uv_strerror(status));
    ly_tls_conn_close(c);
    return;
  }
  ly_tls_set_alpn(c->ssl, LY_ALPN_CA);
  ly_tls_conn_start(c);
}

int main(int argc, char **argv) {
  const char *ca = NULL, *bundle = NULL, *td = NULL, *cert = NULL, *key = NULL,
             *csr_path = NULL, *join = NULL, *k8s = NULL, *report_id = NULL,
             *instance = "ca_probe";
  unsigned attempts = 0;
  unsigned ttl = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i += 2) {
    if (i + 1 >= argc)
      die("missing value");
    if (!strcmp(argv[i], "--ca"))
      ca = argv[i + 1];
    else if (!strcmp(argv[i], "--bundle"))
      bundle = argv[i + 1];
    else if (!strcmp(argv[i], "--td"))
      td = argv[i + 1];
    else if (!strcmp(argv[i], "--cert"))
      cert = argv[i + 1];
    else if (!strcmp(argv[i], "--key"))
      key = argv[i + 1];
    else
      die("unknown option");
  }
  if (!ca || !bundle || !td || i >= argc)
    die("usage: see the comment at the top of ca_probe.c");
  const char *cmd = argv[i++];
  if (!strcmp(cmd, "raw")) {
    if (i >= argc)
      die("raw needs HEX");
    raw_hex = argv[i++];
  }
  for (; i < argc; i += 2) {
    if (i + 1 >= argc)
      die("missing value");
    if (!strcmp(argv[i], "--csr"))
      csr_path = argv[i + 1];
    else if (!strcmp(argv[i], "--join-token"))
      join = argv[i + 1];
    else if (!strcmp(argv[i], "--k8s-token"))
      k8s = argv[i + 1];
    else if (!strcmp(argv[i], "--ttl"))
      ttl = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--out"))
      out_path = argv[i + 1];
    else if (!strcmp(argv[i], "--spiffe-id"))
      report_id = argv[i + 1];
    else if (!strcmp(argv[i], "--instance"))
      instance = argv[i + 1];
    else if (!strcmp(argv[i], "--attempts"))
      attempts = (unsigned)atoi(argv[i + 1]);
    else
      die("unknown argument");
  }

  wolfSSL_Init();
  ly_hostport_t hp;
  const char *why = NULL;
  if (ly_hostport_parse(ca, 1, &hp, &why) != 0)
    die("bad --ca");
  size_t len;
  char *pem = slurp(bundle, &len);
  ly_chain_t roots = {0}, chain = {0};
  if (ly_chain_from_pem(pem, len, &roots, &why) != 0)
    die("bad bundle");
  free(pem);
  ly_key_t *k = NULL;
  if (cert && key) {
    pem = slurp(cert, &len);
    if (ly_chain_from_pem(pem, len, &chain, &why) != 0)
      die("bad --cert");
    free(pem);
    pem = slurp(key, &len);
    if (ly_key_from_pem(pem, len, &k, &why) != 0)
      die("bad --key");
    free(pem);
  }
  ly_tls_ctx_opts_t o = {
      .is_server = 0, .roots = &roots, .chain = &chain, .key = k};
  WOLFSSL_CTX *ctx;
  if (ly_tls_ctx_new(&o, &ctx, &why) != 0)
    die(why);
  uv_loop_t *loop = uv_default_loop();

  if (!strcmp(cmd, "raw")) {
    ly_tls_conn_t *c;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(hp.host, hp.port, (struct sockaddr_in *)&ss) != 0)
      die("raw needs an IPv4 --ca");
    static uv_connect_t req;
    ly_tls_conn_new(loop, ctx, 0, &raw_cbs, NULL, &c);
    req.data = c;
    uv_tcp_connect(&req, &c->tcp, (struct sockaddr *)&ss, raw_connected);
  } else {
    char server_id[LY_SPIFFE_ID_MAX + 1];
    ly_ca_server_id(td, server_id, sizeof(server_id));
    ly_rpc_client_t *client;
    ly_rpc_client_new(loop, &lanyard__ca__v1__ca__descriptor, hp.host, hp.port,
                      server_id, &client);
    ly_rpc_client_set_ctx(client, ctx);
    if (!strcmp(cmd, "sign")) {
      if (!csr_path)
        die("sign needs --csr");
      char *raw = slurp(csr_path, &len);
      unsigned char *der = malloc(len);
      int dlen = wc_CertPemToDer((unsigned char *)raw, (int)len, der, (int)len,
                                 CERTREQ_TYPE);
      if (dlen <= 0) { /* DER already */
        memcpy(der, raw, len);
        dlen = (int)len;
      }
      Lanyard__Ca__V1__SignRequest req = LANYARD__CA__V1__SIGN_REQUEST__INIT;
      req.csr.data = der;
      req.csr.len = (size_t)dlen;
      req.ttl_seconds = ttl;
      if (join) {
        req.credential_case =
            LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN;
        req.join_token = (char *)join;
      } else if (k8s) {
        req.credential_case =
            LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_K8S_TOKEN;
        req.k8s_token = (char *)k8s;
      }
      ly_rpc_client_call(client, "Sign", &req.base, 10000, on_done, client);
      free(raw);
      free(der);
    } else if (!strcmp(cmd, "bundle")) {
      Lanyard__Ca__V1__TrustBundleRequest req =
          LANYARD__CA__V1__TRUST_BUNDLE_REQUEST__INIT;
      ly_rpc_client_call(client, "TrustBundle", &req.base, 10000, on_done,
                         client);
    } else if (!strcmp(cmd, "report")) {
      if (!report_id)
        die("report needs --spiffe-id");
      Lanyard__Ca__V1__DirectionReport in =
          LANYARD__CA__V1__DIRECTION_REPORT__INIT;
      Lanyard__Ca__V1__DirectionReport out =
          LANYARD__CA__V1__DIRECTION_REPORT__INIT;
      Lanyard__Ca__V1__RateWindow w = LANYARD__CA__V1__RATE_WINDOW__INIT;
      Lanyard__Ca__V1__RateWindow *wp = &w;
      w.seconds = 300;
      w.attempts = w.successes = attempts;
      in.attempts = in.successes = attempts;
      in.n_windows = 1;
      in.windows = &wp;
      Lanyard__Ca__V1__ReportRequest req =
          LANYARD__CA__V1__REPORT_REQUEST__INIT;
      req.spiffe_id = (char *)report_id;
      req.instance = (char *)instance;
      req.interval_seconds = 60;
      req.inbound = &in;
      req.outbound = &out;
      req.not_after = 4102444800; /* 2100: stands out in the table */
      ly_rpc_client_call(client, "Report", &req.base, 10000, on_done, client);
    } else {
      die("unknown command");
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  wolfSSL_CTX_free(ctx);
  ly_chain_free(&roots);
  ly_chain_free(&chain);
  ly_key_free(k);
  return answered ? 0 : 1;
}
