/*
 * barrier_phases.c: three workers go through three phases in step; none
 * starts a phase before all have finished the one before. The barrier's
 * action, run once per phase by the last worker to arrive, announces it.
 * The Python it mirrors:
 *
 *   from multiprocessing import Process, Barrier, Value
 *
 *   def announce():
 *       with phase.get_lock():
 *           print(f"== phase {phase.value} done", flush=True)
 *           phase.value += 1
 *
 *   def work(b, w):
 *       for p in range(1, 4):
 *           print(f"phase {p}: worker {w}", flush=True)
 *           b.wait()
 *
 *   if __name__ == "__main__":
 *       phase = Value('i', 1)
 *       b = Barrier(3, action=announce)
 *       ws = [Process(target=work, args=(b, w)) for w in range(3)]
 *       for w in ws: w.start()
 *       for w in ws: w.join()
 *       print("all phases done")
 */
#include <stdint.h>
#include <stdio.h>

#include "mpool.h"

enum { WORKERS = 3, PHASES = 3 };
static mp_barrier *b; /* created before the fork: inherited */
static mp_value *phase;

/* Run by the last worker to arrive, before any is released. */
static int announce(void *arg) {
  (void)arg;
  int *p = mp_value_ptr(phase); /* only the action touches it */
  printf("== phase %d done\n", *p);
  fflush(stdout);
  (*p)++;
  return 0;
}

static int work(void *arg) {
  int w = (int)(intptr_t)arg;
  for (int p = 1; p <= PHASES; p++) {
    printf("phase %d: worker %d\n", p, w);
    fflush(stdout); /* one line, one write: before the others go on */
    if (mp_barrier_wait(b, 30) < 0)
      return 1; /* MP_EBROKEN: a worker died or timed out */
  }
  return 0;
}

int main(void) {
  if (mp_value_create(&phase, sizeof(int)) < 0)
    return 1;
  *(int *)mp_value_ptr(phase) = 1;
  if (mp_barrier_create(&b, WORKERS, &(mp_barrier_opts){.action = announce}) <
      0)
    return 1;
  mp_process *ws[WORKERS];
  for (intptr_t w = 0; w < WORKERS; w++)
    if (mp_process_create(&ws[w], work, (void *)w, NULL) < 0 ||
        mp_process_start(ws[w]) < 0)
      return 1;
  int failed = 0;
  for (int w = 0; w < WORKERS; w++) {
    int code = 1;
    failed |= mp_process_join(ws[w], -1) != 0 ||
              mp_process_exitcode(ws[w], &code) != 0 || code != 0;
    mp_process_free(ws[w]);
  }
  printf("all phases done\n");
  mp_barrier_free(b);
  mp_value_free(phase);
  return failed;
}
