/*
 * mpi_pool_map.c: Q4's pool map at cluster scale. The same map as
 * q4_pool_map.c, its workers the ranks of an MPI job, one machine or many.
 * Python has it as mpi4py.futures:
 *
 *   from mpi4py.futures import MPIPoolExecutor
 *
 *   def task_func(num):
 *       return num * num
 *
 *   if __name__ == "__main__":
 *       numbers = [1,2,3,4,5,6,7,8,9,10]
 *       with MPIPoolExecutor() as pool:
 *           results = list(pool.map(task_func, numbers))
 *       print('Results:', results)
 *
 *   $ mpirun -n 4 python -m mpi4py.futures q4.py
 *   $ mpirun -n 4 ./mpi_pool_map
 */
#include <stdio.h>

#include <mpool_mpi.h>

/* Runs on a worker rank, in a worker of that rank's local pool; it crosses
 * as a reference (build-id + offset), not as a pointer. */
static int task_func(const void *in, void *out) {
  int num = *(const int *)in;
  *(int *)out = num * num;
  return 0;
}

int main(int argc, char **argv) {
  int rc = mp_mpi_init(&argc, &argv, NULL); /* every rank, first */
  if (rc == MP_MPI_WORKER)
    return 0; /* a worker rank: it served until rank 0 finalized */
  if (rc < 0) {
    fprintf(stderr, "mp_mpi_init: %s\n", mp_mpi_strerror(rc));
    return 1;
  }

  int numbers[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  enum { N = sizeof numbers / sizeof *numbers };
  int results[N];
  mp_pool *pool;
  rc = mp_mpi_pool_create(&pool, NULL, NULL);
  if (rc == 0)
    rc = mp_pool_map(pool, task_func, numbers, N, sizeof *numbers, results,
                     sizeof *results, NULL);
  if (rc == 0)
    printf("worker ranks: %d\n", mp_pool_processes(pool));
  mp_pool_free(pool);
  int frc = mp_mpi_finalize(); /* the worker ranks return */
  if (rc < 0 || frc < 0) {
    fprintf(stderr, "%s\n", mp_mpi_strerror(rc < 0 ? rc : frc));
    return 1;
  }
  printf("Results: [");
  for (int i = 0; i < N; i++)
    printf("%s%d", i ? ", " : "", results[i]);
  printf("]\n");
  return 0;
}
