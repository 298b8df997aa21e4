/*
 * mpool/pool.h: pools, as multiprocessing.Pool: map, apply, their async
 * results, iterators, variable-length items, and the pool's lifetime.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_POOL_H
#define MPOOL_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "common.h"
#include "error.h"
#include "start.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Pools: multiprocessing.Pool                                              */
/* ------------------------------------------------------------------------ */

typedef struct mp_pool mp_pool;

/*
 * A map task: read one element of in_size bytes at `in`, write one element
 * of out_size bytes at `out`. Return 0 on success; any other value marks the
 * item failed with MP_ETASK and that value as its detail (its output bytes
 * are then unspecified). Runs in a worker process.
 */
typedef int (*mp_map_fn)(const void *in, void *out);

/* A growable result buffer handed to an apply task. */
typedef struct mp_buf mp_buf;

/*
 * Append n bytes to the task's result. Returns 0, -ENOMEM, or -EMSGSIZE when
 * the result would pass the pool's max_result_bytes (the task then fails with
 * -EMSGSIZE whatever it returns).
 */
MP_EXPORT int mp_buf_append(mp_buf *b, const void *data, size_t n);

/*
 * Grow the result by n bytes and return a pointer to them for the task to
 * fill, or NULL (-ENOMEM or -EMSGSIZE as above). The pointer is valid until
 * the next call on the buffer.
 */
MP_EXPORT void *mp_buf_grow(mp_buf *b, size_t n);

/*
 * An apply task: `arg` holds the len bytes the caller passed; write the
 * result through `result`. Return 0 on success; non-zero fails the task with
 * MP_ETASK and that value as detail (result bytes are then discarded).
 */
typedef int (*mp_apply_fn)(const void *arg, size_t len, mp_buf *result);

/* The most worker processes mp_pool_create starts (see processes). */
#define MP_POOL_MAX_PROCESSES 4096

/* Pool options; NULL or { 0 } means defaults. */
typedef struct mp_pool_opts {
  /* Worker processes; 0: mp_cpu_count() (at most MP_POOL_MAX_PROCESSES).
   * A count that cannot work is refused with MP_EINVAL before anything is
   * forked: above MP_POOL_MAX_PROCESSES, or more workers than
   * RLIMIT_NOFILE has fds for (each needs at least 2 in the pool's
   * process, its pipes' ends; up to 5 with its pidfd and shared-memory
   * channel). Limits met on the way fail as they come (-EAGAIN from fork
   * at RLIMIT_NPROC, -EMFILE), everything started undone. */
  int processes;
  /* Run once in every worker before its first task (replacements too).
   * task_timeout bounds it as it bounds a task: past it the worker is
   * killed and replaced. If three workers in a row die inside it, or are
   * killed for overrunning it, the pool is broken rather than replacing
   * workers forever: it terminates itself, every outstanding item fails
   * with MP_ECRASHED (detail: the last worker's status) or MP_ETIMEDOUT
   * (the last one overran) and new work gets MP_ECLOSED. It may drop
   * privileges: the parent-death signal, which the kernel disarms on a
   * credential change, is armed again after it returns, so workers still
   * die with the pool's process. (A task that changes credentials disarms
   * it for good: its worker then ends at its next read of the task pipe
   * after the parent has died, not at once.) */
  void (*initializer)(void *arg);
  void *initarg;
  /* A worker exits after this many tasks (a map chunk is one task, as in
   * Python) and the pool forks a fresh one; 0: workers live as long as the
   * pool. */
  int maxtasksperchild;
  /* Seconds one item (or one initializer: see above) may run; past it its
   * worker is killed, the item fails with MP_ETIMEDOUT and the worker is
   * replaced. 0 (or above 1e9, INFINITY included): no limit. */
  double task_timeout;
  /* Largest apply result in bytes; 0: 256 MiB. A task that writes more fails
   * with -EMSGSIZE instead of exhausting memory. At most 2 GiB - 4 KiB. */
  size_t max_result_bytes;
  /* How workers start (see "Start methods" below): MP_START_FORK or
   * MP_START_FORKSERVER; 0: the process-wide default, mp_get_start_method().
   * With forkserver the initializer crosses as a portable reference (one
   * that cannot be made is MP_EINVAL at create). */
  int start_method;
  /* Forkserver: the bytes at initarg each worker gets a copy of; the
   * initializer's arg then points to that copy (16-byte aligned). 0:
   * initarg is handed over as an opaque value (its bits: NULL, or an
   * integer cast to a pointer), pointing to nothing in the worker.
   * Ignored by fork, whose workers see initarg itself. */
  size_t initarg_len;
  /* How tasks and results move between the pool and its workers (see
   * "Transports" below): MP_TRANSPORT_SHM or MP_TRANSPORT_PIPE; 0: the
   * default, MP_TRANSPORT_SHM unless the environment variable
   * MPOOL_TRANSPORT was "pipe" when the program started, or
   * maxtasksperchild is 1 (a worker that runs one task has no wait to
   * save, and shared memory would only add its mapping to each fork:
   * pipes). */
  int transport;
} mp_pool_opts;

