/* The CA's RPC: protobuf-c services over TLS 1.3 (ALPN "lanyard-ca/1").
 *
 * Wire format: a 4-byte big-endian length, then a lanyard.ca.v1.Frame of
 * at most LY_RPC_FRAME_MAX bytes. A request Frame names the method and
 * carries the packed request in `body`; the response Frame has the same
 * call_id, a gRPC-style code, a message for people and, on OK, the packed
 * response. Methods and message types come from the protobuf-c service
 * descriptor; nothing is serialized by hand.
 */
#ifndef LANYARD_RPC_H
#define LANYARD_RPC_H

#include "lanyard/tls_conn.h"
#include "lanyard/x509.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <uv.h>

#define LY_RPC_FRAME_MAX (64 * 1024)
/* A Report's packed size: agents trim their top peers to fit, the CA
 * refuses bigger ones (its table holds one per agent). */
#define LY_REPORT_MAX (8 * 1024)

/* Codes: the values of lanyard.ca.v1.Code (gRPC's numbers). */
enum {
  LY_RPC_OK = 0,
  LY_RPC_CANCELLED = 1,
  LY_RPC_UNKNOWN = 2,
  LY_RPC_INVALID_ARGUMENT = 3,
  LY_RPC_DEADLINE_EXCEEDED = 4,
  LY_RPC_NOT_FOUND = 5,
  LY_RPC_PERMISSION_DENIED = 7,
  LY_RPC_RESOURCE_EXHAUSTED = 8,
  LY_RPC_FAILED_PRECONDITION = 9,
  LY_RPC_UNIMPLEMENTED = 12,
  LY_RPC_INTERNAL = 13,
  LY_RPC_UNAVAILABLE = 14,
  LY_RPC_UNAUTHENTICATED = 16,
  LY_RPC_NCODES = 17
};

/* "PERMISSION_DENIED", ... */
const char *ly_rpc_code_name(int code);
/* The same in lowercase ("permission_denied"), for metric labels. */
const char *ly_rpc_code_lower(int code, char *out, size_t len);

/* ---- framing (shared by both ends) ------------------------------------- */

/* Packs a Frame with its length prefix into a malloc'd buffer. */
int ly_rpc_frame_pack(uint32_t call_id, const char *method, int code,
                      const char *message, const ProtobufCMessage *body,
                      uint8_t **out, size_t *out_len);

/* Accumulates bytes and yields whole frames. */
typedef struct {
  uint8_t *buf;
  size_t off, len, cap; /* unread bytes are buf[off..len) */
} ly_rpc_reader_t;

/* Appends data. LY_ETOO_BIG when a frame announces more than the cap. */
int ly_rpc_reader_feed(ly_rpc_reader_t *r, const void *data, size_t len);
/* Next whole frame, unpacked (free with protobuf_c_message_free_unpacked),
 * or NULL when more bytes are needed. *err: 0, LY_EPARSE or LY_ETOO_BIG. */
ProtobufCMessage *ly_rpc_reader_next(ly_rpc_reader_t *r, int *err);
void ly_rpc_reader_free(ly_rpc_reader_t *r);

/* Wipes the string and bytes fields of a message (credentials in
 * requests), before it is freed. */
void ly_rpc_wipe_message(ProtobufCMessage *m);

/* ---- server -------------------------------------------------------------- */

typedef struct ly_rpc_server_s ly_rpc_server_t;
/* One call in progress; the service's closure_data. */
typedef struct ly_rpc_call_s ly_rpc_call_t;

/* Serves `service` (a protobuf-c service whose methods receive an
 * ly_rpc_call_t * as closure_data) on `addr`. Takes a reference on ctx.
 * Each method must call its closure exactly once, with the response, or
 * with NULL after ly_rpc_call_fail. */
int ly_rpc_server_start(uv_loop_t *loop, const struct sockaddr *addr,
                        WOLFSSL_CTX *ctx, ProtobufCService *service,
                        ly_rpc_server_t **out);
/* New connections use ctx from now on (a rotated serving certificate). */
void ly_rpc_server_set_ctx(ly_rpc_server_t *s, WOLFSSL_CTX *ctx);
/* Stops listening and closes every connection; frees when done. */
void ly_rpc_server_stop(ly_rpc_server_t *s);

void ly_rpc_call_fail(ly_rpc_call_t *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The TLS session of the call. */
WOLFSSL *ly_rpc_call_ssl(ly_rpc_call_t *call);
/* The certificates the client presented (leaf first; empty when it sent
 * none), as captured during the handshake by a context made with
 * capture_peer_chain. */
const ly_chain_t *ly_rpc_call_peer_chain(ly_rpc_call_t *call);
/* "ip:port" of the caller, for logs. */
const char *ly_rpc_call_peer(ly_rpc_call_t *call);

/* ---- client -------------------------------------------------------------- */

typedef struct ly_rpc_client_s ly_rpc_client_t;

/* The result of a call: code and message (static or the server's), and on
 * LY_RPC_OK the unpacked response, freed after the callback returns. */
typedef void (*ly_rpc_done_cb)(int code, const char *message,
                               const ProtobufCMessage *response, void *data);

/* A client for `service` at host:port; the server must present the SPIFFE
 * ID `server_id`. Connects lazily, keeps the connection for later calls. */
int ly_rpc_client_new(uv_loop_t *loop, const ProtobufCServiceDescriptor *svc,
                      const char *host, uint16_t port, const char *server_id,
                      ly_rpc_client_t **out);
/* TLS context for connections from now on (our identity changed); takes a
 * reference. The current connection is closed once it has no call in
 * flight, so renewals always present the newest SVID. */
void ly_rpc_client_set_ctx(ly_rpc_client_t *c, WOLFSSL_CTX *ctx);
/* Starts a call; `done` runs exactly once, also on failure (codes
 * UNAVAILABLE for connection problems, DEADLINE_EXCEEDED after
 * timeout_ms). Returns 0, or an error and `done` never runs. */
int ly_rpc_client_call(ly_rpc_client_t *c, const char *method,
                       const ProtobufCMessage *request, uint64_t timeout_ms,
                       ly_rpc_done_cb done, void *data);
/* How many calls of `method` finished with `code` (for metrics). */
uint64_t ly_rpc_client_results(const ly_rpc_client_t *c, const char *method,
                               int code);
/* Fails pending calls with CANCELLED, closes, frees (asynchronously: the
 * loop must run until its handles are closed). */
void ly_rpc_client_free(ly_rpc_client_t *c);

#endif
