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

typedef enum { LY_DEBUG, LY_INFO, LY_WARN, LY_ERROR } ly_log_level_t;

void ly_log(ly_log_level_t level, const char *event, ...);

/* Settings, read by every thread: set them before starting any. */
void ly_log_set_level(ly_log_level_t min);
void ly_log_set_json(int on);
void ly_log_set_fd(int fd);
/* Sets the level from "debug", "info", "warn" or "error"; -1 if none. */
int ly_log_parse_level(const char *name);

/* printf into a caller's buffer and return it, for numeric values. */
const char *ly_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
