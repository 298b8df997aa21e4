/* test_ipc_queue.c: mp_queue within a process, between mp_process children,
 * and in pool workers. Run with the argument "stress" for 4 producers and 4
 * consumers passing a million messages (its own ctest, test_ipc_queue_stress).
 * Children report through exit codes; processes are sequenced by queues and
 * events. */
#include "fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mp_queue *g_q;
static mp_event *g_ev;

static void test_queue_fifo_and_sizes(void **state) {
  (void)state;
  mp_queue *q = NULL;
  assert_int_equal(mp_queue_create(&q, 4, 16), 0);
  assert_int_equal(mp_queue_max_msg(q), 16);
  assert_int_equal(mp_queue_size(q), 0);
  assert_int_equal(mp_queue_put(q, "a", 1, 0), 0);
  assert_int_equal(mp_queue_put(q, "bb", 2, 0), 0);
  assert_int_equal(mp_queue_put(q, NULL, 0, 0), 0); /* empty message */
  assert_int_equal(mp_queue_put(q, "0123456789abcdef", 16, 0), 0);
  assert_int_equal(mp_queue_size(q), 4);
  assert_int_equal(mp_queue_put(q, "x", 1, 0), MP_ETIMEDOUT); /* full */

  char buf[32] = {0};
  assert_int_equal(mp_queue_get(q, buf, sizeof buf, 0), 1);
  assert_memory_equal(buf, "a", 1);
  assert_int_equal(mp_queue_get(q, buf, 1, 0), -EMSGSIZE); /* "bb" stays */
  assert_int_equal(mp_queue_size(q), 3);
  assert_int_equal(mp_queue_get(q, buf, 2, 0), 2);
  assert_memory_equal(buf, "bb", 2);
  assert_int_equal(mp_queue_get(q, NULL, 0, 0), 0);
  assert_int_equal(mp_queue_get(q, buf, sizeof buf, -1), 16);
  assert_memory_equal(buf, "0123456789abcdef", 16);
  assert_int_equal(mp_queue_get(q, buf, sizeof buf, 0), MP_ETIMEDOUT);

  /* Wrap around the ring several times. */
  for (int i = 0; i < 50; i++) {
    assert_int_equal(mp_queue_put(q, &i, sizeof i, 0), 0);
    if (i % 3 == 2)
      for (int k = 0; k < 3; k++) {
        int v;
        assert_int_equal(mp_queue_get(q, &v, sizeof v, 0), sizeof v);
        assert_int_equal(v, i - 2 + k);
      }
  }
  mp_queue_free(q);
}

static void test_queue_errors(void **state) {
  (void)state;
  mp_queue *q = NULL;
  assert_int_equal(mp_queue_create(NULL, 1, 1), MP_EINVAL);
  assert_int_equal(mp_queue_create(&q, 0, 1), MP_EINVAL);
  assert_int_equal(mp_queue_create(&q, (size_t)1 << 40, 1), MP_EINVAL);
  assert_int_equal(mp_queue_create(&q, 1, (size_t)1 << 40), MP_EINVAL);
  /* 2^31 slots of 2 GiB: no address space holds it. mmap says ENOMEM
   * (EINVAL under valgrind, which has its own address-space manager). */
  int rc = mp_queue_create(&q, 0x7fffffff, 0x7fffffff);
  assert_true(rc == -ENOMEM || rc == -EINVAL);
  assert_null(q);
  assert_int_equal(mp_queue_create(&q, 2, 8), 0);
  char buf[16];
  assert_int_equal(mp_queue_put(NULL, "x", 1, 0), MP_EINVAL);
  assert_int_equal(mp_queue_put(q, NULL, 1, 0), MP_EINVAL);
  assert_int_equal(mp_queue_put(q, buf, 9, 0), -EMSGSIZE); /* oversize */
  assert_int_equal(mp_queue_get(NULL, buf, 1, 0), MP_EINVAL);
  assert_int_equal(mp_queue_get(q, NULL, 1, 0), MP_EINVAL);
  assert_int_equal(mp_queue_size(NULL), MP_EINVAL);
  assert_int_equal(mp_queue_max_msg(NULL), 0);
  assert_int_equal(mp_queue_size(q), 0);
  mp_queue_free(q);
  mp_queue_free(NULL);
}

