/* bench.h: what mpbench and databench share: the clock, failing loudly, a
 * median, and the "side key value" lines bench/run reads. Each program
 * defines `quick` (smoke sizes) and its name for messages. */
#ifndef MPOOL_BENCH_H
#define MPOOL_BENCH_H

#include "mpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

extern const char *bench_name;

static inline _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "%s: %s: %s\n", bench_name, what,
          rc < 0 ? mp_strerror(rc) : strerror(errno));
  exit(1);
}

/* A libmpool call that must succeed. */
#define CHECK(call)                                                            \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ < 0)                                                               \
      die(#call, rc_);                                                         \
  } while (0)

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline void emit(const char *side, const char *key, double v) {
  printf("%s %s %.6g\n", side, key, v);
}

#endif
