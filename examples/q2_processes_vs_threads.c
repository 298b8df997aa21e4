/*
 * q2_processes_vs_threads.c: Q2, processes vs threads. The notebooks claim
 * that processes have their own memory, that a crash in one does not affect
 * the others, and that processes suit CPU-bound work. Shown, not stated:
 *
 *   import ctypes, multiprocessing as mp, threading
 *
 *   counter = 0
 *   def bump():
 *       global counter
 *       counter += 1
 *   def crash():
 *       ctypes.string_at(0)                 # reads address 0: SIGSEGV
 *   def run(workers):
 *       for w in workers: w.start()
 *       for w in workers: w.join()
 *
 *   if __name__ == "__main__":
 *       run([mp.Process(target=bump) for _ in range(4)])
 *       print(counter)                                # 0
 *       run([threading.Thread(target=bump) for _ in range(4)])
 *       print(counter)                                # 4
 *       p = mp.Process(target=crash); p.start(); p.join()
 *       print(p.exitcode)                             # -11
 *       # then time one CPU-bound job on 4 processes and on 4 threads
 *
 * In C both run in parallel; Python's threads would not (the GIL).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpool.h>

/* The CPU job's part i: count the primes in [i * SPAN, (i + 1) * SPAN). */
enum { FOUR = 4, SPAN = 1000000 };

static atomic_int counter;          /* Q2a: who sees the increments? */
static volatile long found[FOUR];   /* Q2c: results, stored but never read */
static int index_of[FOUR] = {0, 1, 2, 3};

static int bump(void *arg) {
  atomic_fetch_add(&counter, 1);
  return 0;
}

static int crash(void *arg) {
  signal(SIGSEGV, SIG_DFL); /* a test runner or sanitizer may catch it */
  /* A bad write: string literals live in read-only memory. (A store through
   * NULL faults too, but UBSan stops that one before it lands.) */
  volatile char *text = (volatile char *)"read-only";
  text[0] = 'R';
  return 0;
}

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

/* fn(&index_of[i]) for i in 0..3 on four processes; returns the seconds. */
static double on_processes(int (*fn)(void *)) {
  mp_process *p[FOUR];
  double t = now();
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_create(&p[i], fn, &index_of[i], NULL),
          "mp_process_create");
    check(mp_process_start(p[i]), "mp_process_start");
  }
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_join(p[i], -1), "mp_process_join");
    mp_process_free(p[i]);
  }
  return now() - t;
}

/* The same on four threads. */
static int (*thread_fn)(void *);
static void *thread_main(void *arg) {
  thread_fn(arg);
  return NULL;
}
static double on_threads(int (*fn)(void *)) {
  pthread_t t[FOUR];
  double t0 = now();
  thread_fn = fn;
  for (int i = 0; i < FOUR; i++)
    check(pthread_create(&t[i], NULL, thread_main, &index_of[i]),
          "pthread_create");
  for (int i = 0; i < FOUR; i++)
    check(pthread_join(t[i], NULL), "pthread_join");
  return now() - t0;
}

int main(void) {
  /* Memory: each process bumps its own copy; threads share one. */
  on_processes(bump);
  printf("global after 4 processes: %d\n", atomic_load(&counter));
  on_threads(bump);
  printf("global after 4 threads: %d\n", atomic_load(&counter));

  /* Crashes: the child dies of SIGSEGV, the parent reads its exitcode. */
  mp_process *p;
  int code;
  check(mp_process_create(&p, crash, NULL, NULL), "mp_process_create");
  check(mp_process_start(p), "mp_process_start");
  check(mp_process_join(p, -1), "mp_process_join");
  check(mp_process_exitcode(p, &code), "mp_process_exitcode");
  mp_process_free(p);
  printf("child exitcode: %d\n", code);
  printf("parent: still running\n");

  /* CPU-bound: the same job on four processes, then four threads. */
  printf("cpu-bound job, 4 processes: %.3f s\n", on_processes(cpu_job));
  printf("cpu-bound job, 4 threads: %.3f s\n", on_threads(cpu_job));
  return 0;
}
