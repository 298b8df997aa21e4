/* sys/fdreg.h: the registry of library fds. */
#ifndef MPOOL_SYS_FDREG_H
#define MPOOL_SYS_FDREG_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Library fds are registered so that every child the library forks closes
 * those of other objects (a worker must not hold a sibling pool's pipes, or
 * EOF could never be seen). Creating and registering an fd, and
 * unregistering and closing it, are one step with respect to every fork the
 * library makes, from any thread: a fork never inherits an fd of the
 * library's that it does not know about.
 */
/* pipe2(O_CLOEXEC), both ends registered. Returns 0 or -errno (-ENOMEM when
 * the registry cannot grow: nothing is then left open). */
int mp__pipe_reg(int fds[2]);
/* pidfd_open(pid), registered; -1 where there is none (see
 * mp__pidfd_open) or it cannot be had now. */
int mp__pidfd_reg(pid_t pid);
/* socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC), both registered.
 * Returns 0 or -errno. */
int mp__socketpair_reg(int fds[2]);
/* Any other fd: make(arg) returns a new fd or -errno, and the fd is
 * registered in the same step. Returns the fd, -ENOMEM when the registry
 * cannot grow (make is then not called), or make's -errno. */
int mp__fd_reg_make(int (*make)(void *arg), void *arg);
/* memfd_create(name, MFD_CLOEXEC), registered. Returns the fd or -errno. */
int mp__memfd_reg(const char *name);
/* Wait (poll, until deadline: ns, CLOCK_MONOTONIC; INT64_MAX: none) for a
 * message on fd, then mp__recv_msg it with its fds registered: received
 * and registered in one step with respect to every fork the library makes.
 * Returns as mp__recv_msg, or MP_ETIMEDOUT (no fds) at the deadline. */
ssize_t mp__recv_msg_reg(int fd, void *buf, size_t cap, int *fds, int *nfds,
                         int64_t deadline);
/* Unregister and close *fd, then set it to -1; -1 is ignored. */
void mp__fd_drop(int *fd);
/* pidfd_open(2): an fd readable once pid exits, or -1 where the kernel (or
 * valgrind) has none. Close-on-exec. */
int mp__pidfd_open(pid_t pid);

/* For mp__fork: hold the registry across fork() (no fd is then half
 * created or half closed in the child's copy), and release it. */
void mp__fd_reg_lock(void);
void mp__fd_reg_unlock(void);
/* In a child just forked, the registry held: close every registered fd
 * not in keep[0..nkeep) and forget it; keep those. */
void mp__fd_reg_keep_only(const int *keep, int nkeep);

#endif /* MPOOL_SYS_FDREG_H */
