/* listener.c: mp_listener and mp_client_connect, Python's
 * multiprocessing.connection.Listener and Client: mp_pipe connections
 * between processes that are not parent and child, over a unix socket.
 *
 * The listening socket is AF_UNIX SOCK_SEQPACKET, so an accepted
 * connection is the same kind of socket as an mp_pipe end and becomes one
 * (mp__pipe_adopt): same messages, same limits, same calls.
 *
 * Authentication, when an authkey is given, is Python's: a mutual
 * challenge and response with HMAC-SHA256. Each side sends 32 random bytes
 * and checks that the other answers with their HMAC under the key, so
 * neither the key nor a reusable answer crosses the socket, and a side
 * that does not know the key learns nothing but failure. The listener
 * challenges first; each verdict is said ("#WELCOME#" / "#FAILURE#") so
 * both sides fail with MP_EAUTH, not with a timeout.
 *
 * The listening socket is in the fd registry: children the library forks
 * do not keep it (a child holding it would keep the address alive). The
 * connections are not, as mp_pipe ends are not: children inherit them.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LST_BACKLOG 16
#define LST_NONCE 32
static const char lst_challenge[] = "#CHALLENGE#{sha256}";
static const char lst_welcome[] = "#WELCOME#";
static const char lst_failure[] = "#FAILURE#";

struct mp_listener {
  int fd;
  char *address;  /* as given, or made up ("@mpool-...") */
  size_t max_msg; /* of the connections */
  unsigned char *key;
  size_t key_len;
  pid_t owner; /* the creator, who removes a path */
  dev_t dev;   /* the socket file it bound (path addresses) */
  ino_t ino;
};

/* sockaddr for address: "@name" abstract, else a path. Returns 0 or a
 * code. */
