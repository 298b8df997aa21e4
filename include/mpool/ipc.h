/*
 * mpool/ipc.h: IPC: Pipe, Queue, Lock, RLock, Condition, Semaphore, Event,
 * Barrier, Value/Array, shared memory: objects that processes share by fork.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_IPC_H
#define MPOOL_IPC_H

#include <stddef.h>

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* IPC: Pipe, Queue, Lock, RLock, Condition, Semaphore, Event, Barrier,     */
/* Value/Array, shared memory                                               */
/* ------------------------------------------------------------------------ */
/* MPOOL-IPC-BEGIN */
/*
 * Objects for processes to talk and synchronise, as in Python:
 *
 *   a, b = mp.Pipe()                 mp_pipe_create(&a, &b, 0)
 *   q = mp.Queue(maxsize)            mp_queue_create(&q, maxsize, max_msg)
 *   l = mp.Lock()                    mp_lock_create(&l)
 *   r = mp.RLock()                   mp_rlock_create(&r)
 *   c = mp.Condition(l)              mp_cond_create(&c, l)
 *   s = mp.Semaphore(n)              mp_sem_create(&s, n, 0)
 *   s = mp.BoundedSemaphore(n)       mp_sem_create(&s, n, n)
 *   e = mp.Event()                   mp_event_create(&e)
 *   b = mp.Barrier(n)                mp_barrier_create(&b, n, NULL)
 *   v = mp.Value('i', 0)             mp_value_create(&v, sizeof(int))
 *   a = mp.Array('d', 10)            mp_array_create(&a, 10, sizeof(double))
 *   SharedMemory(name, create=True)  mp_shm_create(&m, "/name", size)
 *   SharedMemory(name)               mp_shm_attach(&m, "/name")
 *
 * Sharing them. Create the object, then fork: every mp_process started and
 * every pool created (or worker replaced) afterwards inherits it, and the
 * child uses the same handle pointer it sees in its copy of the parent's
 * memory (a global, or the arg of its target). A child created *before* the
 * object cannot reach it; only named shared memory (mp_shm_attach) joins
 * processes that are not parent and child. The objects use no threads and
 * no signal handlers, and are not registered for closing in children.
 *
 * Handles. Each handle is private to the process holding it and owns its
 * resources in that process only: mp_*_free in one process unmaps or closes
 * that process's view, never another's, so a parent and each child free
 * their own copies (a child that simply exits needs not). The object itself
 * is gone when the last process holding it has freed it or exited. Free an
 * object only when no thread of the process is using it. free(NULL) is a
 * no-op everywhere.
 *
 * Threads. Every call below except free may be made from several threads and
 * processes at once on the same object (mp_pipe: see its note).
 *
 * Timeouts are in seconds: negative waits forever, 0 polls. An expired
 * timeout is MP_ETIMEDOUT. Waits use CLOCK_MONOTONIC, so changing the wall
 * clock does not stretch or cut them.
 */

/* ---- Pipe: multiprocessing.Pipe() ---- */

typedef struct mp_pipe mp_pipe;

/*
 * Create a connected pair of ends; each can send and receive (duplex).
 * Messages keep their boundaries: each recv returns exactly one send's
 * bytes, in order. max_msg is the largest message in bytes (at most
 * INT_MAX / 2); 0 means 64 KiB. A message that fits the socket's send
 * buffer (which the kernel caps at about twice net.core.wmem_max) goes in
 * one datagram; a larger one in a sealed memfd attached to one datagram,
 * so it too arrives whole or not at all: no sender or reader killed at
 * any instant, and no timeout, can leave part of a message in the pipe or
 * hand a reader a corrupt one, and a pipe shared by several readers goes
 * on working when one is killed while receiving (that message is lost
 * with it, as it would be once received). Large messages are flow-
 * controlled: at most two wait unread per direction, so a sender cannot
 * run away with memory; each costs a memfd (an fd and max_msg bytes of
 * shared memory) while in flight.
 * Returns 0 and sets *a and *b; MP_EINVAL (NULL or identical out-pointers,
 * max_msg over INT_MAX / 2); -EMFILE / -ENFILE; -ENOMEM. On error nothing
 * is set.
 *
 * Typical use: create, start the child, then each side frees the end it
 * does not use (the child frees a, the parent b). Only then does the death
 * of one side show on the other: recv returns MP_EPEERDEAD once the peer's
 * every copy of its end is closed (an end is also held open by every child
 * forked while it was open, pool workers included).
 */
