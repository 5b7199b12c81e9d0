/* Name constraints: parsing a CA's NameConstraints, and checking a
 * certificate's names against them (RFC 5280 4.2.1.10, 6.1.3 (b)-(c)).
 *
 * Why here and not wolfSSL's: wolfSSL 5.5.4 checks DNS, e-mail and
 * directory names only inside its CertManager, which ly_chain_verify does
 * not use (see x509_verify.c), and it skips URI and IP constraints; a SPIFFE
 * CA would constrain URIs. Each CA's constraints are checked against every
 * certificate below it on the path on their own: a name must be inside the
 * permitted subtrees of every CA above it, which is the intersection RFC
 * 5280 describes, without building it.
 */
#include "identity/x509_internal.h"

#include "lanyard/err.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* emailAddress, PKCS #9: in a subject, an e-mail name (RFC 5280 4.2.1.10) */
static const unsigned char oid_email[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                          0x0d, 0x01, 0x09, 0x01};

/* What we say, per supported type: excluded, not permitted, malformed. */
static const char *const why_excluded[LY_GN_TYPES] = {
    [LY_GN_EMAIL] = "bad_identity: e-mail address excluded by name "
                    "constraints",
    [LY_GN_DNS] = "bad_identity: DNS name excluded by name constraints",
    [LY_GN_DIR] = "bad_identity: directory name excluded by name constraints",
    [LY_GN_URI] = "bad_identity: URI excluded by name constraints",
    [LY_GN_IP] = "bad_identity: IP address excluded by name constraints",
};
static const char *const why_not_permitted[LY_GN_TYPES] = {
    [LY_GN_EMAIL] = "bad_identity: e-mail address not permitted by name "
                    "constraints",
    [LY_GN_DNS] = "bad_identity: DNS name not permitted by name constraints",
    [LY_GN_DIR] = "bad_identity: directory name not permitted by name "
                  "constraints",
    [LY_GN_URI] = "bad_identity: URI not permitted by name constraints",
    [LY_GN_IP] = "bad_identity: IP address not permitted by name constraints",
};
static const char *const why_malformed[LY_GN_TYPES] = {
    [LY_GN_EMAIL] = "bad_identity: malformed e-mail address under name "
                    "constraints",
    [LY_GN_DNS] = "bad_identity: malformed DNS name under name constraints",
    [LY_GN_DIR] = "bad_identity: malformed directory name under name "
                  "constraints",
    [LY_GN_URI] = "bad_identity: URI without a host name under name "
                  "constraints",
    [LY_GN_IP] = "bad_identity: malformed IP address under name constraints",
};

/* ---- strings ----------------------------------------------------------- */

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int eq_nocase(const unsigned char *a, const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower(b[i]))
      return 0;
  return 1;
}

/* A host name in preferred name syntax (RFC 1034 3.5, with RFC 1123's
 * leading digits), plus '_' which real names carry; with `wildcard`, the
 * first label may be exactly "*". No leading, trailing or double dots. */
static int valid_dns(const unsigned char *s, size_t n, int wildcard) {
  if (n == 0 || n > 253)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '.') {
      if (label == 0 || label > 63 || s[i - 1] == '-')
        return 0;
      label = 0;
      continue;
    }
    int c = s[i];
    if (c == '*') {
      /* only as the whole first label */
      if (!wildcard || i != 0 || n < 3 || s[1] != '.')
        return 0;
    } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' ||
                 (c == '-' && label > 0))) {
      return 0;
    }
    label++;
  }
  return 1;
}

int ly_dns_name_valid(const char *s) {
  return valid_dns((const unsigned char *)s, strlen(s), 0);
}

/* Is host name `n` equal to `c` or below it, whole labels only? An empty c
 * holds every name. */
static int dns_within(const unsigned char *n, size_t nlen,
                      const unsigned char *c, size_t clen) {
  if (clen == 0)
    return 1;
  if (nlen == clen)
    return eq_nocase(n, c, clen);
  return nlen > clen && n[nlen - clen - 1] == '.' &&
         eq_nocase(n + nlen - clen, c, clen);
}

