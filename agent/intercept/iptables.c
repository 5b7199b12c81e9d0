/* The rules of `lanyard iptables` (layout in include/lanyard/intercept.h):
 * the nat table's redirects and the raw table's conntrack zone, and
 * applying or removing them.
 *
 * Why iptables-restore --noflush and not one `iptables` call per rule:
 * - One transaction per family. With Debian 12's default iptables (the
 *   nf_tables backend, iptables-nft) a restore is a single netlink batch,
 *   and iptables-legacy-restore commits a table at once too. A re-install
 *   (remove the old rules, add the new ones) is therefore atomic: no
 *   moment where the pod's traffic escapes the agent, and a failure
 *   leaves the previous rules untouched instead of half of each.
 * - --noflush keeps every rule that is not ours (CNI, kube-proxy, other
 *   init containers): only the chains we declare are flushed.
 * - The same text works with either backend, so `iptables-restore` is run
 *   as found (Debian's alternatives pick nft); we never mix backends
 *   ourselves.
 * The removal is computed from `iptables-save -t nat` and `-t raw`: every
 * LANYARD_ chain and every jump into one, which is exactly what an
 * install adds.
 * The tools are run with fork/exec, never through a shell.
 */
#define _GNU_SOURCE /* pipe2 */
#include "lanyard/err.h"
#include "lanyard/intercept.h"

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CH_INBOUND "LANYARD_INBOUND"
#define CH_IN_REDIRECT "LANYARD_IN_REDIRECT"
#define CH_OUTPUT "LANYARD_OUTPUT"
#define CH_REDIRECT "LANYARD_REDIRECT"
#define CH_CONNTRACK "LANYARD_CONNTRACK"

/* The tables we write to, and the chains an install declares in each. */
typedef struct {
  const char *name;
  const char *const *chains;
  size_t nchains;
} table_t;
static const char *const nat_chains[] = {CH_INBOUND, CH_IN_REDIRECT, CH_OUTPUT,
                                         CH_REDIRECT};
static const char *const raw_chains[] = {CH_CONNTRACK};
static const table_t nat_table = {"nat", nat_chains, 4};
static const table_t raw_table = {"raw", raw_chains, 1};
static const table_t *const our_tables[] = {&nat_table, &raw_table};

/* iptables-save of a busy node's nat table is large, but not this large. */
#define SAVE_MAX (64u << 20)

/* --- a growing string ---------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
  int oom; /* sticky: checked once at the end */
} sb_t;

__attribute__((format(printf, 2, 0))) static void
sb_vadd(sb_t *b, const char *fmt, va_list ap) {
  if (b->oom)
    return;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + (size_t)n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  b->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) static void sb_add(sb_t *b,
                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vadd(b, fmt, ap);
  va_end(ap);
}

/* Hands the string over (NULL and UV_ENOMEM if any append failed). */
static int sb_finish(sb_t *b, char **out) {
  if (b->oom || !b->p) {
    free(b->p);
    *out = NULL;
    return UV_ENOMEM;
  }
  *out = b->p;
  return 0;
}

/* --- options ------------------------------------------------------------- */

void ly_iptables_opts_init(ly_iptables_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->proxy_uid = 1337;
  o->inbound_port = 15006;
  o->outbound_port = 15001;
  o->admin_port = 15020;
  o->exclude_inbound.v[0] = 15020;
  o->exclude_inbound.v[1] = 15014;
  o->exclude_inbound.n = 2;
  o->include_all_inbound = 1;
  o->ipv6 = LY_IPT_IPV6_AUTO;
}

static int ports_has(const ly_ports_t *p, uint16_t port) {
  for (size_t i = 0; i < p->n; i++)
    if (p->v[i] == port)
      return 1;
  return 0;
}

