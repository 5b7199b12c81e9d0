#include "lanyard/b64.h"

#include "lanyard/err.h"

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ly_b64_len(size_t n) {
  return (n + 2) / 3 * 4;
}

size_t ly_b64url_len(size_t n) {
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static void encode(const unsigned char *s, size_t n, char *dst,
                   const char *alphabet, int pad) {
  for (size_t i = 0; i < n; i += 3) {
    size_t left = n - i;
    unsigned v = (unsigned)s[i] << 16;
    if (left > 1)
      v |= (unsigned)s[i + 1] << 8;
    if (left > 2)
      v |= s[i + 2];
    *dst++ = alphabet[v >> 18];
    *dst++ = alphabet[(v >> 12) & 63];
    if (left > 1)
      *dst++ = alphabet[(v >> 6) & 63];
    else if (pad)
      *dst++ = '=';
    if (left > 2)
      *dst++ = alphabet[v & 63];
    else if (pad)
      *dst++ = '=';
  }
  *dst = '\0';
}

void ly_b64_encode(const void *src, size_t n, char *dst) {
  encode(src, n, dst, std_alphabet, 1);
}

void ly_b64url_encode(const void *src, size_t n, char *dst) {
  encode(src, n, dst, url_alphabet, 0);
}

static int value(char c, int url) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == (url ? '-' : '+'))
    return 62;
  if (c == (url ? '_' : '/'))
    return 63;
  return -1;
}

static int decode(const char *src, size_t len, unsigned char *dst, size_t cap,
                  size_t *n, int url) {
  size_t out = 0, pad = 0, digits = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    char c = src[i];
    if (!url && (c == '\n' || c == '\r' || c == ' ' || c == '\t'))
      continue;
    if (c == '=') {
      pad++;
      continue;
    }
    int v = value(c, url);
    LY_ENSURE(v >= 0 && pad == 0, LY_EPARSE); /* stray, or data after '=' */
    digits++;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      LY_ENSURE(out < cap, LY_ETOO_BIG);
      dst[out++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  LY_ENSURE(digits % 4 != 1 && pad <= 2, LY_EPARSE);
  if (!url && pad > 0)
    LY_ENSURE((digits + pad) % 4 == 0, LY_EPARSE);
  LY_ENSURE(acc == 0, LY_EPARSE); /* canonical: unused bits are zero */
  *n = out;
  return 0;
}

int ly_b64_decode(const char *src, size_t len, unsigned char *dst, size_t cap,
                  size_t *n) {
  return decode(src, len, dst, cap, n, 0);
}

int ly_b64url_decode(const char *src, size_t len, unsigned char *dst,
                     size_t cap, size_t *n) {
  return decode(src, len, dst, cap, n, 1);
}
