/* test_wait.c: mp_wait over pipe ends, processes, pool results and
 * listeners: which are ready, that a result is driven to completion while
 * waiting (its pool's fds and deadlines are part of the wait), timeouts,
 * misuse, and processes killed at random while waited for. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mp_pipe *g_a[3], *g_b[3];

/* Child: send one message on pipe arg's far end. */
static int send_on(void *arg) {
  int i = (int)(intptr_t)arg;
  return mp_pipe_send(g_b[i], "x", 1, -1) == 0 ? 0 : 1;
}

static void test_wait_pipes(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    assert_int_equal(mp_pipe_create(&g_a[i], &g_b[i], 0), 0);
  mp_waitable w[3];
  for (int i = 0; i < 3; i++)
    w[i] = (mp_waitable){.kind = MP_WAIT_PIPE, .obj = g_a[i], .ready = 7};
  double t0 = mpt_now();
  assert_int_equal(mp_wait(w, 3, 0.05), 0); /* none: the timeout */
  assert_true(mpt_now() - t0 >= 0.049);
  for (int i = 0; i < 3; i++)
    assert_int_equal(w[i].ready, 0);
  assert_int_equal(mpt_finish(mpt_start(send_on, (void *)1)), 0);
  assert_int_equal(mp_wait(w, 3, 10), 1);
  assert_int_equal(w[0].ready + w[2].ready, 0);
  assert_int_equal(w[1].ready, 1);
  char c;
  assert_int_equal(mp_pipe_recv(g_a[1], &c, 1, 0), 1);
  /* A peer gone counts as ready, as mp_pipe_poll says. */
  mp_pipe_free(g_b[2]);
  assert_int_equal(mp_wait(w, 3, -1), 1);
  assert_int_equal(w[2].ready, 1);
  for (int i = 0; i < 3; i++) {
    mp_pipe_free(g_a[i]);
    if (i != 2)
      mp_pipe_free(g_b[i]);
  }
}

static int rfd, wfd = -1; /* the pipe the children block on */
static int block_on_fd(void *arg) {
  (void)arg;
  char c;
  if (wfd >= 0)
    close(wfd);
  while (read(rfd, &c, 1) < 0 && errno == EINTR)
    ;
  return 3;
}

enum { NP = 5 };

/* Processes killed at random while waited for: each wakeup names exactly
 * the ones that ended, and they are reaped; no wait hangs. */
static void test_wait_processes_random_kills(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  rfd = fds[0];
  wfd = fds[1];
  mp_process *p[NP];
  mp_waitable w[NP];
  for (int i = 0; i < NP; i++) {
    p[i] = mpt_start(block_on_fd, NULL);
    w[i] = (mp_waitable){MP_WAIT_PROCESS, p[i], 0};
  }
  assert_int_equal(mp_wait(w, NP, 0), 0);
  srand((unsigned)getpid());
  int ended[NP] = {0}, seen[NP] = {0}, left = NP;
  while (left > 1) {
    int k;
    do
      k = rand() % NP;
    while (ended[k]);
    assert_int_equal(mp_process_kill(p[k]), 0);
    ended[k] = 1;
    left--;
    /* Wait on those not seen ended yet, as a program would: one that
     * has ended stays ready. */
    mp_waitable live[NP];
    int map[NP], m = 0;
    for (int i = 0; i < NP; i++)
      if (!seen[i]) {
        live[m] = (mp_waitable){MP_WAIT_PROCESS, p[i], 0};
        map[m++] = i;
      }
    assert_int_equal(mp_wait(live, (size_t)m, 10), 1);
    for (int i = 0; i < m; i++) {
      assert_int_equal(live[i].ready, map[i] == k);
      seen[map[i]] |= live[i].ready;
    }
    int code;
    assert_int_equal(mp_process_exitcode(p[k], &code), 0); /* reaped */
    assert_int_equal(code, -SIGKILL);
  }
  close(fds[1]); /* the last one reads EOF and exits 3 */
  wfd = -1;
  int last = 0;
  while (ended[last])
    last++;
  assert_int_equal(mp_wait(&w[last], 1, 10), 1);
  assert_int_equal(mp_wait(w, NP, 0), NP); /* every one has ended */
  for (int i = 0; i < NP; i++) {
    int code = mpt_finish(p[i]);
    assert_int_equal(code, i == last ? 3 : -SIGKILL);
  }
  close(fds[0]);
}

/* Apply task: wait for a byte on rfd (the test's go), answer "done". */
static int task_wait_go(const void *arg, size_t len, mp_buf *res) {
  (void)arg, (void)len;
  char c;
  while (read(rfd, &c, 1) < 0 && errno == EINTR)
    ;
  return mp_buf_append(res, "done", 4);
}

static int task_hang(const void *arg, size_t len, mp_buf *res) {
  (void)arg, (void)len, (void)res;
  for (;;)
    pause();
  return 0;
}