static void test_queue_timeouts(void **state) {
  (void)state;
  mp_queue *q;
  assert_int_equal(mp_queue_create(&q, 1, 4), 0);
  int v = 5;
  double t0 = mpt_now();
  assert_int_equal(mp_queue_get(q, &v, sizeof v, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mp_queue_put(q, &v, sizeof v, 0.05), 0);
  t0 = mpt_now();
  assert_int_equal(mp_queue_put(q, &v, sizeof v, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  assert_int_equal(mp_queue_size(q), 1);
  mp_queue_free(q);
}

/* Blocks in get until the parent puts; returns the value it got. */
static int get_one(void *arg) {
  (void)arg;
  int v = 0;
  mp_event_set(g_ev);
  return mp_queue_get(g_q, &v, sizeof v, -1) == sizeof v ? v : 1;
}

/* Fills the queue (capacity 1), then blocks putting a second message. */
static int put_two(void *arg) {
  (void)arg;
  int a = 11, b = 22;
  if (mp_queue_put(g_q, &a, sizeof a, -1) != 0)
    return 1;
  mp_event_set(g_ev);
  return mp_queue_put(g_q, &b, sizeof b, -1) == 0 ? 0 : 2;
}

static void test_queue_blocking_wakeups(void **state) {
  (void)state;
  assert_int_equal(mp_queue_create(&g_q, 1, sizeof(int)), 0);
  assert_int_equal(mp_event_create(&g_ev), 0);

  mp_process *p = mpt_start(get_one, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0); /* asleep in get */
  int v = 77;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, -1), 0);
  assert_int_equal(mpt_finish(p), 77);

  assert_int_equal(mp_event_clear(g_ev), 0);
  p = mpt_start(put_two, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0); /* asleep in put */
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, -1), sizeof v);
  assert_int_equal(v, 11);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, -1), sizeof v);
  assert_int_equal(v, 22);
  assert_int_equal(mpt_finish(p), 0);

  mp_event_free(g_ev);
  mp_queue_free(g_q);
}

/* A worker's result: who computed what. */
typedef struct result {
  int who;
  int value;
} result;

static int compute(void *arg) {
  int who = (int)(intptr_t)arg;
  result r = {who, who * who};
  return mp_queue_put(g_q, &r, sizeof r, -1) == 0 ? 0 : 1;
}

static void test_queue_collects_results(void **state) {
  (void)state;
  enum { N = 6 };
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(result)), 0);
  mp_process *p[N];
  for (int i = 0; i < N; i++)
    p[i] = mpt_start(compute, (void *)(intptr_t)i);
  int seen[N] = {0};
  for (int i = 0; i < N; i++) {
    result r;
    assert_int_equal(mp_queue_get(g_q, &r, sizeof r, 30), sizeof r);
    assert_true(r.who >= 0 && r.who < N);
    assert_int_equal(r.value, r.who * r.who);
    seen[r.who]++;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(seen[i], 1);
    assert_int_equal(mpt_finish(p[i]), 0);
  }
  assert_int_equal(mp_queue_size(g_q), 0);
  mp_queue_free(g_q);
}

/* A consumer killed while it waits in get does not wedge the queue. */
static void test_queue_consumer_killed(void **state) {
  (void)state;
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(int)), 0);
  assert_int_equal(mp_event_create(&g_ev), 0);
  mp_process *p = mpt_start(get_one, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0); /* asleep in get */
  assert_int_equal(mp_process_kill(p), 0);
  assert_int_equal(mpt_finish(p), -SIGKILL);
  int v = 5;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 0), sizeof v);
  assert_int_equal(mp_event_clear(g_ev), 0);
  p = mpt_start(get_one, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0);
  v = 33;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, -1), 0);
  assert_int_equal(mpt_finish(p), 33);
  mp_event_free(g_ev);
  mp_queue_free(g_q);
}

/* ---- a process killed between its commit and its wakeup ----
 *
 * The victim is armed with mpt_die_at_futex just before the call under
 * test, so it dies at the first futex call that call makes. Whoever waits
 * beside it waits forever and is given 5 s, far more than it needs: a wait
 * that only a wakeup could end fails the test then instead of hanging. */

