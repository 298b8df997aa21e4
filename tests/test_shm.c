/*
 * test_shm.c: the shared-memory transport (issue 17): the option, a worker
 * that scribbles on its ring, payloads larger than a ring both ways, large
 * inputs sent by reference beside the ring, and a pool pinned to one CPU
 * (where no one may spin). The pool and fault suites also run over it: it
 * is the default transport (and again over pipes: the *_pipe tests).
 */
#include "fixture.h"

#include "../src/shmchan.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static mp_pool *shm_pool(int processes, double timeout) {
  return mpt_pool((mp_pool_opts){.processes = processes,
                                 .transport = MP_TRANSPORT_SHM,
                                 .task_timeout = timeout});
}

static void test_unknown_transport_is_einval(void **state) {
  (void)state;
  mp_pool *p = (mp_pool *)0x1;
  int fds = mpt_count_fds();
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.transport = 3}),
                   MP_EINVAL);
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.transport = -1}),
                   MP_EINVAL);
  assert_ptr_equal(p, (mp_pool *)0x1);
  assert_int_equal(mpt_count_fds(), fds);
}

static int triple(const void *in, void *out) {
  *(int *)out = *(const int *)in * 3;
  return 0;
}

/* Both transports, chosen explicitly, give the same results. */
static void test_both_transports_explicit(void **state) {
  (void)state;
  int in[1000], out[1000];
  for (int i = 0; i < 1000; i++)
    in[i] = i;
  for (int t = MP_TRANSPORT_PIPE; t <= MP_TRANSPORT_SHM; t++) {
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .transport = t});
    for (size_t cs = 0; cs <= 7; cs += 7) {
      memset(out, 0, sizeof out);
      assert_int_equal(mp_pool_map(p, triple, in, 1000, sizeof *in, out,
                                   sizeof *out,
                                   &(mp_map_opts){.chunksize = cs}),
                       0);
      for (int i = 0; i < 1000; i++)
        assert_int_equal(out[i], 3 * i);
    }
    mpt_pool_done(p);
  }
}

static int over_shm(const void *in, void *out) {
  (void)in;
  *(int *)out = mp__worker_chan() != NULL;
  return 0;
}

/* The default transport: shm, except for maxtasksperchild 1 (pipes); an
 * explicit choice is kept either way. */
static void test_default_transport(void **state) {
  (void)state;
  static const struct {
    int transport, maxtasks, want;
  } cases[] = {
      {0, 0, 1},
      {0, 1, 0},
      {0, 2, 1},
      {MP_TRANSPORT_SHM, 1, 1},
      {MP_TRANSPORT_PIPE, 0, 0},
  };
  /* The environment may have made pipes the default. */
  const char *env = getenv("MPOOL_TRANSPORT");
  int pipes_default = env && strcmp(env, "pipe") == 0;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int want = cases[c].transport ? cases[c].want
                                  : cases[c].want && !pipes_default;
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1,
                                         .transport = cases[c].transport,
                                         .maxtasksperchild =
                                             cases[c].maxtasks});
    int in[3] = {0}, out[3] = {-1, -1, -1};
    assert_int_equal(mp_pool_map(p, over_shm, in, 3, sizeof *in, out,
                                 sizeof *out, &(mp_map_opts){.chunksize = 1}),
                     0);
    for (int i = 0; i < 3; i++)
      if (out[i] != want)
        fail_msg("transport %d, maxtasksperchild %d: item %d %s shm",
                 cases[c].transport, cases[c].maxtasks, i,
                 out[i] ? "ran over" : "did not run over");
    mpt_pool_done(p);
  }
}

/* ---- a worker that scribbles on its ring ---- */

enum { SCRIB_NONE, SCRIB_TAIL, SCRIB_HEAD, SCRIB_FRAME };

typedef struct sitem {
  int value;
  int how;
} sitem;

/* What the page of a channel looks like from a worker: see shmchan.c. The
 * test reaches the shared indices through the worker's view. */
