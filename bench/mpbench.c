/*
 * mpbench: the C side of libmpool's benchmarks (issue 7).
 *
 *   mpbench [-q] ROW      one round of row ROW (1..7), libmpool and its C
 *                         floor measured side by side, interleaved
 *   mpbench [-q] 2 MODE   row 2 with its processes placed: "same" (all on
 *                         one CPU) or "split" (parent on one, peer on another)
 *   mpbench [-q] info     facts about this build (compiler, library version)
 *
 * Each round prints "side key value" lines on stdout, e.g. "lib us 12.5";
 * bench/run collects the rounds, takes medians and ratios, and prints the
 * table. -q: smoke sizes (a few milliseconds per row). Python's side of the
 * same rows is bench/py_bench.py. Every number is measured here, never
 * asserted: timing belongs to the bench, not to ctest.
 *
 * Rows (see BENCHMARKS.md for the targets):
 *   1 map x*x over 1,000,000 int64, Pool(2), map call only     items/s
 *   2 apply round trip, tiny task | raw pipe ping-pong          us per trip
 *   3 process create+start+join  | raw fork + waitpid          us per process
 *   4 CPU-bound map over 1..ncpu workers | the same job serial  seconds
 *   5 map over 64 x 1 MiB returning len | raw 1 MiB pipe        MB/s
 *   6 pool create + close + join (2 workers, no task)           ms
 *   7 maxtasksperchild=1, per task | raw fork per task          us per task
 *   4 pipe: row 4 with its pools over the pipes transport
 *   shm MODE: the shm transport ("lib") against the pipes transport
 *     ("floor"), both libmpool, side by side (issue 17): MODE same / split,
 *     the apply round trip placed as row 2 (us); map1, a map of 1,000,000
 *     tiny items with chunksize 1 over 2 workers (items/s); idle, the CPU
 *     seconds a pool of 2 workers uses over 10 s with nothing to do, half
 *     of it outside the library and half waiting in it for a task that
 *     sleeps (cpu_s)
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int quick;
static int row4_transport; /* row 4's pools: 0 (the default) or "4 pipe" */

const char *bench_name = "mpbench";

/* A system call that must succeed (-1 and errno on failure). */
#define SYS(call)                                                              \
  do {                                                                         \
    if ((call) < 0)                                                            \
      die(#call, 0);                                                           \
  } while (0)

/* Inner repetitions per round: the round reports their median. */
static int inner(int full) { return quick ? 1 : full; }

/* What one measurement of a side needs; each side uses its part. */
typedef struct sample {
  mp_pool *pool;
  const char *in;
  int n;
} sample;
typedef double (*side_fn)(const sample *);

/* The method of every row with a floor: five rounds, the two sides run
 * back to back in each, the order alternating so that neither always runs
 * first; each side's median is emitted under key. */
static void side_by_side(const char *key, side_fn lib_fn, side_fn floor_fn,
                         const sample *s) {
  double lib[5], floor_[5];
  int reps = inner(5);
  for (int r = 0; r < reps; r++) {
    if (r % 2) {
      lib[r] = lib_fn(s);
      floor_[r] = floor_fn(s);
    } else {
      floor_[r] = floor_fn(s);
      lib[r] = lib_fn(s);
    }
  }
  emit("lib", key, median(lib, reps));
  emit("floor", key, median(floor_, reps));
}

/* ---- raw pipe helpers for the floors (blocking, whole counts) ---- */

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      die("write", 0);
    p += w;
    n -= (size_t)w;
  }
}

/* Returns 0, or -1 at EOF before n bytes. */
static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      die("read", 0);
    if (r == 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      die("waitpid", 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "mpbench: child %d failed (status %#x)\n", (int)pid, st);
    exit(1);
  }
}

/* ---- row 1: map of x*x over 1,000,000 ints ---- */

static int sq(const void *in, void *out) {
  uint64_t x; /* unsigned: row 4 squares big values too (wraps, no UB) */
  memcpy(&x, in, sizeof x);
  x *= x;
  memcpy(out, &x, sizeof x);
  return 0;
}

