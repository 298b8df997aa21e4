/* process.c: mp_process, and the fork helper every child of the library uses. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- names ---- */

static char cur_name[64] = "MainProcess";
/* The process that forked this one through the library, and its name then;
 * 0 and "" in a process the library did not fork. */
static pid_t parent_pid;
static char parent_name[64];
static char cur_ident[80];  /* "" in the main process, "3" or "3:1" below */
static _Atomic unsigned proc_counter;

const char *mp_current_process_name(void) { return cur_name; }

static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = 0;
}

void mp__set_process_name(const char *name) {
  copy_str(cur_name, sizeof cur_name, name);
}

/* ---- started processes, for mp_active_children ----
 *
 * Every handle started in this process and not yet freed, linked through
 * the handle itself. A child forked by the library starts with an empty
 * list (its parent's children are not its own); one forked by a raw
 * fork() inherits the list, and each entry's owner pid keeps it out. */

struct mp_process;
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mp_process *proc_head;

/* In a child just forked (only its thread runs): forget the parent's. */
static void proc_list_forget(void) {
  pthread_mutex_init(&proc_lock, NULL);
  proc_head = NULL;
}

/* ---- fork ---- */

/*
 * fflush(NULL) without dying of it: a stream whose reader has gone (stdout a
 * closed pipe) raises SIGPIPE, and the library never ends the caller's
 * process. SIGPIPE is blocked around the flush and a SIGPIPE the flush
 * raised is consumed; the stream keeps its error, so the caller's own later
 * writes see EPIPE (or the signal) as they would have. One already pending
 * before the flush is the caller's and stays.
 */