/* A domain constraint as URIs and e-mail addresses use them: ".example.com"
 * holds every host below example.com (not example.com), "example.com" that
 * host alone (RFC 5280 4.2.1.10). */
static int host_within(const unsigned char *h, size_t hlen,
                       const unsigned char *c, size_t clen) {
  if (clen == 0)
    return 1;
  if (c[0] == '.')
    return hlen > clen && eq_nocase(h + hlen - clen, c, clen);
  return hlen == clen && eq_nocase(h, c, clen);
}

static int valid_domain_constraint(const unsigned char *s, size_t n) {
  if (n == 0)
    return 1;
  if (s[0] == '.') {
    s++;
    n--;
  }
  return valid_dns(s, n, 0);
}

static const unsigned char *last_at(const unsigned char *s, size_t n) {
  for (size_t i = n; i > 0; i--)
    if (s[i - 1] == '@')
      return s + i - 1;
  return NULL;
}

/* ---- parsing constraints ----------------------------------------------- */

/* A contiguous mask: ones, then zeros. */
static int valid_mask(const unsigned char *m, size_t n) {
  int zeros = 0;
  for (size_t i = 0; i < n; i++) {
    for (int b = 7; b >= 0; b--) {
      int one = (m[i] >> b) & 1;
      if (one && zeros)
        return 0;
      zeros |= !one;
    }
  }
  return 1;
}

/* Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF
 * AttributeTypeAndValue): the structure, not the attribute values. */
static int valid_rdns(const unsigned char *p, size_t n) {
  ly_dr_t r, s, a;
  ly_tlv_t rdn, atv, t;
  ly_dr_init(&r, p, n);
  while (ly_dr_more(&r)) {
    LY_GUARD(ly_dr_expect(&r, LY_DER_SET, &rdn));
    ly_dr_enter(&s, &rdn);
    LY_ENSURE(ly_dr_more(&s), LY_EPARSE);
    while (ly_dr_more(&s)) {
      LY_GUARD(ly_dr_expect(&s, LY_DER_SEQ, &atv));
      ly_dr_enter(&a, &atv);
      LY_GUARD(ly_dr_expect(&a, LY_DER_OID, &t));
      LY_GUARD(ly_dr_get(&a, &t));
      LY_ENSURE(!ly_dr_more(&a), LY_EPARSE);
    }
  }
  return 0;
}

/* A GeneralName: its type, and the contents the matchers compare. */
static int general_name(const ly_tlv_t *gn, ly_gname_t *out) {
  int number = gn->tag & 0x1f;
  int constructed = (gn->tag & 0x20) != 0;
  LY_ENSURE((gn->tag & 0xc0) == 0x80 && number < LY_GN_TYPES, LY_EPARSE);
  /* otherName, x400Address, directoryName, ediPartyName are constructed;
   * the string and octet types are primitive */
  int want = number == LY_GN_OTHER || number == LY_GN_X400 ||
             number == LY_GN_DIR || number == LY_GN_EDI;
  LY_ENSURE(constructed == want, LY_EPARSE);
  out->type = (unsigned char)number;
  out->p = gn->val;
  out->len = gn->len;
  if (number == LY_GN_DIR) {
    /* [4] EXPLICIT Name */
    ly_dr_t r;
    ly_tlv_t name;
    ly_dr_enter(&r, gn);
    LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &name));
    LY_ENSURE(!ly_dr_more(&r), LY_EPARSE);
    LY_GUARD(valid_rdns(name.val, name.len));
    out->p = name.val;
    out->len = name.len;
  }
  return 0;
}

static int valid_constraint(const ly_gname_t *g) {
  const unsigned char *at;
  switch (g->type) {
  case LY_GN_DNS:
    /* "" holds every name; RFC 5280 gives DNS constraints no leading
     * period and no wildcard */
    return g->len == 0 || valid_dns(g->p, g->len, 0);
  case LY_GN_URI:
    return valid_domain_constraint(g->p, g->len);
  case LY_GN_EMAIL:
    /* a mailbox, a host, or a domain */
    if ((at = last_at(g->p, g->len)))
      return at > g->p &&
             valid_dns(at + 1, (size_t)(g->p + g->len - at - 1), 0);
    return valid_domain_constraint(g->p, g->len);
  case LY_GN_IP:
    /* address and mask, IPv4 or IPv6 */
    return (g->len == 8 || g->len == 32) &&
           valid_mask(g->p + g->len / 2, g->len / 2);
  default:
    /* directory names were checked by general_name; other types are kept
     * only to refuse names of those types */
    return 1;
  }
}

