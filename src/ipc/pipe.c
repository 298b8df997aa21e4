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
 * The price is a size limit per message (the socket's send buffer), fixed at
 * create time and checked there. Every message starts with an 8-byte header,
 * which also keeps messages non-empty: a zero-byte read then always means
 * EOF, never an empty message.
 *
 * The fds are not in the fd registry (process.c) on purpose: children forked
 * after create (mp_process, pool workers) must inherit them.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define PIPE_MAGIC 0x4d505049u /* "MPPI" */
#define PIPE_DEFAULT_MAX ((size_t)64 * 1024)
/* Bytes the kernel keeps from a unix socket's send buffer for itself when
 * sizing one datagram (sk_sndbuf - 32 in net/unix/af_unix.c). */
#define PIPE_KERNEL_SLACK 32

typedef struct pipe_hdr {
  uint32_t magic;
  uint32_t len; /* payload bytes that follow */
} pipe_hdr;

struct mp_pipe {
  int fd;
  size_t max_msg;
};

/* Make one end's send buffer hold a message of max payload bytes. */
static int pipe_size(int fd, size_t max) {
  size_t need = max + sizeof(pipe_hdr) + PIPE_KERNEL_SLACK;
  int cur;
  socklen_t len = sizeof cur;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) < 0)
    return -errno;
  if (cur > 0 && (size_t)cur >= need)
    return 0;
  /* The kernel doubles the request and caps it at net.core.wmem_max. */
  int want = (int)need;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want) < 0)
    return -errno;
  len = sizeof cur;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) < 0)
    return -errno;
  return cur > 0 && (size_t)cur >= need ? 0 : -EMSGSIZE;
}

int mp_pipe_create(mp_pipe **a, mp_pipe **b, size_t max_msg) {
  if (!a || !b || a == b || max_msg > INT_MAX / 2)
    return MP_EINVAL;
  if (max_msg == 0)
    max_msg = PIPE_DEFAULT_MAX;
  mp_pipe *ea = malloc(sizeof *ea), *eb = malloc(sizeof *eb);
  int fds[2] = {-1, -1}, rc;
  if (!ea || !eb) {
    rc = -ENOMEM;
    goto error;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
    rc = -errno;
    goto error;
  }
  if ((rc = pipe_size(fds[0], max_msg)) < 0 ||
      (rc = pipe_size(fds[1], max_msg)) < 0)
    goto error;
  ea->fd = fds[0];
  eb->fd = fds[1];
  ea->max_msg = eb->max_msg = max_msg;
  *a = ea;
  *b = eb;
  return 0;
error:
  mp__close(fds[0]);
  mp__close(fds[1]);
  free(ea);
  free(eb);
  return rc;
}

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

int mp_pipe_send(mp_pipe *p, const void *msg, size_t len, double timeout) {
  if (!p || (!msg && len > 0))
    return MP_EINVAL;
  if (len > p->max_msg)
    return -EMSGSIZE;
  pipe_hdr h = {PIPE_MAGIC, (uint32_t)len};
  struct iovec iov[2] = {{&h, sizeof h}, {(void *)msg, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  int64_t deadline = mp__deadline(timeout);
  for (;;) {
    /* Non-blocking attempts, so a timeout is honoured even when another
     * process sharing this end filled the buffer after our poll. */
    if (sendmsg(p->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
      return 0;
    int rc = pipe_retry(p, POLLOUT, deadline);
    if (rc < 0)
      return rc;
  }
}

int mp_pipe_recv(mp_pipe *p, void *buf, size_t cap, double timeout) {
  if (!p || (!buf && cap > 0))
    return MP_EINVAL;
  int64_t deadline = mp__deadline(timeout);
  for (;;) {
    /* Peek first: a message too large for buf stays queued. MSG_TRUNC makes
     * the peek report the whole message's length. */
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
    if (!pipe_hdr_ok(&h, n)) {
      /* Not ours: take it off the queue so the next message can be read. */
      (void)recv(p->fd, &h, sizeof h, MSG_DONTWAIT);
      return MP_EPROTO;
    }
    if (h.len > cap)
      return -EMSGSIZE;
    struct iovec iov[2] = {{&h, sizeof h}, {buf, cap}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cap ? 2 : 1};
    n = recvmsg(p->fd, &mh, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        continue; /* another process sharing this end took it */
      return pipe_err(errno);
    }
    if (n == 0)
      return MP_EPEERDEAD;
    /* Another reader may have taken the peeked message and left us a
     * different one: check again what was actually read. */
    if (mh.msg_flags & MSG_TRUNC)
      return -EMSGSIZE;
    return pipe_hdr_ok(&h, n) ? (int)h.len : MP_EPROTO;
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
