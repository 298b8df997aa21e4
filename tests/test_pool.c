/* test_pool.c: mp_pool map, apply, async results, iterators, lifetime. */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static mp_pool *pool_of(int n) { return mpt_pool((mp_pool_opts){.processes = n}); }

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld", &v) == 1)
      break;
  if (f)
    fclose(f);
  return v;
}

static int square_int(const void *in, void *out) {
  int x = *(const int *)in;
  *(int *)out = x * x;
  return 0;
}

/* Element of any size: output = input bytes each plus its index byte. */
static size_t g_elem;
static int bytes_plus_one(const void *in, void *out) {
  const unsigned char *a = in;
  unsigned char *b = out;
  for (size_t i = 0; i < g_elem; i++)
    b[i] = (unsigned char)(a[i] + 1);
  return 0;
}

static void test_map_matches_serial(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  static const size_t ns[] = {0, 1, 7, 1000, 1000000};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    size_t n = ns[k];
    int *in = malloc((n ? n : 1) * sizeof *in);
    int *out = malloc((n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n; i++)
      in[i] = (int)(i % 40000) - 20000;
    for (int cs = 0; cs <= 1; cs++) {
      memset(out, 0, (n ? n : 1) * sizeof *out);
      assert_int_equal(mp_pool_map(p, square_int, in, n, sizeof *in, out, sizeof *out,
                                   &(mp_map_opts){.chunksize = (size_t)cs}), 0);
      for (size_t i = 0; i < n; i++)
        assert_int_equal(out[i], in[i] * in[i]);
    }
    free(in);
    free(out);
  }
  mpt_pool_done(p);
}

static void set_elem(void *arg) { memcpy(&g_elem, arg, sizeof g_elem); }

static void test_map_element_sizes(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 3, 8, 100, 4096, 65536};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    /* Forked workers see memory as it was when they were forked; forkserver
     * ones as it was at start-up: the initializer sets it in both. */
    g_elem = sizes[k];
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .initializer = set_elem,
                                         .initarg = &g_elem,
                                         .initarg_len = sizeof g_elem});
    size_t n = g_elem >= 4096 ? 64 : 1000;
    unsigned char *in = malloc(n * g_elem), *out = malloc(n * g_elem);
    for (size_t i = 0; i < n * g_elem; i++)
      in[i] = (unsigned char)(i * 31 + 7);
    for (int cs = 0; cs <= 1; cs++) {
      memset(out, 0, n * g_elem);
      assert_int_equal(mp_pool_map(p, bytes_plus_one, in, n, g_elem, out, g_elem,
                                   &(mp_map_opts){.chunksize = (size_t)cs}), 0);
      for (size_t i = 0; i < n * g_elem; i++)
        assert_int_equal(out[i], (unsigned char)(in[i] + 1));
    }
    free(in);
    free(out);
    mpt_pool_done(p);
  }
}

static int fail_on_multiple_of_7(const void *in, void *out) {
  int x = *(const int *)in;
  if (x % 7 == 0)
    return 100 + x;
  *(int *)out = -x;
  return 0;
}

static void test_map_partial_failure(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 200 };
  int in[N], out[N];
  mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = i + 1;
  int rc = mp_pool_map(p, fail_on_multiple_of_7, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st, .chunksize = 3});
  assert_int_equal(rc, MP_ETASK);
  for (int i = 0; i < N; i++) {
    if (in[i] % 7 == 0) {
      assert_int_equal(st[i].code, MP_ETASK);
      assert_int_equal(st[i].detail, 100 + in[i]);
    } else {
      assert_int_equal(st[i].code, 0);
      assert_int_equal(out[i], -in[i]);
    }
  }
  mpt_pool_done(p);
}

static int echo_reverse(const void *arg, size_t len, mp_buf *res) {
  unsigned char *o = mp_buf_grow(res, len);
  if (!o && len)
    return 1;
  for (size_t i = 0; i < len; i++)
    o[i] = ((const unsigned char *)arg)[len - 1 - i];
  return 0;
}

static int apply_fail(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  mp_buf_append(res, "partial", 7);
  return -42;
}

static int apply_empty(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  (void)res;
  return 0;
}

static void test_apply(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  void *res;
  size_t len;
  mp_status st;
  assert_int_equal(mp_pool_apply(p, echo_reverse, "abcdef", 6, &res, &len, &st), 0);
  assert_int_equal(len, 6);
  assert_memory_equal(res, "fedcba", 6);
  assert_int_equal(st.code, 0);
  free(res);
  assert_int_equal(mp_pool_apply(p, apply_fail, "x", 1, &res, &len, &st), MP_ETASK);
  assert_null(res);
  assert_int_equal(len, 0);
  assert_int_equal(st.code, MP_ETASK);
  assert_int_equal(st.detail, -42);
  assert_int_equal(mp_pool_apply(p, apply_empty, NULL, 0, &res, &len, NULL), 0);
  assert_null(res);
  assert_int_equal(len, 0);
  mpt_pool_done(p);
}

