/* Loading the CA's materials, shared by serve, token and --check. */
#include "ca/ca.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEM_MAX (1u << 20)

static int read_or_diag(const char *path, const char *what, ly_diag_t *diag,
                        char **data, size_t *len) {
  int rc = ly_file_read(path, PEM_MAX, data, len);
  if (rc != 0)
    ly_diag_add(diag, path, 0, 0, "cannot read %s: %s", what, ly_strerror(rc));
  return rc;
}

static int load_bundle(const char *path, ly_chain_t *roots, ly_diag_t *diag) {
  char *pem = NULL;
  size_t len = 0;
  const char *why = "unreadable";
  LY_GUARD(read_or_diag(path, "the trust bundle", diag, &pem, &len));
  int rc = ly_chain_from_pem(pem, len, roots, &why);
  if (rc != 0)
    ly_diag_add(diag, path, 0, 0, "bad trust bundle: %s", why);
  free(pem);
  return rc;
}

void ly_ca_server_id(const char *trust_domain, char *out, size_t len) {
  snprintf(out, len, "spiffe://%s/lanyard/ca", trust_domain);
}

static void stamp_of(const char *path, ly_file_stamp_t *out) {
  struct stat st;
  memset(out, 0, sizeof(*out));
  if (stat(path, &st) == 0) {
    out->ino = st.st_ino;
    out->size = st.st_size;
    out->mtime = st.st_mtim;
  }
}

static int same_stamp(const ly_file_stamp_t *a, const ly_file_stamp_t *b) {
  return a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec &&
         a->mtime.tv_nsec == b->mtime.tv_nsec;
}

int ly_ca_load(ly_ca_t *ca, const ly_ca_config_t *cfg, int deep,
               ly_diag_t *diag) {
  size_t before = diag->n;
  char *cert = NULL, *key = NULL, *secret = NULL, *jwks = NULL;
  size_t cert_len = 0, key_len = 0, secret_len = 0, jwks_len = 0;
  const char *why = NULL;

  memset(ca, 0, sizeof(*ca));
  ca->cfg = cfg;
  /* stamped before reading: a change in between is seen at the next poll */
  stamp_of(cfg->signing_cert, &ca->signer_st[0]);
  stamp_of(cfg->signing_key, &ca->signer_st[1]);
  if (read_or_diag(cfg->signing_cert, "the signing certificate", diag, &cert,
                   &cert_len) == 0 &&
      read_or_diag(cfg->signing_key, "the signing key", diag, &key, &key_len) ==
          0 &&
      ly_signer_load(cert, cert_len, key, key_len, &ca->signer, &why) != 0)
    ly_diag_add(diag, cfg->signing_cert, 0, 0, "bad signing identity: %s", why);
  struct stat st;
  if (load_bundle(cfg->bundle, &ca->roots, diag) == 0 &&
      stat(cfg->bundle, &st) == 0)
    ca->bundle_mtime = st.st_mtim;
  if (read_or_diag(cfg->token_secret, "the token secret", diag, &secret,
                   &secret_len) == 0 &&
      ly_token_secret_parse(secret, secret_len, ca->token_secret) != 0)
    ly_diag_add(diag, cfg->token_secret, 0, 0,
                "bad token secret: expected 32 bytes, base64url, one line");
  if (cfg->kubernetes.enabled && cfg->kubernetes.jwks &&
      read_or_diag(cfg->kubernetes.jwks, "the JWKS", diag, &jwks, &jwks_len) ==
          0 &&
      ly_jwks_parse(jwks, jwks_len, &ca->jwks, &why) != 0)
    ly_diag_add(diag, cfg->kubernetes.jwks, 0, 0, "bad JWKS: %s", why);

  if (deep && ca->signer && ca->roots.n > 0) {
    const ly_chain_t *chain = ly_signer_chain(ca->signer);
    ly_cert_info_t info;
    if (ly_chain_verify(chain, &ca->roots, (int64_t)time(NULL), &info, &why) !=
        0)
      ly_diag_add(diag, cfg->signing_cert, 0, 0,
                  "signing certificate does not verify against %s: %s",
                  cfg->bundle, why);
    else if (!info.is_ca)
      ly_diag_add(diag, cfg->signing_cert, 0, 0,
                  "signing certificate is not a CA");
  }
  if (cert)
    free(cert);
  if (key) {
    ly_wipe(key, key_len);
    free(key);
  }
  if (secret) {
    ly_wipe(secret, secret_len);
    free(secret);
  }
  free(jwks);
  if (diag->n > before) {
    ly_ca_free(ca);
    return LY_ECONFIG;
  }
  ly_ca_signer_fingerprints(ca);
  return 0;
}

