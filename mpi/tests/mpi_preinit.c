/*
 * mpi_preinit.c: an application that initializes MPI itself. The library
 * then neither initializes nor finalizes it: after serving (worker ranks)
 * and after mp_mpi_finalize (rank 0), MPI is still usable, and the
 * application's own communication on MPI_COMM_WORLD is not confused with
 * the library's, which uses a communicator of its own.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include <mpool_mpi.h>

static int twice(const void *in, void *out) {
  *(int64_t *)out = 2 * *(const int64_t *)in;
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, sum = 0, fin = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int rc = mp_mpi_init(&argc, &argv, NULL);
  int bad = 0;
  if (rank == 0) {
    mp_pool *p;
    int64_t in[50], out[50];
    for (int i = 0; i < 50; i++)
      in[i] = i;
    bad |= rc != 0;
    bad |= mp_mpi_pool_create(&p, NULL, NULL) != 0;
    bad |=
        mp_pool_map(p, twice, in, 50, sizeof *in, out, sizeof *out, NULL) != 0;
    for (int i = 0; i < 50; i++)
      bad |= out[i] != 2 * i;
    mp_pool_free(p);
    bad |= mp_mpi_finalize() != 0;
  } else {
    bad |= rc != MP_MPI_WORKER;
  }
  MPI_Finalized(&fin);
  bad |= fin != 0;
  int one = 1;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  bad |= sum != size;
  MPI_Finalize();
  if (bad)
    fprintf(stderr, "preinit: rank %d failed (rc %d)\n", rank, rc);
  else if (rank == 0)
    printf("preinit: ok\n");
  return bad;
}