MP_EXPORT int mp_pipe_create(mp_pipe **a, mp_pipe **b, size_t max_msg);

/*
 * Send the len bytes at msg (len may be 0; msg may then be NULL) as one
 * message to the other end, waiting up to timeout seconds for room.
 * The bytes are copied before return. Returns 0; MP_ETIMEDOUT (nothing was
 * sent); MP_EPEERDEAD when the other end is closed (the peer is gone; no
 * SIGPIPE is raised); -EMSGSIZE when len > max_msg; MP_EINVAL; for a large
 * message also -EMFILE or -ENOMEM / -ENOSPC (no memfd could hold it).
 */
MP_EXPORT int mp_pipe_send(mp_pipe *p, const void *msg, size_t len,
                           double timeout);

/*
 * Receive one message into buf (cap bytes of room), waiting up to timeout
 * seconds. Returns the message's length (>= 0); MP_ETIMEDOUT; MP_EPEERDEAD
 * when no message is left and the other end is closed (messages sent before
 * the peer died are still delivered first); -EMSGSIZE when the message is
 * longer than cap (it stays queued: receive it with a larger buffer, at most
 * mp_pipe_max_msg() bytes); MP_EPROTO for bytes that are not a message of
 * this library (discarded), including a large message whose memfd is not
 * sealed or not of its stated size (a hostile peer), or whose fd could
 * not be received (no fd left under RLIMIT_NOFILE: the message is lost);
 * MP_EINVAL.
 * Several processes may receive on one end; each message goes to one of
 * them. The "stays queued" promise then holds only for a single reader.
 */
MP_EXPORT int mp_pipe_recv(mp_pipe *p, void *buf, size_t cap, double timeout);

/*
 * Python's conn.poll(timeout): 1 when recv would not block (a message is
 * waiting, or the peer is gone and recv reports it), 0 when the timeout
 * expired first, MP_EINVAL, -errno.
 */
MP_EXPORT int mp_pipe_poll(mp_pipe *p, double timeout);

/* The largest message in bytes the pipe carries; 0 for NULL. */
MP_EXPORT size_t mp_pipe_max_msg(const mp_pipe *p);

/*
 * Close this process's copy of the end and release the handle (Python's
 * conn.close()). Messages not yet received on it are lost once every copy
 * is closed. free(NULL) is a no-op.
 */
MP_EXPORT void mp_pipe_free(mp_pipe *p);

/* ---- Queue: multiprocessing.Queue(maxsize) ---- */

typedef struct mp_queue mp_queue;

/*
 * A bounded FIFO of up to maxsize messages of 0..max_msg bytes each, for any
 * number of producers and consumers among this process and the children it
 * forks afterwards. It lives in shared memory (no fds):
 * about maxsize * (max_msg + 8) bytes, reserved at once.
 * Returns 0 and sets *out; MP_EINVAL (NULL out, maxsize 0 or over INT_MAX,
 * max_msg over INT_MAX, a size that overflows); -ENOMEM.
 * Crash safety, for a process killed anywhere in put or get (SIGKILL, a
 * crash): the others go on, and
 * - the queue is as if the call had not happened, or as if it had
 *   completed: a put's message is in the queue whole or not at all;
 * - a message is lost only when its consumer dies after get has taken it:
 *   after it was returned, as in Python, or in the last instructions of
 *   get, between taking it and returning. That window has no sleep and no
 *   system call, except (when another process is waiting for the queue's
 *   lock at that instant) the one that hands the lock on. It cannot be
 *   closed: a consumer killed just before or just after its return looks
 *   the same to the queue, and a message handed out twice would be worse;
 * - no process waiting in put or get sleeps more than about 50 ms beside a
 *   queue that has room or a message because the process that made it so
 *   died before waking it (waits re-check in 50 ms slices).
 */
MP_EXPORT int mp_queue_create(mp_queue **out, size_t maxsize, size_t max_msg);

