/* `lanyard svid verify`: an operator's view of SVID verification. The
 * verdict comes from ly_svid_verify and ly_cert_check_end_entity (with
 * --chain-only, ly_chain_verify and ly_cert_check_end_entity), the library
 * code the agent checks its SVIDs and the CA its chain with, never from a
 * second implementation; REJECTED carries the library's reason, which
 * starts with the closed reason word the metrics use (unknown_ca, expired,
 * bad_identity, protocol).
 *
 * By default it asks what an agent asks of a peer: an ID in the trust
 * domain (the agent's comes from its config; here it is the one the
 * bundle's roots name) and, in a leaf with extendedKeyUsage, both
 * serverAuth and clientAuth (an agent's server side requires clientAuth
 * of its clients, its client side serverAuth of its servers). Anything
 * looser is asked for by name. */
#include "lanyard/cause.h"
#include "lanyard/cli.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/spiffe.h"
#include "lanyard/x509.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEM_MAX (16u << 20) /* bundles with hundreds of roots still fit */
#define UNTRUSTED_MAX 8

static const char prog[] = "svid verify";

static void verify_usage(FILE *out) {
  fprintf(
      out,
      "usage: lanyard svid verify --bundle BUNDLE.pem [--at TIME] "
      "[--chain-only]\n"
      "         [--id SPIFFE-ID] [--trust-domain TD | --any-trust-domain]\n"
      "         [--key KEY.pem] [--untrusted FILE]...\n"
      "         [--eku serverAuth|clientAuth | --ignore-eku] CERT.pem\n"
      "\n"
      "Verifies CERT.pem (the SVID, then its intermediates) against the\n"
      "roots in BUNDLE.pem, as the agent does.\n"
      "  --at TIME           verify at TIME: unix seconds or RFC 3339\n"
      "                      (2026-01-02T03:04:05Z); default: now\n"
      "  --chain-only        plain X.509: skip the SPIFFE rules\n"
      "  --id ID             require exactly this SPIFFE ID\n"
      "  --trust-domain TD   require an ID in this trust domain; default:\n"
      "                      the one the bundle's roots name (spiffe://TD)\n"
      "  --any-trust-domain  accept an ID of any trust domain\n"
      "  --key KEY.pem       require the leaf to carry this key\n"
      "  --untrusted FILE    more intermediates (repeatable)\n"
      "  --eku PURPOSE       a leaf with extendedKeyUsage must allow\n"
      "                      PURPOSE (repeatable): serverAuth judges it as\n"
      "                      an agent's client judges a server, clientAuth\n"
      "                      as its server judges a client; default: both\n"
      "                      (with --chain-only: none)\n"
      "  --ignore-eku        do not look at extendedKeyUsage\n"
      "Prints 'OK <id> serial=... not_after=...' or 'REJECTED <reason>'.\n"
      "Exit status: 0 valid, 1 rejected, 2 usage or unreadable input.\n");
}

/* ---- times ---------------------------------------------------------------*/

static int parse_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int expect_char(const char **p, const char *set) {
  if (!**p || !strchr(set, **p))
    return -1;
  (*p)++;
  return 0;
}

/* RFC 3339 date-time (fractions of a second are dropped: certificates
 * count whole seconds), or plain unix seconds. */
static int parse_time(const char *s, int64_t *out) {
  if (*s && strspn(s, "0123456789") == strlen(s)) {
    if (strlen(s) > 15)
      return -1;
    *out = (int64_t)strtoll(s, NULL, 10);
    return 0;
  }
  const char *p = s;
  int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
  if (parse_digits(&p, 4, &y) || expect_char(&p, "-") ||
      parse_digits(&p, 2, &mo) || expect_char(&p, "-") ||
      parse_digits(&p, 2, &d) || expect_char(&p, "Tt ") ||
      parse_digits(&p, 2, &h) || expect_char(&p, ":") ||
      parse_digits(&p, 2, &mi) || expect_char(&p, ":") ||
      parse_digits(&p, 2, &sec))
    return -1;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return -1;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '-' ? -1 : 1;
    if (parse_digits(&p, 2, &oh) || expect_char(&p, ":") ||
        parse_digits(&p, 2, &om) || oh > 23 || om > 59)
      return -1;
  } else {
    return -1;
  }
  /* 60 is a leap second; timegm folds it into the next minute */
  if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      sec > 60)
    return -1;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = sec};
  time_t t = timegm(&tm);
  /* timegm normalizes 31 February into March; a date that moved was not
   * a date */
  if (tm.tm_mday != d && sec != 60)
    return -1;
  *out = (int64_t)t - sign * (oh * 3600 + om * 60);
  return 0;
}

