/* sys/fdio.h: every raw read, write and poll on a pipe or socket. */
#ifndef MPOOL_SYS_FDIO_H
#define MPOOL_SYS_FDIO_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* pipe2(O_CLOEXEC); returns 0 or -errno. */
int mp__pipe(int fds[2]);
/* socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC); returns 0 or -errno. */
int mp__socketpair(int fds[2]);
/* The most fds one message carries. */
#define MP__MSG_MAX_FDS 4
/* Send len bytes as one message on a SOCK_SEQPACKET socket, with nfds fds
 * (SCM_RIGHTS; at most MP__MSG_MAX_FDS). Blocks; never raises SIGPIPE.
 * Returns 0 or -errno (-EPIPE: the peer is gone). */
int mp__send_msg(int fd, const void *buf, size_t len, const int *fds,
                 int nfds);
/* Receive one message into buf (cap bytes) and the fds it carries, up to
 * MP__MSG_MAX_FDS, close-on-exec (others are closed), into fds and *nfds.
 * flags: 0 (block) or MSG_DONTWAIT. Returns the bytes (0: the peer is
 * gone), -EAGAIN, -EPROTO for a cut message, -EMFILE when the fds it
 * carried found no room here (those received are closed), or -errno. */
ssize_t mp__recv_msg(int fd, void *buf, size_t cap, int *fds, int *nfds,
                     int flags);
/* Set O_NONBLOCK; returns 0 or -errno. */
int mp__set_nonblock(int fd);
/* Raise a pipe's capacity toward bytes where the OS allows; never fails. */
void mp__pipe_grow(int fd, int bytes);
/* The bytes a pipe holds unread (either end's fd), or -errno. */
int mp__pipe_pending(int fd);
/* close() that keeps errno and ignores EINTR (Linux closes the fd anyway). */
void mp__close(int fd);

/* Blocking I/O in EINTR and short-count loops. read_full returns the bytes
 * read (less than n only at EOF) or -errno; write_full 0 or -errno. */
ssize_t mp__read_full(int fd, void *buf, size_t n);
int mp__write_full(int fd, const void *buf, size_t n);
/* pread in the same loops, from offset off: bytes read (less than n only at
 * end of file) or -errno. */
ssize_t mp__pread_full(int fd, void *buf, size_t n, off_t off);
int mp__writev_full(int fd, struct iovec *iov, int iovcnt);

/* Non-blocking I/O: bytes moved (>= 0; 0 for read means EOF), -EAGAIN when
 * nothing can move now, or -errno. EINTR is retried. */
ssize_t mp__read_some(int fd, void *buf, size_t n);
ssize_t mp__writev_some(int fd, const struct iovec *iov, int iovcnt);

/* vmsplice(2) of user pages into a non-blocking pipe: as writev_some. The
 * pages must not change until the reader has read them. */
ssize_t mp__vmsplice_some(int fd, const struct iovec *iov, int iovcnt);
/* poll() that retries EINTR with the time left. Returns poll's count. */
int mp__poll(struct pollfd *fds, unsigned nfds, int64_t deadline);

#endif /* MPOOL_SYS_FDIO_H */
