/*
 * q5_worker_pids.c: Q5, a pool of worker processes, showing which worker
 * ran each item: 7 items on 5 workers, so some pids come back. The
 * notebook's Python:
 *
 *   import multiprocessing
 *   import os
 *   def square(n):
 *       print(f"\n Worker process id for {n} : {os.getpid()}")
 *       return n*n
 *
 *   if __name__ == "__main__":
 *
 *       with multiprocessing.Pool(processes=5) as po:
 *           result2 = po.map(square, [2,3,4,5,6,7,8])
 *           #po.terminate()
 *
 *       print(result2)
 *
 * (The notebook's "\n " only spaced the lines out in Jupyter; dropped.)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <mpool.h>

static int square(const void *in, void *out) {
  int n = *(const int *)in;
  printf("Worker process id for %d : %ld\n", n, (long)getpid());
  *(int *)out = n * n;
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  int items[] = {2, 3, 4, 5, 6, 7, 8};
  enum { N = sizeof items / sizeof *items };
  int result2[N];

  mp_pool *po;
  check(mp_pool_create(&po, &(mp_pool_opts){.processes = 5}), "mp_pool_create");
  check(mp_pool_map(po, square, items, N, sizeof *items, result2,
                    sizeof *result2, NULL), "mp_pool_map");
  mp_pool_free(po);

  printf("[");
  for (int i = 0; i < N; i++)
    printf("%s%d", i ? ", " : "", result2[i]);
  printf("]\n");
  return 0;
}
