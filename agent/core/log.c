#include "lanyard/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096

static ly_log_level_t min_level = LY_INFO;
static int json_output;
static int out_fd = 2;

void ly_log_set_level(ly_log_level_t min) {
  min_level = min;
}

void ly_log_set_json(int on) {
  json_output = on;
}

void ly_log_set_fd(int fd) {
  out_fd = fd;
}

int ly_log_parse_level(const char *name) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      min_level = (ly_log_level_t)i;
      return 0;
    }
  return -1;
}

const char *ly_fmt(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return buf;
}

void ly_log_limiter_init(ly_log_limiter_t *l) {
  memset(l, 0, sizeof(*l));
  pthread_mutex_init(&l->lock, NULL);
}

void ly_log_limiter_destroy(ly_log_limiter_t *l) {
  pthread_mutex_destroy(&l->lock);
}

/* The bucket itself, under the lock. */
static int limit_locked(ly_log_limiter_t *l, uint64_t now_ms,
                        uint64_t *suppressed) {
  if (!l->started) {
    l->started = 1;
    l->tokens = LY_LOG_BURST;
    l->last_ms = now_ms;
  }
  /* Threads' clocks differ a little: one behind the last refill has
   * nothing to add. */
  uint64_t refill =
      now_ms > l->last_ms ? (now_ms - l->last_ms) * LY_LOG_PER_SEC / 1000 : 0;
  if (refill > 0) {
    l->tokens =
        (uint32_t)(l->tokens + refill > LY_LOG_BURST ? LY_LOG_BURST
                                                     : l->tokens + refill);
    l->last_ms = now_ms;
  }
  if (l->tokens == 0) {
    l->suppressed++;
    return 0;
  }
  l->tokens--;
  *suppressed = l->suppressed;
  l->suppressed = 0;
  return 1;
}

int ly_log_limit(ly_log_limiter_t *l, uint64_t now_ms, uint64_t *suppressed) {
  pthread_mutex_lock(&l->lock);
  int write = limit_locked(l, now_ms, suppressed);
  pthread_mutex_unlock(&l->lock);
  return write;
}

uint64_t ly_log_limiter_take(ly_log_limiter_t *l) {
  pthread_mutex_lock(&l->lock);
  uint64_t n = l->suppressed;
  l->suppressed = 0;
  pthread_mutex_unlock(&l->lock);
  return n;
}

void ly_log_suppressed(ly_log_limiter_t *l, const char *event,
                       const char *what) {
  uint64_t n = ly_log_limiter_take(l);
  char count[24];
  if (n > 0)
    ly_log(LY_WARN, event, "suppressed",
           ly_fmt(count, sizeof(count), "%llu", (unsigned long long)n),
           what ? "what" : NULL, what, NULL); /* the list ends without one */
}

typedef struct {
  char buf[LINE_MAX_LEN];
  size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n) {
  size_t room = sizeof(l->buf) - 1 - l->len; /* keep one byte for '\n' */
  if (n > room)
    n = room;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void puts_(line_t *l, const char *s) {
  put(l, s, strlen(s));
}

static int needs_quotes(const char *v) {
  if (*v == '\0')
    return 1;
  for (; *v; v++)
    if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\' || *v == 0x7f)
      return 1;
  return 0;
}

/* Escapes for both formats: JSON's escapes are valid in logfmt too. */
static void put_quoted(line_t *l, const char *v) {
  put(l, "\"", 1);
  for (; *v; v++) {
    unsigned char c = (unsigned char)*v;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(l, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      puts_(l, esc);
    } else {
      put(l, (const char *)&c, 1);
    }
  }
  put(l, "\"", 1);
}

static void put_field(line_t *l, const char *k, const char *v, int first) {
  if (json_output) {
    if (!first)
      put(l, ",", 1);
    put_quoted(l, k);
    put(l, ":", 1);
    put_quoted(l, v);
    return;
  }
  if (!first)
    put(l, " ", 1);
  puts_(l, k);
  put(l, "=", 1);
  if (needs_quotes(v))
    put_quoted(l, v);
  else
    puts_(l, v);
}

void ly_log(ly_log_level_t level, const char *event, ...) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  if (level < min_level)
    return;
  line_t l = {.len = 0};
  struct timeval tv;
  struct tm tm;
  char ts[64];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (int)(tv.tv_usec / 1000));
  if (json_output)
    put(&l, "{", 1);
  put_field(&l, "ts", ts, 1);
  put_field(&l, "level", names[level], 0);
  put_field(&l, "event", event, 0);
  va_list ap;
  va_start(ap, event);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (k == NULL)
      break;
    const char *v = va_arg(ap, const char *);
    put_field(&l, k, v ? v : "-", 0);
  }
  va_end(ap);
  if (json_output)
    put(&l, "}", 1);
  l.buf[l.len++] = '\n';
  ssize_t rc = write(out_fd, l.buf, l.len);
  (void)rc; /* nowhere left to report a failing log */
}