/* in[i] = i and room for as many outputs, n of each (freed by the row). */
static size_t int_inputs(int64_t **in, int64_t **out) {
  size_t n = quick ? 20000 : 1000000;
  *in = malloc(n * sizeof **in);
  *out = malloc(n * sizeof **out);
  if (!*in || !*out)
    die("malloc", -ENOMEM);
  for (size_t i = 0; i < n; i++)
    (*in)[i] = (int64_t)i;
  return n;
}

static void row_map(void) {
  int64_t *in, *out;
  size_t n = int_inputs(&in, &out);
  mp_pool *pool;
  CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}));
  CHECK(mp_pool_map(pool, sq, in, n, sizeof *in, out, sizeof *out, NULL));
  double v[5];
  int reps = inner(5);
  for (int r = 0; r < reps; r++) {
    memset(out, 0, n * sizeof *out);
    double t0 = now_s();
    CHECK(mp_pool_map(pool, sq, in, n, sizeof *in, out, sizeof *out, NULL));
    v[r] = (double)n / (now_s() - t0);
    for (size_t i = 0; i < n; i += 9973)
      if (out[i] != (int64_t)i * (int64_t)i)
        die("row 1: wrong result", MP_EPROTO);
  }
  mp_pool_free(pool);
  emit("lib", "items_per_s", median(v, reps));
  free(in);
  free(out);
}

/* ---- CPU placement (row 2) ---- */

/* A round trip costs ~5 us when both processes share a CPU and several
 * times that when a wakeup must cross CPUs (an IPI; on a VM, an exit from
 * the idle vCPU), and an unpinned run flips between the two at the
 * scheduler's whim. Row 2 therefore pins, and reports both placements. */
enum { PLACE_FREE, PLACE_SAME, PLACE_SPLIT };
static int place;
static int cpu_a = -1, cpu_b = -1; /* the first two CPUs we may use */

static void pick_cpus(void) {
  cpu_set_t s;
  if (sched_getaffinity(0, sizeof s, &s) < 0)
    die("sched_getaffinity", 0);
  for (int i = 0; i < CPU_SETSIZE && cpu_b < 0; i++)
    if (CPU_ISSET(i, &s)) {
      if (cpu_a < 0)
        cpu_a = i;
      else
        cpu_b = i;
    }
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  if (sched_setaffinity(0, sizeof s, &s) < 0)
    die("sched_setaffinity", 0);
}

/* Around a fork (or pool creation): children are born with the caller's
 * affinity, so under "split" move to cpu_b first and back after. */
static void place_child_begin(void) {
  if (place == PLACE_SPLIT)
    pin(cpu_b);
}

static void place_child_end(void) {
  if (place == PLACE_SPLIT)
    pin(cpu_a);
}

/* ---- row 2: apply round trip against a raw pipe ping-pong ---- */

static int echo(const void *arg, size_t len, mp_buf *res) {
  return mp_buf_append(res, arg, len);
}

static double apply_lib(const sample *s) {
  mp_pool *pool = s->pool;
  int n = s->n;
  uint64_t x = 42;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    void *res;
    size_t len;
    CHECK(mp_pool_apply(pool, echo, &x, sizeof x, &res, &len, NULL));
    if (len != sizeof x)
      die("row 2: wrong result length", MP_EPROTO);
    free(res);
  }
  return (now_s() - t0) / n * 1e6;
}

/* A child that echoes 8-byte messages until EOF: the floor of a round trip. */
static double apply_floor(const sample *s) {
  int n = s->n;
  int down[2], up[2];
  SYS(pipe2(down, O_CLOEXEC));
  SYS(pipe2(up, O_CLOEXEC));
  place_child_begin();
  pid_t pid = fork();
  SYS(pid);
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    uint64_t m;
    while (read_all(down[0], &m, sizeof m) == 0)
      write_all(up[1], &m, sizeof m);
    _exit(0);
  }
  place_child_end();
  close(down[0]);
  close(up[1]);
  uint64_t m = 42;
  for (int i = 0; i < 100; i++) { /* warm up, as the pool is */
    write_all(down[1], &m, sizeof m);
    read_all(up[0], &m, sizeof m);
  }
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    write_all(down[1], &m, sizeof m);
    if (read_all(up[0], &m, sizeof m) < 0)
      die("row 2: floor child died", MP_ECRASHED);
  }
  double us = (now_s() - t0) / n * 1e6;
  close(down[1]);
  close(up[0]);
  reap(pid);
  return us;
}

