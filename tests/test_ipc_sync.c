/* test_ipc_sync.c: mp_lock, mp_rlock, mp_sem, mp_event, within a process and across
 * processes. Processes are sequenced with events, never with sleeps; a
 * child reports through its exit code (it must not call cmocka). */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* What the children share: created by the parent before it forks. */
static mp_lock *g_lock;
static mp_event *g_held, *g_go;
static mp_sem *g_sem;
static mp_rlock *g_rlock;

/* ---- lock ---- */

static void test_lock_basic(void **state) {
  (void)state;
  mp_lock *l = NULL;
  assert_int_equal(mp_lock_create(&l), 0);
  assert_int_equal(mp_lock_acquire(l, -1), 0);
  assert_int_equal(mp_lock_acquire(l, 0), -EDEADLK); /* not recursive */
  assert_int_equal(mp_lock_release(l), 0);
  assert_int_equal(mp_lock_release(l), -EPERM); /* not held */
  assert_int_equal(mp_lock_acquire(l, 0), 0);
  assert_int_equal(mp_lock_release(l), 0);
  mp_lock_free(l);
  mp_lock_free(NULL);
}

static void test_sync_null_args(void **state) {
  (void)state;
  assert_int_equal(mp_lock_create(NULL), MP_EINVAL);
  assert_int_equal(mp_lock_acquire(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_lock_release(NULL), MP_EINVAL);
  assert_int_equal(mp_sem_create(NULL, 1, 0), MP_EINVAL);
  mp_sem *s = NULL;
  assert_int_equal(mp_sem_create(&s, 2, 1), MP_EINVAL); /* value > bound */
  assert_int_equal(mp_sem_create(&s, 0x80000000u, 0), MP_EINVAL);
  assert_null(s);
  assert_int_equal(mp_sem_acquire(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_sem_release(NULL), MP_EINVAL);
  assert_int_equal(mp_sem_value(NULL), MP_EINVAL);
  mp_sem_free(NULL);
  assert_int_equal(mp_event_create(NULL), MP_EINVAL);
  assert_int_equal(mp_event_set(NULL), MP_EINVAL);
  assert_int_equal(mp_event_clear(NULL), MP_EINVAL);
  assert_int_equal(mp_event_is_set(NULL), MP_EINVAL);
  assert_int_equal(mp_event_wait(NULL, 0), MP_EINVAL);
  mp_event_free(NULL);
}

/* Takes the lock, says so, and holds it until g_go. */
static int hold_until_go(void *arg) {
  (void)arg;
  if (mp_lock_acquire(g_lock, -1) != 0)
    return 1;
  mp_event_set(g_held);
  if (mp_event_wait(g_go, -1) != 0)
    return 2;
  return mp_lock_release(g_lock) == 0 ? 0 : 3;
}

/* Takes the lock, says so, and holds it until killed. */
static int hold_forever(void *arg) {
  (void)arg;
  if (mp_lock_acquire(g_lock, -1) != 0)
    return 1;
  mp_event_set(g_held);
  mp_event_wait(g_go, -1); /* never set */
  return 2;
}

/* Waits for the lock: 42 when told its holder died, then releases it. */
static int acquire_expect_dead(void *arg) {
  (void)arg;
  int rc = mp_lock_acquire(g_lock, -1);
  if (rc != MP_EOWNERDEAD)
    return rc == 0 ? 10 : 11;
  return mp_lock_release(g_lock) == 0 ? 42 : 12;
}

/* The lock a child holds and the events that sequence it. */
static void lock_objs_new(void) {
  assert_int_equal(mp_lock_create(&g_lock), 0);
  assert_int_equal(mp_event_create(&g_held), 0);
  assert_int_equal(mp_event_create(&g_go), 0);
}

static void lock_objs_free(void) {
  mp_event_free(g_go);
  mp_event_free(g_held);
  mp_lock_free(g_lock);
}

static void test_lock_timeout_held_by_other(void **state) {
  (void)state;
  lock_objs_new();
  mp_process *p = mpt_start(hold_until_go, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_lock_acquire(g_lock, 0), MP_ETIMEDOUT);
  double t0 = mpt_now();
  assert_int_equal(mp_lock_acquire(g_lock, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mp_event_set(g_go), 0);
  assert_int_equal(mp_lock_acquire(g_lock, -1), 0); /* released, not dead */
  assert_int_equal(mp_lock_release(g_lock), 0);
  assert_int_equal(mpt_finish(p), 0);
  lock_objs_free();
}

static void test_lock_holder_killed(void **state) {
  (void)state;
  lock_objs_new();

  /* A holder dies; a waiting process gets the lock and is told. */
  mp_process *holder = mpt_start(hold_forever, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  mp_process *waiter = mpt_start(acquire_expect_dead, NULL);
  /* Killed while the waiter is asleep on the lock, not before it gets there. */
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(waiter), 30), 0);
  assert_int_equal(mp_process_kill(holder), 0);
  assert_int_equal(mpt_finish(holder), -SIGKILL);
  assert_int_equal(mpt_finish(waiter), 42);
  /* The waiter released it: the lock works normally again. */
  assert_int_equal(mp_lock_acquire(g_lock, 0), 0);
  assert_int_equal(mp_lock_release(g_lock), 0);

  /* Again, with this process as the one told. */
  assert_int_equal(mp_event_clear(g_held), 0);
  holder = mpt_start(hold_forever, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_lock_acquire(g_lock, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_process_kill(holder), 0);
  assert_int_equal(mpt_finish(holder), -SIGKILL);
  assert_int_equal(mp_lock_acquire(g_lock, 5), MP_EOWNERDEAD);
  assert_int_equal(mp_lock_release(g_lock), 0);
  assert_int_equal(mp_lock_acquire(g_lock, 0), 0);
  assert_int_equal(mp_lock_release(g_lock), 0);

  lock_objs_free();
}

/* A holder that exits without releasing is also reported. */
static int take_and_exit(void *arg) {
  (void)arg;
  return mp_lock_acquire(g_lock, -1) == 0 ? 0 : 1;
}

static void test_lock_holder_exited(void **state) {
  (void)state;
  assert_int_equal(mp_lock_create(&g_lock), 0);
  assert_int_equal(mpt_finish(mpt_start(take_and_exit, NULL)), 0);
  assert_int_equal(mp_lock_acquire(g_lock, -1), MP_EOWNERDEAD);
  assert_int_equal(mp_lock_release(g_lock), 0);
  mp_lock_free(g_lock);
}

/* ---- a process killed between its change and its wakeup ----
 *
 * The killer is armed with mpt_die_at_futex just before the call under
 * test, so it dies at the wakeup that call owes, after its change. The
 * waiter waits forever, and is given 5 s, far more than it needs: a waiter
 * that only a wakeup could wake fails the test then instead of hanging it.
 * (A waiter with a 5 s timeout would pass either way: its last look at the
 * deadline sees the change.) */

#define SKIP_UNLESS_DIE_AT_FUTEX()                                            \
  do {                                                                        \
    if (!mpt_die_at_futex_works())                                            \
      skip();                                                                 \
  } while (0)

/* Holds the lock until g_go, then releases it armed: with a sleeper on the
 * lock, glibc's unlock frees the word and dies at its wakeup. */
static int release_and_die(void *arg) {
  (void)arg;
  if (mp_lock_acquire(g_lock, -1) != 0)
    return 1;
  mp_event_set(g_held);
  if (mp_event_wait(g_go, -1) != 0)
    return 2;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_lock_release(g_lock);
  return 4; /* not killed: nobody slept on the lock */
}

/* Waits for the lock: 42 when it gets it as a plain release. */
static int acquire_plain(void *arg) {
  (void)arg;
  if (mp_lock_acquire(g_lock, -1) != 0)
    return 11;
  return mp_lock_release(g_lock) == 0 ? 42 : 12;
}

static void test_lock_releaser_killed_at_wake(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  lock_objs_new();
  mp_process *holder = mpt_start(release_and_die, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  mp_process *waiter = mpt_start(acquire_plain, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(waiter), 30), 0);
  assert_int_equal(mp_event_set(g_go), 0);
  assert_int_equal(mpt_finish(holder), -SIGSYS);
  assert_int_equal(mpt_finish_within(waiter, 5), 42);
  assert_int_equal(mp_lock_acquire(g_lock, 0), 0);
  assert_int_equal(mp_lock_release(g_lock), 0);
  lock_objs_free();
}

/* ---- Lock.locked(), RLock ---- */

static void test_lock_locked(void **state) {
  (void)state;
  assert_int_equal(mp_lock_locked(NULL), MP_EINVAL);
  assert_int_equal(mp_lock_create(&g_lock), 0);
  assert_int_equal(mp_lock_locked(g_lock), 0);
  assert_int_equal(mp_lock_acquire(g_lock, 0), 0);
  assert_int_equal(mp_lock_locked(g_lock), 1);
  assert_int_equal(mp_lock_release(g_lock), 0);
  assert_int_equal(mp_lock_locked(g_lock), 0);

  /* Held by another process: 1, and reading it takes nothing. */
  assert_int_equal(mp_event_create(&g_held), 0);
  assert_int_equal(mp_event_create(&g_go), 0);
  mp_process *p = mpt_start(hold_until_go, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_lock_locked(g_lock), 1);
  assert_int_equal(mp_event_set(g_go), 0);
  assert_int_equal(mpt_finish(p), 0);
  assert_int_equal(mp_lock_locked(g_lock), 0);

  /* Its holder dies: free (0), and the next acquirer is still told. */
  assert_int_equal(mp_event_clear(g_held), 0);
  assert_int_equal(mp_event_clear(g_go), 0);
  p = mpt_start(hold_forever, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_lock_locked(g_lock), 1);
  assert_int_equal(mp_process_kill(p), 0);
  assert_int_equal(mpt_finish(p), -SIGKILL);
  assert_int_equal(mp_lock_locked(g_lock), 0);
  assert_int_equal(mp_lock_acquire(g_lock, 0), MP_EOWNERDEAD);
  assert_int_equal(mp_lock_release(g_lock), 0);
  lock_objs_free();
}

static void test_rlock_basic(void **state) {
  (void)state;
  mp_rlock *r = NULL;
  assert_int_equal(mp_rlock_create(NULL), MP_EINVAL);
  assert_int_equal(mp_rlock_acquire(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_rlock_release(NULL), MP_EINVAL);
  assert_int_equal(mp_rlock_locked(NULL), MP_EINVAL);
  mp_rlock_free(NULL);
  assert_int_equal(mp_rlock_create(&r), 0);
  assert_int_equal(mp_rlock_locked(r), 0);
  assert_int_equal(mp_rlock_release(r), -EPERM); /* not owned */
  assert_int_equal(mp_rlock_acquire(r, -1), 0);
  assert_int_equal(mp_rlock_acquire(r, 0), 0); /* recursive */
  assert_int_equal(mp_rlock_acquire(r, 5), 0);
  assert_int_equal(mp_rlock_locked(r), 1);
  assert_int_equal(mp_rlock_release(r), 0);
  assert_int_equal(mp_rlock_release(r), 0);
  assert_int_equal(mp_rlock_locked(r), 1); /* one level left */
  assert_int_equal(mp_rlock_release(r), 0);
  assert_int_equal(mp_rlock_locked(r), 0);
  assert_int_equal(mp_rlock_release(r), -EPERM);
  mp_rlock_free(r);
}

/* Takes the rlock three levels deep, says so, holds it until g_go or
 * until killed (arg non-NULL), releasing all three. */
static int rlock_hold(void *arg) {
  for (int i = 0; i < 3; i++)
    if (mp_rlock_acquire(g_rlock, -1) != 0)
      return 1;
  if (mp_rlock_release(g_rlock) != 0) /* two levels held now */
    return 2;
  mp_event_set(g_held);
  if (mp_event_wait(g_go, -1) != 0 || arg)
    return 3;
  for (int i = 0; i < 2; i++)
    if (mp_rlock_release(g_rlock) != 0)
      return 4;
  return 0;
}

static void test_rlock_across_processes(void **state) {
  (void)state;
  assert_int_equal(mp_rlock_create(&g_rlock), 0);
  assert_int_equal(mp_event_create(&g_held), 0);
  assert_int_equal(mp_event_create(&g_go), 0);

  /* Owned by another process: not ours to take or release. */
  mp_process *p = mpt_start(rlock_hold, NULL);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_rlock_locked(g_rlock), 1);
  assert_int_equal(mp_rlock_acquire(g_rlock, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_rlock_release(g_rlock), -EPERM);
  assert_int_equal(mp_event_set(g_go), 0);
  assert_int_equal(mpt_finish(p), 0);
  assert_int_equal(mp_rlock_locked(g_rlock), 0);

  /* Its owner dies two levels deep: the next acquirer is told, and holds
   * it one level deep. */
  assert_int_equal(mp_event_clear(g_held), 0);
  assert_int_equal(mp_event_clear(g_go), 0);
  p = mpt_start(rlock_hold, (void *)1);
  assert_int_equal(mp_event_wait(g_held, -1), 0);
  assert_int_equal(mp_process_kill(p), 0);
  assert_int_equal(mpt_finish(p), -SIGKILL);
  assert_int_equal(mp_rlock_locked(g_rlock), 0);
  assert_int_equal(mp_rlock_acquire(g_rlock, 5), MP_EOWNERDEAD);
  assert_int_equal(mp_rlock_acquire(g_rlock, 0), 0);
  assert_int_equal(mp_rlock_release(g_rlock), 0);
  assert_int_equal(mp_rlock_release(g_rlock), 0);
  assert_int_equal(mp_rlock_locked(g_rlock), 0);
  assert_int_equal(mp_rlock_release(g_rlock), -EPERM);

  mp_event_free(g_go);
  mp_event_free(g_held);
  mp_rlock_free(g_rlock);
}

/* ---- semaphore ---- */

static void test_sem_basic(void **state) {
  (void)state;
  mp_sem *s;
  assert_int_equal(mp_sem_create(&s, 2, 0), 0);
  assert_int_equal(mp_sem_value(s), 2);
  assert_int_equal(mp_sem_acquire(s, 0), 0);
  assert_int_equal(mp_sem_acquire(s, -1), 0);
  assert_int_equal(mp_sem_value(s), 0);
  assert_int_equal(mp_sem_acquire(s, 0), MP_ETIMEDOUT);
  double t0 = mpt_now();
  assert_int_equal(mp_sem_acquire(s, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mp_sem_release(s), 0);
  assert_int_equal(mp_sem_release(s), 0);
  assert_int_equal(mp_sem_release(s), 0); /* unbounded */
  assert_int_equal(mp_sem_value(s), 3);
  mp_sem_free(s);

  assert_int_equal(mp_sem_create(&s, 1, 1), 0); /* BoundedSemaphore(1) */
  assert_int_equal(mp_sem_release(s), MP_ESTATE);
  assert_int_equal(mp_sem_acquire(s, 0), 0);
  assert_int_equal(mp_sem_release(s), 0);
  assert_int_equal(mp_sem_value(s), 1);
  mp_sem_free(s);

  assert_int_equal(mp_sem_create(&s, 0x7fffffffu, 0), 0);
  assert_int_equal(mp_sem_release(s), -EOVERFLOW);
  mp_sem_free(s);
}

/* Takes one unit, waiting as long as it takes. */
static int sem_take(void *arg) {
  (void)arg;
  return mp_sem_acquire(g_sem, -1) == 0 ? 7 : 1;
}

static void test_sem_across_processes(void **state) {
  (void)state;
  assert_int_equal(mp_sem_create(&g_sem, 0, 0), 0);
  mp_process *p[3];
  for (int i = 0; i < 3; i++)
    p[i] = mpt_start(sem_take, NULL);
  /* Each release lets exactly one child through. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(mp_sem_release(g_sem), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(mpt_finish(p[i]), 7);
  assert_int_equal(mp_sem_value(g_sem), 0);
  mp_sem_free(g_sem);
}


/* The change g_wake makes, made armed: it raises the state, then dies at
 * its wakeup's futex call. */
static void (*g_wake)(void);
static int wake_and_die(void *arg) {
  (void)arg;
  if (mpt_die_at_futex() < 0)
    return 3;
  g_wake();
  return 4; /* not killed: nobody was asleep */
}

/* waiter asleep in futex, then a process killed between wake's change and
 * its wakeup: the waiter must still see the change and return code. */
static void waiter_outlives_waker(mp_target_fn waiter, int code,
                                  void (*wake)(void)) {
  g_wake = wake;
  mp_process *w = mpt_start(waiter, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(w), 30), 0);
  assert_int_equal(mpt_finish(mpt_start(wake_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(w, 5), code);
}

static void sem_release_g(void) { mp_sem_release(g_sem); }

static void test_sem_releaser_killed_at_wake(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  assert_int_equal(mp_sem_create(&g_sem, 0, 0), 0);
  waiter_outlives_waker(sem_take, 7, sem_release_g);
  assert_int_equal(mp_sem_value(g_sem), 0);
  mp_sem_free(g_sem);
}

/* ---- event ---- */

static void test_event_basic(void **state) {
  (void)state;
  mp_event *e;
  assert_int_equal(mp_event_create(&e), 0);
  assert_int_equal(mp_event_is_set(e), 0);
  assert_int_equal(mp_event_wait(e, 0), MP_ETIMEDOUT);
  double t0 = mpt_now();
  assert_int_equal(mp_event_wait(e, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mp_event_set(e), 0);
  assert_int_equal(mp_event_is_set(e), 1);
  assert_int_equal(mp_event_wait(e, 0), 0);
  assert_int_equal(mp_event_wait(e, -1), 0);
  assert_int_equal(mp_event_set(e), 0); /* twice: still set */
  assert_int_equal(mp_event_clear(e), 0);
  assert_int_equal(mp_event_is_set(e), 0);
  assert_int_equal(mp_event_wait(e, 0), MP_ETIMEDOUT);
  mp_event_free(e);
}

/* Waits for g_go; 9 when woken by it. */
static int event_waiter(void *arg) {
  (void)arg;
  return mp_event_wait(g_go, -1) == 0 && mp_event_is_set(g_go) == 1 ? 9 : 1;
}

static void test_event_wakes_all(void **state) {
  (void)state;
  assert_int_equal(mp_event_create(&g_go), 0);
  mp_process *p[4];
  for (int i = 0; i < 4; i++)
    p[i] = mpt_start(event_waiter, NULL);
  assert_int_equal(mp_event_set(g_go), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(mpt_finish(p[i]), 9);
  mp_event_free(g_go);
}


static void event_set_g(void) { mp_event_set(g_go); }

static void test_event_setter_killed_at_wake(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  assert_int_equal(mp_event_create(&g_go), 0);
  waiter_outlives_waker(event_waiter, 9, event_set_g);
  mp_event_free(g_go);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_lock_basic),
      MPT_TEST(test_sync_null_args),
      MPT_TEST(test_lock_timeout_held_by_other),
      MPT_TEST(test_lock_holder_killed),
      MPT_TEST(test_lock_holder_exited),
      MPT_TEST(test_lock_releaser_killed_at_wake),
      MPT_TEST(test_lock_locked),
      MPT_TEST(test_rlock_basic),
      MPT_TEST(test_rlock_across_processes),
      MPT_TEST(test_sem_basic),
      MPT_TEST(test_sem_across_processes),
      MPT_TEST(test_sem_releaser_killed_at_wake),
      MPT_TEST(test_event_basic),
      MPT_TEST(test_event_wakes_all),
      MPT_TEST(test_event_setter_killed_at_wake),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
