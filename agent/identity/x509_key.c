/* Private and public keys: generation, PEM/PKCS#8, matching a certificate,
 * signing encoded bodies, and verifying certificate signatures. */
#include "identity/x509_internal.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* id-ecPublicKey and rsaEncryption, as they appear in a PKCS#8 header */
static const unsigned char oid_ec_public_key[] = {0x2a, 0x86, 0x48, 0xce,
                                                  0x3d, 0x02, 0x01};
static const unsigned char oid_rsa_encryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                   0x0d, 0x01, 0x01, 0x01};
static const unsigned char oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x02};
static const unsigned char oid_ecdsa_sha384[] = {0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x03};
static const unsigned char oid_sha256_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x01, 0x0b};

int ly_x509_rng_init(WC_RNG *rng) {
  return wc_InitRng(rng) == 0 ? 0 : LY_ECRYPTO;
}

static ly_key_t *key_new(int type) {
  ly_key_t *k = calloc(1, sizeof(*k));
  if (!k)
    return NULL;
  int rc = type == ECC_TYPE ? wc_ecc_init(&k->k.ecc)
                            : wc_InitRsaKey(&k->k.rsa, NULL);
  if (rc != 0) {
    free(k);
    return NULL;
  }
  k->type = type;
  return k;
}

void ly_key_free(ly_key_t *key) {
  if (!key)
    return;
  /* both free functions zero the key's numbers; the wipe covers the rest */
  if (key->type == ECC_TYPE)
    wc_ecc_free(&key->k.ecc);
  else
    wc_FreeRsaKey(&key->k.rsa);
  ly_wipe(key, sizeof(*key));
  free(key);
}

int ly_key_generate(ly_key_t **out) {
  WC_RNG rng;
  LY_GUARD(ly_x509_rng_init(&rng));
  int rc = 0;
  ly_key_t *k = key_new(ECC_TYPE);
  if (!k) {
    rc = UV_ENOMEM;
    goto out;
  }
  if (wc_ecc_make_key_ex(&rng, 32, &k->k.ecc, ECC_SECP256R1) != 0) {
    rc = LY_ECRYPTO;
    goto out;
  }
  *out = k;
  k = NULL;
out:
  ly_key_free(k);
  wc_FreeRng(&rng);
  return rc;
}

static int ecc_curve_ok(int curve) {
  return curve == ECC_SECP256R1 || curve == ECC_SECP384R1;
}

/* An ECC private key (SEC1, or PKCS#8 around it) with its public half. */
static int load_ecc(const unsigned char *der, size_t len, ly_key_t **out) {
  int rc = LY_ECRYPTO;
  ly_key_t *k = key_new(ECC_TYPE);
  if (!k)
    return UV_ENOMEM;
  word32 idx = 0;
  if (wc_EccPrivateKeyDecode(der, &idx, &k->k.ecc, (word32)len) != 0)
    goto out;
  if (!ecc_curve_ok(wc_ecc_get_curve_id(k->k.ecc.idx)))
    goto out;
  /* SEC1 makes the public key optional; requests and SPKIs need it */
  if (k->k.ecc.type == ECC_PRIVATEKEY_ONLY &&
      wc_ecc_make_pub(&k->k.ecc, NULL) != 0)
    goto out;
  if (wc_ecc_check_key(&k->k.ecc) != 0)
    goto out;
  *out = k;
  k = NULL;
  rc = 0;
out:
  ly_key_free(k);
  return rc;
}

static int load_rsa(const unsigned char *der, size_t len, ly_key_t **out) {
  int rc = LY_ECRYPTO;
  ly_key_t *k = key_new(RSA_TYPE);
  if (!k)
    return UV_ENOMEM;
  word32 idx = 0;
  if (wc_RsaPrivateKeyDecode(der, &idx, &k->k.rsa, (word32)len) != 0)
    goto out;
  *out = k;
  k = NULL;
  rc = 0;
out:
  ly_key_free(k);
  return rc;
}

/* PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING }:
 * only the algorithm is read here, to pick the decoder. */