static void test_apply_16mib_both_ways(void **state) {
  (void)state;
  mp_pool *p = pool_of(1);
  size_t n = (size_t)16 << 20;
  unsigned char *big = malloc(n);
  for (size_t i = 0; i < n; i++)
    big[i] = (unsigned char)(i * 13 + (i >> 12));
  void *res;
  size_t len;
  assert_int_equal(mp_pool_apply(p, echo_reverse, big, n, &res, &len, NULL), 0);
  assert_int_equal(len, n);
  const unsigned char *r = res;
  for (size_t i = 0; i < n; i++)
    if (r[i] != big[n - 1 - i])
      fail_msg("byte %zu differs", i);
  free(res);
  free(big);
  mpt_pool_done(p);
}

static int big_result(const void *arg, size_t len, mp_buf *res) {
  (void)len;
  size_t want = *(const size_t *)arg;
  char block[4096];
  memset(block, 'z', sizeof block);
  for (size_t done = 0; done < want; done += sizeof block) {
    int rc = mp_buf_append(res, block, sizeof block);
    if (rc < 0)
      return 0; /* ignores the error: the library must still report it */
  }
  return 0;
}

static void test_result_cap(void **state) {
  (void)state;
  mp_pool *p = NULL;
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.processes = 1, .max_result_bytes = 65536}), 0);
  size_t want = 65536;
  void *res;
  size_t len;
  mp_status st;
  assert_int_equal(mp_pool_apply(p, big_result, &want, sizeof want, &res, &len, &st), 0);
  assert_int_equal(len, 65536);
  free(res);
  want = 65536 + 4096;
  assert_int_equal(mp_pool_apply(p, big_result, &want, sizeof want, &res, &len, &st), -EMSGSIZE);
  assert_null(res);
  assert_int_equal(st.code, -EMSGSIZE);
  mpt_pool_done(p);
}

static int record_pid(const void *in, void *out) {
  (void)in;
  *(pid_t *)out = getpid();
  return 0;
}

static void test_workers_are_reused_children(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 64 };
  int in[N] = {0};
  pid_t out[N];
  assert_int_equal(mp_pool_map(p, record_pid, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.chunksize = 1}), 0);
  pid_t workers[2];
  assert_int_equal(mp_pool_worker_pids(p, workers, 2), 2);
  for (int i = 0; i < N; i++) {
    assert_int_not_equal(out[i], getpid());
    assert_true(out[i] == workers[0] || out[i] == workers[1]);
  }
  mpt_pool_done(p);
}

/* Initializer runs: counts in shared memory, per pid. */
static int *g_init_log; /* [0]: count, then pids */
static void init_record(void *arg) {
  mpt_shared sh;
  memcpy(&sh, arg, sizeof sh);
  int *log = mpt_shared_ptr(&sh);
  int k = __atomic_fetch_add(&log[0], 1, __ATOMIC_SEQ_CST);
  log[1 + k] = getpid();
}

static void test_maxtasksperchild_and_initializer(void **state) {
  (void)state;
  static mpt_shared sh;
  mpt_shared_new(&sh, 4096);
  g_init_log = sh.ptr;
  mp_pool *p = NULL;
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.processes = 2, .maxtasksperchild = 2,
                                                      .initializer = init_record,
                                                      .initarg = &sh,
                                                      .initarg_len = sizeof sh}), 0);
  enum { N = 12 };
  int in[N] = {0};
  pid_t out[N];
  assert_int_equal(mp_pool_map(p, record_pid, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.chunksize = 1}), 0);
  /* 12 one-item tasks, at most 2 per worker: no pid ran more than 2, so at
   * least 6 workers ran them (more when a worker got only one before the
   * map ran out), each of which ran the initializer. */
  int distinct = 0;
  for (int i = 0; i < N; i++) {
    int seen = 0, runs = 0;
    for (int k = 0; k < N; k++)
      runs += out[k] == out[i];
    for (int k = 0; k < i; k++)
      seen |= out[k] == out[i];
    assert_true(runs <= 2);
    distinct += !seen;
    int inited = 0;
    for (int k = 0; k < g_init_log[0]; k++)
      inited |= g_init_log[1 + k] == out[i];
    assert_true(inited);
  }
  assert_true(distinct >= 6);
  mpt_pool_done(p);
  assert_true(g_init_log[0] >= 6);
  mpt_shared_free(&sh);
}

