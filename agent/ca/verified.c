/* Client chains the CA verified recently, by leaf certificate.
 *
 * Renewals and reports verify the caller's chain against the bundle as it
 * is at call time: two signature checks per call, most of a renewal's
 * cost (perf: P-256 arithmetic). The verdict holds as long as the bundle
 * is the same file and every certificate of the chain is within its
 * validity, so it is kept until then: direct-mapped by a hash of the leaf,
 * compared in full, a miss costs one verification. */
#include "ca/ca.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 64

typedef struct {
  unsigned char *leaf; /* DER; NULL: empty */
  size_t len;
  struct timespec bundle; /* the bundle file it was verified against */
  int64_t valid_until;    /* the earliest not_after of the chain */
  ly_cert_info_t info;
} slot_t;

struct ly_verified_s {
  slot_t slot[SLOTS];
};

ly_verified_t *ly_verified_new(void) {
  return calloc(1, sizeof(ly_verified_t));
}

void ly_verified_free(ly_verified_t *v) {
  if (!v)
    return;
  for (size_t i = 0; i < SLOTS; i++)
    free(v->slot[i].leaf);
  free(v);
}

static slot_t *slot_of(ly_verified_t *v, const ly_der_t *leaf) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < leaf->len; i++)
    h = (h ^ leaf->der[i]) * 1099511628211ull;
  return &v->slot[h % SLOTS];
}

static int same_file(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int ly_verified_get(ly_verified_t *v, const ly_chain_t *chain,
                    const struct timespec *bundle, int64_t now,
                    ly_cert_info_t *info) {
  const slot_t *s = slot_of(v, &chain->certs[0]);
  if (!s->leaf || s->len != chain->certs[0].len ||
      memcmp(s->leaf, chain->certs[0].der, s->len) != 0 ||
      !same_file(&s->bundle, bundle) || now >= s->valid_until)
    return 0;
  *info = s->info;
  return 1;
}

void ly_verified_put(ly_verified_t *v, const ly_chain_t *chain,
                     const struct timespec *bundle,
                     const ly_cert_info_t *info) {
  int64_t until = info->not_after;
  for (size_t i = 1; i < chain->n; i++) {
    ly_cert_info_t ci;
    if (ly_cert_info(chain->certs[i].der, chain->certs[i].len, &ci) != 0)
      return; /* verified, yet unparsable: do not remember it */
    if (ci.not_after < until)
      until = ci.not_after;
  }
  slot_t *s = slot_of(v, &chain->certs[0]);
  unsigned char *copy = malloc(chain->certs[0].len);
  if (!copy)
    return;
  memcpy(copy, chain->certs[0].der, chain->certs[0].len);
  free(s->leaf);
  s->leaf = copy;
  s->len = chain->certs[0].len;
  s->bundle = *bundle;
  s->valid_until = until;
  s->info = *info;
}
