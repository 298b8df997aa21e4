/*
 * q2_memory.c: Q2, processes vs threads, part one: memory. The notebooks
 * say that processes have their own memory; threads share theirs. A global
 * bumped by four processes, then by four threads:
 *
 *   counter = 0
 *   def bump():
 *       global counter
 *       counter += 1
 *   def run(workers):
 *       for w in workers: w.start()
 *       for w in workers: w.join()
 *
 *   if __name__ == "__main__":
 *       run([mp.Process(target=bump) for _ in range(4)])
 *       print(counter)                                # 0
 *       run([threading.Thread(target=bump) for _ in range(4)])
 *       print(counter)                                # 4
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

enum { FOUR = 4 };

static atomic_int counter; /* who sees the increments? */

static int bump(void *arg) {
  atomic_fetch_add(&counter, 1);
  return 0;
}

static void *bump_thread(void *arg) {
  bump(arg);
  return NULL;
}

static void check(int rc, const char *what) {
  if (rc != 0) { /* mp_* give negative codes, pthread_* positive errno */
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc < 0 ? rc : -rc));
    exit(1);
  }
}

int main(void) {
  /* Four processes: each bumps its own copy of counter. */
  mp_process *p[FOUR];
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_create(&p[i], bump, NULL, NULL), "mp_process_create");
    check(mp_process_start(p[i]), "mp_process_start");
  }
  for (int i = 0; i < FOUR; i++) {
    check(mp_process_join(p[i], -1), "mp_process_join");
    mp_process_free(p[i]);
  }
  printf("global after 4 processes: %d\n", atomic_load(&counter));

  /* Four threads: they all bump the one counter. */
  pthread_t t[FOUR];
  for (int i = 0; i < FOUR; i++)
    check(pthread_create(&t[i], NULL, bump_thread, NULL), "pthread_create");
  for (int i = 0; i < FOUR; i++)
    check(pthread_join(t[i], NULL), "pthread_join");
  printf("global after 4 threads: %d\n", atomic_load(&counter));
  return 0;
}