/*
 * Append a copy of the len bytes at msg (msg may be NULL when len is 0),
 * waiting up to timeout seconds while the queue is full (0: put_nowait).
 * Returns 0; MP_ETIMEDOUT (Python's Full; nothing was added); -EMSGSIZE when
 * len > max_msg; MP_EINVAL. With timeout 0 it may also report MP_ETIMEDOUT
 * when another process holds the queue's lock at that instant.
 */
MP_EXPORT int mp_queue_put(mp_queue *q, const void *msg, size_t len,
                           double timeout);

/*
 * Take the oldest message into buf (cap bytes of room), waiting up to
 * timeout seconds while the queue is empty (0: get_nowait). Returns the
 * message's length (>= 0); MP_ETIMEDOUT (Python's Empty); -EMSGSIZE when it
 * is longer than cap (it stays at the head of the queue: a buffer of
 * mp_queue_max_msg() bytes always suffices); MP_EPROTO when the slot was
 * corrupted by a stray write into shared memory (that message is dropped);
 * MP_EINVAL. With timeout 0 it may also report MP_ETIMEDOUT when another
 * process holds the queue's lock at that instant.
 */
MP_EXPORT int mp_queue_get(mp_queue *q, void *buf, size_t cap, double timeout);

/* Messages in the queue now (Python's qsize(); stale at once when others
 * use it), or MP_EINVAL. */
MP_EXPORT int mp_queue_size(const mp_queue *q);

/* The max_msg the queue was created with; 0 for NULL. */
MP_EXPORT size_t mp_queue_max_msg(const mp_queue *q);

/*
 * JoinableQueue. Every mp_queue is one: the queue counts its unfinished
 * tasks, and
 *   unfinished = messages put - mp_queue_task_done calls
 *                - messages discarded by mp_queue_shutdown(q, 1),
 * each put counted at the instant its message enters the queue (so a
 * producer killed inside put has counted its message exactly when it put
 * it). A queue nobody calls task_done on simply never reaches 0.
 *
 * What join cannot see: the queue does not know who took a task, nor
 * whether the process working on it is alive (Python's task_done may come
 * from any process, and a consumer may hand its task to another process or
 * thread to do). So a consumer killed between get and task_done leaves its
 * task unfinished for ever: join then waits until its timeout expires
 * (MP_ETIMEDOUT), or until someone shuts the queue down immediately
 * (MP_ECLOSED), or until some process calls task_done on the dead one's
 * behalf (a supervisor that joined the dead consumer and knows it held k
 * tasks may call it k times). Python's JoinableQueue hangs the same way.
 */

/*
 * Python's task_done(): mark one task got from the queue as done. Returns
 * 0; MP_ESTATE when called more times than there were messages put (less
 * those discarded: Python's ValueError), nothing changed; MP_EINVAL. When
 * the count reaches 0 every process in mp_queue_join returns. Any process
 * holding the queue may call it. A process killed inside it has counted
 * the task or has not; if it had but died before waking the joiners, they
 * see it within about 50 ms.
 */
MP_EXPORT int mp_queue_task_done(mp_queue *q);

/*
 * Python's join(): wait up to timeout seconds until every message put has
 * been marked done (see above: what a dead consumer leaves). Returns 0
 * (at once when nothing is unfinished); MP_ETIMEDOUT; MP_ECLOSED once the
 * queue is shut down immediately (then it returns at once, whatever is
 * unfinished: unlike Python 3.13, whose join still waits for the tasks
 * consumers took); MP_EINVAL.
 */
MP_EXPORT int mp_queue_join(mp_queue *q, double timeout);

/*
 * Python 3.13's Queue.shutdown(immediate), for every process holding the
 * queue: from now on every put fails with MP_ECLOSED (a producer waiting
 * on a full queue too).
 * immediate 0: gets go on taking the messages still queued; once it is
 * empty they fail with MP_ECLOSED (consumers waiting on it too): the
 * producers' way to say "no more", without a stop message per consumer.
 * immediate 1: also discards every queued message (it counts as done for
 * task_done's purposes) and wakes every waiter: put, get and join return
 * MP_ECLOSED. A shutdown(0) may be followed by shutdown(1); it cannot be
 * undone. Returns 0, MP_EINVAL, or -errno when the queue's lock is broken
 * (stray writes into shared memory; nothing changed). A process killed
 * inside it has shut the queue down or has not; if it had, no get takes a
 * message from then on, and a waiter it died before waking sees it within
 * about 50 ms.
 */
