/*
 * q5_pool_workers.c: Q5, create a pool of worker processes: one per CPU,
 * each item doubled. The notebook's Python:
 *
 *   import multiprocessing
 *   def worker_function(task):
 *       result = task * 2
 *       return result
 *   def main():
 *       num_processes = multiprocessing.cpu_count()
 *
 *       with multiprocessing.Pool(processes=num_processes) as pool:
 *           tasks = [1, 2, 3, 4, 5]
 *
 *           results = pool.map(worker_function, tasks)
 *
 *       print("Results:", results)
 *
 *   if __name__ == "__main__":
 *       main()
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static int worker_function(const void *task, void *result) {
  *(int *)result = *(const int *)task * 2;
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  int num_processes = mp_cpu_count();
  int tasks[] = {1, 2, 3, 4, 5};
  enum { N = sizeof tasks / sizeof *tasks };
  int results[N];

  mp_pool *pool;
  check(mp_pool_create(&pool, &(mp_pool_opts){.processes = num_processes}),
        "mp_pool_create");
  check(mp_pool_map(pool, worker_function, tasks, N, sizeof *tasks, results,
                    sizeof *results, NULL), "mp_pool_map");
  mp_pool_free(pool);

  printf("Results: [");
  for (int i = 0; i < N; i++)
    printf("%s%d", i ? ", " : "", results[i]);
  printf("]\n");
  return 0;
}