static int scribble_task(const void *in, void *out) {
  const sitem *it = in;
  mp__chan *c = mp__worker_chan();
  if (it->how != SCRIB_NONE) {
    if (!c)
      return 77; /* not over shm: the test says so */
    if (it->how == SCRIB_TAIL) {
      /* Claim ten rings' worth of results. */
      atomic_store(c->tx_tail, c->tx_pos + 10ull * MP__RING_BYTES);
    } else if (it->how == SCRIB_HEAD) {
      /* Claim to have read tasks the parent never wrote, and go on. */
      atomic_store(c->rx_head, c->rx_pos + 12345);
      *(int *)out = it->value * 3;
      return 0;
    } else {
      /* A frame header whose length runs past everything. */
      mp__frame_hdr h;
      mp__frame_init(&h, MP__FR_MAP_RES, 1, 0x7ffffff0);
      (void)mp__worker_inject(&h, sizeof h);
    }
    for (;;)
      pause(); /* the parent must catch it now, not a later item */
  }
  *(int *)out = it->value * 3;
  return 0;
}

static void scribble_case(int how) {
  mp_pool *p = shm_pool(2, 30);
  enum { N = 400, BAD = 200 };
  sitem in[N];
  int out[N];
  mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = (sitem){i + 1, i == BAD ? how : SCRIB_NONE};
  int rc = mp_pool_map(p, scribble_task, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st, .chunksize = 1});
  int wrong = 0;
  for (int i = 0; i < N; i++)
    if (i != BAD && (st[i].code != 0 || out[i] != 3 * (i + 1)))
      wrong++;
  if (st[BAD].code == MP_ETASK && st[BAD].detail == 77)
    fail_msg("the pool did not run over shm");
  assert_int_equal(wrong, 0);
  assert_int_equal(st[BAD].code, MP_EPROTO);
  assert_int_equal(rc, MP_EPROTO);
  /* The pool goes on, its bad worker replaced. */
  for (int i = 0; i < N; i++)
    in[i].how = SCRIB_NONE;
  assert_int_equal(mp_pool_map(p, scribble_task, in, N, sizeof *in, out,
                               sizeof *out, NULL),
                   0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 3 * (i + 1));
  mpt_pool_done(p);
}

/* A result tail a ring past the parent's head: no read past the ring. */
static void test_scribbled_tail_fails_its_item(void **state) {
  (void)state;
  scribble_case(SCRIB_TAIL);
}

/* A frame header in the ring with an absurd length. */
static void test_scribbled_frame_fails_its_item(void **state) {
  (void)state;
  scribble_case(SCRIB_FRAME);
}

/*
 * A task head past what the parent wrote, the item itself done right: the
 * worker then idles (its head stays as it scribbled it: an empty ring is
 * not read), and the parent finds it when it next puts a task there: it
 * kills it as a protocol breaker, runs what it held again on a new worker,
 * and every result arrives. (A worker that reads on after a scribble
 * writes its true head over it: that scribble harms nothing, and nothing
 * sees it.)
 */
static void test_scribbled_head_replaces_its_worker(void **state) {
  (void)state;
  mp_pool *p = shm_pool(1, 30);
  enum { N = 300 };
  sitem in[N];
  int out[N];
  for (int i = 0; i < N; i++)
    in[i] = (sitem){i + 1, i == 0 ? SCRIB_HEAD : SCRIB_NONE};
  pid_t before, after;
  assert_int_equal(mp_pool_worker_pids(p, &before, 1), 1);
  /* One item: the scribble, then nothing more for that worker. */
  assert_int_equal(mp_pool_map(p, scribble_task, in, 1, sizeof *in, out,
                               sizeof *out, NULL),
                   0);
  assert_int_equal(out[0], 3);
  in[0].how = SCRIB_NONE;
  memset(out, 0, sizeof out);
  assert_int_equal(mp_pool_map(p, scribble_task, in, N, sizeof *in, out,
                               sizeof *out, &(mp_map_opts){.chunksize = 1}),
                   0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 3 * (i + 1));
  assert_int_equal(mp_pool_worker_pids(p, &after, 1), 1);
  assert_int_not_equal(after, before);
  mpt_pool_done(p);
}

/* ---- a worker that scribbles on the parent's sleep word ---- */

/* Item 1 only: wait until the parent announces that it sleeps (it then
 * waits in poll() for this worker's wake-up), then take the announcement
 * back, as a stray store would, and return a right result: the worker
 * then sees no sleeper and writes no wake-up byte. Within 10 s (the
 * parent sleeps after a spin of microseconds); 77 when not over shm, 78
 * when it never slept. */