MP_EXPORT int mp_queue_shutdown(mp_queue *q, int immediate);

/*
 * mp_queue_shutdown(q, 0): no more puts, for every process; gets drain
 * what is queued, then fail with MP_ECLOSED. Note that Python's
 * multiprocessing Queue.close() only stops the calling process's own puts
 * (and gets); here the end of the stream is the queue's, as in
 * queue.Queue.shutdown(). Returns as mp_queue_shutdown.
 */
MP_EXPORT int mp_queue_close(mp_queue *q);

/* Unmap this process's view and release the handle. Messages still queued
 * stay for other processes holding it. free(NULL) is a no-op. */
MP_EXPORT void mp_queue_free(mp_queue *q);

/* ---- Lock: multiprocessing.Lock() ---- */

typedef struct mp_lock mp_lock;

/*
 * A mutual-exclusion lock between processes (and threads), robust: when its
 * holder dies holding it, the next acquirer gets the lock together with
 * MP_EOWNERDEAD, instead of waiting forever. A holder killed inside
 * release, after the lock was freed but before a waiter was woken, leaves
 * the waiters at most about 50 ms asleep beside the free lock (waits
 * re-check in 50 ms slices; kernels since 5.5 also wake one at once).
 * Not recursive. Returns 0 and sets *out; MP_EINVAL; -ENOMEM; -errno.
 */
MP_EXPORT int mp_lock_create(mp_lock **out);

/*
 * Acquire, waiting up to timeout seconds. Returns 0 (held);
 * MP_EOWNERDEAD (held too, and usable normally from now on, but the
 * previous holder died holding it: the data it guards may be half-updated);
 * MP_ETIMEDOUT; -EDEADLK when this thread already holds it; MP_EINVAL.
 */
MP_EXPORT int mp_lock_acquire(mp_lock *l, double timeout);

/* Release. Returns 0; -EPERM when the calling thread does not hold it (only
 * the holder may release, unlike Python's Lock); MP_EINVAL. */
MP_EXPORT int mp_lock_release(mp_lock *l);

/*
 * Python's Lock.locked(): 1 when some thread of some process holds the
 * lock now, 0 when it is free, MP_EINVAL. Stale at once when others use
 * it. It only reads the lock: it never takes it, so it delays nobody. A
 * lock whose holder died holding it reads 0 (free; its next acquirer gets
 * MP_EOWNERDEAD).
 */
MP_EXPORT int mp_lock_locked(const mp_lock *l);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_lock_free(mp_lock *l);

/* ---- RLock: multiprocessing.RLock() ---- */

typedef struct mp_rlock mp_rlock;

/*
 * A recursive lock between processes (and threads): its owner (one thread
 * of one process) may acquire it again, and must release it as many times
 * as it acquired it before another can have it. Robust as mp_lock: when
 * its owner dies holding it (at any depth), the next acquirer gets it,
 * at depth 1, together with MP_EOWNERDEAD. Returns 0 and sets *out;
 * MP_EINVAL; -ENOMEM; -errno.
 */
MP_EXPORT int mp_rlock_create(mp_rlock **out);

/*
 * Acquire (once more when the calling thread owns it already), waiting up
 * to timeout seconds. Returns 0 (held); MP_EOWNERDEAD (held, at depth 1:
 * the previous owner died holding it); MP_ETIMEDOUT; -EAGAIN when the
 * depth would pass the system's limit (about 2^31); MP_EINVAL.
 */
MP_EXPORT int mp_rlock_acquire(mp_rlock *r, double timeout);

/* Release one level; the lock is free when the depth reaches 0. Returns 0;
 * -EPERM when the calling thread does not own it (Python's RuntimeError);
 * MP_EINVAL. */
MP_EXPORT int mp_rlock_release(mp_rlock *r);

/* 1 when some thread owns the lock now, 0 when free, MP_EINVAL; as
 * mp_lock_locked (it only reads; a dead owner's lock reads 0). */
MP_EXPORT int mp_rlock_locked(const mp_rlock *r);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_rlock_free(mp_rlock *r);

