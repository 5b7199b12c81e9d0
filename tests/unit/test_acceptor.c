/* The acceptor on real loopback sockets: what the kernel queued before a
 * listener closes is handed over by ly_acceptor_sweep, not reset. */
#include "lanyard/acceptor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define CLIENTS 8

static int accepted[CLIENTS + 1];
static int n_accepted;

static void on_accept(ly_acceptor_t *a, int fd) {
  (void)a;
  if (fd >= 0 && n_accepted <= CLIENTS)
    accepted[n_accepted++] = fd;
}

static int connect_to(unsigned port) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  return fd;
}

static void test_sweep_takes_the_queue(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int lfd = -1;
  assert_int_equal(ly_listen_socket((struct sockaddr *)&sin, 0, 64, &lfd), 0);
  ly_acceptor_t a;
  memset(&a, 0, sizeof(a));
  assert_int_equal(ly_acceptor_start(&a, &loop, lfd, on_accept), 0);
  unsigned port = ly_acceptor_port(&a);
  assert_true(port > 0);

  /* The loop never runs: the connections wait in the kernel's queue, as
   * they do when a drain begins before the workers got to them. */
  int clients[CLIENTS];
  for (int i = 0; i < CLIENTS; i++)
    clients[i] = connect_to(port);
  n_accepted = 0;
  ly_acceptor_sweep(&a);
  assert_int_equal(n_accepted, CLIENTS);

  /* Each accepted socket is a live connection to one of the clients. */
  for (int i = 0; i < n_accepted; i++) {
    assert_int_equal(write(clients[i], "x", 1), 1);
  }
  int got = 0;
  for (int i = 0; i < n_accepted; i++) {
    char c;
    for (int tries = 0; tries < 1000; tries++) {
      if (read(accepted[i], &c, 1) == 1) {
        got++;
        break;
      }
      usleep(1000);
    }
  }
  assert_int_equal(got, CLIENTS);

  /* An empty queue: nothing more, and the listener still closes. */
  ly_acceptor_sweep(&a);
  assert_int_equal(n_accepted, CLIENTS);
  ly_acceptor_close(&a, NULL);
  ly_acceptor_sweep(&a); /* closing: a no-op */
  assert_int_equal(n_accepted, CLIENTS);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (int i = 0; i < CLIENTS; i++) {
    close(clients[i]);
    close(accepted[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep_takes_the_queue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