static int unsleep_task(const void *in, void *out) {
  int v = *(const int *)in;
  mp__chan *c = mp__worker_chan();
  if (!c)
    return 77;
  if (v == 1) {
    struct timespec ms = {0, 1000000};
    for (int i = 0; !atomic_load(c->peer_sleep) && i < 10000; i++)
      nanosleep(&ms, NULL);
    if (!atomic_load(c->peer_sleep))
      return 78;
    atomic_store(c->peer_sleep, 0);
  }
  *(int *)out = v * 3;
  return 0;
}

/* In a child (a hang there is a bounded failure): a blocking map whose
 * first item's worker never wakes the parent. */
static int unsleep_map(int nproc) {
  mp_pool *p;
  if (mp_pool_create(&p, &(mp_pool_opts){.processes = nproc,
                                          .transport = MP_TRANSPORT_SHM}) <
      0)
    return 2;
  int in[2] = {1, 2}, out[2] = {0, 0};
  mp_status st[2];
  int rc = mp_pool_map(p, unsleep_task, in, 2, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = 1, .status = st});
  mp_pool_free(p);
  for (int i = 0; i < 2; i++)
    if (st[i].code == MP_ETASK)
      return st[i].detail;
  return rc == 0 && out[0] == 3 && out[1] == 6 ? 0 : 3;
}

/* The parent is not woken by the worker that holds its item, yet the map
 * returns, every result right: a parent whose workers hold work does not
 * sleep unbounded on a word they can write. */
static void test_scribbled_parent_sleep_word(void **state) {
  (void)state;
  for (int nproc = 1; nproc <= 2; nproc++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      _exit(unsleep_map(nproc));
    int ws;
    if (!mpt_reap_within(pid, 30000, &ws))
      fail_msg("%d worker(s): the map hung (a lost wake-up)", nproc);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
      fail_msg("%d worker(s): exit %d (77: not over shm; 78: the parent "
               "never slept)",
               nproc, WEXITSTATUS(ws));
  }
}

/* Item 1: a result whose frame fills the ring exactly, from a fresh
 * worker, which saw the parent's head once (at 0) before writing it. Item
 * 2: store that stale head back over the parent's, as a stray store would
 * (an older value, so no index is out of bounds), and return a small
 * result: the worker then sees no room for it. 77: not over shm. */
static int stale_head_task(const void *arg, size_t len, mp_buf *res) {
  (void)len;
  mp__chan *c = mp__worker_chan();
  if (!c)
    return 77;
  if (*(const int *)arg == 1) {
    size_t n = MP__RING_BYTES - sizeof(mp__frame_hdr) - sizeof(mp__apply_res);
    void *p = mp_buf_grow(res, n);
    if (!p)
      return 1;
    memset(p, 7, n);
    return 0;
  }
  atomic_store(c->tx_head, c->tx_seen);
  return mp_buf_append(res, "ok", 2);
}

/* The parent's result head, stored over with an older value after the
 * parent read everything: the worker waits for room the parent will never
 * free by reading, yet the result arrives (the parent stores its head
 * again when its bounded sleep ends with a worker owing it something). */
static void test_scribbled_result_head(void **state) {
  (void)state;
  mp_pool *p = shm_pool(1, 0);
  int one = 1, two = 2;
  void *res = NULL;
  size_t len = 0;
  mp_status st = {0, 0};
  int rc = mp_pool_apply(p, stale_head_task, &one, sizeof one, &res, &len,
                         &st);
  if (rc == MP_ETASK && st.detail == 77)
    fail_msg("the pool did not run over shm");
  assert_int_equal(rc, 0);
  assert_int_equal(len, MP__RING_BYTES - sizeof(mp__frame_hdr) -
                            sizeof(mp__apply_res));
  free(res);
  mp_result *r;
  assert_int_equal(
      mp_pool_apply_async(p, stale_head_task, &two, sizeof two, NULL, &r), 0);
  const void *data = NULL;
  rc = mp_result_get(r, 20, &data, &len, NULL);
  int got = rc == 0 && len == 2 && memcmp(data, "ok", 2) == 0;
  mp_result_free(r);
  mp_pool_free(p);
  if (rc == MP_ETIMEDOUT)
    fail_msg("the result never came (the worker waits for room)");
  assert_int_equal(rc, 0);
  assert_true(got);
}