int ly_iptables_parse_ports(const char *s, ly_ports_t *out, const char **why) {
  ly_ports_t p = {0};
  while (*s) {
    unsigned long v = 0;
    size_t digits = 0;
    for (; *s >= '0' && *s <= '9' && digits < 6; s++, digits++)
      v = v * 10 + (unsigned long)(*s - '0');
    LY_ENSURE_WHY(digits > 0 && (*s == ',' || *s == '\0'), LY_EPARSE, why,
                  "ports must be a comma-separated list of numbers");
    LY_ENSURE_WHY(v >= 1 && v <= 65535, LY_EPARSE, why,
                  "a port must be 1..65535");
    if (!ports_has(&p, (uint16_t)v)) {
      LY_ENSURE_WHY(p.n < LY_IPT_MAX_PORTS, LY_EPARSE, why,
                    "too many ports (at most 64)");
      p.v[p.n++] = (uint16_t)v;
    }
    if (*s == ',') {
      s++;
      LY_ENSURE_WHY(*s, LY_EPARSE, why, "a port list may not end with ','");
    }
  }
  *out = p;
  return 0;
}

int ly_iptables_parse_cidrs(const char *s, ly_iptables_opts_t *o,
                            const char **why) {
  ly_cidr_t got[LY_IPT_MAX_CIDRS];
  char item[64];
  size_t n = 0;
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    LY_ENSURE_WHY(len > 0 && len < sizeof(item), LY_EPARSE, why,
                  "CIDRs must be a comma-separated list like 10.0.0.0/8");
    LY_ENSURE_WHY(n < LY_IPT_MAX_CIDRS, LY_EPARSE, why,
                  "too many CIDRs (at most 64)");
    memcpy(item, s, len);
    item[len] = '\0';
    LY_GUARD(ly_cidr_parse(item, &got[n], why));
    n++;
    s += len;
    if (*s == ',') {
      s++;
      LY_ENSURE_WHY(*s, LY_EPARSE, why, "a CIDR list may not end with ','");
    }
  }
  /* Only a whole, valid list replaces the old one. */
  memcpy(o->exclude_outbound_cidrs, got, n * sizeof(got[0]));
  o->nexclude_outbound_cidrs = n;
  return 0;
}

int ly_iptables_want_ipv6(const ly_iptables_opts_t *o) {
  switch (o->ipv6) {
  case LY_IPT_IPV6_ON:
    return 1;
  case LY_IPT_IPV6_OFF:
    return 0;
  case LY_IPT_IPV6_AUTO:
  default:
    /* Present when the kernel has IPv6 at all. Rules for IPv4 alone on a
     * dual-stack pod would let its IPv6 traffic bypass the agent. */
    return access("/proc/net/if_inet6", F_OK) == 0;
  }
}

/* --- reading iptables-save ---------------------------------------------- */

/* The next token of an iptables-save rule line: a word, or a "quoted"
 * string with \" escapes (comments). Returns its start and length, or
 * NULL at the end of the line. */
static const char *next_token(const char **p, size_t *len) {
  const char *s = *p;
  while (*s == ' ' || *s == '\t')
    s++;
  if (!*s || *s == '\n')
    return NULL;
  const char *start = s;
  if (*s == '"') {
    for (s++; *s && *s != '\n' && *s != '"'; s++)
      if (*s == '\\' && s[1] && s[1] != '\n')
        s++;
    if (*s == '"')
      s++;
  } else {
    while (*s && *s != ' ' && *s != '\t' && *s != '\n')
      s++;
  }
  *len = (size_t)(s - start);
  *p = s;
  return start;
}

static int is_ours(const char *name, size_t len) {
  size_t plen = strlen(LY_IPT_CHAIN_PREFIX);
  return len > plen && !strncmp(name, LY_IPT_CHAIN_PREFIX, plen);
}

static int is_declared(const table_t *t, const char *name, size_t len) {
  for (size_t i = 0; i < t->nchains; i++)
    if (strlen(t->chains[i]) == len && !strncmp(t->chains[i], name, len))
      return 1;
  return 0;
}