static void row_apply(void) {
  /* ~0.03 s per sample on either placement */
  int n = quick ? 200 : place == PLACE_SAME ? 4000 : 600;
  pick_cpus();
  if (place == PLACE_SPLIT && cpu_b < 0)
    return; /* one CPU: nothing to split; the runner reports n/a */
  if (place != PLACE_FREE)
    pin(cpu_a);
  mp_pool *pool;
  place_child_begin();
  CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}));
  place_child_end();
  (void)apply_lib(&(sample){.pool = pool, .n = 100}); /* warm up */
  side_by_side("us", apply_lib, apply_floor, &(sample){.pool = pool, .n = n});
  mp_pool_free(pool);
}

/* ---- row 3: process create + start + join against fork + waitpid ---- */

static int noop_target(void *arg) {
  (void)arg;
  return 0;
}

static double proc_lib(const sample *s) {
  int n = s->n;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    mp_process *p;
    CHECK(mp_process_create(&p, noop_target, NULL, NULL));
    CHECK(mp_process_start(p));
    CHECK(mp_process_join(p, -1));
    int code = -1;
    CHECK(mp_process_exitcode(p, &code));
    if (code != 0)
      die("row 3: wrong exit code", MP_ECRASHED);
    mp_process_free(p);
  }
  return (now_s() - t0) / n * 1e6;
}

static double proc_floor(const sample *s) {
  int n = s->n;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0)
      _exit(noop_target(NULL));
    reap(pid);
  }
  return (now_s() - t0) / n * 1e6;
}

static void row_process(void) {
  int n = quick ? 10 : 200;
  (void)proc_floor(&(sample){.n = 5});
  (void)proc_lib(&(sample){.n = 5});
  side_by_side("us", proc_lib, proc_floor, &(sample){.n = n});
}

/* ---- row 4: CPU-bound job over 1..ncpu workers against serial ---- */

static long spin_iters; /* set before any fork: workers inherit it */

static uint64_t spin(uint64_t x, long iters) {
  x |= 1;
  for (long i = 0; i < iters; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

static int cpu_item(const void *in, void *out) {
  uint64_t x;
  memcpy(&x, in, sizeof x);
  x = spin(x, spin_iters);
  memcpy(out, &x, sizeof x);
  return 0;
}

/* The serial job calls the task through a pointer, as a worker does. */
static int (*volatile cpu_fn)(const void *, void *) = cpu_item;

/*
 * Other work on the machine. Row 4 asks whether k workers get k cores' worth
 * of work done; when someone else's job holds a core meanwhile, the answer
 * is about that job, not the library. So each phase also reports how many
 * CPUs' worth of time went to others: the machine's busy time (/proc/stat,
 * steal included) minus our own (this process and the pool's workers, from
 * /proc/PID/stat), over the phase's wall time. Resolution: one clock tick
 * (10 ms) per counter.
 */
static long long machine_busy(void) {
  FILE *f = fopen("/proc/stat", "r");
  long long u = 0, n = 0, s = 0, idle = 0, io = 0, irq = 0, sirq = 0, st = 0;
  if (!f)
    return -1;
  int got = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &u, &n,
                   &s, &idle, &io, &irq, &sirq, &st);
  fclose(f);
  return got >= 7 ? u + n + s + irq + sirq + st : -1;
}

static long long proc_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long long ut = 0, stt = 0;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                   &ut, &stt) != 2)
    return 0;
  return (long long)(ut + stt);
}

