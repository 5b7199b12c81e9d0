/* TLS 1.3 session tickets that remember who the peer was.
 *
 * A resumed session skips the certificate exchange, so without help the
 * server would not know the client's SPIFFE ID, and could neither
 * authorize it nor count it. Each ticket therefore carries, encrypted and
 * authenticated with the ticket key, the peer's SPIFFE ID and the expiry
 * of the certificate it proved it with:
 *
 *   [wolfSSL's session state][ID][ID length: 2][not-after: 8][issued: 8]
 *
 * On resumption the ID is checked against the connection's allow list
 * again and the not-after against the clock; a ticket that fails either
 * is rejected, which makes wolfSSL fall back to a full handshake, where
 * the certificate is checked afresh and any refusal gets its reason.
 *
 * Keys: AES-256-GCM, one per process, shared by every worker and every
 * rotated context (so tickets survive identity rotation), replaced every
 * KEY_LIFETIME with the previous one still accepted. An ID too long for
 * wolfSSL's ticket padding gets a ticket without identity, which is never
 * accepted: such peers simply always do full handshakes.
 */
#include "lanyard/peer.h"
#include "lanyard/tls_conn.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfio.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#define KEY_LIFETIME_S (12 * 3600)
#define TICKET_HINT_S 3600
#define GCM_NONCE 12
#define GCM_TAG 16
#define TRAILER 18 /* ID length (2) + not-after (8) + issued (8) */

typedef struct {
  unsigned char name[WOLFSSL_TICKET_NAME_SZ]; /* last byte: key slot */
  unsigned char key[32];
  time_t created;
} ticket_key_t;

static struct {
  pthread_mutex_t lock;
  int ready;
  WC_RNG rng;
  ticket_key_t keys[2];
  int current;
} tk = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Under tk.lock. */
static int new_key(int slot) {
  ticket_key_t *k = &tk.keys[slot];
  if (wc_RNG_GenerateBlock(&tk.rng, k->name, sizeof(k->name)) != 0 ||
      wc_RNG_GenerateBlock(&tk.rng, k->key, sizeof(k->key)) != 0)
    return -1;
  k->name[WOLFSSL_TICKET_NAME_SZ - 1] = (unsigned char)slot;
  k->created = time(NULL);
  tk.current = slot;
  return 0;
}

/* The key to encrypt with (rotating when due), or the one named. */
static int pick_key(const unsigned char *name, ticket_key_t *out) {
  int rc = -1;
  pthread_mutex_lock(&tk.lock);
  if (!tk.ready) {
    if (wc_InitRng(&tk.rng) == 0 && new_key(0) == 0)
      tk.ready = 1;
  }
  if (tk.ready) {
    if (name == NULL) {
      if (time(NULL) - tk.keys[tk.current].created > KEY_LIFETIME_S)
        new_key(1 - tk.current);
      *out = tk.keys[tk.current];
      rc = 0;
    } else {
      int slot = name[WOLFSSL_TICKET_NAME_SZ - 1] & 1;
      if (tk.keys[slot].created != 0 &&
          memcmp(tk.keys[slot].name, name, WOLFSSL_TICKET_NAME_SZ) == 0) {
        *out = tk.keys[slot];
        rc = 0;
      }
    }
  }
  pthread_mutex_unlock(&tk.lock);
  return rc;
}

static int random_iv(unsigned char *iv) {
  pthread_mutex_lock(&tk.lock);
  int rc = wc_RNG_GenerateBlock(&tk.rng, iv, WOLFSSL_TICKET_IV_SZ);
  pthread_mutex_unlock(&tk.lock);
  return rc;
}

static ly_peer_check_t *peer_of(WOLFSSL *ssl) {
  ly_tls_conn_t *c = wolfSSL_GetIOReadCtx(ssl);
  return c ? c->peer : NULL;
}