static void test_closed_and_state_errors(void **state) {
  (void)state;
  mp_pool *p = pool_of(1);
  assert_int_equal(mp_pool_join(p), MP_ESTATE);
  assert_int_equal(mp_pool_close(p), 0);
  int x = 3, y;
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), MP_ECLOSED);
  void *res;
  size_t len;
  assert_int_equal(mp_pool_apply(p, echo_reverse, "a", 1, &res, &len, NULL), MP_ECLOSED);
  mp_result *r = NULL;
  assert_int_equal(mp_pool_apply_async(p, echo_reverse, "a", 1, NULL, &r), MP_ECLOSED);
  assert_null(r);
  mp_iter *it = NULL;
  assert_int_equal(mp_pool_imap(p, square_int, &x, 1, sizeof x, sizeof y, NULL, &it), MP_ECLOSED);
  assert_int_equal(mp_pool_join(p), 0);
  assert_int_equal(mp_pool_close(p), 0);
  mp_pool_free(p);
  mp_pool_free(NULL);
}

/* Reports what mp_buf_append and mp_buf_grow say to bad arguments. */
static int buf_misuse(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  int codes[2] = {mp_buf_append(res, NULL, 5), mp_buf_append(NULL, "x", 1)};
  if (mp_buf_grow(NULL, 4) != NULL)
    codes[1] = 0;
  return mp_buf_append(res, codes, sizeof codes);
}