/* Adds to b the lines that undo what table t in `save` holds of ours:
 * "-D" for every jump into a LANYARD_ chain from a chain that is not one,
 * then "-F" and "-X" for the LANYARD_ chains (all flushed before any is
 * deleted, since they jump to each other). keep_declared: leave the
 * table's current chains alone (the caller declares, hence flushes,
 * them). Counts what it found in *found. */
static void undo_lines(sb_t *b, const char *save, const table_t *t,
                       int keep_declared, size_t *found) {
  sb_t chains = {0}; /* names to delete, one per line */
  int in_table = 0;
  size_t name_len = strlen(t->name);
  *found = 0;
  for (const char *line = save; line && *line;) {
    const char *eol = strchr(line, '\n');
    size_t llen = eol ? (size_t)(eol - line) : strlen(line);
    if (line[0] == '*') {
      in_table = llen == name_len + 1 && !strncmp(line + 1, t->name, name_len);
    } else if (in_table && line[0] == ':') {
      size_t n = strcspn(line + 1, " \t\n");
      if (is_ours(line + 1, n)) {
        (*found)++;
        if (!keep_declared || !is_declared(t, line + 1, n))
          sb_add(&chains, "%.*s\n", (int)n, line + 1);
      }
    } else if (in_table && !strncmp(line, "-A ", 3)) {
      const char *p = line + 3, *tok, *chain;
      size_t tlen, clen;
      int target_ours = 0, want_target = 0;
      chain = next_token(&p, &clen);
      while (chain && (tok = next_token(&p, &tlen))) {
        if (want_target && is_ours(tok, tlen))
          target_ours = 1;
        want_target =
            (tlen == 2 && (!strncmp(tok, "-j", 2) || !strncmp(tok, "-g", 2)));
      }
      /* Jumps between our own chains go away with the chains. */
      if (chain && target_ours && !is_ours(chain, clen)) {
        (*found)++;
        sb_add(b, "-D %.*s\n", (int)(llen - 3), line + 3);
      }
    }
    line = eol ? eol + 1 : NULL;
  }
  if (chains.oom)
    b->oom = 1;
  for (int pass = 0; pass < 2 && chains.p; pass++) {
    for (const char *c = chains.p; *c;) {
      size_t n = strcspn(c, "\n");
      sb_add(b, "%s %.*s\n", pass == 0 ? "-F" : "-X", (int)n, c);
      c += n + (c[n] == '\n');
    }
  }
  free(chains.p);
}

int ly_iptables_cleanup(const char *current, char **out) {
  sb_t b = {0};
  size_t total = 0;
  *out = NULL;
  for (size_t i = 0; i < sizeof(our_tables) / sizeof(our_tables[0]); i++) {
    sb_t t = {0};
    size_t found = 0;
    undo_lines(&t, current, our_tables[i], 0, &found);
    if (found)
      sb_add(&b, "*%s\n%sCOMMIT\n", our_tables[i]->name, t.p ? t.p : "");
    b.oom |= t.oom;
    free(t.p);
    total += found;
  }
  if (total == 0 && !b.oom) {
    free(b.p);
    return 0;
  }
  return sb_finish(&b, out);
}

/* --- the rules ----------------------------------------------------------- */

