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
 *   and a child discards what its stdout and stderr buffers hold at birth
 *   (output other threads wrote after that flush, which the parent prints;
 *   glibc's __fpurge; the program's own FILEs are its own). Every child
 *   leaves with _exit() after flushing its own stdio, also when a target or
 *   task calls exit(): an exit hook registered right after fork runs after
 *   the child's own handlers and before any it inherited, so the parent's
 *   atexit handlers never run in it (glibc; Python clears them likewise).
 *   That flush never kills the
 *   caller: a stream whose reader has gone keeps its error (the caller's own
 *   next write to it sees EPIPE or SIGPIPE, as it would have), and the
 *   SIGPIPE the flush raised is consumed. The library installs no signal
 *   handler and changes no signal disposition. A worker dying while the
 *   parent writes to it never raises SIGPIPE: the parent also holds the read
 *   end of each task pipe, so the pipe never loses its last reader. An
 *   application may set SIGCHLD to SIG_IGN or install its own handler (but
 *   must not reap the library's children itself with waitpid(-1, ...)).
 *   The library never signals a pid its child no longer holds: signals go
 *   through a pidfd where the kernel has them (Linux 5.3 and later).
 *   Without one (older kernels, valgrind) a child is signalled only while
 *   waitid() says it is a child of this process that has not exited; with
 *   SIGCHLD ignored the kernel frees a pid at exit, and then a new child of
 *   this same process that was given that pid could be signalled in its
 *   place, or another process in the microseconds between check and signal.
 *   A pool worker flushes its stdio after every task that left output in
 *   stdout or stderr (all streams then), so what a task prints is not lost
 *   when the worker is later killed (terminate, free); a stream a task
 *   opened itself is the task's to flush.
 *
 * Threads
 *   A handle is used from one thread at a time; separate handles are
 *   independent, also when threads create, use and free them at once: every
 *   fd the library keeps is created and closed atomically with respect to
 *   every fork it makes, so no worker ever holds another pool's pipes.
 *   Progress is made only inside library calls: there are no
 *   hidden threads. Under the fork start method (the default), fork()
 *   copies only the calling thread: a program that runs other threads
 *   should create its pools and processes before starting them, or make
 *   sure the task functions touch nothing those threads may hold (locks
 *   inside malloc and stdio are the usual trap). Daemon processes and pool
 *   workers forked so die when the *thread* that forked them exits (this
 *   is how the kernel's parent-death signal works), always: the forking
 *   call returns only once the child has armed that signal, so none
 *   outlives its thread by a race. A pool's first workers are forked by
 *   the thread that creates it; a replacement by the thread whose call
 *   replaced a lost worker. Create and use them from a thread that
 *   outlives them, typically the main thread. The forkserver start method
 *   lifts both caveats: see "Start methods" below.
 *
 * Functions cross as references
 *   Under fork, a child is a forked copy of its parent, so a function
 *   pointer means the same code in both (forkserver: see below). A function from a library loaded (dlopen) after a pool
 *   was created is not mapped in that pool's workers: do not send it.
 *   Handles created in a parent (processes, pools) must not be used in its
 *   children; the IPC objects below are the exception and say so.
 *   Likewise a worker sees the parent's memory as it was when the worker was
 *   forked: globals changed after mp_pool_create are not seen by the pool's
 *   workers (replacements forked later see later values). Pass what a task
 *   needs in its input.
 *   Functions also have a portable reference: the GNU build-id of the
 *   module (the executable or a shared library) that holds the function,
 *   and its offset from where that module is loaded. A process not forked
 *   from the caller (one exec'd from the same program, as a fork server's
 *   workers and MPI ranks are) resolves it to its own copy of the function,
 *   wherever that is loaded; one with no module of that build-id loaded (a
 *   library only the caller loaded, another build of the program) fails
 *   the items with MP_ENOFUNC. Transports that send references refuse at
 *   submit, with MP_EINVAL, a pointer that lies in no loaded module's code:
 *   into the heap, the stack or data, or to code made at run time (JIT). A
 *   module linked without a build-id cannot be referenced either: gcc as
 *   Debian and most distributions build it asks the linker for one
 *   (--build-id, a SHA-1), and -Wl,--build-id=none leaves it out. Such a
 *   build gets MP_EINVAL at submit on those transports; the fork transport,
 *   which sends the pointer itself, still works.
 *
 * Grandchildren
 *   A task may fork: in a pool worker a fork handler closes the worker's
 *   pipes in the new child, so the worker's death is still seen at once;
 *   in a process child it closes the status pipe and disarms its exit hook,
 *   so a grandchild's exit() never reports as the target's. A process target that forks is watched through a pidfd where the kernel
 *   has them. fork+exec (system, popen, posix_spawn) is fine either way:
 *   every library fd is close-on-exec. (A raw clone() bypasses the fork
 *   handler; its child then delays the news of its worker's death until it
 *   exits.)
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
  XX(EOWNERDEAD, -1009, "lock acquired; its previous holder died holding it") \
  XX(ENOFUNC, -1010, "function cannot be found in the worker's process")   \
  XX(EBROKEN, -1011, "barrier is broken")                                     \
  XX(EAUTH, -1012, "authentication with the peer failed")

enum {
#define MP__ERR_ENUM(name, value, msg) MP_##name = (value),
  MP_ERRNO_MAP(MP__ERR_ENUM)
#undef MP__ERR_ENUM
  /* Bad argument: a NULL handle or target, a zero size, an absurd count. */
  MP_EINVAL = -22 /* == -EINVAL */
};

/*
 * A static English message for any return code: 0, -errno (the C
 * library's own text for it, as strerror gives) or MP_E*. Never NULL;
 * codes that are none of these give "unknown error". Safe from any thread:
 * the text is never overwritten by a later call.
 */
MP_EXPORT const char *mp_strerror(int code);

/*
 * The code's symbolic name without sign: "ECRASHED", "EAGAIN", "OK" for 0;
 * every errno value the system defines has its name (a value with two
 * names gets one: "EAGAIN", not "EWOULDBLOCK"); "UNKNOWN" for any other
 * code. Static; never NULL.
 */
MP_EXPORT const char *mp_err_name(int code);

/*
 * The outcome of one task or item. code is 0 on success, else one of:
 *   MP_ETASK      the task function returned non-zero; detail is that value.
 *   MP_ECRASHED   the worker died running it; detail is -N if signal N killed
 *                 it, the exit status if it called exit(), or 0 when the
 *                 status could not be learned (SIGCHLD set to SIG_IGN).
 *   MP_ETIMEDOUT  it ran past the pool's task_timeout and was killed.
 *   MP_EPROTO     it wrote bytes to its worker's result pipe that are not
 *                 a valid frame (under the shm transport, where that pipe
 *                 carries only the worker's wake-up bytes: any byte), or
 *                 scribbled on its ring; the worker was killed. Only that
 *                 item fails: the other items of its chunk deliver or run
 *                 again.
 *   MP_ECLOSED    the pool was terminated before it finished.
 *   MP_ENOFUNC    the process that was to run it cannot resolve its
 *                 function (see "Functions cross as references"); only
 *                 transports whose workers are not forked copies give it.
 *   -EMSGSIZE     (apply) the result grew past the pool's max_result_bytes.
 *   -errno        the library could not run it, or receive its result
 *                 (e.g. -ENOMEM).
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
   * the parent-death signal, with the race at fork re-checked; the kernel
   * disarms that signal if the target changes its credentials), and
   * mp_process_free() terminates it instead of waiting for it. */
  int daemon;
  /* How the child starts (see "Start methods" below): MP_START_FORK, a
   * copy of the caller; MP_START_FORKSERVER, the program's own image
   * started afresh, which runs the target (a portable reference) on a copy
   * of arg_len bytes at arg. 0: the process-wide default
   * (mp_get_start_method()). Either way a daemon is armed with the
   * parent-death signal, which follows the thread that started it, before
   * mp_process_start returns: it dies when that thread exits, always. */
  int start_method;
  /* Forkserver: the bytes at arg the child gets a copy of; the target's
   * arg then points to that copy (16-byte aligned). 0: arg is handed over
   * as an opaque value (its bits, e.g. an integer cast to a pointer): it
   * points to nothing in the child. Ignored by fork. */
  size_t arg_len;
} mp_process_opts;

/*
 * Create a process that will run target(arg); nothing is forked yet.
 * Fork: arg is not copied: the child sees the parent's memory as it was at
 * start. Forkserver: see opts->arg_len. Returns 0 and sets *out, MP_EINVAL
 * if out or target is NULL, or for an unknown start_method; -ENOMEM.
 * On error *out is left unchanged.
 */
MP_EXPORT int mp_process_create(mp_process **out, mp_target_fn target,
                                void *arg, const mp_process_opts *opts);

/*
 * Fork the child and run the target in it. Returns 0, MP_ESTATE if already
 * started, -EAGAIN / -ENOMEM (fork; -EAGAIN also for a daemon that did not
 * arm its parent-death signal within 10 seconds, killed and reaped),
 * -EMFILE / -ENFILE (its status pipe).
 * Forkserver also: MP_EINVAL when the target cannot be made a portable
 * reference (see "Functions cross as references"), -ENOENT and other
 * errors of exec when /proc/self/exe cannot be run. A child that cannot
 * resolve the reference exits with status 127.
 * A failed start leaves the process unstarted; it may be started again.
 */
MP_EXPORT int mp_process_start(mp_process *p);
/* (Where the kernel has pidfds and SIGCHLD is not ignored, the child's
 * status comes from waitpid alone; otherwise a status pipe carries it, so
 * the application should ignore SIGCHLD before start, not after, if it
 * wants exact codes.) */

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

/*
 * Python's active_children(): the mp_process children this process started
 * that are still running. Each started handle not yet freed is polled
 * (those that have finished are reaped, as mp_process_is_alive does) and
 * the running ones are written to out[0..max), newest first. The handles
 * stay the caller's: nothing is copied or owned. Returns the number
 * running, which may exceed max (out then holds the first max); MP_EINVAL
 * for a negative max or a NULL out with max > 0. out may be NULL with max
 * 0, to count (and reap) only. Pool workers are not counted: they are the
 * pool's. Threads: safe to call from any thread, but, as it uses every
 * handle, not while another thread is inside a call on one of them.
 */
MP_EXPORT int mp_active_children(mp_process **out, int max);

/*
 * Python's parent_process(): in a process the library forked (an
 * mp_process child, a pool worker), the pid of the process that forked it
 * and, when name is not NULL, *name its mp_current_process_name() at that
 * moment (static storage). In a process the library did not fork (the
 * main process) returns 0 and sets *name to NULL. The parent may have
 * exited since: getppid() == the pid says it has not.
 */
MP_EXPORT pid_t mp_parent_process(const char **name);

/* ------------------------------------------------------------------------ */
/* Start methods: multiprocessing.set_start_method                          */
/* ------------------------------------------------------------------------ */

/*
 * How a pool's workers and an mp_process child start.
 *
 * MP_START_FORK (the default): fork() of the caller. Fast; a child sees the
 * caller's memory as it is at that moment, pointers included. Unsafe when
 * other threads run: the child is a copy of the forking thread alone, and
 * a lock another thread held at that instant (inside malloc, stdio,
 * localtime_r, setenv, any library) stays held forever in the child.
 *
 * MP_START_FORKSERVER: a fork server, one per pool, started from the
 * program's own image (/proc/self/exe, exec'd with posix_spawn, so nothing
 * of the caller's threads is copied; the library's constructor takes
 * control of that process before main and never returns to main), forks
 * the workers. Safe in threaded programs, from any thread, while other
 * threads hold locks. Workers then see the program's memory as it is at
 * start-up (its static initializers; the constructors of libraries loaded
 * before libmpool), not the caller's later state, as with Python's
 * forkserver: tasks get all they need in their input; functions (task,
 * initializer) cross as portable references; the initializer's argument
 * crosses as bytes (initarg_len); the server and its workers get the
 * environment the program started with (copied before main: setenv calls
 * made later are not seen, and no thread's setenv can race the exec).
 * The server and its workers end when the creating process ends, whichever
 * thread created the pool and however the process ended, also while the
 * server is stopped (SIGSTOP): the server is killed (SIGKILL) when a pipe
 * only the creating process holds hangs up. A pool created on a thread
 * that exits keeps its server and workers, every time, and keeps working.
 * Workers are the server's children: they die with it
 * (parent-death signal), their exit statuses reach the pool through it,
 * and signals reach them through pidfds it passes back (Linux 5.3 and
 * later; else through the server). A server that is killed takes its
 * workers with it: the items they held fail with MP_ECRASHED, and work
 * that needs a new worker fails with -EPIPE. The pool waits on its server
 * at most 30 seconds for its start and 2 seconds for each later answer (a
 * new worker, a lost worker's exit status, its exit at free): a server
 * that does not answer in time (stopped, hung) or breaks the protocol is
 * taken for lost, and the pool kills it, with the outcome above. So a
 * call that needs the server (a wait whose items need a replacement for a
 * crashed worker, free) returns within its own timeout plus those 2
 * seconds, and free always returns. An mp_process child under
 * forkserver is the program's image started directly, without a server:
 * it runs the target before main and exits. Costs: a pool create execs the program
 * once (about a millisecond); the rest runs as fork does. Needs
 * /proc/self/exe and glibc (the constructor's arguments).
 */
enum {
  MP_START_FORK = 1,
  MP_START_FORKSERVER = 2,
};

/*
 * Python's set_start_method: the method of pools and processes created
 * from now on whose options leave start_method 0. method: MP_START_FORK,
 * MP_START_FORKSERVER, or 0 to go back to the initial default. The initial
 * default is MP_START_FORK, or what the environment variable
 * MPOOL_START_METHOD ("fork" or "forkserver") said when the program
 * started. Thread-safe. Returns 0, MP_EINVAL for an unknown method.
 */
MP_EXPORT int mp_set_start_method(int method);

/* The method a pool or process created now with start_method 0 gets:
 * MP_START_FORK or MP_START_FORKSERVER. Thread-safe. */
MP_EXPORT int mp_get_start_method(void);

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

/* ---- Listener and Client: multiprocessing.connection ---- */

/*
 * Connections between processes that are not parent and child, over a unix
 * socket, as Python's Listener and Client:
 *
 *   l = Listener(address, authkey=k)   mp_listener_create(&l, address, &(mp_listener_opts){ .authkey = k, .authkey_len = n })
 *   c = l.accept()                     mp_listener_accept(l, &c, timeout)
 *   c = Client(address, authkey=k)     mp_client_connect(&c, address, &(mp_client_opts){ .authkey = k, .authkey_len = n }, timeout)
 *
 * A connection is an mp_pipe end: mp_pipe_send, mp_pipe_recv, mp_pipe_poll,
 * mp_pipe_free, with every promise of mp_pipe (whole messages of any size
 * up to max_msg, MP_EPEERDEAD when the other side is gone). A child
 * forked afterwards inherits it as it inherits a pipe end; the listening
 * socket itself is not kept by children the library forks.
 *
 * Addresses: "/path/to/sock" (or any path: a socket file, created by the
 * listener, removed by mp_listener_free in the creating process if it is
 * still the one it bound; the directory's permissions say who may
 * connect), or "@name": Linux's abstract namespace (no file; any process
 * in the same network namespace may connect, so use an authkey).
 * Authentication: with an authkey (any bytes) the two sides run Python's
 * mutual challenge: each sends 32 random bytes that the other must answer
 * with their HMAC-SHA256 under the key. The key never crosses the socket.
 * A side whose peer does not know the key gets MP_EAUTH, and the
 * connection is closed. Both sides must use a key or neither: a client
 * without one that connects to a listener with one receives its challenge
 * as its first message, and the listener's accept fails when the client
 * does not answer (MP_EAUTH or MP_ETIMEDOUT).
 */
typedef struct mp_listener mp_listener;

/* Listener options; NULL or { 0 } means defaults. */
typedef struct mp_listener_opts {
  /* The key clients must prove they know (copied); NULL: no
   * authentication. authkey_len may be 0 with a non-NULL key. */
  const void *authkey;
  size_t authkey_len;
  /* The accepted connections' max_msg, as mp_pipe_create's; 0: 64 KiB. */
  size_t max_msg;
  /* Connections waiting for accept before clients are held off; 0: 16. */
  int backlog;
} mp_listener_opts;

/*
 * Bind and listen on address ("/path", "@abstract-name"; NULL: a fresh
 * abstract name, see mp_listener_address). Returns 0 and sets *out;
 * MP_EINVAL (NULL out, an empty address, a negative backlog, authkey_len
 * without authkey, max_msg over INT_MAX / 2); -EADDRINUSE when the
 * address is taken (a socket file left by a dead listener too: remove it);
 * -ENAMETOOLONG (over 107 bytes); -EACCES, -ENOENT (a path's directory);
 * -EMFILE; -ENOMEM.
 */
MP_EXPORT int mp_listener_create(mp_listener **out, const char *address,
                                 const mp_listener_opts *opts);

/*
 * Python's accept(): wait up to timeout seconds for a client, and
 * authenticate it when the listener has a key (within the same timeout).
 * Returns 0 and sets *conn to a new mp_pipe end (the caller frees it);
 * MP_ETIMEDOUT; MP_EAUTH when the client failed the challenge or refused
 * ours (its connection is closed; accept again for the next); MP_EPEERDEAD
 * when it left during the challenge; MP_EINVAL; -EMFILE, -ENOMEM.
 * mp_wait with MP_WAIT_LISTENER says when a client waits.
 */
MP_EXPORT int mp_listener_accept(mp_listener *l, mp_pipe **conn,
                                 double timeout);

/* The address as given, or the one made up for NULL ("@mpool-..."); owned
 * by the listener. NULL for NULL. */
MP_EXPORT const char *mp_listener_address(const mp_listener *l);

/*
 * Stop listening and release the listener; in the creating process, remove
 * a path's socket file if it is still the one bound. Connections already
 * accepted stay open. free(NULL) is a no-op.
 */
MP_EXPORT void mp_listener_free(mp_listener *l);

/* Client options; NULL or { 0 } means defaults. */
typedef struct mp_client_opts {
  /* The listener's key (see mp_listener_opts); NULL: none. */
  const void *authkey;
  size_t authkey_len;
  /* The connection's max_msg, as mp_pipe_create's; 0: 64 KiB. */
  size_t max_msg;
} mp_client_opts;

/*
 * Python's Client(address, authkey): connect to a listener and, with a
 * key, authenticate, all within timeout seconds. Returns 0 and sets *conn
 * (an mp_pipe end the caller frees); -ECONNREFUSED (nobody listens
 * there), -ENOENT (no such path); MP_EAUTH (the listener refused our
 * answer, or failed our challenge); MP_ETIMEDOUT (the listener's backlog
 * stayed full, or it did not answer in time); MP_EPEERDEAD (it closed the
 * connection during the challenge); MP_EINVAL; -ENAMETOOLONG; -EMFILE;
 * -ENOMEM. On error nothing is left open.
 */
MP_EXPORT int mp_client_connect(mp_pipe **conn, const char *address,
                                const mp_client_opts *opts, double timeout);

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

#endif /* MPOOL_H */
