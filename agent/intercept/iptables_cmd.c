/* `lanyard iptables`: installs (or --remove's) the interception rules,
 * like a service-mesh init container. Runs once, as root or with
 * CAP_NET_ADMIN, in the pod's network namespace. */
#include "lanyard/cli.h"
#include "lanyard/err.h"
#include "lanyard/intercept.h"
#include "lanyard/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum {
  OPT_PROXY_UID = 256,
  OPT_INBOUND_PORT,
  OPT_OUTBOUND_PORT,
  OPT_ADMIN_PORT,
  OPT_EXCLUDE_IN,
  OPT_EXCLUDE_OUT,
  OPT_INCLUDE_IN,
  OPT_EXCLUDE_CIDRS,
  OPT_IPV6,
  OPT_NO_IPV6,
  OPT_REMOVE,
  OPT_DRY_RUN,
};

static void usage(FILE *out) {
  static const char *const lines[] = {
      "usage: lanyard iptables [options]",
      "",
      "Installs the nat-table rules that send the pod's TCP traffic through",
      "the agent (once per pod, with CAP_NET_ADMIN). Installing again",
      "replaces the rules in one transaction.",
      "",
      "  --proxy-uid UID             the agent's UID, never caught (1337)",
      "  --inbound-port PORT         inbound capture port (15006)",
      "  --outbound-port PORT        outbound capture port (15001)",
      "  --admin-port PORT           agent admin port, always exempt (15020)",
      "  --exclude-inbound-ports L   not captured inbound (15020,15014)",
      "  --exclude-outbound-ports L  not captured outbound (none)",
      "  --include-inbound-ports L   captured inbound, or '*' (*)",
      "  --exclude-outbound-cidrs L  destinations not captured (none)",
      "  --ipv6 | --no-ipv6          ip6tables too (default: if IPv6 is on)",
      "  --remove                    remove the rules instead",
      "  --dry-run                   print the rules, change nothing",
      "",
      "Lists are comma-separated; '' is an empty list.",
  };
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    fprintf(out, "%s\n", lines[i]);
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out) {
  char *end;
  if (!*s || *s < '0' || *s > '9')
    return LY_EPARSE;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || v > max)
    return LY_EPARSE;
  *out = (uint32_t)v;
  return 0;
}

static int parse_port(const char *s, uint16_t *out) {
  uint32_t v;
  if (parse_u32(s, 65535, &v) != 0 || v == 0)
    return LY_EPARSE;
  *out = (uint16_t)v;
  return 0;
}

static const char *family_name(int family) {
  return family == AF_INET6 ? "ipv6" : "ipv4";
}

/* Dry run of --remove: what would be removed from the current tables
 * (reading them changes nothing). */
static int dry_run_remove(int family) {
  const char *why = NULL;
  char *text = NULL;
  int rc;
  printf("# %s\n", family == AF_INET6 ? "ip6tables-restore --noflush"
                                      : "iptables-restore --noflush");
  rc = ly_iptables_remove_preview(family, &text, &why);
  if (rc != 0) {
    ly_cli_error("iptables", "%s: %s", why, ly_strerror(rc));
    return rc;
  }
  fputs(text ? text : "# nothing to remove\n", stdout);
  free(text);
  return 0;
}

