/*
 * mpi_bench.c: the MPI rows of the benchmark (bench/mpi_run drives it).
 *
 *   mpirun -n 4 mpi_bench [-q]
 *
 * Rank 0 measures, side by side in one job, the same work on a pool over
 * the 3 worker ranks (one local worker each) and on a local pool of 3
 * workers (forked by rank 0), alternating the two, and prints one line per
 * measurement: "KEY SIDE VALUE" (SIDE: mpi or local).
 *   map_cheap  seconds for a map of x*x over 1,000,000 int64 (-q: 100,000)
 *   cpu        seconds for a CPU-bound map: 48 items of ~10 ms each
 *   apply      microseconds per apply round trip of a tiny task
 *   idle_cpu   (mpi) CPU seconds the worker ranks used per second idle
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpool_mpi.h>

static int quick;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "mpi_bench: %s: %s\n", what, mp_mpi_strerror(rc));
  exit(1);
}

static int sq(const void *in, void *out) {
  int64_t v = *(const int64_t *)in;
  *(int64_t *)out = v * v;
  return 0;
}

/* ~10 ms of arithmetic per item, calibrated on rank 0 before the ranks
 * get it (the count travels in the input). */
static uint64_t spin(uint64_t x, long iters) {
  for (long i = 0; i < iters; i++)
    x = x * 6364136223846793005u + 1442695040888963407u;
  return x;
}
static int cpu_item(const void *in, void *out) {
  *(uint64_t *)out = spin(1, *(const long *)in);
  return 0;
}

static int echo(const void *arg, size_t len, mp_buf *res) {
  return mp_buf_append(res, arg, len);
}

static double map_time(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                       size_t in_size, void *out, size_t out_size) {
  double t0 = now_s();
  int rc = mp_pool_map(p, f, in, n, in_size, out, out_size, NULL);
  if (rc)
    die("map", rc);
  return now_s() - t0;
}

static double apply_us(mp_pool *p, int n) {
  char arg[16] = "ping";
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    void *r;
    size_t len;
    int rc = mp_pool_apply(p, echo, arg, sizeof arg, &r, &len, NULL);
    if (rc)
      die("apply", rc);
    free(r);
  }
  return (now_s() - t0) / n * 1e6;
}

/* utime + stime of pid, in seconds. */
static double cpu_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p)
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
           &st);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv) {
  quick = argc > 1 && strcmp(argv[1], "-q") == 0;
  int rc = mp_mpi_init(&argc, &argv, NULL);
  if (rc == MP_MPI_WORKER)
    return 0;
  if (rc < 0)
    die("mp_mpi_init", rc);
  mp_pool *mpi, *local, *local_pipe;
  if ((rc = mp_mpi_pool_create(&mpi, &(mp_pool_opts){.processes = 1}, NULL)))
    die("mp_mpi_pool_create", rc);
  int ranks = mp_pool_processes(mpi);
  if ((rc = mp_pool_create(&local, &(mp_pool_opts){.processes = ranks})))
    die("mp_pool_create", rc);
  /* The local pool over pipes too: the reference row M3's target was set
   * against, before shared memory made the local round trip ~1 us. */
  if ((rc = mp_pool_create(&local_pipe,
                           &(mp_pool_opts){.processes = ranks,
                                           .transport = MP_TRANSPORT_PIPE})))
    die("mp_pool_create", rc);

  size_t n = quick ? 100000 : 1000000;
  int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
  for (size_t i = 0; i < n; i++)
    in[i] = (int64_t)i;
  /* calibrate ~10 ms of spin here */
  long iters = 100000;
  for (;;) {
    double t0 = now_s();
    volatile uint64_t x = spin(1, iters);
    (void)x;
    double t = now_s() - t0;
    if (t > 0.005) {
      iters = (long)(iters * (0.010 / t));
      break;
    }
    iters *= 2;
  }
  enum { NCPU = 48 };
  long cin[NCPU];
  uint64_t cout[NCPU];
  for (int i = 0; i < NCPU; i++)
    cin[i] = quick ? iters / 10 : iters;

  int reps = quick ? 1 : 3;
  /* warm up both */
  map_time(mpi, sq, in, n / 10, sizeof *in, out, sizeof *out);
  map_time(local, sq, in, n / 10, sizeof *in, out, sizeof *out);
  for (int r = 0; r < reps; r++) {
    printf("map_cheap local %.6f\n",
           map_time(local, sq, in, n, sizeof *in, out, sizeof *out));
    printf("map_cheap mpi %.6f\n",
           map_time(mpi, sq, in, n, sizeof *in, out, sizeof *out));
    printf("cpu local %.6f\n", map_time(local, cpu_item, cin, NCPU, sizeof *cin,
                                        cout, sizeof *cout));
    printf("cpu mpi %.6f\n",
           map_time(mpi, cpu_item, cin, NCPU, sizeof *cin, cout, sizeof *cout));
    int na = quick ? 200 : 2000;
    printf("apply local %.3f\n", apply_us(local, na));
    printf("apply local_pipe %.3f\n", apply_us(local_pipe, na));
    printf("apply mpi %.3f\n", apply_us(mpi, na));
  }
  /* Idle ranks: their CPU over one quiet second. */
  pid_t pids[64];
  int np = mp_pool_worker_pids(mpi, pids, 64);
  double c0 = 0, c1 = 0;
  for (int i = 0; i < np; i++)
    c0 += cpu_of(pids[i]);
  double t0 = now_s();
  struct timespec ts = {quick ? 0 : 1, quick ? 300000000 : 0};
  nanosleep(&ts, NULL);
  for (int i = 0; i < np; i++)
    c1 += cpu_of(pids[i]);
  printf("idle_cpu mpi %.4f\n", (c1 - c0) / (now_s() - t0) / (np ? np : 1));
  fflush(stdout);
  mp_pool_free(local);
  mp_pool_free(local_pipe);
  mp_pool_free(mpi);
  free(in);
  free(out);
  if ((rc = mp_mpi_finalize()))
    die("mp_mpi_finalize", rc);
  return 0;
}