static void test_bad_arguments(void **state) {
  (void)state;
  mp_pool *p = NULL;
  assert_int_equal(mp_pool_create(NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.processes = -1}), MP_EINVAL);
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = -1}), MP_EINVAL);
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.maxtasksperchild = -1}), MP_EINVAL);
  assert_null(p);
  p = pool_of(1);
  int x = 2, y;
  assert_int_equal(mp_pool_map(NULL, square_int, &x, 1, 4, &y, 4, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, NULL, &x, 1, 4, &y, 4, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, square_int, NULL, 1, 4, &y, 4, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, 4, NULL, 4, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, 0, &y, 4, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, 4, &y, 0, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map(p, square_int, &x, SIZE_MAX / 2, 4, &y, 4, NULL), MP_EINVAL);
  void *res;
  size_t len;
  assert_int_equal(mp_pool_apply(p, NULL, "a", 1, &res, &len, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_apply(p, echo_reverse, NULL, 1, &res, &len, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_apply(p, echo_reverse, "a", 1, NULL, &len, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_apply_async(p, echo_reverse, "a", 1, NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map_async(p, square_int, &x, 1, 4, &y, 4, NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_result_wait(NULL, 0), MP_EINVAL);
  assert_int_equal(mp_result_get(NULL, 0, NULL, NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_result_successful(NULL), MP_EINVAL);
  assert_false(mp_result_ready(NULL));
  assert_int_equal(mp_iter_next(NULL, &y, NULL, NULL, 0), MP_EINVAL);
  assert_int_equal(mp_pool_close(NULL), MP_EINVAL);
  assert_int_equal(mp_pool_join(NULL), MP_EINVAL);
  assert_int_equal(mp_pool_terminate(NULL), MP_EINVAL);
  assert_int_equal(mp_pool_processes(NULL), 0);
  assert_int_equal(mp_pool_processes(p), 1);
  pid_t pids[4] = {0};
  assert_int_equal(mp_pool_worker_pids(NULL, pids, 4), MP_EINVAL);
  assert_int_equal(mp_pool_worker_pids(p, NULL, 4), MP_EINVAL);
  assert_int_equal(mp_pool_worker_pids(p, pids, -1), MP_EINVAL);
  assert_int_equal(mp_pool_worker_pids(p, pids, 4), 1);
  assert_true(pids[0] > 0);
  mp_iter *it = NULL;
  assert_int_equal(mp_pool_imap(p, square_int, &x, 1, 4, 4, NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_imap_unordered(p, square_int, &x, 1, 0, 4, NULL, &it), MP_EINVAL);
  assert_null(it);
  /* The result buffer refuses bad arguments inside a task too. */
  assert_int_equal(mp_pool_apply(p, buf_misuse, NULL, 0, &res, &len, NULL), 0);
  assert_int_equal(len, sizeof(int) * 2);
  int codes[2];
  memcpy(codes, res, sizeof codes);
  free(res);
  assert_int_equal(codes[0], MP_EINVAL);
  assert_int_equal(codes[1], MP_EINVAL);
  mp_result_free(NULL);
  mp_iter_free(NULL);
  mpt_pool_done(p);
}

/* Async results with callbacks. */
typedef struct cb_log {
  int ok, err;
  mp_result *last;
} cb_log;
static void on_ok(mp_result *r, void *arg) {
  cb_log *l = arg;
  l->ok++;
  l->last = r;
}
static void on_err(mp_result *r, void *arg) {
  cb_log *l = arg;
  l->err++;
  l->last = r;
}

/* Blocks on the pipe fd whose number is in arg until the parent writes a
 * byte, and returns that byte. */
static int wait_for_byte(const void *arg, size_t len, mp_buf *res) {
  (void)len;
  int fd = mpt_peer_fd(*(const int *)arg);
  char c;
  while (read(fd, &c, 1) < 0 && errno == EINTR)
    ;
  return mp_buf_append(res, &c, 1);
}

static void test_async_apply_and_callbacks(void **state) {
  (void)state;
  int gate[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  mp_pool *p = pool_of(2);
  cb_log log = {0};
  mp_result *r = NULL, *bad = NULL;
  assert_int_equal(mp_pool_apply_async(p, wait_for_byte, &gate[0], sizeof gate[0],
                                       &(mp_async_opts){.callback = on_ok, .error_callback = on_err, .arg = &log}, &r), 0);
  assert_int_equal(mp_pool_apply_async(p, apply_fail, "x", 1,
                                       &(mp_async_opts){.callback = on_ok, .error_callback = on_err, .arg = &log}, &bad), 0);
  /* The first cannot finish before we write: a true timeout. */
  assert_int_equal(mp_result_wait(r, 0.05), MP_ETIMEDOUT);
  assert_false(mp_result_ready(r));
  assert_int_equal(mp_result_successful(r), MP_ESTATE);
  const void *data;
  size_t len;
  assert_int_equal(mp_result_get(r, 0, &data, &len, NULL), MP_ETIMEDOUT);
  mp_status st;
  assert_int_equal(mp_result_get(bad, -1, &data, &len, &st), MP_ETASK);
  assert_int_equal(st.detail, -42);
  assert_null(data);
  assert_int_equal(mp_result_successful(bad), 0);
  assert_int_equal(log.err, 1);
  assert_ptr_equal(log.last, bad);
  assert_int_equal(log.ok, 0);
  mpt_write(gate[1], "K", 1);
  assert_int_equal(mp_result_get(r, -1, &data, &len, NULL), 0);
  assert_int_equal(len, 1);
  assert_memory_equal(data, "K", 1);
  assert_int_equal(mp_result_successful(r), 1);
  assert_true(mp_result_ready(r));
  assert_int_equal(log.ok, 1);
  /* Exactly once: more calls run nothing again. */
  assert_int_equal(mp_result_wait(r, -1), 0);
  /* A zero timeout still makes progress: polling alone completes a task. */
  mp_result *quick;
  assert_int_equal(mp_pool_apply_async(p, echo_reverse, "xy", 2, NULL, &quick), 0);
  while (mp_result_wait(quick, 0) == MP_ETIMEDOUT)
    ;
  assert_true(mp_result_ready(quick));
  assert_int_equal(mp_result_get(quick, 0, &data, &len, NULL), 0);
  assert_memory_equal(data, "yx", 2);
  mp_result_free(quick);
  mpt_pool_done(p);
  assert_int_equal(log.ok, 1);
  assert_int_equal(log.err, 1);
  mp_result_free(r);
  mp_result_free(bad);
  close(gate[0]);
  close(gate[1]);
}

/* last: the latest done, total, reports so far, and the first done. */
static void count_progress(size_t done, size_t total, void *arg) {
  size_t *last = arg;
  if (last[2] == 0)
    last[3] = done; /* the first report: 0 done, before any result */
  else
    assert_true(done > last[0]);
  assert_true(done <= total);
  last[0] = done;
  last[1] = total;
  last[2]++;
}

static void test_map_async_and_progress(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 5000 };
  static int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  size_t prog[4] = {0, 0, 0, 99};
  cb_log log = {0};
  mp_result *r;
  mp_map_async_opts o = {.map = {.chunksize = 100, .progress = count_progress, .progress_arg = prog},
                         .async = {.callback = on_ok, .error_callback = on_err, .arg = &log}};
  assert_int_equal(mp_pool_map_async(p, square_int, in, N, sizeof *in, out, sizeof *out, &o, &r), 0);
  const void *data = (void *)1;
  size_t len = 1;
  assert_int_equal(mp_result_get(r, -1, &data, &len, NULL), 0);
  assert_null(data);
  assert_int_equal(len, 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], i * i);
  assert_int_equal(prog[0], N);
  assert_int_equal(prog[1], N);
  /* The first report says 0 done, before any result; then at most one
   * report per chunk, reports within one round coalescing. */
  assert_int_equal(prog[3], 0);
  assert_true(prog[2] >= 2 && prog[2] <= N / 100 + 1);
  assert_int_equal(log.ok, 1);
  mp_result_free(r);
  /* An empty map completes at once; its callback still runs exactly once. */
  assert_int_equal(mp_pool_map_async(p, square_int, NULL, 0, 4, NULL, 4,
                                     &(mp_map_async_opts){.async = {.callback = on_ok, .error_callback = on_err, .arg = &log}}, &r), 0);
  assert_int_equal(mp_result_wait(r, -1), 0);
  assert_true(mp_result_ready(r));
  assert_int_equal(log.ok, 2);
  mp_result_free(r);
  mpt_pool_done(p);
}

/* A progress callback may call the library: here it polls another result
 * and, half way, terminates the pool. */
typedef struct reenter {
  mp_pool *pool;
  mp_result *other;
  int calls, terminated;
} reenter;

static void progress_reenters(size_t done, size_t total, void *arg) {
  reenter *r = arg;
  r->calls++;
  (void)mp_result_ready(r->other);
  if (done * 2 >= total && !r->terminated) {
    r->terminated = 1;
    assert_int_equal(mp_pool_terminate(r->pool), 0);
  }
}

static void test_progress_callback_reenters(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 4000 };
  static int in[N], out[N];
  reenter r = {.pool = p};
  assert_int_equal(mp_pool_apply_async(p, echo_reverse, "ab", 2, NULL, &r.other), 0);
  int rc = mp_pool_map(p, square_int, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = 10, .progress = progress_reenters,
                                      .progress_arg = &r});
  assert_true(r.terminated);
  assert_true(rc == MP_ECLOSED || rc == 0); /* 0 if the last chunk was in */
  assert_true(mp_result_ready(r.other));
  mp_result_free(r.other);
  assert_int_equal(mp_pool_join(p), 0);
  mp_pool_free(p);
}

/* A result freed while its callback waits in the queue: it must not run.
 * Two results fail in one terminate; whichever callback runs first frees
 * the other's result, whose callback must then never run. */
typedef struct pair {
  mp_result *r[2];
  int ran[2];
} pair;
static void on_either(mp_result *r, void *arg) {
  pair *pr = arg;
  int me = r == pr->r[1];
  pr->ran[me]++;
  if (pr->r[!me]) {
    mp_result_free(pr->r[!me]);
    pr->r[!me] = NULL;
  }
}

static void test_free_cancels_queued_callback(void **state) {
  (void)state;
  int gate[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  mp_pool *p = pool_of(2);
  pair pr = {0};
  for (int i = 0; i < 2; i++)
    assert_int_equal(mp_pool_apply_async(p, wait_for_byte, &gate[0], sizeof gate[0],
                                         &(mp_async_opts){.callback = on_either, .error_callback = on_either, .arg = &pr},
                                         &pr.r[i]), 0);
  assert_int_equal(mp_pool_terminate(p), 0); /* both fail, both queued */
  assert_int_equal(pr.ran[0] + pr.ran[1], 1);
  mp_result_free(pr.r[0]);
  mp_result_free(pr.r[1]);
  mp_pool_free(p);
  close(gate[0]);
  close(gate[1]);
}

static void test_join_with_application_child_holding_fds(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  int gate[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  /* A child of the application's own, forked after the pool: it holds every
   * pool pipe, so workers would never see EOF on their task pipes. */
  pid_t kid = fork();
  if (kid == 0) {
    char c;
    close(gate[1]);
    while (read(gate[0], &c, 1) < 0 && errno == EINTR)
      ;
    _exit(0);
  }
  int x = 3, y;
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), 0);
  assert_int_equal(mp_pool_close(p), 0);
  assert_int_equal(mp_pool_join(p), 0); /* returns while the child lives */
  assert_int_equal(waitpid(kid, NULL, WNOHANG), 0);
  close(gate[1]);
  assert_int_equal(waitpid(kid, NULL, 0), kid);
  close(gate[0]);
  mp_pool_free(p);
}

static void test_terminated_iterator_stays_small(void **state) {
  (void)state;
  enum { N = 4 << 20 };
  unsigned char *in = calloc(N, 1);
  g_elem = 1; /* before the fork: bytes_plus_one's element size */
  mp_pool *p = pool_of(2);
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, bytes_plus_one, in, N, 1, 1, NULL, &it), 0);
  unsigned char y;
  size_t idx;
  assert_int_equal(mp_iter_next(it, &y, &idx, NULL, -1), 0);
  long before = rss_kib();
  assert_int_equal(mp_pool_terminate(p), 0);
  size_t closed = 0, ok = 1;
  for (;;) {
    size_t want = ok + closed;
    int rc = mp_iter_next(it, &y, &idx, NULL, 0);
    if (rc == MP_EOF)
      break;
    assert_int_equal(idx, want);
    if (rc == MP_ECLOSED)
      closed++;
    else
      ok++; /* results already in before terminate */
  }
  long after = rss_kib();
  assert_int_equal(ok + closed, N);
  assert_true(closed > N / 2);
  mp_iter_free(it);
  mp_pool_free(p);
  free(in);
  if (!mpt_under_tool() && after - before > 2 * 1024)
    fail_msg("terminating the iterator grew peak RSS by %ld KiB", after - before);
}

static void test_imap_ordered_and_unordered(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 20000 };
  static int in[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  for (int unordered = 0; unordered <= 1; unordered++) {
    mp_iter *it;
    if (unordered)
      assert_int_equal(mp_pool_imap_unordered(p, fail_on_multiple_of_7, in, N, sizeof *in, sizeof(int),
                                              &(mp_map_opts){.chunksize = 10}, &it), 0);
    else
      assert_int_equal(mp_pool_imap(p, fail_on_multiple_of_7, in, N, sizeof *in, sizeof(int), NULL, &it), 0);
    static char seen[N];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < N; k++) {
      int y;
      size_t idx;
      mp_status st;
      int rc = mp_iter_next(it, &y, &idx, &st, -1);
      assert_true(idx < N);
      if (!unordered)
        assert_int_equal(idx, (size_t)k);
      assert_false(seen[idx]);
      seen[idx] = 1;
      if (in[idx] % 7 == 0) {
        assert_int_equal(rc, MP_ETASK);
        assert_int_equal(st.detail, 100 + in[idx]);
      } else {
        assert_int_equal(rc, 0);
        assert_int_equal(y, -in[idx]);
      }
    }
    int y;
    assert_int_equal(mp_iter_next(it, &y, NULL, NULL, -1), MP_EOF);
    assert_int_equal(mp_iter_next(it, &y, NULL, NULL, 0), MP_EOF);
    mp_iter_free(it);
  }
  /* An iterator dropped half way cancels the rest and leaves the pool fine. */
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, square_int, in, N, sizeof *in, sizeof(int), NULL, &it), 0);
  int y;
  assert_int_equal(mp_iter_next(it, &y, NULL, NULL, -1), 0);
  mp_iter_free(it);
  int x = 9;
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), 0);
  assert_int_equal(y, 81);
  mpt_pool_done(p);
}

