/* RPC framing: whole frames out of arbitrary byte chunks, size caps, and
 * malformed input refused without crashing. */
#include "lanyard/err.h"
#include "lanyard/rpc.h"

#include "lanyard/ca/v1/ca.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t *sign_frame(uint32_t id, const char *token, size_t *len) {
  Lanyard__Ca__V1__SignRequest req = LANYARD__CA__V1__SIGN_REQUEST__INIT;
  static uint8_t csr[100];
  memset(csr, 0x5a, sizeof(csr));
  req.csr.data = csr;
  req.csr.len = sizeof(csr);
  req.credential_case = LANYARD__CA__V1__SIGN_REQUEST__CREDENTIAL_JOIN_TOKEN;
  req.join_token = (char *)token;
  uint8_t *out = NULL;
  assert_int_equal(ly_rpc_frame_pack(id, "Sign", 0, NULL, &req.base, &out, len),
                   0);
  return out;
}

static void test_round_trip_byte_by_byte(void **state) {
  size_t len1, len2;
  uint8_t *f1 = sign_frame(1, "tok-one", &len1);
  uint8_t *f2 = sign_frame(2, "tok-two", &len2);
  ly_rpc_reader_t r = {0};
  int err = 0, got = 0;
  /* feed one byte at a time: frames come out whole, in order */
  for (size_t i = 0; i < len1 + len2; i++) {
    uint8_t b = i < len1 ? f1[i] : f2[i - len1];
    assert_int_equal(ly_rpc_reader_feed(&r, &b, 1), 0);
    ProtobufCMessage *m;
    while ((m = ly_rpc_reader_next(&r, &err)) != NULL) {
      const Lanyard__Ca__V1__Frame *f = (const Lanyard__Ca__V1__Frame *)m;
      assert_int_equal(f->call_id, (uint32_t)++got);
      assert_string_equal(f->method, "Sign");
      Lanyard__Ca__V1__SignRequest *req = lanyard__ca__v1__sign_request__unpack(
          NULL, f->body.len, f->body.data);
      assert_non_null(req);
      assert_string_equal(req->join_token, got == 1 ? "tok-one" : "tok-two");
      ly_rpc_wipe_message(&req->base);
      assert_int_equal(req->join_token[0], 0); /* wiped */
      assert_int_equal(req->csr.data[0], 0);
      lanyard__ca__v1__sign_request__free_unpacked(req, NULL);
      protobuf_c_message_free_unpacked(m, NULL);
    }
    assert_int_equal(err, 0);
  }
  assert_int_equal(got, 2);
  ly_rpc_reader_free(&r);
  free(f1);
  free(f2);
}

static void test_many_small_frames_in_one_feed(void **state) {
  size_t len;
  uint8_t *f = sign_frame(7, "t", &len);
  size_t n = 200;
  uint8_t *all = malloc(len * n);
  for (size_t i = 0; i < n; i++)
    memcpy(all + i * len, f, len);
  ly_rpc_reader_t r = {0};
  assert_int_equal(ly_rpc_reader_feed(&r, all, len * n), 0);
  int err = 0;
  size_t got = 0;
  ProtobufCMessage *m;
  while ((m = ly_rpc_reader_next(&r, &err)) != NULL) {
    got++;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  assert_int_equal(got, n);
  assert_int_equal(err, 0);
  ly_rpc_reader_free(&r);
  free(all);
  free(f);
}

static void test_oversized_and_malformed(void **state) {
  ly_rpc_reader_t r = {0};
  int err = 0;
  uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
  assert_int_equal(ly_rpc_reader_feed(&r, huge, sizeof(huge)), 0);
  assert_null(ly_rpc_reader_next(&r, &err));
  assert_int_equal(err, LY_ETOO_BIG);
  ly_rpc_reader_free(&r);

  uint8_t junk[] = {0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(ly_rpc_reader_feed(&r, junk, sizeof(junk)), 0);
  assert_null(ly_rpc_reader_next(&r, &err));
  assert_int_equal(err, LY_EPARSE);
  ly_rpc_reader_free(&r);

  /* a peer cannot make the reader buffer without bound */
  uint8_t *lots = calloc(1, 5 * (LY_RPC_FRAME_MAX + 4));
  assert_int_equal(ly_rpc_reader_feed(&r, lots, 5 * (LY_RPC_FRAME_MAX + 4)),
                   LY_ETOO_BIG);
  ly_rpc_reader_free(&r);
  free(lots);
}

static void test_pack_refuses_oversized(void **state) {
  Lanyard__Ca__V1__SignRequest req = LANYARD__CA__V1__SIGN_REQUEST__INIT;
  uint8_t *big = calloc(1, LY_RPC_FRAME_MAX + 1);
  req.csr.data = big;
  req.csr.len = LY_RPC_FRAME_MAX + 1;
  uint8_t *out = NULL;
  size_t len = 0;
  assert_int_equal(ly_rpc_frame_pack(1, "Sign", 0, NULL, &req.base, &out, &len),
                   LY_ETOO_BIG);
  assert_null(out);
  free(big);
  assert_string_equal(ly_rpc_code_name(LY_RPC_PERMISSION_DENIED),
                      "PERMISSION_DENIED");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_byte_by_byte),
      cmocka_unit_test(test_many_small_frames_in_one_feed),
      cmocka_unit_test(test_oversized_and_malformed),
      cmocka_unit_test(test_pack_refuses_oversized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
