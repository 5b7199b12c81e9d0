/* The cause table: the same failure reads the same, side by side where
 * the side changes what it means, and the verifier's verdicts split into
 * the reason the metrics use and the words svid verify prints. */
#include "lanyard/cause.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

static void test_codes(void **state) {
  ly_cause_t c = ly_cause_of_tls_error(SOCKET_ERROR_E, 0);
  assert_int_equal(c.reason, LY_REASON_PROTOCOL);
  assert_string_equal(c.cause,
                      "the peer closed the connection during the handshake "
                      "(it may have no identity yet, or refused ours)");
  /* a close reads differently on the server side */
  c = ly_cause_of_tls_error(SOCKET_ERROR_E, 1);
  assert_non_null(strstr(c.cause, "the client closed"));
  c = ly_cause_of_tls_error(ASN_NO_SIGNER_E, 1);
  assert_int_equal(c.reason, LY_REASON_UNKNOWN_CA);
  assert_string_equal(c.cause, "the peer's certificate chain does not lead "
                               "to a root in our trust bundle");
  assert_int_equal(ly_cause_of_tls_error(ASN_AFTER_DATE_E, 0).reason,
                   LY_REASON_EXPIRED);
  assert_int_equal(ly_cause_of_tls_error(ASN_BEFORE_DATE_E, 0).reason,
                   LY_REASON_EXPIRED);
  assert_int_equal(ly_cause_of_tls_error(NO_PEER_CERT, 1).reason,
                   LY_REASON_NO_PEER_CERT);
  c = ly_cause_of_tls_error(-99999, 0);
  assert_int_equal(c.reason, LY_REASON_PROTOCOL);
  assert_string_equal(c.cause, "a TLS error");
}

static void test_alerts(void **state) {
  const char *name = NULL;
  ly_cause_t c = ly_cause_of_alert(bad_certificate, &name);
  assert_int_equal(c.reason, LY_REASON_NOT_AUTHORIZED);
  assert_string_equal(name, "bad_certificate");
  assert_non_null(strstr(c.cause, "alert bad_certificate"));
  assert_int_equal(ly_cause_of_alert(unknown_ca, NULL).reason,
                   LY_REASON_UNKNOWN_CA);
  assert_int_equal(ly_cause_of_alert(certificate_expired, NULL).reason,
                   LY_REASON_EXPIRED);
  assert_int_equal(ly_cause_of_alert(certificate_required, NULL).reason,
                   LY_REASON_NO_PEER_CERT);
  c = ly_cause_of_alert(250, &name);
  assert_int_equal(c.reason, LY_REASON_PROTOCOL);
  assert_string_equal(name, "another alert");
}

static void test_verdicts(void **state) {
  ly_cause_t c = ly_cause_of_verdict("bad_identity: leaf is a CA");
  assert_int_equal(c.reason, LY_REASON_BAD_IDENTITY);
  assert_string_equal(c.cause, "leaf is a CA");
  c = ly_cause_of_verdict("unknown_ca: no path to a trusted root");
  assert_int_equal(c.reason, LY_REASON_UNKNOWN_CA);
  assert_string_equal(c.cause, "no path to a trusted root");
  c = ly_cause_of_verdict("expired: certificate has expired");
  assert_int_equal(c.reason, LY_REASON_EXPIRED);
  c = ly_cause_of_verdict("protocol: malformed certificate");
  assert_int_equal(c.reason, LY_REASON_PROTOCOL);
  /* no known reason word: bad_identity, the whole text */
  c = ly_cause_of_verdict("something odd");
  assert_int_equal(c.reason, LY_REASON_BAD_IDENTITY);
  assert_string_equal(c.cause, "something odd");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codes),
      cmocka_unit_test(test_alerts),
      cmocka_unit_test(test_verdicts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
