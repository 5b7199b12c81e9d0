/* The CA's admin endpoints (127.0.0.1:15014 by default):
 *
 *   GET /metrics    Prometheus text: issuance by credential and result,
 *                   signing time, root and intermediate expiry, reports,
 *                   and the mesh's gauges
 *   GET /healthz    200 while the process serves
 *   GET /readyz     200 while the CA can sign, else 503 and why
 *   GET /status     JSON: trust domain, signing certificate, roots
 *   GET /api/mesh   JSON: the mesh-wide report (lanyard mesh reads it)
 *   GET /           the same as a web page that refreshes itself
 */
#include "admin/admin.h"
#include "ca/ca.h"

#include "lanyard/prom.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* agent/ca/mesh_page.html, embedded at build time. */
extern const char ly_mesh_page_html[];
extern const unsigned long ly_mesh_page_html_len;

int ly_ca_ready(const ly_ca_t *ca, const char **why) {
  const ly_chain_t *chain = ly_signer_chain(ca->signer);
  ly_cert_info_t info;
  int64_t now = (int64_t)time(NULL);
  if (ly_cert_info(chain->certs[0].der, chain->certs[0].len, &info) != 0) {
    *why = "the signing certificate does not parse";
    return 0;
  }
  if (now < info.not_before || now >= info.not_after) {
    *why = "the signing certificate is outside its validity";
    return 0;
  }
  if (ca->roots.n == 0) {
    *why = "the bundle holds no root";
    return 0;
  }
  return 1;
}

static void cert_expiry(ly_buf_t *b, const char *kind, const ly_der_t *c) {
  ly_cert_info_t info;
  char l[160];
  if (ly_cert_info(c->der, c->len, &info) != 0)
    return;
  snprintf(l, sizeof(l), "kind=\"%s\",serial=\"%s\"", kind, info.serial_hex);
  ly_prom_u64(b, "lanyard_ca_certificate_expiry_timestamp_seconds", l,
              (uint64_t)info.not_after);
}

static char *metrics(ly_ca_t *ca, size_t *len) {
  ly_buf_t b = {0};
  char l[160], code[32];
  const ly_ca_stats_t *st = &ca->stats;
  const char *why;
  ly_prom_family(&b, "lanyard_build_info", "gauge", "The running version.");
  ly_prom_u64(&b, "lanyard_build_info",
              "version=\"" LANYARD_VERSION "\",component=\"ca\"", 1);
  ly_prom_family(&b, "lanyard_ca_ready", "gauge", "1 while the CA can sign.");
  ly_prom_u64(&b, "lanyard_ca_ready", NULL, (uint64_t)ly_ca_ready(ca, &why));
  ly_prom_family(&b, "lanyard_ca_sign_requests_total", "counter",
                 "Sign calls by credential and result (a status code; ok "
                 "means an SVID was issued).");
  for (int c = 0; c < LY_CRED__COUNT; c++)
    for (int r = 0; r < LY_RPC_NCODES; r++) {
      if (r != LY_RPC_OK && !st->sign[c][r])
        continue;
      ly_rpc_code_lower(r, code, sizeof(code));
      snprintf(l, sizeof(l), "credential=\"%s\",result=\"%s\"",
               ly_credential_name[c], code);
      ly_prom_u64(&b, "lanyard_ca_sign_requests_total", l, st->sign[c][r]);
    }
  ly_prom_family(&b, "lanyard_ca_sign_duration_seconds", "histogram",
                 "Time to sign one SVID.");
  ly_prom_histogram(&b, "lanyard_ca_sign_duration_seconds", NULL,
                    ly_sign_bucket_le, st->sign_bucket, LY_SIGN_BUCKETS,
                    st->sign_seconds);
  ly_prom_family(&b, "lanyard_ca_reports_total", "counter",
                 "Agent reports by result.");
  for (int r = 0; r < LY_RPC_NCODES; r++) {
    if (r != LY_RPC_OK && !st->reports[r])
      continue;
    ly_rpc_code_lower(r, code, sizeof(code));
    snprintf(l, sizeof(l), "result=\"%s\"", code);
    ly_prom_u64(&b, "lanyard_ca_reports_total", l, st->reports[r]);
  }
  ly_prom_family(&b, "lanyard_ca_certificate_expiry_timestamp_seconds", "gauge",
                 "Expiry of the bundle's roots and the signing "
                 "intermediate (unix time).");
  const ly_chain_t *chain = ly_signer_chain(ca->signer);
  cert_expiry(&b, "intermediate", &chain->certs[0]);
  for (size_t i = 0; i < ca->roots.n; i++)
    cert_expiry(&b, "root", &ca->roots.certs[i]);
  ly_mesh_metrics(ca->mesh, uv_now(ca->loop), &b);
  return ly_buf_take(&b, len);
}