/* A result completes while mp_wait sleeps beside a pipe: the wait is woken
 * by the pool's own fds and completes the result (nothing else calls the
 * pool meanwhile). */
static void test_wait_results(void **state) {
  (void)state;
  int go[2];
  assert_int_equal(pipe2(go, O_CLOEXEC), 0);
  rfd = go[0];
  mp_pool *pool = mpt_pool((mp_pool_opts){.processes = 2});
  close(go[0]);
  mp_result *r;
  assert_int_equal(mp_pool_apply_async(pool, task_wait_go, NULL, 0, NULL, &r),
                   0);
  mp_pipe *a, *b;
  assert_int_equal(mp_pipe_create(&a, &b, 0), 0);
  mp_waitable w[2] = {{MP_WAIT_PIPE, a, 0}, {MP_WAIT_RESULT, r, 0}};
  assert_int_equal(mp_wait(w, 2, 0.05), 0);
  mpt_write(go[1], "g", 1); /* the task may finish now */
  assert_int_equal(mp_wait(w, 2, 30), 1);
  assert_int_equal(w[0].ready, 0);
  assert_int_equal(w[1].ready, 1);
  const void *data;
  size_t len;
  assert_int_equal(mp_result_get(r, 0, &data, &len, NULL), 0);
  assert_int_equal(len, 4);
  assert_memory_equal(data, "done", 4);
  mp_result_free(r);
  mpt_pool_done(pool);
  close(go[1]);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

/* A result that completes by the pool's deadline, not by an fd: its task
 * hangs past task_timeout; mp_wait wakes for the deadline, kills it. */
static void test_wait_result_by_deadline(void **state) {
  (void)state;
  mp_pool *pool = mpt_pool((mp_pool_opts){.processes = 1, .task_timeout = 0.2});
  mp_result *r;
  assert_int_equal(mp_pool_apply_async(pool, task_hang, NULL, 0, NULL, &r), 0);
  mp_waitable w = {MP_WAIT_RESULT, r, 0};
  assert_int_equal(mp_wait(&w, 1, 30), 1);
  assert_int_equal(mp_result_get(r, 0, NULL, NULL, NULL), MP_ETIMEDOUT);
  /* Complete: ready at once, and again. */
  assert_int_equal(mp_wait(&w, 1, -1), 1);
  mp_result_free(r);
  /* A result whose pool is gone is ready: get says MP_ECLOSED. */
  assert_int_equal(mp_pool_apply_async(pool, task_hang, NULL, 0, NULL, &r), 0);
  mp_pool_free(pool);
  w.obj = r;
  assert_int_equal(mp_wait(&w, 1, -1), 1);
  assert_int_equal(mp_result_get(r, 0, NULL, NULL, NULL), MP_ECLOSED);
  mp_result_free(r);
}

static void test_wait_listener(void **state) {
  (void)state;
  mp_listener *l;
  assert_int_equal(mp_listener_create(&l, NULL, NULL), 0);
  mp_waitable w = {MP_WAIT_LISTENER, l, 0};
  assert_int_equal(mp_wait(&w, 1, 0), 0);
  mp_pipe *c, *s;
  assert_int_equal(mp_client_connect(&c, mp_listener_address(l), NULL, 10), 0);
  assert_int_equal(mp_wait(&w, 1, 10), 1);
  assert_int_equal(mp_listener_accept(l, &s, 0), 0);
  mp_pipe_free(c);
  mp_pipe_free(s);
  mp_listener_free(l);
}

static void test_wait_misuse(void **state) {
  (void)state;
  mp_pipe *a, *b;
  assert_int_equal(mp_pipe_create(&a, &b, 0), 0);
  mp_waitable w[2] = {{MP_WAIT_PIPE, a, 0}, {0, b, 0}};
  assert_int_equal(mp_wait(NULL, 1, 0), MP_EINVAL);
  assert_int_equal(mp_wait(w, 0, 0), MP_EINVAL);
  assert_int_equal(mp_wait(w, 2, 0), MP_EINVAL); /* unknown kind */
  w[1] = (mp_waitable){MP_WAIT_PIPE, NULL, 0};
  assert_int_equal(mp_wait(w, 2, 0), MP_EINVAL);
  mp_process *p;
  assert_int_equal(mp_process_create(&p, block_on_fd, NULL, NULL), 0);
  w[1] = (mp_waitable){MP_WAIT_PROCESS, p, 0};
  assert_int_equal(mp_wait(w, 2, 0), MP_ESTATE);
  mp_process_free(p);
  mp_pipe_free(a);
  mp_pipe_free(b);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_wait_pipes),    MPT_TEST(test_wait_processes_random_kills),
      MPT_TEST(test_wait_results),  MPT_TEST(test_wait_result_by_deadline),
      MPT_TEST(test_wait_listener), MPT_TEST(test_wait_misuse),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
