/* A YAML document as a small tree that remembers where every node and
 * every mapping key came from, so the schemas can point at them.
 *
 * Only the subset configs need: scalars, sequences, mappings, one
 * document. Anchors, aliases and tags are rejected (they make a file say
 * something other than what it shows), and so are duplicate keys.
 */
#ifndef LANYARD_CONFIG_YAMLNODE_H
#define LANYARD_CONFIG_YAMLNODE_H

#include "lanyard/config.h"

#include <stddef.h>

#define LY_YAML_MAX_BYTES (1u << 20)
#define LY_YAML_MAX_DEPTH 64

typedef enum { LY_YNODE_SCALAR, LY_YNODE_SEQ, LY_YNODE_MAP } ly_ynode_kind_t;

typedef struct ly_ynode ly_ynode_t;

typedef struct {
  char *key;
  int line, col; /* of the key, 1-based */
  ly_ynode_t *value;
} ly_ypair_t;

struct ly_ynode {
  ly_ynode_kind_t kind;
  int line, col;      /* 1-based */
  int plain;          /* a scalar written without quotes (numbers, null) */
  int invalid;        /* stands in for a rejected node already reported */
  char *str;          /* scalar text, NUL-free */
  ly_ynode_t **items; /* sequence */
  ly_ypair_t *pairs;  /* mapping, in file order */
  size_t n;           /* items or pairs */
};

/* Parses data[0..len) as one YAML document; `file` only names it in
 * diagnostics. Returns 0, or LY_ECONFIG after adding every problem to
 * diag. Even on LY_ECONFIG *root may be set: the problems (a duplicate
 * key, an alias) left a complete tree that the schema can still check,
 * so a file's errors all show at once. *root is NULL for an empty
 * stream or after a syntax error. The caller frees *root. */
int ly_yaml_parse(const char *file, const char *data, size_t len,
                  ly_ynode_t **root, ly_diag_t *diag);

/* Reads the file (at most LY_YAML_MAX_BYTES) and parses it. A file that
 * cannot be read is one diagnostic without line and column. */
int ly_yaml_load(const char *path, ly_ynode_t **root, ly_diag_t *diag);

/* The pair with this key in a mapping, or NULL. */
const ly_ypair_t *ly_ynode_find(const ly_ynode_t *map, const char *key);

void ly_ynode_free(ly_ynode_t *n);

#endif
