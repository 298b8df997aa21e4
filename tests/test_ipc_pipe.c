/* test_ipc_pipe.c: mp_pipe: message boundaries, duplex, timeouts, a dead
 * peer reported (never waited on), no SIGPIPE. Children report through their
 * exit codes; they never call cmocka. */
#include "fixture.h"

#include "ipc/ipc_internal.h" /* mp__pipe_fd: the hostile-peer test */

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* ---- messages larger than a socket buffer ---- */

enum { HUGE = 16 * 1024 * 1024 };

/* Fill m with a pattern that names the message (seed) and each byte. */
static void pattern(unsigned char *m, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m[i] = (unsigned char)x;
  }
}

static int pattern_ok(const unsigned char *m, size_t n, unsigned seed) {
  unsigned char *want = malloc(n ? n : 1);
  if (!want)
    return 0;
  pattern(want, n, seed);
  int ok = memcmp(m, want, n) == 0;
  free(want);
  return ok;
}

/* Child: send small, huge, empty, huge, small; each patterned by index. */
static const size_t mixed_len[] = {5, HUGE, 0, HUGE - 3, 70000, 1};
enum { NMIXED = sizeof mixed_len / sizeof mixed_len[0] };

static int send_mixed(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  unsigned char *m = malloc(HUGE);
  if (!m)
    return 1;
  for (unsigned i = 0; i < NMIXED; i++) {
    pattern(m, mixed_len[i], i);
    if (mp_pipe_send(g_child, m, mixed_len[i], -1) != 0)
      return 2;
  }
  free(m);
  return 0;
}

static void test_pipe_huge_messages(void **state) {
  (void)state;
  assert_int_equal(mp_pipe_create(&g_parent, &g_child, HUGE), 0);
  assert_int_equal(mp_pipe_max_msg(g_parent), HUGE);
  mp_process *p = mpt_start(send_mixed, NULL);
  mp_pipe_free(g_child);
  unsigned char *m = malloc(HUGE);
  assert_non_null(m);
  for (unsigned i = 0; i < NMIXED; i++) {
    /* Too small a buffer: the message stays queued, whole. */
    if (mixed_len[i] > 0)
      assert_int_equal(mp_pipe_recv(g_parent, m, mixed_len[i] - 1, -1),
                       -EMSGSIZE);
    assert_int_equal(mp_pipe_recv(g_parent, m, HUGE, -1), (int)mixed_len[i]);
    assert_true(pattern_ok(m, mixed_len[i], i));
  }
  assert_int_equal(mp_pipe_recv(g_parent, m, HUGE, -1), MP_EPEERDEAD);
  free(m);
  assert_int_equal(mpt_finish(p), 0);
  mp_pipe_free(g_parent);
}

/* Large messages are flow-controlled: with no reader, a sender can queue
 * only a few; then its timeout expires and nothing half-sent is left. */
