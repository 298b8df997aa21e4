/* pipe.c: mp_pipe, Python's Pipe(): two connected ends, each able to send
 * and receive whole messages.
 *
 * Built on socketpair(AF_UNIX, SOCK_SEQPACKET) rather than length-prefixed
 * frames over pipes, because the kernel then does what frames would have to
 * emulate, and does it better:
 *   - one send is one message, delivered whole or not at all, so a send or
 *     recv that times out can never leave half a frame in the stream, and
 *     several processes may share an end without interleaving bytes;
 *   - one fd per end is duplex (pipes would need two per end);
 *   - the peer's death is seen as EOF on recv and EPIPE on send, and
 *     MSG_NOSIGNAL keeps send from raising SIGPIPE without touching the
 *     signal mask.
 * Every message starts with an 8-byte header, which also keeps messages
 * non-empty: a zero-byte read then always means EOF, never an empty message.
 *
 * One datagram must fit the socket's send buffer, which the kernel bounds
 * (net.core.wmem_max). A message too large for that travels in a sealed
 * memfd attached (SCM_RIGHTS) to a datagram of its own, not in chunks:
 * it is still one datagram, so every promise above holds for it too. No
 * reader or writer killed at any instant leaves part of a message in the
 * stream (chunks would: a reader killed after taking the first would leave
 * the rest to the next reader), a timeout never cuts one, and shared ends
 * need no lock. The datagram is padded to half the send buffer, which the
 * kernel charges to the sender until it is read: at most two large
 * messages are in flight per direction, so their memory is bounded as a
 * pipe's bytes are. The receiver trusts nothing of the memfd but what the
 * kernel guarantees: its size and its seals (no shrinking, no writing).
 *
 * The socket fds are not in the fd registry (process.c) on purpose:
 * children forked after create (mp_process, pool workers) must inherit
 * them. The memfds are registered while open (created and received under
 * the registry's lock), so no child forked meanwhile keeps a copy.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define PIPE_MAGIC 0x4d505049u    /* "MPPI": the payload follows */
#define PIPE_MAGIC_FD 0x4d505046u /* "MPPF": the payload is in the memfd */
#define PIPE_DEFAULT_MAX ((size_t)64 * 1024)
/* The send buffer asked for: messages up to this size go inline when the
 * kernel grants it (it caps the request at twice net.core.wmem_max). */
#define PIPE_INLINE_WANT ((size_t)1024 * 1024)
/* Bytes the kernel keeps from a unix socket's send buffer for itself when
 * sizing one datagram (sk_sndbuf - 32 in net/unix/af_unix.c). */
#define PIPE_KERNEL_SLACK 32
/* Seals a memfd must carry: its size and bytes are fixed. */
#define PIPE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

typedef struct pipe_hdr {
  uint32_t magic;
  uint32_t len; /* payload bytes: following (MAGIC), in the memfd (FD) */
} pipe_hdr;

struct mp_pipe {
  int fd;
  size_t max_msg;
  size_t inline_max; /* larger messages travel in a memfd */
  size_t pad;        /* padding of a memfd's datagram: see the top */
};

/* Zeros for the padding; never written. */
static char pipe_zeros[64 * 1024];

/* Size one end's send buffer toward messages of up to max bytes inline
 * and derive its limits. Returns 0 or -errno. */
static int pipe_setup(mp_pipe *e, int fd, size_t max) {
  size_t want = max < PIPE_INLINE_WANT ? max : PIPE_INLINE_WANT;
  size_t need = want + sizeof(pipe_hdr) + PIPE_KERNEL_SLACK;
  int cur;
  socklen_t len = sizeof cur;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) < 0)
    return -errno;
  if (cur < 0 || (size_t)cur < need) {
    /* The kernel doubles the request and caps it at net.core.wmem_max:
     * what it grants decides what goes inline. */
    int ask = (int)need;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &ask, sizeof ask) < 0)
      return -errno;
    len = sizeof cur;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) < 0)
      return -errno;
  }
  size_t room = cur > 2 * (PIPE_KERNEL_SLACK + (int)sizeof(pipe_hdr))
                    ? (size_t)cur - PIPE_KERNEL_SLACK - sizeof(pipe_hdr)
                    : 0;
  e->fd = fd;
  e->max_msg = max;
  e->inline_max = room < max ? room : max;
  e->pad = room / 2;
  return 0;
}

int mp__pipe_adopt(mp_pipe **out, int fd, size_t max_msg) {
  mp_pipe *e = malloc(sizeof *e);
  if (!e)
    return -ENOMEM;
  int rc = pipe_setup(e, fd, max_msg ? max_msg : PIPE_DEFAULT_MAX);
  if (rc < 0) {
    free(e);
    return rc;
  }
  *out = e;
  return 0;
}

