/* Base64 (RFC 4648 section 4) and base64url without padding (section 5),
 * as JWTs and join tokens use. */
#ifndef LANYARD_B64_H
#define LANYARD_B64_H

#include <stddef.h>

/* Encoded length for n bytes, without the NUL. */
size_t ly_b64url_len(size_t n);

/* Encodes src into dst (room for ly_b64url_len(n) + 1); NUL-terminates. */
void ly_b64url_encode(const void *src, size_t n, char *dst);

/* Decodes base64url (padding optional, no whitespace) into dst with room
 * for `cap` bytes. 0 with *n set, or LY_EPARSE / LY_ETOO_BIG. */
int ly_b64url_decode(const char *src, size_t len, unsigned char *dst,
                     size_t cap, size_t *n);

#endif
