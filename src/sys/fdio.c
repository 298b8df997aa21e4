/* sys/fdio.c: every raw read, write and poll on a pipe or socket, in
 * EINTR and short-count loops (sys/fdio.h). */
#include "../internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- pipes ---- */

int mp__pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -errno;
  return 0;
}

int mp__socketpair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return -errno;
  return 0;
}

int mp__send_msg(int fd, const void *buf, size_t len, const int *fds,
                 int nfds) {
  union {
    struct cmsghdr h;
    char room[CMSG_SPACE(sizeof(int) * MP__MSG_MAX_FDS)];
  } ctl;
  struct iovec iov = {(void *)buf, len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds < 0 || nfds > MP__MSG_MAX_FDS)
    return -EINVAL;
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.room;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  for (;;) {
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w >= 0)
      return (size_t)w == len ? 0 : -EMSGSIZE;
    if (errno != EINTR)
      return -errno;
  }
}

ssize_t mp__recv_msg(int fd, void *buf, size_t cap, int *fds, int *nfds,
                     int flags) {
  union {
    struct cmsghdr h;
    char room[CMSG_SPACE(sizeof(int) * MP__MSG_MAX_FDS)];
  } ctl;
  struct iovec iov = {buf, cap};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = ctl.room,
                     .msg_controllen = sizeof ctl.room};
  *nfds = 0;
  ssize_t r;
  do
    r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | flags);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (*nfds < MP__MSG_MAX_FDS)
        fds[(*nfds)++] = got;
      else
        mp__close(got);
    }
  }
  /* A cut message is not one we sent; fds cut off mean this process has
   * no room for them (RLIMIT_NOFILE). */
  if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int i = 0; i < *nfds; i++)
      mp__close(fds[i]);
    *nfds = 0;
    return (m.msg_flags & MSG_TRUNC) ? -EPROTO : -EMFILE;
  }
  return r;
}

int mp__set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

void mp__pipe_grow(int fd, int bytes) {
#ifdef F_SETPIPE_SZ
  /* Refused above /proc/sys/fs/pipe-max-size or the user's page budget;
   * the pipe then keeps its default size, which is still correct. */
  while (bytes >= 65536 && fcntl(fd, F_SETPIPE_SZ, bytes) < 0)
    bytes /= 2;
#else
  (void)fd;
  (void)bytes;
#endif
}

int mp__pipe_pending(int fd) {
  int n;
  return ioctl(fd, FIONREAD, &n) < 0 ? -errno : n;
}

void mp__close(int fd) {
  if (fd < 0)
    return;
  int saved = errno;
  (void)close(fd);
  errno = saved;
}

/* read (off < 0) or pread at off, until n bytes, EOF or an error. */
static ssize_t read_loop(int fd, void *buf, size_t n, off_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = off < 0 ? read(fd, (char *)buf + got, n - got)
                        : pread(fd, (char *)buf + got, n - got,
                                off + (off_t)got);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

ssize_t mp__read_full(int fd, void *buf, size_t n) {
  return read_loop(fd, buf, n, -1);
}

ssize_t mp__pread_full(int fd, void *buf, size_t n, off_t off) {
  return off < 0 ? -EINVAL : read_loop(fd, buf, n, off);
}

int mp__writev_full(int fd, struct iovec *iov, int iovcnt) {
  while (iovcnt > 0) {
    ssize_t w = writev(fd, iov, iovcnt);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    size_t left = (size_t)w;
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

int mp__write_full(int fd, const void *buf, size_t n) {
  struct iovec iov = {(void *)buf, n};
  return mp__writev_full(fd, &iov, 1);
}

ssize_t mp__read_some(int fd, void *buf, size_t n) {
  for (;;) {
    ssize_t r = read(fd, buf, n);
    if (r >= 0)
      return r;
    if (errno == EINTR)
      continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

ssize_t mp__writev_some(int fd, const struct iovec *iov, int iovcnt) {
  for (;;) {
    ssize_t w = writev(fd, iov, iovcnt);
    if (w >= 0)
      return w;
    if (errno == EINTR)
      continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

ssize_t mp__vmsplice_some(int fd, const struct iovec *iov, int iovcnt) {
  for (;;) {
    ssize_t w = vmsplice(fd, iov, (unsigned long)iovcnt, SPLICE_F_NONBLOCK);
    if (w >= 0)
      return w;
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK)
      return -EAGAIN;
    if (errno == ENOSYS || errno == EINVAL) /* no vmsplice: copy instead */
      return mp__writev_some(fd, iov, iovcnt);
    return -errno;
  }
}

int mp__poll(struct pollfd *fds, unsigned nfds, int64_t deadline) {
  for (;;) {
    int r = poll(fds, nfds, mp__ms_left(deadline));
    if (r >= 0)
      return r;
    if (errno != EINTR)
      return -errno;
    if (deadline != INT64_MAX && mp__now_ns() >= deadline)
      return 0;
  }
}
