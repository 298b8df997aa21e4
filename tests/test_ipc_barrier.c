/* test_ipc_barrier.c: mp_barrier (Python's Barrier) within a process and
 * across processes: the CPython behaviours (arrival indices, the action
 * run once per round by the last to arrive, abort, reset, broken, timeout,
 * the default timeout), and death: a party killed while it waits, or while
 * it runs the action, breaks the barrier for the others promptly; a
 * stress kills parties at random. Children report through exit codes;
 * processes are sequenced by mpt_wait_in_futex, never by sleeps. */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mp_barrier *g_b;

typedef struct shared {
  _Atomic int actions;     /* action calls */
  _Atomic int action_pid;  /* the process that ran the last one */
  _Atomic int last_pid;    /* the process whose wait returned parties - 1 */
  _Atomic int rounds;      /* completed waits (stress) */
} shared;
static shared *g_sh;
static mp_shm *g_shm;

static void sh_setup(void) {
  assert_int_equal(mp_shm_create(&g_shm, NULL, sizeof *g_sh), 0);
  g_sh = mp_shm_ptr(g_shm);
}

static void sh_done(void) { mp_shm_free(g_shm); }

static int count_action(void *arg) {
  (void)arg;
  atomic_fetch_add(&g_sh->actions, 1);
  atomic_store(&g_sh->action_pid, (int)getpid());
  return 0;
}

static int failing_action(void *arg) {
  (void)arg;
  return 1;
}

