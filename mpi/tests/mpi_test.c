/*
 * mpi_test.c: libmpool_mpi end to end, under mpirun/mpiexec (run_mpi.sh).
 * One program, one case per run: `mpi_test CASE`. Every rank runs it;
 * worker ranks serve inside mp_mpi_init and return; rank 0 checks and
 * exits 0 when every check held, 1 otherwise (printing what failed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpool_mpi.h>

#ifdef MPI_TEST_OTHER_BUILD
/* Another build of the same program: other bytes, another build-id. */
__attribute__((used)) static const char other_build[] = "another build";
#endif

static int failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)
#define CHECK_RC(got, want)                                                    \
  do {                                                                         \
    int g_ = (got), w_ = (want);                                               \
    if (g_ != w_) {                                                            \
      fprintf(stderr, "%s:%d: %s = %s (%d), want %s (%d)\n", __FILE__,         \
              __LINE__, #got, mp_err_name(g_), g_, mp_err_name(w_), w_);       \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- tasks ---- */

static int square(const void *in, void *out) {
  int64_t v = *(const int64_t *)in;
  *(int64_t *)out = v * v + 1;
  return 0;
}

/* Item faults by value: the codes a local pool gives. */
static int faulty(const void *in, void *out) {
  int v = *(const int *)in;
  switch (v) {
  case 10:
    raise(SIGSEGV);
    break;
  case 20:
    abort();
  case 30:
    _exit(7);
  case 40:
    sleep(30);
    break; /* past task_timeout */
  case 50:
    return 3;
  }
  *(int *)out = v + 1;
  return 0;
}

static int echo(const void *arg, size_t len, mp_buf *res) {
  return len ? mp_buf_append(res, arg, len) : 0;
}

static int sleepy(const void *in, void *out) {
  (void)in;
  sleep(30);
  *(int *)out = 0;
  return 0;
}

/* The initializer's argument crosses as bytes; this global is each local
 * worker's copy. */
static int64_t offset;
static void init_offset(void *arg) { offset = *(const int64_t *)arg; }
static int add_offset(const void *in, void *out) {
  *(int64_t *)out = *(const int64_t *)in + offset;
  return 0;
}

static void on_done(mp_result *r, void *arg) {
  (void)r;
  ++*(int *)arg;
}

/* A square that takes a while, so a map of them is under way for seconds. */
static int slow_square(const void *in, void *out) {
  struct timespec ts = {0, 40 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return square(in, out);
}

/* Says once, for the script that stops or kills a rank, that the map is
 * under way. */
static void on_progress(size_t done, size_t total, void *arg) {
  (void)total;
  if (done >= 4 && !*(int *)arg) {
    *(int *)arg = 1;
    printf("under-way\n");
    fflush(stdout);
  }
}

static int crash_apply(const void *arg, size_t len, mp_buf *res) {
  (void)arg, (void)len, (void)res;
  raise(SIGSEGV);
  return 0;
}

/* ---- cases (rank 0) ---- */

/* Results equal a local pool's for every size and chunk size. */
static int case_results(void) {
  mp_pool *mpi, *local;
  CHECK_RC(mp_mpi_pool_create(&mpi, &(mp_pool_opts){.processes = 2}, NULL), 0);
  CHECK_RC(mp_pool_create(&local, &(mp_pool_opts){.processes = 2}), 0);
  static const size_t sizes[] = {0, 1, 7, 100000};
  for (size_t k = 0; k < 4; k++) {
    size_t n = sizes[k];
    int64_t *in = malloc((n + 1) * sizeof *in);
    int64_t *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b);
    mp_status *st = malloc((n + 1) * sizeof *st);
    for (size_t i = 0; i < n; i++)
      in[i] = (int64_t)i - 3;
    size_t chunks[] = {1, 0, n + 1};
    for (int c = 0; c < 3; c++) {
      memset(a, 0, (n + 1) * sizeof *a);
      memset(b, 1, (n + 1) * sizeof *b);
      mp_map_opts o = {.chunksize = chunks[c], .status = st};
      CHECK_RC(mp_pool_map(mpi, square, in, n, sizeof *in, a, sizeof *a, &o),
               0);
      CHECK_RC(
          mp_pool_map(local, square, in, n, sizeof *in, b, sizeof *b, NULL), 0);
      CHECK(n == 0 || memcmp(a, b, n * sizeof *a) == 0);
      for (size_t i = 0; i < n; i++)
        if (st[i].code) {
          CHECK_RC(st[i].code, 0);
          break;
        }
    }
    free(in), free(a), free(b), free(st);
  }
  /* chunksize 1 over many items, through imap (in order) and
   * imap_unordered (each index once). */
  enum { M = 20000 };
  static int64_t in[M];
  for (int i = 0; i < M; i++)
    in[i] = i;
  for (int unordered = 0; unordered < 2; unordered++) {
    mp_iter *it;
    CHECK_RC((unordered ? mp_pool_imap_unordered : mp_pool_imap)(
                 mpi, square, in, M, sizeof *in, sizeof(int64_t),
                 &(mp_map_opts){.chunksize = 1}, &it),
             0);
    static char seen[M];
    memset(seen, 0, sizeof seen);
    int bad = 0;
    for (int i = 0; i < M; i++) {
      int64_t v;
      size_t idx;
      if (mp_iter_next(it, &v, &idx, NULL, 30) != 0 || idx >= M ||
          v != (int64_t)idx * (int64_t)idx + 1 || seen[idx]++ ||
          (!unordered && idx != (size_t)i))
        bad++;
    }
    CHECK(bad == 0);
    int64_t v;
    CHECK_RC(mp_iter_next(it, &v, NULL, NULL, 5), MP_EOF);
    mp_iter_free(it);
  }
  /* async with a callback, which runs on rank 0 */
  static int64_t out[7];
  mp_result *r;
  int called = 0;
  CHECK_RC(mp_pool_map_async(mpi, square, in, 7, sizeof *in, out, sizeof *out,
                             &(mp_map_async_opts){.async = {.callback = on_done,
                                                            .arg = &called}},
                             &r),
           0);
  CHECK_RC(mp_result_get(r, 30, NULL, NULL, NULL), 0);
  CHECK(out[6] == 37);
  CHECK(called == 1);
  mp_result_free(r);
  CHECK_RC(mp_pool_processes(mpi) > 0, 1);
  mp_pool_close(mpi);
  CHECK_RC(mp_pool_join(mpi), 0);
  mp_pool_free(mpi);
  mp_pool_free(local);
  return 0;
}

static int case_apply(void) {
  mp_pool *p;
  CHECK_RC(mp_mpi_pool_create(
               &p, &(mp_pool_opts){.processes = 1, .max_result_bytes = 3 << 20},
               NULL),
           0);
  void *res;
  size_t len;
  CHECK_RC(mp_pool_apply(p, echo, NULL, 0, &res, &len, NULL), 0);
  CHECK(res == NULL && len == 0);
  size_t big = (2 << 20) + 12345;
  char *arg = malloc(big);
  for (size_t i = 0; i < big; i++)
    arg[i] = (char)(i * 7);
  CHECK_RC(mp_pool_apply(p, echo, arg, big, &res, &len, NULL), 0);
  CHECK(len == big && res && memcmp(res, arg, big) == 0);
  free(res);
  free(arg);
  size_t over = (3 << 20) + 1;
  arg = calloc(1, over);
  mp_status st;
  CHECK_RC(mp_pool_apply(p, echo, arg, over, &res, &len, &st), -EMSGSIZE);
  CHECK(res == NULL && len == 0);
  free(arg);
  /* Several at once, spread over the ranks. */
  mp_result *rs[16];
  int vals[16];
  for (int i = 0; i < 16; i++) {
    vals[i] = i;
    CHECK_RC(
        mp_pool_apply_async(p, echo, &vals[i], sizeof vals[i], NULL, &rs[i]),
        0);
  }
  for (int i = 0; i < 16; i++) {
    const void *d;
    size_t l;
    CHECK_RC(mp_result_get(rs[i], 30, &d, &l, NULL), 0);
    CHECK(l == sizeof(int) && *(const int *)d == i);
    mp_result_free(rs[i]);
  }
  mp_pool_free(p);
  return 0;
}

/* Each fault fails its item alone, with a local pool's code. */
static int case_faults(void) {
  mp_pool *p;
  CHECK_RC(mp_mpi_pool_create(
               &p, &(mp_pool_opts){.processes = 2, .task_timeout = 1}, NULL),
           0);
  enum { N = 60 };
  int in[N], out[N];
  mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  CHECK_RC(mp_pool_map(p, faulty, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = 4, .status = st}),
           MP_ECRASHED);
  for (int i = 0; i < N; i++) {
    mp_status want = {0, 0};
    switch (i) {
    case 10:
      want = (mp_status){MP_ECRASHED, -SIGSEGV};
      break;
    case 20:
      want = (mp_status){MP_ECRASHED, -SIGABRT};
      break;
    case 30:
      want = (mp_status){MP_ECRASHED, 7};
      break;
    case 40:
      want = (mp_status){MP_ETIMEDOUT, 0};
      break;
    case 50:
      want = (mp_status){MP_ETASK, 3};
      break;
    }
    if (st[i].code != want.code || st[i].detail != want.detail) {
      fprintf(stderr, "item %d: %s %d, want %s %d\n", i,
              mp_err_name(st[i].code), st[i].detail, mp_err_name(want.code),
              want.detail);
      failures++;
    } else if (!want.code && out[i] != i + 1) {
      fprintf(stderr, "item %d: out %d\n", i, out[i]);
      failures++;
    }
  }
  /* apply: the same codes */
  void *res;
  size_t len;
  mp_status s;
  CHECK_RC(mp_pool_apply(p, crash_apply, NULL, 0, &res, &len, &s), MP_ECRASHED);
  CHECK_RC(s.detail, -SIGSEGV);
  mp_pool_close(p);
  CHECK_RC(mp_pool_join(p), 0);
  mp_pool_free(p);
  return 0;
}

/* A function of a library only rank 0 loaded: MP_ENOFUNC for its items
 * only; and an initializer's argument crossing as bytes. */
static int case_nofunc(const char *module) {
  void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != NULL);
  if (!h)
    return 1;
  mp_map_fn cube;
  *(void **)(&cube) = dlsym(h, "module_cube");
  CHECK(cube != NULL);
  if (!cube)
    return 1;
  int64_t off = 1000;
  mp_pool *p;
  CHECK_RC(mp_mpi_pool_create(&p,
                              &(mp_pool_opts){.processes = 1,
                                              .initializer = init_offset,
                                              .initarg = &off},
                              &(mp_mpi_pool_opts){.initarg_size = sizeof off}),
           0);
  enum { N = 9 };
  int64_t in[N], out[N];
  mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  CHECK_RC(mp_pool_map(p, cube, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st}),
           MP_ENOFUNC);
  for (int i = 0; i < N; i++)
    CHECK_RC(st[i].code, MP_ENOFUNC);
  CHECK_RC(mp_pool_map(p, add_offset, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st}),
           0);
  for (int i = 0; i < N; i++)
    CHECK(out[i] == i + 1000);
  /* rank 0 itself resolves it (the module is loaded here) */
  int64_t x = 3, y = 0;
  CHECK_RC(cube(&x, &y), 0);
  CHECK(y == 27);
  mp_pool_free(p);
  dlclose(h);
  return 0;
}

