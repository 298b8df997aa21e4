/* test_ipc_pipe.c: mp_pipe: message boundaries, duplex, timeouts, a dead
 * peer reported (never waited on), no SIGPIPE. Children report through their
 * exit codes; they never call cmocka. */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The parent's end and the child's end, as Python's Pipe() returns them. */
static mp_pipe *g_parent, *g_child;

static void test_pipe_boundaries_and_duplex(void **state) {
  (void)state;
  mp_pipe *a = NULL, *b = NULL;
  assert_int_equal(mp_pipe_create(&a, &b, 0), 0);
  assert_int_equal(mp_pipe_max_msg(a), 64 * 1024);
  assert_int_equal(mp_pipe_max_msg(b), 64 * 1024);
  assert_int_equal(mp_pipe_poll(b, 0), 0);

  assert_int_equal(mp_pipe_send(a, "hello", 5, -1), 0);
  assert_int_equal(mp_pipe_send(a, NULL, 0, -1), 0); /* empty message */
  assert_int_equal(mp_pipe_send(a, "xy", 2, 0), 0);
  assert_int_equal(mp_pipe_send(b, "back", 4, 0), 0); /* the other way */
  assert_int_equal(mp_pipe_poll(b, 0), 1);

  char buf[16];
  assert_int_equal(mp_pipe_recv(b, buf, sizeof buf, -1), 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(mp_pipe_recv(b, buf, sizeof buf, 0), 0);
  assert_int_equal(mp_pipe_recv(b, buf, 1, 0), -EMSGSIZE); /* stays queued */
  assert_int_equal(mp_pipe_recv(b, buf, 2, 0), 2);
  assert_memory_equal(buf, "xy", 2);
  assert_int_equal(mp_pipe_recv(b, buf, sizeof buf, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_pipe_recv(a, buf, sizeof buf, 0), 4);
  assert_memory_equal(buf, "back", 4);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

static void test_pipe_errors(void **state) {
  (void)state;
  mp_pipe *a = NULL, *b = NULL;
  assert_int_equal(mp_pipe_create(NULL, &b, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_create(&a, NULL, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_create(&a, &a, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_create(&a, &b, (size_t)1 << 40), MP_EINVAL);
  assert_null(a);
  assert_null(b);
  assert_int_equal(mp_pipe_create(&a, &b, 8), 0);
  char buf[16] = {0};
  assert_int_equal(mp_pipe_send(NULL, buf, 1, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_send(a, NULL, 1, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_send(a, buf, 9, 0), -EMSGSIZE); /* oversize */
  assert_int_equal(mp_pipe_recv(NULL, buf, 1, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_recv(b, NULL, 1, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_poll(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_pipe_max_msg(NULL), 0);
  mp_pipe_free(a);
  mp_pipe_free(b);
  mp_pipe_free(NULL);
}

static void test_pipe_timeouts(void **state) {
  (void)state;
  mp_pipe *a, *b;
  assert_int_equal(mp_pipe_create(&a, &b, 0), 0);
  char buf[64];
  double t0 = mpt_now();
  assert_int_equal(mp_pipe_recv(a, buf, sizeof buf, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  t0 = mpt_now();
  assert_int_equal(mp_pipe_poll(a, 0.05), 0);
  assert_true(mpt_now() - t0 >= 0.049);

  /* Fill b's direction until a send can no longer go, then time out. */
  size_t max = mp_pipe_max_msg(a);
  char *big = calloc(1, max);
  assert_non_null(big);
  int sent = 0, rc;
  while ((rc = mp_pipe_send(a, big, max, 0)) == 0)
    sent++;
  assert_int_equal(rc, MP_ETIMEDOUT);
  assert_true(sent >= 1);
  t0 = mpt_now();
  assert_int_equal(mp_pipe_send(a, big, max, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  /* Nothing half-sent: exactly the messages that were accepted arrive. */
  for (int i = 0; i < sent; i++)
    assert_int_equal(mp_pipe_recv(b, big, max, 0), (int)max);
  assert_int_equal(mp_pipe_recv(b, big, max, 0), MP_ETIMEDOUT);
  free(big);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

/* Child: close the parent's end, say goodbye, exit. */
static int say_bye(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  return mp_pipe_send(g_child, "bye", 3, -1) == 0 ? 0 : 1;
}

static void test_pipe_peer_exited(void **state) {
  (void)state;
  assert_int_equal(mp_pipe_create(&g_parent, &g_child, 0), 0);
  mp_process *p = mpt_start(say_bye, NULL);
  mp_pipe_free(g_child); /* ours: only the child holds that end now */
  char buf[8];
  /* Sent before it died: still delivered, then the death is reported. */
  assert_int_equal(mp_pipe_recv(g_parent, buf, sizeof buf, -1), 3);
  assert_memory_equal(buf, "bye", 3);
  assert_int_equal(mp_pipe_recv(g_parent, buf, sizeof buf, -1), MP_EPEERDEAD);
  assert_int_equal(mp_pipe_poll(g_parent, -1), 1);
  assert_int_equal(mpt_finish(p), 0);
  assert_int_equal(mp_pipe_recv(g_parent, buf, sizeof buf, 0), MP_EPEERDEAD);

  /* Sending to it is an error, and SIGPIPE is neither delivered (we are
   * still here, with SIGPIPE at its default action) nor left pending. */
  sigset_t pending;
  assert_int_equal(mp_pipe_send(g_parent, "x", 1, -1), MP_EPEERDEAD);
  assert_int_equal(mp_pipe_send(g_parent, "x", 1, 0), MP_EPEERDEAD);
  assert_int_equal(sigpending(&pending), 0);
  assert_false(sigismember(&pending, SIGPIPE));
  mp_pipe_free(g_parent);
}

/* Child: report in, then die by SIGKILL without closing anything. */
static int crash_after_hello(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  mp_pipe_send(g_child, "hi", 2, -1);
  raise(SIGKILL);
  return 1;
}

static void test_pipe_peer_killed(void **state) {
  (void)state;
  assert_int_equal(mp_pipe_create(&g_parent, &g_child, 0), 0);
  mp_process *p = mpt_start(crash_after_hello, NULL);
  mp_pipe_free(g_child);
  char buf[8];
  assert_int_equal(mp_pipe_recv(g_parent, buf, sizeof buf, -1), 2);
  /* Blocks only until the kernel closes the dead child's end. */
  assert_int_equal(mp_pipe_recv(g_parent, buf, sizeof buf, -1), MP_EPEERDEAD);
  assert_int_equal(mpt_finish(p), -SIGKILL);
  mp_pipe_free(g_parent);
}

/* Child: echo each int back plus one until the parent closes its end. */
static int echo_plus_one(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  int v, n = 0;
  for (;;) {
    int rc = mp_pipe_recv(g_child, &v, sizeof v, -1);
    if (rc == MP_EPEERDEAD)
      return n == 1000 ? 0 : 2;
    if (rc != sizeof v)
      return 1;
    v++;
    n++;
    if (mp_pipe_send(g_child, &v, sizeof v, -1) != 0)
      return 3;
  }
}

static void test_pipe_ping_pong(void **state) {
  (void)state;
  assert_int_equal(mp_pipe_create(&g_parent, &g_child, 0), 0);
  mp_process *p = mpt_start(echo_plus_one, NULL);
  mp_pipe_free(g_child);
  for (int i = 0; i < 1000; i++) {
    int v = i;
    assert_int_equal(mp_pipe_send(g_parent, &v, sizeof v, 10), 0);
    assert_int_equal(mp_pipe_recv(g_parent, &v, sizeof v, 10), sizeof v);
    assert_int_equal(v, i + 1);
  }
  mp_pipe_free(g_parent); /* the child sees EOF and exits */
  assert_int_equal(mpt_finish(p), 0);
}

enum { BIG = 256 * 1024 };

/* Child: send one BIG-byte patterned message. */
static int send_big(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  unsigned char *m = malloc(BIG);
  if (!m)
    return 1;
  for (size_t i = 0; i < BIG; i++)
    m[i] = (unsigned char)(i * 7 + 3);
  int rc = mp_pipe_send(g_child, m, BIG, -1);
  free(m);
  return rc == 0 ? 0 : 2;
}

static void test_pipe_large_message(void **state) {
  (void)state;
  int rc = mp_pipe_create(&g_parent, &g_child, BIG);
  if (rc == -EMSGSIZE)
    skip(); /* net.core.wmem_max below 128 KiB */
  assert_int_equal(rc, 0);
  assert_int_equal(mp_pipe_max_msg(g_parent), BIG);
  mp_process *p = mpt_start(send_big, NULL);
  mp_pipe_free(g_child);
  unsigned char *m = malloc(BIG);
  assert_non_null(m);
  assert_int_equal(mp_pipe_recv(g_parent, m, BIG, -1), BIG);
  for (size_t i = 0; i < BIG; i++)
    if (m[i] != (unsigned char)(i * 7 + 3))
      fail_msg("byte %zu differs", i);
  free(m);
  assert_int_equal(mpt_finish(p), 0);
  mp_pipe_free(g_parent);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_pipe_boundaries_and_duplex),
      MPT_TEST(test_pipe_errors),
      MPT_TEST(test_pipe_timeouts),
      MPT_TEST(test_pipe_peer_exited),
      MPT_TEST(test_pipe_peer_killed),
      MPT_TEST(test_pipe_ping_pong),
      MPT_TEST(test_pipe_large_message),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