static long long own_ticks(mp_pool *pool) {
  long long t = proc_ticks(getpid());
  if (pool) {
    pid_t pids[64];
    int n = mp_pool_worker_pids(pool, pids, 64);
    for (int i = 0; i < n; i++)
      if (pids[i] > 0)
        t += proc_ticks(pids[i]);
  }
  return t;
}

typedef struct others {
  long long busy, own;
  double t0;
  mp_pool *pool;
} others;

static void others_begin(others *o, mp_pool *pool) {
  o->pool = pool;
  o->busy = machine_busy();
  o->own = own_ticks(pool);
  o->t0 = now_s();
}

/* CPUs' worth of others' work since others_begin (-1: unknown). */
static double others_end(const others *o) {
  double wall = now_s() - o->t0;
  long long busy = machine_busy(), own = own_ticks(o->pool);
  if (o->busy < 0 || busy < 0 || wall <= 0)
    return -1;
  double other = (double)((busy - o->busy) - (own - o->own)) /
                 (double)sysconf(_SC_CLK_TCK) / wall;
  return other < 0 ? 0 : other;
}

static void row_cpu(void) {
  enum { N = 64 };
  /* Calibrate: about 6 ms per item (0.4 s serial), 0.2 ms when quick. */
  double per_item = quick ? 0.0002 : 0.006;
  double t0 = now_s();
  volatile uint64_t sink = spin(1, 2000000);
  (void)sink;
  double per_iter = (now_s() - t0) / 2000000;
  spin_iters = (long)(per_item / per_iter);
  if (spin_iters < 1000)
    spin_iters = 1000;

  uint64_t in[N], ref[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = (uint64_t)i * 0x9e3779b97f4a7c15u;
  int ncpu = mp_cpu_count();
  if (ncpu > 16)
    ncpu = 16;
  mp_pool *pools[17] = {0};
  for (int k = 1; k <= ncpu; k++)
    CHECK(mp_pool_create(&pools[k], &(mp_pool_opts){
                                        .processes = k,
                                        .transport = row4_transport}));
  /* Warm each pool's workers and buffers with a tiny map. */
  for (int k = 1; k <= ncpu; k++)
    CHECK(mp_pool_map(pools[k], sq, in, 4, sizeof *in, out, sizeof *out,
                      NULL));

  others o;
  others_begin(&o, NULL);
  t0 = now_s();
  for (int i = 0; i < N; i++)
    cpu_fn(&in[i], &ref[i]);
  double serial = now_s() - t0;
  emit("info", "other_serial", others_end(&o));
  emit("floor", "serial_s", serial);
  for (int k = 1; k <= ncpu; k++) {
    others_begin(&o, pools[k]);
    t0 = now_s();
    CHECK(mp_pool_map(pools[k], cpu_item, in, N, sizeof *in, out, sizeof *out,
                      NULL));
    double t = now_s() - t0;
    double other = others_end(&o);
    if (memcmp(out, ref, sizeof out) != 0)
      die("row 4: wrong result", MP_EPROTO);
    char key[32];
    snprintf(key, sizeof key, "w%d_s", k);
    emit("lib", key, t);
    snprintf(key, sizeof key, "other_w%d", k);
    emit("info", key, other);
  }
  for (int k = 1; k <= ncpu; k++)
    mp_pool_free(pools[k]);
  emit("info", "ncpu", ncpu);
  emit("info", "item_ms", serial / N * 1e3);
}

/* ---- row 5: big items against a raw pipe of 1 MiB ---- */

static size_t big_size;

static int len_item(const void *in, void *out) {
  (void)in;
  uint64_t n = big_size;
  memcpy(out, &n, sizeof n);
  return 0;
}

static double stream_lib(const sample *s) {
  size_t n = (size_t)s->n;
  uint64_t *out = calloc(n, sizeof *out);
  if (!out)
    die("calloc", -ENOMEM);
  double t0 = now_s();
  CHECK(mp_pool_map(s->pool, len_item, s->in, n, big_size, out, sizeof *out, NULL));
  double t = now_s() - t0;
  for (size_t i = 0; i < n; i++)
    if (out[i] != big_size)
      die("row 5: wrong result", MP_EPROTO);
  free(out);
  return (double)(n * big_size) / t / 1e6;
}

/* One child reads n items of big_size bytes through a 1 MiB pipe and
 * answers each with its length: the floor of moving the bytes. */
static double stream_floor(const sample *s) {
  size_t n = (size_t)s->n;
  const char *in = s->in;
  int down[2], up[2];
  SYS(pipe2(down, O_CLOEXEC));
  SYS(pipe2(up, O_CLOEXEC));
  (void)fcntl(down[1], F_SETPIPE_SZ, 1 << 20);
  (void)fcntl(up[1], F_SETPIPE_SZ, 1 << 20);
  pid_t pid = fork();
  SYS(pid);
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    char *buf = malloc(big_size);
    if (!buf)
      _exit(1);
    memset(buf, 0, big_size); /* fault the pages in, as a warm worker has */
    for (size_t i = 0; i < n; i++) {
      if (read_all(down[0], buf, big_size) < 0)
        _exit(1);
      uint64_t len = big_size;
      write_all(up[1], &len, sizeof len);
    }
    _exit(0);
  }
  close(down[0]);
  close(up[1]);
  /* Let the child fault its buffer in before the clock starts. */
  struct timespec ms = {0, 2000000};
  nanosleep(&ms, NULL);
  double t0 = now_s();
  for (size_t i = 0; i < n; i++)
    write_all(down[1], in + i * big_size, big_size);
  for (size_t i = 0; i < n; i++) {
    uint64_t len;
    if (read_all(up[0], &len, sizeof len) < 0 || len != big_size)
      die("row 5: floor child failed", MP_ECRASHED);
  }
  double t = now_s() - t0;
  close(down[1]);
  close(up[0]);
  reap(pid);
  return (double)(n * big_size) / t / 1e6;
}