/* close + join bounded; a second pool after the first; worker pids. */
static int case_close(void) {
  for (int round = 0; round < 2; round++) {
    mp_pool *p;
    CHECK_RC(mp_mpi_pool_create(&p, NULL, NULL), 0);
    pid_t pids[8];
    int n = mp_pool_worker_pids(p, pids, 8);
    CHECK(n == mp_pool_processes(p));
    for (int i = 0; i < n; i++)
      CHECK(pids[i] > 0 && pids[i] != getpid());
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
      in[i] = i;
    CHECK_RC(
        mp_pool_map(p, square, in, 100, sizeof *in, out, sizeof *out, NULL), 0);
    double t0 = now();
    CHECK_RC(mp_pool_close(p), 0);
    CHECK_RC(mp_pool_join(p), 0);
    CHECK(now() - t0 < 5);
    CHECK_RC(
        mp_pool_map(p, square, in, 100, sizeof *in, out, sizeof *out, NULL),
        MP_ECLOSED);
    mp_pool_free(p);
  }
  return 0;
}

/* terminate during a long map reaches the ranks' local pools: tasks that
 * would sleep 30 s end at once, and finalize follows promptly. */
static int case_terminate(void) {
  mp_pool *p;
  CHECK_RC(mp_mpi_pool_create(&p, &(mp_pool_opts){.processes = 2}, NULL), 0);
  enum { N = 40 };
  int in[N] = {0}, out[N];
  mp_status st[N];
  mp_result *r;
  CHECK_RC(mp_pool_map_async(
               p, sleepy, in, N, sizeof *in, out, sizeof *out,
               &(mp_map_async_opts){.map = {.chunksize = 1, .status = st}}, &r),
           0);
  CHECK_RC(mp_result_wait(r, 0.5), MP_ETIMEDOUT);
  double t0 = now();
  CHECK_RC(mp_pool_terminate(p), 0);
  CHECK_RC(mp_result_get(r, 5, NULL, NULL, NULL), MP_ECLOSED);
  for (int i = 0; i < N; i++)
    CHECK_RC(st[i].code, MP_ECLOSED);
  mp_result_free(r);
  mp_pool_free(p);
  CHECK(now() - t0 < 5);
  return 0;
}

