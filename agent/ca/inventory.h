/* The certificate inventory (inventory.c): what this CA replica issued. */
#ifndef LANYARD_CA_INVENTORY_H
#define LANYARD_CA_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

/* Entries kept when the file is compacted (it grows to twice this). */
#define LY_INVENTORY_DEFAULT_MAX 50000

typedef struct {
  const char *serial; /* lowercase hex */
  const char *spiffe_id;
  int64_t issued_at; /* unix seconds */
  int64_t not_before;
  int64_t not_after;
  const char *credential;          /* join_token, k8s_token, mtls */
  const char *caller;              /* the RPC peer's address */
  const char *intermediate_sha256; /* the signing certificate, DER */
  const char *root_sha256;         /* the root it chains to; "" unknown */
} ly_issued_t;

typedef struct ly_inventory_s ly_inventory_t;

/* Opens (creating, 0640) the inventory file for appending. */
int ly_inventory_open(const char *path, size_t max, ly_inventory_t **out);
void ly_inventory_close(ly_inventory_t *inv);
const char *ly_inventory_path(const ly_inventory_t *inv);

/* Appends one certificate; compacts when the file holds 2*max lines.
 * Failures are logged once per run of failures. */
int ly_inventory_add(ly_inventory_t *inv, const ly_issued_t *c);

/* Calls fn for each entry of the file at path, oldest first; stops at the
 * first non-zero return, which it returns. Unreadable lines are skipped.
 * The strings live only during the call. */
typedef int (*ly_inventory_fn)(const ly_issued_t *c, void *data);
int ly_inventory_each(const char *path, ly_inventory_fn fn, void *data);

#endif
