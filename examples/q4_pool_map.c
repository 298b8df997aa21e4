/*
 * q4_pool_map.c: Q4, what is a pool? A set of worker processes that a map
 * spreads its items over. The notebook's Python:
 *
 *   import multiprocessing
 *
 *   def task_func(num):
 *       return num * num
 *
 *   if __name__ == "__main__":
 *       numbers = [1,2,3,4,5,6,7,8,9,10]
 *
 *       with multiprocessing.Pool(processes=4) as pool:
 *           results = pool.map(task_func, numbers)
 *
 *       print('Results:', results)
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

/* A map task: one element in, one out; 0 means it succeeded. It runs in a
 * worker, which got the function as a pointer (the worker is a fork). */
static int task_func(const void *in, void *out) {
  int num = *(const int *)in;
  *(int *)out = num * num;
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  int numbers[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  enum { N = sizeof numbers / sizeof *numbers };
  int results[N];

  mp_pool *pool;
  check(mp_pool_create(&pool, &(mp_pool_opts){.processes = 4}),
        "mp_pool_create");
  check(mp_pool_map(pool, task_func, numbers, N, sizeof *numbers, results,
                    sizeof *results, NULL), "mp_pool_map");
  mp_pool_free(pool); /* leaving the `with` block */

  printf("Results: [");
  for (int i = 0; i < N; i++)
    printf("%s%d", i ? ", " : "", results[i]);
  printf("]\n");
  return 0;
}
