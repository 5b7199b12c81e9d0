/* Encodings under the X.509 code: a DER writer and reader, ASN.1 times,
 * and PEM blocks. */
#include "identity/x509_internal.h"

#include "lanyard/b64.h"
#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- DER writer ---------------------------------------------------------- */

static int dw_reserve(ly_dw_t *w, size_t n) {
  if (w->err)
    return -1;
  if (w->cap - w->len >= n)
    return 0;
  size_t cap = w->cap ? w->cap : 256;
  while (cap - w->len < n)
    cap *= 2;
  unsigned char *p = realloc(w->p, cap);
  if (!p) {
    w->err = UV_ENOMEM;
    return -1;
  }
  w->p = p;
  w->cap = cap;
  return 0;
}

void ly_dw_bytes(ly_dw_t *w, const void *p, size_t n) {
  if (n == 0 || dw_reserve(w, n) < 0)
    return;
  memcpy(w->p + w->len, p, n);
  w->len += n;
}

static size_t len_octets(size_t n) {
  size_t k = 1;
  if (n >= 0x80)
    for (size_t v = n; v; v >>= 8)
      k++;
  return k;
}

static void put_len(unsigned char *dst, size_t n) {
  size_t k = len_octets(n);
  if (k == 1) {
    dst[0] = (unsigned char)n;
    return;
  }
  dst[0] = (unsigned char)(0x80 | (k - 1));
  for (size_t i = k - 1; i > 0; i--, n >>= 8)
    dst[i] = (unsigned char)(n & 0xff);
}

void ly_dw_tlv(ly_dw_t *w, unsigned char tag, const void *p, size_t n) {
  unsigned char hdr[1 + 9];
  hdr[0] = tag;
  put_len(hdr + 1, n);
  ly_dw_bytes(w, hdr, 1 + len_octets(n));
  ly_dw_bytes(w, p, n);
}

size_t ly_dw_open(ly_dw_t *w, unsigned char tag) {
  size_t mark = w->len;
  unsigned char hdr[2] = {tag, 0};
  ly_dw_bytes(w, hdr, 2);
  return mark;
}

void ly_dw_close(ly_dw_t *w, size_t mark) {
  if (w->err)
    return;
  size_t n = w->len - mark - 2;
  size_t k = len_octets(n);
  /* the open left room for a one-byte length; longer ones shift the
   * contents right */
  if (k > 1) {
    if (dw_reserve(w, k - 1) < 0)
      return;
    memmove(w->p + mark + 1 + k, w->p + mark + 2, n);
    w->len += k - 1;
  }
  put_len(w->p + mark + 1, n);
}

void ly_dw_uint(ly_dw_t *w, const unsigned char *p, size_t n) {
  while (n > 1 && p[0] == 0) {
    p++;
    n--;
  }
  size_t mark = ly_dw_open(w, LY_DER_INTEGER);
  if (n == 0 || (p[0] & 0x80)) {
    unsigned char zero = 0;
    ly_dw_bytes(w, &zero, 1);
  }
  ly_dw_bytes(w, p, n);
  ly_dw_close(w, mark);
}

void ly_dw_named_bits(ly_dw_t *w, unsigned bits, int nbits) {
  unsigned char buf[1 + 4] = {0};
  int last = -1;
  for (int i = 0; i < nbits && i < 32; i++) {
    if (bits & (1u << i)) {
      buf[1 + i / 8] |= (unsigned char)(0x80 >> (i % 8));
      last = i;
    }
  }
  size_t bytes = last < 0 ? 0 : (size_t)(last / 8 + 1);
  buf[0] = bytes ? (unsigned char)(7 - last % 8) : 0;
  ly_dw_tlv(w, LY_DER_BIT_STRING, buf, 1 + bytes);
}

int ly_dw_finish(ly_dw_t *w) {
  return w->err;
}

void ly_dw_free(ly_dw_t *w) {
  free(w->p);
  memset(w, 0, sizeof(*w));
}

/* ---- DER reader ----------------------------------------------------------*/

void ly_dr_init(ly_dr_t *r, const void *p, size_t n) {
  r->p = p;
  r->end = r->p + n;
}

int ly_dr_more(const ly_dr_t *r) {
  return r->p < r->end;
}