#define SKIP_UNLESS_DIE_AT_FUTEX()                                            \
  do {                                                                        \
    if (!mpt_die_at_futex_works())                                            \
      skip();                                                                 \
  } while (0)

/* Puts 2 into the full queue, waiting as long as it takes. */
static int put_2(void *arg) {
  (void)arg;
  int v = 2;
  return mp_queue_put(g_q, &v, sizeof v, -1) == 0 ? 0 : 11;
}

/* Gets armed: dies at its first futex call, wherever that is in get. */
static int get_and_die(void *arg) {
  (void)arg;
  int v = 0;
  if (mpt_die_at_futex() < 0)
    return 3;
  int rc = mp_queue_get(g_q, &v, sizeof v, -1);
  return rc == sizeof v ? 100 + v : 4; /* not killed */
}

/* A consumer killed inside get, at the wakeup it owes a producer asleep on
 * the full queue: the message it was taking is still there for the next
 * consumer, and the producer then gets in. */
static void test_queue_get_killed_at_wake_keeps_message(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  assert_int_equal(mp_queue_create(&g_q, 1, sizeof(int)), 0);
  int v = 1;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  mp_process *prod = mpt_start(put_2, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(prod), 30), 0);
  assert_int_equal(mpt_finish(mpt_start(get_and_die, NULL)), -SIGSYS);
  v = 0;
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 5), sizeof v);
  assert_int_equal(v, 1); /* not lost with the killed consumer */
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 5), sizeof v);
  assert_int_equal(v, 2);
  assert_int_equal(mpt_finish_within(prod, 5), 0);
  assert_int_equal(mp_queue_size(g_q), 0);
  mp_queue_free(g_q);
}


/* Puts 7 armed: commits, then dies at the wakeup it owes the consumer. */
static int put_7_and_die(void *arg) {
  (void)arg;
  int v = 7;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_queue_put(g_q, &v, sizeof v, -1);
  return 4; /* not killed */
}

/* A producer killed after its commit, at the wakeup it owes a consumer
 * asleep on the empty queue: the consumer still gets the message. */
