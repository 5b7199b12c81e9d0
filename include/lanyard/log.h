/* Structured logging: one line per event, key=value (default) or JSON.
 *
 *   ly_log(LY_INFO, "svid_issued", "spiffe_id", id, "serial", hex, NULL);
 *
 * prints  ts=2026-11-21T15:06:36.123Z level=info event=svid_issued
 *         spiffe_id=spiffe://td/ns/a/sa/b serial=0a1b...
 *
 * Arguments after the event are key/value string pairs ending with a NULL
 * key; a NULL value prints as "-". Values are quoted when they need it.
 * Thread-safe: each line is formatted locally and written with one write(2).
 * Never pass a key, a token or a JWT as a value.
 */
#ifndef LANYARD_LOG_H
#define LANYARD_LOG_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

typedef enum { LY_DEBUG, LY_INFO, LY_WARN, LY_ERROR } ly_log_level_t;

void ly_log(ly_log_level_t level, const char *event, ...);

/* Settings, read by every thread: set them before starting any. */
void ly_log_set_level(ly_log_level_t min);
void ly_log_set_json(int on);
void ly_log_set_fd(int fd);
/* Sets the level from "debug", "info", "warn" or "error"; -1 if none. */
int ly_log_parse_level(const char *name);

/* A token bucket for lines that a flood could repeat (refusals): up to
 * LY_LOG_BURST lines at once, then LY_LOG_PER_SEC a second, for every
 * thread that shares the limiter. Zero-initialized: starts full. */
#define LY_LOG_BURST 20
#define LY_LOG_PER_SEC 10
typedef struct {
  pthread_mutex_t lock; /* PTHREAD_MUTEX_INITIALIZER, or ly_log_limiter_init */
  uint64_t last_ms;     /* last refill */
  uint32_t tokens;      /* lines allowed now */
  uint32_t started;     /* the bucket starts full */
  uint64_t suppressed;  /* lines left out since the last one written */
} ly_log_limiter_t;

void ly_log_limiter_init(ly_log_limiter_t *l);
void ly_log_limiter_destroy(ly_log_limiter_t *l);

/* 1: write the line (with *suppressed: how many were left out since the
 * last one, to say so on it); 0: leave it out (it is counted). */
int ly_log_limit(ly_log_limiter_t *l, uint64_t now_ms, uint64_t *suppressed);

/* The count of lines left out since the last one written, which it
 * resets: for a summary line once a flood is over (no later line may
 * come to carry the count). */
uint64_t ly_log_limiter_take(ly_log_limiter_t *l);

/* That summary: logs `event` (warn) with suppressed=N, and what= when
 * given, if the limiter left lines out since its last written one. */
void ly_log_suppressed(ly_log_limiter_t *l, const char *event,
                       const char *what);

/* printf into a caller's buffer and return it, for numeric values. */
const char *ly_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
