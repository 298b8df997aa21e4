/*
 * joinable_worklist.c: a work list with task_done and join. Three workers
 * take numbers from a JoinableQueue and add their squares to a shared
 * total; the parent waits until every task is marked done, then closes
 * the queue so the workers' gets fail and they stop. The Python it mirrors
 * (a None per worker stops it there; Queue.shutdown() is 3.13's, and only
 * queue.Queue's):
 *
 *   from multiprocessing import Process, JoinableQueue, Value
 *
 *   def worker(q, total):
 *       while (n := q.get()) is not None:
 *           with total.get_lock(): total.value += n * n
 *           q.task_done()
 *
 *   if __name__ == "__main__":
 *       q, total = JoinableQueue(), Value('l', 0)
 *       ws = [Process(target=worker, args=(q, total)) for _ in range(3)]
 *       for w in ws: w.start()
 *       for n in range(1, 11): q.put(n)
 *       print("queued 10 tasks")
 *       q.join()
 *       print("all 10 tasks done: sum of squares =", total.value)
 *       for w in ws: q.put(None)
 *       for w in ws: w.join()
 *       print("workers stopped:", len(ws))
 */
#include <stdio.h>

#include "mpool.h"

enum { WORKERS = 3, TASKS = 10 };
static mp_queue *q;     /* created before the fork: inherited */
static mp_value *total; /* a long and its lock */

static int worker(void *arg) {
  (void)arg;
  long n;
  /* Fails with MP_ECLOSED once the queue is closed and empty. */
  while (mp_queue_get(q, &n, sizeof n, -1) == sizeof n) {
    mp_value_lock(total, -1);
    *(long *)mp_value_ptr(total) += n * n;
    mp_value_unlock(total);
    mp_queue_task_done(q);
  }
  return 0;
}

int main(void) {
  if (mp_queue_create(&q, 4, sizeof(long)) < 0 ||
      mp_value_create(&total, sizeof(long)) < 0)
    return 1;
  mp_process *ws[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    if (mp_process_create(&ws[i], worker, NULL, NULL) < 0 ||
        mp_process_start(ws[i]) < 0)
      return 1;
  for (long n = 1; n <= TASKS; n++)
    mp_queue_put(q, &n, sizeof n, -1);
  printf("queued %d tasks\n", TASKS);
  if (mp_queue_join(q, -1) != 0) /* every task_done called */
    return 1;
  long sum;
  mp_value_load(total, &sum);
  printf("all %d tasks done: sum of squares = %ld\n", TASKS, sum);
  mp_queue_close(q); /* no stop message per worker */
  int stopped = 0;
  for (int i = 0; i < WORKERS; i++) {
    stopped += mp_process_join(ws[i], -1) == 0;
    mp_process_free(ws[i]);
  }
  printf("workers stopped: %d\n", stopped);
  mp_queue_free(q);
  mp_value_free(total);
  return sum == 385 && stopped == WORKERS ? 0 : 1;
}