static void test_queue_put_killed_at_wake_consumer_gets(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  assert_int_equal(mp_queue_create(&g_q, 1, sizeof(int)), 0);
  assert_int_equal(mp_event_create(&g_ev), 0);
  mp_process *cons = mpt_start(get_one, NULL);
  assert_int_equal(mp_event_wait(g_ev, -1), 0);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(cons), 30), 0);
  assert_int_equal(mpt_finish(mpt_start(put_7_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(cons, 5), 7);
  assert_int_equal(mp_queue_size(g_q), 0);
  mp_event_free(g_ev);
  mp_queue_free(g_q);
}

/* A numbered message of the random-kill and stress tests. */
typedef struct item {
  uint32_t prod;
  uint32_t seq;
} item;

#define STOP UINT32_MAX

/* ---- processes killed at random while others go on ----
 *
 * Two producer lanes and two consumer lanes on a small queue, so they often
 * sleep on it; every STEP messages one of them is SIGKILLed wherever it is
 * and a new process takes its lane. Then every message is accounted for:
 * none twice, none corrupt, and none missing but those the header lets a
 * killed process take with it: a producer's message in flight when it died
 * (its lane then skips that number), and at most one per consumer killed
 * while in get or before it could record what get returned. Progress is
 * required within 5 s after each kill, so a wedged sleeper fails the test. */

enum { RK_LANES = 2, RK_MAXSEQ = 1 << 20, RK_STEP = 500 };

typedef struct rk_shared {
  _Atomic uint32_t next[RK_LANES];   /* producer lane: the number it puts */
  _Atomic uint32_t in_get[RK_LANES]; /* consumer lane: between get and record */
  _Atomic uint64_t received;
  _Atomic uint32_t stop;
  _Atomic uint32_t bad;
  _Atomic uint8_t seen[]; /* [lane * RK_MAXSEQ + seq] */
} rk_shared;

static rk_shared *g_rk;

static int rk_producer(void *arg) {
  uint32_t lane = (uint32_t)(intptr_t)arg;
  while (!atomic_load(&g_rk->stop)) {
    item it = {lane, atomic_load(&g_rk->next[lane])};
    if (it.seq >= RK_MAXSEQ)
      return 2;
    if (mp_queue_put(g_q, &it, sizeof it, -1) != 0)
      return 1;
    atomic_store(&g_rk->next[lane], it.seq + 1);
  }
  return 0;
}

static int rk_consumer(void *arg) {
  uint32_t lane = (uint32_t)(intptr_t)arg;
  for (;;) {
    item it;
    atomic_store(&g_rk->in_get[lane], 1);
    if (mp_queue_get(g_q, &it, sizeof it, -1) != sizeof it)
      return 1;
    if (it.prod == STOP)
      return 0;
    if (it.prod >= RK_LANES || it.seq >= RK_MAXSEQ)
      atomic_fetch_add(&g_rk->bad, 1);
    else
      atomic_fetch_add(&g_rk->seen[(size_t)it.prod * RK_MAXSEQ + it.seq], 1);
    atomic_fetch_add(&g_rk->received, 1);
    atomic_store(&g_rk->in_get[lane], 0);
  }
}

/* Wait until more than `since` messages were received: 1, or 0 after 5 s. */
static int rk_progress(uint64_t since) {
  double end = mpt_now() + 5;
  struct timespec tick = {0, 1000000};
  while (atomic_load(&g_rk->received) <= since)
    if (mpt_now() > end)
      return 0;
    else
      nanosleep(&tick, NULL);
  return 1;
}

static void test_queue_random_kills_accounted(void **state) {
  (void)state;
  int nkill = mpt_under_tool() ? 20 : 200;
  mp_shm *shm;
  size_t seen_len = (size_t)RK_LANES * RK_MAXSEQ;
  assert_int_equal(mp_shm_create(&shm, NULL, sizeof *g_rk + seen_len), 0);
  g_rk = mp_shm_ptr(shm);
  assert_int_equal(mp_queue_create(&g_q, 8, sizeof(item)), 0);
  /* Numbers a killed producer may or may not have put, one per kill. */
  uint32_t skipped[RK_LANES][64];
  int nskipped[RK_LANES] = {0};
  int may_lose = 0;

  mp_process *prod[RK_LANES], *cons[RK_LANES];
  for (intptr_t i = 0; i < RK_LANES; i++) {
    cons[i] = mpt_start(rk_consumer, (void *)i);
    prod[i] = mpt_start(rk_producer, (void *)i);
  }
  unsigned seed = 12345;
  for (int k = 0; k < nkill; k++) {
    uint64_t before = atomic_load(&g_rk->received);
    assert_true(rk_progress(before + RK_STEP));
    int lane = rand_r(&seed) % RK_LANES;
    if (k % 2 == 0) {
      assert_int_equal(mp_process_kill(prod[lane]), 0);
      assert_int_equal(mpt_finish(prod[lane]), -SIGKILL);
      uint32_t s = atomic_load(&g_rk->next[lane]);
      skipped[lane][nskipped[lane]++] = s;
      atomic_store(&g_rk->next[lane], s + 1);
      prod[lane] = mpt_start(rk_producer, (void *)(intptr_t)lane);
    } else {
      assert_int_equal(mp_process_kill(cons[lane]), 0);
      assert_int_equal(mpt_finish(cons[lane]), -SIGKILL);
      may_lose += atomic_load(&g_rk->in_get[lane]) != 0;
      atomic_store(&g_rk->in_get[lane], 0);
      cons[lane] = mpt_start(rk_consumer, (void *)(intptr_t)lane);
    }
  }
  atomic_store(&g_rk->stop, 1);
  for (int i = 0; i < RK_LANES; i++)
    assert_int_equal(mpt_finish_within(prod[i], 10), 0);
  item stop = {STOP, 0};
  for (int i = 0; i < RK_LANES; i++)
    assert_int_equal(mp_queue_put(g_q, &stop, sizeof stop, 10), 0);
  for (int i = 0; i < RK_LANES; i++)
    assert_int_equal(mpt_finish_within(cons[i], 10), 0);

  assert_int_equal(atomic_load(&g_rk->bad), 0);
  int missing = 0, dup = 0;
  for (int p = 0; p < RK_LANES; p++)
    for (uint32_t i = 0; i < atomic_load(&g_rk->next[p]); i++) {
      uint8_t c = atomic_load(&g_rk->seen[(size_t)p * RK_MAXSEQ + i]);
      int skip = 0;
      for (int j = 0; j < nskipped[p]; j++)
        skip |= skipped[p][j] == i;
      dup += c > 1;
      missing += c == 0 && !skip;
    }
  assert_int_equal(dup, 0);
  if (missing > may_lose)
    fail_msg("%d messages lost; %d consumers were killed in or just after get",
             missing, may_lose);
  assert_int_equal(mp_queue_size(g_q), 0);
  mp_queue_free(g_q);
  mp_shm_free(shm);
}

/* ---- JoinableQueue: task_done, join ---- */

static void test_queue_task_done_join(void **state) {
  (void)state;
  mp_queue *q;
  assert_int_equal(mp_queue_create(&q, 4, sizeof(int)), 0);
  assert_int_equal(mp_queue_join(q, 0), 0); /* nothing unfinished */
  assert_int_equal(mp_queue_task_done(q), MP_ESTATE);
  for (int i = 0; i < 3; i++)
    assert_int_equal(mp_queue_put(q, &i, sizeof i, 0), 0);
  assert_int_equal(mp_queue_join(q, 0), MP_ETIMEDOUT);
  double t0 = mpt_now();
  assert_int_equal(mp_queue_join(q, 0.05), MP_ETIMEDOUT);
  assert_true(mpt_now() - t0 >= 0.049);
  int v;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(mp_queue_get(q, &v, sizeof v, 0), sizeof v);
    assert_int_equal(mp_queue_join(q, 0), MP_ETIMEDOUT); /* got, not done */
    assert_int_equal(mp_queue_task_done(q), 0);
  }
  assert_int_equal(mp_queue_join(q, 0), 0);
  assert_int_equal(mp_queue_join(q, -1), 0);
  assert_int_equal(mp_queue_task_done(q), MP_ESTATE); /* Python's ValueError */
  /* task_done may run ahead of get (Python counts puts, not gets). */
  assert_int_equal(mp_queue_put(q, &v, sizeof v, 0), 0);
  assert_int_equal(mp_queue_task_done(q), 0);
  assert_int_equal(mp_queue_join(q, 0), 0);
  assert_int_equal(mp_queue_get(q, &v, sizeof v, 0), sizeof v);
  assert_int_equal(mp_queue_task_done(NULL), MP_EINVAL);
  assert_int_equal(mp_queue_join(NULL, 0), MP_EINVAL);
  mp_queue_free(q);
}

