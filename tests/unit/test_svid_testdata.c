/* The structural X.509-SVID cases in $LY_TESTDATA/x509-svid/EXPECTED.txt.
 *
 * Each line is "<files> | <verdict>": files are "a.pem", "a.pem + key.pem",
 * "x.pem as the certificate file" or "x.pem as the key file"; the verdict
 * is "accept[, ID <id>][ (key: k.pem)]" or "reject: <reason>". The
 * material is expired and rootless, so the checks are the structural ones:
 * PEM loading, key match, the leaf rules, and the signing certificate. */
#include "lanyard/err.h"
#include "lanyard/fsutil.h"
#include "lanyard/x509.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

static char dir[4096];

static char *slurp(const char *name, size_t *len) {
  char path[8192];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  char *data = NULL;
  if (ly_file_read(path, 1 << 20, &data, len) != 0)
    fail_msg("cannot read %s", path);
  return data;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  char *e = s + strlen(s);
  while (e > s &&
         (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
    *--e = '\0';
  return s;
}

/* Drops "<kind>: " from a reason, and spells the signing certificate the
 * way EXPECTED.txt does. */
static const char *plain(const char *why, char *buf, size_t cap) {
  const char *colon = strstr(why, ": ");
  const char *s = colon ? colon + 2 : why;
  const char *long_form = "signing certificate";
  const char *hit = strstr(s, long_form);
  if (hit)
    snprintf(buf, cap, "%.*ssigning cert%s", (int)(hit - s), s,
             hit + strlen(long_form));
  else
    snprintf(buf, cap, "%s", s);
  return buf;
}

typedef struct {
  const char *cert_file, *key_file; /* key_file NULL: from cert_file if any */
  char verdict[512];
  char spiffe_id[LY_SPIFFE_ID_MAX + 1];
  size_t n_certs;
} run_t;

static void reject(run_t *r, const char *why) {
  char buf[256];
  snprintf(r->verdict, sizeof(r->verdict), "reject: %s",
           plain(why ? why : "?", buf, sizeof(buf)));
}

/* What Lanyard makes of the files: "accept" or "reject: <reason>". */
static void evaluate(run_t *r) {
  size_t cert_len = 0, key_len = 0;
  char *cert_pem = slurp(r->cert_file, &cert_len);
  char *key_pem = r->key_file ? slurp(r->key_file, &key_len) : NULL;
  ly_chain_t chain = {0};
  ly_key_t *key = NULL;
  const char *why = NULL;
  int rc;

  /* the key first: a bare key file fails on its key, not on a missing
   * certificate */
  if (key_pem) {
    if ((rc = ly_key_from_pem(key_pem, key_len, &key, &why)) != 0) {
      reject(r, why);
      goto out;
    }
  } else {
    rc = ly_key_from_pem(cert_pem, cert_len, &key, &why);
    if (rc != 0 && rc != LY_ENOT_FOUND) {
      reject(r, why);
      goto out;
    }
  }
  if (ly_chain_from_pem(cert_pem, cert_len, &chain, &why) != 0) {
    reject(r, why);
    goto out;
  }
  r->n_certs = chain.n;
  const ly_der_t *leaf = &chain.certs[0];
  if (key && !ly_key_matches_cert(key, leaf->der, leaf->len)) {
    reject(r, "key does not match the leaf");
    goto out;
  }
  ly_cert_info_t info;
  if (ly_cert_info(leaf->der, leaf->len, &info) != 0) {
    reject(r, "malformed certificate");
    goto out;
  }
  if (ly_svid_check_leaf(&info, NULL, &why) != 0) {
    reject(r, why);
    goto out;
  }
  for (size_t i = 1; i < chain.n; i++) {
    ly_cert_info_t ca;
    if (ly_cert_info(chain.certs[i].der, chain.certs[i].len, &ca) != 0) {
      reject(r, "malformed certificate");
      goto out;
    }
    if (ly_cert_check_issuer(&ca, &why) != 0) {
      reject(r, why);
      goto out;
    }
    /* taken as the anchor, the signing certificate must have signed the
     * leaf, within both validity windows */
    ly_chain_t leaf_only = {.certs = &chain.certs[0], .n = 1};
    ly_chain_t anchor = {.certs = &chain.certs[i], .n = 1};
    int64_t at =
        info.not_before > ca.not_before ? info.not_before : ca.not_before;
    if (ly_chain_verify(&leaf_only, &anchor, at, NULL, &why) != 0) {
      reject(r, why);
      goto out;
    }
  }
  snprintf(r->spiffe_id, sizeof(r->spiffe_id), "%s", info.spiffe_id);
  snprintf(r->verdict, sizeof(r->verdict), "accept");
out:
  ly_chain_free(&chain);
  ly_key_free(key);
  free(cert_pem);
  free(key_pem);
}

static int run_case(char *files, char *expected) {
  run_t r = {0};
  char *plus = strstr(files, " + ");
  char *as = strstr(files, " as the ");
  int only_certs = 0, only_key = 0;
  char key_hint[512] = "";
  if (plus) {
    *plus = '\0';
    r.cert_file = trim(files);
    r.key_file = trim(plus + 3);
  } else if (as) {
    only_key = strstr(as, "key file") != NULL;
    only_certs = !only_key;
    *as = '\0';
    r.cert_file = r.key_file = trim(files);
  } else {
    r.cert_file = trim(files);
  }
  /* "accept ... (key: k.pem)" names the key to pair with the certificate */
  char *k = strstr(expected, "(key: ");
  if (k) {
    snprintf(key_hint, sizeof(key_hint), "%s", k + 6);
    key_hint[strcspn(key_hint, ")")] = '\0';
    r.key_file = key_hint;
    *k = '\0';
  }
  expected = trim(expected);

  if (only_certs || only_key) {
    size_t len;
    char *pem = slurp(r.cert_file, &len);
    ly_chain_t c = {0};
    ly_key_t *key = NULL;
    const char *why = NULL;
    int rc = only_certs ? ly_chain_from_pem(pem, len, &c, &why)
                        : ly_key_from_pem(pem, len, &key, &why);
    if (rc != 0)
      reject(&r, why);
    else
      snprintf(r.verdict, sizeof(r.verdict), "accept");
    ly_chain_free(&c);
    ly_key_free(key);
    free(pem);
  } else {
    evaluate(&r);
  }

  int ok;
  if (strncmp(expected, "accept", 6) == 0) {
    ok = strcmp(r.verdict, "accept") == 0;
    const char *id = strstr(expected, "ID ");
    if (ok && id) {
      char want[LY_SPIFFE_ID_MAX + 1];
      snprintf(want, sizeof(want), "%s", id + 3);
      want[strcspn(want, " ,(")] = '\0';
      ok = strcmp(r.spiffe_id, want) == 0;
    }
    if (ok && strstr(expected, "leaf + intermediate"))
      ok = r.n_certs == 2;
  } else {
    ok = strcmp(r.verdict, expected) == 0;
  }
  print_message("%s %-60s -> %s\n", ok ? "ok  " : "FAIL", r.cert_file,
                r.verdict);
  if (!ok)
    print_error("expected: %s\n", expected);
  return ok;
}

static void test_expected(void **state) {
  size_t len;
  char *text = slurp("EXPECTED.txt", &len);
  int cases = 0, failed = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    line = trim(line);
    if (!*line || *line == '#')
      continue;
    char *bar = strstr(line, " | ");
    assert_non_null(bar);
    *bar = '\0';
    cases++;
    if (!run_case(line, bar + 3))
      failed++;
  }
  free(text);
  assert_true(cases >= 17);
  assert_int_equal(failed, 0);
}

static int setup(void **state) {
  return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int teardown(void **state) {
  wolfSSL_Cleanup();
  return 0;
}

int main(void) {
  const char *td = getenv("LY_TESTDATA");
  struct stat st;
  /* The data is in the tree (tests/data), so its absence is a failure,
   * not a reason to skip. */
  if (!td ||
      snprintf(dir, sizeof(dir), "%s/x509-svid", td) >= (int)sizeof(dir) ||
      stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "no x509-svid test data: set LY_TESTDATA to tests/data\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expected),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
