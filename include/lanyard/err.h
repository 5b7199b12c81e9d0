/* Error codes: 0 or a negative code everywhere.
 *
 * libuv's codes (negative errno) pass through unchanged; Lanyard's own live
 * in the table below, far below libuv's range, so one int carries either.
 */
#ifndef LANYARD_ERR_H
#define LANYARD_ERR_H

#define LY_ERR_MAP(XX)                                                         \
  XX(CONFIG, "invalid configuration")                                          \
  XX(SPIFFE_ID, "invalid SPIFFE ID")                                           \
  XX(DURATION, "invalid duration")                                             \
  XX(PARSE, "malformed input")                                                 \
  XX(CRYPTO, "cryptographic operation failed")                                 \
  XX(CERT, "certificate rejected")                                             \
  XX(CSR, "certificate request rejected")                                      \
  XX(TOKEN, "credential rejected")                                             \
  XX(EXPIRED, "expired")                                                       \
  XX(DENIED, "not permitted")                                                  \
  XX(TOO_BIG, "message too large")                                             \
  XX(PROTO, "protocol error")                                                  \
  XX(TLS, "TLS failure")                                                       \
  XX(EXISTS, "already exists")                                                 \
  XX(NOT_FOUND, "not found")                                                   \
  XX(UNAVAILABLE, "unavailable")                                               \
  XX(NO_IDENTITY, "no valid identity")

typedef enum {
  LY__ERR_BASE = -20000,
#define XX(name, _) LY_E##name,
  LY_ERR_MAP(XX)
#undef XX
      LY__ERR_END
} ly_err_t;

/* A static, human-readable message for any code (Lanyard's or libuv's). */
const char *ly_strerror(int err);

/* The code's short name ("CERT", or libuv's "ECONNREFUSED"). */
const char *ly_err_name(int err);

/* Guards, so validation reads straight down (after s2n-tls). A function
 * using them returns int and may not need cleanup on that path. */
#define LY_GUARD(expr)                                                         \
  do {                                                                         \
    int ly__rc = (expr);                                                       \
    if (ly__rc < 0)                                                            \
      return ly__rc;                                                           \
  } while (0)

#define LY_ENSURE(cond, err)                                                   \
  do {                                                                         \
    if (!(cond))                                                               \
      return (err);                                                            \
  } while (0)

/* Like LY_ENSURE, also setting *why to a static reason for people. */
#define LY_ENSURE_WHY(cond, err, whyp, reason)                                 \
  do {                                                                         \
    if (!(cond)) {                                                             \
      if (whyp)                                                                \
        *(whyp) = (reason);                                                    \
      return (err);                                                            \
    }                                                                          \
  } while (0)

#endif