/* Gets every task and marks it done; exits at MP_ECLOSED with the number
 * it did. */
static int worker_done(void *arg) {
  (void)arg;
  int v, n = 0;
  for (;;) {
    int rc = mp_queue_get(g_q, &v, sizeof v, -1);
    if (rc == MP_ECLOSED)
      return n;
    if (rc != sizeof v || mp_queue_task_done(g_q) != 0)
      return 200;
    n++;
  }
}

static int join_forever(void *arg) {
  (void)arg;
  int rc = mp_queue_join(g_q, -1);
  return rc == 0 ? 50 : rc == MP_ECLOSED ? 51 : 1;
}

/* The CPython pattern: workers get and mark done, the producer joins,
 * then shuts the queue down so the workers stop. And a joiner asleep in
 * another process wakes when the last task is done. */
static void test_queue_join_across_processes(void **state) {
  (void)state;
  enum { N = 200, W = 3 };
  assert_int_equal(mp_queue_create(&g_q, 8, sizeof(int)), 0);
  mp_process *w[W];
  for (int i = 0; i < W; i++)
    w[i] = mpt_start(worker_done, NULL);
  mp_process *j = mpt_start(join_forever, NULL);
  for (int i = 0; i < N; i++)
    assert_int_equal(mp_queue_put(g_q, &i, sizeof i, 30), 0);
  assert_int_equal(mp_queue_join(g_q, 30), 0);
  assert_int_equal(mpt_finish_within(j, 5), 50);
  assert_int_equal(mp_queue_close(g_q), 0);
  int done = 0;
  for (int i = 0; i < W; i++)
    done += mpt_finish_within(w[i], 5);
  assert_int_equal(done, N);
  mp_queue_free(g_q);
}