int mp_pipe_create(mp_pipe **a, mp_pipe **b, size_t max_msg) {
  if (!a || !b || a == b || max_msg > INT_MAX / 2)
    return MP_EINVAL;
  mp_pipe *ea = NULL, *eb = NULL;
  int fds[2] = {-1, -1}, rc;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return -errno;
  if ((rc = mp__pipe_adopt(&ea, fds[0], max_msg)) < 0 ||
      (rc = mp__pipe_adopt(&eb, fds[1], max_msg)) < 0) {
    free(ea);
    mp__close(fds[0]);
    mp__close(fds[1]);
    return rc;
  }
  *a = ea;
  *b = eb;
  return 0;
}

int mp__pipe_fd(const mp_pipe *p) { return p->fd; }

/* Wait for events on the end. Returns 1 ready, MP_ETIMEDOUT, or -errno. */
static int pipe_wait(mp_pipe *p, short events, int64_t deadline) {
  struct pollfd pfd = {.fd = p->fd, .events = events};
  int r = mp__poll(&pfd, 1, deadline);
  if (r < 0)
    return r;
  return r == 0 ? MP_ETIMEDOUT : 1;
}

static int pipe_err(int err) {
  switch (err) {
  case EPIPE:
  case ECONNRESET:
  case ENOTCONN:
  case ECONNREFUSED:
    return MP_EPEERDEAD;
  default:
    return -err;
  }
}

/* After a non-blocking call failed with errno: 0 to try again (EINTR, or
 * the end became ready before the deadline), else the code to return. */
static int pipe_retry(mp_pipe *p, short events, int64_t deadline) {
  if (errno == EINTR)
    return 0;
  if (errno != EAGAIN && errno != EWOULDBLOCK)
    return pipe_err(errno);
  int rc = pipe_wait(p, events, deadline);
  return rc < 0 ? rc : 0;
}

/* Whether the n bytes received start with a header that fits them. */
static int pipe_hdr_ok(const pipe_hdr *h, ssize_t n) {
  return (size_t)n >= sizeof *h && h->magic == PIPE_MAGIC &&
         h->len == (size_t)n - sizeof *h;
}