int ly_dr_peek(const ly_dr_t *r) {
  return r->p < r->end ? r->p[0] : -1;
}

int ly_dr_get(ly_dr_t *r, ly_tlv_t *t) {
  const unsigned char *p = r->p;
  size_t avail = (size_t)(r->end - p);
  LY_ENSURE(avail >= 2, LY_EPARSE);
  /* high tag numbers never occur in the structures read here */
  LY_ENSURE((p[0] & 0x1f) != 0x1f, LY_EPARSE);
  size_t hdr = 2, n = p[1];
  if (n & 0x80) {
    size_t k = n & 0x7f;
    /* no indefinite lengths (DER), nothing beyond 4 GiB */
    LY_ENSURE(k >= 1 && k <= 4 && avail >= 2 + k, LY_EPARSE);
    n = 0;
    for (size_t i = 0; i < k; i++)
      n = (n << 8) | p[2 + i];
    hdr += k;
  }
  LY_ENSURE(n <= avail - hdr, LY_EPARSE);
  t->tag = p[0];
  t->tlv = p;
  t->tlv_len = hdr + n;
  t->val = p + hdr;
  t->len = n;
  r->p = p + hdr + n;
  return 0;
}

int ly_dr_expect(ly_dr_t *r, unsigned char tag, ly_tlv_t *t) {
  LY_ENSURE(ly_dr_peek(r) == tag, LY_EPARSE);
  return ly_dr_get(r, t);
}

void ly_dr_enter(ly_dr_t *r, const ly_tlv_t *t) {
  ly_dr_init(r, t->val, t->len);
}

/* ---- times ---------------------------------------------------------------
 * Civil-date arithmetic after H. Hinnant's days_from_civil, so nothing
 * depends on the process's time zone or on timegm. */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int ly_x509_time_encode(ly_dw_t *w, int64_t t) {
  int64_t days = floor_div(t, 86400);
  int64_t secs = t - days * 86400;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  LY_ENSURE(y >= 1950 && y <= 9999, UV_EINVAL);
  char buf[16];
  unsigned hh = (unsigned)(secs / 3600), mm = (unsigned)(secs / 60 % 60),
           ss = (unsigned)(secs % 60);
  unsigned char tag;
  size_t n;
  if (y < 2050) {
    tag = LY_DER_UTC_TIME;
    n = 13;
    buf[0] = (char)('0' + (y / 10) % 10);
    buf[1] = (char)('0' + y % 10);
  } else {
    tag = LY_DER_GEN_TIME;
    n = 15;
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + (y / 100) % 10);
    buf[2] = (char)('0' + (y / 10) % 10);
    buf[3] = (char)('0' + y % 10);
  }
  char *p = buf + (n - 11);
  unsigned parts[5] = {m, d, hh, mm, ss};
  for (int i = 0; i < 5; i++) {
    *p++ = (char)('0' + parts[i] / 10);
    *p++ = (char)('0' + parts[i] % 10);
  }
  *p = 'Z';
  ly_dw_tlv(w, tag, buf, n);
  return 0;
}

static int digits(const unsigned char *p, int n, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < n; i++) {
    LY_ENSURE(p[i] >= '0' && p[i] <= '9', LY_EPARSE);
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  *out = v;
  return 0;
}

int ly_x509_time_decode(const unsigned char *tlv, size_t len, int64_t *t) {
  ly_dr_t r;
  ly_tlv_t e;
  ly_dr_init(&r, tlv, len);
  LY_GUARD(ly_dr_get(&r, &e));
  unsigned y, m, d, hh, mm, ss;
  const unsigned char *p = e.val;
  if (e.tag == LY_DER_UTC_TIME) {
    LY_ENSURE(e.len == 13, LY_EPARSE);
    LY_GUARD(digits(p, 2, &y));
    y += y >= 50 ? 1900 : 2000;
    p += 2;
  } else if (e.tag == LY_DER_GEN_TIME) {
    LY_ENSURE(e.len == 15, LY_EPARSE);
    LY_GUARD(digits(p, 4, &y));
    p += 4;
  } else {
    return LY_EPARSE;
  }
  LY_GUARD(digits(p, 2, &m));
  LY_GUARD(digits(p + 2, 2, &d));
  LY_GUARD(digits(p + 4, 2, &hh));
  LY_GUARD(digits(p + 6, 2, &mm));
  LY_GUARD(digits(p + 8, 2, &ss));
  LY_ENSURE(p[10] == 'Z', LY_EPARSE);
  LY_ENSURE(m >= 1 && m <= 12 && d >= 1 && d <= 31 && hh <= 23 && mm <= 59 &&
                ss <= 59,
            LY_EPARSE);
  *t = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
  return 0;
}