int ly_cmd_iptables(int argc, char **argv) {
  static const struct option opts[] = {
      {"proxy-uid", required_argument, NULL, OPT_PROXY_UID},
      {"inbound-port", required_argument, NULL, OPT_INBOUND_PORT},
      {"outbound-port", required_argument, NULL, OPT_OUTBOUND_PORT},
      {"admin-port", required_argument, NULL, OPT_ADMIN_PORT},
      {"exclude-inbound-ports", required_argument, NULL, OPT_EXCLUDE_IN},
      {"exclude-outbound-ports", required_argument, NULL, OPT_EXCLUDE_OUT},
      {"include-inbound-ports", required_argument, NULL, OPT_INCLUDE_IN},
      {"exclude-outbound-cidrs", required_argument, NULL, OPT_EXCLUDE_CIDRS},
      {"ipv6", no_argument, NULL, OPT_IPV6},
      {"no-ipv6", no_argument, NULL, OPT_NO_IPV6},
      {"remove", no_argument, NULL, OPT_REMOVE},
      {"dry-run", no_argument, NULL, OPT_DRY_RUN},
      {"help", no_argument, NULL, 'h'},
      {0}};
  ly_iptables_opts_t o;
  const char *why = NULL, *bad = NULL;
  int remove = 0, dry_run = 0, c, rc = 0;

  ly_iptables_opts_init(&o);
  optind = 1;
  ly_cli_name(argv, "iptables");
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_PROXY_UID:
      /* (uid_t)-1 means "no change" to the kernel: not a real UID. */
      if (parse_u32(optarg, 0xfffffffeu, &o.proxy_uid) != 0)
        bad = "--proxy-uid must be a number";
      break;
    case OPT_INBOUND_PORT:
      if (parse_port(optarg, &o.inbound_port) != 0)
        bad = "--inbound-port must be 1..65535";
      break;
    case OPT_OUTBOUND_PORT:
      if (parse_port(optarg, &o.outbound_port) != 0)
        bad = "--outbound-port must be 1..65535";
      break;
    case OPT_ADMIN_PORT:
      if (parse_port(optarg, &o.admin_port) != 0)
        bad = "--admin-port must be 1..65535";
      break;
    case OPT_EXCLUDE_IN:
      if (ly_iptables_parse_ports(optarg, &o.exclude_inbound, &why) != 0)
        bad = "--exclude-inbound-ports";
      break;
    case OPT_EXCLUDE_OUT:
      if (ly_iptables_parse_ports(optarg, &o.exclude_outbound, &why) != 0)
        bad = "--exclude-outbound-ports";
      break;
    case OPT_INCLUDE_IN:
      o.include_all_inbound = !strcmp(optarg, "*");
      if (!o.include_all_inbound &&
          ly_iptables_parse_ports(optarg, &o.include_inbound, &why) != 0)
        bad = "--include-inbound-ports";
      break;
    case OPT_EXCLUDE_CIDRS:
      if (ly_iptables_parse_cidrs(optarg, &o, &why) != 0)
        bad = "--exclude-outbound-cidrs";
      break;
    case OPT_IPV6:
      o.ipv6 = LY_IPT_IPV6_ON;
      break;
    case OPT_NO_IPV6:
      o.ipv6 = LY_IPT_IPV6_OFF;
      break;
    case OPT_REMOVE:
      remove = 1;
      break;
    case OPT_DRY_RUN:
      dry_run = 1;
      break;
    case 'h':
      usage(stdout);
      return LY_EXIT_OK;
    default:
      usage(stderr);
      return LY_EXIT_USAGE;
    }
    if (bad) {
      ly_cli_error("iptables", "%s%s%s", bad, why ? ": " : "", why ? why : "");
      return LY_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    ly_cli_error("iptables", "unexpected argument '%s'", argv[optind]);
    return LY_EXIT_USAGE;
  }
  if (o.inbound_port == o.outbound_port) {
    ly_cli_error("iptables", "the inbound and outbound ports must "
                             "differ");
    return LY_EXIT_USAGE;
  }

  int families[2] = {AF_INET, AF_INET6};
  int nfam = ly_iptables_want_ipv6(&o) ? 2 : 1;
  for (int i = 0; i < nfam; i++) {
    int fam = families[i];
    if (dry_run && remove) {
      rc = dry_run_remove(fam);
    } else if (dry_run) {
      char *text = NULL;
      rc = ly_iptables_ruleset(&o, fam, NULL, &text);
      if (rc == 0)
        printf("# %s\n%s",
               fam == AF_INET6 ? "ip6tables-restore --noflush"
                               : "iptables-restore --noflush",
               text);
      free(text);
    } else if (remove) {
      rc = ly_iptables_remove(fam, &why);
      if (rc == 0)
        ly_log(LY_INFO, "iptables_removed", "family", family_name(fam), NULL);
    } else {
      char in[8], out[8], uid[16];
      rc = ly_iptables_apply(&o, fam, &why);
      if (rc == 0)
        ly_log(LY_INFO, "iptables_installed", "family", family_name(fam),
               "inbound_port", ly_fmt(in, sizeof(in), "%u", o.inbound_port),
               "outbound_port", ly_fmt(out, sizeof(out), "%u", o.outbound_port),
               "proxy_uid", ly_fmt(uid, sizeof(uid), "%u", o.proxy_uid), NULL);
    }
    if (rc != 0) {
      if (!dry_run)
        ly_log(LY_ERROR,
               remove ? "iptables_remove_failed" : "iptables_install_failed",
               "family", family_name(fam), "reason", why ? why : "-", "error",
               ly_strerror(rc), NULL);
      return LY_EXIT_FAIL;
    }
  }
  return LY_EXIT_OK;
}
