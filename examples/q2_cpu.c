/*
 * q2_cpu.c: Q2, processes vs threads, part three: CPU-bound work, which the
 * notebooks say suits processes. One job in four parts, timed on four
 * processes and on four threads:
 *
 *   def cpu_job(i):                         # count the primes in part i
 *       sum(is_prime(n) for n in range(i * SPAN, (i + 1) * SPAN))
 *
 *   if __name__ == "__main__":
 *       for kind in (mp.Process, threading.Thread):
 *           ws = [kind(target=cpu_job, args=(i,)) for i in range(4)]
 *           t = time.perf_counter()
 *           for w in ws: w.start()
 *           for w in ws: w.join()
 *           print(time.perf_counter() - t)
 *
 * In C both run in parallel; Python's threads would not (the GIL).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpool.h>

enum { FOUR = 4, SPAN = 1000000 };

static volatile long found[FOUR]; /* results, stored but never read */
static int index_of[FOUR] = {0, 1, 2, 3};

static int cpu_job(void *arg) {
  int i = *(const int *)arg;
  long count = 0;
  for (long n = i * (long)SPAN; n < (i + 1) * (long)SPAN; n++) {
    int prime = n == 2 || (n > 2 && n % 2 != 0);
    for (long d = 3; prime && d * d <= n; d += 2)
      prime = n % d != 0;
    count += prime;
  }
  found[i] = count; /* a thread's lands in the parent; a process's does not */
  return 0;
}

static void *cpu_thread(void *arg) {
  cpu_job(arg);
  return NULL;
}

static void check(int rc, const char *what) {
  if (rc != 0) { /* mp_* give negative codes, pthread_* positive errno */
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc < 0 ? rc : -rc));
    exit(1);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  mp_process *p[FOUR];
  double t = now();
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_create(&p[i], cpu_job, &index_of[i], NULL),
          "mp_process_create");
    check(mp_process_start(p[i]), "mp_process_start");
  }
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_join(p[i], -1), "mp_process_join");
    mp_process_free(p[i]);
  }
  printf("cpu-bound job, 4 processes: %.3f s\n", now() - t);

  pthread_t th[FOUR];
  t = now();
  for (int i = 0; i < FOUR; i++)
    check(pthread_create(&th[i], NULL, cpu_thread, &index_of[i]),
          "pthread_create");
  for (int i = 0; i < FOUR; i++)
    check(pthread_join(th[i], NULL), "pthread_join");
  printf("cpu-bound job, 4 threads: %.3f s\n", now() - t);
  return 0;
}