static void test_pipe_huge_backpressure(void **state) {
  (void)state;
  mp_pipe *a, *b;
  assert_int_equal(mp_pipe_create(&a, &b, 4 * 1024 * 1024), 0);
  size_t len = 4 * 1024 * 1024;
  unsigned char *m = calloc(1, len);
  assert_non_null(m);
  int sent = 0, rc;
  while ((rc = mp_pipe_send(a, m, len, 0)) == 0 && sent < 64)
    sent++;
  assert_int_equal(rc, MP_ETIMEDOUT);
  assert_true(sent >= 1 && sent <= 4);
  for (int i = 0; i < sent; i++)
    assert_int_equal(mp_pipe_recv(b, m, len, 0), (int)len);
  assert_int_equal(mp_pipe_recv(b, m, len, 0), MP_ETIMEDOUT);
  free(m);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

/* A peer that attaches an fd that is not a sealed memfd of the stated
 * size (an unrelated process, over a Listener connection, could): the
 * message is refused with MP_EPROTO, the fd is not kept, the next
 * message arrives. */
static void test_pipe_hostile_fd(void **state) {
  (void)state;
  mp_pipe *a, *b;
  assert_int_equal(mp_pipe_create(&a, &b, HUGE), 0);
  int before = mpt_count_fds();
  int pfd[2];
  assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
  int mfd = memfd_create("unsealed", MFD_CLOEXEC);
  assert_true(mfd >= 0);
  assert_int_equal(ftruncate(mfd, 1 << 20), 0);
  int bad[3] = {pfd[0], mfd, -1};
  for (int i = 0; i < 2; i++) {
    uint32_t hdr[2] = {0x4d505046u, 1u << 20};
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {hdr, sizeof hdr};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &bad[i], sizeof(int));
    assert_true(sendmsg(mp__pipe_fd(a), &mh, 0) > 0);
  }
  assert_int_equal(mp_pipe_send(a, "ok", 2, 0), 0);
  close(pfd[0]);
  close(pfd[1]);
  close(mfd);
  char *m = malloc(HUGE);
  assert_non_null(m);
  assert_int_equal(mp_pipe_recv(b, m, HUGE, 0), MP_EPROTO);
  assert_int_equal(mp_pipe_recv(b, m, HUGE, 0), MP_EPROTO);
  assert_int_equal(mp_pipe_recv(b, m, HUGE, 0), 2);
  assert_int_equal(mpt_count_fds(), before);
  free(m);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

/* Several readers share one end while large and small messages flow, and
 * readers are SIGKILLed at random instants, in the middle of receiving
 * too: no survivor ever gets a message that is not whole and exact, and
 * the pipe goes on working for the others. Each message is its index;
 * readers report what they got on a second pipe. */
enum { NREADERS = 3, NSTRESS = 60 };
static mp_pipe *g_report_w, *g_report_r;

static size_t stress_len(unsigned i) {
  return i % 3 == 0 ? (size_t)(2 * 1024 * 1024 + i) : (size_t)(i * 13);
}

static int stress_reader(void *arg) {
  (void)arg;
  mp_pipe_free(g_parent);
  mp_pipe_free(g_report_r);
  unsigned char *m = malloc(4 * 1024 * 1024);
  if (!m)
    return 1;
  for (;;) {
    int n = mp_pipe_recv(g_child, m, 4 * 1024 * 1024, -1);
    if (n == MP_EPEERDEAD)
      return 0;
    if (n < 4)
      return 2;
    unsigned i;
    memcpy(&i, m, sizeof i);
    if (i >= NSTRESS || (size_t)n != stress_len(i) ||
        !pattern_ok(m + 4, (size_t)n - 4, i))
      return 3;
    if (mp_pipe_send(g_report_w, &i, sizeof i, -1) != 0)
      return 4;
  }
}

static void test_pipe_huge_readers_killed(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* minutes of copying under valgrind; the mechanism is the same */
  assert_int_equal(mp_pipe_create(&g_parent, &g_child, 4 * 1024 * 1024), 0);
  assert_int_equal(mp_pipe_create(&g_report_w, &g_report_r, 0), 0);
  mp_process *r[NREADERS];
  for (int k = 0; k < NREADERS; k++)
    r[k] = mpt_start(stress_reader, NULL);
  mp_pipe_free(g_report_w);
  unsigned char *m = malloc(4 * 1024 * 1024);
  assert_non_null(m);
  srand(1234);
  int killed = 0;
  for (unsigned i = 0; i < NSTRESS; i++) {
    memcpy(m, &i, sizeof i);
    pattern(m + 4, stress_len(i) - 4, i);
    assert_int_equal(mp_pipe_send(g_parent, m, stress_len(i), 30), 0);
    if (i % 10 == 5 && killed < NREADERS - 1) {
      mp_process_kill(r[killed]); /* wherever it is */
      killed++;
    }
    unsigned got;
    while (mp_pipe_recv(g_report_r, &got, sizeof got, 0) == sizeof got)
      assert_true(got < NSTRESS);
  }
  mp_pipe_free(g_child);
  mp_pipe_free(g_parent); /* the last reader sees EOF once drained */
  for (int k = 0; k < NREADERS; k++) {
    int code = mpt_finish(r[k]);
    if (k < killed)
      assert_true(code == -SIGKILL || code == 0);
    else
      assert_int_equal(code, 0);
  }
  unsigned got;
  while (mp_pipe_recv(g_report_r, &got, sizeof got, 0) == sizeof got)
    assert_true(got < NSTRESS);
  free(m);
  mp_pipe_free(g_report_r);
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
      MPT_TEST(test_pipe_huge_messages),
      MPT_TEST(test_pipe_huge_backpressure),
      MPT_TEST(test_pipe_hostile_fd),
      MPT_TEST(test_pipe_huge_readers_killed),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
