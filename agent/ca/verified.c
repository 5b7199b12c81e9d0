/* Client chains the CA verified recently, by leaf certificate.
 *
 * Renewals and reports verify the caller's chain against the bundle as it
 * is at call time: two signature checks per call, most of a renewal's
 * cost (perf: P-256 arithmetic). The verdict holds as long as the bundle
 * is the same file and every certificate of the chain is within its
 * validity (the bundle's roots too), so it is kept until then:
 * direct-mapped by a hash of the leaf, the whole chain compared, a miss
 * costs one verification. */
#include "ca/ca.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 64

typedef struct {
  ly_chain_t chain;       /* as presented; n == 0: empty */
  struct timespec bundle; /* the bundle file it was verified against */
  int64_t valid_until;    /* the earliest not_after of chain and roots */
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
    ly_chain_free(&v->slot[i].chain);
  free(v);
}

static slot_t *slot_of(ly_verified_t *v, const ly_chain_t *chain) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a of the leaf */
  for (size_t i = 0; i < chain->certs[0].len; i++)
    h = (h ^ chain->certs[0].der[i]) * 1099511628211ull;
  return &v->slot[h % SLOTS];
}

static int same_chain(const ly_chain_t *a, const ly_chain_t *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->certs[i].len != b->certs[i].len ||
        memcmp(a->certs[i].der, b->certs[i].der, a->certs[i].len) != 0)
      return 0;
  return 1;
}

static int same_file(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int ly_verified_get(ly_verified_t *v, const ly_chain_t *chain,
                    const struct timespec *bundle, int64_t now,
                    ly_cert_info_t *info) {
  const slot_t *s = slot_of(v, chain);
  if (!same_chain(&s->chain, chain) || !same_file(&s->bundle, bundle) ||
      now >= s->valid_until)
    return 0;
  *info = s->info;
  return 1;
}

/* The earliest expiry among certs; 0 if one does not parse. */
static int64_t earliest(const ly_chain_t *certs, int64_t until) {
  for (size_t i = 0; i < certs->n; i++) {
    ly_cert_info_t ci;
    if (ly_cert_info(certs->certs[i].der, certs->certs[i].len, &ci) != 0)
      return 0;
    if (ci.not_after < until)
      until = ci.not_after;
  }
  return until;
}

void ly_verified_put(ly_verified_t *v, const ly_chain_t *chain,
                     const ly_chain_t *roots, const struct timespec *bundle,
                     const ly_cert_info_t *info) {
  /* Any root may be the path's anchor: the verdict lasts until the first
   * of them, or of the chain, expires. */
  int64_t until = earliest(roots, earliest(chain, info->not_after));
  if (until == 0)
    return; /* verified, yet unparsable: do not remember it */
  slot_t *s = slot_of(v, chain);
  ly_chain_t copy = {0};
  for (size_t i = 0; i < chain->n; i++)
    if (ly_chain_push(&copy, chain->certs[i].der, chain->certs[i].len) != 0) {
      ly_chain_free(&copy);
      return;
    }
  ly_chain_free(&s->chain);
  s->chain = copy;
  s->bundle = *bundle;
  s->valid_until = until;
  s->info = *info;
}
