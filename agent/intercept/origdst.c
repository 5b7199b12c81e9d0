/* Where a redirected connection was going: the nat REDIRECT rewrote the
 * destination to the agent's capture port, and conntrack still holds the
 * original tuple. */
#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <uv.h>

/* glibc's netinet/in.h before the kernel headers: linux/libc-compat.h
 * then skips the definitions glibc already made. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

int ly_original_dst(int fd, struct sockaddr_storage *out) {
  struct sockaddr_storage local;
  socklen_t len = sizeof(local);
  memset(out, 0, sizeof(*out));
  /* The local address, not SO_DOMAIN: a dual-stack IPv6 listener accepts
   * IPv4 connections as v4-mapped addresses, and their conntrack entry is
   * an IPv4 one, reachable only through SOL_IP. */
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
    return uv_translate_sys_error(errno);
  int v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&local;
    v4 = IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
  } else if (!v4) {
    return UV_EAFNOSUPPORT;
  }
  if (v4) {
    struct sockaddr_in sin;
    len = sizeof(sin);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sin, &len) != 0)
      return uv_translate_sys_error(errno);
    sin.sin_family = AF_INET; /* the kernel sets it; do not rely on it */
    memcpy(out, &sin, sizeof(sin));
    return 0;
  }
  struct sockaddr_in6 sin6;
  len = sizeof(sin6);
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sin6, &len) != 0)
    return uv_translate_sys_error(errno);
  sin6.sin6_family = AF_INET6;
  memcpy(out, &sin6, sizeof(sin6));
  return 0;
}

int ly_addr_is_local(const struct sockaddr *sa) {
  const void *want;
  size_t alen;
  switch (sa->sa_family) {
  case AF_INET: {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    if ((ntohl(s4->sin_addr.s_addr) >> 24) == 127)
      return 1;
    want = &s4->sin_addr;
    alen = sizeof(s4->sin_addr);
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
      return 1;
    want = &s6->sin6_addr;
    alen = sizeof(s6->sin6_addr);
    break;
  }
  default:
    return UV_EAFNOSUPPORT;
  }
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) != 0)
    return uv_translate_sys_error(errno);
  int found = 0;
  for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != sa->sa_family)
      continue;
    const void *have =
        sa->sa_family == AF_INET
            ? (const void *)&((const struct sockaddr_in *)i->ifa_addr)->sin_addr
            : (const void *)&((const struct sockaddr_in6 *)i->ifa_addr)
                  ->sin6_addr;
    found = memcmp(have, want, alen) == 0;
  }
  freeifaddrs(ifs);
  return found;
}

const char *ly_addr_format(const struct sockaddr *sa, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  switch (sa->sa_family) {
  case AF_INET: {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
    snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    break;
  }
  default:
    snprintf(buf, len, "?");
    break;
  }
  return buf;
}