/* GeneralSubtrees ::= SEQUENCE SIZE (1..MAX) OF GeneralSubtree, the
 * SEQUENCE here being the [0] or [1] it is tagged with. */
static const char *parse_subtrees(const ly_tlv_t *t, int excluded,
                                  ly_gname_t *out, size_t cap, size_t *n) {
  ly_dr_t r, s;
  ly_tlv_t sub, base, f;
  ly_dr_enter(&r, t);
  if (!ly_dr_more(&r))
    return "protocol: empty subtrees in name constraints";
  while (ly_dr_more(&r)) {
    ly_gname_t g = {.excluded = (unsigned char)excluded};
    if (ly_dr_expect(&r, LY_DER_SEQ, &sub) != 0)
      return "protocol: malformed name constraints";
    ly_dr_enter(&s, &sub);
    if (ly_dr_get(&s, &base) != 0 || general_name(&base, &g) != 0)
      return "protocol: malformed name constraints";
    while (ly_dr_more(&s)) {
      if (ly_dr_get(&s, &f) != 0)
        return "protocol: malformed name constraints";
      /* minimum [0] must be 0 (and DER leaves the default out); maximum
       * [1] must be absent */
      if (f.tag != LY_DER_CTX(0) || f.len != 1 || f.val[0] != 0)
        return "protocol: name constraints with minimum or maximum";
    }
    if (!valid_constraint(&g))
      return "protocol: invalid name constraint";
    if (*n == cap)
      return "protocol: malformed name constraints";
    out[(*n)++] = g;
  }
  return NULL;
}

int ly_x509_nc_parse(const ly_tlv_t *value, ly_nc_t **out, const char **why) {
  ly_dr_t r;
  ly_tlv_t seq, t;
  const char *reason = "protocol: malformed name constraints";
  ly_gname_t *all = NULL;
  ly_nc_t *nc = NULL;
  size_t n = 0;
  /* every subtree takes at least four octets: a bound for the array */
  size_t cap = value->len / 4 + 1;
  int rc = LY_ECERT, seen_permitted = 0, seen_excluded = 0;

  ly_dr_init(&r, value->val, value->len);
  if (ly_dr_expect(&r, LY_DER_SEQ, &seq) != 0 || ly_dr_more(&r))
    goto out;
  if (!(all = malloc(cap * sizeof(*all))) || !(nc = calloc(1, sizeof(*nc)))) {
    rc = UV_ENOMEM;
    goto out;
  }
  ly_dr_enter(&r, &seq);
  while (ly_dr_more(&r)) {
    if (ly_dr_get(&r, &t) != 0)
      goto out;
    /* permittedSubtrees [0], then excludedSubtrees [1], each at most once */
    if (t.tag == LY_DER_CTX_CONS(0) && !seen_permitted && !seen_excluded)
      seen_permitted = 1;
    else if (t.tag == LY_DER_CTX_CONS(1) && !seen_excluded)
      seen_excluded = 1;
    else
      goto out;
    const char *bad =
        parse_subtrees(&t, t.tag == LY_DER_CTX_CONS(1), all, cap, &n);
    if (bad) {
      reason = bad;
      goto out;
    }
  }
  /* RFC 5280: "Conforming CAs MUST NOT issue certificates where name
   * constraints is an empty sequence" */
  if (!seen_permitted && !seen_excluded) {
    reason = "protocol: empty name constraints";
    goto out;
  }
  if (!(nc->entries = malloc((n ? n : 1) * sizeof(*nc->entries)))) {
    rc = UV_ENOMEM;
    goto out;
  }
  /* grouped by type, so a name is compared with its own type only */
  size_t k = 0;
  for (int type = 0; type < LY_GN_TYPES; type++) {
    nc->start[type] = k;
    for (size_t i = 0; i < n; i++) {
      if (all[i].type != type)
        continue;
      nc->entries[k++] = all[i];
      nc->types |= 1u << type;
    }
  }
  nc->start[LY_GN_TYPES] = k;
  *out = nc;
  nc = NULL;
  rc = 0;
out:
  free(all);
  ly_x509_nc_free(nc);
  if (rc == LY_ECERT && why)
    *why = reason;
  return rc;
}