static void test_join_finishes_unconsumed_iterator(void **state) {
  (void)state;
  mp_pool *p = pool_of(2);
  enum { N = 50000 };
  static int in[N];
  for (int i = 0; i < N; i++)
    in[i] = i % 1000;
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, square_int, in, N, sizeof *in, sizeof(int), NULL, &it), 0);
  int y;
  assert_int_equal(mp_iter_next(it, &y, NULL, NULL, -1), 0);
  /* Lazy until now; close + join must still finish it. */
  assert_int_equal(mp_pool_close(p), 0);
  assert_int_equal(mp_pool_join(p), 0);
  for (int i = 1; i < N; i++) {
    size_t idx;
    assert_int_equal(mp_iter_next(it, &y, &idx, NULL, 0), 0);
    assert_int_equal(idx, (size_t)i);
    assert_int_equal(y, in[i] * in[i]);
  }
  assert_int_equal(mp_iter_next(it, &y, NULL, NULL, 0), MP_EOF);
  mp_iter_free(it);
  mp_pool_free(p);
}


static void test_imap_million_flat_memory(void **state) {
  (void)state;
  enum { N = 1000000 };
  int *in = malloc(N * sizeof *in);
  for (int i = 0; i < N; i++)
    in[i] = i & 0x7fff;
  mp_pool *p = pool_of(2);
  long before = rss_kib(); /* peak so far, input already touched */
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, square_int, in, N, sizeof *in, sizeof(int), NULL, &it), 0);
  long long sum = 0, want = 0;
  for (int k = 0; k < N; k++) {
    int y;
    assert_int_equal(mp_iter_next(it, &y, NULL, NULL, -1), 0);
    sum += y;
    want += (long long)in[k] * in[k];
  }
  mp_iter_free(it);
  long after = rss_kib();
  mpt_pool_done(p);
  free(in);
  assert_true(sum == want);
  /* The input is 3.8 MiB; results are never all held. Under a sanitizer or
   * valgrind the process's RSS says nothing about the library. */
  if (!mpt_under_tool() && after - before > 4 * 1024)
    fail_msg("peak RSS grew by %ld KiB during imap", after - before);
}

