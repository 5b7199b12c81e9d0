#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/rpc.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define HEADER 4

const char *ly_rpc_code_name(int code) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &lanyard__ca__v1__code__descriptor, code);
  return v ? v->name : "UNKNOWN";
}

const char *ly_rpc_code_lower(int code, char *out, size_t len) {
  const char *name = ly_rpc_code_name(code);
  size_t i = 0;
  for (; name[i] && i + 1 < len; i++)
    out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  out[i] = '\0';
  return out;
}

int ly_rpc_frame_pack(uint32_t call_id, const char *method, int code,
                      const char *message, const ProtobufCMessage *body,
                      uint8_t **out, size_t *out_len) {
  Lanyard__Ca__V1__Frame f = LANYARD__CA__V1__FRAME__INIT;
  uint8_t *packed_body = NULL;
  f.call_id = call_id;
  f.method = (char *)(method ? method : "");
  f.code = (Lanyard__Ca__V1__Code)code;
  f.message = (char *)(message ? message : "");
  if (body) {
    size_t blen = protobuf_c_message_get_packed_size(body);
    packed_body = malloc(blen ? blen : 1);
    LY_ENSURE(packed_body != NULL, UV_ENOMEM);
    protobuf_c_message_pack(body, packed_body);
    f.body.data = packed_body;
    f.body.len = blen;
  }
  size_t flen = protobuf_c_message_get_packed_size(&f.base);
  int rc = 0;
  if (flen > LY_RPC_FRAME_MAX) {
    rc = LY_ETOO_BIG;
    goto out;
  }
  uint8_t *buf = malloc(HEADER + flen);
  if (!buf) {
    rc = UV_ENOMEM;
    goto out;
  }
  buf[0] = (uint8_t)(flen >> 24);
  buf[1] = (uint8_t)(flen >> 16);
  buf[2] = (uint8_t)(flen >> 8);
  buf[3] = (uint8_t)flen;
  protobuf_c_message_pack(&f.base, buf + HEADER);
  *out = buf;
  *out_len = HEADER + flen;
out:
  free(packed_body);
  return rc;
}

static size_t announced(const ly_rpc_reader_t *r) {
  const uint8_t *p = r->buf + r->off;
  return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

int ly_rpc_reader_feed(ly_rpc_reader_t *r, const void *data, size_t len) {
  /* Compact once per feed, not once per frame: many small frames in one
   * read must not cost a memmove each. */
  if (r->off > 0) {
    ly_wipe(r->buf, r->off); /* consumed frames may have held tokens */
    memmove(r->buf, r->buf + r->off, r->len - r->off);
    r->len -= r->off;
    r->off = 0;
  }
  /* The caller drains whole frames after every feed, and a too-large
   * announcement fails at once in ly_rpc_reader_next, so the buffer never
   * needs more than a few frames' worth. */
  if (r->len + len > r->cap) {
    size_t ncap = r->cap ? r->cap : 4096;
    while (ncap < r->len + len)
      ncap *= 2;
    LY_ENSURE(ncap <= 4 * (HEADER + LY_RPC_FRAME_MAX), LY_ETOO_BIG);
    uint8_t *nb = realloc(r->buf, ncap);
    LY_ENSURE(nb != NULL, UV_ENOMEM);
    r->buf = nb;
    r->cap = ncap;
  }
  memcpy(r->buf + r->len, data, len);
  r->len += len;
  return 0;
}

ProtobufCMessage *ly_rpc_reader_next(ly_rpc_reader_t *r, int *err) {
  *err = 0;
  if (r->len - r->off < HEADER)
    return NULL;
  size_t n = announced(r);
  if (n > LY_RPC_FRAME_MAX) {
    *err = LY_ETOO_BIG;
    return NULL;
  }
  if (r->len - r->off < HEADER + n)
    return NULL;
  ProtobufCMessage *m = protobuf_c_message_unpack(
      &lanyard__ca__v1__frame__descriptor, NULL, n, r->buf + r->off + HEADER);
  r->off += HEADER + n;
  if (!m)
    *err = LY_EPARSE;
  return m;
}

void ly_rpc_reader_free(ly_rpc_reader_t *r) {
  if (r->buf)
    ly_wipe(r->buf, r->cap);
  free(r->buf);
  r->buf = NULL;
  r->off = r->len = r->cap = 0;
}

void ly_rpc_wipe_message(ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
      continue; /* credentials are single fields */
    /* members of a oneof share storage: only the one that is set */
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
      continue;
    void *at = (char *)m + f->offset;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      char *str = *(char **)at;
      if (str && str != (char *)protobuf_c_empty_string)
        ly_wipe(str, strlen(str));
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
      ProtobufCBinaryData *b = at;
      if (b->data)
        ly_wipe(b->data, b->len);
    }
  }
}