/* ---- junk a task writes to its worker's result pipe ---- */

enum { JUNK_NONE, JUNK_BYTES, JUNK_WAKES };

/* Write 100 junk bytes to the result pipe (any byte, or bytes that look
 * like the shm transport's wake-ups), then return a right result. */
static int junk_task(const void *in, void *out) {
  const sitem *it = in;
  if (it->how != JUNK_NONE) {
    char junk[100];
    memset(junk, it->how == JUNK_BYTES ? 'J' : MP__CHAN_WAKE, sizeof junk);
    if (write(mp__worker_res_fd(), junk, sizeof junk) != sizeof junk)
      return 79;
  }
  *(int *)out = it->value * 3;
  return 0;
}

/* Under both transports each item that wrote junk fails with MP_EPROTO,
 * and each that did not delivers its result: the same outcome, item for
 * item, whether the junk reached the parent before its result or not, and
 * whether the junk items ran alone, in chunks, or with their results held
 * together (tiny tasks back to back on one worker). Bounded: a pool that
 * kept sending the same suspects again would fail at the wait. */
static void test_result_pipe_junk_fails_its_item(void **state) {
  (void)state;
  enum { N = 36 };
  static sitem in[N];
  static int out[N];
  static mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = (sitem){i + 1, i % 3 == 0 ? JUNK_NONE
                           : i % 3 == 1 ? JUNK_BYTES
                                        : JUNK_WAKES};
  for (int t = MP_TRANSPORT_PIPE; t <= MP_TRANSPORT_SHM; t++) {
    for (int nproc = 1; nproc <= 2; nproc++) {
      for (size_t cs = 0; cs <= 1; cs++) {
        mp_pool *p =
            mpt_pool((mp_pool_opts){.processes = nproc, .transport = t});
        memset(out, 0, sizeof out);
        mp_result *r;
        assert_int_equal(
            mp_pool_map_async(p, junk_task, in, N, sizeof *in, out,
                              sizeof *out,
                              &(mp_map_async_opts){
                                  .map = {.status = st, .chunksize = cs}},
                              &r),
            0);
        int rc = mp_result_get(r, 60, NULL, NULL, NULL);
        mp_result_free(r);
        int ok = 0, proto = 0, wrong = 0;
        for (int i = 0; i < N && rc != MP_ETIMEDOUT; i++) {
          int want = in[i].how == JUNK_NONE ? 0 : MP_EPROTO;
          if (st[i].code != want ||
              (want == 0 && out[i] != 3 * in[i].value))
            wrong++;
          ok += st[i].code == 0;
          proto += st[i].code == MP_EPROTO;
        }
        mp_pool_free(p);
        if (rc == MP_ETIMEDOUT)
          fail_msg("transport %d, %d worker(s), chunksize %zu: not done in "
                   "60 s",
                   t, nproc, cs);
        if (wrong)
          fail_msg("transport %d, %d worker(s), chunksize %zu: %d wrong (%d "
                   "OK, %d MP_EPROTO)",
                   t, nproc, cs, wrong, ok, proto);
        assert_int_equal(rc, MP_EPROTO);
      }
    }
  }
}

/* ---- payloads larger than a ring, both ways ---- */

static int echo_twice(const void *arg, size_t len, mp_buf *res) {
  int rc = mp_buf_append(res, arg, len);
  return rc ? rc : mp_buf_append(res, arg, len);
}

static void test_payloads_larger_than_a_ring(void **state) {
  (void)state;
  mp_pool *p = shm_pool(2, 0);
  size_t n = 3 * (size_t)MP__RING_BYTES + 12345;
  unsigned char *arg = malloc(n);
  assert_non_null(arg);
  for (size_t i = 0; i < n; i++)
    arg[i] = (unsigned char)(i * 131 + 7);
  for (int round = 0; round < 3; round++) {
    void *res = NULL;
    size_t len = 0;
    assert_int_equal(mp_pool_apply(p, echo_twice, arg, n, &res, &len, NULL),
                     0);
    assert_int_equal(len, 2 * n);
    assert_memory_equal(res, arg, n);
    assert_memory_equal((char *)res + n, arg, n);
    free(res);
  }
  free(arg);
  mpt_pool_done(p);
}