static void test_terminate_fails_pending(void **state) {
  (void)state;
  int gate[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  mp_pool *p = pool_of(2);
  cb_log log = {0};
  mp_result *r[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(mp_pool_apply_async(p, wait_for_byte, &gate[0], sizeof gate[0],
                                         &(mp_async_opts){.callback = on_ok, .error_callback = on_err, .arg = &log}, &r[i]), 0);
  enum { N = 1000 };
  static int in[N], out[N];
  mp_result *m;
  assert_int_equal(mp_pool_map_async(p, square_int, in, N, sizeof *in, out, sizeof *out, NULL, &m), 0);
  assert_int_equal(mp_pool_terminate(p), 0);
  for (int i = 0; i < 4; i++) {
    assert_true(mp_result_ready(r[i]));
    assert_int_equal(mp_result_get(r[i], -1, NULL, NULL, NULL), MP_ECLOSED);
  }
  assert_int_equal(mp_result_get(m, -1, NULL, NULL, NULL), MP_ECLOSED);
  assert_int_equal(log.err, 4);
  assert_int_equal(mp_pool_close(p), MP_ESTATE);
  assert_int_equal(mp_pool_join(p), 0);
  mp_pool_free(p);
  /* Handles outlive the pool. */
  assert_int_equal(mp_result_get(r[0], 0, NULL, NULL, NULL), MP_ECLOSED);
  for (int i = 0; i < 4; i++)
    mp_result_free(r[i]);
  mp_result_free(m);
  close(gate[0]);
  close(gate[1]);
}

static void test_free_without_close(void **state) {
  (void)state;
  mp_pool *p = pool_of(3);
  mp_result *r;
  int x = 4, y = 0;
  assert_int_equal(mp_pool_map_async(p, square_int, &x, 1, sizeof x, &y, sizeof y, NULL, &r), 0);
  mp_result_free(r); /* detached: y may or may not be written before this */
  mp_pool_free(p);   /* terminates and reaps: the fixture checks */
}

/* The fds a pid holds that are pipes, as inode numbers. */
static int holds(const unsigned long *set, int n, unsigned long ino) {
  for (int i = 0; i < n; i++)
    if (set[i] == ino)
      return 1;
  return 0;
}

/* Counts workers past start-up: the initializer runs after a new worker
 * has closed the fds of every other library object. */
static void count_ready(void *arg) {
  mpt_shared sh;
  memcpy(&sh, arg, sizeof sh);
  _Atomic int *ready = mpt_shared_ptr(&sh);
  if (ready)
    atomic_fetch_add(ready, 1);
}

/* How many of a worker's pipes (ino, n) are in set. */
static int count_in(const unsigned long *ino, int n, const unsigned long *set, int nset) {
  int c = 0;
  for (int i = 0; i < n; i++)
    c += holds(set, nset, ino[i]);
  return c;
}

/* The pipes this process gained since before (n of them): a new pool's. */
static int new_pipes(const unsigned long *before, int nbefore, unsigned long *out, int max) {
  unsigned long now[256];
  int n = mpt_pipe_inodes(getpid(), now, 256), k = 0;
  for (int i = 0; i < n; i++)
    if (!holds(before, nbefore, now[i]) && k < max)
      out[k++] = now[i];
  return k;
}

static void test_two_pools_do_not_share_fds(void **state) {
  (void)state;
  /* Which pipes are a pool's: those the test process gains by creating it.
   * A worker also holds the runner's pipes, and under valgrind the tool's
   * own; neither is in these sets. */
  unsigned long mine[256], of_a[64], of_b[64];
  int nmine = mpt_pipe_inodes(getpid(), mine, 256);
  static mpt_shared sh;
  mpt_shared_new(&sh, sizeof(_Atomic int));
  _Atomic int *ready = sh.ptr;
  mp_pool_opts o = {.processes = 2, .initializer = count_ready, .initarg = &sh,
                    .initarg_len = sizeof sh};
  mp_pool *a = NULL, *b = NULL;
  assert_int_equal(mp_pool_create(&a, &o), 0);
  int na_set = new_pipes(mine, nmine, of_a, 64);
  nmine += new_pipes(mine, nmine, mine + nmine, 256 - nmine);
  assert_int_equal(mp_pool_create(&b, &o), 0);
  int nb_set = new_pipes(mine, nmine, of_b, 64);
  assert_true(na_set >= 4); /* two pipes per worker at least */
  assert_true(nb_set >= 4);
  /* Read the workers' fd tables only once all four are past start-up:
   * before, a worker of b may not yet have dropped a's pipes. */
  double t0 = mpt_now();
  while (atomic_load(ready) < 4 && mpt_now() - t0 < 30)
    usleep(1000);
  assert_int_equal(atomic_load(ready), 4);
  pid_t pa[2], pb[2];
  assert_int_equal(mp_pool_worker_pids(a, pa, 2), 2);
  assert_int_equal(mp_pool_worker_pids(b, pb, 2), 2);
  for (int k = 0; k < 2; k++) {
    unsigned long wa[64], wb[64];
    int na = mpt_pipe_inodes(pa[k], wa, 64), nb = mpt_pipe_inodes(pb[k], wb, 64);
    /* Each worker holds its own two pipe ends, none of another worker's
     * and none of the other pool's. */
    assert_int_equal(count_in(wa, na, of_a, na_set), 2);
    assert_int_equal(count_in(wb, nb, of_b, nb_set), 2);
    if (count_in(wb, nb, of_a, na_set) != 0)
      fail_msg("a worker of pool b holds %d of pool a's pipes",
               count_in(wb, nb, of_a, na_set));
    assert_int_equal(count_in(wa, na, of_b, nb_set), 0);
  }
  int x = 5, y;
  assert_int_equal(mp_pool_map(a, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), 0);
  assert_int_equal(mp_pool_map(b, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), 0);
  mpt_pool_done(b);
  mpt_pool_done(a);
  mpt_shared_free(&sh);
}

/* A pool that cannot work is refused with MP_EINVAL before anything is
 * forked: more workers than the fd limit has room for, or than the cap. */
static void test_processes_beyond_limits(void **state) {
  (void)state;
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  /* Each worker needs 2 fds at least in the pool's process: 50 cannot
   * live in 64. */
  struct rlimit low = {64, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  mp_pool *p = NULL;
  int rc = mp_pool_create(&p, &(mp_pool_opts){.processes = 50});
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  if (rc == 0)
    mp_pool_free(p);
  assert_int_equal(rc, MP_EINVAL);
  assert_false(mpt_has_children());
  /* Past the cap, whatever the limits (100000 once forked for a minute). */
  double t0 = mpt_now();
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.processes = 100000}),
                   MP_EINVAL);
  assert_int_equal(
      mp_pool_create(&p, &(mp_pool_opts){.processes = MP_POOL_MAX_PROCESSES + 1}),
      MP_EINVAL);
  assert_false(mpt_has_children());
  assert_true(mpt_now() - t0 < 10);
  /* Within them, a pool works as ever. */
  p = pool_of(2);
  int x = 3, y = 0;
  assert_int_equal(mp_pool_map(p, square_int, &x, 1, sizeof x, &y, sizeof y, NULL), 0);
  assert_int_equal(y, 9);
  mpt_pool_done(p);
}

