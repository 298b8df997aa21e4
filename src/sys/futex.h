/* sys/futex.h: the futex system call, for words shared between processes. */
#ifndef MPOOL_SYS_FUTEX_H
#define MPOOL_SYS_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* futex(2) on word (not FUTEX_PRIVATE_FLAG: the word may be shared between
 * processes): op, val, ts and val3 as the system call takes them. The only
 * caller of the system call in the library. Returns as it does (-1 and
 * errno on failure). */
long mp__futex(_Atomic uint32_t *word, int op, uint32_t val,
               const struct timespec *ts, uint32_t val3);

/*
 * Why futexes and not process-shared condition variables: glibc's condvars
 * (before 2.41) count waiters inside the condvar itself, and a process killed
 * inside pthread_cond_wait never takes its count back, so later signalers or
 * pthread_cond_destroy can block forever. A futex word holds no such state:
 * a waiter that dies simply leaves the kernel's wait queue.
 *
 * Sleep while *word == val, until woken, the CLOCK_MONOTONIC deadline
 * (INT64_MAX: none), or MP__WAIT_SLICE_NS, whichever comes first. Returns 0
 * (woken, value changed, interrupted, or a slice over: the caller re-checks
 * its condition) or MP_ETIMEDOUT (the deadline itself has passed).
 *
 * Why slices: every wakeup is a system call made after the change it
 * announces, by a process that can be killed between the two (or at the
 * call itself). Its sleeper would then sleep on beside a queue that has a
 * message, a semaphore above 0, an event set. A sleeper that re-checks at
 * least every slice cannot: a wakeup only makes it see the change sooner.
 * The slices cost nothing on the fast path (no sleeper, no call) and one
 * spare wakeup per slice to a process that waits a long time.
 */
#define MP__WAIT_SLICE_NS ((int64_t)50 * 1000000)
int mp__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline);
/* Wake up to n sleepers on word (INT32_MAX: all). */
void mp__futex_wake(_Atomic uint32_t *word, int n);

#endif /* MPOOL_SYS_FUTEX_H */
