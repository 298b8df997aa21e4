/* A program outside the project, built against an installed libmpool. */
#include <mpool.h>
#include <stdio.h>
#include <string.h>

static int cube(const void *in, void *out) {
  long x = *(const long *)in;
  *(long *)out = x * x * x;
  return 0;
}

int main(void) {
  long in[5] = {1, 2, 3, 4, 5}, out[5];
  mp_pool *pool = NULL; /* left unset when create fails */
  int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 2});
  if (rc == 0)
    rc = mp_pool_map(pool, cube, in, 5, sizeof *in, out, sizeof *out, NULL);
  mp_pool_free(pool);
  if (rc) {
    fprintf(stderr, "consumer: %s\n", mp_strerror(rc));
    return 1;
  }
  printf("libmpool %s:", mp_version());
  for (int i = 0; i < 5; i++)
    printf(" %ld", out[i]);
  printf("\n");
  return strcmp(mp_version(), MPOOL_EXPECTED_VERSION) != 0;
}