/* ---- Condition: multiprocessing.Condition(lock) ---- */

typedef struct mp_cond mp_cond;

/*
 * A condition variable between processes (and threads) over lock, an
 * mp_lock (not an mp_rlock), or over a lock of its own when lock is NULL
 * (take it with mp_cond_acquire). A lock passed in stays the caller's: it
 * must outlive the condition and be created before the same forks. Every
 * call but create and free must be made holding the lock, as in Python.
 *
 * Crash safety. Each waiter holds a robust mutex of its own while it
 * waits, so notify sees which waiters are dead (their mutex is marked by
 * the kernel) and skips them:
 * - a waiter killed while it waits takes no notification with it: notify
 *   wakes the living, and the dead waiter's place is reused;
 * - a waiter killed after notify chose it, before it returned, takes that
 *   notification with it (as if it had returned, then died);
 * - a notifier killed between choosing a waiter and waking it leaves that
 *   waiter asleep at most about 50 ms (waits re-check in 50 ms slices);
 * - the lock itself is robust: a process that dies holding it passes it on
 *   with MP_EOWNERDEAD, from mp_cond_acquire or from the wait that
 *   re-takes it.
 * At most 256 threads may wait on one condition at once (among all the
 * processes): a wait beyond that fails with -EAGAIN.
 * Returns 0 and sets *out; MP_EINVAL; -ENOMEM; -errno.
 */
MP_EXPORT int mp_cond_create(mp_cond **out, mp_lock *lock);

/* Take or release the condition's lock (Python's cond.acquire(timeout),
 * cond.release()): as mp_lock_acquire and mp_lock_release, same codes. */
MP_EXPORT int mp_cond_acquire(mp_cond *c, double timeout);
MP_EXPORT int mp_cond_release(mp_cond *c);

/*
 * Python's wait(timeout): release the lock, sleep until notified or until
 * timeout seconds have passed, take the lock again (waiting for it as
 * long as it takes, as Python does) and return with it held, whatever the
 * result. Returns 0 when notified; MP_ETIMEDOUT (Python's False);
 * MP_EOWNERDEAD when, re-taking the lock, it found its previous holder
 * dead (held now; notified or not is not said: re-check the state, which
 * may be half-updated); -EPERM when the calling thread does not hold the
 * lock (Python's RuntimeError; nothing waited); -EAGAIN (too many waiters,
 * see above; nothing waited); MP_EINVAL. Like Python's, a caller must
 * re-check its condition after a wakeup: another process may have changed
 * the state before this one re-took the lock.
 */
MP_EXPORT int mp_cond_wait(mp_cond *c, double timeout);

/*
 * Python's wait_for(predicate, timeout): with the lock held, call
 * pred(arg) and, while it returns 0, wait (as mp_cond_wait) within one
 * overall timeout. Returns 0 once pred returned non-zero; MP_ETIMEDOUT
 * when the time ran out with pred still 0 (it is called once more after
 * the last wait); MP_EOWNERDEAD as mp_cond_wait (pred is not called
 * again: the caller judges the state); -EPERM, -EAGAIN, MP_EINVAL (NULL c
 * or pred). pred runs in the caller with the lock held; it must not call
 * this condition's functions.
 */
MP_EXPORT int mp_cond_wait_for(mp_cond *c, int (*pred)(void *arg), void *arg,
                               double timeout);

/*
 * Python's notify(n): wake the n longest-waiting living waiters (fewer
 * when fewer wait). Returns how many it woke (>= 0); -EPERM when the
 * calling thread does not hold the lock (Python's RuntimeError);
 * MP_EINVAL. A waiter woken returns only once it has re-taken the lock,
 * so after the caller releases it.
 */
MP_EXPORT int mp_cond_notify(mp_cond *c, int n);

/* Python's notify_all(): wake every living waiter. Returns how many;
 * -EPERM; MP_EINVAL. */
MP_EXPORT int mp_cond_notify_all(mp_cond *c);

/* Release the handle (this process's view); a lock the condition made
 * itself is released with it, a lock passed in is not. free(NULL) is a
 * no-op. */
MP_EXPORT void mp_cond_free(mp_cond *c);

/* ---- Semaphore: multiprocessing.Semaphore / BoundedSemaphore ---- */

typedef struct mp_sem mp_sem;

