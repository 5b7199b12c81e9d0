/* RPC framing: bytes from the network, fed in a few chunks to the frame
 * reader; each whole frame's body unpacked as the requests the CA takes,
 * wiped and freed as the server does. */
#include "lanyard/rpc.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <stddef.h>
#include <stdint.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  wolfSSL_Init();
  return 0;
}

static void unpack_body(const Lanyard__Ca__V1__Frame *f) {
  ProtobufCMessage *m =
      protobuf_c_message_unpack(&lanyard__ca__v1__sign_request__descriptor,
                                NULL, f->body.len, f->body.data);
  if (m) {
    ly_rpc_wipe_message(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  m = protobuf_c_message_unpack(
      &lanyard__ca__v1__trust_bundle_request__descriptor, NULL, f->body.len,
      f->body.data);
  if (m) {
    ly_rpc_wipe_message(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

/* Drains whole frames; 0 to go on, -1 once the reader has failed. */
static int drain(ly_rpc_reader_t *r) {
  for (;;) {
    int err = 0;
    ProtobufCMessage *m = ly_rpc_reader_next(r, &err);
    if (!m)
      return err ? -1 : 0;
    unpack_body((const Lanyard__Ca__V1__Frame *)m);
    ly_rpc_wipe_message(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ly_rpc_reader_t r = {0};
  /* The first byte picks the chunk size, so frames split at every offset
   * get tried: 1..256 bytes per feed. */
  size_t chunk = size ? (size_t)data[0] + 1 : 1;
  size_t off = size ? 1 : 0;
  while (off < size) {
    size_t n = size - off < chunk ? size - off : chunk;
    if (ly_rpc_reader_feed(&r, data + off, n) != 0 || drain(&r) != 0)
      break;
    off += n;
  }
  ly_rpc_reader_free(&r);
  return 0;
}
