#include "lanyard/config.h"
#include "lanyard/dataplane.h"
#include "lanyard/err.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64];

static int setup(void **state) {
  strcpy(dir, "/tmp/ly-test-config-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

/* Writes text to dir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static char *in_dir(const char *name) {
  static char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return path;
}

static void test_ca_full(void **state) {
  const char *path = write_file(
      "ca.yaml", "trust_domain: example.org\n"
                 "listen: 0.0.0.0:9012\n"
                 "admin: '[::1]:9014'\n"
                 "signing:\n"
                 "  cert: signing.pem\n"
                 "  key: /etc/lanyard/signing.key\n"
                 "bundle: sub/bundle.pem\n"
                 "token_secret: token.secret\n"
                 "svid:\n"
                 "  default_ttl: 30m\n"
                 "  max_ttl: 2h\n"
                 "kubernetes:\n"
                 "  jwks_url: https://kubernetes.default.svc/openid/v1/jwks\n"
                 "  issuer: https://kubernetes.default.svc\n");
  ly_diag_t d;
  ly_ca_config_t *c = NULL;
  ly_diag_init(&d);
  assert_int_equal(ly_ca_config_load(path, &c, &d), 0);
  assert_int_equal(d.n, 0);
  assert_string_equal(c->file, path);
  assert_string_equal(c->trust_domain, "example.org");
  assert_string_equal(c->listen.host, "0.0.0.0");
  assert_int_equal(c->listen.port, 9012);
  assert_string_equal(c->admin.host, "::1");
  assert_int_equal(c->admin.port, 9014);
  assert_string_equal(c->signing_cert, in_dir("signing.pem"));
  assert_string_equal(c->signing_key, "/etc/lanyard/signing.key");
  assert_string_equal(c->bundle, in_dir("sub/bundle.pem"));
  assert_string_equal(c->token_secret, in_dir("token.secret"));
  assert_int_equal(c->default_ttl_ms, 30 * 60 * 1000);
  assert_int_equal(c->max_ttl_ms, 2 * 3600 * 1000);
  assert_true(c->kubernetes.enabled);
  assert_null(c->kubernetes.jwks);
  assert_string_equal(c->kubernetes.jwks_url,
                      "https://kubernetes.default.svc/openid/v1/jwks");
  assert_string_equal(c->kubernetes.issuer, "https://kubernetes.default.svc");
  assert_string_equal(c->kubernetes.audience, "lanyard-ca");
  ly_ca_config_free(c);
  ly_diag_free(&d);
}

static void test_ca_defaults(void **state) {
  const char *path =
      write_file("ca-min.yaml", "trust_domain: example.org\n"
                                "signing: {cert: s.pem, key: s.key}\n"
                                "bundle: b.pem\n"
                                "token_secret: t\n");
  ly_diag_t d;
  ly_ca_config_t *c = NULL;
  ly_diag_init(&d);
  assert_int_equal(ly_ca_config_load(path, &c, &d), 0);
  assert_string_equal(c->listen.host, "127.0.0.1");
  assert_int_equal(c->listen.port, 15012);
  assert_string_equal(c->admin.host, "127.0.0.1");
  assert_int_equal(c->admin.port, 15014);
  assert_int_equal(c->default_ttl_ms, 3600 * 1000);
  assert_int_equal(c->max_ttl_ms, 24 * 3600 * 1000);
  assert_false(c->kubernetes.enabled);
  assert_null(c->kubernetes.audience);
  ly_ca_config_free(c);
  ly_diag_free(&d);
}

static const char agent_yaml[] =
    "trust_domain: example.org\n"
    "spiffe_id: spiffe://example.org/ns/default/sa/web\n"
    "ca:\n"
    "  address: ca.lanyard.svc:15012\n"
    "  bundle: bundle.pem\n"
    "  token_file: join.token\n"
    "svid:\n"
    "  ttl: 10m\n"
    "  renew_fraction: 0.25\n"
    "  dir: /var/run/lanyard/svid\n"
    "admin: 127.0.0.1:15030\n"
    "workers: 4\n"
    "mode: permissive\n"
    "listeners:\n"
    "  - name: api\n"
    "    mode: server\n"
    "    listen: 0.0.0.0:8443\n"
    "    forward: localhost:8080\n"
    "    allow: [spiffe://example.org/ns/default/sa/frontend, "
    "spiffe://example.org/ns/ops/*]\n"
    "  - name: db\n"
    "    mode: client\n"
    "    listen: '[::1]:5433'\n"
    "    connect: 10.0.0.7:8443\n"
    "    expect: spiffe://example.org/ns/default/sa/db\n"
    "inbound:\n"
    "  port: 16006\n"
    "  allow:\n"
    "    - ports: [8080, 9090]\n"
    "      from: [spiffe://example.org/ns/default/*]\n"
    "    - from: [spiffe://example.org/*]\n"
    "outbound:\n"
    "  port: 16001\n"
    "  meshed:\n"
    "    - 10.0.0.0/8\n"
    "    - {cidr: 'fd00::/8', ports: [443]}\n"
    "  unmeshed: deny\n"
    "limits:\n"
    "  connect_timeout: 2s\n"
    "  handshake_timeout: 3s\n"
    "  idle_timeout: 10m\n"
    "  drain_timeout: 500ms\n"
    "  sniff_timeout: 250ms\n"
    "  max_connections: 1000\n"
    "  buffer_limit: 65536\n";

static void test_agent_full(void **state) {
  const char *path = write_file("agent.yaml", agent_yaml);
  ly_diag_t d;
  ly_agent_config_t *c = NULL;
  ly_diag_init(&d);
  assert_int_equal(ly_agent_config_load(path, &c, &d), 0);
  assert_int_equal(d.n, 0);
  assert_string_equal(c->trust_domain, "example.org");
  assert_string_equal(c->spiffe_id, "spiffe://example.org/ns/default/sa/web");
  assert_string_equal(c->ca.address.host, "ca.lanyard.svc");
  assert_int_equal(c->ca.address.port, 15012);
  assert_string_equal(c->ca.bundle, in_dir("bundle.pem"));
  assert_string_equal(c->ca.token_file, in_dir("join.token"));
  assert_null(c->ca.k8s_token_file);
  assert_int_equal(c->svid.ttl_ms, 600000);
  assert_true(c->svid.renew_fraction == 0.25);
  assert_string_equal(c->svid.dir, "/var/run/lanyard/svid");
  assert_int_equal(c->admin.port, 15030);
  assert_int_equal(c->workers, 4);
  assert_int_equal(c->mode, LY_MODE_PERMISSIVE);

  assert_int_equal(c->nlisteners, 2);
  const ly_listener_config_t *l = &c->listeners[0];
  assert_string_equal(l->name, "api");
  assert_int_equal(l->mode, LY_LISTENER_SERVER);
  assert_string_equal(l->listen.host, "0.0.0.0");
  assert_int_equal(l->listen.port, 8443);
  assert_string_equal(l->forward.host, "localhost");
  assert_int_equal(l->forward.port, 8080);
  assert_int_equal(l->nallow, 2);
  assert_string_equal(l->allow[1], "spiffe://example.org/ns/ops/*");
  assert_null(l->expect);
  l = &c->listeners[1];
  assert_int_equal(l->mode, LY_LISTENER_CLIENT);
  assert_string_equal(l->listen.host, "::1");
  assert_string_equal(l->connect.host, "10.0.0.7");
  assert_string_equal(l->expect, "spiffe://example.org/ns/default/sa/db");
  assert_int_equal(l->nallow, 0);

  assert_int_equal(c->inbound.port, 16006);
  assert_int_equal(c->inbound.nallow, 2);
  assert_int_equal(c->inbound.allow[0].nports, 2);
  assert_int_equal(c->inbound.allow[0].ports[1], 9090);
  assert_string_equal(c->inbound.allow[0].from[0],
                      "spiffe://example.org/ns/default/*");
  assert_int_equal(c->inbound.allow[1].nports, 0);
  assert_int_equal(c->outbound.port, 16001);
  assert_int_equal(c->outbound.nmeshed, 2);
  assert_int_equal(c->outbound.meshed[0].family, AF_INET);
  assert_int_equal(c->outbound.meshed[0].prefix_len, 8);
  assert_int_equal(c->outbound.meshed[0].nports, 0);
  assert_int_equal(c->outbound.meshed[1].family, AF_INET6);
  assert_int_equal(c->outbound.meshed[1].addr[0], 0xfd);
  assert_int_equal(c->outbound.meshed[1].nports, 1);
  assert_int_equal(c->outbound.meshed[1].ports[0], 443);
  assert_true(c->outbound.deny_unmeshed);
  assert_int_equal(c->limits.connect_timeout_ms, 2000);
  assert_int_equal(c->limits.handshake_timeout_ms, 3000);
  assert_int_equal(c->limits.idle_timeout_ms, 600000);
  assert_int_equal(c->limits.drain_timeout_ms, 500);
  assert_int_equal(c->limits.sniff_timeout_ms, 250);
  assert_int_equal(c->limits.max_connections, 1000);
  assert_int_equal(c->limits.buffer_limit, 65536);
  ly_agent_config_free(c);
  ly_diag_free(&d);
}

static void test_agent_defaults(void **state) {
  const char *path =
      write_file("agent-min.yaml", "trust_domain: example.org\n"
                                   "namespace: shop\n"
                                   "service_account: cart\n"
                                   "workers: auto\n"
                                   "ca:\n"
                                   "  address: 127.0.0.1:15012\n"
                                   "  bundle: ../bundle.pem\n"
                                   "  k8s_token_file: /var/run/token\n");
  ly_diag_t d;
  ly_agent_config_t *c = NULL;
  ly_diag_init(&d);
  assert_int_equal(ly_agent_config_load(path, &c, &d), 0);
  assert_string_equal(c->spiffe_id, "spiffe://example.org/ns/shop/sa/cart");
  assert_string_equal(c->ca.bundle, in_dir("../bundle.pem"));
  assert_null(c->ca.token_file);
  assert_string_equal(c->ca.k8s_token_file, "/var/run/token");
  assert_int_equal(c->svid.ttl_ms, 3600 * 1000);
  assert_true(c->svid.renew_fraction == 0.5);
  assert_null(c->svid.dir);
  assert_string_equal(c->admin.host, "127.0.0.1");
  assert_int_equal(c->admin.port, 15020);
  assert_int_equal(c->workers, 0);
  assert_int_equal(c->mode, LY_MODE_STRICT);
  assert_int_equal(c->nlisteners, 0);
  assert_int_equal(c->inbound.port, 15006);
  assert_int_equal(c->inbound.nallow, 0);
  assert_int_equal(c->outbound.port, 15001);
  assert_int_equal(c->outbound.nmeshed, 0);
  assert_false(c->outbound.deny_unmeshed);
  /* limits: the data plane's own defaults */
  ly_dataplane_limits_t dl;
  ly_dataplane_defaults(&dl);
  assert_int_equal(c->limits.connect_timeout_ms, dl.connect_timeout_ms);
  assert_int_equal(c->limits.handshake_timeout_ms, dl.handshake_timeout_ms);
  assert_int_equal(c->limits.idle_timeout_ms, dl.idle_timeout_ms);
  assert_int_equal(c->limits.drain_timeout_ms, dl.drain_timeout_ms);
  assert_int_equal(c->limits.sniff_timeout_ms, 1000);
  assert_int_equal(c->limits.max_connections, dl.max_connections);
  assert_int_equal(c->limits.buffer_limit, dl.buffer_limit);
  ly_agent_config_free(c);
  ly_diag_free(&d);
}

/* A path without a directory resolves against the working directory. */
static void test_relative_to_cwd(void **state) {
  char cwd[256];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  write_file("plain.yaml", "trust_domain: example.org\n"
                           "signing: {cert: s.pem, key: s.key}\n"
                           "bundle: b.pem\n"
                           "token_secret: t\n");
  assert_int_equal(chdir(dir), 0);
  ly_diag_t d;
  ly_ca_config_t *c = NULL;
  ly_diag_init(&d);
  assert_int_equal(ly_ca_config_load("plain.yaml", &c, &d), 0);
  assert_string_equal(c->file, "plain.yaml");
  assert_string_equal(c->bundle, "b.pem");
  ly_ca_config_free(c);
  ly_diag_free(&d);
  assert_int_equal(chdir(cwd), 0);
}

static void test_errors_collected(void **state) {
  const char *path = write_file("bad.yaml", "trust_domain: example.org\n"
                                            "listen: 1.2.3.4\n"
                                            "colour: blue\n"
                                            "signing: {cert: s.pem}\n");
  ly_diag_t d;
  ly_ca_config_t *c = (ly_ca_config_t *)&d; /* must stay untouched */
  char want[256];
  ly_diag_init(&d);
  assert_int_equal(ly_ca_config_load(path, &c, &d), LY_ECONFIG);
  assert_ptr_equal(c, &d);
  assert_int_equal(d.n, 5);
  snprintf(want, sizeof(want),
           "%s:2:9: invalid address: address must be host:port", path);
  assert_string_equal(d.lines[0], want);
  snprintf(want, sizeof(want), "%s:3:1: unknown key 'colour' at the top level",
           path);
  assert_string_equal(d.lines[1], want);
  snprintf(want, sizeof(want), "%s:4:10: missing required key 'key'", path);
  assert_string_equal(d.lines[2], want);
  ly_diag_free(&d);

  ly_diag_init(&d);
  assert_int_equal(ly_ca_config_load(in_dir("nope.yaml"), &c, &d), LY_ECONFIG);
  assert_int_equal(d.n, 1);
  snprintf(want, sizeof(want),
           "%s: cannot read file: no such file or directory",
           in_dir("nope.yaml"));
  assert_string_equal(d.lines[0], want);
  ly_diag_free(&d);
}

static void test_diag(void **state) {
  ly_diag_t d;
  ly_diag_init(&d);
  for (int i = 0; i < 20; i++)
    ly_diag_add(&d, "f.yaml", i + 1, 3, "problem %d", i);
  ly_diag_add(&d, "f.yaml", 0, 0, "no position");
  ly_diag_add(&d, "f.yaml", 1, 1, "key 'a\nb'");
  assert_int_equal(d.n, 22);
  assert_string_equal(d.lines[19], "f.yaml:20:3: problem 19");
  assert_string_equal(d.lines[20], "f.yaml: no position");
  assert_string_equal(d.lines[21], "f.yaml:1:1: key 'a?b'");
  assert_int_equal(ly_diag_errors(&d), 22);
  ly_diag_warn(&d, "f.yaml", 4, 2, "mode %o", 0644);
  assert_string_equal(d.lines[22], "f.yaml:4:2: warning: mode 644");
  assert_int_equal(d.n, 23);
  assert_int_equal(ly_diag_errors(&d), 22); /* a warning is no error */
  ly_diag_free(&d);
  ly_diag_free(&d); /* idempotent */
}

static void test_hostport(void **state) {
  static const struct {
    const char *in;
    int names;
    const char *host; /* NULL: rejected */
    uint16_t port;
  } cases[] = {
      {"127.0.0.1:15012", 0, "127.0.0.1", 15012},
      {"0.0.0.0:1", 0, "0.0.0.0", 1},
      {"[::1]:8443", 0, "::1", 8443},
      {"[fd00::7:1]:65535", 0, "fd00::7:1", 65535},
      {"[::ffff:10.0.0.1]:80", 0, "::ffff:10.0.0.1", 80},
      {"ca.lanyard.svc:15012", 1, "ca.lanyard.svc", 15012},
      {"localhost:80", 1, "localhost", 80},
      {"example.org.:443", 1, "example.org.", 443},
      {"localhost:80", 0, NULL, 0},
      {"::1:8443", 1, NULL, 0},
      {"[::1]", 0, NULL, 0},
      {"[::1]8443", 0, NULL, 0},
      {"[::g]:80", 1, NULL, 0},
      {"[10.0.0.1]:80", 1, NULL, 0},
      {"[::1:80", 1, NULL, 0},
      {"127.0.0.1", 0, NULL, 0},
      {"127.0.0.1:0", 0, NULL, 0},
      {"127.0.0.1:65536", 0, NULL, 0},
      {"127.0.0.1:8o", 0, NULL, 0},
      {"127.0.0.1:", 0, NULL, 0},
      {":80", 1, NULL, 0},
      {"10.0.0.256:80", 1, NULL, 0},
      {"1.2.3:80", 1, NULL, 0},
      {"-bad.example:80", 1, NULL, 0},
      {"a..b:80", 1, NULL, 0},
      {"under_score:80", 1, NULL, 0},
      {"", 1, NULL, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_hostport_t hp;
    const char *why = NULL;
    int rc = ly_hostport_parse(cases[i].in, cases[i].names, &hp, &why);
    if (!cases[i].host) {
      assert_int_equal(rc, LY_EPARSE);
      assert_non_null(why);
      continue;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(hp.host, cases[i].host);
    assert_int_equal(hp.port, cases[i].port);
  }
}

static void test_cidr(void **state) {
  static const struct {
    const char *in;
    int family; /* 0: rejected */
    unsigned prefix;
  } cases[] = {
      {"10.0.0.0/8", AF_INET, 8},
      {"0.0.0.0/0", AF_INET, 0},
      {"10.0.0.7", AF_INET, 32},
      {"192.168.1.0/24", AF_INET, 24},
      {"fd00::/8", AF_INET6, 8},
      {"::/0", AF_INET6, 0},
      {"2001:db8::1", AF_INET6, 128},
      {"2001:db8::/32", AF_INET6, 32},
      {"10.1.0.0/8", 0, 0},
      {"10.0.0.0/33", 0, 0},
      {"fd00::/129", 0, 0},
      {"fd00::1/8", 0, 0},
      {"10.0.0.0/", 0, 0},
      {"10.0.0.0/x", 0, 0},
      {"10.0.0.0/1234", 0, 0},
      {"10.0.0/8", 0, 0},
      {"fd00:::/8", 0, 0},
      {"/8", 0, 0},
      {"", 0, 0},
      {"10.0.0.0/8:80", 0, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    ly_cidr_t c;
    const char *why = NULL;
    int rc = ly_cidr_parse(cases[i].in, &c, &why);
    if (!cases[i].family) {
      assert_int_equal(rc, LY_EPARSE);
      assert_non_null(why);
      continue;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(c.family, cases[i].family);
    assert_int_equal(c.prefix_len, cases[i].prefix);
    assert_null(c.ports);
  }
  ly_cidr_t c;
  assert_int_equal(ly_cidr_parse("192.168.4.0/22", &c, NULL), 0);
  assert_memory_equal(c.addr, "\xc0\xa8\x04\x00", 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ca_full),
      cmocka_unit_test(test_ca_defaults),
      cmocka_unit_test(test_agent_full),
      cmocka_unit_test(test_agent_defaults),
      cmocka_unit_test(test_relative_to_cwd),
      cmocka_unit_test(test_errors_collected),
      cmocka_unit_test(test_diag),
      cmocka_unit_test(test_hostport),
      cmocka_unit_test(test_cidr),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
