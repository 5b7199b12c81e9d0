/* A blocking HTTP(S) client: one request, Connection: close, the whole
 * answer read until the server closes. The terminal commands (lanyard
 * status, mesh) use it for plain GETs; the CA uses it, from a libuv worker
 * thread and never on its event loop, to talk to the Kubernetes API server
 * over TLS (the server verified against a given CA file and host name). */
#define _GNU_SOURCE /* asprintf, strcasestr */
#include "admin/admin.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/intercept.h"

#include <wolfssl/options.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ANSWER_MAX (16u << 20)

static int connect_to(const ly_hostport_t *hp, int timeout_ms) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%u", hp->port);
  if (getaddrinfo(hp->host, port, &hints, &ai) != 0)
    return -1;
  int fd = -1;
  for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  return fd;
}

/* The connection: a socket, with TLS over it when ssl is set. */
typedef struct {
  int fd;
  WOLFSSL *ssl;
} conn_t;

static int conn_write(conn_t *c, const char *p, size_t n) {
  while (n > 0) {
    int w = c->ssl ? wolfSSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static ssize_t conn_read(conn_t *c, char *p, size_t n) {
  if (!c->ssl)
    return read(c->fd, p, n);
  int r = wolfSSL_read(c->ssl, p, (int)n);
  if (r > 0)
    return r;
  int err = wolfSSL_get_error(c->ssl, r);
  /* A server that closes without close_notify ends the answer too (the
   * length is checked by the framing when there is any). */
  return err == WOLFSSL_ERROR_ZERO_RETURN || err == SOCKET_PEER_CLOSED_E ? 0
                                                                         : -1;
}

/* Reads until the peer closes. */
static int read_all(conn_t *c, char **out, size_t *out_len, const char **why) {
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap + 1);
  ssize_t r = 0;
  while (buf && (r = conn_read(c, buf + len, cap - len)) > 0) {
    len += (size_t)r;
    if (len == cap) {
      char *grown = cap < ANSWER_MAX ? realloc(buf, cap * 2 + 1) : NULL;
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  if (!buf || r < 0) {
    free(buf);
    *why = r < 0 ? "no answer in time" : "answer too large";
    return LY_EUNAVAILABLE;
  }
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  return 0;
}

/* Undoes Transfer-Encoding: chunked in place (API servers use it). */
static int dechunk(char *body, size_t len, size_t *out_len) {
  size_t in = 0, out = 0;
  for (;;) {
    char *end;
    if (in >= len || !isxdigit((unsigned char)body[in]))
      return -1;
    unsigned long n = strtoul(body + in, &end, 16);
    char *crlf = strstr(end, "\r\n");
    if (!crlf)
      return -1;
    in = (size_t)(crlf - body) + 2;
    if (n == 0)
      break;
    if (n > len - in)
      return -1;
    memmove(body + out, body + in, n);
    out += n;
    in += n + 2;
  }
  body[out] = '\0';
  *out_len = out;
  return 0;
}

/* Status line, headers, and the body moved to the start of buf. */
static int parse_answer(char *buf, size_t len, int *status, const char **why) {
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
    *why = "not an HTTP answer";
    return LY_EPROTO;
  }
  *sep = '\0';
  int chunked = 0;
  for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
    if (!strncasecmp(h + 2, "transfer-encoding:", 18) &&
        strcasestr(h + 20, "chunked"))
      chunked = 1;
  sep += 4;
  size_t body_len = len - (size_t)(sep - buf);
  memmove(buf, sep, body_len + 1);
  if (chunked && dechunk(buf, body_len, &body_len) != 0) {
    *why = "malformed chunked answer";
    return LY_EPROTO;
  }
  return 0;
}

int ly_url_parse(const char *url, ly_url_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  const char *rest;
  if (!strncmp(url, "https://", 8)) {
    out->tls = 1;
    rest = url + 8;
  } else if (!strncmp(url, "http://", 7)) {
    rest = url + 7;
  } else {
    *why = "not an http:// or https:// URL";
    return LY_ECONFIG;
  }
  size_t auth = strcspn(rest, "/?#");
  char hostport[300];
  LY_ENSURE_WHY(auth > 0 && auth < sizeof(hostport) - 8, LY_ECONFIG, why,
                "bad host in URL");
  memcpy(hostport, rest, auth);
  hostport[auth] = '\0';
  /* no port: the scheme's */
  const char *colon = strrchr(hostport, ':');
  if (!colon || (hostport[0] == '[' && colon < strchr(hostport, ']')))
    snprintf(hostport + auth, sizeof(hostport) - auth, ":%d",
             out->tls ? 443 : 80);
  LY_GUARD(ly_hostport_parse(hostport, 1, &out->hp, why));
  snprintf(out->path, sizeof(out->path), "%s", rest[auth] ? rest + auth : "/");
  LY_ENSURE_WHY(strlen(rest + auth) < sizeof(out->path), LY_ECONFIG, why,
                "URL path too long");
  return 0;
}

static int tls_connect(conn_t *c, const ly_http_req_t *req, const char **why) {
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  int rc = LY_ETLS;
  if (!ctx) {
    *why = "cannot make a TLS context";
    return rc;
  }
  if (!req->ca_file || wolfSSL_CTX_load_verify_locations(
                           ctx, req->ca_file, NULL) != WOLFSSL_SUCCESS) {
    *why = "cannot load the CA file";
    goto out;
  }
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
  c->ssl = wolfSSL_new(ctx);
  if (!c->ssl || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
    *why = "cannot start TLS";
    goto out;
  }
  const char *host = req->url->hp.host;
  struct in6_addr a6;
  int is_ip =
      inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
  /* The name the certificate must carry (a DNS SAN; an address is checked
   * against the names too, this wolfSSL build having no IP SAN check: in
   * a cluster the API server is kubernetes.default.svc). */
  if ((!is_ip &&
       wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, host,
                      (unsigned short)strlen(host)) != WOLFSSL_SUCCESS) ||
      wolfSSL_check_domain_name(c->ssl, host) != WOLFSSL_SUCCESS) {
    *why = "cannot set the server name";
    goto out;
  }
  if (wolfSSL_connect(c->ssl) != WOLFSSL_SUCCESS) {
    int err = wolfSSL_get_error(c->ssl, 0);
    *why = err == DOMAIN_NAME_MISMATCH
               ? "server certificate is for another name"
           : err == ASN_NO_SIGNER_E || err == VERIFY_CERT_ERROR
               ? "server certificate not signed by the CA file"
               : "TLS handshake failed";
    goto out;
  }
  rc = 0;
out:
  wolfSSL_CTX_free(ctx); /* the session keeps its reference */
  return rc;
}

int ly_http_fetch(const ly_http_req_t *req, int *status, char **body,
                  size_t *body_len, const char **why) {
  conn_t c = {.fd = connect_to(&req->url->hp, req->timeout_ms)};
  LY_ENSURE_WHY(c.fd >= 0, LY_EUNAVAILABLE, why, "cannot connect");
  int rc = 0;
  char *head = NULL, *buf = NULL;
  size_t len = 0;
  if (req->url->tls && (rc = tls_connect(&c, req, why)) != 0)
    goto out;
  /* Host: the name connected to, or, for the admin servers, the address. */
  char host[300];
  snprintf(host, sizeof(host), "%s", req->url->hp.host);
  if (!req->url->tls) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(c.fd, (struct sockaddr *)&ss, &sl) == 0)
      ly_addr_format((struct sockaddr *)&ss, host, sizeof(host));
  }
  char auth[64] = "";
  if (req->bearer)
    snprintf(auth, sizeof(auth), "Authorization: Bearer ");
  char ctype[128] = "";
  if (req->content_type)
    snprintf(ctype, sizeof(ctype), "Content-Type: %s\r\n", req->content_type);
  int n = asprintf(&head,
                   "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                   "User-Agent: lanyard\r\nAccept: application/json, */*\r\n"
                   "%s%s%s%sContent-Length: %zu\r\n\r\n",
                   req->method ? req->method : "GET", req->url->path, host,
                   auth, req->bearer ? req->bearer : "",
                   req->bearer ? "\r\n" : "", ctype, req->body_len);
  if (n < 0) {
    head = NULL;
    rc = LY_EUNAVAILABLE;
    *why = "out of memory";
    goto out;
  }
  if (conn_write(&c, head, (size_t)n) != 0 ||
      (req->body_len && conn_write(&c, req->body, req->body_len) != 0)) {
    rc = LY_EUNAVAILABLE;
    *why = "cannot send the request";
    goto out;
  }
  if ((rc = read_all(&c, &buf, &len, why)) != 0 ||
      (rc = parse_answer(buf, len, status, why)) != 0)
    goto out;
  *body = buf;
  if (body_len)
    *body_len = strlen(buf);
  buf = NULL;
out:
  if (head) {
    /* the bearer token was in it */
    ly_wipe(head, strlen(head));
    free(head);
  }
  free(buf);
  if (c.ssl) {
    wolfSSL_shutdown(c.ssl);
    wolfSSL_free(c.ssl);
  }
  close(c.fd);
  return rc;
}

int ly_http_get(const ly_hostport_t *hp, const char *path, int timeout_ms,
                int *status, char **body, const char **why) {
  ly_url_t url = {.hp = *hp};
  snprintf(url.path, sizeof(url.path), "%s", path);
  ly_http_req_t req = {.url = &url, .timeout_ms = timeout_ms};
  return ly_http_fetch(&req, status, body, NULL, why);
}