static int pkcs8_algorithm(const unsigned char *der, size_t len, int *type) {
  ly_dr_t r, alg;
  ly_tlv_t seq, ver, algid, oid;
  ly_dr_init(&r, der, len);
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &seq));
  ly_dr_enter(&r, &seq);
  LY_GUARD(ly_dr_expect(&r, LY_DER_INTEGER, &ver));
  LY_GUARD(ly_dr_expect(&r, LY_DER_SEQ, &algid));
  ly_dr_enter(&alg, &algid);
  LY_GUARD(ly_dr_expect(&alg, LY_DER_OID, &oid));
  if (oid.len == sizeof(oid_ec_public_key) &&
      memcmp(oid.val, oid_ec_public_key, oid.len) == 0)
    *type = ECC_TYPE;
  else if (oid.len == sizeof(oid_rsa_encryption) &&
           memcmp(oid.val, oid_rsa_encryption, oid.len) == 0)
    *type = RSA_TYPE;
  else
    return LY_ECRYPTO;
  return 0;
}

int ly_key_from_pem(const char *pem, size_t len, ly_key_t **out,
                    const char **why) {
  size_t pos = 0;
  ly_pem_block_t b;
  int type = 0, pkcs8 = 0, seen = 0, r;
  while ((r = ly_pem_next(pem, len, &pos, &b)) == 1) {
    seen = 1;
    if (ly_pem_label_is(&b, "PRIVATE KEY"))
      pkcs8 = 1;
    else if (ly_pem_label_is(&b, "EC PRIVATE KEY"))
      type = ECC_TYPE;
    else if (ly_pem_label_is(&b, "RSA PRIVATE KEY"))
      type = RSA_TYPE;
    else if (ly_pem_label_is(&b, "ENCRYPTED PRIVATE KEY"))
      LY_ENSURE_WHY(0, LY_ECRYPTO, why, "encrypted keys are not supported");
    else
      continue;
    break;
  }
  LY_ENSURE_WHY(r >= 0, LY_EPARSE, why, "malformed PEM block");
  LY_ENSURE_WHY(seen, LY_EPARSE, why, "not PEM");
  LY_ENSURE_WHY(pkcs8 || type, LY_ENOT_FOUND, why, "no key");

  unsigned char *der = NULL;
  size_t der_len = 0;
  int rc = ly_pem_decode(&b, &der, &der_len);
  if (rc == 0 && pkcs8)
    rc = pkcs8_algorithm(der, der_len, &type);
  if (rc == 0)
    rc = type == ECC_TYPE ? load_ecc(der, der_len, out)
                          : load_rsa(der, der_len, out);
  if (der) {
    ly_wipe(der, der_len);
    free(der);
  }
  if (rc == UV_ENOMEM)
    return rc;
  LY_ENSURE_WHY(rc == 0, LY_ECRYPTO, why, "unparsable key");
  return 0;
}

int ly_key_to_der(const ly_key_t *key, ly_der_t *out) {
  ly_key_t *k = (ly_key_t *)key; /* wolfCrypt's exporters take non-const */
  unsigned char *pkcs1 = NULL, *buf = NULL;
  int pkcs1_len = 0, rc = LY_ECRYPTO;
  word32 n = 0;
  if (k->type == ECC_TYPE) {
    if (wc_EccKeyToPKCS8(&k->k.ecc, NULL, &n) != LENGTH_ONLY_E)
      goto out;
    if (!(buf = malloc(n))) {
      rc = UV_ENOMEM;
      goto out;
    }
    if (wc_EccKeyToPKCS8(&k->k.ecc, buf, &n) <= 0)
      goto out;
  } else {
    /* wolfCrypt writes RSA keys as PKCS#1, to be wrapped in PKCS#8; room
     * for n, d and five half-size numbers with their headers */
    pkcs1_len = wc_RsaEncryptSize(&k->k.rsa) * 5 + 64;
    if (!(pkcs1 = malloc((size_t)pkcs1_len))) {
      rc = UV_ENOMEM;
      goto out;
    }
    pkcs1_len = wc_RsaKeyToDer(&k->k.rsa, pkcs1, (word32)pkcs1_len);
    if (pkcs1_len <= 0)
      goto out;
    if (wc_CreatePKCS8Key(NULL, &n, pkcs1, (word32)pkcs1_len, RSAk, NULL, 0) !=
        LENGTH_ONLY_E)
      goto out;
    if (!(buf = malloc(n))) {
      rc = UV_ENOMEM;
      goto out;
    }
    if (wc_CreatePKCS8Key(buf, &n, pkcs1, (word32)pkcs1_len, RSAk, NULL, 0) <=
        0)
      goto out;
  }
  out->der = buf;
  out->len = n;
  buf = NULL;
  rc = 0;
out:
  if (pkcs1) {
    ly_wipe(pkcs1, (size_t)(pkcs1_len > 0 ? pkcs1_len : 0));
    free(pkcs1);
  }
  if (buf) {
    ly_wipe(buf, n);
    free(buf);
  }
  return rc;
}

