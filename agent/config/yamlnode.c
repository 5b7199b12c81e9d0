#include "config/yamlnode.h"

#include "lanyard/err.h"
#include "lanyard/fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

/* Enough for any real config, and it bounds the quadratic duplicate-key
 * check and the memory a hostile file can claim. */
#define MAX_KEYS 1024
#define MAX_ITEMS 65536

typedef struct {
  yaml_parser_t parser;
  const char *file;
  const char *data;
  size_t len;
  ly_diag_t *diag;
  int nerr;
  int fatal; /* stop: the event stream can no longer be followed */
} yparse_t;

static void perr(yparse_t *p, int line, int col, const char *msg) {
  ly_diag_add(p->diag, p->file, line, col, "%s", msg);
  p->nerr++;
}

static void syntax_error(yparse_t *p) {
  const yaml_parser_t *y = &p->parser;
  size_t off = y->problem_mark.index;
  int line = (int)y->problem_mark.line + 1,
      col = (int)y->problem_mark.column + 1;
  p->fatal = 1;
  p->nerr++;
  if (y->error == YAML_READER_ERROR) {
    /* the reader reports a byte offset, not a mark */
    off = y->problem_offset < p->len ? y->problem_offset : p->len;
    line = col = 1;
    for (size_t i = 0; i < off; i++, col++)
      if (p->data[i] == '\n')
        line++, col = 0;
    ly_diag_add(p->diag, p->file, line, col, "invalid text: %s",
                y->problem ? y->problem : "unreadable input");
    return;
  }
  if (off < p->len && p->data[off] == '\t') {
    ly_diag_add(p->diag, p->file, line, col,
                "syntax error: tabs are not allowed for indentation");
    return;
  }
  if (y->context)
    ly_diag_add(p->diag, p->file, line, col,
                "syntax error: %s (%s at line %d, column %d)",
                y->problem ? y->problem : "malformed YAML", y->context,
                (int)y->context_mark.line + 1, (int)y->context_mark.column + 1);
  else
    ly_diag_add(p->diag, p->file, line, col, "syntax error: %s",
                y->problem ? y->problem : "malformed YAML");
}

static int next_event(yparse_t *p, yaml_event_t *ev) {
  if (yaml_parser_parse(&p->parser, ev))
    return 0;
  syntax_error(p);
  return -1;
}

static ly_ynode_t *node_new(yparse_t *p, ly_ynode_kind_t kind, int line,
                            int col) {
  ly_ynode_t *n = calloc(1, sizeof(*n));
  if (!n) {
    perr(p, line, col, "out of memory");
    p->fatal = 1;
    return NULL;
  }
  n->kind = kind;
  n->line = line;
  n->col = col;
  return n;
}

void ly_ynode_free(ly_ynode_t *n) {
  if (!n)
    return;
  for (size_t i = 0; n->items && i < n->n; i++)
    ly_ynode_free(n->items[i]);
  for (size_t i = 0; n->pairs && i < n->n; i++) {
    free(n->pairs[i].key);
    ly_ynode_free(n->pairs[i].value);
  }
  free(n->items);
  free(n->pairs);
  free(n->str);
  free(n);
}

const ly_ypair_t *ly_ynode_find(const ly_ynode_t *map, const char *key) {
  if (!map || map->kind != LY_YNODE_MAP)
    return NULL;
  for (size_t i = 0; i < map->n; i++)
    if (strcmp(map->pairs[i].key, key) == 0)
      return &map->pairs[i];
  return NULL;
}

/* Makes room for one more. Nodes keep no capacity: arrays double, so a
 * count of zero or a power of two means the array is full. */
static void *grow(void *arr, size_t n, size_t size) {
  if (n & (n - 1))
    return arr;
  return realloc(arr, (n ? 2 * n : 1) * size);
}

static ly_ynode_t *build(yparse_t *p, yaml_event_t *ev, int depth);

static void build_seq(yparse_t *p, ly_ynode_t *n, int depth) {
  yaml_event_t ev;
  while (!p->fatal && next_event(p, &ev) == 0) {
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return;
    }
    void *items =
        n->n < MAX_ITEMS ? grow(n->items, n->n, sizeof(*n->items)) : NULL;
    if (!items) {
      perr(p, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
           n->n == MAX_ITEMS ? "too many list items" : "out of memory");
      p->fatal = 1;
      yaml_event_delete(&ev);
      return;
    }
    n->items = items;
    ly_ynode_t *item = build(p, &ev, depth);
    if (item)
      n->items[n->n++] = item;
  }
}

static void build_map(yparse_t *p, ly_ynode_t *n, int depth) {
  yaml_event_t ev;
  while (!p->fatal && next_event(p, &ev) == 0) {
    if (ev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ev);
      return;
    }
    ly_ynode_t *key = build(p, &ev, depth);
    if (p->fatal || next_event(p, &ev) != 0) {
      ly_ynode_free(key);
      return;
    }
    ly_ynode_t *value = build(p, &ev, depth);
    const ly_ypair_t *dup = NULL;
    void *pairs = NULL;
    if (!key || !value || key->invalid) {
      /* already reported */
    } else if (key->kind != LY_YNODE_SCALAR) {
      perr(p, key->line, key->col, "mapping keys must be strings");
    } else if ((dup = ly_ynode_find(n, key->str)) != NULL) {
      ly_diag_add(p->diag, p->file, key->line, key->col,
                  "duplicate key '%.100s' (first at line %d)", key->str,
                  dup->line);
      p->nerr++;
    } else if (n->n == MAX_KEYS ||
               (pairs = grow(n->pairs, n->n, sizeof(*n->pairs))) == NULL) {
      perr(p, key->line, key->col,
           n->n == MAX_KEYS ? "too many keys in one mapping" : "out of memory");
      p->fatal = 1;
    } else {
      n->pairs = pairs;
      n->pairs[n->n++] = (ly_ypair_t){key->str, key->line, key->col, value};
      key->str = NULL;
      value = NULL;
    }
    ly_ynode_free(key);
    ly_ynode_free(value);
  }
}

