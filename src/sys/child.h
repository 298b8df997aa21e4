/* sys/child.h: a child's end and its signals. */
#ifndef MPOOL_SYS_CHILD_H
#define MPOOL_SYS_CHILD_H

#include <sys/types.h>

/* Leave a child: flush its stdio, then _exit(code). */
_Noreturn void mp__child_exit(int code);

/* waitpid in an EINTR loop. Returns as waitpid does, -errno on error. */
pid_t mp__waitpid(pid_t pid, int *status, int flags);

/* A registered pidfd for pid, a child just forked, or -1 (none, or the pid
 * is already not a child of ours). */
int mp__child_pidfd(pid_t pid);

/*
 * Send sig to the child pid, never to a process that has taken its pid
 * over: through pidfd when one is held (>= 0), else only while waitid says
 * pid is a child of ours that has not exited. Returns 0, also when the
 * child is gone, or -errno.
 */
int mp__child_signal(pid_t pid, int pidfd, int sig);
/* pidfd_send_signal(2): 0 (also when the process is gone), -ENOSYS where
 * the kernel (or valgrind) has none, or -errno. */
int mp__pidfd_signal(int pidfd, int sig);

/* Arm the parent-death signal (SIGKILL) and die now if parent, our parent
 * when we were forked, is gone already. */
void mp__die_with_parent(pid_t parent);

/* In the parent of pid, a child just started that arms its parent-death
 * signal and then writes a byte to the pipe whose read end is rd (the
 * parent has closed its write end): wait for that byte, or the child's
 * end, up to 10 s; a child that gives neither is killed and reaped.
 * Returns 0, or -EAGAIN for the one killed. The signal follows the thread
 * that started the child: returning only then means no child outlives
 * that thread by a race. */
int mp__await_armed(pid_t pid, int rd);

/* Exit code from a wait status: the exit status, or -N for signal N. */
int mp__exitcode(int wstatus);

#endif /* MPOOL_SYS_CHILD_H */
