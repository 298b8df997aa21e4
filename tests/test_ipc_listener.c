/* test_ipc_listener.c: mp_listener and mp_client_connect: connections by
 * path and in the abstract namespace carrying mp_pipe messages (16 MiB
 * too), the HMAC-SHA256 challenge both ways (a wrong key is MP_EAUTH on
 * both sides, and the listener goes on), clients killed mid-handshake, the
 * listening socket kept out of the library's children, and misuse. */
#include "fixture.h"

#include "ipc/ipc_internal.h" /* mp__listener_fd */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_addr[108];
static const char *g_key = "secret";

enum { BIG = 16 * 1024 * 1024 };

/* Child: connect (key: arg), send a big and a small message, read one. */
static int client_talk(void *arg) {
  mp_pipe *c;
  const char *key = arg;
  mp_client_opts o = {
      .authkey = key, .authkey_len = key ? strlen(key) : 0, .max_msg = BIG};
  int rc = mp_client_connect(&c, g_addr, &o, 30);
  if (rc == MP_EAUTH)
    return 10;
  if (rc < 0)
    return 1;
  char *m = calloc(1, BIG);
  if (!m)
    return 2;
  m[BIG - 1] = 'z';
  if (mp_pipe_send(c, m, BIG, 30) != 0 || mp_pipe_send(c, "hi", 2, 30) != 0)
    return 3;
  rc = mp_pipe_recv(c, m, BIG, 30);
  free(m);
  mp_pipe_free(c);
  return rc == 3 ? 0 : 4;
}

/* Accept one client and check what client_talk sends. */
static void serve_one(mp_listener *l) {
  mp_pipe *s;
  assert_int_equal(mp_listener_accept(l, &s, 30), 0);
  char *m = malloc(BIG);
  assert_non_null(m);
  assert_int_equal(mp_pipe_recv(s, m, BIG, 30), BIG);
  assert_int_equal(m[BIG - 1], 'z');
  assert_int_equal(mp_pipe_recv(s, m, BIG, 30), 2);
  assert_int_equal(mp_pipe_send(s, "bye", 3, 30), 0);
  assert_int_equal(mp_pipe_recv(s, m, BIG, 30), MP_EPEERDEAD);
  free(m);
  mp_pipe_free(s);
}