static void format_time(int64_t t, char *buf, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, cap, "%lld", (long long)t);
}

/* ---- inputs -----------------------------------------------------------------
 * A file that cannot be read, or holds no certificate at all, is a usage
 * problem (exit 2); a certificate that is there but malformed is a verdict
 * on what was presented (exit 1). */

typedef enum { LOAD_OK, LOAD_UNREADABLE, LOAD_MALFORMED } load_t;

static load_t load_certs(const char *what, const char *path, ly_chain_t *out) {
  char *pem = NULL;
  size_t len = 0;
  const char *why = NULL;
  int rc = ly_file_read(path, PEM_MAX, &pem, &len);
  if (rc != 0) {
    ly_cli_error(prog, "%s %s: %s", what, path, ly_strerror(rc));
    return LOAD_UNREADABLE;
  }
  rc = ly_chain_from_pem(pem, len, out, &why);
  free(pem);
  if (rc == 0)
    return LOAD_OK;
  if (rc == LY_ECERT)
    return LOAD_MALFORMED;
  ly_cli_error(prog, "%s %s: %s", what, path, why ? why : ly_strerror(rc));
  return LOAD_UNREADABLE;
}

static int load_key(const char *path, ly_key_t **key) {
  char *pem = NULL;
  size_t len = 0;
  const char *why = NULL;
  int rc = ly_file_read(path, PEM_MAX, &pem, &len);
  if (rc == 0)
    rc = ly_key_from_pem(pem, len, key, &why);
  if (rc != 0)
    ly_cli_error(prog, "key %s: %s", path, why ? why : ly_strerror(rc));
  if (pem)
    ly_wipe(pem, len);
  free(pem);
  return rc;
}

static int append_chain(ly_chain_t *dst, const ly_chain_t *src) {
  for (size_t i = 0; i < src->n; i++)
    LY_GUARD(ly_chain_push(dst, src->certs[i].der, src->certs[i].len));
  return 0;
}

static int parse_eku(const char *s, unsigned *eku) {
  if (!strcmp(s, "serverAuth"))
    *eku |= LY_EKU_SERVER_AUTH;
  else if (!strcmp(s, "clientAuth"))
    *eku |= LY_EKU_CLIENT_AUTH;
  else
    return -1;
  return 0;
}

/* ---- verify ---------------------------------------------------------------*/

typedef struct {
  const char *bundle, *cert, *key, *id, *td;
  const char *untrusted[UNTRUSTED_MAX];
  int n_untrusted;
  int chain_only, has_at, any_td, ignore_eku;
  int64_t at;
  unsigned eku;
} verify_opts_t;

/* 0 with o filled in; else -1 with the exit code in *status: LY_EXIT_OK
 * after --help, LY_EXIT_USAGE otherwise (the problem is on stderr). */