void ly_x509_nc_free(ly_nc_t *nc) {
  if (!nc)
    return;
  free(nc->entries);
  free(nc);
}

/* ---- directory names ---------------------------------------------------- */

static int string_tag(unsigned char tag) {
  return tag == LY_DER_UTF8 || tag == 0x13 /* PrintableString */ ||
         tag == 0x16 /* IA5String */;
}

/* The next character of s[0..n) from *i, lowercased, with leading and
 * trailing spaces dropped and inner runs of them folded to one; -1 at the
 * end. */
static int fold_next(const unsigned char *s, size_t n, size_t *i) {
  if (*i == 0)
    while (*i < n && s[*i] == ' ')
      (*i)++;
  if (*i >= n)
    return -1;
  if (s[*i] != ' ')
    return lower(s[(*i)++]);
  while (*i < n && s[*i] == ' ')
    (*i)++;
  return *i < n ? ' ' : -1;
}

/* Attribute values compare as RFC 5280 7.1 asks, in its simple form: the
 * same string after ASCII case folding and space folding, whether
 * UTF8String, PrintableString or IA5String; anything else by its
 * encoding. */
static int value_eq(const ly_tlv_t *a, const ly_tlv_t *b) {
  if (a->tlv_len == b->tlv_len && memcmp(a->tlv, b->tlv, a->tlv_len) == 0)
    return 1;
  if (!string_tag(a->tag) || !string_tag(b->tag))
    return 0;
  size_t i = 0, j = 0;
  for (;;) {
    int x = fold_next(a->val, a->len, &i), y = fold_next(b->val, b->len, &j);
    if (x != y)
      return 0;
    if (x < 0)
      return 1;
  }
}

static int ava_in_rdn(const ly_tlv_t *ava, const ly_tlv_t *rdn) {
  ly_dr_t r, x, y;
  ly_tlv_t other, oa, va, ob, vb;
  ly_dr_enter(&x, ava);
  if (ly_dr_get(&x, &oa) != 0 || ly_dr_get(&x, &va) != 0)
    return 0;
  ly_dr_enter(&r, rdn);
  while (ly_dr_more(&r)) {
    if (ly_dr_get(&r, &other) != 0)
      return 0;
    ly_dr_enter(&y, &other);
    if (ly_dr_get(&y, &ob) != 0 || ly_dr_get(&y, &vb) != 0)
      return 0;
    if (oa.len == ob.len && memcmp(oa.val, ob.val, oa.len) == 0 &&
        value_eq(&va, &vb))
      return 1;
  }
  return 0;
}

static int count_items(const ly_tlv_t *t) {
  ly_dr_t r;
  ly_tlv_t x;
  int n = 0;
  ly_dr_enter(&r, t);
  while (ly_dr_more(&r) && ly_dr_get(&r, &x) == 0)
    n++;
  return n;
}

/* The same set of attributes, each matching. */
static int rdn_eq(const ly_tlv_t *a, const ly_tlv_t *b) {
  if (a->tlv_len == b->tlv_len && memcmp(a->tlv, b->tlv, a->tlv_len) == 0)
    return 1;
  if (count_items(a) != count_items(b))
    return 0;
  ly_dr_t r;
  ly_tlv_t ava;
  ly_dr_enter(&r, a);
  while (ly_dr_more(&r)) {
    if (ly_dr_get(&r, &ava) != 0 || !ava_in_rdn(&ava, b))
      return 0;
  }
  return 1;
}

/* Is name n (RDN sequence contents) in the subtree c, that is, does n start
 * with c's RDNs? */
