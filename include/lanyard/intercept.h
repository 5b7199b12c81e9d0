/* Transparent interception: the nat-table rules that steer a pod's TCP
 * traffic into the agent (`lanyard iptables`), and recovering where a
 * redirected connection was going.
 *
 * Rule layout (one set per address family; in the nat table unless said):
 *
 *   PREROUTING -p tcp -> LANYARD_INBOUND
 *     excluded inbound ports (and the admin port)   RETURN
 *     included ports, or every port with '*'       -> LANYARD_IN_REDIRECT
 *   LANYARD_IN_REDIRECT                              REDIRECT to inbound
 *
 *   OUTPUT -p tcp -> LANYARD_OUTPUT
 *     excluded outbound ports                        RETURN
 *     on lo, not to loopback, from the proxy UID    -> LANYARD_INBOUND
 *     on lo, from any other UID                      RETURN
 *     from the proxy UID                             RETURN
 *     to loopback                                    RETURN
 *     excluded outbound CIDRs                        RETURN
 *     everything else                               -> LANYARD_REDIRECT
 *   LANYARD_REDIRECT                                 REDIRECT to outbound
 *
 *   raw: OUTPUT -p tcp -> LANYARD_CONNTRACK
 *     from the proxy UID                             CT --zone-orig 1337
 *
 * The zone keeps the agent's connections and the app's apart in
 * conntrack, where a reused source port would otherwise reopen the other
 * side's closed entry with its NAT decision (iptables.c says how).
 *
 * The rule generation is pure (text in, text out) so it can be tested
 * without privileges; ly_iptables_apply / ly_iptables_remove run
 * iptables-save and iptables-restore. None of this is on the data path.
 */
#ifndef LANYARD_INTERCEPT_H
#define LANYARD_INTERCEPT_H

#include "lanyard/config.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LY_IPT_CHAIN_PREFIX "LANYARD_"
#define LY_IPT_MAX_PORTS 64
#define LY_IPT_MAX_CIDRS 64
/* The conntrack zone of the agent's own connections (original direction). */
#define LY_IPT_CT_ZONE 1337

typedef struct {
  uint16_t v[LY_IPT_MAX_PORTS];
  size_t n;
} ly_ports_t;

typedef enum {
  LY_IPT_IPV6_AUTO = 0, /* when the kernel has IPv6 (/proc/net/if_inet6) */
  LY_IPT_IPV6_ON,
  LY_IPT_IPV6_OFF
} ly_ipt_ipv6_t;

typedef struct {
  uint32_t proxy_uid;     /* the agent's UID: its traffic is never caught */
  uint16_t inbound_port;  /* default 15006 */
  uint16_t outbound_port; /* default 15001 */
  uint16_t admin_port;    /* the agent's admin port, always exempt (15020) */
  ly_ports_t exclude_inbound;  /* default 15020,15014 */
  ly_ports_t exclude_outbound; /* default none */
  int include_all_inbound;     /* '*' (default); else include_inbound */
  ly_ports_t include_inbound;
  ly_cidr_t exclude_outbound_cidrs[LY_IPT_MAX_CIDRS]; /* .ports unused */
  size_t nexclude_outbound_cidrs;
  ly_ipt_ipv6_t ipv6;
} ly_iptables_opts_t;

/* Fills in the defaults above. */
void ly_iptables_opts_init(ly_iptables_opts_t *o);

/* "15020,15014" (or "" for none) into a set: each 1..65535, duplicates
 * dropped, at most LY_IPT_MAX_PORTS. 0 or LY_EPARSE with *why. */
int ly_iptables_parse_ports(const char *s, ly_ports_t *out, const char **why);

/* "10.0.0.0/8,fd00::/8" (or "") into o->exclude_outbound_cidrs, replacing
 * what was there. 0 or LY_EPARSE with *why. */
int ly_iptables_parse_cidrs(const char *s, ly_iptables_opts_t *o,
                            const char **why);

/* The iptables-restore input (for `iptables-restore --noflush`) that
 * installs the rules for `family` (AF_INET or AF_INET6). `current` is the
 * output of `iptables-save -t nat` and `-t raw` for that family, or NULL:
 * the same
 * transaction then first removes any LANYARD_ chains and jumps found in
 * it, so a second install replaces the first atomically. Sets *out to a
 * malloc'd string the caller frees. 0, UV_EINVAL or UV_ENOMEM. */
int ly_iptables_ruleset(const ly_iptables_opts_t *o, int family,
                        const char *current, char **out);

/* The iptables-restore input that removes every LANYARD_ chain and every
 * jump to one found in `current` (iptables-save output), and nothing
 * else. *out is NULL when there is nothing to remove. 0 or UV_ENOMEM. */
int ly_iptables_cleanup(const char *current, char **out);

/* Whether the IPv6 rules apply under o->ipv6 on this machine. */
int ly_iptables_want_ipv6(const ly_iptables_opts_t *o);

/* Reads the nat and raw tables with (ip6)iptables-save and installs or
 * removes the rules with one (ip6)iptables-restore --noflush transaction.
 * Blocking; needs CAP_NET_ADMIN. Not thread-safe: ignores SIGPIPE while it runs
 * and forks. 0, a negative uv code (UV_ENOENT: the tool is not
 * installed), LY_ETOO_BIG (an absurdly large nat table) or
 * LY_EUNAVAILABLE (the tool failed; it printed why on stderr), with *why
 * set for people. */
int ly_iptables_apply(const ly_iptables_opts_t *o, int family,
                      const char **why);
int ly_iptables_remove(int family, const char **why);

/* What ly_iptables_remove would feed to iptables-restore, read from the
 * current nat and raw tables (*out NULL: nothing to remove). Changes
 * nothing. */
int ly_iptables_remove_preview(int family, char **out, const char **why);

/* The destination a REDIRECTed TCP connection was addressed to, from
 * conntrack (SO_ORIGINAL_DST, or IP6T_SO_ORIGINAL_DST for IPv6). `fd` is
 * an accepted socket; an IPv6 socket carrying IPv4 (a v4-mapped peer)
 * yields an AF_INET address. 0 or a negative uv code: UV_ENOENT when
 * conntrack has no entry for the connection. Thread-safe, no blocking. */
int ly_original_dst(int fd, struct sockaddr_storage *out);

/* 1 when the address (port ignored) is loopback or assigned to one of
 * this network namespace's interfaces, 0 when not, or a negative uv
 * code. A connection whose original destination is the agent's own
 * capture port on a local address was not redirected: proxying it would
 * connect the agent to itself. Blocking (getifaddrs). */
int ly_addr_is_local(const struct sockaddr *sa);

/* "10.0.0.1:80" or "[fd00::1]:80" into buf; returns buf ("?" when the
 * family is neither). */
const char *ly_addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