static int lst_addr(const char *address, struct sockaddr_un *sa,
                    socklen_t *len) {
  size_t n = strlen(address);
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (n == 0 || (address[0] == '@' && n == 1))
    return MP_EINVAL;
  if (n >= sizeof sa->sun_path)
    return -ENAMETOOLONG;
  memcpy(sa->sun_path, address, n);
  if (address[0] == '@') {
    sa->sun_path[0] = 0; /* abstract: no NUL after it, the length says */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

static int lst_socket_make(void *arg) {
  (void)arg;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  return fd < 0 ? -errno : fd;
}

static int lst_copy_key(unsigned char **dst, size_t *dlen, const void *key,
                        size_t len) {
  *dst = NULL;
  *dlen = 0;
  if (!key)
    return 0;
  *dst = malloc(len ? len : 1);
  if (!*dst)
    return -ENOMEM;
  memcpy(*dst, key, len);
  *dlen = len;
  return 0;
}

int mp_listener_create(mp_listener **out, const char *address,
                       const mp_listener_opts *opts) {
  mp_listener_opts o = opts ? *opts : (mp_listener_opts){0};
  if (!out || o.backlog < 0 || o.max_msg > INT_MAX / 2 ||
      (!o.authkey && o.authkey_len))
    return MP_EINVAL;
  mp_listener *l = calloc(1, sizeof *l);
  if (!l)
    return -ENOMEM;
  l->fd = -1;
  int rc = -ENOMEM;
  char made[64];
  if (!address) {
    static _Atomic unsigned counter;
    unsigned rnd = 0;
    /* Only to make the name unlikely to be taken: pid and counter already
     * make it unique here, so a short read leaves rnd 0 and no harm. */
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
      rnd = 0;
    snprintf(made, sizeof made, "@mpool-%ld-%u-%08x", (long)getpid(), ++counter,
             rnd);
    address = made;
  }
  struct sockaddr_un sa;
  socklen_t sa_len;
  if ((rc = lst_addr(address, &sa, &sa_len)) < 0)
    goto error;
  rc = -ENOMEM;
  if (!(l->address = strdup(address)) ||
      lst_copy_key(&l->key, &l->key_len, o.authkey, o.authkey_len) < 0)
    goto error;
  if ((l->fd = mp__fd_reg_make(lst_socket_make, NULL)) < 0) {
    rc = l->fd;
    goto error;
  }
  if (bind(l->fd, (struct sockaddr *)&sa, sa_len) < 0) {
    rc = -errno;
    goto error;
  }
  if (address[0] != '@') {
    struct stat st;
    if (stat(address, &st) == 0) {
      l->dev = st.st_dev;
      l->ino = st.st_ino;
    }
    l->owner = getpid();
  }
  if (listen(l->fd, o.backlog ? o.backlog : LST_BACKLOG) < 0) {
    rc = -errno;
    if (l->owner)
      unlink(address);
    goto error;
  }
  l->max_msg = o.max_msg;
  *out = l;
  return 0;
error:
  mp__fd_drop(&l->fd);
  free(l->key);
  free(l->address);
  free(l);
  return rc;
}

const char *mp_listener_address(const mp_listener *l) {
  return l ? l->address : NULL;
}

int mp__listener_fd(const mp_listener *l) { return l->fd; }

/* ---- the handshake ---- */

/* Seconds left until deadline, for the pipe's calls: -1 for none. */
static double lst_left(int64_t deadline) {
  if (deadline == INT64_MAX)
    return -1;
  int64_t left = deadline - mp__now_ns();
  return left > 0 ? (double)left / 1e9 : 0;
}

/* Challenge the peer: it must answer with the HMAC of our message. Says
 * the verdict. Returns 0, MP_EAUTH, or the pipe's code. */
static int lst_challenge_peer(mp_pipe *c, const unsigned char *key,
                              size_t key_len, int64_t deadline) {
  unsigned char msg[sizeof lst_challenge - 1 + LST_NONCE];
  unsigned char want[MP__SHA256_LEN], got[MP__SHA256_LEN + 1];
  memcpy(msg, lst_challenge, sizeof lst_challenge - 1);
  if (getrandom(msg + sizeof lst_challenge - 1, LST_NONCE, 0) != LST_NONCE)
    return errno ? -errno : -EIO;
  int rc = mp_pipe_send(c, msg, sizeof msg, lst_left(deadline));
  if (rc < 0)
    return rc;
  rc = mp_pipe_recv(c, got, sizeof got, lst_left(deadline));
  if (rc < 0 && rc != -EMSGSIZE && rc != MP_EPROTO)
    return rc;
  mp__hmac_sha256(key, key_len, msg, sizeof msg, want);
  int ok = rc == MP__SHA256_LEN && mp__mem_equal_ct(got, want, sizeof want);
  const char *verdict = ok ? lst_welcome : lst_failure;
  /* Said without waiting: the peer is waiting for it, so there is room. */
  (void)mp_pipe_send(c, verdict, strlen(verdict), 0);
  return ok ? 0 : MP_EAUTH;
}

/* Answer the peer's challenge and read its verdict. Returns 0, MP_EAUTH,
 * or the pipe's code. */
static int lst_answer_peer(mp_pipe *c, const unsigned char *key, size_t key_len,
                           int64_t deadline) {
  unsigned char msg[sizeof lst_challenge - 1 + LST_NONCE];
  unsigned char mac[MP__SHA256_LEN];
  char verdict[sizeof lst_welcome];
  int rc = mp_pipe_recv(c, msg, sizeof msg, lst_left(deadline));
  if (rc == -EMSGSIZE || rc == MP_EPROTO ||
      (rc >= 0 && (rc != (int)sizeof msg ||
                   memcmp(msg, lst_challenge, sizeof lst_challenge - 1))))
    return MP_EAUTH;
  if (rc < 0)
    return rc;
  mp__hmac_sha256(key, key_len, msg, sizeof msg, mac);
  if ((rc = mp_pipe_send(c, mac, sizeof mac, lst_left(deadline))) < 0)
    return rc;
  rc = mp_pipe_recv(c, verdict, sizeof verdict, lst_left(deadline));
  if (rc == (int)strlen(lst_welcome) &&
      !memcmp(verdict, lst_welcome, (size_t)rc))
    return 0;
  return rc < 0 && rc != -EMSGSIZE && rc != MP_EPROTO && rc != MP_EPEERDEAD
             ? rc
             : MP_EAUTH;
}

/* Turn fd into a connection and authenticate it when a key is set; the
 * listener's side challenges first. Returns 0 and sets *conn, or a code
 * (fd is closed then). */
static int lst_connection(mp_pipe **conn, int fd, size_t max_msg,
                          const unsigned char *key, size_t key_len,
                          int listener_side, int64_t deadline) {
  mp_pipe *c;
  int rc = mp__pipe_adopt(&c, fd, max_msg);
  if (rc < 0) {
    mp__close(fd);
    return rc;
  }
  if (key) {
    if (listener_side) {
      rc = lst_challenge_peer(c, key, key_len, deadline);
      if (rc == 0)
        rc = lst_answer_peer(c, key, key_len, deadline);
    } else {
      rc = lst_answer_peer(c, key, key_len, deadline);
      if (rc == 0)
        rc = lst_challenge_peer(c, key, key_len, deadline);
    }
  }
  if (rc < 0) {
    mp_pipe_free(c);
    return rc;
  }
  *conn = c;
  return 0;
}

int mp_listener_accept(mp_listener *l, mp_pipe **conn, double timeout) {
  if (!l || !conn)
    return MP_EINVAL;
  int64_t deadline = mp__deadline(timeout);
  int fd;
  for (;;) {
    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
      break;
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
    int r = mp__poll(&pfd, 1, deadline);
    if (r < 0)
      return r;
    if (r == 0)
      return MP_ETIMEDOUT;
  }
  return lst_connection(conn, fd, l->max_msg, l->key, l->key_len, 1, deadline);
}

void mp_listener_free(mp_listener *l) {
  if (!l)
    return;
  /* Remove the socket file only in the creating process, and only while
   * it is still the one bound (not a later listener's at the same path). */
  struct stat st;
  if (l->owner == getpid() && stat(l->address, &st) == 0 &&
      S_ISSOCK(st.st_mode) && st.st_dev == l->dev && st.st_ino == l->ino)
    unlink(l->address);
  mp__fd_drop(&l->fd);
  free(l->key);
  free(l->address);
  free(l);
}

int mp_client_connect(mp_pipe **conn, const char *address,
                      const mp_client_opts *opts, double timeout) {
  mp_client_opts o = opts ? *opts : (mp_client_opts){0};
  if (!conn || !address || o.max_msg > INT_MAX / 2 ||
      (!o.authkey && o.authkey_len))
    return MP_EINVAL;
  struct sockaddr_un sa;
  socklen_t sa_len;
  int rc = lst_addr(address, &sa, &sa_len);
  if (rc < 0)
    return rc;
  int64_t deadline = mp__deadline(timeout);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  while (connect(fd, (struct sockaddr *)&sa, sa_len) < 0) {
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN) {
      rc = -errno;
      mp__close(fd);
      return rc;
    }
    /* The listener's backlog is full, and a unix socket cannot wait for
     * room without blocking: try again in slices. */
    if (mp__now_ns() >= deadline) {
      mp__close(fd);
      return MP_ETIMEDOUT;
    }
    struct timespec slice = {0, 10 * 1000000};
    nanosleep(&slice, NULL);
  }
  return lst_connection(conn, fd, o.max_msg, o.authkey, o.authkey_len, 0,
                        deadline);
}