static int dir_within(const unsigned char *n, size_t nlen,
                      const unsigned char *c, size_t clen) {
  ly_dr_t rn, rc;
  ly_tlv_t a, b;
  ly_dr_init(&rn, n, nlen);
  ly_dr_init(&rc, c, clen);
  while (ly_dr_more(&rc)) {
    if (ly_dr_get(&rc, &b) != 0 || !ly_dr_more(&rn) ||
        ly_dr_get(&rn, &a) != 0 || !rdn_eq(&a, &b))
      return 0;
  }
  return 1;
}

/* ---- one name against one CA's constraints ------------------------------ */

/* The host of a URI with an authority ("scheme://[userinfo@]host[:port]"),
 * or 0 when it has none a constraint can hold: no authority, an IP literal,
 * an empty host. */
static int uri_host(const unsigned char *u, size_t n, const unsigned char **h,
                    size_t *hlen) {
  size_t i = 0;
  while (i < n && u[i] != ':' && u[i] != '/' && u[i] != '?' && u[i] != '#')
    i++;
  if (i == 0 || i + 3 > n || u[i] != ':' || u[i + 1] != '/' || u[i + 2] != '/')
    return 0;
  size_t start = i + 3, end = start;
  while (end < n && u[end] != '/' && u[end] != '?' && u[end] != '#')
    end++;
  for (size_t k = end; k > start; k--) {
    if (u[k - 1] == '@') {
      start = k;
      break;
    }
  }
  size_t stop = end;
  for (size_t k = start; k < end; k++) {
    if (u[k] == ':') {
      stop = k;
      break;
    }
  }
  *h = u + start;
  *hlen = stop - start;
  /* an IP address is not a host name a domain constraint can hold */
  int dotted_digits = 1;
  for (size_t k = 0; k < *hlen; k++)
    dotted_digits &= ((*h)[k] >= '0' && (*h)[k] <= '9') || (*h)[k] == '.';
  return *hlen > 0 && !dotted_digits && valid_dns(*h, *hlen, 0);
}

static int valid_name(const ly_gname_t *g) {
  const unsigned char *at, *h;
  size_t hlen;
  switch (g->type) {
  case LY_GN_DNS:
    return valid_dns(g->p, g->len, 1);
  case LY_GN_IP:
    return g->len == 4 || g->len == 16;
  case LY_GN_URI:
    return uri_host(g->p, g->len, &h, &hlen);
  case LY_GN_EMAIL:
    return (at = last_at(g->p, g->len)) && at > g->p &&
           valid_dns(at + 1, (size_t)(g->p + g->len - at - 1), 0);
  case LY_GN_DIR:
    return valid_rdns(g->p, g->len) == 0;
  default:
    return 0;
  }
}

/* Does the constraint hold the name (permitted), or does it hold any name
 * the name stands for (excluded: a wildcard stands for many)? */
static int matches(const ly_gname_t *name, const ly_gname_t *c, int excluded) {
  const unsigned char *h, *at, *cat;
  size_t hlen;
  switch (name->type) {
  case LY_GN_DNS:
    if (name->len >= 2 && name->p[0] == '*') {
      /* "*.X" is every name one label below X: all of them are inside c
       * when X is; some are when X is, or when c is one of them */
      const unsigned char *x = name->p + 2;
      size_t xlen = name->len - 2;
      if (dns_within(x, xlen, c->p, c->len))
        return 1;
      if (!excluded || !dns_within(c->p, c->len, x, xlen) || c->len <= xlen + 1)
        return 0;
      return !memchr(c->p, '.', c->len - xlen - 1);
    }
    return dns_within(name->p, name->len, c->p, c->len);
  case LY_GN_IP:
    if (c->len != 2 * name->len)
      return 0;
    for (size_t i = 0; i < name->len; i++) {
      unsigned char m = c->p[name->len + i];
      if ((name->p[i] & m) != (c->p[i] & m))
        return 0;
    }
    return 1;
  case LY_GN_URI:
    uri_host(name->p, name->len, &h, &hlen);
    return host_within(h, hlen, c->p, c->len);
  case LY_GN_EMAIL:
    at = last_at(name->p, name->len);
    h = at + 1;
    hlen = (size_t)(name->p + name->len - h);
    if ((cat = last_at(c->p, c->len))) {
      /* a mailbox: the local part exactly, the host in any case */
      size_t local = (size_t)(at - name->p), clocal = (size_t)(cat - c->p);
      return local == clocal && memcmp(name->p, c->p, local) == 0 &&
             hlen == c->len - clocal - 1 && eq_nocase(h, cat + 1, hlen);
    }
    return host_within(h, hlen, c->p, c->len);
  case LY_GN_DIR:
    return dir_within(name->p, name->len, c->p, c->len);
  default:
    return 0;
  }
}

