/* ipc_internal.h: helpers shared by the IPC objects (src/ipc/). */
#ifndef MPOOL_IPC_INTERNAL_H
#define MPOOL_IPC_INTERNAL_H

#include "../internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- sync.c: robust process-shared mutexes (futex words: sys/futex.h) ---- */

/*
 * A shared mapping of len bytes (as mp__ipc_map) that starts with a
 * robust, process-shared, error-checking mutex, initialised. Returns 0 and
 * sets *out, or -errno (nothing is left mapped then).
 */
int mp__ipc_map_locked(void **out, size_t len);
/*
 * Lock m until the CLOCK_MONOTONIC deadline (INT64_MAX: forever). When the
 * previous holder died holding it, the mutex is made consistent and
 * MP_EOWNERDEAD is returned with the lock held. Returns 0, MP_EOWNERDEAD,
 * MP_ETIMEDOUT, -EDEADLK (the caller already holds it), or -errno.
 * A lock that is taken sleeps in slices of MP__WAIT_SLICE_NS, for the same
 * reason as mp__futex_wait: glibc's unlock frees the word, then wakes a
 * sleeper with a system call, and a holder killed between the two leaves
 * its sleepers asleep beside a free lock on kernels before 5.5 (later ones
 * wake one from the dead process's robust list).
 */
int mp__ipc_mutex_lock(pthread_mutex_t *m, int64_t deadline);
/* Returns 0, -EPERM when the caller does not hold it, or -errno. */
int mp__ipc_mutex_unlock(pthread_mutex_t *m);
/*
 * Initialise *m as a robust, process-shared mutex: error-checking, or
 * recursive when recursive is non-zero. Returns 0 or -errno.
 */
int mp__ipc_mutex_init(pthread_mutex_t *m, int recursive);

/*
 * Who holds a robust mutex, read from its futex word without touching the
 * lock: MP__HELD_NONE (free), MP__HELD_LIVE (a thread holds it, or did an
 * instant ago; the caller included), MP__HELD_DEAD (its holder died
 * holding it and nobody has taken it since). This is how the IPC objects
 * tell a dead waiter from a sleeping one: a waiter holds a robust mutex of
 * its own while it waits, and the kernel marks the mutex when the waiter
 * dies (see sync.c).
 */
enum { MP__HELD_NONE, MP__HELD_LIVE, MP__HELD_DEAD };
int mp__ipc_mutex_held(pthread_mutex_t *m);
/* 1 when the calling thread holds m, else 0 (a read, as above). */
int mp__ipc_mutex_mine(pthread_mutex_t *m);

/* The robust mutex inside an mp_lock (for mp_cond). */
pthread_mutex_t *mp__lock_mutex(mp_lock *l);

/* ---- pipe.c: ends made from other sockets (listener.c) ---- */

/*
 * An mp_pipe end over fd, a connected AF_UNIX SOCK_SEQPACKET socket, for
 * messages of up to max_msg bytes (0: 64 KiB). Returns 0 and sets *out
 * (the end owns fd from then on), or -errno (fd is left open).
 */
int mp__pipe_adopt(mp_pipe **out, int fd, size_t max_msg);
/* The end's socket, readable when a message waits or the peer is gone. */
int mp__pipe_fd(const mp_pipe *p);

/* listener.c: the listening socket, readable when a connection waits. */
int mp__listener_fd(const mp_listener *l);

#endif /* MPOOL_IPC_INTERNAL_H */
