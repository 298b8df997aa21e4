/* shm.c: mp_shm, anonymous and named (shm_open) shared memory, the
 * tracker that removes a named segment when its creator dies, and the
 * shared mapping every other IPC object lives in.
 *
 * The tracker, Python's resource tracker in small: a child forked at the
 * first tracked create, holding one end of a socket pair whose other end
 * only the creator holds (registered: the library's other children drop
 * it; close-on-exec). The creator tells it each name it creates and each
 * it removes itself; when the creator dies, however it dies, the kernel
 * closes its end, the tracker reads EOF, removes the names left and exits.
 * It closes every other fd it inherited (so it holds no one's pipe open),
 * ignores the terminal's signals (so ^C reaches the program, not it first),
 * and lives only while this process has tracked segments: the last free
 * closes the socket and reaps it (killing it first if it has not gone
 * within a second: a stopped tracker never holds up a free).
 * A name is told to the tracker only after shm_open(O_EXCL) made it ours,
 * and the creator tells it of a removal before removing: the tracker never
 * removes a name someone else created. (A creator killed between create
 * and telling leaves that one name behind.)
 */
#include "ipc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int mp__ipc_map(void **out, size_t len) {
  /* MAP_SHARED | MAP_ANONYMOUS: zero-filled, and the same pages in every
   * child forked after this, so a parent and its children (mp_process or
   * pool workers) see one object. */
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED)
    return -errno;
  *out = m;
  return 0;
}

void mp__ipc_unmap(void *p, size_t len) {
  if (p)
    munmap(p, len);
}

struct mp_shm {
  void *ptr;
  size_t size;
  char *name;  /* NULL: anonymous */
  pid_t owner; /* the creator of a named segment, which unlinks it; 0 else */
  int tracked; /* the tracker knows the name */
};

/* ---- the tracker ---- */

enum { TRK_ADD = 1, TRK_DEL = 2 };
typedef struct trk_rec {
  uint32_t op;
  char name[NAME_MAX + 1];
} trk_rec;

static pthread_mutex_t trk_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t trk_owner; /* the process the state below belongs to */
static pid_t trk_pid;
static int trk_fd = -1;
static size_t trk_count; /* tracked names alive in this process */

/* The tracker's life: collect names until EOF, then remove those left. */
static _Noreturn void trk_main(int rd) {
  struct sigaction ign = {.sa_handler = SIG_IGN};
  sigaction(SIGINT, &ign, NULL);
  sigaction(SIGTERM, &ign, NULL);
  sigaction(SIGHUP, &ign, NULL);
  sigaction(SIGQUIT, &ign, NULL);
  /* Unregistered fds (the application's, pipe ends) too: a tracker that
   * held them would hide the death of their holders. */
  int top = (int)sysconf(_SC_OPEN_MAX);
#ifdef SYS_close_range
  if (rd > 0)
    (void)syscall(SYS_close_range, 0u, (unsigned)rd - 1, 0u);
  if (syscall(SYS_close_range, (unsigned)rd + 1, ~0u, 0u) == 0)
    top = 0;
#endif
  for (int fd = 0; fd < top && fd < 65536; fd++)
    if (fd != rd)
      close(fd);
  trk_rec *names = NULL, r;
  size_t n = 0, cap = 0;
  for (;;) {
    ssize_t got;
    do
      got = recv(rd, &r, sizeof r, 0);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
      break; /* EOF: the creator is gone */
    if (got != (ssize_t)sizeof r)
      continue;
    r.name[NAME_MAX] = 0;
    if (r.op == TRK_ADD) {
      if (n == cap) {
        trk_rec *nn = realloc(names, (cap ? cap * 2 : 16) * sizeof *nn);
        if (!nn)
          continue; /* that name will be left behind */
        names = nn;
        cap = cap ? cap * 2 : 16;
      }
      names[n++] = r;
    } else if (r.op == TRK_DEL) {
      for (size_t i = 0; i < n; i++)
        if (strcmp(names[i].name, r.name) == 0) {
          names[i] = names[--n];
          break;
        }
    }
  }
  for (size_t i = 0; i < n; i++)
    shm_unlink(names[i].name);
  _exit(0);
}

/* Tell the tracker; trk_lock held. Returns 0 or -errno. */
static int trk_send(int op, const char *name) {
  trk_rec r;
  memset(&r, 0, sizeof r);
  r.op = (uint32_t)op;
  memcpy(r.name, name, strlen(name));
  for (;;) {
    if (send(trk_fd, &r, sizeof r, MSG_NOSIGNAL) == (ssize_t)sizeof r)
      return 0;
    if (errno != EINTR)
      return -errno;
  }
}

/* The tracker has no more names to watch: let it go. trk_lock held.
 * Our EOF tells it to go, and its end hangs up when it has gone. One
 * that has not within TRK_EXIT_S (stopped, say) is killed, which costs
 * nothing: it watches no name now, and a removal it was told of but had
 * not read yet is the creator's own to make. */
enum { TRK_EXIT_S = 1 };
static void trk_stop(void) {
  (void)shutdown(trk_fd, SHUT_WR);
  struct pollfd p = {.fd = trk_fd, .events = POLLIN};
  int gone = mp__poll(&p, 1, mp__deadline(TRK_EXIT_S)) > 0;
  mp__fd_drop(&trk_fd);
  if (!gone)
    (void)mp__child_signal(trk_pid, -1, SIGKILL);
  int ws;
  (void)mp__waitpid(trk_pid, &ws, 0);
  trk_pid = 0;
}