static const char *check_name(const ly_nc_t *nc, const ly_gname_t *name,
                              long *budget) {
  if (!(nc->types & (1u << name->type)))
    return NULL;
  if (name->type == LY_GN_OTHER || name->type == LY_GN_X400 ||
      name->type == LY_GN_EDI || name->type == LY_GN_RID)
    return "bad_identity: name constraints on a name type Lanyard does not "
           "check";
  if (!valid_name(name))
    return why_malformed[name->type];
  int permitted = 0, any_permitted = 0;
  for (size_t i = nc->start[name->type]; i < nc->start[name->type + 1]; i++) {
    const ly_gname_t *c = &nc->entries[i];
    if (--*budget < 0)
      return LY_X509_NC_BUDGET_WHY;
    if (c->excluded) {
      if (matches(name, c, 1))
        return why_excluded[name->type];
    } else {
      any_permitted = 1;
      permitted = permitted || matches(name, c, 0);
    }
  }
  if (any_permitted && !permitted)
    return why_not_permitted[name->type];
  return NULL;
}

/* The subject's emailAddress attributes, as e-mail names. */
static const char *check_subject_emails(const ly_nc_t *nc,
                                        const ly_x509_cert_t *c, long *budget) {
  ly_dr_t r, s, a;
  ly_tlv_t rdn, atv, oid, value;
  const char *why;
  ly_dr_enter(&r, &c->subject);
  while (ly_dr_more(&r)) {
    if (ly_dr_get(&r, &rdn) != 0)
      return why_malformed[LY_GN_DIR];
    ly_dr_enter(&s, &rdn);
    while (ly_dr_more(&s)) {
      if (ly_dr_get(&s, &atv) != 0)
        return why_malformed[LY_GN_DIR];
      ly_dr_enter(&a, &atv);
      if (ly_dr_get(&a, &oid) != 0 || ly_dr_get(&a, &value) != 0)
        return why_malformed[LY_GN_DIR];
      if (oid.len != sizeof(oid_email) ||
          memcmp(oid.val, oid_email, sizeof(oid_email)) != 0)
        continue;
      ly_gname_t g = {.type = LY_GN_EMAIL, .p = value.val, .len = value.len};
      if ((why = check_name(nc, &g, budget)))
        return why;
    }
  }
  return NULL;
}

const char *ly_x509_nc_check(const ly_x509_cert_t *ca, const ly_x509_cert_t *c,
                             long *budget) {
  const ly_nc_t *nc = ca->nc;
  const char *why;
  if (!nc)
    return NULL;
  /* the subject, unless empty (then the SAN alone names the subject) */
  if (c->subject.len > 0) {
    ly_gname_t g = {
        .type = LY_GN_DIR, .p = c->subject.val, .len = c->subject.len};
    if ((why = check_name(nc, &g, budget)))
      return why;
  }
  if (!c->san.tag)
    return (nc->types & (1u << LY_GN_EMAIL))
               ? check_subject_emails(nc, c, budget)
               : NULL;
  ly_dr_t r;
  ly_tlv_t t;
  ly_dr_enter(&r, &c->san);
  while (ly_dr_more(&r)) {
    ly_gname_t g;
    if (ly_dr_get(&r, &t) != 0 || general_name(&t, &g) != 0)
      return "protocol: malformed subjectAltName";
    if ((why = check_name(nc, &g, budget)))
      return why;
  }
  return NULL;
}