/*
 * Transports. MP_TRANSPORT_PIPE: every task and result crosses a pipe, and
 * a process waiting for one sleeps in poll() or read(). MP_TRANSPORT_SHM
 * (the default): they cross shared-memory rings, one pair per worker
 * (512 KiB each way, mapped only by the pool's process and that worker),
 * and a waiting process spins on its ring only while that pays: its peer
 * is awake on another CPU, a CPU is free for the spinner, and recent waits
 * were short enough to be caught (the budget adapts, 2 to 50 us); else it
 * sleeps at once (a futex in the worker, poll() in the parent), and is
 * woken only when it said it sleeps; a sleeper also looks at its ring
 * again at least every second (a worker) or every 100 ms while a worker
 * holds work (the parent, which then also stores its ring head again), so
 * a wake-up or a head lost to a stray store into the shared page costs
 * that long, never a hang. Across CPUs a round trip then costs
 * what memory costs, not what a wake-up costs; on one CPU (or when every
 * CPU is busy) it costs what the pipes cost. Both give the same results
 * and guarantees: a worker's death is still seen at once (its result
 * pipe's EOF), large map inputs still go by reference through the task
 * pipe, and the pool validates every byte and every ring index a worker
 * could have written (a worker that scribbles on its ring is a protocol
 * error: MP_EPROTO for the item it ran). A task that writes to its
 * worker's result pipe fails with MP_EPROTO under either, and no other
 * item does (those that might have written it run again, one at a time,
 * as around a crash): under shm, where that pipe carries only wake-up
 * bytes, the worker looks at it before its results reach the ring, so a
 * result never gets past its own junk. An idle shm pool sleeps as a pipe
 * pool does. Either works with either start
 * method.
 */
enum {
  MP_TRANSPORT_PIPE = 1,
  MP_TRANSPORT_SHM = 2,
};

/*
 * Start the workers. Returns 0 and sets *out; MP_EINVAL for a NULL out or a
 * negative count or timeout, a count past the limits (see processes:
 * refused before anything is forked), an unknown start_method or
 * transport, an initializer that
 * cannot be made a portable reference (forkserver); MP_ENOFUNC when the
 * fork server cannot resolve the initializer; -ENOENT (or another error of
 * exec) when the fork server cannot be started from /proc/self/exe;
 * MP_ETIMEDOUT when it does not answer within 30 seconds of its start;
 * -EAGAIN (fork: e.g. RLIMIT_NPROC; or a child that did not arm its
 * parent-death signal within 10 seconds, killed), -EMFILE /
 * -ENFILE (pipes: e.g. RLIMIT_NOFILE), -ENOMEM. On failure every worker
 * already forked is killed and reaped and every fd closed.
 */
MP_EXPORT int mp_pool_create(mp_pool **out, const mp_pool_opts *opts);

/* The number of worker processes the pool keeps. */
MP_EXPORT int mp_pool_processes(const mp_pool *pool);

/*
 * Fill pids[0..n) with the current workers' pids; a worker known to be gone
 * (dead and not yet replaced, or being replaced) shows as 0. Under
 * forkserver they are the server's children, not the caller's. Returns the
 * number of workers written, MP_EINVAL for NULL.
 */
MP_EXPORT int mp_pool_worker_pids(const mp_pool *pool, pid_t *pids, int n);

/* Called as results of a map arrive; inside library calls, caller's thread. */
typedef void (*mp_progress_fn)(size_t done, size_t total, void *arg);