/* ---- PEM ----------------------------------------------------------------- */

static const char pem_begin[] = "-----BEGIN ";
static const char pem_end[] = "-----END ";
static const char pem_dashes[] = "-----";

static const char *find(const char *hay, size_t n, const char *needle,
                        size_t m) {
  if (m > n)
    return NULL;
  for (size_t i = 0; i + m <= n; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0)
      return hay + i;
  return NULL;
}

int ly_pem_next(const char *pem, size_t len, size_t *pos, ly_pem_block_t *b) {
  const size_t blen = sizeof(pem_begin) - 1, elen = sizeof(pem_end) - 1,
               dlen = sizeof(pem_dashes) - 1;
  const char *end = pem + len;
  const char *s = find(pem + *pos, len - *pos, pem_begin, blen);
  if (!s)
    return 0;
  const char *label = s + blen;
  const char *label_end = find(label, (size_t)(end - label), pem_dashes, dlen);
  LY_ENSURE(label_end && !memchr(label, '\n', (size_t)(label_end - label)),
            LY_EPARSE);
  size_t label_len = (size_t)(label_end - label);
  const char *body = label_end + dlen;
  /* the matching END line, with the same label */
  const char *e = body;
  for (;;) {
    e = find(e, (size_t)(end - e), pem_end, elen);
    LY_ENSURE(e, LY_EPARSE);
    const char *el = e + elen;
    if ((size_t)(end - el) >= label_len + dlen &&
        memcmp(el, label, label_len) == 0 &&
        memcmp(el + label_len, pem_dashes, dlen) == 0)
      break;
    e = el;
  }
  b->label = label;
  b->label_len = label_len;
  b->body = body;
  b->body_len = (size_t)(e - body);
  *pos = (size_t)(e + elen + label_len + dlen - pem);
  return 1;
}

int ly_pem_label_is(const ly_pem_block_t *b, const char *label) {
  return strlen(label) == b->label_len &&
         memcmp(b->label, label, b->label_len) == 0;
}

int ly_pem_decode(const ly_pem_block_t *b, unsigned char **der, size_t *len) {
  size_t cap = b->body_len / 4 * 3 + 3;
  unsigned char *out = malloc(cap);
  if (!out)
    return UV_ENOMEM;
  size_t n = 0;
  int rc = ly_b64_decode(b->body, b->body_len, out, cap, &n);
  if (rc == 0 && n == 0)
    rc = LY_EPARSE;
  if (rc != 0) {
    ly_wipe(out, cap); /* the block may have been a key */
    free(out);
    return rc;
  }
  *der = out;
  *len = n;
  return 0;
}

size_t ly_pem_encoded_len(const char *label, size_t n) {
  size_t b64 = (n + 2) / 3 * 4;
  size_t lines = (b64 + 63) / 64;
  return 2 * strlen(label) + 11 + 5 + 1 + 9 + 5 + 1 + b64 + lines;
}

size_t ly_pem_write(char *dst, const char *label, const unsigned char *der,
                    size_t n) {
  char *p = dst;
  size_t ll = strlen(label);
  memcpy(p, pem_begin, sizeof(pem_begin) - 1);
  p += sizeof(pem_begin) - 1;
  memcpy(p, label, ll);
  p += ll;
  memcpy(p, "-----\n", 6);
  p += 6;
  /* 48 bytes make one 64-character line */
  for (size_t i = 0; i < n; i += 48) {
    size_t chunk = n - i < 48 ? n - i : 48;
    ly_b64_encode(der + i, chunk, p);
    p += ly_b64_len(chunk);
    *p++ = '\n';
  }
  memcpy(p, pem_end, sizeof(pem_end) - 1);
  p += sizeof(pem_end) - 1;
  memcpy(p, label, ll);
  p += ll;
  memcpy(p, "-----\n", 6);
  p += 6;
  return (size_t)(p - dst);
}