static int gcm(const ticket_key_t *k, const unsigned char *iv,
               unsigned char *buf, int len, unsigned char *tag, int enc) {
  Aes aes;
  unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];
  memcpy(aad, k->name, WOLFSSL_TICKET_NAME_SZ);
  memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
  int rc = wc_AesInit(&aes, NULL, INVALID_DEVID);
  if (rc == 0)
    rc = wc_AesGcmSetKey(&aes, k->key, sizeof(k->key));
  if (rc == 0)
    rc = enc ? wc_AesGcmEncrypt(&aes, buf, buf, (word32)len, iv, GCM_NONCE, tag,
                                GCM_TAG, aad, sizeof(aad))
             : wc_AesGcmDecrypt(&aes, buf, buf, (word32)len, iv, GCM_NONCE, tag,
                                GCM_TAG, aad, sizeof(aad));
  wc_AesFree(&aes);
  return rc;
}

static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[16],
                     unsigned char iv[16], unsigned char mac[32], int enc,
                     unsigned char *ticket, int in_len, int *out_len,
                     void *unused) {
  ly_peer_check_t *pc = peer_of(ssl);
  ticket_key_t k;
  if (enc) {
    /* *out_len arrives as the room wolfSSL has for the ticket. */
    size_t id_len = pc ? strlen(pc->peer_id) : 0;
    if ((size_t)in_len + id_len + TRAILER > (size_t)*out_len)
      id_len = 0; /* no room: a ticket that will never be accepted */
    unsigned char *p = ticket + in_len;
    memcpy(p, pc ? pc->peer_id : "", id_len);
    p += id_len;
    *p++ = (unsigned char)(id_len >> 8);
    *p++ = (unsigned char)id_len;
    uint64_t na = pc ? (uint64_t)pc->peer_not_after : 0;
    for (int i = 7; i >= 0; i--)
      *p++ = (unsigned char)(na >> (8 * i));
    uint64_t issued = (uint64_t)time(NULL);
    for (int i = 7; i >= 0; i--)
      *p++ = (unsigned char)(issued >> (8 * i));
    int len = (int)(p - ticket);
    if (pick_key(NULL, &k) != 0 || random_iv(iv) != 0 ||
        gcm(&k, iv, ticket, len, mac, 1) != 0)
      return WOLFSSL_TICKET_RET_FATAL;
    memcpy(key_name, k.name, WOLFSSL_TICKET_NAME_SZ);
    *out_len = len;
    return WOLFSSL_TICKET_RET_OK;
  }
  if (!pc || in_len < TRAILER || pick_key(key_name, &k) != 0 ||
      gcm(&k, iv, ticket, in_len, mac, 0) != 0)
    return WOLFSSL_TICKET_RET_REJECT;
  const unsigned char *t = ticket + in_len - TRAILER;
  size_t id_len = (size_t)t[0] << 8 | t[1];
  uint64_t na = 0, issued = 0;
  for (int i = 0; i < 8; i++) {
    na = na << 8 | t[2 + i];
    issued = issued << 8 | t[10 + i];
  }
  if (id_len == 0 || id_len > LY_SPIFFE_ID_MAX ||
      id_len + TRAILER > (size_t)in_len || (int64_t)na <= (int64_t)time(NULL))
    return WOLFSSL_TICKET_RET_REJECT;
  char id[LY_SPIFFE_ID_MAX + 1];
  memcpy(id, t - id_len, id_len);
  id[id_len] = '\0';
  if (!ly_peer_admits(pc, id))
    return WOLFSSL_TICKET_RET_REJECT; /* the full handshake says why */
  memcpy(pc->peer_id, id, id_len + 1);
  pc->peer_not_after = (int64_t)na;
  *out_len = in_len - TRAILER - (int)id_len;
  /* A session resumed with a young ticket gets no new one: the client
   * keeps using it (no 0-RTT here, so reuse replays nothing), which saves
   * a ticket encryption per connection, and the client a key derivation
   * and a session copy. Past half its life it is replaced, so resumption
   * never lapses. The client saves a session only when a ticket came. */
  if ((int64_t)issued + TICKET_HINT_S / 2 > (int64_t)time(NULL))
    wolfSSL_no_ticket_TLSv13(ssl);
  return WOLFSSL_TICKET_RET_OK;
}

int ly_tickets_enable(WOLFSSL_CTX *ctx) {
  /* wolfSSL accepts a ticket only within the session timeout (500 s by
   * default): make it the lifetime tickets announce. */
  if (wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_TicketHint(ctx, TICKET_HINT_S) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_timeout(ctx, TICKET_HINT_S) != WOLFSSL_SUCCESS)
    return -1;
  return 0;
}