static int verify_parse(int argc, char **argv, verify_opts_t *o, int *status) {
  static const struct option opts[] = {
      {"bundle", required_argument, NULL, 'b'},
      {"at", required_argument, NULL, 'a'},
      {"chain-only", no_argument, NULL, 'c'},
      {"id", required_argument, NULL, 'i'},
      {"trust-domain", required_argument, NULL, 't'},
      {"key", required_argument, NULL, 'k'},
      {"untrusted", required_argument, NULL, 'u'},
      {"eku", required_argument, NULL, 'e'},
      {"any-trust-domain", no_argument, NULL, 'A'},
      {"ignore-eku", no_argument, NULL, 'E'},
      {"help", no_argument, NULL, 'h'},
      {0}};
  const char *why = NULL;
  int c;
  optind = 1;
  ly_cli_name(argv, prog);
  *status = LY_EXIT_USAGE;
  while ((c = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
    switch (c) {
    case 'b':
      o->bundle = optarg;
      break;
    case 'a':
      if (parse_time(optarg, &o->at) != 0) {
        ly_cli_error(prog,
                     "--at '%s': not unix seconds or an RFC 3339 time "
                     "(2026-01-02T03:04:05Z)",
                     optarg);
        return -1;
      }
      o->has_at = 1;
      break;
    case 'c':
      o->chain_only = 1;
      break;
    case 'i':
      o->id = optarg;
      break;
    case 't':
      o->td = optarg;
      break;
    case 'k':
      o->key = optarg;
      break;
    case 'u':
      if (o->n_untrusted == UNTRUSTED_MAX) {
        ly_cli_error(prog, "at most %d --untrusted files", UNTRUSTED_MAX);
        return -1;
      }
      o->untrusted[o->n_untrusted++] = optarg;
      break;
    case 'e':
      if (parse_eku(optarg, &o->eku) != 0) {
        ly_cli_error(prog, "--eku '%s': serverAuth or clientAuth", optarg);
        return -1;
      }
      break;
    case 'A':
      o->any_td = 1;
      break;
    case 'E':
      o->ignore_eku = 1;
      break;
    case 'h':
      verify_usage(stdout);
      *status = LY_EXIT_OK;
      return -1;
    default:
      verify_usage(stderr);
      return -1;
    }
  }
  if (!o->bundle || optind != argc - 1) {
    ly_cli_error(prog, "--bundle and exactly one certificate file are "
                       "required");
    verify_usage(stderr);
    return -1;
  }
  o->cert = argv[optind];
  if (o->chain_only && (o->id || o->td || o->any_td)) {
    ly_cli_error(prog,
                 "--chain-only skips the SPIFFE checks; it does not go with "
                 "--id, --trust-domain or --any-trust-domain");
    return -1;
  }
  if (o->td && o->any_td) {
    ly_cli_error(prog, "--trust-domain and --any-trust-domain disagree");
    return -1;
  }
  if (o->eku && o->ignore_eku) {
    ly_cli_error(prog, "--eku and --ignore-eku disagree");
    return -1;
  }
  if (o->td && ly_trust_domain_check(o->td, strlen(o->td), &why) != 0) {
    ly_cli_error(prog, "--trust-domain '%s': %s", o->td, why);
    return -1;
  }
  if (o->id) {
    ly_spiffe_id_t id;
    if (ly_spiffe_id_parse(o->id, strlen(o->id), &id, &why) != 0) {
      ly_cli_error(prog, "--id '%s': %s", o->id, why);
      return -1;
    }
    if (o->td && !ly_spiffe_id_in_domain(&id, o->td)) {
      ly_cli_error(prog, "--id '%s' is not in --trust-domain '%s'", o->id,
                   o->td);
      return -1;
    }
  }
  if (!o->has_at)
    o->at = (int64_t)time(NULL);
  return 0;
}

/* The trust domain the bundle's roots name in their SPIFFE IDs (Lanyard's
 * and SPIRE's roots carry spiffe://<td>), into td: 0, or -1 when they name
 * none or several (the problem is on stderr). */
static int bundle_trust_domain(const char *path, const ly_chain_t *roots,
                               char td[LY_TRUST_DOMAIN_MAX + 1]) {
  td[0] = '\0';
  for (size_t i = 0; i < roots->n; i++) {
    ly_cert_info_t info;
    ly_spiffe_id_t id;
    /* a root that does not parse fails the verification, which says so */
    if (ly_cert_info(roots->certs[i].der, roots->certs[i].len, &info) != 0 ||
        ly_spiffe_id_parse(info.spiffe_id, strlen(info.spiffe_id), &id, NULL) !=
            0)
      continue;
    const char *name = id.id + id.td_off;
    if (!td[0]) {
      memcpy(td, name, id.td_len);
      td[id.td_len] = '\0';
    } else if (strlen(td) != id.td_len || memcmp(td, name, id.td_len) != 0) {
      ly_cli_error(prog,
                   "bundle %s: its roots name more than one trust domain "
                   "(%s, %.*s): give --trust-domain TD or --any-trust-domain",
                   path, td, (int)id.td_len, name);
      return -1;
    }
  }
  if (!td[0]) {
    ly_cli_error(prog,
                 "bundle %s: no root names a trust domain (a spiffe:// URI "
                 "SAN): give --trust-domain TD or --any-trust-domain",
                 path);
    return -1;
  }
  return 0;
}

static int verify(int argc, char **argv) {
  verify_opts_t o = {0};
  ly_chain_t roots = {0}, chain = {0}, extra = {0};
  ly_key_t *key = NULL;
  ly_cert_info_t info;
  const char *why = NULL;
  char detail[2 * LY_SPIFFE_ID_MAX + 64] = "";
  char bundle_td[LY_TRUST_DOMAIN_MAX + 1];
  load_t l;
  int rc, status;

  if (verify_parse(argc, argv, &o, &status) != 0)
    return status;
  status = LY_EXIT_USAGE;
  /* a root that does not parse fails every verification against the
   * bundle, as ly_chain_verify says: a verdict, not a usage problem */
  if ((l = load_certs("bundle", o.bundle, &roots)) == LOAD_MALFORMED) {
    ly_cli_error(prog, "bundle %s: malformed certificate", o.bundle);
    printf("REJECTED unknown_ca: malformed trusted root\n");
    status = LY_EXIT_FAIL;
    goto out;
  }
  if (l != LOAD_OK)
    goto out;
  if (!o.chain_only && !o.td && !o.any_td) {
    if (bundle_trust_domain(o.bundle, &roots, bundle_td) != 0)
      goto out;
    o.td = bundle_td;
  }
  /* the purposes an agent asks of a peer in either of its roles */
  if (!o.chain_only && !o.eku && !o.ignore_eku)
    o.eku = LY_EKU_SERVER_AUTH | LY_EKU_CLIENT_AUTH;
  if (o.key && load_key(o.key, &key) != 0)
    goto out;
  /* everything the caller presents is judged, malformed or not */
  l = load_certs("certificate file", o.cert, &chain);
  for (int i = 0; l == LOAD_OK && i < o.n_untrusted; i++) {
    l = load_certs("untrusted file", o.untrusted[i], &extra);
    if (l == LOAD_OK && append_chain(&chain, &extra) != 0) {
      ly_cli_error(prog, "out of memory");
      goto out;
    }
    ly_chain_free(&extra);
  }
  if (l == LOAD_UNREADABLE)
    goto out;
  status = LY_EXIT_FAIL;
  if (l == LOAD_MALFORMED) {
    printf("REJECTED protocol: malformed certificate\n");
    goto out;
  }

  if (o.chain_only) {
    /* the leaf's own rules first, in the order ly_svid_verify keeps */
    rc = ly_cert_info(chain.certs[0].der, chain.certs[0].len, &info);
    if (rc == 0)
      rc = ly_cert_check_end_entity(&info, o.eku, &why);
    if (rc == 0)
      rc = ly_chain_verify(&chain, &roots, o.at, &info, &why);
  } else {
    rc = ly_svid_verify(&chain, &roots, o.at, o.td, &info, &why);
    if (rc == 0 && o.eku)
      rc = ly_cert_check_end_entity(&info, o.eku, &why);
    if (rc == 0 && o.id && strcmp(o.id, info.spiffe_id) != 0) {
      rc = LY_ECERT;
      snprintf(detail, sizeof(detail),
               "bad_identity: SPIFFE ID %s is not the expected %s",
               info.spiffe_id, o.id);
    }
  }
  if (rc == 0 && key &&
      !ly_key_matches_cert(key, chain.certs[0].der, chain.certs[0].len)) {
    rc = LY_ECERT;
    why = "bad_identity: key does not match the leaf";
  }
  if (rc != 0) {
    /* the reason and words every log line uses for this verdict */
    ly_cause_t c = ly_cause_of_verdict(detail[0] ? detail
                                       : why     ? why
                                                 : ly_strerror(rc));
    printf("REJECTED %s: %s\n", ly_reason_name(c.reason), c.cause);
    goto out;
  }
  char not_after[32];
  format_time(info.not_after, not_after, sizeof(not_after));
  printf("OK %s%sserial=%s not_after=%s\n", info.spiffe_id,
         info.spiffe_id[0] ? " " : "", info.serial_hex, not_after);
  status = LY_EXIT_OK;
out:
  ly_chain_free(&roots);
  ly_chain_free(&chain);
  ly_chain_free(&extra);
  ly_key_free(key);
  return status;
}

int ly_cmd_svid(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "verify"))
    return verify(argc - 1, argv + 1);
  FILE *out =
      argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
          ? stdout
          : stderr;
  fprintf(out, "usage: lanyard svid <verify> [options]\n"
               "  verify  verify an SVID and its chain against a trust "
               "bundle, and say why not\n");
  return out == stdout ? LY_EXIT_OK : LY_EXIT_USAGE;
}