int ly_key_to_pem(const ly_key_t *key, char **pem, size_t *len) {
  ly_der_t der = {0};
  LY_GUARD(ly_key_to_der(key, &der));
  int rc = 0;
  size_t cap = ly_pem_encoded_len("PRIVATE KEY", der.len) + 1;
  char *p = malloc(cap);
  if (!p) {
    rc = UV_ENOMEM;
    goto out;
  }
  size_t n = ly_pem_write(p, "PRIVATE KEY", der.der, der.len);
  p[n] = '\0';
  *pem = p;
  *len = n;
out:
  ly_wipe(der.der, der.len);
  free(der.der);
  return rc;
}

/* ---- public keys ---------------------------------------------------------*/

int ly_pubkey_load(const unsigned char *spki, size_t len, ly_pubkey_t *pk) {
  memset(pk, 0, sizeof(*pk));
  ly_dr_t r, alg;
  ly_tlv_t seq, algid, oid;
  ly_dr_init(&r, spki, len);
  LY_ENSURE(ly_dr_expect(&r, LY_DER_SEQ, &seq) == 0 && !ly_dr_more(&r),
            LY_ECRYPTO);
  ly_dr_enter(&r, &seq);
  LY_ENSURE(ly_dr_expect(&r, LY_DER_SEQ, &algid) == 0, LY_ECRYPTO);
  ly_dr_enter(&alg, &algid);
  LY_ENSURE(ly_dr_expect(&alg, LY_DER_OID, &oid) == 0, LY_ECRYPTO);
  word32 idx = 0;
  if (oid.len == sizeof(oid_ec_public_key) &&
      memcmp(oid.val, oid_ec_public_key, oid.len) == 0) {
    LY_ENSURE(wc_ecc_init(&pk->k.ecc) == 0, LY_ECRYPTO);
    pk->type = ECC_TYPE;
    if (wc_EccPublicKeyDecode(spki, &idx, &pk->k.ecc, (word32)len) != 0) {
      ly_pubkey_free(pk);
      return LY_ECRYPTO;
    }
    return 0;
  }
  if (oid.len == sizeof(oid_rsa_encryption) &&
      memcmp(oid.val, oid_rsa_encryption, oid.len) == 0) {
    LY_ENSURE(wc_InitRsaKey(&pk->k.rsa, NULL) == 0, LY_ECRYPTO);
    pk->type = RSA_TYPE;
    if (wc_RsaPublicKeyDecode(spki, &idx, &pk->k.rsa, (word32)len) != 0) {
      ly_pubkey_free(pk);
      return LY_ECRYPTO;
    }
    return 0;
  }
  return LY_ECRYPTO;
}

void ly_pubkey_free(ly_pubkey_t *pk) {
  if (pk->type == ECC_TYPE)
    wc_ecc_free(&pk->k.ecc);
  else if (pk->type == RSA_TYPE)
    wc_FreeRsaKey(&pk->k.rsa);
  pk->type = 0;
}

