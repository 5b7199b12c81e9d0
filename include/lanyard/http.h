/* A small, strict HTTP/1.1 server for the admin endpoints (health,
 * readiness, metrics), and its request parser.
 *
 * Why our own: Debian 12 packages no maintained HTTP parser (nodejs
 * http-parser is archived, llhttp is not packaged), and the admin port only
 * needs GET/HEAD/POST with tiny bodies. So the parser accepts a narrow
 * subset of RFC 9112 and refuses the rest; it is fuzzed (tests/fuzz).
 *
 * Limits, all enforced (the status a client gets in brackets):
 *   - a request head is at most LY_HTTP_HEAD_MAX bytes, through the blank
 *     line [431], with at most LY_HTTP_FIELDS_MAX header fields [431];
 *   - the path and the query are each at most 255 bytes [414];
 *   - a body is at most LY_HTTP_BODY_MAX bytes and needs Content-Length
 *     [413]; Transfer-Encoding is refused [501]; no Content-Length means
 *     no body (RFC 9112 6.3);
 *   - methods GET, HEAD and POST; any other token [501];
 *   - versions HTTP/1.0 and HTTP/1.1 [505 for another HTTP/d.d];
 *   - one request per connection: every response says Connection: close;
 *   - LY_HTTP_MAX_CONNS connections at once; more are accepted and closed
 *     at once, without a response (a 503 would cost a write per attacker
 *     connection, and probes retry anyway);
 *   - the whole request (head and body) within LY_HTTP_REQUEST_TIMEOUT_MS
 *     of accept [408], which defeats slow-drip clients;
 *   - the response written and the write side shut down within
 *     LY_HTTP_WRITE_TIMEOUT_MS, else the connection is dropped;
 *   - after the response, unread input is drained and discarded for at
 *     most LY_HTTP_LINGER_MS (or until the client closes): closing a
 *     socket with unread input sends a reset, which can destroy the
 *     response on its way (a 431 to a client still sending its 1 MB
 *     header). Nothing drained is kept.
 */
#ifndef LANYARD_HTTP_H
#define LANYARD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define LY_HTTP_HEAD_MAX 8192
#define LY_HTTP_FIELDS_MAX 64
#define LY_HTTP_BODY_MAX 1024
#define LY_HTTP_MAX_CONNS 64
#define LY_HTTP_REQUEST_TIMEOUT_MS 10000
#define LY_HTTP_WRITE_TIMEOUT_MS 10000
#define LY_HTTP_LINGER_MS 1000

/* ly_http_parse's "need more bytes": not 0, and no HTTP status. */
#define LY_HTTP_INCOMPLETE 1

typedef struct {
  char method[8];        /* "GET", "HEAD" or "POST" */
  char path[256];        /* raw (not percent-decoded), without the query;
                            starts with '/' */
  char query[256];       /* raw, after the first '?', or "" */
  int http10;            /* 1 for an HTTP/1.0 request */
  size_t content_length; /* 0 without Content-Length */
  char accept[128];      /* the first Accept field's value, truncated, or "" */
  char host[256];        /* the Host field's value, or "" (HTTP/1.0) */
  int from_browser;      /* an Origin or Sec-Fetch-* field: a web page sent
                            it (refuse state changes: CSRF) */
  int peer_loopback;     /* set by the server: the client is 127.0.0.0/8 or
                            ::1 (so in this host or pod) */
} ly_http_request_t;

