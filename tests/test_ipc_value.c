/* test_ipc_value.c: mp_value (Value and Array): shared bytes and their
 * robust lock, across processes. Children report through exit codes. */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mp_value *g_v;
static mp_event *g_ev;

static void test_value_basic(void **state) {
  (void)state;
  mp_value *v = NULL;
  assert_int_equal(mp_value_create(&v, sizeof(long double)), 0);
  assert_int_equal(mp_value_size(v), sizeof(long double));
  unsigned char *p = mp_value_ptr(v);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
  for (size_t i = 0; i < sizeof(long double); i++)
    assert_int_equal(p[i], 0); /* zeroed, as Value('d') is 0.0 */
  long double x = 2.5L, y = 0;
  assert_int_equal(mp_value_store(v, &x), 0);
  assert_int_equal(mp_value_load(v, &y), 0);
  assert_true(y == 2.5L);
  assert_int_equal(mp_value_lock(v, 0), 0);
  assert_int_equal(mp_value_lock(v, 0), -EDEADLK);
  assert_int_equal(mp_value_load(v, &y), -EDEADLK); /* we hold it */
  assert_int_equal(mp_value_unlock(v), 0);
  assert_int_equal(mp_value_unlock(v), -EPERM);
  mp_value_free(v);

  assert_int_equal(mp_array_create(&v, 10, sizeof(double)), 0);
  assert_int_equal(mp_value_size(v), 10 * sizeof(double));
  double *d = mp_value_ptr(v);
  for (int i = 0; i < 10; i++)
    assert_true(d[i] == 0.0);
  mp_value_free(v);
  mp_value_free(NULL);
}

static void test_value_errors(void **state) {
  (void)state;
  mp_value *v = NULL;
  assert_int_equal(mp_value_create(NULL, 4), MP_EINVAL);
  assert_int_equal(mp_value_create(&v, 0), MP_EINVAL);
  assert_int_equal(mp_value_create(&v, SIZE_MAX), MP_EINVAL);
  assert_int_equal(mp_array_create(NULL, 1, 1), MP_EINVAL);
  assert_int_equal(mp_array_create(&v, 0, 4), MP_EINVAL);
  assert_int_equal(mp_array_create(&v, 4, 0), MP_EINVAL);
  /* n * elem_size overflows */
  assert_int_equal(mp_array_create(&v, SIZE_MAX / 2, 4), MP_EINVAL);
  assert_null(v);
  assert_null(mp_value_ptr(NULL));
  assert_int_equal(mp_value_size(NULL), 0);
  assert_int_equal(mp_value_lock(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_value_unlock(NULL), MP_EINVAL);
  int x = 0;
  assert_int_equal(mp_value_load(NULL, &x), MP_EINVAL);
  assert_int_equal(mp_value_store(NULL, &x), MP_EINVAL);
  assert_int_equal(mp_value_create(&v, sizeof x), 0);
  assert_int_equal(mp_value_load(v, NULL), MP_EINVAL);
  assert_int_equal(mp_value_store(v, NULL), MP_EINVAL);
  mp_value_free(v);
}

enum { NPROC = 4, INCR = 5000 };

/* counter.value += 1 under its lock, INCR times; [1] counts elements of the
 * array the same way. */
static int add_many(void *arg) {
  (void)arg;
  long *c = mp_value_ptr(g_v);
  for (int i = 0; i < INCR; i++) {
    if (mp_value_lock(g_v, -1) != 0)
      return 1;
    long t = c[0];
    c[0] = t + 1;
    c[1] += 2;
    if (mp_value_unlock(g_v) != 0)
      return 2;
  }
  return 0;
}

static void test_value_shared_counter(void **state) {
  (void)state;
  assert_int_equal(mp_array_create(&g_v, 2, sizeof(long)), 0);
  mp_process *p[NPROC];
  for (int i = 0; i < NPROC; i++)
    p[i] = mpt_start(add_many, NULL);
  for (int i = 0; i < NPROC; i++)
    assert_int_equal(mpt_finish(p[i]), 0);
  long c[2];
  assert_int_equal(mp_value_load(g_v, c), 0);
  assert_int_equal(c[0], NPROC * INCR);
  assert_int_equal(c[1], 2L * NPROC * INCR);
  mp_value_free(g_v);
}

/* Holds the value's lock, half-way through an update, and is killed. */
static int die_holding(void *arg) {
  (void)arg;
  if (mp_value_lock(g_v, -1) != 0)
    return 1;
  *(int *)mp_value_ptr(g_v) = 99;
  mp_event_set(g_ev);
  raise(SIGKILL);
  return 2;
}

/* Tries the lock held by the parent: 0 when it times out as it should. */
static int try_lock(void *arg) {
  (void)arg;
  int rc = mp_value_lock(g_v, 0.02);
  return rc == MP_ETIMEDOUT ? 0 : 1;
}

static void test_value_lock_robust_and_timed(void **state) {
  (void)state;
  assert_int_equal(mp_value_create(&g_v, sizeof(int)), 0);
  assert_int_equal(mp_event_create(&g_ev), 0);
  mp_process *p = mpt_start(die_holding, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_equal(mpt_finish(p), -SIGKILL);
  assert_int_equal(mp_value_lock(g_v, 5), MP_EOWNERDEAD);
  assert_int_equal(*(int *)mp_value_ptr(g_v), 99); /* what it had written */
  assert_int_equal(mp_value_unlock(g_v), 0);
  int x = 0;
  assert_int_equal(mp_value_load(g_v, &x), 0); /* normal again */
  assert_int_equal(x, 99);

  assert_int_equal(mp_value_lock(g_v, -1), 0);
  assert_int_equal(mpt_finish(mpt_start(try_lock, NULL)), 0);
  assert_int_equal(mp_value_unlock(g_v), 0);

  mp_event_free(g_ev);
  mp_value_free(g_v);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_value_basic),
      MPT_TEST(test_value_errors),
      MPT_TEST(test_value_shared_counter),
      MPT_TEST(test_value_lock_robust_and_timed),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
