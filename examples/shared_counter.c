/*
 * shared_counter.c: four processes increment one shared counter under its
 * lock. The Python it mirrors:
 *
 *   from multiprocessing import Process, Value
 *
 *   def work(counter):
 *       for _ in range(10000):
 *           with counter.get_lock():
 *               counter.value += 1
 *
 *   if __name__ == "__main__":
 *       counter = Value("i", 0)
 *       procs = [Process(target=work, args=(counter,)) for _ in range(4)]
 *       for p in procs: p.start()
 *       for p in procs: p.join()
 *       print("final count:", counter.value)
 */
#include <stdio.h>

#include "mpool.h"

enum { NPROC = 4, TIMES = 10000 };

static int work(void *arg) {
  mp_value *counter = arg; /* inherited: created before the fork */
  int *value = mp_value_ptr(counter);
  for (int i = 0; i < TIMES; i++) {
    int rc = mp_value_lock(counter, -1);
    if (rc < 0 && rc != MP_EOWNERDEAD) /* EOWNERDEAD: held all the same */
      return 1;
    *value += 1;
    mp_value_unlock(counter);
  }
  return 0;
}

int main(void) {
  mp_value *counter;
  int rc = mp_value_create(&counter, sizeof(int));
  if (rc < 0) {
    fprintf(stderr, "mp_value_create: %s\n", mp_strerror(rc));
    return 1;
  }
  mp_process *procs[NPROC];
  for (int i = 0; i < NPROC; i++) {
    rc = mp_process_create(&procs[i], work, counter, NULL);
    if (rc == 0)
      rc = mp_process_start(procs[i]);
    if (rc < 0) {
      fprintf(stderr, "process %d: %s\n", i, mp_strerror(rc));
      return 1;
    }
  }
  for (int i = 0; i < NPROC; i++) {
    mp_process_join(procs[i], -1);
    mp_process_free(procs[i]);
  }
  int final;
  mp_value_load(counter, &final);
  printf("final count: %d\n", final);
  mp_value_free(counter);
  return final == NPROC * TIMES ? 0 : 1;
}
