/*
 * q6_four_processes.c: Q6, four processes, each printing a different
 * number. The notebook's Python:
 *
 *   import multiprocessing
 *   def print_num(number):
 *       print("Process %d: %d"%(number,number))
 *
 *   if __name__ == '__main__':
 *       processes = []
 *       for i in range(1,5):
 *           process = multiprocessing.Process(target=print_num, args=(i,))
 *           processes.append(process)
 *
 *       for process in processes:
 *           process.start()
 *
 *       for process in processes:
 *           process.join()
 *
 *       print("All processes finished")
 *
 * The four run at once, so their lines may come in any order.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static int print_num(void *arg) {
  int number = *(const int *)arg;
  printf("Process %d: %d\n", number, number);
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  int numbers[4]; /* each child reads its own in its copy of our memory */
  mp_process *processes[4];
  for (int i = 0; i < 4; i++) {
    numbers[i] = i + 1;
    check(mp_process_create(&processes[i], print_num, &numbers[i], NULL),
          "mp_process_create");
  }

  for (int i = 0; i < 4; i++)
    check(mp_process_start(processes[i]), "mp_process_start");

  for (int i = 0; i < 4; i++) {
    check(mp_process_join(processes[i], -1), "mp_process_join");
    mp_process_free(processes[i]);
  }

  printf("All processes finished\n");
  return 0;
}