static void row_stream(void) {
  int n = quick ? 8 : 64;
  big_size = (size_t)1 << 20;
  char *in = malloc((size_t)n * big_size);
  if (!in)
    die("malloc", -ENOMEM);
  for (size_t i = 0; i < (size_t)n * big_size; i++)
    in[i] = (char)(i * 131 >> 3);
  mp_pool *pool;
  CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}));
  (void)stream_lib(&(sample){.pool = pool, .in = in, .n = 8}); /* warm up */
  side_by_side("mb_per_s", stream_lib, stream_floor,
               &(sample){.pool = pool, .in = in, .n = n});
  mp_pool_free(pool);
  free(in);
}

/* ---- row 6: pool create + close + join, no tasks ---- */

static void row_pool_life(void) {
  int n = quick ? 5 : 50;
  double v[5];
  int reps = inner(5);
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
      mp_pool *pool;
      CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2}));
      CHECK(mp_pool_close(pool));
      CHECK(mp_pool_join(pool));
      mp_pool_free(pool);
    }
    v[r] = (now_s() - t0) / n * 1e3;
  }
  emit("lib", "ms", median(v, reps));
}

/* ---- row 7: worker replacement against a raw fork per task ---- */

/* n one-item tasks on a pool of 1 worker that serves one task, its
 * workers started by method: microseconds per task. */
static double replace_with(int method, int n) {
  int64_t *in = malloc((size_t)n * sizeof *in);
  int64_t *out = malloc((size_t)n * sizeof *out);
  if (!in || !out)
    die("malloc", -ENOMEM);
  for (int i = 0; i < n; i++)
    in[i] = i;
  mp_pool *pool;
  CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 1,
                                              .maxtasksperchild = 1,
                                              .start_method = method}));
  double t0 = now_s();
  CHECK(mp_pool_map(pool, sq, in, (size_t)n, sizeof *in, out, sizeof *out,
                    &(mp_map_opts){.chunksize = 1}));
  double us = (now_s() - t0) / n * 1e6;
  for (int i = 0; i < n; i++)
    if (out[i] != (int64_t)i * i)
      die("row 7: wrong result", MP_EPROTO);
  mp_pool_free(pool);
  free(in);
  free(out);
  return us;
}