/* Handles and iterators are the caller's: freed after their pool, each
 * releases all it holds (the sanitizer and valgrind runs check), and until
 * then each says what the header promises: a result complete before keeps
 * its outcome and bytes, a pending one reports MP_ECLOSED, an iterator
 * returns the items it had buffered and MP_ECLOSED for each item never
 * computed, in its order, then MP_EOF. */
static void test_handles_after_pool_free(void **state) {
  (void)state;
  int gate[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  mp_pool *p = pool_of(2);
  enum { N = 1000 };
  static int in[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  mp_result *done, *pending;
  mp_iter *it;
  assert_int_equal(mp_pool_apply_async(p, echo_reverse, "abc", 3, NULL, &done), 0);
  assert_int_equal(mp_result_wait(done, -1), 0);
  assert_int_equal(mp_pool_apply_async(p, wait_for_byte, &gate[0], sizeof gate[0],
                                       NULL, &pending),
                   0);
  assert_int_equal(mp_pool_imap(p, square_int, in, N, sizeof *in, sizeof(int),
                                &(mp_map_opts){.chunksize = 1}, &it),
                   0);
  int y;
  size_t idx;
  assert_int_equal(mp_iter_next(it, &y, &idx, NULL, -1), 0);
  assert_int_equal(idx, 0);
  mp_pool_free(p);
  const void *data;
  size_t len;
  assert_int_equal(mp_result_get(done, 0, &data, &len, NULL), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(data, "cba", 3);
  assert_true(mp_result_ready(pending));
  assert_int_equal(mp_result_get(pending, 0, NULL, NULL, NULL), MP_ECLOSED);
  int ok = 0, closed = 0, rc;
  while ((rc = mp_iter_next(it, &y, &idx, NULL, 0)) != MP_EOF) {
    assert_int_equal(idx, (size_t)(ok + closed + 1));
    if (rc == 0) {
      assert_int_equal(y, (int)(idx * idx));
      ok++;
    } else {
      assert_int_equal(rc, MP_ECLOSED);
      closed++;
    }
  }
  assert_int_equal(ok + closed, N - 1);
  assert_int_equal(mp_iter_next(it, &y, &idx, NULL, 0), MP_EOF);
  mp_iter_free(it);
  mp_result_free(pending);
  mp_result_free(done);
  close(gate[0]);
  close(gate[1]);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_map_matches_serial),
      MPT_TEST(test_map_element_sizes),
      MPT_TEST(test_map_partial_failure),
      MPT_TEST(test_apply),
      MPT_TEST(test_apply_16mib_both_ways),
      MPT_TEST(test_result_cap),
      MPT_TEST(test_workers_are_reused_children),
      MPT_TEST(test_maxtasksperchild_and_initializer),
      MPT_TEST(test_closed_and_state_errors),
      MPT_TEST(test_bad_arguments),
      MPT_TEST(test_async_apply_and_callbacks),
      MPT_TEST(test_map_async_and_progress),
      MPT_TEST(test_imap_ordered_and_unordered),
      MPT_TEST(test_progress_callback_reenters),
      MPT_TEST(test_free_cancels_queued_callback),
      MPT_TEST(test_join_with_application_child_holding_fds),
      MPT_TEST(test_terminated_iterator_stays_small),
      MPT_TEST(test_imap_million_flat_memory),
      MPT_TEST(test_join_finishes_unconsumed_iterator),
      MPT_TEST(test_terminate_fails_pending),
      MPT_TEST(test_free_without_close),
      MPT_TEST(test_two_pools_do_not_share_fds),
      MPT_TEST(test_processes_beyond_limits),
      MPT_TEST(test_handles_after_pool_free),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