/*
 * A counting semaphore starting at value. bound 0: Semaphore(value);
 * bound > 0: BoundedSemaphore, release past bound is refused. Both at most
 * INT_MAX, value <= bound when bounded. Not robust: a process that dies
 * between acquire and release keeps its unit. A process killed inside
 * release has released or has not; if it had but died before waking a
 * waiter, the waiter sleeps at most about 50 ms beside the unit (waits
 * re-check in 50 ms slices). Returns 0 and sets *out; MP_EINVAL; -ENOMEM.
 */
MP_EXPORT int mp_sem_create(mp_sem **out, unsigned value, unsigned bound);

/* Take one unit, waiting up to timeout seconds while the value is 0.
 * Returns 0, MP_ETIMEDOUT, MP_EINVAL. */
MP_EXPORT int mp_sem_acquire(mp_sem *s, double timeout);

/* Give one unit back and wake one waiter. Returns 0; MP_ESTATE past the
 * bound of a bounded semaphore (Python's ValueError); -EOVERFLOW past
 * INT_MAX; MP_EINVAL. */
MP_EXPORT int mp_sem_release(mp_sem *s);

/* The current value (Python's get_value()), or MP_EINVAL. */
MP_EXPORT int mp_sem_value(const mp_sem *s);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_sem_free(mp_sem *s);

/* ---- Event: multiprocessing.Event() ---- */

typedef struct mp_event mp_event;

/* A flag, initially clear, that processes can wait on. Returns 0 and sets
 * *out; MP_EINVAL; -ENOMEM. */
MP_EXPORT int mp_event_create(mp_event **out);

/* Set the flag and wake every waiter. Returns 0 or MP_EINVAL. A setter
 * killed after setting it but before waking them leaves them asleep at
 * most about 50 ms beside the set flag (waits re-check in 50 ms slices). */
MP_EXPORT int mp_event_set(mp_event *e);

/* Clear the flag. Returns 0 or MP_EINVAL. */
MP_EXPORT int mp_event_clear(mp_event *e);

/* 1 when set, 0 when clear, MP_EINVAL. */
MP_EXPORT int mp_event_is_set(const mp_event *e);

/* Wait up to timeout seconds for the flag to be set. Returns 0 when it is
 * set (at once if it already is), MP_ETIMEDOUT (Python's False), MP_EINVAL. */
MP_EXPORT int mp_event_wait(mp_event *e, double timeout);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_event_free(mp_event *e);

/* ---- Barrier: multiprocessing.Barrier(parties, action, timeout) ---- */

typedef struct mp_barrier mp_barrier;

/* Options for mp_barrier_create; NULL or {0} means none. */
typedef struct mp_barrier_opts {
  /* Python's action: run by the last party to arrive, before any party is
   * released, in that party's process, holding the barrier's internal lock
   * (so it must not call this barrier's functions). Non-zero breaks the
   * barrier: that party's wait returns MP_ETASK, the others MP_EBROKEN. */
  int (*action)(void *arg);
  void *arg;
  /* Python's timeout: the wait of a call given a negative timeout, in
   * seconds. 0: none, such waits wait for ever. */
  double timeout;
} mp_barrier_opts;

/*
 * A barrier for parties processes (or threads): each calls
 * mp_barrier_wait, and all are released together when the last arrives;
 * then it is ready for the next round. Broken (Python's
 * BrokenBarrierError, MP_EBROKEN here) by mp_barrier_abort, by a wait that
 * times out, by an action that fails, and by a party that dies while it
 * waits (below); a broken barrier stays broken until mp_barrier_reset.
 *
 * Death. Each waiting party holds a robust mutex of its own, which the
 * kernel marks when the party dies; the others look at every waiting
 * party's mutex in each 50 ms slice of their wait. So a party killed while
 * it waits (or while it runs the action) breaks the barrier, and every
 * other waiter returns MP_EBROKEN within about 50 ms; an arrival after
 * the death, before any waiter looked, breaks it too rather than count a
 * dead party. A party killed inside reset leaves the barrier broken. A
 * party that dies while it is not in wait is not known to the barrier,
 * nor is one killed after its round released it but before its wait
 * returned (it counts as released): the others wait for it as for any
 * party that has not come yet (use a timeout, or have a supervisor that
 * sees the death call mp_barrier_abort).
 *
 * parties: 1 to 1024 (each waiter looks at the others' slots, so the cost
 * grows with parties squared). opts: NULL for none; copied. Returns 0 and
 * sets *out; MP_EINVAL; -ENOMEM; -errno.
 */