static double replace_lib(const sample *s) {
  return replace_with(MP_START_FORK, s->n);
}

/* A fresh child per task: fork, compute, send the result, exit, reap. */
static double replace_floor(const sample *s) {
  int n = s->n;
  int up[2];
  SYS(pipe2(up, O_CLOEXEC));
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    int64_t x = i, y;
    pid_t pid = fork();
    SYS(pid);
    if (pid == 0) {
      sq(&x, &y);
      write_all(up[1], &y, sizeof y);
      _exit(0);
    }
    if (read_all(up[0], &y, sizeof y) < 0 || y != x * x)
      die("row 7: floor child failed", MP_ECRASHED);
    reap(pid);
  }
  double us = (now_s() - t0) / n * 1e6;
  close(up[0]);
  close(up[1]);
  return us;
}

static void row_replace(void) {
  int n = quick ? 10 : 200;
  (void)replace_lib(&(sample){.n = 5});
  (void)replace_floor(&(sample){.n = 5});
  side_by_side("us", replace_lib, replace_floor, &(sample){.n = n});
}

/* ---- row 8: the forkserver start method against fork ----
 * The "lib" side is forkserver, the "floor" side the same work under fork,
 * measured alternately in one process; Python's forkserver runs after. */

enum { FS_CREATE, FS_APPLY, FS_REPLACE };
static int fs_part;

static double life_with(int method, int n) {
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    mp_pool *pool;
    CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2,
                                                .start_method = method}));
    CHECK(mp_pool_close(pool));
    CHECK(mp_pool_join(pool));
    mp_pool_free(pool);
  }
  return (now_s() - t0) / n * 1e3;
}
static double life_fs(const sample *s) {
  return life_with(MP_START_FORKSERVER, s->n);
}
static double life_fork(const sample *s) {
  return life_with(MP_START_FORK, s->n);
}

static mp_pool *fs_pool, *fork_pool;
static double apply_fs(const sample *s) {
  return apply_lib(&(sample){.pool = fs_pool, .n = s->n});
}
static double apply_fork(const sample *s) {
  return apply_lib(&(sample){.pool = fork_pool, .n = s->n});
}

static double replace_fs(const sample *s) {
  return replace_with(MP_START_FORKSERVER, s->n);
}

static void row_forkserver(void) {
  if (fs_part == FS_CREATE) {
    int n = quick ? 5 : 50;
    (void)life_fs(&(sample){.n = 2});
    side_by_side("ms", life_fs, life_fork, &(sample){.n = n});
  } else if (fs_part == FS_APPLY) {
    /* Pinned to one CPU, as row 2a: an unpinned round trip flips between
     * two regimes (see row 2), which would swamp a 10% target. */
    int n = quick ? 200 : 4000;
    pick_cpus();
    pin(cpu_a);
    CHECK(mp_pool_create(&fs_pool, &(mp_pool_opts){
                                       .processes = 2,
                                       .start_method = MP_START_FORKSERVER}));
    CHECK(mp_pool_create(&fork_pool, &(mp_pool_opts){
                                         .processes = 2,
                                         .start_method = MP_START_FORK}));
    (void)apply_fs(&(sample){.n = 100}); /* warm up */
    (void)apply_fork(&(sample){.n = 100});
    side_by_side("us", apply_fs, apply_fork, &(sample){.n = n});
    mp_pool_free(fs_pool);
    mp_pool_free(fork_pool);
  } else {
    int n = quick ? 10 : 200;
    (void)replace_fs(&(sample){.n = 5});
    (void)replace_lib(&(sample){.n = 5});
    side_by_side("us", replace_fs, replace_lib, &(sample){.n = n});
  }
}

/* ---- main ---- */

static void info(void) {
#if defined(__clang__)
  printf("compiler clang %s\n", __clang_version__);
#elif defined(__GNUC__)
  printf("compiler gcc %s\n", __VERSION__);
#else
  printf("compiler unknown\n");
#endif
#ifdef __OPTIMIZE__
  printf("optimized yes\n");
#else
  printf("optimized no\n");
#endif
  printf("mpool %s\n", mp_version());
  printf("ncpu %d\n", mp_cpu_count());
}

