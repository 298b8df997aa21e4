/*
 * q5_close_join.c: Q5, a pool of worker processes closed and joined by hand
 * instead of by leaving a `with` block. The notebook's Python:
 *
 *   import multiprocessing
 *
 *   def worker(task):
 *       """Function to be executed by the worker processes"""
 *       result = task ** 2
 *       return result
 *
 *   if __name__ == '__main__':
 *       # Create a multiprocessing pool with 3 worker processes
 *       pool = multiprocessing.Pool(processes=3)
 *
 *       # List of tasks to be executed in parallel
 *       tasks = [2, 4, 6, 8, 10]
 *
 *       # Apply the worker function to the tasks in parallel
 *       results = pool.map(worker, tasks)
 *
 *       # Print the results
 *       print("Results:", results)
 *
 *       # Close the pool
 *       pool.close()
 *
 *       # Wait for the worker processes to finish
 *       pool.join()
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

/* Function to be executed by the worker processes. */
static int worker(const void *task, void *result) {
  int t = *(const int *)task;
  *(int *)result = t * t;
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  mp_pool *pool;
  check(mp_pool_create(&pool, &(mp_pool_opts){.processes = 3}),
        "mp_pool_create");

  int tasks[] = {2, 4, 6, 8, 10};
  enum { N = sizeof tasks / sizeof *tasks };
  int results[N];
  check(mp_pool_map(pool, worker, tasks, N, sizeof *tasks, results,
                    sizeof *results, NULL), "mp_pool_map");

  printf("Results: [");
  for (int i = 0; i < N; i++)
    printf("%s%d", i ? ", " : "", results[i]);
  printf("]\n");

  check(mp_pool_close(pool), "mp_pool_close"); /* no more work */
  check(mp_pool_join(pool), "mp_pool_join");   /* workers exit; reaped */
  mp_pool_free(pool);
  return 0;
}