int ly_iptables_ruleset(const ly_iptables_opts_t *o, int family,
                        const char *current, char **out) {
  *out = NULL;
  if (family != AF_INET && family != AF_INET6)
    return UV_EINVAL;
  const char *loopback = family == AF_INET ? "127.0.0.0/8" : "::1/128";
  unsigned uid = o->proxy_uid;
  sb_t b = {0};
  size_t found = 0;

  sb_add(&b, "*nat\n");
  /* Declaring a chain under --noflush creates it, or flushes it when an
   * earlier install left it: the re-install is part of this transaction. */
  for (size_t i = 0; i < nat_table.nchains; i++)
    sb_add(&b, ":%s - [0:0]\n", nat_table.chains[i]);
  if (current)
    undo_lines(&b, current, &nat_table, 1, &found);

  /* Inbound. Exclusions come first so they win over an include list; the
   * agent's admin port is always among them (probes and scrapes reach it
   * in plaintext). */
  for (size_t i = 0; i < o->exclude_inbound.n; i++)
    sb_add(&b, "-A " CH_INBOUND " -p tcp --dport %u -j RETURN\n",
           o->exclude_inbound.v[i]);
  if (o->admin_port && !ports_has(&o->exclude_inbound, o->admin_port))
    sb_add(&b, "-A " CH_INBOUND " -p tcp --dport %u -j RETURN\n",
           o->admin_port);
  if (o->include_all_inbound)
    sb_add(&b, "-A " CH_INBOUND " -p tcp -j " CH_IN_REDIRECT "\n");
  else
    for (size_t i = 0; i < o->include_inbound.n; i++)
      sb_add(&b, "-A " CH_INBOUND " -p tcp --dport %u -j " CH_IN_REDIRECT "\n",
             o->include_inbound.v[i]);
  sb_add(&b, "-A " CH_IN_REDIRECT " -p tcp -j REDIRECT --to-ports %u\n",
         o->inbound_port);

  /* Outbound. Port exclusions first: they hold for every sender. */
  for (size_t i = 0; i < o->exclude_outbound.n; i++)
    sb_add(&b, "-A " CH_OUTPUT " -p tcp --dport %u -j RETURN\n",
           o->exclude_outbound.v[i]);
  /* The app calls itself through a service address: app -> agent
   * (outbound) -> the pod's own IP, which the kernel routes over lo. That
   * leg is the agent's (proxy UID) and goes through the inbound chain, so
   * the pod's own inbound policy applies to it exactly as to a peer's. No
   * loop: the agent forwards inbound connections to localhost, which this
   * rule leaves alone. */
  sb_add(&b,
         "-A " CH_OUTPUT " -o lo ! -d %s -m owner --uid-owner %u -j " CH_INBOUND
         "\n",
         loopback, uid);
  /* The app calling its own pod IP directly stays inside the pod: it is
   * not sent through the agent (which would see plaintext from itself). */
  sb_add(&b, "-A " CH_OUTPUT " -o lo -m owner ! --uid-owner %u -j RETURN\n",
         uid);
  /* The agent's own connections, or it would catch itself forever. */
  sb_add(&b, "-A " CH_OUTPUT " -m owner --uid-owner %u -j RETURN\n", uid);
  /* Explicit localhost: sidecar-aware apps and container-to-container. */
  sb_add(&b, "-A " CH_OUTPUT " -d %s -j RETURN\n", loopback);
  for (size_t i = 0; i < o->nexclude_outbound_cidrs; i++) {
    const ly_cidr_t *c = &o->exclude_outbound_cidrs[i];
    char ip[INET6_ADDRSTRLEN];
    if (c->family != family)
      continue;
    inet_ntop(c->family, c->addr, ip, sizeof(ip));
    sb_add(&b, "-A " CH_OUTPUT " -d %s/%u -j RETURN\n", ip, c->prefix_len);
  }
  sb_add(&b, "-A " CH_OUTPUT " -j " CH_REDIRECT "\n");
  sb_add(&b, "-A " CH_REDIRECT " -p tcp -j REDIRECT --to-ports %u\n",
         o->outbound_port);

  /* The hooks last: reading top down, the chains are whole before any
   * traffic is sent into them. */
  sb_add(&b, "-A PREROUTING -p tcp -j " CH_INBOUND "\n");
  sb_add(&b, "-A OUTPUT -p tcp -j " CH_OUTPUT "\n");
  sb_add(&b, "COMMIT\n");

  /* The agent's connections get a conntrack zone of their own (for their
   * original direction; replies still match in the default zone). The
   * app and the agent connect from one address, to the same
   * destinations, picking source ports from one sequence. When the agent
   * resets an app connection it had accepted (no identity yet, a
   * refusal), the kernel keeps that NATed entry in CLOSE for 10 s, and a
   * SYN with the same ports reopens it, NAT included. Without zones the
   * agent's next connection from that port would be redirected back
   * into the agent, and an app connection reusing the ports of one of
   * the agent's reset connections would leave the pod uncaptured, in
   * plaintext. */
  sb_add(&b, "*raw\n:" CH_CONNTRACK " - [0:0]\n");
  if (current)
    undo_lines(&b, current, &raw_table, 1, &found);
  sb_add(&b,
         "-A " CH_CONNTRACK " -m owner --uid-owner %u -j CT --zone-orig %u\n",
         uid, (unsigned)LY_IPT_CT_ZONE);
  sb_add(&b, "-A OUTPUT -p tcp -j " CH_CONNTRACK "\n");
  sb_add(&b, "COMMIT\n");
  return sb_finish(&b, out);
}