/* Gets one task, says so, and is killed before task_done. */
static int get_and_hang(void *arg) {
  (void)arg;
  int v;
  if (mp_queue_get(g_q, &v, sizeof v, -1) != sizeof v)
    return 1;
  mp_event_set(g_ev);
  for (;;)
    pause();
}

/* As the header says: a consumer killed between get and task_done leaves
 * its task unfinished; join times out until someone marks it done on its
 * behalf (or shuts the queue down immediately). */
static void test_queue_join_consumer_killed(void **state) {
  (void)state;
  assert_int_equal(mp_queue_create(&g_q, 4, sizeof(int)), 0);
  assert_int_equal(mp_event_create(&g_ev), 0);
  int v = 1;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  mp_process *c = mpt_start(get_and_hang, NULL);
  assert_int_equal(mp_event_wait(g_ev, 30), 0);
  assert_int_equal(mp_process_kill(c), 0);
  assert_int_equal(mpt_finish(c), -SIGKILL);
  assert_int_equal(mp_queue_size(g_q), 0);
  assert_int_equal(mp_queue_join(g_q, 0.05), MP_ETIMEDOUT);
  assert_int_equal(mp_queue_task_done(g_q), 0); /* on the dead one's behalf */
  assert_int_equal(mp_queue_join(g_q, 0), 0);

  /* Or: a joiner waits for it, until an immediate shutdown. */
  assert_int_equal(mp_event_clear(g_ev), 0);
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  c = mpt_start(get_and_hang, NULL);
  assert_int_equal(mp_event_wait(g_ev, 30), 0);
  assert_int_equal(mp_process_kill(c), 0);
  assert_int_equal(mpt_finish(c), -SIGKILL);
  mp_process *j = mpt_start(join_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(j), 30), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 1), 0);
  assert_int_equal(mpt_finish_within(j, 5), 51);
  mp_event_free(g_ev);
  mp_queue_free(g_q);
}

/* ---- close and shutdown (Python 3.13's Queue.shutdown) ---- */

static int put_forever(void *arg) {
  (void)arg;
  int v = 9;
  int rc = mp_queue_put(g_q, &v, sizeof v, -1);
  return rc == MP_ECLOSED ? 60 : rc == 0 ? 61 : 1;
}

static int get_forever(void *arg) {
  (void)arg;
  int v;
  int rc = mp_queue_get(g_q, &v, sizeof v, -1);
  return rc == MP_ECLOSED ? 70 : rc == sizeof v ? 71 : 1;
}

static void test_queue_shutdown_drains(void **state) {
  (void)state;
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(int)), 0);
  int v = 1;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  /* A producer asleep on the full queue is woken and refused. */
  mp_process *p = mpt_start(put_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 0), 0);
  assert_int_equal(mpt_finish_within(p, 5), 60);
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), MP_ECLOSED);
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, -1), MP_ECLOSED);
  /* Gets drain what is left, then fail. */
  assert_int_equal(mp_queue_size(g_q), 2);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 0), sizeof v);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, -1), sizeof v);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, -1), MP_ECLOSED);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 0), MP_ECLOSED);
  /* join still counts: two got, none done. */
  assert_int_equal(mp_queue_join(g_q, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_queue_task_done(g_q), 0);
  assert_int_equal(mp_queue_task_done(g_q), 0);
  assert_int_equal(mp_queue_join(g_q, 0), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 0), 0); /* again: no change */
  mp_queue_free(g_q);

  /* close is shutdown(0); a consumer asleep on the empty queue wakes. */
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(int)), 0);
  p = mpt_start(get_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0);
  assert_int_equal(mp_queue_close(g_q), 0);
  assert_int_equal(mpt_finish_within(p, 5), 70);
  assert_int_equal(mp_queue_close(NULL), MP_EINVAL);
  assert_int_equal(mp_queue_shutdown(NULL, 0), MP_EINVAL);
  mp_queue_free(g_q);
}

