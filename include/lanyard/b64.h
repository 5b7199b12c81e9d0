/* Base64: the standard alphabet with padding (RFC 4648 section 4, as PEM
 * uses it) and base64url without padding (section 5, as JWTs and join
 * tokens use it). Decoders are strict: no stray characters, canonical
 * trailing bits. */
#ifndef LANYARD_B64_H
#define LANYARD_B64_H

#include <stddef.h>

/* Encoded lengths for n bytes, without the NUL. */
size_t ly_b64_len(size_t n);
size_t ly_b64url_len(size_t n);

/* Encode src into dst (room for the length above + 1); NUL-terminates. */
void ly_b64_encode(const void *src, size_t n, char *dst);
void ly_b64url_encode(const void *src, size_t n, char *dst);

/* Decode into dst with room for `cap` bytes: 0 with *n set, or LY_EPARSE /
 * LY_ETOO_BIG. The standard decoder skips line breaks and blanks (PEM
 * bodies) and takes padding only at the end; base64url takes none of
 * those, though trailing '=' are tolerated. */
int ly_b64_decode(const char *src, size_t len, unsigned char *dst, size_t cap,
                  size_t *n);
int ly_b64url_decode(const char *src, size_t len, unsigned char *dst,
                     size_t cap, size_t *n);

#endif
