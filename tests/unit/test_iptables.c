#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* The default install, in parts: a re-install puts its undo lines
 * after each table's chain declarations. */
#define NAT_CHAINS                                                             \
  "*nat\n"                                                                     \
  ":LANYARD_INBOUND - [0:0]\n"                                                 \
  ":LANYARD_IN_REDIRECT - [0:0]\n"                                             \
  ":LANYARD_OUTPUT - [0:0]\n"                                                  \
  ":LANYARD_REDIRECT - [0:0]\n"
#define NAT_RULES                                                              \
  "-A LANYARD_INBOUND -p tcp --dport 15020 -j RETURN\n"                        \
  "-A LANYARD_INBOUND -p tcp --dport 15014 -j RETURN\n"                        \
  "-A LANYARD_INBOUND -p tcp -j LANYARD_IN_REDIRECT\n"                         \
  "-A LANYARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"               \
  "-A LANYARD_OUTPUT -o lo ! -d 127.0.0.0/8 -m owner --uid-owner 1337 "        \
  "-j LANYARD_INBOUND\n"                                                       \
  "-A LANYARD_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n"            \
  "-A LANYARD_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"                    \
  "-A LANYARD_OUTPUT -d 127.0.0.0/8 -j RETURN\n"                               \
  "-A LANYARD_OUTPUT -j LANYARD_REDIRECT\n"                                    \
  "-A LANYARD_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"                  \
  "-A PREROUTING -p tcp -j LANYARD_INBOUND\n"                                  \
  "-A OUTPUT -p tcp -j LANYARD_OUTPUT\n"                                       \
  "COMMIT\n"
#define RAW_CHAINS "*raw\n:LANYARD_CONNTRACK - [0:0]\n"
#define RAW_RULES                                                              \
  "-A LANYARD_CONNTRACK -m owner --uid-owner 1337 -j CT --zone-orig 1337\n"    \
  "-A OUTPUT -p tcp -j LANYARD_CONNTRACK\n"                                    \
  "COMMIT\n"

static const char default_v4[] = NAT_CHAINS NAT_RULES RAW_CHAINS RAW_RULES;

