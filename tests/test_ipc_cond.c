/* test_ipc_cond.c: mp_cond (Python's Condition) within a process and
 * across processes, the CPython behaviours (notify wakes the longest
 * waiting, notify_all wakes all, wait_for with a predicate and a timeout,
 * wait returns with the lock held), and death: a waiter killed while it
 * waits takes no notification with it, a notifier killed at its wakeup
 * delays its waiter one slice. Children report through exit codes;
 * processes are sequenced by the lock and by mpt_wait_in_futex, never by
 * sleeps. */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mp_cond *g_c;

/* What the children count, in shared memory. */
typedef struct shared {
  _Atomic int value;   /* the state the predicate looks at; under the lock */
  _Atomic int woken;   /* waiters that returned from wait with 0 */
  _Atomic int order[8];
  _Atomic int norder;
} shared;
static shared *g_sh;
static mp_shm *g_shm;

static void sh_setup(void) {
  assert_int_equal(mp_shm_create(&g_shm, NULL, sizeof *g_sh), 0);
  g_sh = mp_shm_ptr(g_shm);
}

static void sh_done(void) { mp_shm_free(g_shm); }

static int value_at_least_3(void *arg) {
  (void)arg;
  return atomic_load(&g_sh->value) >= 3;
}

static int never(void *arg) {
  (void)arg;
  return 0;
}