/* sendmsg until it goes or the deadline passes. Returns 0 or a code. */
static int pipe_sendmsg(mp_pipe *p, const struct msghdr *mh, int64_t deadline) {
  for (;;) {
    /* Non-blocking attempts, so a timeout is honoured even when another
     * process sharing this end filled the buffer after our poll. */
    if (sendmsg(p->fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
      return 0;
    int rc = pipe_retry(p, POLLOUT, deadline);
    if (rc < 0)
      return rc;
  }
}

static int pipe_memfd_make(void *arg) {
  (void)arg;
  int fd = memfd_create("mp_pipe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  return fd < 0 ? -errno : fd;
}

/* A message above inline_max: its bytes in a sealed memfd, the memfd on a
 * datagram of the header and pad zero bytes. */
static int pipe_send_large(mp_pipe *p, const void *msg, size_t len,
                           int64_t deadline) {
  int mfd = mp__fd_reg_make(pipe_memfd_make, NULL);
  if (mfd < 0)
    return mfd;
  int rc = mp__write_full(mfd, msg, len);
  if (rc == 0 && fcntl(mfd, F_ADD_SEALS, PIPE_SEALS | F_SEAL_SEAL) < 0)
    rc = -errno;
  if (rc == 0) {
    pipe_hdr h = {PIPE_MAGIC_FD, (uint32_t)len};
    struct iovec iov[1 + PIPE_INLINE_WANT * 2 / sizeof pipe_zeros + 1];
    int n = 0;
    iov[n++] = (struct iovec){&h, sizeof h};
    for (size_t left = p->pad;
         left > 0 && n < (int)(sizeof iov / sizeof *iov);) {
      size_t k = left < sizeof pipe_zeros ? left : sizeof pipe_zeros;
      iov[n++] = (struct iovec){pipe_zeros, k};
      left -= k;
    }
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh = {.msg_iov = iov,
                        .msg_iovlen = (size_t)n,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &mfd, sizeof mfd);
    rc = pipe_sendmsg(p, &mh, deadline);
  }
  mp__fd_drop(&mfd);
  return rc;
}

int mp_pipe_send(mp_pipe *p, const void *msg, size_t len, double timeout) {
  if (!p || (!msg && len > 0))
    return MP_EINVAL;
  if (len > p->max_msg)
    return -EMSGSIZE;
  int64_t deadline = mp__deadline(timeout);
  if (len > p->inline_max)
    return pipe_send_large(p, msg, len, deadline);
  pipe_hdr h = {PIPE_MAGIC, (uint32_t)len};
  struct iovec iov[2] = {{&h, sizeof h}, {(void *)msg, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  return pipe_sendmsg(p, &mh, deadline);
}

/* One recvmsg: the header, up to cap bytes into buf, and the fd a
 * datagram carries. */
typedef struct pipe_rx {
  mp_pipe *p;
  void *buf;
  size_t cap;
  pipe_hdr h;
  ssize_t n; /* recvmsg's answer */
  int err;   /* its errno when n < 0 */
  int flags; /* msg_flags */
  int fd;    /* the fd it carried, or -1 */
} pipe_rx;

/* Returns the fd received, or a negative value (rx says what happened);
 * shaped for mp__fd_reg_make so the fd is registered as it arrives. */
static int pipe_rx_take(void *arg) {
  pipe_rx *rx = arg;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov[2] = {{&rx->h, sizeof rx->h}, {rx->buf, rx->cap}};
  struct msghdr mh = {.msg_iov = iov,
                      .msg_iovlen = rx->cap ? 2 : 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = sizeof ctl.buf};
  rx->fd = -1;
  rx->n = recvmsg(rx->p->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (rx->n < 0) {
    rx->err = errno;
    return -1;
  }
  rx->flags = mh.msg_flags;
  /* More fds than room (a hostile peer): the kernel closes the rest and
   * sets MSG_CTRUNC, which fails the message below. */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
      if (rx->fd < 0)
        rx->fd = fd;
      else
        mp__close(fd);
    }
  }
  return rx->fd >= 0 ? rx->fd : -1;
}

/* The payload of a memfd message into buf. Returns len or MP_EPROTO. */
static int pipe_read_memfd(int fd, uint32_t len, void *buf, size_t cap) {
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS);
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != len ||
      seals < 0 || (seals & PIPE_SEALS) != PIPE_SEALS)
    return MP_EPROTO;
  if (len > cap)
    return -EMSGSIZE; /* a reader sharing the end swapped messages */
  return mp__pread_full(fd, buf, len, 0) == (ssize_t)len ? (int)len : MP_EPROTO;
}

int mp_pipe_recv(mp_pipe *p, void *buf, size_t cap, double timeout) {
  if (!p || (!buf && cap > 0))
    return MP_EINVAL;
  int64_t deadline = mp__deadline(timeout);
  for (;;) {
    /* Peek first: a message too large for buf stays queued. MSG_TRUNC makes
     * the peek report the whole datagram's length. */
    pipe_hdr h;
    ssize_t n = recv(p->fd, &h, sizeof h, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
      int rc = pipe_retry(p, POLLIN, deadline);
      if (rc < 0)
        return rc;
      continue;
    }
    if (n == 0)
      return MP_EPEERDEAD; /* EOF: every message is at least a header */
    int large = (size_t)n >= sizeof h && h.magic == PIPE_MAGIC_FD;
    if (!large && !pipe_hdr_ok(&h, n)) {
      /* Not ours: take it off the queue so the next message can be read. */
      (void)recv(p->fd, &h, sizeof h, MSG_DONTWAIT);
      return MP_EPROTO;
    }
    if (h.len > cap)
      return -EMSGSIZE;
    pipe_rx rx = {
        .p = p, .buf = buf, .cap = cap, .n = -1, .err = ENOMEM, .fd = -1};
    if (large)
      (void)mp__fd_reg_make(pipe_rx_take, &rx);
    else
      (void)pipe_rx_take(&rx); /* an fd is not expected: see below */
    if (rx.n < 0) {
      if (rx.err == EINTR || rx.err == EAGAIN || rx.err == EWOULDBLOCK)
        continue; /* another process sharing this end took it */
      return pipe_err(rx.err);
    }
    if (rx.n == 0)
      return MP_EPEERDEAD;
    /* Another reader may have taken the peeked message and left us a
     * different one: check again what was actually read. Only then can
     * an fd come unasked; it is closed at once. */
    int rc;
    if (rx.fd >= 0 && !(rx.flags & MSG_CTRUNC) && (size_t)rx.n >= sizeof rx.h &&
        rx.h.magic == PIPE_MAGIC_FD)
      rc = pipe_read_memfd(rx.fd, rx.h.len, buf, cap);
    else if (rx.fd >= 0 || (rx.flags & MSG_CTRUNC))
      rc = MP_EPROTO;
    else if (rx.flags & MSG_TRUNC)
      rc = -EMSGSIZE;
    else
      rc = pipe_hdr_ok(&rx.h, rx.n) ? (int)rx.h.len : MP_EPROTO;
    if (large)
      mp__fd_drop(&rx.fd);
    else
      mp__close(rx.fd);
    return rc;
  }
}

int mp_pipe_poll(mp_pipe *p, double timeout) {
  if (!p)
    return MP_EINVAL;
  int rc = pipe_wait(p, POLLIN, mp__deadline(timeout));
  return rc == MP_ETIMEDOUT ? 0 : rc;
}

size_t mp_pipe_max_msg(const mp_pipe *p) { return p ? p->max_msg : 0; }

void mp_pipe_free(mp_pipe *p) {
  if (!p)
    return;
  mp__close(p->fd);
  free(p);
}