/* Parses one request head from buf[0..len); buf need not be
 * NUL-terminated, and bytes after the head (a body) are not looked at.
 *
 * Returns
 *   0                   the head is complete and valid: *req is filled and
 *                       *head_len is its length through "\r\n\r\n";
 *   LY_HTTP_INCOMPLETE  every byte so far is valid, more are needed;
 *   a status (>= 400)   to answer with, then close:
 *     400  malformed request line or field: a bare LF or CR (line ends
 *          must be CRLF), NUL or other control bytes, whitespace where the
 *          grammar has none (before a field's colon, around tokens, two
 *          spaces in the request line), an empty line before the request
 *          line, a field without a colon, obs-fold (a line starting with
 *          SP or HT), a target that is not origin-form ("http://x/y",
 *          "*"), a byte a URI may not hold, '%' not followed by two hex
 *          digits, a malformed version ("HTTP/1.1x", "http/1.1"), two
 *          Content-Length fields (even equal ones), a Content-Length that
 *          is not digits only, an HTTP/1.1 request without Host or with
 *          two;
 *     413  Content-Length above LY_HTTP_BODY_MAX;
 *     414  path or query longer than 255 bytes (a 9 KiB path gets 414,
 *          not 431: it is seen as soon as byte 256 of the path arrives);
 *     431  no complete head within the first LY_HTTP_HEAD_MAX bytes
 *          (returned as soon as len reaches it), or more than
 *          LY_HTTP_FIELDS_MAX fields;
 *     501  a method other than GET, HEAD, POST (methods are
 *          case-sensitive: "get" is an unknown method), or any
 *          Transfer-Encoding field;
 *     505  a well-formed version other than HTTP/1.0 and HTTP/1.1.
 * Errors are found as early as the bytes allow, also in an incomplete
 * head; the first problem in byte order decides the status. Field names
 * are case-insensitive. On an error, req->method is set if the request
 * line got that far (a HEAD gets no body, even in an error response);
 * the rest of *req and *head_len are unspecified.
 *
 * The status codes are positive (not Lanyard's negative errors) because
 * they are the answer, and every caller sends them as they are. Pure: no
 * I/O, no allocation, no state between calls. */
int ly_http_parse(const char *buf, size_t len, ly_http_request_t *req,
                  size_t *head_len);

typedef struct {
  int status;               /* 200..599; anything else becomes a 500 */
  const char *content_type; /* NULL: "text/plain; charset=utf-8" */
  char *body;               /* malloc'd; the server frees it; may be NULL */
  size_t len;               /* bytes of body */
  const char *allow;        /* for 405: the Allow field's value, or NULL */
} ly_http_response_t;

/* Called on the server's loop for each complete request (its body, if
 * any, has been read and dropped). res starts zeroed; fill it before
 * returning. content_type and allow must stay valid until the handler
 * returns (the server copies them); a value holding a control byte turns
 * the response into a 500. For HEAD, fill res as for GET: the server
 * sends the head only. Must not block: it runs on the agent's control
 * loop. May call ly_http_server_stop. */
typedef void (*ly_http_handler_cb)(const ly_http_request_t *req,
                                   ly_http_response_t *res, void *data);

typedef struct ly_http_server_s ly_http_server_t;

/* Answering later, for a handler whose answer needs work off the loop (a
 * probe of the app): ly_http_defer, called inside the handler, keeps the
 * connection open after the handler returns with res untouched, and
 * ly_http_finish (on the loop's thread, exactly once) sends the answer,
 * taking res->body. If the server stopped meanwhile, finish only frees. */
typedef struct ly_http_pending_s ly_http_pending_t;
ly_http_pending_t *ly_http_defer(const ly_http_request_t *req);
void ly_http_finish(ly_http_pending_t *p, ly_http_response_t *res);

/* Listens on host (an IPv4 or IPv6 literal, without brackets) and port (0
 * picks one: see ly_http_server_port), and calls handler(req, res, data)
 * for each request. Returns 0 and *out, or a negative code with a message
 * in err ("admin 127.0.0.1:15020: address already in use"); then nothing
 * is left open (the listener's handle may still be closing: run the loop
 * before uv_loop_close). Every callback runs on loop's thread. */
int ly_http_server_start(uv_loop_t *loop, const char *host, uint16_t port,
                         ly_http_handler_cb handler, void *data,
                         ly_http_server_t **out, char *err, size_t errlen);

/* The port the server listens on, or 0 if unknown. */
uint16_t ly_http_server_port(const ly_http_server_t *s);

/* Closes the listener and every connection at once (responses in flight
 * are dropped); the handler is not called again. The server's memory is
 * freed asynchronously, once every handle has closed: keep running the
 * loop. Safe from inside the handler. Call it once (the server may be
 * gone after); NULL is a no-op. */
void ly_http_server_stop(ly_http_server_t *s);

#endif
