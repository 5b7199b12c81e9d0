/* Table-driven conversion of a node tree into a config struct.
 *
 * A mapping is described by a table of fields (key, handler, where the
 * handler stores, required). ly_schema_map walks the mapping in file
 * order, reports unknown keys at the key, runs each handler on its value
 * and reports missing required keys at the mapping. Handlers report their
 * own errors at the value and keep going, so one pass finds every error.
 */
#ifndef LANYARD_CONFIG_SCHEMA_H
#define LANYARD_CONFIG_SCHEMA_H

#include "config/yamlnode.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *file;
  ly_diag_t *diag;
  int nerr;         /* errors so far, whether or not their text was stored */
  const char *td;   /* the file's valid trust domain, or NULL */
  int check_files;  /* --check: look at the files paths name */
  const char *data; /* non-NULL: parse this text instead of reading file */
  size_t len;
} ly_schema_t;

/* What a path names, for --check (ly_f_path's arg; NULL: not checked). */
typedef enum {
  LY_FILE_PLAIN, /* a non-empty regular file */
  LY_FILE_CERTS, /* PEM certificates */
  LY_FILE_KEY,   /* a PEM private key */
  LY_FILE_DIR,   /* a directory to write to (or to create) */
} ly_file_kind_t;

typedef struct {
  const char *what; /* for messages: "the token file" */
  ly_file_kind_t kind;
  int secret; /* warn when group or others may read it */
} ly_file_spec_t;

/* Reports at v what is wrong with the file at path (v's text as given). */
void ly_schema_check_file(ly_schema_t *s, const ly_ynode_t *v, const char *path,
                          const ly_file_spec_t *spec);

typedef struct ly_field ly_field_t;

/* Converts v into obj per f; reports problems, returns 0 or -1. */
typedef int (*ly_field_fn)(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                           const ly_field_t *f);

struct ly_field {
  const char *key;
  ly_field_fn fn;
  int required;
  size_t off;      /* where fn stores, within obj */
  size_t off2;     /* the count, for lists */
  const void *arg; /* handler-specific: enum names, a nested table */
};

/* Table rows: a value stored at `off`; a list with its count at `cnt`; a
 * handler taking `arg` (a nested table, enum names); the end. */
#define LY_KEY(k, f, req, o)                                                   \
  { .key = (k), .fn = (f), .required = (req), .off = (o) }
#define LY_LIST(k, f, req, o, cnt)                                             \
  { .key = (k), .fn = (f), .required = (req), .off = (o), .off2 = (cnt) }
#define LY_ARG(k, f, req, o, a)                                                \
  { .key = (k), .fn = (f), .required = (req), .off = (o), .arg = (a) }
#define LY_END                                                                 \
  { .key = NULL }

void ly_schema_error(ly_schema_t *s, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define LY_SCHEMA_ERR(s, node, ...)                                            \
  ly_schema_error((s), (node)->line, (node)->col, __VA_ARGS__)

/* Walks `map` (which must be a mapping) against `fields`, a table of at
 * most 32 rows ended by LY_END; `where` names the mapping in "unknown key"
 * messages ("" for the top level). Returns the mask of keys present (bit i:
 * fields[i]); *ok (may be NULL) gets the mask of those whose value was valid,
 * so checks across keys run exactly when their inputs are sound. */
uint32_t ly_schema_map(ly_schema_t *s, const ly_ynode_t *map, const char *where,
                       const ly_field_t *fields, void *obj, uint32_t *ok);

/* Type checks, each reporting "expected ..." at v. 0 or -1. */
int ly_schema_kind(ly_schema_t *s, const ly_ynode_t *v, ly_ynode_kind_t kind);
int ly_schema_str(ly_schema_t *s, const ly_ynode_t *v, const char **out);
int ly_schema_int(ly_schema_t *s, const ly_ynode_t *v, long min, long max,
                  const char *what, long *out);

/* Handlers. Each stores at obj + f->off (and the count at f->off2). */
int ly_f_string(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f); /* char *; f->off SIZE_MAX: check only */
int ly_f_path(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f); /* char *, resolved against the file;
                                       f->arg: ly_file_spec_t, or NULL */
int ly_f_duration(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f); /* uint64_t ms; f->arg: const
                                           uint64_t *minimum, or NULL */
int ly_f_duration_range(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                        const ly_field_t *f); /* uint64_t ms; f->arg: const
                                                 uint64_t[2] {min, max} */
int ly_f_listen(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                const ly_field_t *f); /* ly_hostport_t, IP literal; f->arg
                                         non-NULL: port 0 allowed */
int ly_f_address(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                 const ly_field_t *f); /* ly_hostport_t, names allowed */
int ly_f_port(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f); /* uint16_t */
int ly_f_ports(ly_schema_t *s, const ly_ynode_t *v, void *obj,
               const ly_field_t *f); /* uint16_t *, size_t */
int ly_f_enum(ly_schema_t *s, const ly_ynode_t *v, void *obj,
              const ly_field_t *f); /* int index into f->arg's NULL-ended
                                       names */
int ly_f_trust_domain(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                      const ly_field_t *f); /* char * */
int ly_f_spiffe_id(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                   const ly_field_t *f); /* char *, in the trust domain */
int ly_f_patterns(ly_schema_t *s, const ly_ynode_t *v, void *obj,
                  const ly_field_t *f); /* char **, size_t; non-empty */
int ly_f_map(ly_schema_t *s, const ly_ynode_t *v, void *obj,
             const ly_field_t *f); /* nested table f->arg, same obj */

/* Loads a config file's tree and checks that its root is a mapping.
 * Returns the root (free *tree) or NULL; errors are in s. Also sets s->td
 * from a valid top-level trust_domain, so IDs anywhere in the file can be
 * checked against it whatever the key order. */
const ly_ynode_t *ly_schema_load(ly_schema_t *s, const char *path,
                                 ly_ynode_t **tree);

/* Reports that two keys of a mapping exclude each other, at the later. */
void ly_schema_exclusive(ly_schema_t *s, const ly_ynode_t *map, const char *a,
                         const char *b);

#endif