/* Map options; NULL or { 0 } means defaults. */
typedef struct mp_map_opts {
  /* Items per task. 0: chunks that shrink as the input runs out (a guided
   * schedule: each takes about 1/(2 x workers) of what is left, the last
   * ones single items), bounded to about 256 KiB of input or output (64 KiB
   * for iterators), so uneven items balance. An explicit size is honoured
   * as given; MP_EINVAL when one chunk of it could not be one message
   * (its input or output past 1 GiB). */
  size_t chunksize;
  /* Optional: n statuses, one per item, filled as items finish. */
  mp_status *status;
  /* Optional progress callback and its argument: called with 0 done before
   * the first result, then as results arrive. */
  mp_progress_fn progress;
  void *progress_arg;
  /* Optional bytes handed to every item of this call (Python's
   * functools.partial): copied at submit, sent to each worker once per
   * call, read by the task with mp_context(). At most 2 GiB - 4 KiB: a
   * longer context is refused with MP_EINVAL at submit, before a byte of
   * it is read or copied. */
  const void *context;
  size_t context_len;
  /* Seconds one item of this call may run, as the pool's task_timeout,
   * which it overrides: 0 keeps the pool's, negative means none. */
  double task_timeout;
} mp_map_opts;

/*
 * pool.map: out[i] = f(in[i]) for i in [0, n), in input order, in parallel.
 * in holds n elements of in_size bytes, out room for n of out_size bytes
 * (both may be NULL when n is 0). Blocks until every item has an outcome.
 * No other thread may write to in during the call: large inputs reach the
 * workers by reference (vmsplice), not by copy.
 * When some items fail, every other item's result is still written; the
 * failed items' indices and codes are in opts->status when given.
 * Returns 0, the code of the lowest-indexed failed item (MP_ETASK,
 * MP_ECRASHED, MP_ETIMEDOUT, MP_EPROTO, MP_ECLOSED), MP_EINVAL (NULL
 * arguments, zero sizes, element sizes over 1 GiB, a context over 2 GiB -
 * 4 KiB), MP_ECLOSED after
 * close/terminate, -ENOMEM; or -errno when waiting on the workers itself
 * fails (poll: -EINVAL when RLIMIT_NOFILE was lowered below the pool's
 * fds, -ENOMEM): the map is then abandoned, as by mp_result_free, and its
 * arrays are never touched again.
 */
MP_EXPORT int mp_pool_map(mp_pool *pool, mp_map_fn f, const void *in,
                          size_t n, size_t in_size, void *out, size_t out_size,
                          const mp_map_opts *opts);

/*
 * pool.apply: run f on a copy of the len bytes at arg in a worker and wait.
 * On 0, *result is a malloc'd buffer of *result_len bytes that the caller
 * releases with free() (NULL when the result is empty). On failure *result is
 * NULL and *result_len 0; status, when not NULL, receives the outcome.
 * Returns 0 or the task's code (see mp_status), MP_EINVAL, MP_ECLOSED,
 * -ENOMEM, or -errno when waiting on the workers fails (as for map).
 * len may be 0 (arg may then be NULL); at most 2 GiB - 4 KiB.
 */
MP_EXPORT int mp_pool_apply(mp_pool *pool, mp_apply_fn f, const void *arg,
                            size_t len, void **result, size_t *result_len,
                            mp_status *status);

/* ---- asynchronous results: AsyncResult ---- */

typedef struct mp_result mp_result;

/*
 * Async callbacks. Exactly one of them runs, exactly once, inside a library
 * call on this pool (ready, wait, get, map, apply, next, join, close,
 * terminate, free), on the caller's thread, after the result is complete.
 * A callback may submit more work to the pool; it must not free the pool or
 * the result it is handed.
 */
typedef void (*mp_result_cb)(mp_result *r, void *arg);

typedef struct mp_async_opts {
  mp_result_cb callback;       /* on success */
  mp_result_cb error_callback; /* on failure */
  void *arg;                   /* handed to both */
  /* For apply_async: context (at most 2 GiB - 4 KiB) and timeout as in
   * mp_map_opts (a map_async takes its own from its mp_map_opts; these
   * are then ignored). */
  const void *context;
  size_t context_len;
  double task_timeout;
} mp_async_opts;

/*
 * pool.apply_async: like mp_pool_apply but returns at once with a handle.
 * arg is copied before return. Returns 0 and sets *out; MP_EINVAL, MP_ECLOSED,
 * -ENOMEM (nothing is submitted then).
 */