/* A pool over the worker ranks, their pids printed for the script that
 * stops or kills one of them. NULL (said on stderr) if it cannot be made. */
static mp_pool *pool_for_script(void) {
  mp_pool *p;
  int rc = mp_mpi_pool_create(&p, &(mp_pool_opts){.processes = 1}, NULL);
  if (rc != 0) {
    fprintf(stderr, "mp_mpi_pool_create: %s\n", mp_strerror(rc));
    return NULL;
  }
  pid_t pids[8];
  int n = mp_pool_worker_pids(p, pids, 8);
  for (int i = 0; i < n; i++)
    printf("worker-pid %d\n", (int)pids[i]);
  fflush(stdout);
  return p;
}

/* Run a long map, after printing the worker ranks' pids for the script
 * that kills one of them. */
static int case_victim(void) {
  mp_pool *p = pool_for_script();
  if (!p)
    return 1;
  enum { N = 64 };
  int in[N] = {0}, out[N];
  mp_pool_map(p, sleepy, in, N, sizeof *in, out, sizeof *out,
              &(mp_map_opts){.chunksize = 1});
  printf("map returned: the rank's loss went unseen\n");
  mp_pool_free(p);
  return 1;
}

/* Items that each run three times silent_timeout (0.5 s, set in main):
 * the busy ranks' heartbeats keep them in the pool, and the map completes
 * with no item run twice nor failed, no rank lost. */
