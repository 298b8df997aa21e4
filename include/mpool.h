/*
 * mpool.h: process pools for C in the shape of Python's multiprocessing.
 *
 * One header, the whole API. Python beside C:
 *
 *   p = mp.Process(target=f, args=(x,))    mp_process_create(&p, f, &x, NULL)
 *   p.start(); p.join()                    mp_process_start(p); mp_process_join(p, -1)
 *   with mp.Pool(4) as pool:               mp_pool_create(&pool, &(mp_pool_opts){ .processes = 4 })
 *       ys = pool.map(f, xs)               mp_pool_map(pool, f, xs, n, sizeof *xs, ys, sizeof *ys, NULL)
 *                                          mp_pool_free(pool)
 *
 * Order of calls
 *   Process: create -> start -> join (or is_alive / exitcode polls) -> free.
 *   Pool:    create -> map / apply / *_async / imap ... -> close -> join -> free.
 *            free alone terminates the workers, as leaving Python's `with` does.
 *
 * Errors
 *   Every call that can fail returns int: 0 (or a count) on success, negative
 *   on failure. A failing system call gives -errno (-EAGAIN from fork, -EMFILE
 *   from pipe); conditions of the library's own have the MP_E* codes below,
 *   outside errno's range. mp_strerror() and mp_err_name() describe any code.
 *   The library never prints, never exits the caller's process and never uses
 *   errno to report. A failed call changes nothing and leaks nothing: no fd,
 *   no child, no memory.
 *
 * Processes and signals
 *   Every fork flushes stdio first (so buffered output is not printed twice),
 *   and every child leaves with _exit() after flushing its own stdio, so the
 *   parent's atexit handlers never run in it. The library installs no signal
 *   handler and changes no signal disposition: SIGPIPE is blocked around its
 *   own writes and any SIGPIPE they raise is consumed, so a worker dying while
 *   the parent writes to it never kills the parent. An application may set
 *   SIGCHLD to SIG_IGN or install its own handler (but must not reap the
 *   library's children itself with waitpid(-1, ...)).
 *
 * Threads
 *   A handle is used from one thread at a time; separate handles are
 *   independent. Progress is made only inside library calls: there are no
 *   hidden threads. fork() copies only the calling thread: a program that runs
 *   other threads should create its pools and processes before starting them,
 *   or make sure the task functions touch nothing those threads may hold
 *   (locks inside malloc and stdio are the usual trap). Daemon processes and
 *   pool workers die when the *thread* that created them exits (this is how
 *   the kernel's parent-death signal works): create them from a thread that
 *   outlives them, typically the main thread.
 *
 * Functions cross as pointers
 *   A child is a forked copy of its parent, so a function pointer means the
 *   same code in both. A function from a library loaded (dlopen) after a pool
 *   was created is not mapped in that pool's workers: do not send it.
 *   Handles created in a parent (processes, pools) must not be used in its
 *   children; the IPC objects below are the exception and say so.
 */
#ifndef MPOOL_H
#define MPOOL_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPOOL_STATIC) || !defined(__GNUC__)
#define MP_EXPORT
#else
#define MP_EXPORT __attribute__((visibility("default")))
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0

/* "0.1.0": the version of the library actually linked. */
MP_EXPORT const char *mp_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The library's own codes. They lie below -1000, outside errno's range, so a
 * return value is either 0, a negated errno value, or one of these.
 */
#define MP_ERRNO_MAP(XX)                                                      \
  XX(ECRASHED, -1001, "task's worker crashed (signal or exit)")               \
  XX(ETIMEDOUT, -1002, "timed out")                                           \
  XX(ETASK, -1003, "task function reported failure")                          \
  XX(ECLOSED, -1004, "pool closed or terminated")                             \
  XX(ESTATE, -1005, "call not valid in the object's current state")           \
  XX(EPROTO, -1006, "worker sent bytes that are not a valid frame")           \
  XX(EOF, -1007, "no more items")                                             \
  XX(EPEERDEAD, -1008, "peer process is gone")                                \
  XX(EOWNERDEAD, -1009, "lock acquired; its previous holder died holding it")

enum {
#define MP__ERR_ENUM(name, value, msg) MP_##name = (value),
  MP_ERRNO_MAP(MP__ERR_ENUM)
#undef MP__ERR_ENUM
  /* Bad argument: a NULL handle or target, a zero size, an absurd count. */
  MP_EINVAL = -22 /* == -EINVAL */
};

/*
 * A static English message for any return code: 0, -errno or MP_E*.
 * Never NULL; unknown codes give "unknown error".
 */
MP_EXPORT const char *mp_strerror(int code);

/*
 * The code's symbolic name without sign: "ECRASHED", "EAGAIN", "OK" for 0,
 * "UNKNOWN" for codes the table does not know. Static; never NULL.
 */
MP_EXPORT const char *mp_err_name(int code);