MP_EXPORT int mp_pool_apply_async(mp_pool *pool, mp_apply_fn f,
                                  const void *arg, size_t len,
                                  const mp_async_opts *opts, mp_result **out);

/*
 * pool.map_async: like mp_pool_map but returns at once with a handle. in and
 * out (and opts->status) are the caller's and must stay valid until the
 * result is ready or freed. opts may be NULL; its callbacks as for apply.
 */
typedef struct mp_map_async_opts {
  mp_map_opts map;
  mp_async_opts async;
} mp_map_async_opts;

MP_EXPORT int mp_pool_map_async(mp_pool *pool, mp_map_fn f, const void *in,
                                size_t n, size_t in_size, void *out,
                                size_t out_size,
                                const mp_map_async_opts *opts,
                                mp_result **out_result);

/* 1 if the result is complete (success or failure), else 0. Makes progress. */
MP_EXPORT int mp_result_ready(mp_result *r);

/* Wait up to timeout seconds (negative: forever) for completion. Returns 0,
 * MP_ETIMEDOUT, MP_EINVAL for NULL, or -errno when waiting on the workers
 * fails (as for mp_pool_map; the result stays pending). Under forkserver a
 * wait that needs the fork server may last up to 2 seconds longer when
 * that server does not answer: see "Start methods". */
MP_EXPORT int mp_result_wait(mp_result *r, double timeout);

/*
 * Wait as mp_result_wait, then return the outcome: 0, the task's code (map:
 * the lowest-indexed failure's), MP_ETIMEDOUT if not complete in time.
 * For apply results, *data / *len (each optional) receive the result bytes,
 * owned by the handle and valid until mp_result_free (data is NULL on
 * failure or for an empty result). For map results they receive NULL and 0:
 * the outputs are in the caller's array. status, when not NULL, receives the
 * outcome's code and detail.
 */
MP_EXPORT int mp_result_get(mp_result *r, double timeout, const void **data,
                            size_t *len, mp_status *status);

/* After ready: 1 if it succeeded, 0 if it failed; MP_ESTATE while pending
 * (Python raises ValueError). */
MP_EXPORT int mp_result_successful(mp_result *r);

/*
 * Release the handle. A result still pending is detached: its callbacks will
 * not run, a map stops handing out chunks it has not yet sent, and results
 * still in flight are discarded (never written to the caller's arrays after
 * this returns). Nor is its input read after this returns: a chunk half
 * sent is finished from a copy (or, without memory for one, its worker is
 * replaced), so the caller may free the input at once. A handle may
 * outlive its pool (see mp_pool_free for what it then reports), and must
 * be freed all the same. free(NULL) is a no-op.
 */
MP_EXPORT void mp_result_free(mp_result *r);

/* ---- iterators: imap and imap_unordered ---- */

typedef struct mp_iter mp_iter;

/*
 * pool.imap / pool.imap_unordered over the n elements at in (in_size bytes
 * each); each item's output has out_size bytes. Input is sent lazily and only
 * a bounded window of items is in flight or buffered, so memory stays flat
 * however large n is. in must stay valid until the iterator is freed.
 * opts: chunksize as for map (status and progress are ignored; each item's
 * outcome comes from mp_iter_next). Returns 0 and sets *out; MP_EINVAL,
 * MP_ECLOSED, -ENOMEM.
 */
MP_EXPORT int mp_pool_imap(mp_pool *pool, mp_map_fn f, const void *in,
                           size_t n, size_t in_size, size_t out_size,
                           const mp_map_opts *opts, mp_iter **out);
MP_EXPORT int mp_pool_imap_unordered(mp_pool *pool, mp_map_fn f,
                                     const void *in, size_t n, size_t in_size,
                                     size_t out_size, const mp_map_opts *opts,
                                     mp_iter **out);

/*
 * The next item: in input order (imap) or in completion order
 * (imap_unordered). Waits up to timeout seconds (negative: forever).
 * After mp_pool_terminate every item not yet computed is returned as
 * MP_ECLOSED, without memory growing with their number. An item whose
 * result could not be stored (out of memory) is returned as -ENOMEM, with
 * index SIZE_MAX in completion order, and no more input is sent.
 * Returns 0 with the item's output copied to out (out_size bytes); the item's
 * failure code (see mp_status) when that item failed, iteration going on;
 * MP_EOF when every item has been returned; MP_ETIMEDOUT; -errno when
 * waiting on the workers fails (as for mp_pool_map). index (optional)
 * receives the item's input index, status (optional) its outcome.
 */