/* Have the tracker watch name, starting it if needed. Returns 0 or -errno;
 * on error the name is not watched. */
static int trk_add(const char *name) {
  pthread_mutex_lock(&trk_lock);
  if (trk_owner != getpid()) {
    /* A forked child: the tracker (and the fd, closed in library
     * children) are the parent's. */
    trk_owner = getpid();
    trk_fd = -1;
    trk_pid = 0;
    trk_count = 0;
  }
  int rc = 0;
  if (trk_fd < 0) {
    int fds[2];
    rc = mp__socketpair_reg(fds);
    if (rc == 0) {
      mp__fork_req req = {.keep = &fds[0], .nkeep = 1, .name = "ShmTracker"};
      pid_t pid = mp__fork(&req);
      if (pid == 0)
        trk_main(fds[0]);
      mp__fd_drop(&fds[0]);
      if (pid < 0) {
        mp__fd_drop(&fds[1]);
        rc = pid;
      } else {
        trk_fd = fds[1];
        trk_pid = pid;
      }
    }
  }
  if (rc == 0 && (rc = trk_send(TRK_ADD, name)) == 0)
    trk_count++;
  if (trk_count == 0 && trk_fd >= 0)
    trk_stop();
  pthread_mutex_unlock(&trk_lock);
  return rc;
}

/* The creator removes name itself: the tracker forgets it first. */
static void trk_del(const char *name) {
  pthread_mutex_lock(&trk_lock);
  if (trk_owner == getpid() && trk_fd >= 0) {
    (void)trk_send(TRK_DEL, name);
    if (--trk_count == 0)
      trk_stop();
  }
  pthread_mutex_unlock(&trk_lock);
}

/* "/name": one leading slash, no other, 2..NAME_MAX bytes in all. */
static int shm_name_ok(const char *name) {
  size_t n = strlen(name);
  return name[0] == '/' && n >= 2 && n <= NAME_MAX &&
         strchr(name + 1, '/') == NULL;
}

int mp_shm_create(mp_shm **out, const char *name, size_t size) {
  return mp_shm_create_opts(out, name, size, NULL);
}

int mp_shm_create_opts(mp_shm **out, const char *name, size_t size,
                       const mp_shm_opts *opts) {
  if (!out || size == 0 || (name && !shm_name_ok(name)))
    return MP_EINVAL;
  mp_shm *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc, fd = -1;
  s->size = size;
  if (!name) {
    rc = mp__ipc_map(&s->ptr, size);
    if (rc < 0)
      goto error;
    *out = s;
    return 0;
  }
  s->name = strdup(name);
  if (!s->name) {
    rc = -ENOMEM;
    goto error;
  }
  /* O_EXCL: never adopt a segment someone else made (or planted). */
  fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    goto error;
  }
  /* Exactly 0600 whatever the umask; the size before anyone maps it. */
  if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
    rc = -errno;
    goto error_unlink;
  }
  s->ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s->ptr == MAP_FAILED) {
    rc = -errno;
    s->ptr = NULL;
    goto error_unlink;
  }
  if (!(opts && opts->untracked)) {
    if ((rc = trk_add(name)) < 0) {
      munmap(s->ptr, size);
      goto error_unlink;
    }
    s->tracked = 1;
  }
  mp__close(fd); /* the mapping keeps the segment */
  s->owner = getpid();
  *out = s;
  return 0;
error_unlink:
  shm_unlink(name);
  mp__close(fd);
error:
  free(s->name);
  free(s);
  return rc;
}

int mp_shm_attach(mp_shm **out, const char *name) {
  if (!out || !name || !shm_name_ok(name))
    return MP_EINVAL;
  mp_shm *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc;
  struct stat st;
  s->name = strdup(name);
  if (!s->name) {
    rc = -ENOMEM;
    goto error;
  }
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    rc = -errno;
    goto error;
  }
  if (fstat(fd, &st) < 0) {
    rc = -errno;
  } else if (st.st_size <= 0) {
    rc = MP_ESTATE; /* the creator has not sized it yet */
  } else {
    s->size = (size_t)st.st_size;
    s->ptr = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    rc = s->ptr == MAP_FAILED ? -errno : 0;
  }
  mp__close(fd);
  if (rc < 0)
    goto error;
  *out = s;
  return 0;
error:
  free(s->name);
  free(s);
  return rc;
}

void *mp_shm_ptr(const mp_shm *s) { return s ? s->ptr : NULL; }
size_t mp_shm_size(const mp_shm *s) { return s ? s->size : 0; }
const char *mp_shm_name(const mp_shm *s) { return s ? s->name : NULL; }

void mp_shm_free(mp_shm *s) {
  if (!s)
    return;
  mp__ipc_unmap(s->ptr, s->size);
  /* Only the creating process removes the name: a forked child freeing its
   * inherited copy of the handle must not unlink it under its parent. */
  if (s->name && s->owner == getpid()) {
    if (s->tracked)
      trk_del(s->name);
    shm_unlink(s->name);
  }
  free(s->name);
  free(s);
}