static json_t *cert_json(const ly_der_t *c) {
  ly_cert_info_t info;
  if (ly_cert_info(c->der, c->len, &info) != 0)
    return json_null();
  return json_pack("{s:s,s:I,s:I}", "serial", info.serial_hex, "not_before",
                   (json_int_t)info.not_before, "not_after",
                   (json_int_t)info.not_after);
}

static char *status(ly_ca_t *ca, size_t *len) {
  const char *why = "";
  int ready = ly_ca_ready(ca, &why);
  json_t *roots = json_array();
  for (size_t i = 0; i < ca->roots.n; i++)
    json_array_append_new(roots, cert_json(&ca->roots.certs[i]));
  uint64_t issued = 0;
  for (int c = 0; c < LY_CRED__COUNT; c++)
    issued += ca->stats.sign[c][LY_RPC_OK];
  json_t *doc = json_pack("{s:s,s:b,s:s,s:o,s:o,s:I}", "trust_domain",
                          ca->cfg->trust_domain, "ready", ready,
                          "not_ready_reason", ready ? "" : why, "signing",
                          cert_json(&ly_signer_chain(ca->signer)->certs[0]),
                          "roots", roots, "svids_issued", (json_int_t)issued);
  char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
  json_decref(doc);
  *len = text ? strlen(text) : 0;
  return text;
}

static void handle(const ly_http_request_t *req, ly_http_response_t *res,
                   void *data) {
  ly_ca_t *ca = data;
  size_t len = 0;
  const char *why = NULL;
  if (!ly_admin_host_ok(req, res) || !ly_admin_method(req, res, "GET, HEAD"))
    return;
  if (strcmp(req->path, "/healthz") == 0) {
    ly_admin_body(res, "text/plain; charset=utf-8", strdup("ok\n"), 3);
  } else if (strcmp(req->path, "/readyz") == 0) {
    if (ly_ca_ready(ca, &why)) {
      ly_admin_body(res, "text/plain; charset=utf-8", strdup("ready\n"), 6);
    } else {
      char msg[160];
      snprintf(msg, sizeof(msg), "not ready: %s\n", why);
      ly_admin_body(res, "text/plain; charset=utf-8", strdup(msg), strlen(msg));
      res->status = 503;
    }
  } else if (strcmp(req->path, "/metrics") == 0) {
    char *body = metrics(ca, &len);
    ly_admin_body(res, LY_PROM_CONTENT_TYPE, body, len);
  } else if (strcmp(req->path, "/status") == 0) {
    char *body = status(ca, &len);
    ly_admin_body(res, "application/json", body, len);
  } else if (strcmp(req->path, "/api/mesh") == 0) {
    char *body =
        ly_mesh_json(ca->mesh, ca->cfg->trust_domain, &ca->roots,
                     ly_signer_chain(ca->signer), uv_now(ca->loop), &len);
    ly_admin_body(res, "application/json", body, len);
  } else if (strcmp(req->path, "/") == 0) {
    char *body = malloc(ly_mesh_page_html_len + 1);
    if (body)
      memcpy(body, ly_mesh_page_html, ly_mesh_page_html_len);
    ly_admin_body(res, "text/html; charset=utf-8", body, ly_mesh_page_html_len);
  } else {
    ly_admin_not_found(res);
  }
}

int ly_ca_admin_start(ly_ca_t *ca, ly_http_server_t **out, char *err,
                      size_t errlen) {
  return ly_http_server_start(ca->loop, ca->cfg->admin.host,
                              ca->cfg->admin.port, handle, ca, out, err,
                              errlen);
}