static void test_barrier_single_party(void **state) {
  (void)state;
  sh_setup();
  mp_barrier *b = NULL;
  assert_int_equal(mp_barrier_create(NULL, 1, NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_create(&b, 0, NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_create(&b, 1025, NULL), MP_EINVAL);
  assert_int_equal(
      mp_barrier_create(&b, 2, &(mp_barrier_opts){.timeout = -1}), MP_EINVAL);
  assert_null(b);
  assert_int_equal(
      mp_barrier_create(&b, 1, &(mp_barrier_opts){.action = count_action}), 0);
  assert_int_equal(mp_barrier_parties(b), 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(mp_barrier_wait(b, 0), 0);
  assert_int_equal(atomic_load(&g_sh->actions), 3);
  assert_int_equal(mp_barrier_n_waiting(b), 0);
  assert_int_equal(mp_barrier_broken(b), 0);
  mp_barrier_free(b);

  assert_int_equal(mp_barrier_wait(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_barrier_abort(NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_reset(NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_n_waiting(NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_broken(NULL), MP_EINVAL);
  assert_int_equal(mp_barrier_parties(NULL), MP_EINVAL);
  mp_barrier_free(NULL);
  sh_done();
}

/* Two rounds: the exit code is the first index * 8 + the second. */
static int two_rounds(void *arg) {
  (void)arg;
  int idx[2];
  for (int r = 0; r < 2; r++) {
    idx[r] = mp_barrier_wait(g_b, 30);
    if (idx[r] < 0)
      return 100 + r;
    if (idx[r] == mp_barrier_parties(g_b) - 1)
      atomic_store(&g_sh->last_pid, (int)getpid());
  }
  return idx[0] * 8 + idx[1];
}

/* CPython's test_barrier / test_wait_return / test_action: every party of
 * a round gets a distinct index; the last one ran the action, once. */
static void test_barrier_indices_and_action(void **state) {
  (void)state;
  enum { N = 4 };
  sh_setup();
  assert_int_equal(
      mp_barrier_create(&g_b, N, &(mp_barrier_opts){.action = count_action}),
      0);
  mp_process *p[N - 1];
  for (int i = 0; i < N - 1; i++)
    p[i] = mpt_start(two_rounds, NULL);
  int seen[2][N] = {{0}};
  for (int r = 0; r < 2; r++) {
    int idx = mp_barrier_wait(g_b, 30);
    assert_true(idx >= 0 && idx < N);
    seen[r][idx]++;
    if (idx == N - 1)
      atomic_store(&g_sh->last_pid, (int)getpid());
    /* The action ran before this round released anyone, in the process
     * that got the last index. */
    assert_int_equal(atomic_load(&g_sh->actions), r + 1);
  }
  for (int i = 0; i < N - 1; i++) {
    int code = mpt_finish(p[i]);
    assert_true(code >= 0 && code < 64);
    seen[0][code / 8]++;
    seen[1][code % 8]++;
  }
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < N; i++)
      assert_int_equal(seen[r][i], 1);
  assert_int_equal(atomic_load(&g_sh->action_pid),
                   atomic_load(&g_sh->last_pid));
  assert_int_equal(mp_barrier_broken(g_b), 0);
  mp_barrier_free(g_b);
  sh_done();
}

/* Waits once: 20 when told the barrier broke, 30 + index when released. */
static int wait_once(void *arg) {
  (void)arg;
  int rc = mp_barrier_wait(g_b, -1);
  return rc == MP_EBROKEN ? 20 : rc >= 0 ? 30 + rc : 1;
}

static mp_process *start_waiting(mp_target_fn fn) {
  mp_process *p = mpt_start(fn, NULL);
  assert_int_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 1);
  return p;
}

#define SKIP_UNLESS_PROC_SYSCALL()                                            \
  do {                                                                        \
    if (mpt_wait_in_futex(getpid(), 0) < 0)                                   \
      skip();                                                                 \
  } while (0)

/* CPython's test_abort and test_reset: waiters get BrokenBarrierError; a
 * broken barrier stays broken until reset; reset makes it usable. */
static void test_barrier_abort_reset(void **state) {
  (void)state;
  SKIP_UNLESS_PROC_SYSCALL();
  assert_int_equal(mp_barrier_create(&g_b, 3, NULL), 0);
  mp_process *p[2];
  for (int i = 0; i < 2; i++)
    p[i] = start_waiting(wait_once);
  assert_int_equal(mp_barrier_n_waiting(g_b), 2);
  assert_int_equal(mp_barrier_abort(g_b), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(mpt_finish(p[i]), 20);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  assert_int_equal(mp_barrier_n_waiting(g_b), 0);
  assert_int_equal(mp_barrier_wait(g_b, -1), MP_EBROKEN); /* stays broken */
  assert_int_equal(mp_barrier_abort(g_b), 0);
  assert_int_equal(mp_barrier_reset(g_b), 0);
  assert_int_equal(mp_barrier_broken(g_b), 0);

  /* Reset while parties wait: they are told, the barrier is not broken,
   * and the next round is a full one. */
  p[0] = start_waiting(wait_once);
  assert_int_equal(mp_barrier_n_waiting(g_b), 1);
  assert_int_equal(mp_barrier_reset(g_b), 0);
  assert_int_equal(mpt_finish(p[0]), 20);
  assert_int_equal(mp_barrier_broken(g_b), 0);
  assert_int_equal(mp_barrier_n_waiting(g_b), 0);
  for (int i = 0; i < 2; i++)
    p[i] = mpt_start(wait_once, NULL);
  int idx = mp_barrier_wait(g_b, 30);
  assert_true(idx >= 0 && idx < 3);
  int sum = idx;
  for (int i = 0; i < 2; i++)
    sum += mpt_finish(p[i]) - 30;
  assert_int_equal(sum, 0 + 1 + 2);
  mp_barrier_free(g_b);
}

/* CPython's test_timeout and test_default_timeout: a wait that times out
 * breaks the barrier for everyone. */
static void test_barrier_timeouts(void **state) {
  (void)state;
  SKIP_UNLESS_PROC_SYSCALL();
  assert_int_equal(mp_barrier_create(&g_b, 3, NULL), 0);
  mp_process *p = start_waiting(wait_once);
  double t0 = mpt_now();
  assert_int_equal(mp_barrier_wait(g_b, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mpt_finish(p), 20);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  assert_int_equal(mp_barrier_wait(g_b, 0), MP_EBROKEN);
  mp_barrier_free(g_b);

  /* The default, for a wait given a negative timeout. */
  assert_int_equal(
      mp_barrier_create(&g_b, 2, &(mp_barrier_opts){.timeout = 0.05}), 0);
  assert_int_equal(mp_barrier_wait(g_b, -1), MP_ETIMEDOUT);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  assert_int_equal(mp_barrier_reset(g_b), 0);
  assert_int_equal(mp_barrier_wait(g_b, 0), MP_ETIMEDOUT); /* 0 polls */
  mp_barrier_free(g_b);
}

/* CPython's test_action_exception: the last party is told its action
 * failed, the others that the barrier broke. */
static void test_barrier_action_fails(void **state) {
  (void)state;
  SKIP_UNLESS_PROC_SYSCALL();
  assert_int_equal(
      mp_barrier_create(&g_b, 2, &(mp_barrier_opts){.action = failing_action}),
      0);
  mp_process *p = start_waiting(wait_once);
  assert_int_equal(mp_barrier_wait(g_b, -1), MP_ETASK);
  assert_int_equal(mpt_finish(p), 20);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  mp_barrier_free(g_b);
}

/* ---- death ---- */

/* A party killed while it waits breaks the barrier: the other waiter is
 * told within a slice or so (5 s allowed: it would otherwise wait for
 * ever), and the next arrival at once. */
static void test_barrier_party_killed(void **state) {
  (void)state;
  SKIP_UNLESS_PROC_SYSCALL();
  assert_int_equal(mp_barrier_create(&g_b, 4, NULL), 0);
  mp_process *victim = start_waiting(wait_once);
  mp_process *other = start_waiting(wait_once);
  assert_int_equal(mp_process_kill(victim), 0);
  assert_int_equal(mpt_finish(victim), -SIGKILL);
  assert_int_equal(mpt_finish_within(other, 5), 20);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  assert_int_equal(mp_barrier_wait(g_b, -1), MP_EBROKEN);

  /* After reset, the dead party's slot is reused and rounds work again. */
  assert_int_equal(mp_barrier_reset(g_b), 0);
  mp_process *p[3];
  for (int i = 0; i < 3; i++)
    p[i] = mpt_start(wait_once, NULL);
  int sum = mp_barrier_wait(g_b, 30);
  for (int i = 0; i < 3; i++)
    sum += mpt_finish(p[i]) - 30;
  assert_int_equal(sum, 0 + 1 + 2 + 3);

  /* A death no waiter saw yet: the next arrival counts no dead party in. */
  assert_int_equal(mp_barrier_reset(g_b), 0);
  victim = start_waiting(wait_once);
  assert_int_equal(mp_process_kill(victim), 0);
  assert_int_equal(mpt_finish(victim), -SIGKILL);
  assert_int_equal(mp_barrier_wait(g_b, -1), MP_EBROKEN);
  mp_barrier_free(g_b);
}

/* The last party's action kills its process: the waiters are told. */
static int dying_action(void *arg) {
  (void)arg;
  raise(SIGKILL);
  return 0;
}

static void test_barrier_killed_in_action(void **state) {
  (void)state;
  SKIP_UNLESS_PROC_SYSCALL();
  assert_int_equal(
      mp_barrier_create(&g_b, 3, &(mp_barrier_opts){.action = dying_action}),
      0);
  mp_process *p[2];
  for (int i = 0; i < 2; i++)
    p[i] = start_waiting(wait_once);
  mp_process *last = mpt_start(wait_once, NULL);
  assert_int_equal(mpt_finish(last), -SIGKILL);
  for (int i = 0; i < 2; i++)
    assert_int_equal(mpt_finish_within(p[i], 5), 20);
  assert_int_equal(mp_barrier_broken(g_b), 1);
  mp_barrier_free(g_b);
}

/* ---- the last party killed at the wakeup it owes ---- */

static int release_and_die(void *arg) {
  (void)arg;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_barrier_wait(g_b, -1);
  return 4; /* not killed */
}

/* Its round was released before it died: the waiter sees it within a
 * slice and gets its index, not a broken barrier. */
static void test_barrier_releaser_killed_at_wake(void **state) {
  (void)state;
  if (!mpt_die_at_futex_works())
    skip();
  assert_int_equal(mp_barrier_create(&g_b, 2, NULL), 0);
  mp_process *w = start_waiting(wait_once);
  assert_int_equal(mpt_finish(mpt_start(release_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(w, 5), 30);
  assert_int_equal(mp_barrier_broken(g_b), 0);
  mp_barrier_free(g_b);
}

/* ---- parties killed at random ----
 *
 * Three child parties and this process loop on rounds of four. Before
 * each round this process waits until the three have arrived (n_waiting),
 * then either arrives too (it is the last: index 3) or, at random, kills
 * one of them wherever it is inside its wait (asleep, or on its way in or
 * out of sleeping) and arrives: it must be told the barrier broke, and
 * the two others must stop, told the same, within 5 s (else they would
 * wait for ever). Then reset, a new party in the dead one's place, again.
 * (A party killed between rounds is not seen: see the header.) */

static int loop_party(void *arg) {
  (void)arg;
  for (;;) {
    int rc = mp_barrier_wait(g_b, -1);
    if (rc == MP_EBROKEN)
      return 20;
    if (rc < 0 || rc > 2)
      return 1;
    atomic_fetch_add(&g_sh->rounds, 1);
  }
}

/* 1 once n parties wait, 0 after 5 s. */
static int n_waiting_reaches(int n) {
  double end = mpt_now() + 5;
  struct timespec tick = {0, 1000000};
  while (mp_barrier_n_waiting(g_b) < n)
    if (mpt_now() > end)
      return 0;
    else
      nanosleep(&tick, NULL);
  return 1;
}

static void test_barrier_random_kills(void **state) {
  (void)state;
  enum { N = 3 };
  int rounds = mpt_under_tool() ? 30 : 300, kills = 0;
  sh_setup();
  assert_int_equal(mp_barrier_create(&g_b, N + 1, NULL), 0);
  mp_process *p[N];
  for (int i = 0; i < N; i++)
    p[i] = mpt_start(loop_party, NULL);
  unsigned seed = 777;
  for (int r = 0; r < rounds; r++) {
    assert_true(n_waiting_reaches(N));
    if (rand_r(&seed) % 8 != 0) {
      assert_int_equal(mp_barrier_wait(g_b, 30), N);
      continue;
    }
    int victim = (int)(rand_r(&seed) % N);
    assert_int_equal(mp_process_kill(p[victim]), 0);
    assert_int_equal(mpt_finish(p[victim]), -SIGKILL);
    assert_int_equal(mp_barrier_wait(g_b, 30), MP_EBROKEN);
    for (int i = 0; i < N; i++)
      if (i != victim)
        assert_int_equal(mpt_finish_within(p[i], 5), 20);
    assert_int_equal(mp_barrier_reset(g_b), 0);
    for (int i = 0; i < N; i++)
      p[i] = mpt_start(loop_party, NULL);
    kills++;
  }
  assert_true(kills > 0);
  /* Break the barrier to end them: a kill would race the others' exits
   * (a killed party breaks the barrier, so the rest leave on their own). */
  assert_int_equal(mp_barrier_abort(g_b), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(mpt_finish_within(p[i], 5), 20);
  mp_barrier_free(g_b);
  sh_done();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_barrier_single_party),
      MPT_TEST(test_barrier_indices_and_action),
      MPT_TEST(test_barrier_abort_reset),
      MPT_TEST(test_barrier_timeouts),
      MPT_TEST(test_barrier_action_fails),
      MPT_TEST(test_barrier_party_killed),
      MPT_TEST(test_barrier_killed_in_action),
      MPT_TEST(test_barrier_releaser_killed_at_wake),
      MPT_TEST(test_barrier_random_kills),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