MP_EXPORT int mp_iter_next(mp_iter *it, void *out, size_t *index,
                           mp_status *status, double timeout);

/* ---- variable-length items and streaming sources ---- */

/* Bytes of one item or one result: data points at len bytes. */
typedef struct mp_bytes {
  const void *data;
  size_t len;
} mp_bytes;

/*
 * pool.map over items of their own lengths: f (an mp_apply_fn, as for
 * apply) runs on each in[i] and writes its result, of any length, through
 * its mp_buf; out[i] receives a malloc'd copy of it (data NULL when empty),
 * in input order. The item bytes are sent by value, so they may live
 * anywhere (memory made after the pool exists is fine); the library
 * batches many small items into one message, as it does for map (an
 * explicit chunksize is honoured as far as one message carries it: its
 * items' bytes up to 2 GiB - 4 KiB, at least one item). Release
 * the results with mp_bytes_free(out, n), also after a failure. A failed
 * item's out[i] is {NULL, 0}; its code is in opts->status when given.
 * Returns as mp_pool_map. Each result is at most max_result_bytes
 * (-EMSGSIZE for that item past it, or past the 4 GiB one message of its
 * chunk's results carries); an item is at most 1 GiB.
 */
MP_EXPORT int mp_pool_map_bytes(mp_pool *pool, mp_apply_fn f,
                                const mp_bytes *in, size_t n, mp_bytes *out,
                                const mp_map_opts *opts);

/*
 * imap and imap_unordered over items of their own lengths, as
 * mp_pool_map_bytes; in (and the bytes it points at) must stay valid until
 * the iterator is freed. Results come from mp_iter_next_bytes.
 */
MP_EXPORT int mp_pool_imap_bytes(mp_pool *pool, mp_apply_fn f,
                                 const mp_bytes *in, size_t n,
                                 const mp_map_opts *opts, mp_iter **out);
MP_EXPORT int mp_pool_imap_bytes_unordered(mp_pool *pool, mp_apply_fn f,
                                           const mp_bytes *in, size_t n,
                                           const mp_map_opts *opts,
                                           mp_iter **out);

/*
 * A streaming source: append the next item's bytes to item (mp_buf_append
 * or mp_buf_grow; an item may be empty) and return 1; return 0 when there
 * are no more items, or a negative code to stop with that error. Called in
 * the caller's process, inside library calls on the pool, only as the
 * iterator's window drains: however many items there are, only a window of
 * them is ever held.
 */
typedef int (*mp_source_fn)(void *arg, mp_buf *item);

/*
 * imap and imap_unordered over the items src produces, their number not
 * known in advance. Results come from mp_iter_next_bytes; when the source
 * has ended and every item is returned, mp_iter_next_bytes gives MP_EOF.
 * If the source stopped with an error, the items it made before are all
 * returned first, intact; then that error comes once, as the outcome of
 * the item the source failed to make (index: the number of items it made;
 * status: the error, detail 0), and MP_EOF after it, so a loop that goes
 * on past failed items ends. opts->chunksize caps items per task (0: the
 * guided rule, on what has come so far).
 */
MP_EXPORT int mp_pool_imap_source(mp_pool *pool, mp_apply_fn f,
                                  mp_source_fn src, void *src_arg,
                                  const mp_map_opts *opts, mp_iter **out);
MP_EXPORT int mp_pool_imap_source_unordered(mp_pool *pool, mp_apply_fn f,
                                            mp_source_fn src, void *src_arg,
                                            const mp_map_opts *opts,
                                            mp_iter **out);

/*
 * The next result of an iterator made by mp_pool_imap_bytes or
 * mp_pool_imap_source (either order): *out receives a malloc'd copy of it
 * (data NULL when empty or failed), which the caller releases with
 * mp_bytes_free(out, 1). Returns as mp_iter_next; MP_EINVAL for an iterator
 * of fixed-size items (and mp_iter_next gives MP_EINVAL for these).
 */
MP_EXPORT int mp_iter_next_bytes(mp_iter *it, mp_bytes *out, size_t *index,
                                 mp_status *status, double timeout);