MP_EXPORT int mp_barrier_create(mp_barrier **out, unsigned parties,
                                const mp_barrier_opts *opts);

/*
 * Python's wait(timeout): arrive and wait for the others, up to timeout
 * seconds (negative: the barrier's default timeout, else for ever).
 * Returns this party's arrival index, 0 to parties - 1 (the last to arrive
 * gets parties - 1, and ran the action), when the round completes;
 * MP_EBROKEN when the barrier is or becomes broken or is reset while this
 * party waits; MP_ETIMEDOUT when this party's timeout expired (it broke
 * the barrier: the others get MP_EBROKEN); MP_ETASK to the party whose
 * action returned non-zero; MP_EINVAL. A timeout does not bound the time
 * spent waiting for an action to finish, as in Python.
 */
MP_EXPORT int mp_barrier_wait(mp_barrier *b, double timeout);

/* Python's abort(): break the barrier; waiters return MP_EBROKEN, and so
 * does every wait until mp_barrier_reset. Returns 0 or MP_EINVAL. */
MP_EXPORT int mp_barrier_abort(mp_barrier *b);

/* Python's reset(): back to the empty, unbroken state; parties waiting now
 * return MP_EBROKEN. Returns 0 or MP_EINVAL. */
MP_EXPORT int mp_barrier_reset(mp_barrier *b);

/* Python's n_waiting: parties waiting now in the current round (0 when
 * broken), or MP_EINVAL. Stale at once. */
MP_EXPORT int mp_barrier_n_waiting(const mp_barrier *b);

/* Python's broken: 1 when broken, 0 when not, MP_EINVAL. */
MP_EXPORT int mp_barrier_broken(const mp_barrier *b);

/* Python's parties: the number given at create, or MP_EINVAL. */
MP_EXPORT int mp_barrier_parties(const mp_barrier *b);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_barrier_free(mp_barrier *b);

/* ---- Value and Array: multiprocessing.Value / Array ---- */

typedef struct mp_value mp_value;

/*
 * size zeroed bytes in shared memory with a robust lock of their own
 * (Python's Value(..., lock=True)). Use the bytes as any type: the pointer
 * from mp_value_ptr is aligned for every C type. Returns 0 and sets *out;
 * MP_EINVAL (NULL out, size 0 or over 1 TiB); -ENOMEM.
 */
MP_EXPORT int mp_value_create(mp_value **out, size_t size);

/* Python's Array: mp_value_create for n elements of elem_size bytes, with
 * the product checked for overflow (MP_EINVAL). */
MP_EXPORT int mp_array_create(mp_value **out, size_t n, size_t elem_size);

/*
 * The shared bytes, valid until mp_value_free in this process (Python's
 * .value / the array itself). Owned by the object; NULL for NULL. Reads and
 * writes through it are not locked: hold mp_value_lock for any
 * read-modify-write (v.value += 1 needs the lock in Python too).
 */
MP_EXPORT void *mp_value_ptr(const mp_value *v);

/* The size in bytes; 0 for NULL. */
MP_EXPORT size_t mp_value_size(const mp_value *v);

/* Python's get_lock().acquire() / release(): as mp_lock_acquire and
 * mp_lock_release, same codes (MP_EOWNERDEAD included). */
MP_EXPORT int mp_value_lock(mp_value *v, double timeout);
MP_EXPORT int mp_value_unlock(mp_value *v);

/*
 * Copy all mp_value_size() bytes out to dst (load) or in from src (store)
 * under the lock, waiting for it forever. Returns 0; MP_EOWNERDEAD when a
 * holder had died (the copy was still made); -EDEADLK when the caller holds
 * the lock; MP_EINVAL.
 */
MP_EXPORT int mp_value_load(mp_value *v, void *dst);
MP_EXPORT int mp_value_store(mp_value *v, const void *src);

/* Release the handle (this process's view). free(NULL) is a no-op. */
MP_EXPORT void mp_value_free(mp_value *v);