/* --- running the tools --------------------------------------------------- */

/* Runs `tool args...` without a shell. `in`: written to its stdin (NULL:
 * /dev/null); `out`: its stdout, captured (NULL: ours). Never both, so
 * neither side can block on a full pipe. The tool is looked up in PATH,
 * then in /usr/sbin and /sbin, where Debian keeps iptables but a minimal
 * PATH may not reach. 0, the exec errno as a uv code, or LY_EUNAVAILABLE
 * when it exited non-zero. */
static int run_tool(const char *tool, const char *arg1, const char *arg2,
                    const char *arg3, const char *in, char **out) {
  char sbin[2][96];
  char *argv[] = {(char *)tool, (char *)arg1, (char *)arg2, (char *)arg3, NULL};
  int errp[2] = {-1, -1}, data[2] = {-1, -1}, rc = 0, status = 0;
  int child_errno = 0, too_big = 0;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
  sb_t got = {0};
  pid_t pid = -1;

  snprintf(sbin[0], sizeof(sbin[0]), "/usr/sbin/%s", tool);
  snprintf(sbin[1], sizeof(sbin[1]), "/sbin/%s", tool);
  if (out)
    *out = NULL;
  /* A tool that dies before reading its input must give us EPIPE, not
   * kill the whole command with SIGPIPE. */
  sigaction(SIGPIPE, &ign, &old_pipe);
  if (pipe2(errp, O_CLOEXEC) != 0 || ((in || out) && pipe2(data, O_CLOEXEC))) {
    rc = uv_translate_sys_error(errno);
    goto cleanup;
  }
  pid = fork();
  if (pid < 0) {
    rc = uv_translate_sys_error(errno);
    goto cleanup;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (in)
      dup2(data[0], STDIN_FILENO);
    else if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    if (out)
      dup2(data[1], STDOUT_FILENO);
    sigaction(SIGPIPE, &old_pipe, NULL);
    execvp(tool, argv);
    int e = errno;
    execv(sbin[0], argv);
    execv(sbin[1], argv);
    /* Report the PATH lookup's error: it names the usual cause. */
    if (write(errp[1], &e, sizeof(e)) < 0)
      _exit(127);
    _exit(127);
  }
  close(errp[1]);
  errp[1] = -1;
  if (in) {
    close(data[0]);
    data[0] = -1;
    for (size_t off = 0, len = strlen(in); off < len;) {
      ssize_t n = write(data[1], in + off, len - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* the exit status says what went wrong */
      off += (size_t)n;
    }
    close(data[1]);
    data[1] = -1;
  } else if (out) {
    close(data[1]);
    data[1] = -1;
    char buf[8192];
    for (;;) {
      ssize_t n = read(data[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (got.len + (size_t)n > SAVE_MAX)
        too_big = 1;
      if (!too_big)
        sb_add(&got, "%.*s", (int)n, buf);
    }
  }
  ssize_t en;
  do
    en = read(errp[0], &child_errno, sizeof(child_errno));
  while (en < 0 && errno == EINTR);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (en == (ssize_t)sizeof(child_errno))
    rc = uv_translate_sys_error(child_errno);
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = LY_EUNAVAILABLE;
  else if (too_big)
    rc = LY_ETOO_BIG;
  else if (out) {
    sb_add(&got, "%s", ""); /* empty output is still a string */
    rc = sb_finish(&got, out);
    got.p = NULL; /* handed over, or freed */
  }

cleanup:
  for (int i = 0; i < 2; i++) {
    if (errp[i] >= 0)
      close(errp[i]);
    if (data[i] >= 0)
      close(data[i]);
  }
  free(got.p);
  sigaction(SIGPIPE, &old_pipe, NULL);
  return rc;
}

static const char *tool_name(int family, int restore) {
  if (family == AF_INET6)
    return restore ? "ip6tables-restore" : "ip6tables-save";
  return restore ? "iptables-restore" : "iptables-save";
}

/* Our tables, as iptables-save prints them, one after the other. */
static int read_tables(int family, char **save, const char **why) {
  sb_t all = {0};
  int rc = 0;
  *save = NULL;
  for (size_t i = 0; i < sizeof(our_tables) / sizeof(our_tables[0]); i++) {
    char *one = NULL;
    rc = run_tool(tool_name(family, 0), "-t", our_tables[i]->name, NULL, NULL,
                  &one);
    if (rc != 0)
      break;
    sb_add(&all, "%s", one);
    free(one);
  }
  if (rc == UV_ENOENT)
    *why = family == AF_INET6 ? "ip6tables-save not found (install iptables)"
                              : "iptables-save not found (install iptables)";
  else if (rc != 0)
    *why =
        family == AF_INET6 ? "ip6tables-save failed" : "iptables-save failed";
  if (rc != 0) {
    free(all.p);
    return rc;
  }
  sb_add(&all, "%s", ""); /* empty output is still a string */
  return sb_finish(&all, save);
}

static int restore(int family, const char *text, const char **why) {
  /* -w: wait for the xtables lock that iptables-legacy takes (nft
   * ignores it) rather than fail beside a concurrent CNI plugin. */
  int rc = run_tool(tool_name(family, 1), "--noflush", "-w", "5", text, NULL);
  if (rc == UV_ENOENT)
    *why = family == AF_INET6 ? "ip6tables-restore not found (install iptables)"
                              : "iptables-restore not found (install iptables)";
  else if (rc != 0)
    *why = family == AF_INET6 ? "ip6tables-restore failed"
                              : "iptables-restore failed";
  return rc;
}

int ly_iptables_apply(const ly_iptables_opts_t *o, int family,
                      const char **why) {
  char *save = NULL, *text = NULL;
  int rc = read_tables(family, &save, why);
  if (rc != 0)
    goto cleanup;
  rc = ly_iptables_ruleset(o, family, save, &text);
  if (rc != 0) {
    *why = "cannot build the rules";
    goto cleanup;
  }
  rc = restore(family, text, why);

cleanup:
  free(save);
  free(text);
  return rc;
}

int ly_iptables_remove_preview(int family, char **out, const char **why) {
  char *save = NULL;
  int rc = read_tables(family, &save, why);
  *out = NULL;
  if (rc == 0 && (rc = ly_iptables_cleanup(save, out)) != 0)
    *why = "cannot build the removal";
  free(save);
  return rc;
}

int ly_iptables_remove(int family, const char **why) {
  char *text = NULL;
  int rc = ly_iptables_remove_preview(family, &text, why);
  if (rc == 0 && text)
    rc = restore(family, text, why);
  free(text);
  return rc;
}
