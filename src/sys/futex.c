/* sys/futex.c: the futex system call, and the sliced wait and the wake
 * built on it (sys/futex.h). */
#include "../internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

long mp__futex(_Atomic uint32_t *word, int op, uint32_t val,
               const struct timespec *ts, uint32_t val3) {
  /* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
  return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, val3);
}

int mp__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline) {
  int64_t now = mp__now_ns();
  if (now >= deadline)
    return MP_ETIMEDOUT;
  int64_t until = deadline - now > MP__WAIT_SLICE_NS ? now + MP__WAIT_SLICE_NS
                                                     : deadline;
  struct timespec ts = mp__ns_timespec(until);
  /* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. The
   * bitset variant takes an absolute CLOCK_MONOTONIC deadline, so an
   * interrupted wait never stretches the timeout. */
  long r = mp__futex(word, FUTEX_WAIT_BITSET, val, &ts,
                     FUTEX_BITSET_MATCH_ANY);
  if (r < 0 && errno == ETIMEDOUT && until == deadline)
    return MP_ETIMEDOUT;
  return 0; /* woken, EAGAIN (value changed), EINTR, or a slice over */
}

void mp__futex_wake(_Atomic uint32_t *word, int n) {
  (void)mp__futex(word, FUTEX_WAKE, (uint32_t)n, NULL, 0);
}
