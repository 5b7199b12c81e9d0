/* Write-out of the SVID for applications that do their own TLS. Each file
 * is replaced atomically (rename), so a reader never sees a torn file; the
 * key is written first and the certificate last, so a reader that waits
 * for svid.pem to change finds the matching key already in place. The
 * directory is created when missing (a path under /run does not survive
 * a reboot), 0755 so that applications under other users can reach the
 * certificate; the key itself stays 0600. */
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/identity.h"

#include <stdio.h>
#include <stdlib.h>

static int write_pem(const char *dir, const char *name, const char *pem,
                     size_t len, mode_t mode) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return ly_file_write_atomic(path, pem, len, mode);
}

int ly_svid_dir_write(const char *dir, const ly_chain_t *chain,
                      const ly_key_t *key, const ly_chain_t *bundle) {
  char *key_pem = NULL, *chain_pem = NULL, *bundle_pem = NULL;
  size_t key_len = 0, chain_len = 0, bundle_len = 0;
  int rc;
  if ((rc = ly_dir_create(dir, 0755)) != 0 ||
      (rc = ly_key_to_pem(key, &key_pem, &key_len)) != 0 ||
      (rc = ly_chain_to_pem(chain, &chain_pem, &chain_len)) != 0 ||
      (rc = ly_chain_to_pem(bundle, &bundle_pem, &bundle_len)) != 0)
    goto out;
  if ((rc = write_pem(dir, "svid.key", key_pem, key_len, 0600)) == 0 &&
      (rc = write_pem(dir, "bundle.pem", bundle_pem, bundle_len, 0644)) == 0)
    rc = write_pem(dir, "svid.pem", chain_pem, chain_len, 0644);
out:
  if (key_pem) {
    ly_wipe(key_pem, key_len);
    free(key_pem);
  }
  free(chain_pem);
  free(bundle_pem);
  return rc;
}