/*
 * The outcome of one task or item. code is 0 on success, else one of:
 *   MP_ETASK      the task function returned non-zero; detail is that value.
 *   MP_ECRASHED   the worker died running it; detail is -N if signal N killed
 *                 it, the exit status if it called exit(), or 0 when the
 *                 status could not be learned (SIGCHLD set to SIG_IGN).
 *   MP_ETIMEDOUT  it ran past the pool's task_timeout and was killed.
 *   MP_EPROTO     its worker sent an invalid frame and was killed.
 *   MP_ECLOSED    the pool was terminated before it finished.
 *   -EMSGSIZE     (apply) the result grew past the pool's max_result_bytes.
 *   -errno        the library could not run it (e.g. -ENOMEM).
 */
typedef struct mp_status {
  int code;
  int detail;
} mp_status;

/* ------------------------------------------------------------------------ */
/* Processes: multiprocessing.Process                                       */
/* ------------------------------------------------------------------------ */

typedef struct mp_process mp_process;

/*
 * What a process runs. Its return value becomes the exit code (only the low
 * 8 bits survive, as with exit()). It may also call exit(n) itself.
 */
typedef int (*mp_target_fn)(void *arg);

/* Options; NULL or { 0 } means defaults. */
typedef struct mp_process_opts {
  /* Name; copied. NULL: "Process-N", numbered from 1 per creating process as
   * Python does (a child's own children are "Process-K:N"). */
  const char *name;
  /* Non-zero: a daemon. It is killed when its parent dies (SIGKILL through
   * the parent-death signal, with the race at fork re-checked), and
   * mp_process_free() terminates it instead of waiting for it. */
  int daemon;
} mp_process_opts;

/*
 * Create a process that will run target(arg); nothing is forked yet.
 * arg is not copied: the child sees the parent's memory as it was at start.
 * Returns 0 and sets *out, MP_EINVAL if out or target is NULL, -ENOMEM.
 * On error *out is left unchanged.
 */
MP_EXPORT int mp_process_create(mp_process **out, mp_target_fn target,
                                void *arg, const mp_process_opts *opts);

/*
 * Fork the child and run the target in it. Returns 0, MP_ESTATE if already
 * started, -EAGAIN / -ENOMEM (fork), -EMFILE / -ENFILE (its status pipe).
 * A failed start leaves the process unstarted; it may be started again.
 */
MP_EXPORT int mp_process_start(mp_process *p);

/*
 * Wait for the child to finish and reap it. timeout in seconds; negative
 * waits forever, 0 polls. Returns 0 when it has finished (see exitcode),
 * MP_ETIMEDOUT if it is still running when the timeout expires, MP_ESTATE if
 * it was never started. Joining a finished process again returns 0.
 */
MP_EXPORT int mp_process_join(mp_process *p, double timeout);

/* 1 while started and not yet finished, else 0 (reaps it if it just ended). */
MP_EXPORT int mp_process_is_alive(mp_process *p);

/* The child's pid once started (kept after it ends), 0 before start. */
MP_EXPORT pid_t mp_process_pid(const mp_process *p);

/*
 * The exit code, Python's Process.exitcode: the target's return value (low 8
 * bits), n when the target called exit(n), -N when signal N killed it.
 * Returns 0 and sets *code when the process has finished (it polls and reaps,
 * never blocks); MP_ESTATE when it was never started or is still running,
 * leaving *code unchanged: "not finished yet" is never confused with 0.
 * If the application set SIGCHLD to SIG_IGN the kernel discards statuses:
 * a target that returned or called exit() is still reported exactly, a
 * child killed by a signal is reported as -SIGKILL.
 */
MP_EXPORT int mp_process_exitcode(mp_process *p, int *code);

/*
 * Send SIGTERM (terminate) or SIGKILL (kill). Returns 0, also when the child
 * has already finished (nothing is sent then); MP_ESTATE if never started.
 * Neither waits: join afterwards.
 */
MP_EXPORT int mp_process_terminate(mp_process *p);
MP_EXPORT int mp_process_kill(mp_process *p);

/* The name; owned by the handle, valid until mp_process_free. */
MP_EXPORT const char *mp_process_name(const mp_process *p);

/*
 * Release the handle. A child still running is not left behind: a daemon is
 * terminated (SIGTERM, then SIGKILL if it is still alive after a second) and
 * reaped; a non-daemon is waited for, as Python joins non-daemonic children
 * at exit. A finished child is reaped. free(NULL) is a no-op.
 */
MP_EXPORT void mp_process_free(mp_process *p);

/*
 * The number of CPUs this process may run on (its affinity mask), which can
 * be fewer than those online. Always >= 1.
 */
MP_EXPORT int mp_cpu_count(void);

/*
 * "MainProcess" in a process not created by this library; the process's name
 * in an mp_process child; "PoolWorker-N" in a pool worker. Static storage.
 */
MP_EXPORT const char *mp_current_process_name(void);

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