/* ---- rows 13a-13d: the shm transport against the pipes transport ---- */

static int shm_mode; /* 0 same, 1 split, 2 map1, 3 idle */

static mp_pool *transport_pool(int transport) {
  mp_pool *pool;
  place_child_begin();
  CHECK(mp_pool_create(&pool, &(mp_pool_opts){.processes = 2,
                                              .transport = transport}));
  place_child_end();
  (void)apply_lib(&(sample){.pool = pool, .n = 200}); /* warm up */
  return pool;
}

/* The pipes pool rides in sample.in (side_fn has one pool slot). */
static double apply_pipe_pool(const sample *s) {
  return apply_lib(&(sample){.pool = (mp_pool *)(void *)s->in, .n = s->n});
}

static void shm_apply(void) {
  int n = quick ? 200 : place == PLACE_SAME ? 4000 : 20000;
  pick_cpus();
  if (place == PLACE_SPLIT && cpu_b < 0)
    return; /* one CPU: the runner reports n/a */
  pin(cpu_a);
  mp_pool *shm = transport_pool(MP_TRANSPORT_SHM);
  mp_pool *pipe = transport_pool(MP_TRANSPORT_PIPE);
  side_by_side("us", apply_lib, apply_pipe_pool,
               &(sample){.pool = shm, .in = (const char *)(void *)pipe,
                         .n = n});
  mp_pool_free(shm);
  mp_pool_free(pipe);
}

static int add_one(const void *in, void *out) {
  int64_t x;
  memcpy(&x, in, sizeof x);
  x += 1;
  memcpy(out, &x, sizeof x);
  return 0;
}

static double map1_rate(mp_pool *pool, const int64_t *in, int64_t *out,
                        size_t n) {
  double t0 = now_s();
  CHECK(mp_pool_map(pool, add_one, in, n, sizeof *in, out, sizeof *out,
                    &(mp_map_opts){.chunksize = 1}));
  double rate = (double)n / (now_s() - t0);
  for (size_t i = 0; i < n; i += 997)
    if (out[i] != in[i] + 1)
      die("row 13c: wrong result", MP_EPROTO);
  return rate;
}

static void shm_map1(void) {
  int64_t *in, *out;
  size_t n = int_inputs(&in, &out);
  mp_pool *shm = transport_pool(MP_TRANSPORT_SHM);
  mp_pool *pipe = transport_pool(MP_TRANSPORT_PIPE);
  double a[5], b[5];
  int reps = inner(3);
  for (int r = 0; r < reps; r++) {
    if (r % 2) {
      a[r] = map1_rate(shm, in, out, n);
      b[r] = map1_rate(pipe, in, out, n);
    } else {
      b[r] = map1_rate(pipe, in, out, n);
      a[r] = map1_rate(shm, in, out, n);
    }
  }
  emit("lib", "items_per_s", median(a, reps));
  emit("floor", "items_per_s", median(b, reps));
  mp_pool_free(shm);
  mp_pool_free(pipe);
  free(in);
  free(out);
}

/* CPU time a process has used, from /proc/PID/schedstat (ns, exact). */
static double cpu_s_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
  FILE *f = fopen(path, "r");
  unsigned long long ns = 0;
  if (!f || fscanf(f, "%llu", &ns) != 1)
    die("row 13d: cannot read schedstat", 0);
  fclose(f);
  return (double)ns / 1e9;
}

static double pool_cpu_s(mp_pool *pool) {
  pid_t pids[2];
  int n = mp_pool_worker_pids(pool, pids, 2);
  double t = cpu_s_of(getpid());
  for (int i = 0; i < n; i++)
    t += pids[i] > 0 ? cpu_s_of(pids[i]) : 0;
  return t;
}

static int nap(const void *arg, size_t len, mp_buf *res) {
  (void)len;
  (void)res;
  double s;
  memcpy(&s, arg, sizeof s);
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
  return 0;
}

