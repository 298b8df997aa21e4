/*
 * mpool.h: process pools for C in the shape of Python's multiprocessing.
 *
 * One header to include, the whole API. Python beside C:
 *
 *   p = mp.Process(target=f, args=(x,))    mp_process_create(&p, f, &x, NULL)
 *   p.start(); p.join()                    mp_process_start(p); mp_process_join(p, -1)
 *   with mp.Pool(4) as pool:               mp_pool_create(&pool, &(mp_pool_opts){ .processes = 4 })
 *       ys = pool.map(f, xs)               mp_pool_map(pool, f, xs, n, sizeof *xs, ys, sizeof *ys, NULL)
 *                                          mp_pool_free(pool)
 *
 * Parts
 *   This header includes the API's parts, in this order, each documented in
 *   its own header under mpool/: common.h (MP_EXPORT, the version),
 *   error.h (the MP_E* codes, mp_status), process.h (mp_process), start.h
 *   (start methods), pool.h (mp_pool, results, iterators), ipc.h (pipes,
 *   queues, locks and the other objects shared between processes),
 *   listener.h (Listener and Client), wait.h (mp_wait). What this comment
 *   says holds for them all. Include this header; a part header also
 *   compiles alone.
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

#include "mpool/common.h"
#include "mpool/error.h"
#include "mpool/process.h"
#include "mpool/start.h"
#include "mpool/pool.h"
#include "mpool/ipc.h"
#include "mpool/listener.h"
#include "mpool/wait.h"

#endif /* MPOOL_H */