/* ---- Shared memory: multiprocessing.shared_memory.SharedMemory ---- */

typedef struct mp_shm mp_shm;

/*
 * Create size bytes of zeroed shared memory.
 * name NULL: anonymous, shared with the children forked afterwards.
 * name "/something" (one leading slash, no other, at most NAME_MAX bytes):
 * a POSIX named segment (shm_open) that unrelated processes of the same user
 * can mp_shm_attach; created with O_EXCL and mode 0600 exactly, and
 * removed (shm_unlink) when the creating process frees the handle
 * (processes already attached keep their mapping). No fd stays open.
 * Returns 0 and sets *out; MP_EINVAL (NULL out, size 0, bad name);
 * -EEXIST when the name is taken; -EACCES, -ENAMETOOLONG, -ENOMEM, -errno.
 * A named segment is tracked, as Python's resource tracker does by
 * default: see mp_shm_create_opts.
 */
MP_EXPORT int mp_shm_create(mp_shm **out, const char *name, size_t size);

/* Shared memory options; NULL or { 0 } means defaults. */
typedef struct mp_shm_opts {
  /* Non-zero: a named segment outlives its creator's death (Python's
   * track=False); remove it with shm_unlink(name). 0: tracked. */
  int untracked;
} mp_shm_opts;

/*
 * mp_shm_create with options. A tracked named segment is removed when its
 * creating process dies, however it dies (SIGKILL included), as promptly
 * as the kernel closes a dead process's fds: a tracker process, forked at
 * the first tracked create and reaped at the last free (which kills it
 * if it has not gone within a second: a stopped tracker never holds up a
 * free), watches a socket only the creator holds. Exactly:
 * - removing the name is all it does: processes that have the segment
 *   attached keep their mapping; later attaches get -ENOENT;
 * - it never removes a name its creator did not create, nor one the
 *   creator freed (and so removed) itself;
 * - a forked child's copy of the handle is not its creator: the child's
 *   death removes nothing. A child made by a raw fork() (not the
 *   library's, which drop the tracker's socket) delays the removal until
 *   it exits too; an exec does not (close-on-exec);
 * - a creator killed in the instant between creating the name and telling
 *   the tracker leaves that name behind, as does a tracker killed first
 *   (it ignores SIGINT, SIGTERM, SIGHUP, SIGQUIT; SIGKILL ends it);
 * - the tracker is a forked copy of the creator, as a pool worker is: it
 *   touches none of the creator's memory, but pages the creator writes
 *   while it lives are copied by the kernel (copy-on-write). A process
 *   that writes gigabytes while it holds tracked segments may prefer
 *   untracked ones. It counts as a child (SIGCHLD when it exits; do not
 *   reap it with waitpid(-1, ...)), is not an mp_active_children entry,
 *   and holds no other fd.
 * Returns as mp_shm_create; also -EAGAIN / -ENOMEM (the tracker could not
 * be forked) or -EMFILE (its socket), the name then not created.
 * Anonymous segments (name NULL) ignore opts.
 */
MP_EXPORT int mp_shm_create_opts(mp_shm **out, const char *name, size_t size,
                                 const mp_shm_opts *opts);

/*
 * Map the named segment another process created. The size is the segment's.
 * Returns 0 and sets *out; -ENOENT when there is none; -EACCES; MP_ESTATE
 * when its creator has not yet sized it (try again); MP_EINVAL; -errno.
 */
MP_EXPORT int mp_shm_attach(mp_shm **out, const char *name);

/* The bytes (page-aligned; owned by the handle, valid until free), their
 * size, and the name (NULL when anonymous). NULL / 0 for NULL. */
MP_EXPORT void *mp_shm_ptr(const mp_shm *s);
MP_EXPORT size_t mp_shm_size(const mp_shm *s);
MP_EXPORT const char *mp_shm_name(const mp_shm *s);

/*
 * Unmap this process's view and release the handle; in the creating process
 * of a named segment, also remove the name (later attaches get -ENOENT). A
 * forked child freeing its inherited copy never removes it.
 * free(NULL) is a no-op.
 */
MP_EXPORT void mp_shm_free(mp_shm *s);
/* MPOOL-IPC-END */

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_IPC_H */