static void test_queue_shutdown_immediate(void **state) {
  (void)state;
  assert_int_equal(mp_queue_create(&g_q, 4, sizeof(int)), 0);
  int v = 1;
  for (int i = 0; i < 3; i++)
    assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 0), sizeof v);
  mp_process *j = mpt_start(join_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(j), 30), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 0), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 1), 0); /* 0 then 1: allowed */
  assert_int_equal(mpt_finish_within(j, 5), 51);
  assert_int_equal(mp_queue_size(g_q), 0); /* the two queued: discarded */
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, -1), MP_ECLOSED);
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, -1), MP_ECLOSED);
  assert_int_equal(mp_queue_join(g_q, -1), MP_ECLOSED);
  /* The one got before is still unfinished; the discarded count as done. */
  assert_int_equal(mp_queue_task_done(g_q), 0);
  assert_int_equal(mp_queue_task_done(g_q), MP_ESTATE);
  assert_int_equal(mp_queue_shutdown(g_q, 0), 0); /* cannot be undone */
  assert_int_equal(mp_queue_join(g_q, 0), MP_ECLOSED);
  mp_queue_free(g_q);

  /* A consumer asleep on the empty queue wakes too. */
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(int)), 0);
  mp_process *p = mpt_start(get_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(p), 30), 0);
  assert_int_equal(mp_queue_shutdown(g_q, 1), 0);
  assert_int_equal(mpt_finish_within(p, 5), 70);
  mp_queue_free(g_q);
}

/* ---- killed between the change and the wakeup it owes ---- */

static int task_done_and_die(void *arg) {
  (void)arg;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_queue_task_done(g_q);
  return 4; /* not killed: nobody joined */
}

static int shutdown_and_die(void *arg) {
  (void)arg;
  if (mpt_die_at_futex() < 0)
    return 3;
  mp_queue_shutdown(g_q, 0);
  return 4;
}

static void test_queue_join_shutdown_killed_at_wake(void **state) {
  (void)state;
  SKIP_UNLESS_DIE_AT_FUTEX();
  assert_int_equal(mp_queue_create(&g_q, 2, sizeof(int)), 0);
  int v = 1;
  assert_int_equal(mp_queue_put(g_q, &v, sizeof v, 0), 0);
  assert_int_equal(mp_queue_get(g_q, &v, sizeof v, 0), sizeof v);
  mp_process *j = mpt_start(join_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(j), 30), 0);
  assert_int_equal(mpt_finish(mpt_start(task_done_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(j, 5), 50);

  mp_process *c = mpt_start(get_forever, NULL);
  assert_int_not_equal(mpt_wait_in_futex(mp_process_pid(c), 30), 0);
  assert_int_equal(mpt_finish(mpt_start(shutdown_and_die, NULL)), -SIGSYS);
  assert_int_equal(mpt_finish_within(c, 5), 70);
  mp_queue_free(g_q);
}

/* ---- pool workers ---- */

static int put_double(const void *in, void *out) {
  int x = *(const int *)in;
  int y = 2 * x;
  *(int *)out = y;
  return mp_queue_put(g_q, &y, sizeof y, -1) == 0 ? 0 : 1;
}

static int apply_put(const void *arg, size_t len, mp_buf *res) {
  (void)res;
  return mp_queue_put(g_q, arg, len, -1) == 0 ? 0 : 1;
}

static void test_queue_in_pool_workers(void **state) {
  (void)state;
  enum { N = 40 };
  /* Room for every message: the workers never block on a full queue while
   * the parent waits in map. */
  assert_int_equal(mp_queue_create(&g_q, N + 1, sizeof(int)), 0);
  mp_pool *pool = NULL;
  assert_int_equal(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}), 0);
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  assert_int_equal(mp_pool_map(pool, put_double, in, N, sizeof *in, out,
                               sizeof *out, NULL),
                   0);
  int seen[N] = {0};
  for (int i = 0; i < N; i++) {
    int y;
    assert_int_equal(mp_queue_get(g_q, &y, sizeof y, 30), sizeof y);
    assert_true(y >= 0 && y < 2 * N && y % 2 == 0);
    seen[y / 2]++;
    assert_int_equal(out[i], 2 * i);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);

  int v = -9;
  void *res = NULL;
  size_t res_len = 0;
  assert_int_equal(mp_pool_apply(pool, apply_put, &v, sizeof v, &res, &res_len,
                                 NULL),
                   0);
  free(res);
  int got = 0;
  assert_int_equal(mp_queue_get(g_q, &got, sizeof got, 30), sizeof got);
  assert_int_equal(got, -9);
  assert_int_equal(mp_queue_size(g_q), 0);
  assert_int_equal(mp_pool_close(pool), 0);
  assert_int_equal(mp_pool_join(pool), 0);
  mp_pool_free(pool);
  mp_queue_free(g_q);
}