/* Items of 1 MiB: a blocking map's chunks go by reference on the task
 * pipe, announced in the ring; an async map's are copied through the ring;
 * both in order with small tasks around them. */
enum { BIG = 1 << 20 };

static int big_sum(const void *in, void *out) {
  const unsigned char *b = in;
  uint64_t s = 0;
  for (size_t i = 0; i < BIG; i += 61)
    s += b[i];
  memcpy(out, &s, sizeof s);
  return 0;
}

static void test_large_inputs_by_reference_and_by_copy(void **state) {
  (void)state;
  mp_pool *p = shm_pool(2, 0);
  enum { N = 12 };
  unsigned char *in = malloc((size_t)N * BIG);
  assert_non_null(in);
  uint64_t want[N], out[N];
  for (int k = 0; k < N; k++) {
    unsigned char *b = in + (size_t)k * BIG;
    want[k] = 0;
    for (size_t i = 0; i < BIG; i++)
      b[i] = (unsigned char)(i * 7 + (size_t)k);
    for (size_t i = 0; i < BIG; i += 61)
      want[k] += b[i];
  }
  for (size_t cs = 1; cs <= 3; cs += 2) {
    memset(out, 0, sizeof out);
    assert_int_equal(mp_pool_map(p, big_sum, in, N, BIG, out, sizeof *out,
                                 &(mp_map_opts){.chunksize = cs}),
                     0);
    assert_memory_equal(out, want, sizeof want);
    memset(out, 0, sizeof out);
    mp_result *r;
    assert_int_equal(mp_pool_map_async(p, big_sum, in, N, BIG, out,
                                       sizeof *out,
                                       &(mp_map_async_opts){.map.chunksize =
                                                                cs},
                                       &r),
                     0);
    assert_int_equal(mp_result_get(r, 600, NULL, NULL, NULL), 0);
    mp_result_free(r);
    assert_memory_equal(out, want, sizeof want);
  }
  free(in);
  mpt_pool_done(p);
}

/* ---- one CPU: nobody may spin, and nothing may wait on a spinner ---- */

static int echo(const void *arg, size_t len, mp_buf *res) {
  return mp_buf_append(res, arg, len);
}

static void test_pinned_to_one_cpu(void **state) {
  (void)state;
  cpu_set_t old, one;
  assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
  int cpu = -1;
  for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
    if (CPU_ISSET(i, &old))
      cpu = i;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
  mp_pool *p = shm_pool(2, 0);
  double t0 = mpt_now();
  for (int i = 0; i < 2000; i++) {
    uint64_t x = (uint64_t)i * 977;
    void *res = NULL;
    size_t len = 0;
    assert_int_equal(mp_pool_apply(p, echo, &x, sizeof x, &res, &len, NULL),
                     0);
    assert_int_equal(len, sizeof x);
    assert_memory_equal(res, &x, sizeof x);
    free(res);
  }
  enum { N = 5000 };
  static int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  assert_int_equal(mp_pool_map(p, triple, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.chunksize = 1}),
                   0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 3 * i);
  /* Not a timing test: a generous bound that only a spinner starving its
   * peer for every round trip (tens of ms each) would break. */
  assert_true(mpt_now() - t0 < 60);
  mpt_pool_done(p);
  assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
}

int main(int argc, char **argv) {
  mpt_filter(argc, argv);
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_unknown_transport_is_einval),
      MPT_TEST(test_both_transports_explicit),
      MPT_TEST(test_default_transport),
      MPT_TEST(test_scribbled_tail_fails_its_item),
      MPT_TEST(test_scribbled_frame_fails_its_item),
      MPT_TEST(test_scribbled_head_replaces_its_worker),
      MPT_TEST(test_scribbled_parent_sleep_word),
      MPT_TEST(test_scribbled_result_head),
      MPT_TEST(test_result_pipe_junk_fails_its_item),
      MPT_TEST(test_payloads_larger_than_a_ring),
      MPT_TEST(test_large_inputs_by_reference_and_by_copy),
      MPT_TEST(test_pinned_to_one_cpu),
  };
  return MPT_RUN(tests);
}
