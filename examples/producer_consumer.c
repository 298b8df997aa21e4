/*
 * producer_consumer.c: one producer process, two consumer processes, one
 * bounded queue; the parent collects the consumers' totals on a second one.
 * The Python it mirrors:
 *
 *   from multiprocessing import Process, Queue
 *
 *   def produce(q, n):
 *       for i in range(1, n + 1): q.put(i)
 *       q.put(None); q.put(None)            # one stop per consumer
 *
 *   def consume(q, results):
 *       total = 0
 *       while (item := q.get()) is not None: total += item
 *       results.put(total)
 *
 *   if __name__ == "__main__":
 *       q, results = Queue(maxsize=64), Queue()
 *       ps = [Process(target=produce, args=(q, 1000))]
 *       ps += [Process(target=consume, args=(q, results)) for _ in range(2)]
 *       for p in ps: p.start()
 *       print("sum:", results.get() + results.get())
 *       for p in ps: p.join()
 */
#include <stdio.h>

#include "mpool.h"

enum { N = 1000, CONSUMERS = 2 };
static mp_queue *q, *results; /* created before the fork: inherited */

static int produce(void *arg) {
  (void)arg;
  for (long i = 1; i <= N; i++)
    mp_queue_put(q, &i, sizeof i, -1);
  for (int c = 0; c < CONSUMERS; c++)
    mp_queue_put(q, NULL, 0, -1); /* an empty message: None, stop */
  return 0;
}

static int consume(void *arg) {
  (void)arg;
  long item, total = 0;
  while (mp_queue_get(q, &item, sizeof item, -1) == sizeof item)
    total += item;
  return mp_queue_put(results, &total, sizeof total, -1) == 0 ? 0 : 1;
}

int main(void) {
  if (mp_queue_create(&q, 64, sizeof(long)) < 0 ||
      mp_queue_create(&results, CONSUMERS, sizeof(long)) < 0)
    return 1;
  mp_process *ps[1 + CONSUMERS];
  for (int i = 0; i <= CONSUMERS; i++)
    if (mp_process_create(&ps[i], i ? consume : produce, NULL, NULL) < 0 ||
        mp_process_start(ps[i]) < 0)
      return 1;
  long sum = 0, part;
  for (int c = 0; c < CONSUMERS; c++)
    if (mp_queue_get(results, &part, sizeof part, -1) == sizeof part)
      sum += part;
  printf("sum: %ld\n", sum);
  for (int i = 0; i <= CONSUMERS; i++) {
    mp_process_join(ps[i], -1);
    mp_process_free(ps[i]);
  }
  mp_queue_free(q);
  mp_queue_free(results);
  return sum == (long)N * (N + 1) / 2 ? 0 : 1;
}