static void flush_quietly(void) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  int had = sigismember(&pending, SIGPIPE);
  fflush(NULL);
  if (!had && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
    static const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

#ifdef __GLIBC__
/*
 * The first exit handler of every child the library forks, registered
 * right after fork, so it runs after the child's own (LIFO) and before
 * any it inherited: it flushes the child's stdio and leaves with _exit,
 * so the parent's atexit handlers (its temporary files, shm_unlink, C++
 * destructors) never run in a child, also when a target or task calls
 * exit(). Python clears them in a forked child likewise.
 */
static void child_exit_hook(int status, void *unused) {
  (void)unused;
  fflush(NULL);
  _exit(status);
}
#endif

pid_t mp__fork(const mp__fork_req *req) {
  sigset_t all, old;
  pid_t parent = getpid();
  int armed[2] = {-1, -1}; /* the child's word that its signal is armed */
  if (req->die_with_parent) {
    int rc = mp__pipe_reg(armed);
    if (rc < 0)
      return rc;
  }

  flush_quietly();
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* Held across fork so the child's copy of the registry is consistent,
   * and so no fd is half created or half closed in it (see the registry). */
  mp__fd_reg_lock();
  pid_t pid = fork();
  if (pid != 0) {
    int err = errno;
    mp__fd_reg_unlock();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    mp__fd_drop(&armed[1]);
    int rc = pid > 0 && armed[0] >= 0 ? mp__await_armed(pid, armed[0]) : 0;
    mp__fd_drop(&armed[0]);
    return pid < 0 ? -err : rc < 0 ? rc : pid;
  }

  /* Child. First of all, while the forking thread still waits for it
   * (mp__await_armed): the parent-death signal. */
  if (req->die_with_parent) {
    mp__die_with_parent(parent);
    char c = 1;
    (void)mp__write_full(armed[1], &c, 1);
  }

  /* What stdout and stderr hold now was put there after the flush
   * above by other threads of the parent: it is theirs, and the parent
   * prints it. Discarded here, not printed twice. (Only these two: glibc
   * gives no way to reach every stream; a program's own FILEs are its
   * business, as the header says.) */
  __fpurge(stdout);
  __fpurge(stderr);
#ifdef __GLIBC__
  on_exit(child_exit_hook, NULL);
#endif
  /* Other objects' fds go; the registry keeps only ours. Done in
   * place: every page a fresh child touches costs it a fault. */
  mp__fd_reg_keep_only(req->keep, req->nkeep); /* the armed pipe goes too */
  mp__fd_reg_unlock();

  parent_pid = parent;
  memcpy(parent_name, cur_name, sizeof parent_name);
  proc_list_forget();
  if (req->name)
    mp__set_process_name(req->name);
  proc_counter = 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return 0;
}

int mp_cpu_count(void) {
  for (int ncpu = 1024; ncpu <= 65536; ncpu *= 4) {
    cpu_set_t *set = CPU_ALLOC(ncpu);
    if (!set)
      break;
    size_t sz = CPU_ALLOC_SIZE(ncpu);
    if (sched_getaffinity(0, sz, set) == 0) {
      int n = CPU_COUNT_S(sz, set);
      CPU_FREE(set);
      return n > 0 ? n : 1;
    }
    CPU_FREE(set);
    if (errno != EINVAL)
      break;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* ---- mp_process ---- */

enum { PROC_NEW, PROC_RUNNING, PROC_DONE };

struct mp_process {
  mp_target_fn target;
  void *arg;
  size_t arg_len;  /* forkserver: bytes at arg the child gets a copy of */
  int method;      /* MP_START_FORK or MP_START_FORKSERVER */
  int daemon;
  int state;
  pid_t pid;
  int status_fd;  /* read end, non-blocking: the child's return value */
  int pidfd;      /* readable when the child exits; -1 where unsupported */
  int32_t reported; /* the code read from the status pipe, if any */
  int have_reported;
  int exitcode;
  char *name;
  char ident[80];
  pid_t owner;                   /* the process that started it */
  struct mp_process *prev, *next; /* in the started list, while linked */
  int linked;
};

/* In the child: set by on_exit so exit(n) is reported even when the kernel
 * keeps no status (SIGCHLD ignored). */
static int child_status_fd = -1;

#ifdef __GLIBC__
static void proc_on_exit(int status, void *unused) {
  (void)unused;
  int32_t code = status & 0xff;
  if (child_status_fd >= 0)
    (void)mp__write_full(child_status_fd, &code, sizeof code);
}
#endif

/*
 * In a process the target forks (fork() without exec): the status pipe is
 * its parent's, not its own. Were it kept, the grandchild's exit() would
 * report its status in place of the target's, or write into an fd reused
 * since. close() is safe in a fork handler.
 */
static void proc_forked_child(void) {
  if (child_status_fd >= 0)
    close(child_status_fd);
  child_status_fd = -1;
}

int mp_process_create(mp_process **out, mp_target_fn target, void *arg,
                      const mp_process_opts *opts) {
  int method = mp__start_method(opts ? opts->start_method : 0);
  if (!out || !target || method < 0 || (opts && opts->arg_len && !arg))
    return MP_EINVAL;
  mp_process *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  unsigned n = ++proc_counter;
  if (cur_ident[0])
    snprintf(p->ident, sizeof p->ident, "%.64s:%u", cur_ident, n);
  else
    snprintf(p->ident, sizeof p->ident, "%u", n);
  if (opts && opts->name) {
    p->name = strdup(opts->name);
  } else {
    size_t len = strlen(p->ident) + sizeof "Process-";
    p->name = malloc(len);
    if (p->name)
      snprintf(p->name, len, "Process-%s", p->ident);
  }
  if (!p->name) {
    free(p);
    return -ENOMEM;
  }
  p->target = target;
  p->arg = arg;
  p->arg_len = opts ? opts->arg_len : 0;
  p->method = method;
  p->daemon = opts ? !!opts->daemon : 0;
  p->status_fd = -1;
  p->pidfd = -1;
  *out = p;
  return 0;
}

/* Whether this kernel (or valgrind) has pidfd_open; asked once. */
static int pidfd_supported(void) {
  static _Atomic int known = -1;
  if (known < 0) {
    int fd = mp__pidfd_open(getpid());
    known = fd >= 0;
    mp__close(fd);
  }
  return known;
}

/*
 * The status pipe carries the target's return value (or exit()'s status)
 * to the parent. It is needed only when the kernel will keep no status
 * (SIGCHLD ignored) or when there is no pidfd to wait on; otherwise the
 * child costs a pipe, a write and an exit hook less.
 */
static int status_pipe_needed(void) {
  struct sigaction sa;
  if (!pidfd_supported() || sigaction(SIGCHLD, NULL, &sa) < 0)
    return 1;
  return sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT);
}

_Noreturn void mp__process_child(mp_target_fn target, void *arg,
                                 const char *ident, int status_fd) {
  copy_str(cur_ident, sizeof cur_ident, ident);
  if (status_fd >= 0) {
    child_status_fd = status_fd;
    pthread_atfork(NULL, NULL, proc_forked_child);
#ifdef __GLIBC__
    on_exit(proc_on_exit, NULL);
#endif
  }
  int32_t code = target(arg) & 0xff;
  fflush(NULL);
  if (child_status_fd >= 0)
    (void)mp__write_full(child_status_fd, &code, sizeof code);
  _exit(code);
}

int mp_process_start(mp_process *p) {
  if (!p)
    return MP_EINVAL;
  if (p->state != PROC_NEW)
    return MP_ESTATE;
  int fds[2] = {-1, -1};
  int piped = status_pipe_needed();
  if (piped) {
    int rc = mp__pipe_reg(fds);
    if (rc < 0)
      return rc;
  }
  pid_t pid;
  if (p->method == MP_START_FORKSERVER) {
    mp__proc_spec spec = {.target = p->target, .arg = p->arg,
                          .arg_len = p->arg_len, .daemon = p->daemon,
                          .name = p->name, .ident = p->ident,
                          .status_fd = fds[1]};
    pid = mp__exec_process(&spec);
  } else {
    mp__fork_req req = {.keep = &fds[1], .nkeep = piped,
                        .die_with_parent = p->daemon, .name = p->name};
    pid = mp__fork(&req);
    if (pid == 0)
      mp__process_child(p->target, p->arg, p->ident, fds[1]);
  }
  mp__fd_drop(&fds[1]);
  if (pid < 0) {
    mp__fd_drop(&fds[0]);
    return pid;
  }
  p->pid = pid;
  p->status_fd = fds[0];
  if (piped)
    (void)mp__set_nonblock(fds[0]);
  /* Close-on-exec by definition; registered so later children drop it. If
   * it cannot be had now (no fd left), join falls back to waitpid. */
  p->pidfd = mp__child_pidfd(pid);
  p->state = PROC_RUNNING;
  p->owner = getpid();
  pthread_mutex_lock(&proc_lock);
  p->prev = NULL;
  p->next = proc_head;
  if (proc_head)
    proc_head->prev = p;
  proc_head = p;
  p->linked = 1;
  pthread_mutex_unlock(&proc_lock);
  return 0;
}

/* Close the status pipe and the pidfd. */
static void proc_release(mp_process *p) {
  mp__fd_drop(&p->status_fd);
  mp__fd_drop(&p->pidfd);
  p->state = PROC_DONE;
}

/* The child has ended: r is what waitpid answered for it, its pid with
 * status ws, or < 0 when the kernel reaped it already (SIGCHLD ignored):
 * then the status pipe's code, if one came, else -SIGKILL. Release its fds. */
static void proc_ended(mp_process *p, pid_t r, int ws) {
  if (r == p->pid)
    p->exitcode = mp__exitcode(ws);
  else
    p->exitcode = p->have_reported ? p->reported : -SIGKILL;
  proc_release(p);
}

/* The child has exited, or is exiting (its status pipe hung up): reap it,
 * take its code, release its fds. */
static int proc_finish(mp_process *p) {
  int32_t code;
  /* Non-blocking: the code is there, or EOF, or (a grandchild holding the
   * pipe) nothing. */
  if (p->status_fd >= 0 &&
      mp__read_some(p->status_fd, &code, sizeof code) == (ssize_t)sizeof code) {
    p->reported = code;
    p->have_reported = 1;
  }
  /* A readable pidfd means it has exited: waiting is instant. A hung-up
   * status pipe alone may also mean the target exec'd (the pipe is
   * close-on-exec): then look without blocking. */
  int ws;
  pid_t r = mp__waitpid(p->pid, &ws, p->pidfd >= 0 ? 0 : WNOHANG);
  if (r == 0) {
    /* Still running: wait for it by polling waitpid from now on. */
    mp__fd_drop(&p->status_fd);
    return 0;
  }
  proc_ended(p, r, ws);
  return 1;
}

/*
 * Wait up to ms (negative: forever) for the child to end. Returns 1 once it
 * has ended (and is reaped), 0 if it still runs. A pidfd wakes us exactly
 * when the child exits. Without one (old kernels, valgrind) the status pipe
 * hangs up when the child exits, and waitpid is asked too, for a child whose
 * own raw fork() left a grandchild holding that pipe.
 */
static int proc_wait(mp_process *p, int ms) {
  struct pollfd pfd = {.fd = p->pidfd >= 0 ? p->pidfd : p->status_fd,
                       .events = POLLIN};
  int64_t dl = ms < 0 ? INT64_MAX : mp__now_ns() + (int64_t)ms * 1000000;
  if (pfd.fd < 0) {
    /* Neither fd could be had (fds exhausted at start): poll waitpid. */
    for (;;) {
      int ws;
      pid_t r = mp__waitpid(p->pid, &ws, ms < 0 ? 0 : WNOHANG);
      if (r == p->pid || r < 0) {
        proc_ended(p, r, ws);
        return 1;
      }
      if (mp__now_ns() >= dl)
        return 0;
      struct timespec tick = {0, 1000000};
      nanosleep(&tick, NULL);
    }
  }
  if (mp__poll(&pfd, 1, dl) > 0)
    return proc_finish(p);
  if (p->pidfd >= 0)
    return 0;
  int ws;
  pid_t r = mp__waitpid(p->pid, &ws, WNOHANG);
  if (r == p->pid) {
    proc_ended(p, r, ws);
    return 1;
  }
  /* Reaped by the kernel (SIGCHLD ignored) while a grandchild holds the
   * pipe open: the code it wrote before exiting is in the pipe. */
  return r < 0 ? proc_finish(p) : 0;
}

int mp_process_join(mp_process *p, double timeout) {
  if (!p)
    return MP_EINVAL;
  if (p->state == PROC_NEW)
    return MP_ESTATE;
  int64_t deadline = mp__deadline(timeout);
  while (p->state == PROC_RUNNING) {
    int ms = mp__ms_left(deadline);
    if (p->pidfd < 0 && (ms < 0 || ms > 100))
      ms = 100; /* see proc_wait: waitpid's look at the grandchild case */
    if (proc_wait(p, ms))
      break;
    if (mp__now_ns() >= deadline)
      return MP_ETIMEDOUT;
  }
  return 0;
}

int mp_process_is_alive(mp_process *p) {
  if (!p || p->state != PROC_RUNNING)
    return 0;
  return !proc_wait(p, 0);
}

pid_t mp_process_pid(const mp_process *p) { return p ? p->pid : 0; }

int mp_process_exitcode(mp_process *p, int *code) {
  if (!p || !code)
    return MP_EINVAL;
  if (p->state == PROC_RUNNING)
    proc_wait(p, 0);
  if (p->state != PROC_DONE)
    return MP_ESTATE;
  *code = p->exitcode;
  return 0;
}

static int proc_signal(mp_process *p, int sig) {
  if (!p)
    return MP_EINVAL;
  if (p->state == PROC_NEW)
    return MP_ESTATE;
  /* Not reaped by us; with SIGCHLD ignored the kernel may have reaped it,
   * so the pid is not trusted: see mp__child_signal. */
  if (p->state == PROC_RUNNING)
    return mp__child_signal(p->pid, p->pidfd, sig);
  return 0;
}

int mp_process_terminate(mp_process *p) { return proc_signal(p, SIGTERM); }
int mp_process_kill(mp_process *p) { return proc_signal(p, SIGKILL); }

const char *mp_process_name(const mp_process *p) { return p ? p->name : NULL; }

void mp_process_free(mp_process *p) {
  if (!p)
    return;
  if (p->state == PROC_RUNNING) {
    if (p->daemon) {
      (void)proc_signal(p, SIGTERM);
      if (mp_process_join(p, 1.0) == MP_ETIMEDOUT)
        (void)proc_signal(p, SIGKILL);
    }
    mp_process_join(p, -1);
  }
  if (p->linked && p->owner == getpid()) {
    pthread_mutex_lock(&proc_lock);
    if (p->prev)
      p->prev->next = p->next;
    else
      proc_head = p->next;
    if (p->next)
      p->next->prev = p->prev;
    pthread_mutex_unlock(&proc_lock);
  }
  free(p->name);
  free(p);
}

int mp__process_fd(const mp_process *p) {
  if (p->state != PROC_RUNNING)
    return -1;
  return p->pidfd >= 0 ? p->pidfd : p->status_fd;
}

int mp__process_has_pidfd(const mp_process *p) { return p->pidfd >= 0; }

int mp_active_children(mp_process **out, int max) {
  if (max < 0 || (!out && max > 0))
    return MP_EINVAL;
  pid_t self = getpid();
  int n = 0;
  pthread_mutex_lock(&proc_lock);
  for (mp_process *p = proc_head; p; p = p->next) {
    if (p->owner != self || !mp_process_is_alive(p))
      continue;
    if (n < max)
      out[n] = p;
    n++;
  }
  pthread_mutex_unlock(&proc_lock);
  return n;
}

pid_t mp_parent_process(const char **name) {
  if (name)
    *name = parent_pid ? parent_name : NULL;
  return parent_pid;
}
