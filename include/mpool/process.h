/*
 * mpool/process.h: processes, as multiprocessing.Process: create, start, join,
 * signal and free one child; the caller's own process and children.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_PROCESS_H
#define MPOOL_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "common.h"
#include "error.h"
#include "start.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_PROCESS_H */