static void test_cond_basic(void **state) {
  (void)state;
  sh_setup();
  mp_cond *c = NULL;
  assert_int_equal(mp_cond_create(NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_cond_create(&c, NULL), 0);
  /* Without the lock: Python's RuntimeError. */
  assert_int_equal(mp_cond_wait(c, 0), -EPERM);
  assert_int_equal(mp_cond_notify(c, 1), -EPERM);
  assert_int_equal(mp_cond_notify_all(c), -EPERM);
  assert_int_equal(mp_cond_wait_for(c, never, NULL, 0), -EPERM);
  assert_int_equal(mp_cond_release(c), -EPERM);

  assert_int_equal(mp_cond_acquire(c, -1), 0);
  assert_int_equal(mp_cond_notify(c, 1), 0); /* nobody waits */
  assert_int_equal(mp_cond_notify_all(c), 0);
  assert_int_equal(mp_cond_notify(c, -1), MP_EINVAL);
  double t0 = mpt_now();
  assert_int_equal(mp_cond_wait(c, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  /* Back with the lock held: notify is allowed, and so is release. */
  assert_int_equal(mp_cond_notify(c, 1), 0);
  assert_int_equal(mp_cond_wait(c, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_cond_wait_for(c, never, NULL, 0.05), MP_ETIMEDOUT);
  atomic_store(&g_sh->value, 3);
  assert_int_equal(mp_cond_wait_for(c, value_at_least_3, NULL, -1), 0);
  assert_int_equal(mp_cond_wait_for(c, NULL, NULL, 0), MP_EINVAL);
  assert_int_equal(mp_cond_release(c), 0);
  mp_cond_free(c);

  /* Over a lock of the caller's: the same lock, and it outlives c. */
  mp_lock *l;
  assert_int_equal(mp_lock_create(&l), 0);
  assert_int_equal(mp_cond_create(&c, l), 0);
  assert_int_equal(mp_lock_acquire(l, 0), 0);
  assert_int_equal(mp_cond_acquire(c, 0), -EDEADLK);
  assert_int_equal(mp_cond_wait(c, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_lock_locked(l), 1);
  assert_int_equal(mp_cond_release(c), 0);
  assert_int_equal(mp_lock_locked(l), 0);
  mp_cond_free(c);
  assert_int_equal(mp_lock_acquire(l, 0), 0);
  assert_int_equal(mp_lock_release(l), 0);
  mp_lock_free(l);

  assert_int_equal(mp_cond_acquire(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_cond_release(NULL), MP_EINVAL);
  assert_int_equal(mp_cond_wait(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_cond_notify(NULL, 1), MP_EINVAL);
  assert_int_equal(mp_cond_notify_all(NULL), MP_EINVAL);
  mp_cond_free(NULL);
  sh_done();
}

/* Waits on g_c forever; records its number in the order it was woken.
 * Exit: 10 + its number when woken with the lock held, else an error. */
static int waiter(void *arg) {
  int me = (int)(intptr_t)arg;
  if (mp_cond_acquire(g_c, -1) != 0)
    return 1;
  int rc = mp_cond_wait(g_c, -1);
  if (rc == MP_EOWNERDEAD) /* held, and its notifier died holding it */
    return mp_cond_release(g_c) == 0 ? 3 : 5;
  if (rc != 0)
    return 2;
  atomic_fetch_add(&g_sh->woken, 1);
  g_sh->order[atomic_fetch_add(&g_sh->norder, 1) & 7] = me;
  return mp_cond_release(g_c) == 0 ? 10 + me : 4;
}

/* Start waiter number i and return once it sleeps in its wait. */
static mp_process *start_waiter(int i) {
  mp_process *p = mpt_start(waiter, (void *)(intptr_t)i);
  assert_int_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 1);
  return p;
}

static int notify(int n) {
  assert_int_equal(mp_cond_acquire(g_c, -1), 0);
  int rc = n < 0 ? mp_cond_notify_all(g_c) : mp_cond_notify(g_c, n);
  assert_int_equal(mp_cond_release(g_c), 0);
  return rc;
}

/* CPython's test_notify: notify wakes one, the one that waited longest;
 * notify(2) wakes two; notify_all the rest. The others stay asleep. */
static void test_cond_notify_order(void **state) {
  (void)state;
  if (mpt_wait_in_futex(getpid(), 0) < 0)
    skip();
  sh_setup();
  assert_int_equal(mp_cond_create(&g_c, NULL), 0);
  mp_process *p[5];
  for (int i = 0; i < 5; i++)
    p[i] = start_waiter(i);
  assert_int_equal(notify(1), 1);
  assert_int_equal(mpt_finish(p[0]), 10);
  assert_int_equal(atomic_load(&g_sh->woken), 1);
  assert_int_equal(notify(2), 2);
  assert_int_equal(mpt_finish(p[1]), 11);
  assert_int_equal(mpt_finish(p[2]), 12);
  assert_int_equal(atomic_load(&g_sh->woken), 3);
  /* Those not notified are still asleep in the wait. */
  assert_int_equal(mpt_wait_in_futex(mp_process_pid(p[3]), 30), 1);
  assert_int_equal(mpt_wait_in_futex(mp_process_pid(p[4]), 30), 1);
  assert_int_equal(notify(-1), 2);
  assert_int_equal(mpt_finish(p[3]), 13);
  assert_int_equal(mpt_finish(p[4]), 14);
  assert_int_equal(atomic_load(&g_sh->woken), 5);
  assert_int_equal(notify(-1), 0);
  mp_cond_free(g_c);
  sh_done();
}

/* wait_for across processes: the child waits for value >= 3 while the
 * parent raises it one step at a time, notifying all each time. */
static int wait_for_3(void *arg) {
  (void)arg;
  if (mp_cond_acquire(g_c, -1) != 0)
    return 1;
  int rc = mp_cond_wait_for(g_c, value_at_least_3, NULL, 30);
  int v = atomic_load(&g_sh->value);
  mp_cond_release(g_c);
  return rc == 0 ? 40 + v : 2;
}

static void test_cond_wait_for(void **state) {
  (void)state;
  sh_setup();
  assert_int_equal(mp_cond_create(&g_c, NULL), 0);
  mp_process *p = mpt_start(wait_for_3, NULL);
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(mp_cond_acquire(g_c, -1), 0);
    atomic_store(&g_sh->value, i);
    assert_true(mp_cond_notify_all(g_c) >= 0);
    assert_int_equal(mp_cond_release(g_c), 0);
  }
  assert_int_equal(mpt_finish(p), 43);
  mp_cond_free(g_c);
  sh_done();
}

/* A waiter killed while it waits: notify passes over it to the living,
 * in order, and its place is reused. */
static void test_cond_waiter_killed(void **state) {
  (void)state;
  if (mpt_wait_in_futex(getpid(), 0) < 0)
    skip();
  sh_setup();
  assert_int_equal(mp_cond_create(&g_c, NULL), 0);
  mp_process *p[3];
  for (int i = 0; i < 3; i++)
    p[i] = start_waiter(i);
  /* The longest waiter dies: notify(1) must not be spent on it. */
  assert_int_equal(mp_process_kill(p[0]), 0);
  assert_int_equal(mpt_finish(p[0]), -SIGKILL);
  assert_int_equal(notify(1), 1);
  assert_int_equal(mpt_finish_within(p[1], 5), 11);
  /* A new waiter takes the dead one's place, behind the one still there. */
  mp_process *q = start_waiter(5);
  assert_int_equal(notify(1), 1);
  assert_int_equal(mpt_finish_within(p[2], 5), 12);
  assert_int_equal(notify(1), 1);
  assert_int_equal(mpt_finish_within(q, 5), 15);
  assert_int_equal(notify(-1), 0);
  assert_int_equal(atomic_load(&g_sh->woken), 3);
  mp_cond_free(g_c);
  sh_done();
}

/* ---- a notifier killed between its store and its wakeup ---- */

#define SKIP_UNLESS_DIE_AT_FUTEX()                                            \
  do {                                                                        \
    if (!mpt_die_at_futex_works())                                            \
      skip();                                                                 \
  } while (0)

/* Notifies armed: dies at the wakeup, holding the lock. */
static int notify_and_die(void *arg) {
  (void)arg;
  if (mp_cond_acquire(g_c, -1) != 0)
    return 1;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_cond_notify(g_c, 1);
  return 4; /* not killed: nobody waited */
}

/* The waiter sees the notification within a slice, and takes the lock its
 * notifier died holding: MP_EOWNERDEAD (exit 3). */
static void test_cond_notifier_killed_at_wake(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  sh_setup();
  assert_int_equal(mp_cond_create(&g_c, NULL), 0);
  mp_process *w = start_waiter(0);
  assert_int_equal(mpt_finish(mpt_start(notify_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(w, 5), 3);
  assert_int_equal(mp_cond_acquire(g_c, 0), 0); /* the waiter released it */
  assert_int_equal(mp_cond_release(g_c), 0);
  mp_cond_free(g_c);
  sh_done();
}

/* ---- waiters killed at random while notifies go on ----
 *
 * Four waiter lanes loop: take the lock, wait, count the wakeup, release.
 * The parent notifies one at a time and requires each notify that chose a
 * waiter to show as one counted wakeup within 5 s; between rounds it kills
 * a waiter wherever it is (asleep, holding the lock, counting) and starts
 * a new one in its lane. A notify spent on a dead waiter, or a lock left
 * held, fails the test. */

static int loop_waiter(void *arg) {
  (void)arg;
  for (;;) {
    int rc = mp_cond_acquire(g_c, -1);
    if (rc != 0 && rc != MP_EOWNERDEAD)
      return 1;
    rc = mp_cond_wait(g_c, -1);
    if (rc != 0 && rc != MP_EOWNERDEAD) /* forever: woken means notified */
      return 2;
    atomic_fetch_add(&g_sh->woken, 1);
    if (mp_cond_release(g_c) != 0)
      return 3;
  }
}

static int woken_reaches(int n) {
  double end = mpt_now() + 5;
  struct timespec tick = {0, 1000000};
  while (atomic_load(&g_sh->woken) < n)
    if (mpt_now() > end)
      return 0;
    else
      nanosleep(&tick, NULL);
  return atomic_load(&g_sh->woken) == n;
}

static void test_cond_random_kills(void **state) {
  (void)state;
  enum { LANES = 4 };
  int rounds = mpt_under_tool() ? 20 : 150;
  sh_setup();
  assert_int_equal(mp_cond_create(&g_c, NULL), 0);
  mp_process *p[LANES];
  for (int i = 0; i < LANES; i++)
    p[i] = mpt_start(loop_waiter, NULL);
  unsigned seed = 4242;
  int expect = 0;
  for (int r = 0; r < rounds; r++) {
    /* Notify until one living waiter is chosen (all may be between waits). */
    double end = mpt_now() + 5;
    int n = 0;
    while (n == 0 && mpt_now() < end) {
      int rc = mp_cond_acquire(g_c, 5);
      assert_true(rc == 0 || rc == MP_EOWNERDEAD);
      n = mp_cond_notify(g_c, 1);
      assert_int_equal(mp_cond_release(g_c), 0);
    }
    assert_int_equal(n, 1);
    expect++;
    if (!woken_reaches(expect))
      fail_msg("round %d: %d wakeups counted, %d expected", r,
               atomic_load(&g_sh->woken), expect);
    if (rand_r(&seed) % 3 == 0) {
      int lane = rand_r(&seed) % LANES;
      assert_int_equal(mp_process_kill(p[lane]), 0);
      assert_int_equal(mpt_finish(p[lane]), -SIGKILL);
      p[lane] = mpt_start(loop_waiter, NULL);
    }
  }
  for (int i = 0; i < LANES; i++) {
    assert_int_equal(mp_process_kill(p[i]), 0);
    assert_int_equal(mpt_finish(p[i]), -SIGKILL);
  }
  mp_cond_free(g_c);
  sh_done();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_cond_basic),
      MPT_TEST(test_cond_notify_order),
      MPT_TEST(test_cond_wait_for),
      MPT_TEST(test_cond_waiter_killed),
      MPT_TEST(test_cond_notifier_killed_at_wake),
      MPT_TEST(test_cond_random_kills),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
