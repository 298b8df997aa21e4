/*
 * q1_why.c: Q1, what is multiprocessing and why is it useful? Because a
 * CPU-bound job runs on every core at once. Count the primes below N
 * serially, then on a pool of mp_cpu_count() workers, and compare.
 *
 * The notebooks answer in prose; this is the Python that shows it:
 *
 *   def count_primes(r):
 *       return sum(is_prime(n) for n in range(*r))
 *
 *   if __name__ == "__main__":
 *       ranges = [(N * i // 64, N * (i + 1) // 64) for i in range(64)]
 *       t = time.perf_counter(); serial = sum(map(count_primes, ranges))
 *       t_serial = time.perf_counter() - t
 *       t = time.perf_counter()
 *       with multiprocessing.Pool(multiprocessing.cpu_count()) as pool:
 *           parallel = sum(pool.map(count_primes, ranges))
 *       t_pool = time.perf_counter() - t
 *       assert parallel == serial
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpool.h>

enum { N = 5000000, RANGES = 64 };

typedef struct { long lo, hi; } range;

static int is_prime(long n) {
  if (n < 2 || (n % 2 == 0 && n != 2))
    return 0;
  for (long d = 3; d * d <= n; d += 2)
    if (n % d == 0)
      return 0;
  return 1;
}

/* The map task: one range in, its count of primes out. */
static int count_primes(const void *in, void *out) {
  const range *r = in;
  long count = 0;
  for (long n = r->lo; n < r->hi; n++)
    count += is_prime(n);
  *(long *)out = count;
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  range ranges[RANGES];
  long counts[RANGES], serial = 0, parallel = 0;
  for (int i = 0; i < RANGES; i++)
    ranges[i] = (range){(long)N * i / RANGES, (long)N * (i + 1) / RANGES};

  double t = now();
  for (int i = 0; i < RANGES; i++) {
    count_primes(&ranges[i], &counts[i]);
    serial += counts[i];
  }
  double t_serial = now() - t;

  /* Timed from the pool's creation to its end, as Python's `with` block. */
  t = now();
  mp_pool *pool;
  check(mp_pool_create(&pool, &(mp_pool_opts){.processes = mp_cpu_count()}),
        "mp_pool_create");
  check(mp_pool_map(pool, count_primes, ranges, RANGES, sizeof *ranges,
                    counts, sizeof *counts, NULL), "mp_pool_map");
  mp_pool_free(pool);
  double t_pool = now() - t;

  for (int i = 0; i < RANGES; i++)
    parallel += counts[i];
  if (parallel != serial) {
    fprintf(stderr, "counts differ: serial %ld, pool %ld\n", serial, parallel);
    return 1;
  }
  printf("primes below %d: %ld\n", N, serial);
  printf("serial: %.3f s\n", t_serial);
  printf("pool of %d workers: %.3f s\n", mp_cpu_count(), t_pool);
  printf("speed-up: %.2fx\n", t_serial / t_pool);
  return 0;
}