static char *rules(const ly_iptables_opts_t *o, int family,
                   const char *current) {
  char *text = NULL;
  assert_int_equal(ly_iptables_ruleset(o, family, current, &text), 0);
  assert_non_null(text);
  return text;
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void test_defaults_v4(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  char *text = rules(&o, AF_INET, NULL);
  assert_string_equal(text, default_v4);
  free(text);
}

static void test_defaults_v6(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  char *text = rules(&o, AF_INET6, NULL);
  /* The same layout with IPv6's loopback. */
  assert_non_null(strstr(text, "-A LANYARD_OUTPUT -o lo ! -d ::1/128 -m owner "
                               "--uid-owner 1337 -j LANYARD_INBOUND\n"));
  assert_non_null(strstr(text, "-A LANYARD_OUTPUT -d ::1/128 -j RETURN\n"));
  assert_null(strstr(text, "127.0.0.0/8"));
  assert_non_null(strstr(text, "--to-ports 15006\n"));
  assert_non_null(strstr(text, "--to-ports 15001\n"));
  free(text);
}

static void test_bad_family(void **state) {
  ly_iptables_opts_t o;
  char *text = (char *)"untouched";
  ly_iptables_opts_init(&o);
  assert_int_equal(ly_iptables_ruleset(&o, AF_UNIX, NULL, &text), UV_EINVAL);
  assert_null(text);
}

static void test_custom(void **state) {
  ly_iptables_opts_t o;
  const char *why = NULL;
  ly_iptables_opts_init(&o);
  o.proxy_uid = 2002;
  o.inbound_port = 16006;
  o.outbound_port = 16001;
  o.admin_port = 15999;
  o.include_all_inbound = 0;
  assert_int_equal(
      ly_iptables_parse_ports("8080,9090", &o.include_inbound, &why), 0);
  assert_int_equal(ly_iptables_parse_ports("", &o.exclude_inbound, &why), 0);
  assert_int_equal(
      ly_iptables_parse_ports("53,8125", &o.exclude_outbound, &why), 0);
  assert_int_equal(ly_iptables_parse_cidrs("169.254.169.254/32,fd00:ab::/64,"
                                           "10.96.0.0/12",
                                           &o, &why),
                   0);
  char *text = rules(&o, AF_INET, NULL);
  assert_string_equal(
      text, "*nat\n"
            ":LANYARD_INBOUND - [0:0]\n"
            ":LANYARD_IN_REDIRECT - [0:0]\n"
            ":LANYARD_OUTPUT - [0:0]\n"
            ":LANYARD_REDIRECT - [0:0]\n"
            "-A LANYARD_INBOUND -p tcp --dport 15999 -j RETURN\n"
            "-A LANYARD_INBOUND -p tcp --dport 8080 -j LANYARD_IN_REDIRECT\n"
            "-A LANYARD_INBOUND -p tcp --dport 9090 -j LANYARD_IN_REDIRECT\n"
            "-A LANYARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n"
            "-A LANYARD_OUTPUT -p tcp --dport 53 -j RETURN\n"
            "-A LANYARD_OUTPUT -p tcp --dport 8125 -j RETURN\n"
            "-A LANYARD_OUTPUT -o lo ! -d 127.0.0.0/8 -m owner --uid-owner "
            "2002 -j LANYARD_INBOUND\n"
            "-A LANYARD_OUTPUT -o lo -m owner ! --uid-owner 2002 -j RETURN\n"
            "-A LANYARD_OUTPUT -m owner --uid-owner 2002 -j RETURN\n"
            "-A LANYARD_OUTPUT -d 127.0.0.0/8 -j RETURN\n"
            "-A LANYARD_OUTPUT -d 169.254.169.254/32 -j RETURN\n"
            "-A LANYARD_OUTPUT -d 10.96.0.0/12 -j RETURN\n"
            "-A LANYARD_OUTPUT -j LANYARD_REDIRECT\n"
            "-A LANYARD_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n"
            "-A PREROUTING -p tcp -j LANYARD_INBOUND\n"
            "-A OUTPUT -p tcp -j LANYARD_OUTPUT\n"
            "COMMIT\n"
            "*raw\n"
            ":LANYARD_CONNTRACK - [0:0]\n"
            "-A LANYARD_CONNTRACK -m owner --uid-owner 2002 -j CT "
            "--zone-orig 1337\n"
            "-A OUTPUT -p tcp -j LANYARD_CONNTRACK\n"
            "COMMIT\n");
  free(text);
  /* Each family gets its own CIDRs only. */
  text = rules(&o, AF_INET6, NULL);
  assert_non_null(strstr(text, "-A LANYARD_OUTPUT -d fd00:ab::/64 -j RETURN\n"
                               "-A LANYARD_OUTPUT -j LANYARD_REDIRECT\n"));
  assert_null(strstr(text, "169.254"));
  assert_null(strstr(text, "10.96"));
  assert_non_null(strstr(text, "--uid-owner 2002"));
  free(text);
}

static void test_admin_port_once(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  o.admin_port = 15014; /* already excluded: not twice */
  char *text = rules(&o, AF_INET, NULL);
  assert_int_equal(count(text, "--dport 15014 -j RETURN"), 1);
  free(text);
  /* Replacing the exclusions keeps the admin port exempt. */
  const char *why = NULL;
  ly_iptables_opts_init(&o);
  assert_int_equal(ly_iptables_parse_ports("22", &o.exclude_inbound, &why), 0);
  text = rules(&o, AF_INET, NULL);
  assert_non_null(strstr(text,
                         "-A LANYARD_INBOUND -p tcp --dport 22 -j RETURN\n"
                         "-A LANYARD_INBOUND -p tcp --dport 15020 -j "
                         "RETURN\n"));
  free(text);
}

static void test_no_inbound_ports(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  o.include_all_inbound = 0; /* --include-inbound-ports '' */
  char *text = rules(&o, AF_INET, NULL);
  assert_null(strstr(text, "-A LANYARD_INBOUND -p tcp -j LANYARD_IN_REDIRECT"));
  assert_null(strstr(text, "-j LANYARD_IN_REDIRECT\n"));
  /* The chain exists and returns; outbound capture is unchanged. */
  assert_non_null(strstr(text, "-A LANYARD_OUTPUT -j LANYARD_REDIRECT\n"));
  free(text);
}

static void test_parse_ports(void **state) {
  ly_ports_t p;
  const char *why = NULL;
  assert_int_equal(ly_iptables_parse_ports("80,443,80,65535,1", &p, &why), 0);
  assert_int_equal(p.n, 4);
  assert_int_equal(p.v[0], 80);
  assert_int_equal(p.v[1], 443);
  assert_int_equal(p.v[2], 65535);
  assert_int_equal(p.v[3], 1);
  assert_int_equal(ly_iptables_parse_ports("", &p, &why), 0);
  assert_int_equal(p.n, 0);

  static const char *const bad[] = {"0",   "65536",   "a",   "80,",
                                    ",80", "1,,2",    "1 2", " 80",
                                    "-1",  "8080000", "*"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    p.n = 7;
    why = NULL;
    assert_int_equal(ly_iptables_parse_ports(bad[i], &p, &why), LY_EPARSE);
    assert_non_null(why);
    assert_int_equal(p.n, 7); /* untouched on error */
  }
  char many[65 * 6 + 1] = "";
  for (int i = 1; i <= 65; i++) {
    char one[8];
    snprintf(one, sizeof(one), i == 1 ? "%d" : ",%d", i);
    strcat(many, one);
  }
  assert_int_equal(ly_iptables_parse_ports(many, &p, &why), LY_EPARSE);
}

static void test_parse_cidrs(void **state) {
  ly_iptables_opts_t o;
  const char *why = NULL;
  ly_iptables_opts_init(&o);
  assert_int_equal(ly_iptables_parse_cidrs("10.0.0.0/8,::/0,1.2.3.4", &o, &why),
                   0);
  assert_int_equal(o.nexclude_outbound_cidrs, 3);
  assert_int_equal(o.exclude_outbound_cidrs[1].family, AF_INET6);
  assert_int_equal(o.exclude_outbound_cidrs[2].prefix_len, 32);
  /* A bad list leaves the previous one in place. */
  assert_int_equal(ly_iptables_parse_cidrs("10.0.0.0/8,bad", &o, &why),
                   LY_EPARSE);
  assert_int_equal(o.nexclude_outbound_cidrs, 3);
  assert_int_equal(o.exclude_outbound_cidrs[1].family, AF_INET6);
  assert_int_equal(ly_iptables_parse_cidrs("", &o, &why), 0);
  assert_int_equal(o.nexclude_outbound_cidrs, 0);
  static const char *const bad[] = {"10.0.0.1/8",  "x",           "10.0.0.0/8,",
                                    ",10.0.0.0/8", "10.0.0.0/33", "fd00::/129"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    why = NULL;
    assert_int_equal(ly_iptables_parse_cidrs(bad[i], &o, &why), LY_EPARSE);
    assert_non_null(why);
  }
}

/* What iptables-save prints with the rules installed, among others'. */
static const char installed[] =
    "# Generated by iptables-save v1.8.9 (nf_tables)\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":LANYARD_INBOUND - [0:0]\n"
    ":LANYARD_IN_REDIRECT - [0:0]\n"
    ":LANYARD_OLD - [0:0]\n"
    ":LANYARD_OUTPUT - [0:0]\n"
    ":LANYARD_REDIRECT - [0:0]\n"
    "-A PREROUTING -m comment --comment \"not -j LANYARD_X \\\" here\" "
    "-j KUBE-SERVICES\n"
    "-A PREROUTING -p tcp -j LANYARD_INBOUND\n"
    "-A OUTPUT -p tcp -j LANYARD_OUTPUT\n"
    "-A OUTPUT -p udp -g LANYARD_OLD\n"
    "-A POSTROUTING -o eth0 -j MASQUERADE\n"
    "-A LANYARD_INBOUND -p tcp -m tcp --dport 15020 -j RETURN\n"
    "-A LANYARD_INBOUND -p tcp -j LANYARD_IN_REDIRECT\n"
    "-A LANYARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
    "-A LANYARD_OUTPUT -j LANYARD_REDIRECT\n"
    "-A LANYARD_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
    "COMMIT\n"
    "# Completed\n"
    "*raw\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":LANYARD_CONNTRACK - [0:0]\n"
    "-A OUTPUT -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j CT "
    "--zone 1\n"
    "-A OUTPUT -p tcp -j LANYARD_CONNTRACK\n"
    "-A LANYARD_CONNTRACK -m owner --uid-owner 1337 -j CT --zone-orig 1337\n"
    "COMMIT\n"
    "*filter\n"
    ":LANYARD_FILTER - [0:0]\n"
    "-A INPUT -j LANYARD_FILTER\n"
    "COMMIT\n";

static void test_cleanup(void **state) {
  char *text = NULL;
  assert_int_equal(ly_iptables_cleanup(installed, &text), 0);
  assert_non_null(text);
  /* Only the nat and raw tables; KUBE-SERVICES, MASQUERADE, another
   * zone rule and the filter table stay. */
  assert_string_equal(text, "*nat\n"
                            "-D PREROUTING -p tcp -j LANYARD_INBOUND\n"
                            "-D OUTPUT -p tcp -j LANYARD_OUTPUT\n"
                            "-D OUTPUT -p udp -g LANYARD_OLD\n"
                            "-F LANYARD_INBOUND\n"
                            "-F LANYARD_IN_REDIRECT\n"
                            "-F LANYARD_OLD\n"
                            "-F LANYARD_OUTPUT\n"
                            "-F LANYARD_REDIRECT\n"
                            "-X LANYARD_INBOUND\n"
                            "-X LANYARD_IN_REDIRECT\n"
                            "-X LANYARD_OLD\n"
                            "-X LANYARD_OUTPUT\n"
                            "-X LANYARD_REDIRECT\n"
                            "COMMIT\n"
                            "*raw\n"
                            "-D OUTPUT -p tcp -j LANYARD_CONNTRACK\n"
                            "-F LANYARD_CONNTRACK\n"
                            "-X LANYARD_CONNTRACK\n"
                            "COMMIT\n");
  free(text);

  /* Nothing of ours: nothing to do. */
  static const char clean[] = "*nat\n:PREROUTING ACCEPT [0:0]\n"
                              "-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";
  text = (char *)"untouched";
  assert_int_equal(ly_iptables_cleanup(clean, &text), 0);
  assert_null(text);
  text = (char *)"untouched";
  assert_int_equal(ly_iptables_cleanup("", &text), 0);
  assert_null(text);
}

static void test_reinstall(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  char *text = rules(&o, AF_INET, installed);
  /* Declared (so flushed), old jumps deleted, the stale chain removed,
   * then the fresh rules: one transaction. */
  assert_string_equal(text, NAT_CHAINS
                      "-D PREROUTING -p tcp -j LANYARD_INBOUND\n"
                      "-D OUTPUT -p tcp -j LANYARD_OUTPUT\n"
                      "-D OUTPUT -p udp -g LANYARD_OLD\n"
                      "-F LANYARD_OLD\n"
                      "-X LANYARD_OLD\n" NAT_RULES RAW_CHAINS
                      "-D OUTPUT -p tcp -j LANYARD_CONNTRACK\n" RAW_RULES);
  free(text);
  /* With nothing installed the result is a fresh install. */
  text = rules(&o, AF_INET, "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
  assert_string_equal(text, default_v4);
  free(text);
}

static void test_want_ipv6(void **state) {
  ly_iptables_opts_t o;
  ly_iptables_opts_init(&o);
  assert_int_equal(o.ipv6, LY_IPT_IPV6_AUTO);
  o.ipv6 = LY_IPT_IPV6_ON;
  assert_int_equal(ly_iptables_want_ipv6(&o), 1);
  o.ipv6 = LY_IPT_IPV6_OFF;
  assert_int_equal(ly_iptables_want_ipv6(&o), 0);
  o.ipv6 = LY_IPT_IPV6_AUTO;
  assert_int_equal(ly_iptables_want_ipv6(&o),
                   access("/proc/net/if_inet6", F_OK) == 0);
}

static void test_original_dst_errors(void **state) {
  struct sockaddr_storage ss;
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(ly_original_dst(p[0], &ss), UV_ENOTSOCK);
  close(p[0]);
  close(p[1]);
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(u >= 0);
  assert_int_equal(ly_original_dst(u, &ss), UV_EAFNOSUPPORT);
  close(u);
  assert_int_equal(ly_original_dst(-1, &ss), UV_EBADF);
}

/* A loopback connection nobody redirected: the answer is either the
 * address it was sent to (conntrack saw it) or "no entry", never junk. */
static void test_original_dst_unredirected(void **state) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof(a);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
  int s = accept(l, NULL, NULL);
  assert_true(s >= 0);
  struct sockaddr_storage dst;
  int rc = ly_original_dst(s, &dst);
  if (rc == 0) {
    char buf[64], want[64];
    ly_addr_format((struct sockaddr *)&dst, buf, sizeof(buf));
    snprintf(want, sizeof(want), "127.0.0.1:%u", ntohs(a.sin_port));
    assert_string_equal(buf, want);
  } else {
    assert_int_equal(rc, UV_ENOENT);
  }
  close(s);
  close(c);
  close(l);
}

static void test_addr_is_local(void **state) {
  struct sockaddr_in a4 = {.sin_family = AF_INET};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET, "127.0.0.53", &a4.sin_addr);
  assert_int_equal(ly_addr_is_local((struct sockaddr *)&a4), 1);
  inet_pton(AF_INET, "192.0.2.77", &a4.sin_addr); /* TEST-NET-1 */
  assert_int_equal(ly_addr_is_local((struct sockaddr *)&a4), 0);
  inet_pton(AF_INET6, "::1", &a6.sin6_addr);
  assert_int_equal(ly_addr_is_local((struct sockaddr *)&a6), 1);
  inet_pton(AF_INET6, "2001:db8::77", &a6.sin6_addr); /* documentation */
  assert_int_equal(ly_addr_is_local((struct sockaddr *)&a6), 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  assert_int_equal(ly_addr_is_local((struct sockaddr *)&un), UV_EAFNOSUPPORT);
}

static void test_addr_format(void **state) {
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(8080)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  char buf[64];
  inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
  inet_pton(AF_INET6, "fd00::2", &a6.sin6_addr);
  assert_string_equal(ly_addr_format((struct sockaddr *)&a4, buf, sizeof(buf)),
                      "10.1.2.3:8080");
  assert_string_equal(ly_addr_format((struct sockaddr *)&a6, buf, sizeof(buf)),
                      "[fd00::2]:443");
  assert_string_equal(ly_addr_format((struct sockaddr *)&un, buf, sizeof(buf)),
                      "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_v4),
      cmocka_unit_test(test_defaults_v6),
      cmocka_unit_test(test_bad_family),
      cmocka_unit_test(test_custom),
      cmocka_unit_test(test_admin_port_once),
      cmocka_unit_test(test_no_inbound_ports),
      cmocka_unit_test(test_parse_ports),
      cmocka_unit_test(test_parse_cidrs),
      cmocka_unit_test(test_cleanup),
      cmocka_unit_test(test_reinstall),
      cmocka_unit_test(test_want_ipv6),
      cmocka_unit_test(test_original_dst_errors),
      cmocka_unit_test(test_original_dst_unredirected),
      cmocka_unit_test(test_addr_is_local),
      cmocka_unit_test(test_addr_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
