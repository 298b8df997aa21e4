/*
 * q3_create_process.c: Q3, create a process. Three of them, each greeting.
 * The notebook's Python:
 *
 *   import multiprocessing
 *
 *   def process_func(name):
 *       print("hello from process %s" %(name))
 *
 *   if __name__ == "__main__":
 *       processes = []
 *       for i in range(3):
 *           process = multiprocessing.Process(target=process_func,
 *                                             args=("Process %d"%(i+1),))
 *           processes.append(process)
 *       for process in processes:
 *           process.start()
 *       for process in processes:
 *           process.join()
 *       print("Main process is exiting.")
 *
 * The three run at once, so their greetings may come in any order.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static int process_func(void *name) {
  printf("hello from process %s\n", (const char *)name);
  return 0;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  char names[3][16]; /* the child reads its arg in its copy of our memory */
  mp_process *processes[3];
  for (int i = 0; i < 3; i++) {
    snprintf(names[i], sizeof names[i], "Process %d", i + 1);
    check(mp_process_create(&processes[i], process_func, names[i], NULL),
          "mp_process_create");
  }
  for (int i = 0; i < 3; i++)
    check(mp_process_start(processes[i]), "mp_process_start");
  for (int i = 0; i < 3; i++) {
    check(mp_process_join(processes[i], -1), "mp_process_join");
    mp_process_free(processes[i]);
  }
  printf("Main process is exiting.\n");
  return 0;
}
