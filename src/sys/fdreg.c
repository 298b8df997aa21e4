/* sys/fdreg.c: the registry of library fds (sys/fdreg.h): every fd the
 * library keeps, created and registered in one step with respect to every
 * fork the library makes. */
#include "../internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Every fd the library keeps is in the registry, and every child it forks
 * closes those of other objects. Creating an fd and registering it, and
 * unregistering and closing it, happen under reg_lock, which mp__fork holds
 * across fork() (mp__fd_reg_lock): a fork by another thread can never catch an fd that exists
 * but is not yet (or no longer) registered, and leak it into the child. */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int *reg_fds;
static size_t reg_len, reg_cap;

/* Room for n more; reg_lock held. Returns 0 or -ENOMEM. */
static int reg_reserve(size_t n) {
  if (reg_cap - reg_len >= n)
    return 0;
  size_t cap = reg_cap ? reg_cap : 64;
  while (cap - reg_len < n)
    cap *= 2;
  int *fds = realloc(reg_fds, cap * sizeof *fds);
  if (!fds)
    return -ENOMEM;
  reg_fds = fds;
  reg_cap = cap;
  return 0;
}

/* make(fds), both ends registered in one step. */
static int reg_pair(int (*make)(int fds[2]), int fds[2]) {
  pthread_mutex_lock(&reg_lock);
  int rc = reg_reserve(2);
  if (rc == 0)
    rc = make(fds);
  if (rc == 0) {
    reg_fds[reg_len++] = fds[0];
    reg_fds[reg_len++] = fds[1];
  }
  pthread_mutex_unlock(&reg_lock);
  return rc;
}

int mp__pipe_reg(int fds[2]) { return reg_pair(mp__pipe, fds); }

int mp__socketpair_reg(int fds[2]) { return reg_pair(mp__socketpair, fds); }

static int memfd_make(void *name) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int mp__memfd_reg(const char *name) {
  return mp__fd_reg_make(memfd_make, (void *)name);
}

ssize_t mp__recv_msg_reg(int fd, void *buf, size_t cap, int *fds, int *nfds,
                         int64_t deadline) {
  *nfds = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = mp__poll(&p, 1, deadline);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return MP_ETIMEDOUT;
    pthread_mutex_lock(&reg_lock);
    ssize_t r = reg_reserve(MP__MSG_MAX_FDS);
    if (r == 0)
      r = mp__recv_msg(fd, buf, cap, fds, nfds, MSG_DONTWAIT);
    for (int i = 0; r >= 0 && i < *nfds; i++)
      reg_fds[reg_len++] = fds[i];
    pthread_mutex_unlock(&reg_lock);
    if (r != -EAGAIN)
      return r;
  }
}

int mp__pidfd_reg(pid_t pid) {
  pthread_mutex_lock(&reg_lock);
  int fd = reg_reserve(1) == 0 ? mp__pidfd_open(pid) : -1;
  if (fd >= 0)
    reg_fds[reg_len++] = fd;
  pthread_mutex_unlock(&reg_lock);
  return fd;
}

int mp__fd_reg_make(int (*make)(void *arg), void *arg) {
  pthread_mutex_lock(&reg_lock);
  int fd = reg_reserve(1);
  if (fd == 0)
    fd = make(arg);
  if (fd >= 0)
    reg_fds[reg_len++] = fd;
  pthread_mutex_unlock(&reg_lock);
  return fd;
}

void mp__fd_drop(int *fd) {
  if (*fd < 0)
    return;
  pthread_mutex_lock(&reg_lock);
  for (size_t i = 0; i < reg_len; i++) {
    if (reg_fds[i] == *fd) {
      reg_fds[i] = reg_fds[--reg_len];
      break;
    }
  }
  mp__close(*fd);
  if (reg_len == 0) {
    free(reg_fds);
    reg_fds = NULL;
    reg_cap = 0;
  }
  pthread_mutex_unlock(&reg_lock);
  *fd = -1;
}

int mp__pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

void mp__fd_reg_lock(void) { pthread_mutex_lock(&reg_lock); }

void mp__fd_reg_unlock(void) { pthread_mutex_unlock(&reg_lock); }

static int fd_kept(int fd, const int *keep, int nkeep) {
  for (int i = 0; i < nkeep; i++)
    if (keep[i] == fd)
      return 1;
  return 0;
}

void mp__fd_reg_keep_only(const int *keep, int nkeep) {
  size_t kept = 0;
  for (size_t i = 0; i < reg_len; i++) {
    if (fd_kept(reg_fds[i], keep, nkeep))
      reg_fds[kept++] = reg_fds[i];
    else
      close(reg_fds[i]);
  }
  reg_len = kept;
}
