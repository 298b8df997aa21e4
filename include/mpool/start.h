/*
 * mpool/start.h: start methods, as multiprocessing.set_start_method: how a
 * pool's workers and a process child start (fork or fork server).
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_START_H
#define MPOOL_START_H

#include "common.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_START_H */
