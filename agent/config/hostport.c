#include "lanyard/config.h"

#include "lanyard/err.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Digits only, 1..65535 (0..65535 with zero_ok). */
static int port_parse(const char *s, int zero_ok, uint16_t *out) {
  unsigned long v = 0;
  if (!*s)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' ||
        (v = v * 10 + (unsigned long)(*s - '0')) > 65535)
      return -1;
  }
  if (v == 0 && !zero_ok)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-',
 * 1..63 bytes, no '-' at either end; one trailing dot allowed. A name
 * whose last label is all digits is a mistyped IPv4 address instead. */
static int dns_name_check(const char *h, size_t len, const char **why) {
  LY_ENSURE_WHY(len <= 253, LY_EPARSE, why, "host name is too long");
  if (len > 1 && h[len - 1] == '.')
    len--;
  size_t start = 0;
  int digits_only = 1;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && h[i] != '.') {
      char c = h[i];
      LY_ENSURE_WHY((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-',
                    LY_EPARSE, why,
                    "host name has a character other than [a-zA-Z0-9.-]");
      continue;
    }
    size_t l = i - start;
    LY_ENSURE_WHY(l > 0, LY_EPARSE, why, "host name has an empty label");
    LY_ENSURE_WHY(l <= 63, LY_EPARSE, why,
                  "host name has a label longer than 63 bytes");
    LY_ENSURE_WHY(h[start] != '-' && h[i - 1] != '-', LY_EPARSE, why,
                  "host name label starts or ends with '-'");
    digits_only = 1;
    for (size_t j = start; j < i; j++)
      digits_only &= h[j] >= '0' && h[j] <= '9';
    start = i + 1;
  }
  LY_ENSURE_WHY(!digits_only, LY_EPARSE, why, "invalid IPv4 address");
  return 0;
}

int ly_hostport_parse(const char *s, int flags, ly_hostport_t *out,
                      const char **why) {
  int allow_names = flags & 1;
  char host[256];
  const char *port;
  unsigned char bin[16];
  size_t hlen;
  LY_ENSURE_WHY(s && *s, LY_EPARSE, why, "address is empty");
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    LY_ENSURE_WHY(close, LY_EPARSE, why, "missing ']' after IPv6 address");
    hlen = (size_t)(close - s - 1);
    LY_ENSURE_WHY(close[1] == ':', LY_EPARSE, why,
                  "address must be [ipv6]:port");
    LY_ENSURE_WHY(hlen < sizeof(host), LY_EPARSE, why, "invalid IPv6 address");
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';
    LY_ENSURE_WHY(inet_pton(AF_INET6, host, bin) == 1, LY_EPARSE, why,
                  "invalid IPv6 address");
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    LY_ENSURE_WHY(colon, LY_EPARSE, why, "address must be host:port");
    hlen = (size_t)(colon - s);
    LY_ENSURE_WHY(memchr(s, ':', hlen) == NULL, LY_EPARSE, why,
                  "IPv6 addresses need brackets, as in [::1]:8443");
    LY_ENSURE_WHY(hlen > 0, LY_EPARSE, why, "address has no host");
    LY_ENSURE_WHY(hlen < sizeof(host), LY_EPARSE, why, "host name is too long");
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, bin) != 1) {
      LY_GUARD(dns_name_check(host, hlen, why));
      LY_ENSURE_WHY(allow_names, LY_EPARSE, why,
                    "host must be an IP address here, not a name");
    }
    port = colon + 1;
  }
  LY_ENSURE_WHY(port_parse(port, flags & LY_HOSTPORT_PORT0, &out->port) == 0,
                LY_EPARSE, why,
                flags & LY_HOSTPORT_PORT0
                    ? "port must be a number in 0..65535 (0: any free port)"
                    : "port must be a number in 1..65535");
  memcpy(out->host, host, hlen + 1);
  return 0;
}

int ly_cidr_parse(const char *s, ly_cidr_t *out, const char **why) {
  char addr[64];
  const char *slash = strchr(s, '/');
  size_t alen = slash ? (size_t)(slash - s) : strlen(s);
  ly_cidr_t c = {0};
  LY_ENSURE_WHY(alen > 0 && alen < sizeof(addr), LY_EPARSE, why,
                "CIDR must be like 10.0.0.0/8 or fd00::/8");
  memcpy(addr, s, alen);
  addr[alen] = '\0';
  if (inet_pton(AF_INET, addr, c.addr) == 1)
    c.family = AF_INET;
  else if (inet_pton(AF_INET6, addr, c.addr) == 1)
    c.family = AF_INET6;
  else
    LY_ENSURE_WHY(0, LY_EPARSE, why,
                  strchr(addr, ':') ? "invalid IPv6 address"
                                    : "invalid IPv4 address");
  unsigned max = c.family == AF_INET ? 32 : 128, len = max;
  if (slash) {
    const char *p = slash + 1;
    LY_ENSURE_WHY(*p && strlen(p) <= 3, LY_EPARSE, why,
                  "prefix length must be a number after '/'");
    len = 0;
    for (; *p; p++) {
      LY_ENSURE_WHY(*p >= '0' && *p <= '9', LY_EPARSE, why,
                    "prefix length must be a number after '/'");
      len = len * 10 + (unsigned)(*p - '0');
    }
    LY_ENSURE_WHY(len <= max, LY_EPARSE, why,
                  c.family == AF_INET
                      ? "prefix length must be 0..32 for IPv4"
                      : "prefix length must be 0..128 for IPv6");
  }
  /* 10.1.0.0/8 is almost always a typo; say so rather than guess. */
  for (unsigned bit = len; bit < max; bit++)
    LY_ENSURE_WHY(!(c.addr[bit / 8] & (0x80 >> (bit % 8))), LY_EPARSE, why,
                  "address has bits set beyond the prefix length");
  c.prefix_len = (uint8_t)len;
  *out = c;
  return 0;
}