int ly_pubkey_curve(const ly_pubkey_t *pk) {
  return pk->type == ECC_TYPE ? wc_ecc_get_curve_id(pk->k.ecc.idx) : 0;
}

int ly_key_spki(const ly_key_t *key, unsigned char **out, size_t *len) {
  ly_key_t *k = (ly_key_t *)key;
  int n = k->type == ECC_TYPE ? wc_EccPublicKeyDerSize(&k->k.ecc, 1)
                              : wc_RsaPublicKeyDerSize(&k->k.rsa, 1);
  LY_ENSURE(n > 0, LY_ECRYPTO);
  unsigned char *buf = malloc((size_t)n);
  LY_ENSURE(buf, UV_ENOMEM);
  n = k->type == ECC_TYPE ? wc_EccPublicKeyToDer(&k->k.ecc, buf, (word32)n, 1)
                          : wc_RsaKeyToPublicDer(&k->k.rsa, buf, (word32)n);
  if (n <= 0) {
    free(buf);
    return LY_ECRYPTO;
  }
  *out = buf;
  *len = (size_t)n;
  return 0;
}

static int key_is_p384(const ly_key_t *key) {
  return key->type == ECC_TYPE &&
         wc_ecc_get_curve_id(key->k.ecc.idx) == ECC_SECP384R1;
}