static int slower(const void *in, void *out) {
  struct timespec ts = {1, 500 * 1000 * 1000};
  nanosleep(&ts, NULL);
  *(int64_t *)out = *(const int64_t *)in + 1;
  return 0;
}

static int case_busy(void) {
  mp_pool *p;
  CHECK_RC(mp_mpi_pool_create(&p, &(mp_pool_opts){.processes = 1}, NULL), 0);
  int n = mp_pool_processes(p);
  int64_t in[8], out[8];
  mp_status st[8];
  for (int i = 0; i < 2 * n; i++)
    in[i] = i;
  CHECK_RC(mp_pool_map(p, slower, in, (size_t)(2 * n), sizeof *in, out,
                       sizeof *out,
                       &(mp_map_opts){.chunksize = 1, .status = st}),
           0);
  for (int i = 0; i < 2 * n; i++)
    CHECK(st[i].code == 0 && out[i] == i + 1);
  pid_t pids[8];
  CHECK_RC(mp_pool_worker_pids(p, pids, 8), n);
  for (int i = 0; i < n; i++)
    CHECK(pids[i] > 0);
  mp_pool_close(p);
  CHECK_RC(mp_pool_join(p), 0);
  mp_pool_free(p);
  return 0;
}

/* A worker rank stopped or killed mid-map by lost_rank.sh, the job kept
 * alive (silent_timeout 1 s, set in main): the map completes with every
 * item right, its chunks run on the other ranks; the lost rank leaves
 * the pool, later maps and pools run without it, close/join/free stay
 * bounded, and mp_mpi_finalize (in main) says MP_MPI_ELOST at once. */
