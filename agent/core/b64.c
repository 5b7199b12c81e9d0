#include "lanyard/b64.h"

#include "lanyard/err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ly_b64url_len(size_t n) {
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void ly_b64url_encode(const void *src, size_t n, char *dst) {
  const unsigned char *s = src;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    *dst++ = alphabet[v >> 18];
    *dst++ = alphabet[(v >> 12) & 63];
    *dst++ = alphabet[(v >> 6) & 63];
    *dst++ = alphabet[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)s[i] << 16;
    *dst++ = alphabet[v >> 18];
    *dst++ = alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
    *dst++ = alphabet[v >> 18];
    *dst++ = alphabet[(v >> 12) & 63];
    *dst++ = alphabet[(v >> 6) & 63];
  }
  *dst = '\0';
}

static int value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

int ly_b64url_decode(const char *src, size_t len, unsigned char *dst,
                     size_t cap, size_t *n) {
  while (len > 0 && src[len - 1] == '=')
    len--;
  LY_ENSURE(len % 4 != 1, LY_EPARSE);
  size_t out = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = value(src[i]);
    LY_ENSURE(v >= 0, LY_EPARSE);
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      LY_ENSURE(out < cap, LY_ETOO_BIG);
      dst[out++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* leftover bits must be zero (canonical encoding) */
  LY_ENSURE(acc == 0, LY_EPARSE);
  *n = out;
  return 0;
}