static void test_listener_path(void **state) {
  (void)state;
  snprintf(g_addr, sizeof g_addr, "/tmp/mpool-test-%ld.sock", (long)getpid());
  mp_listener *l;
  assert_int_equal(
      mp_listener_create(&l, g_addr, &(mp_listener_opts){.max_msg = BIG}), 0);
  assert_string_equal(mp_listener_address(l), g_addr);
  struct stat st;
  assert_int_equal(stat(g_addr, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  mp_listener *l2;
  assert_int_equal(mp_listener_create(&l2, g_addr, NULL), -EADDRINUSE);
  mp_process *p = mpt_start(client_talk, NULL);
  serve_one(l);
  assert_int_equal(mpt_finish(p), 0);
  mp_listener_free(l);
  assert_int_equal(stat(g_addr, &st), -1); /* removed */
  mp_pipe *c;
  assert_int_equal(mp_client_connect(&c, g_addr, NULL, 1), -ENOENT);
}

static void test_listener_auth(void **state) {
  (void)state;
  mp_listener *l;
  mp_listener_opts o = {
      .authkey = g_key, .authkey_len = strlen(g_key), .max_msg = BIG};
  assert_int_equal(mp_listener_create(&l, NULL, &o), 0);
  snprintf(g_addr, sizeof g_addr, "%s", mp_listener_address(l));
  assert_int_equal(strncmp(g_addr, "@mpool-", 7), 0);
  /* The right key: both sides pass. */
  mp_process *p = mpt_start(client_talk, (void *)g_key);
  serve_one(l);
  assert_int_equal(mpt_finish(p), 0);
  /* A wrong key: MP_EAUTH on both sides; the listener goes on. */
  p = mpt_start(client_talk, "wrong");
  mp_pipe *s;
  assert_int_equal(mp_listener_accept(l, &s, 30), MP_EAUTH);
  assert_int_equal(mpt_finish(p), 10);
  p = mpt_start(client_talk, (void *)g_key);
  serve_one(l);
  assert_int_equal(mpt_finish(p), 0);
  mp_listener_free(l);
}

/* Client: connect with the key, then die without a word (arg: 1) or
 * answer and stay (0) until the server hangs up. */
static int client_maybe_die(void *arg) {
  mp_pipe *c;
  mp_client_opts o = {.authkey = g_key, .authkey_len = strlen(g_key)};
  if ((intptr_t)arg) {
    /* Die inside the handshake: connect raw, then SIGKILL ourselves. */
    o.authkey = NULL;
    o.authkey_len = 0;
    if (mp_client_connect(&c, g_addr, &o, 30) < 0)
      return 1;
    raise(SIGKILL);
  }
  if (mp_client_connect(&c, g_addr, &o, 30) < 0)
    return 2;
  char b[8];
  int rc = mp_pipe_recv(c, b, sizeof b, 30);
  mp_pipe_free(c);
  return rc == MP_EPEERDEAD ? 0 : 3;
}

/* Clients killed during the challenge, at random among good ones: each
 * accept answers (MP_EPEERDEAD or MP_EAUTH for the dead), none hangs. */
static void test_listener_clients_killed(void **state) {
  (void)state;
  mp_listener *l;
  mp_listener_opts o = {.authkey = g_key, .authkey_len = strlen(g_key)};
  assert_int_equal(mp_listener_create(&l, NULL, &o), 0);
  snprintf(g_addr, sizeof g_addr, "%s", mp_listener_address(l));
  enum { NC = 6 };
  mp_process *p[NC];
  int dies[NC], ndie = 0;
  srand((unsigned)getpid());
  for (int i = 0; i < NC; i++) {
    dies[i] = rand() % 2;
    ndie += dies[i];
    p[i] = mpt_start(client_maybe_die, (void *)(intptr_t)dies[i]);
  }
  int good = 0, bad = 0;
  mp_pipe *conn[NC];
  for (int i = 0; i < NC; i++) {
    mp_pipe *s;
    int rc = mp_listener_accept(l, &s, 30);
    if (rc == 0)
      conn[good++] = s;
    else if (rc == MP_EPEERDEAD || rc == MP_EAUTH)
      bad++;
    else
      fail_msg("accept: %s", mp_err_name(rc));
  }
  assert_int_equal(good, NC - ndie);
  assert_int_equal(bad, ndie);
  for (int i = 0; i < good; i++)
    mp_pipe_free(conn[i]);
  for (int i = 0; i < NC; i++)
    assert_int_equal(mpt_finish(p[i]), dies[i] ? -SIGKILL : 0);
  mp_listener_free(l);
}

static int g_lfd;
static int fd_is_closed(void *arg) {
  (void)arg;
  return fcntl(g_lfd, F_GETFD) < 0 && errno == EBADF ? 0 : 1;
}

static void test_listener_not_inherited(void **state) {
  (void)state;
  mp_listener *l;
  assert_int_equal(mp_listener_create(&l, NULL, NULL), 0);
  g_lfd = mp__listener_fd(l);
  assert_true(fcntl(g_lfd, F_GETFD) & FD_CLOEXEC);
  assert_int_equal(mpt_finish(mpt_start(fd_is_closed, NULL)), 0);
  mp_listener_free(l);
}

static void test_listener_misuse(void **state) {
  (void)state;
  mp_listener *l = NULL;
  mp_pipe *c = NULL;
  assert_int_equal(mp_listener_create(NULL, "@x", NULL), MP_EINVAL);
  assert_int_equal(mp_listener_create(&l, "", NULL), MP_EINVAL);
  assert_int_equal(mp_listener_create(&l, "@", NULL), MP_EINVAL);
  assert_int_equal(
      mp_listener_create(&l, "@x", &(mp_listener_opts){.authkey_len = 3}),
      MP_EINVAL);
  char longp[200];
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = 0;
  assert_int_equal(mp_listener_create(&l, longp, NULL), -ENAMETOOLONG);
  assert_null(l);
  assert_int_equal(mp_client_connect(NULL, "@x", NULL, 0), MP_EINVAL);
  assert_int_equal(mp_client_connect(&c, NULL, NULL, 0), MP_EINVAL);
  assert_int_equal(mp_client_connect(&c, "@mpool-nobody-listens", NULL, 0),
                   -ECONNREFUSED);
  assert_null(c);
  assert_int_equal(mp_listener_create(&l, NULL, NULL), 0);
  assert_int_equal(mp_listener_accept(NULL, &c, 0), MP_EINVAL);
  assert_int_equal(mp_listener_accept(l, NULL, 0), MP_EINVAL);
  double t0 = mpt_now();
  assert_int_equal(mp_listener_accept(l, &c, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_null(mp_listener_address(NULL));
  mp_listener_free(l);
  mp_listener_free(NULL);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_listener_path),
      MPT_TEST(test_listener_auth),
      MPT_TEST(test_listener_clients_killed),
      MPT_TEST(test_listener_not_inherited),
      MPT_TEST(test_listener_misuse),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