/* Over T seconds: T/2 with the pool untouched, then T/2 waiting in
 * mp_result_wait for a task that sleeps (one worker asleep in its task,
 * one idle, the parent in the library). */
static double idle_cpu(mp_pool *pool, double t) {
  double c0 = pool_cpu_s(pool);
  struct timespec ts = {(time_t)(t / 2), (long)((t / 2 - (double)(time_t)(t / 2)) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
  double half = t / 2;
  mp_result *r;
  CHECK(mp_pool_apply_async(pool, nap, &half, sizeof half, NULL, &r));
  CHECK(mp_result_get(r, -1, NULL, NULL, NULL));
  mp_result_free(r);
  return pool_cpu_s(pool) - c0;
}

static void shm_idle(void) {
  double t = quick ? 0.4 : 10;
  mp_pool *shm = transport_pool(MP_TRANSPORT_SHM);
  mp_pool *pipe = transport_pool(MP_TRANSPORT_PIPE);
  /* One measurement each per round: the rounds give the median. */
  emit("lib", "cpu_s", idle_cpu(shm, t));
  emit("floor", "cpu_s", idle_cpu(pipe, t));
  emit("info", "idle_s", t);
  mp_pool_free(shm);
  mp_pool_free(pipe);
}

static void row_shm(void) {
  if (shm_mode <= 1) {
    place = shm_mode == 0 ? PLACE_SAME : PLACE_SPLIT;
    shm_apply();
  } else if (shm_mode == 2) {
    shm_map1();
  } else {
    shm_idle();
  }
}

static int usage(void) {
  fprintf(stderr, "usage: mpbench [-q] {1..7|fs|shm|info} (2: [same|split]; "
                  "4: [pipe]; fs: create|apply|replace; "
                  "shm: same|split|map1|idle)\n");
  return 2;
}

int main(int argc, char **argv) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "-q") == 0) {
    quick = 1;
    i++;
  }
  if (i + 1 != argc && !(i + 2 == argc && (strcmp(argv[i], "2") == 0 ||
                                            strcmp(argv[i], "4") == 0 ||
                                            strcmp(argv[i], "shm") == 0 ||
                                            strcmp(argv[i], "fs") == 0)))
    return usage();
  const char *row = argv[i];
  if (strcmp(row, "shm") == 0) {
    static const char *const modes[] = {"same", "split", "map1", "idle"};
    shm_mode = -1;
    for (int k = 0; i + 2 == argc && k < 4; k++)
      if (strcmp(argv[i + 1], modes[k]) == 0)
        shm_mode = k;
    if (shm_mode < 0)
      return usage();
    row_shm();
    return fflush(stdout) == 0 ? 0 : 1;
  }
  if (strcmp(row, "4") == 0 && i + 2 == argc) {
    if (strcmp(argv[i + 1], "pipe") != 0)
      return usage();
    row4_transport = MP_TRANSPORT_PIPE;
    row_cpu();
    return fflush(stdout) == 0 ? 0 : 1;
  }
  if (i + 2 == argc && strcmp(row, "fs") == 0) {
    static const char *const parts[] = {"create", "apply", "replace"};
    fs_part = -1;
    for (int k = 0; k < 3; k++)
      if (strcmp(argv[i + 1], parts[k]) == 0)
        fs_part = k;
    if (fs_part < 0)
      return usage();
  } else if (i + 2 == argc) {
    if (strcmp(argv[i + 1], "same") == 0)
      place = PLACE_SAME;
    else if (strcmp(argv[i + 1], "split") == 0)
      place = PLACE_SPLIT;
    else
      return usage();
  }
  static void (*const rows[])(void) = {
      row_map,    row_apply,     row_process, row_cpu,
      row_stream, row_pool_life, row_replace};
  if (strcmp(row, "info") == 0) {
    info();
  } else if (strcmp(row, "fs") == 0) {
    row_forkserver();
  } else if (row[0] >= '1' && row[0] <= '7' && row[1] == '\0') {
    rows[row[0] - '1']();
  } else {
    return usage();
  }
  return fflush(stdout) == 0 ? 0 : 1;
}
