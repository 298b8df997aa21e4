/*
 * q3_square_cube.c: Q3, create a process: two of them, one printing a
 * square, the other a cube. The notebook's Python:
 *
 *   import multiprocessing
 *   import time
 *
 *   def square(n):
 *       #return n**2
 *       time.sleep(1)
 *       print(n**2)
 *
 *   def cube(n):
 *       print (n**3)
 *
 *   if __name__ == "__main__":
 *       m1 = multiprocessing.Process(target=square, args=(10,))
 *       m2 = multiprocessing.Process(target=cube, args=(15,))
 *       m1.start()
 *       m2.start()
 *
 *       m1.join()
 *       m2.join()
 *
 * The sleep only made the cube come first; without it the two lines may
 * come in either order.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static int square(void *arg) {
  int n = *(const int *)arg;
  printf("%d\n", n * n);
  return 0;
}

static int cube(void *arg) {
  int n = *(const int *)arg;
  printf("%d\n", n * n * n);
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  int ten = 10, fifteen = 15;
  mp_process *m1, *m2;
  check(mp_process_create(&m1, square, &ten, NULL), "mp_process_create");
  check(mp_process_create(&m2, cube, &fifteen, NULL), "mp_process_create");
  check(mp_process_start(m1), "mp_process_start");
  check(mp_process_start(m2), "mp_process_start");

  check(mp_process_join(m1, -1), "mp_process_join");
  check(mp_process_join(m2, -1), "mp_process_join");
  mp_process_free(m1);
  mp_process_free(m2);
  return 0;
}