/* free() the data of b[0..n) and set each to {NULL, 0}. NULL b is a no-op. */
MP_EXPORT void mp_bytes_free(mp_bytes *b, size_t n);

/*
 * Inside a task: the context bytes the call that submitted it gave
 * (mp_map_opts or mp_async_opts .context), and their length in *len
 * (optional). NULL when that call gave none, or outside a task. Valid until
 * the task returns.
 */
MP_EXPORT const void *mp_context(size_t *len);

/*
 * One line for an outcome, into buf (len bytes, always terminated; a line
 * fits in 64): "ok", "task returned 42", "killed by signal 11
 * (Segmentation fault)", "exit status 3", "timed out", or the code's
 * message. Returns buf.
 */
MP_EXPORT const char *mp_status_str(const mp_status *st, char *buf,
                                    size_t len);

/*
 * mp_pool_map, mp_pool_map_async, mp_pool_imap and mp_pool_imap_unordered
 * with the element sizes taken from the arrays' types, so that a count and
 * a size cannot be swapped: in and out must be pointers to complete element
 * types (not void *); for the iterators, out_type is the output's type. The
 * arguments after them are the function's own (opts, and the result or
 * iterator pointer); a compound literal with commas may be one of them.
 */
#define MP_POOL_MAP(pool, f, in, n, out, ...)                                  \
  mp_pool_map((pool), (f), (in), (n), sizeof *(in), (out), sizeof *(out),     \
              __VA_ARGS__)
#define MP_POOL_MAP_ASYNC(pool, f, in, n, out, ...)                            \
  mp_pool_map_async((pool), (f), (in), (n), sizeof *(in), (out),              \
                    sizeof *(out), __VA_ARGS__)
#define MP_POOL_IMAP(pool, f, in, n, out_type, ...)                            \
  mp_pool_imap((pool), (f), (in), (n), sizeof *(in), sizeof(out_type),        \
               __VA_ARGS__)
#define MP_POOL_IMAP_UNORDERED(pool, f, in, n, out_type, ...)                  \
  mp_pool_imap_unordered((pool), (f), (in), (n), sizeof *(in),                \
                         sizeof(out_type), __VA_ARGS__)

/* Release the iterator; items not yet returned are cancelled or discarded,
 * and its input is never read after this returns (as mp_result_free). An
 * iterator may outlive its pool (see mp_pool_free), and must be freed all
 * the same: the pool does not free it. free(NULL) is a no-op. */
MP_EXPORT void mp_iter_free(mp_iter *it);

/* ---- lifetime ---- */

/*
 * pool.close: accept no new work. Workers finish what is queued and then
 * exit; mp_pool_join waits for that. An iterator not yet consumed is then
 * computed in full, its results buffered for mp_iter_next, so that join can
 * finish. Returns 0, MP_ESTATE after terminate, -errno when waiting on the
 * workers fails (as for mp_pool_map). Closing twice is allowed.
 */
MP_EXPORT int mp_pool_close(mp_pool *pool);

/*
 * pool.terminate: kill the workers now (SIGKILL) and reap them. Every
 * outstanding item and result fails with MP_ECLOSED (callbacks run).
 * Returns 0.
 */
MP_EXPORT int mp_pool_terminate(mp_pool *pool);

/*
 * pool.join: wait until all queued work is done (after close) and every
 * worker has exited and been reaped. Returns 0, MP_ESTATE unless close or
 * terminate came first, -errno when waiting on the workers fails (as for
 * mp_pool_map).
 */
MP_EXPORT int mp_pool_join(mp_pool *pool);

/*
 * Terminate what is left (as leaving `with Pool() as p:` does), reap the
 * workers and release the pool. Bounded also when a worker or the fork
 * server is stopped: workers are killed with SIGKILL, and a server that
 * does not answer within 2 seconds is killed (see "Start methods").
 * Result handles and iterators are the caller's, not the pool's: each
 * must still be released with mp_result_free or mp_iter_free, before or
 * after this (one never released is leaked, with the results it holds).
 * After this a handle stays valid: a result complete before keeps its
 * outcome (and an apply's bytes), one still pending is complete with
 * MP_ECLOSED, and an iterator returns the items it had buffered and
 * MP_ECLOSED for each item never computed, in its order, then MP_EOF.
 * free(NULL) is a no-op.
 */
MP_EXPORT void mp_pool_free(mp_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_POOL_H */