/* Builds the node that starts with *ev, which it consumes. NULL after a
 * fatal error. */
static ly_ynode_t *build(yparse_t *p, yaml_event_t *ev, int depth) {
  int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
  ly_ynode_t *n = NULL;
  const yaml_char_t *anchor = NULL;
  int tagged = 0;
  switch (ev->type) {
  case YAML_ALIAS_EVENT:
    perr(p, line, col, "aliases (*name) are not supported");
    if ((n = node_new(p, LY_YNODE_SCALAR, line, col)) != NULL)
      n->invalid = 1;
    break;
  case YAML_SCALAR_EVENT:
    anchor = ev->data.scalar.anchor;
    tagged = ev->data.scalar.tag != NULL;
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length)) {
      perr(p, line, col, "strings must not contain NUL characters");
      if ((n = node_new(p, LY_YNODE_SCALAR, line, col)) != NULL)
        n->invalid = 1;
      break;
    }
    if ((n = node_new(p, LY_YNODE_SCALAR, line, col)) == NULL)
      break;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if ((n->str = strdup((const char *)ev->data.scalar.value)) == NULL) {
      perr(p, line, col, "out of memory");
      p->fatal = 1;
    }
    break;
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT:
    anchor = ev->type == YAML_SEQUENCE_START_EVENT
                 ? ev->data.sequence_start.anchor
                 : ev->data.mapping_start.anchor;
    tagged = (ev->type == YAML_SEQUENCE_START_EVENT
                  ? ev->data.sequence_start.tag
                  : ev->data.mapping_start.tag) != NULL;
    if (depth >= LY_YAML_MAX_DEPTH) {
      ly_diag_add(p->diag, p->file, line, col,
                  "nesting is deeper than %d levels", LY_YAML_MAX_DEPTH);
      p->nerr++;
      p->fatal = 1;
      break;
    }
    n = node_new(
        p, ev->type == YAML_SEQUENCE_START_EVENT ? LY_YNODE_SEQ : LY_YNODE_MAP,
        line, col);
    break;
  default:
    perr(p, line, col, "syntax error: unexpected YAML structure");
    p->fatal = 1;
    break;
  }
  if (anchor)
    perr(p, line, col, "anchors (&name) are not supported");
  if (tagged)
    perr(p, line, col, "tags (!name) are not supported");
  yaml_event_delete(ev);
  if (n && !p->fatal && n->kind == LY_YNODE_SEQ)
    build_seq(p, n, depth + 1);
  else if (n && !p->fatal && n->kind == LY_YNODE_MAP)
    build_map(p, n, depth + 1);
  if (p->fatal) {
    ly_ynode_free(n);
    return NULL;
  }
  return n;
}

int ly_yaml_parse(const char *file, const char *data, size_t len,
                  ly_ynode_t **root, ly_diag_t *diag) {
  yparse_t p = {.file = file, .data = data, .len = len, .diag = diag};
  yaml_event_t ev;
  ly_ynode_t *doc = NULL;
  *root = NULL;
  if (!yaml_parser_initialize(&p.parser)) {
    ly_diag_add(diag, file, 0, 0, "out of memory");
    return LY_ECONFIG;
  }
  yaml_parser_set_input_string(&p.parser, (const unsigned char *)data, len);
  /* stream-start, then at most one document */
  if (next_event(&p, &ev) != 0)
    goto out;
  yaml_event_delete(&ev);
  while (!p.fatal && next_event(&p, &ev) == 0) {
    yaml_event_type_t type = ev.type;
    int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
    yaml_event_delete(&ev);
    if (type == YAML_STREAM_END_EVENT)
      break;
    if (type != YAML_DOCUMENT_START_EVENT)
      continue; /* document end */
    if (doc) {
      perr(&p, line, col, "expected a single YAML document");
      break;
    }
    if (next_event(&p, &ev) != 0)
      break;
    doc = build(&p, &ev, 0);
  }
out:
  yaml_parser_delete(&p.parser);
  if (p.fatal) {
    ly_ynode_free(doc);
    doc = NULL;
  }
  *root = doc;
  return p.nerr ? LY_ECONFIG : 0;
}

int ly_yaml_load(const char *path, ly_ynode_t **root, ly_diag_t *diag) {
  char *data = NULL;
  size_t len = 0;
  *root = NULL;
  int rc = ly_file_read(path, LY_YAML_MAX_BYTES, &data, &len);
  if (rc == LY_ETOO_BIG) {
    ly_diag_add(diag, path, 0, 0, "file is larger than %u KiB",
                LY_YAML_MAX_BYTES / 1024);
    return LY_ECONFIG;
  }
  if (rc != 0) {
    ly_diag_add(diag, path, 0, 0, "cannot read file: %s", uv_strerror(rc));
    return LY_ECONFIG;
  }
  rc = ly_yaml_parse(path, data, len, root, diag);
  free(data);
  return rc;
}