void ly_ca_signer_fingerprints(ly_ca_t *ca) {
  const ly_chain_t *chain = ly_signer_chain(ca->signer);
  ly_der_sha256_hex(chain->certs[0].der, chain->certs[0].len,
                    ca->signer_sha256);
  ca->signer_root_sha256[0] = '\0';
  for (size_t i = 0; i < ca->roots.n; i++) {
    ly_chain_t one = {.certs = &ca->roots.certs[i], .n = 1};
    if (ly_chain_verify(chain, &one, (int64_t)time(NULL), NULL, NULL) == 0) {
      ly_der_sha256_hex(ca->roots.certs[i].der, ca->roots.certs[i].len,
                        ca->signer_root_sha256);
      return;
    }
  }
}

void ly_ca_reload_bundle(ly_ca_t *ca) {
  struct stat st;
  if (stat(ca->cfg->bundle, &st) != 0 ||
      (st.st_mtim.tv_sec == ca->bundle_mtime.tv_sec &&
       st.st_mtim.tv_nsec == ca->bundle_mtime.tv_nsec))
    return;
  ly_diag_t diag;
  ly_diag_init(&diag);
  ly_chain_t roots = {0};
  if (load_bundle(ca->cfg->bundle, &roots, &diag) == 0 && roots.n > 0) {
    ly_chain_free(&ca->roots);
    ca->roots = roots;
    ca->bundle_mtime = st.st_mtim;
    ly_ca_signer_fingerprints(ca);
    char n[16];
    ly_log(LY_INFO, "bundle_reloaded", "roots",
           ly_fmt(n, sizeof(n), "%zu", roots.n), NULL);
  } else {
    ly_chain_free(&roots);
    ly_log(LY_WARN, "bundle_reload_failed", "reason",
           diag.n ? diag.lines[0] : "empty bundle", NULL);
  }
  ly_diag_free(&diag);
}

int ly_ca_reload_signer(ly_ca_t *ca) {
  ly_file_stamp_t st[2];
  stamp_of(ca->cfg->signing_cert, &st[0]);
  stamp_of(ca->cfg->signing_key, &st[1]);
  if (same_stamp(&st[0], &ca->signer_st[0]) &&
      same_stamp(&st[1], &ca->signer_st[1]))
    return 0;
  ca->signer_st[0] = st[0];
  ca->signer_st[1] = st[1];
  char *cert = NULL, *key = NULL;
  size_t cert_len = 0, key_len = 0;
  const char *why = NULL;
  ly_signer_t *signer = NULL;
  int rc = ly_file_read(ca->cfg->signing_cert, PEM_MAX, &cert, &cert_len);
  if (rc == 0)
    rc = ly_file_read(ca->cfg->signing_key, PEM_MAX, &key, &key_len);
  if (rc == 0)
    rc = ly_signer_load(cert, cert_len, key, key_len, &signer, &why);
  free(cert);
  if (key) {
    ly_wipe(key, key_len);
    free(key);
  }
  if (rc != 0) {
    ly_log(LY_WARN, "signer_reload_failed", "reason",
           why ? why : ly_strerror(rc), NULL);
    return 0;
  }
  ly_signer_free(ca->signer);
  ca->signer = signer;
  ca->signer_gen++;
  ly_ca_signer_fingerprints(ca);
  ly_log(LY_INFO, "signer_reloaded", "sha256", ca->signer_sha256, "root_sha256",
         ca->signer_root_sha256[0] ? ca->signer_root_sha256 : "none", NULL);
  return 1;
}

void ly_ca_free(ly_ca_t *ca) {
  ly_signer_free(ca->signer);
  ca->signer = NULL;
  ly_chain_free(&ca->roots);
  ly_kube_free(ca->kube);
  ca->kube = NULL;
  ly_jwks_free(ca->jwks);
  ca->jwks = NULL;
  ly_mesh_free(ca->mesh);
  ca->mesh = NULL;
  ly_verified_free(ca->verified);
  ca->verified = NULL;
  ly_inventory_close(ca->inventory);
  ca->inventory = NULL;
  ly_wipe(ca->token_secret, sizeof(ca->token_secret));
  ly_log_limiter_destroy(&ca->refusal_log); /* zeroed when never started */
}