void ly_key_sigalg(const ly_key_t *key, ly_dw_t *w) {
  size_t m = ly_dw_open(w, LY_DER_SEQ);
  if (key->type == RSA_TYPE) {
    ly_dw_tlv(w, LY_DER_OID, oid_sha256_rsa, sizeof(oid_sha256_rsa));
    ly_dw_tlv(w, LY_DER_NULL, NULL, 0);
  } else if (key_is_p384(key)) {
    ly_dw_tlv(w, LY_DER_OID, oid_ecdsa_sha384, sizeof(oid_ecdsa_sha384));
  } else {
    ly_dw_tlv(w, LY_DER_OID, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
  }
  ly_dw_close(w, m);
}

int ly_key_sign_der(const ly_key_t *key, WC_RNG *rng, ly_dw_t *w) {
  LY_GUARD(ly_dw_finish(w));
  int stype = key->type == RSA_TYPE ? CTC_SHA256wRSA
              : key_is_p384(key)    ? CTC_SHA384wECDSA
                                    : CTC_SHA256wECDSA;
  size_t body = w->len;
  /* wc_SignCert_ex signs buf[0, body) and wraps it in place: SEQUENCE
   * header, AlgorithmIdentifier and signature need this much room */
  size_t room = body + MAX_SEQ_SZ * 2 + MAX_ALGO_SZ + MAX_ENCODED_SIG_SZ + 16;
  unsigned char pad = 0;
  while (w->len < room) {
    ly_dw_bytes(w, &pad, 1);
    LY_GUARD(ly_dw_finish(w));
  }
  int n = wc_SignCert_ex(
      (int)body, stype, w->p, (word32)w->len,
      key->type == RSA_TYPE ? RSA_TYPE : ECC_TYPE,
      key->type == RSA_TYPE ? (void *)&key->k.rsa : (void *)&key->k.ecc, rng);
  LY_ENSURE(n > 0, LY_ECRYPTO);
  w->len = (size_t)n;
  return 0;
}

int ly_key_matches_cert(const ly_key_t *key, const void *der, size_t len) {
  ly_x509_cert_t c;
  if (ly_x509_cert_parse(der, len, &c) != 0)
    return 0;
  ly_pubkey_t pk;
  int match = 0;
  if (ly_pubkey_load(c.spki.tlv, c.spki.tlv_len, &pk) != 0)
    goto out;
  ly_key_t *k = (ly_key_t *)key;
  if (key->type == ECC_TYPE && pk.type == ECC_TYPE) {
    unsigned char a[1 + 2 * MAX_ECC_BYTES], b[1 + 2 * MAX_ECC_BYTES];
    word32 alen = sizeof(a), blen = sizeof(b);
    match = wc_ecc_export_x963(&k->k.ecc, a, &alen) == 0 &&
            wc_ecc_export_x963(&pk.k.ecc, b, &blen) == 0 && alen == blen &&
            memcmp(a, b, alen) == 0;
  } else if (key->type == RSA_TYPE && pk.type == RSA_TYPE) {
    unsigned char e1[16], e2[16], n1[RSA_MAX_SIZE / 8], n2[RSA_MAX_SIZE / 8];
    word32 e1l = sizeof(e1), e2l = sizeof(e2), n1l = sizeof(n1),
           n2l = sizeof(n2);
    match = wc_RsaFlattenPublicKey(&k->k.rsa, e1, &e1l, n1, &n1l) == 0 &&
            wc_RsaFlattenPublicKey(&pk.k.rsa, e2, &e2l, n2, &n2l) == 0 &&
            e1l == e2l && n1l == n2l && memcmp(e1, e2, e1l) == 0 &&
            memcmp(n1, n2, n1l) == 0;
  }
  ly_pubkey_free(&pk);
out:
  ly_x509_cert_free(&c);
  return match;
}

/* ---- certificate signatures --------------------------------------------- */

int ly_x509_sig_verify(const unsigned char *data, size_t data_len,
                       unsigned sig_oid, const unsigned char *sig,
                       size_t sig_len, const unsigned char *spki,
                       size_t spki_len) {
  enum wc_HashType hash;
  int want; /* the key type the algorithm needs */
  switch (sig_oid) {
  case CTC_SHA256wECDSA:
    hash = WC_HASH_TYPE_SHA256;
    want = ECC_TYPE;
    break;
  case CTC_SHA384wECDSA:
    hash = WC_HASH_TYPE_SHA384;
    want = ECC_TYPE;
    break;
  case CTC_SHA512wECDSA:
    hash = WC_HASH_TYPE_SHA512;
    want = ECC_TYPE;
    break;
  case CTC_SHA256wRSA:
    hash = WC_HASH_TYPE_SHA256;
    want = RSA_TYPE;
    break;
  case CTC_SHA384wRSA:
    hash = WC_HASH_TYPE_SHA384;
    want = RSA_TYPE;
    break;
  case CTC_SHA512wRSA:
    hash = WC_HASH_TYPE_SHA512;
    want = RSA_TYPE;
    break;
  default:
    /* SHA-1, RSA-PSS, DSA, ...: not accepted */
    return LY_ECRYPTO;
  }
  ly_pubkey_t pk;
  LY_GUARD(ly_pubkey_load(spki, spki_len, &pk));
  int rc = LY_ECRYPTO;
  if (pk.type != want)
    goto out;
  if (pk.type == RSA_TYPE && wc_RsaEncryptSize(&pk.k.rsa) < 2048 / 8)
    goto out; /* too weak to trust */
  unsigned char digest[WC_MAX_DIGEST_SIZE], info[WC_MAX_DIGEST_SIZE + 32];
  int dlen = wc_HashGetDigestSize(hash);
  if (dlen <= 0 ||
      wc_Hash(hash, data, (word32)data_len, digest, (word32)dlen) != 0)
    goto out;
  if (pk.type == ECC_TYPE) {
    if (wc_SignatureVerifyHash(hash, WC_SIGNATURE_TYPE_ECC, digest,
                               (word32)dlen, sig, (word32)sig_len, &pk.k.ecc,
                               sizeof(pk.k.ecc)) == 0)
      rc = 0;
    goto out;
  }
  /* PKCS#1 v1.5 compares DigestInfo encodings. It is built here because
   * wc_SignatureVerify (5.5.4, ASN template) encodes it in place over the
   * digest and so never matches. */
  word32 ilen =
      wc_EncodeSignature(info, digest, (word32)dlen, wc_HashGetOID(hash));
  if (ilen > 0 &&
      wc_SignatureVerifyHash(hash, WC_SIGNATURE_TYPE_RSA_W_ENC, info, ilen, sig,
                             (word32)sig_len, &pk.k.rsa, sizeof(pk.k.rsa)) == 0)
    rc = 0;
out:
  ly_pubkey_free(&pk);
  return rc;
}
