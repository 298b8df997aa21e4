/*
 * mpool/wait.h: waiting on many, as multiprocessing.connection.wait: pipes,
 * processes, results and listeners in one call.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_WAIT_H
#define MPOOL_WAIT_H

#include <stddef.h>

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Waiting on many: multiprocessing.connection.wait ---- */

/* What an mp_waitable waits for. */
enum {
  MP_WAIT_PIPE = 1, /* obj: mp_pipe *; ready as mp_pipe_poll says */
  MP_WAIT_PROCESS,  /* obj: mp_process * (started); ready once it ended */
  MP_WAIT_RESULT,   /* obj: mp_result *; ready as mp_result_ready says */
  MP_WAIT_LISTENER, /* obj: mp_listener *; ready when a client waits */
};

/* One thing to wait for; mp_wait sets ready (1 or 0). */
typedef struct mp_waitable {
  int kind;  /* MP_WAIT_* */
  void *obj; /* the handle */
  int ready;
} mp_waitable;

/*
 * Python's multiprocessing.connection.wait(): wait up to timeout seconds
 * until at least one of the n entries is ready, then mark each entry's
 * ready field. Returns how many are ready (0 when the timeout expired
 * first, as Python returns []); MP_EINVAL (NULL w, n 0, an unknown kind
 * or NULL obj: nothing is done); MP_ESTATE (a process never started);
 * -ENOMEM; -errno when waiting itself fails, or a pool's wait fails (as
 * for mp_pool_map).
 * A process is ready once it has ended, and is then reaped (join
 * returns at once). A result is ready once complete, or once its pool
 * was freed (get then says MP_ECLOSED). Results make progress only inside
 * calls on their pool: mp_wait drives each pool of the set (it waits on
 * the pool's own fds and deadlines, and runs a round of its loop after
 * every wakeup), so their callbacks may run inside it; a callback must not
 * free any handle of the set.
 * No busy loop: the call sleeps in one poll() over every fd involved and
 * wakes when one fires. Where the kernel offers no fd it re-checks in
 * slices: a process without a pidfd (kernels before 5.3, valgrind) every
 * 100 ms, as mp_process_join does; so it notices a ready entry at once,
 * else within that slice.
 * Threads: the handles follow their own rules (a pool is used from one
 * thread at a time, this call included).
 */
MP_EXPORT int mp_wait(mp_waitable *w, size_t n, double timeout);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_WAIT_H */