/* Pool options; NULL or { 0 } means defaults. */
typedef struct mp_pool_opts {
  /* Worker processes; 0: mp_cpu_count(). */
  int processes;
  /* Run once in every worker before its first task (replacements too). */
  void (*initializer)(void *arg);
  void *initarg;
  /* A worker exits after this many tasks (a map chunk is one task, as in
   * Python) and the pool forks a fresh one; 0: workers live as long as the
   * pool. */
  int maxtasksperchild;
  /* Seconds one item may run; past it its worker is killed, the item fails
   * with MP_ETIMEDOUT and the worker is replaced. 0: no limit. */
  double task_timeout;
  /* Largest apply result in bytes; 0: 256 MiB. A task that writes more fails
   * with -EMSGSIZE instead of exhausting memory. At most 2 GiB. */
  size_t max_result_bytes;
} mp_pool_opts;

/*
 * Fork the workers. Returns 0 and sets *out; MP_EINVAL for a NULL out or a
 * negative count or timeout; -EAGAIN (fork: e.g. RLIMIT_NPROC), -EMFILE /
 * -ENFILE (pipes: e.g. RLIMIT_NOFILE), -ENOMEM. On failure every worker
 * already forked is killed and reaped and every fd closed.
 */
MP_EXPORT int mp_pool_create(mp_pool **out, const mp_pool_opts *opts);

/* The number of worker processes the pool keeps. */
MP_EXPORT int mp_pool_processes(const mp_pool *pool);

/*
 * Fill pids[0..n) with the current workers' pids (a worker being replaced may
 * show as 0). Returns the number of workers written, MP_EINVAL for NULL.
 */
MP_EXPORT int mp_pool_worker_pids(const mp_pool *pool, pid_t *pids, int n);

/* Called as results of a map arrive; inside library calls, caller's thread. */
typedef void (*mp_progress_fn)(size_t done, size_t total, void *arg);

/* Map options; NULL or { 0 } means defaults. */
typedef struct mp_map_opts {
  /* Items per task; 0: Python's rule, about n / (4 x workers). Chunks are
   * also bounded to about 256 KiB of input or output. */
  size_t chunksize;
  /* Optional: n statuses, one per item, filled as items finish. */
  mp_status *status;
  /* Optional progress callback and its argument. */
  mp_progress_fn progress;
  void *progress_arg;
} mp_map_opts;

/*
 * pool.map: out[i] = f(in[i]) for i in [0, n), in input order, in parallel.
 * in holds n elements of in_size bytes, out room for n of out_size bytes
 * (both may be NULL when n is 0). Blocks until every item has an outcome.
 * When some items fail, every other item's result is still written; the
 * failed items' indices and codes are in opts->status when given.
 * Returns 0, the code of the lowest-indexed failed item (MP_ETASK,
 * MP_ECRASHED, MP_ETIMEDOUT, MP_EPROTO, MP_ECLOSED), MP_EINVAL (NULL
 * arguments, zero sizes, element sizes over 1 GiB), MP_ECLOSED after
 * close/terminate, -ENOMEM.
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
 * -ENOMEM. len may be 0 (arg may then be NULL); at most 2 GiB.
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
 * MP_ETIMEDOUT, MP_EINVAL for NULL. */
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
 * this returns). A handle may outlive its pool: once the pool is freed it
 * reports MP_ECLOSED. free(NULL) is a no-op.
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
 * Returns 0 with the item's output copied to out (out_size bytes); the item's
 * failure code (see mp_status) when that item failed, iteration going on;
 * MP_EOF when every item has been returned; MP_ETIMEDOUT. index (optional)
 * receives the item's input index, status (optional) its outcome.
 */
MP_EXPORT int mp_iter_next(mp_iter *it, void *out, size_t *index,
                           mp_status *status, double timeout);

/* Release the iterator; items not yet returned are cancelled or discarded.
 * free(NULL) is a no-op. */
MP_EXPORT void mp_iter_free(mp_iter *it);

/* ---- lifetime ---- */

/*
 * pool.close: accept no new work. Workers finish what is queued and then
 * exit; mp_pool_join waits for that. Returns 0, MP_ESTATE after terminate.
 * Closing twice is allowed.
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
 * terminate came first.
 */
MP_EXPORT int mp_pool_join(mp_pool *pool);

/*
 * Terminate what is left (as leaving `with Pool() as p:` does), reap the
 * workers and release the pool. Result handles and iterators still held
 * remain valid and report MP_ECLOSED. free(NULL) is a no-op.
 */
MP_EXPORT void mp_pool_free(mp_pool *pool);

/* ------------------------------------------------------------------------ */
/* IPC: Pipe, Queue, Lock, Semaphore, Event, Value/Array, shared memory      */
/* ------------------------------------------------------------------------ */
/* MPOOL-IPC-BEGIN */
/* MPOOL-IPC-END */

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_H */