static int case_lost(void) {
  mp_pool *p = pool_for_script();
  if (!p)
    return 1;
  int n = mp_pool_processes(p);
  enum { N = 80 };
  static int64_t in[N], out[N];
  static mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = i, out[i] = -1;
  int said = 0;
  double t0 = now();
  CHECK_RC(mp_pool_map(p, slow_square, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = 1,
                                      .status = st,
                                      .progress = on_progress,
                                      .progress_arg = &said}),
           0);
  double took = now() - t0;
  int bad = 0;
  for (int i = 0; i < N; i++)
    bad += st[i].code != 0 || out[i] != (int64_t)i * i + 1;
  CHECK(bad == 0);
  CHECK(took < 15);
  printf("lost: map of %d done in %.1f s, %d wrong\n", N, took, bad);
  /* The lost rank is out of the pool: no pid for its slot. */
  pid_t now_pids[8];
  CHECK_RC(mp_pool_worker_pids(p, now_pids, 8), n);
  int gone = 0;
  for (int i = 0; i < n; i++)
    gone += now_pids[i] == 0;
  CHECK(gone == 1);
  /* The ranks left run the next map. */
  CHECK_RC(mp_pool_map(p, square, in, N, sizeof *in, out, sizeof *out, NULL),
           0);
  CHECK(out[N - 1] == (int64_t)(N - 1) * (N - 1) + 1);
  t0 = now();
  CHECK_RC(mp_pool_close(p), 0);
  CHECK_RC(mp_pool_join(p), 0);
  mp_pool_free(p);
  CHECK(now() - t0 < 5);
  /* A new pool is made of the ranks left. */
  CHECK_RC(mp_mpi_pool_create(&p, NULL, NULL), 0);
  CHECK_RC(mp_pool_processes(p), n - 1);
  CHECK_RC(mp_pool_map(p, square, in, N, sizeof *in, out, sizeof *out, NULL),
           0);
  CHECK(out[7] == 50);
  mp_pool_free(p);
  return 0;
}

int main(int argc, char **argv) {
  const char *c = argc > 1 ? argv[1] : "";
  int lost = strcmp(c, "lost") == 0, busy = strcmp(c, "busy") == 0;
  mp_mpi_opts mo = {.silent_timeout = busy ? 0.5 : 1};
  int rc = mp_mpi_init(&argc, &argv, lost || busy ? &mo : NULL);
  if (strcmp(c, "one") == 0) {
    /* A world of one rank: the clear error, at once. */
    if (rc != MP_MPI_ENOWORKERS) {
      fprintf(stderr, "one: %s\n", mp_mpi_strerror(rc));
      return 1;
    }
    printf("one: %s\n", mp_mpi_strerror(rc));
    return 0;
  }
  if (strcmp(c, "build") == 0) {
    /* Started beside another build (MPMD): every rank refuses. */
    if (rc != MP_MPI_EBUILD) {
      fprintf(stderr, "build: %s\n", mp_mpi_strerror(rc));
      return 1;
    }
    return 0;
  }
  if (rc == MP_MPI_WORKER)
    return 0;
  if (lost && rc == MP_MPI_ELOST) {
    /* A worker rank after rank 0's verdict, MPI left as is. Rank 0 still
     * prints its checks: a rank exiting non-zero now would have the
     * launcher end the job before it does. Rank 0's exit ends this rank;
     * the bound is for a launcher that does not. */
    struct timespec tick = {0, 100000000};
    for (double end = now() + 20; now() < end;)
      nanosleep(&tick, NULL);
    return 3;
  }
  if (rc < 0) {
    fprintf(stderr, "mp_mpi_init: %s\n", mp_mpi_strerror(rc));
    return 1;
  }
  if (strcmp(c, "results") == 0)
    case_results();
  else if (strcmp(c, "apply") == 0)
    case_apply();
  else if (strcmp(c, "faults") == 0)
    case_faults();
  else if (strcmp(c, "nofunc") == 0)
    case_nofunc(argc > 2 ? argv[2] : "");
  else if (strcmp(c, "close") == 0)
    case_close();
  else if (strcmp(c, "terminate") == 0)
    case_terminate();
  else if (strcmp(c, "victim") == 0)
    return case_victim();
  else if (lost)
    case_lost();
  else if (busy)
    case_busy();
  else {
    fprintf(stderr, "unknown case '%s'\n", c);
    failures++;
  }
  double t0 = now();
  int frc = mp_mpi_finalize();
  /* With a rank lost MPI is left unfinalized, and rank 0 exits non-zero
   * (3, after its verdict) so that the launcher ends the job. */
  CHECK_RC(frc, lost ? MP_MPI_ELOST : 0);
  CHECK(now() - t0 < (lost ? 5 : 10));
  if (failures)
    fprintf(stderr, "%s: %d checks failed\n", c, failures);
  else
    printf("%s: ok\n", c);
  fflush(stdout);
  return failures ? 1 : lost ? 3 : 0;
}