/* ---- stress: 4 producers, 4 consumers, 250,000 messages each ---- */

enum { NPROD = 4, NCONS = 4, PER_PROD = 250000 };

/* seen[prod * PER_PROD + seq]: how often each message was consumed. */
static _Atomic uint8_t *g_seen;
static _Atomic uint32_t *g_bad;

static int producer(void *arg) {
  item it = {(uint32_t)(intptr_t)arg, 0};
  for (; it.seq < PER_PROD; it.seq++)
    if (mp_queue_put(g_q, &it, sizeof it, -1) != 0)
      return 1;
  return 0;
}

static int consumer(void *arg) {
  (void)arg;
  for (;;) {
    item it;
    if (mp_queue_get(g_q, &it, sizeof it, -1) != sizeof it)
      return 1;
    if (it.prod == STOP)
      return 0;
    if (it.prod >= NPROD || it.seq >= PER_PROD) {
      atomic_fetch_add(g_bad, 1);
      continue;
    }
    atomic_fetch_add(&g_seen[(size_t)it.prod * PER_PROD + it.seq], 1);
  }
}

static void test_queue_4x4_million(void **state) {
  (void)state;
  mp_shm *shm;
  size_t n = (size_t)NPROD * PER_PROD;
  assert_int_equal(mp_shm_create(&shm, NULL, n + 64), 0);
  g_bad = mp_shm_ptr(shm);
  g_seen = (_Atomic uint8_t *)((char *)mp_shm_ptr(shm) + 64);
  assert_int_equal(mp_queue_create(&g_q, 1024, sizeof(item)), 0);

  mp_process *prod[NPROD], *cons[NCONS];
  for (int i = 0; i < NCONS; i++)
    cons[i] = mpt_start(consumer, NULL);
  for (int i = 0; i < NPROD; i++)
    prod[i] = mpt_start(producer, (void *)(intptr_t)i);
  for (int i = 0; i < NPROD; i++)
    assert_int_equal(mpt_finish(prod[i]), 0);
  item stop = {STOP, 0};
  for (int i = 0; i < NCONS; i++)
    assert_int_equal(mp_queue_put(g_q, &stop, sizeof stop, -1), 0);
  for (int i = 0; i < NCONS; i++)
    assert_int_equal(mpt_finish(cons[i]), 0);

  assert_int_equal(atomic_load(g_bad), 0);
  size_t missing = 0, dup = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = atomic_load(&g_seen[i]);
    missing += c == 0;
    dup += c > 1;
  }
  assert_int_equal(missing, 0);
  assert_int_equal(dup, 0);
  assert_int_equal(mp_queue_size(g_q), 0);
  mp_queue_free(g_q);
  mp_shm_free(shm);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_queue_fifo_and_sizes),
      MPT_TEST(test_queue_errors),
      MPT_TEST(test_queue_timeouts),
      MPT_TEST(test_queue_blocking_wakeups),
      MPT_TEST(test_queue_collects_results),
      MPT_TEST(test_queue_consumer_killed),
      MPT_TEST(test_queue_get_killed_at_wake_keeps_message),
      MPT_TEST(test_queue_put_killed_at_wake_consumer_gets),
      MPT_TEST(test_queue_random_kills_accounted),
      MPT_TEST(test_queue_in_pool_workers),
      MPT_TEST(test_queue_task_done_join),
      MPT_TEST(test_queue_join_across_processes),
      MPT_TEST(test_queue_join_consumer_killed),
      MPT_TEST(test_queue_shutdown_drains),
      MPT_TEST(test_queue_shutdown_immediate),
      MPT_TEST(test_queue_join_shutdown_killed_at_wake),
  };
  const struct CMUnitTest stress[] = {
      MPT_TEST(test_queue_4x4_million),
  };
  if (argc > 1 && strcmp(argv[1], "stress") == 0)
    return MPT_RUN(stress);
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
