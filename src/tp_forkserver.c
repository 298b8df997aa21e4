/*
 * tp_forkserver.c: the forkserver start method. A pool's workers are forked
 * by a server process that was never a copy of the caller's threads: the
 * program's own image, posix_spawn'ed from /proc/self/exe with a marker in
 * its arguments. This file's constructor sees the marker before main and
 * runs the server instead of the program (it never returns to main). The
 * pipes transport (tp_fork.c) does everything else; this is its spawner.
 *
 * The protocol, on a SOCK_SEQPACKET socketpair (one message, one request):
 *   pool -> server  HELLO  once: the pool's worker settings, the
 *                          initializer as a reference, and a memfd holding
 *                          the workers' slots and the initializer's
 *                          argument bytes; answered by READY (0, or
 *                          MP_ENOFUNC when the initializer is not here).
 *                   SPAWN  fork worker `slot` on the two pipe ends it
 *                          carries (SCM_RIGHTS), and its shared-memory
 *                          channel's memfd when it has one (shm transport,
 *                          shmchan.h); answered by SPAWNED with
 *                          the pid and, where the kernel has them, a pidfd
 *                          for it (SCM_RIGHTS: signals go through it, never
 *                          to a raw pid).
 *                   KILL   signal a worker not yet reaped (no pidfd here).
 *                   QUIT   kill what is left and exit.
 *   server -> pool  STATUS a worker was reaped: its pid and exit code.
 * The server is single-threaded and reaps its children through a
 * signalfd. It exits on QUIT or on EOF of its socket: the pool's end is
 * held by the creating process, not by a thread, so the server and its
 * workers (armed with the parent-death signal on the server) end when that
 * process does, whichever thread created the pool. A stopped server sees
 * no EOF: a second fd, the read end of a pipe whose write end only the
 * pool's process holds and nobody writes to, is armed to SIGKILL the
 * server when it hangs up (O_ASYNC with F_SETSIG): the one signal that
 * ends a stopped process, sent when that process is gone however it went,
 * and not when a thread of it exits.
 *
 * The pool never waits on the server without a bound: its start may take
 * FS_START_NS, each later request (a spawn, a reaped worker's status, the
 * exit that QUIT asks for) FS_ANSWER_NS. A server past that (stopped,
 * hung, or sending what is not the protocol) is taken for lost: killed and
 * reaped, its workers dying with it, as if it had been killed from
 * outside (mpool.h says what a pool does then).
 */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long the server may take to answer: its start (an exec, then the
 * HELLO) and each later request. Bounds for a server stopped or hung, not
 * timings: a server that is merely slow (a loaded machine) must never
 * reach them. mpool.h states them. */
#define FS_START_NS (30 * (int64_t)1000000000)
#define FS_ANSWER_NS (2 * (int64_t)1000000000)

/* argv[1] of the program's image started as a server or as a process. */
#define FS_MARK_SERVER "\001mpool-forkserver-1"
#define FS_MARK_PROCESS "\001mpool-process-1"

/* ---- the start method ---- */

static _Atomic int initial_method = MP_START_FORK;
static _Atomic int chosen_method; /* 0: the initial one */

int mp_set_start_method(int method) {
  if (method != 0 && method != MP_START_FORK && method != MP_START_FORKSERVER)
    return MP_EINVAL;
  atomic_store(&chosen_method, method);
  return 0;
}

int mp_get_start_method(void) {
  int m = atomic_load(&chosen_method);
  return m ? m : atomic_load(&initial_method);
}

int mp__start_method(int asked) {
  if (asked == 0)
    return mp_get_start_method();
  if (asked != MP_START_FORK && asked != MP_START_FORKSERVER)
    return MP_EINVAL;
  return asked;
}

/* ---- starting the program's image ---- */

/* The image to exec: /proc/self/exe, except under valgrind, whose
 * /proc/self/exe is valgrind itself: then the program's path, which
 * valgrind runs natively (--trace-children=no). Set by the constructor. */
static char image_path[PATH_MAX] = "/proc/self/exe";

/* The environment the program started with, its array copied by the
 * constructor (the strings are the kernel's, on the initial stack, never
 * freed): the server and a process get it, not the caller's present one.
 * Reading environ while another thread runs setenv could see an array
 * being freed; this copy is never written. */
static char **start_env;

/*
 * posix_spawn the program's image with argv {name, mark, fds...}: each of
 * fds (at most 3) stays open in it at the same number, its number in argv.
 * posix_spawn (clone + exec, nothing run in between but the file actions)
 * copies nothing of the caller's threads and takes no lock they may hold.
 * Signals start at their defaults, unblocked. Returns 0 with *pid, or
 * -errno (exec's own errors included).
 */
static int fs_exec_image(const char *name, const char *mark, const int *fds,
                         int nfds, pid_t *pid) {
  char num[3][16];
  char *argv[6] = {(char *)name, (char *)mark, NULL, NULL, NULL, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc)
    return -rc;
  if ((rc = posix_spawnattr_init(&at))) {
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
  }
  for (int i = 0; i < nfds && !rc; i++) {
    snprintf(num[i], sizeof num[i], "%d", fds[i]);
    argv[2 + i] = num[i];
    /* dup2 onto itself clears close-on-exec (glibc 2.29 and later). */
    rc = posix_spawn_file_actions_adddup2(&fa, fds[i], fds[i]);
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigemptyset(&all);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      (void)sigaddset(&all, s);
  if (!rc)
    rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF);
  if (!rc)
    rc = posix_spawnattr_setsigmask(&at, &none);
  if (!rc)
    rc = posix_spawnattr_setsigdefault(&at, &all);
  if (!rc)
    rc = posix_spawn(pid, image_path, &fa, &at, argv,
                     start_env ? start_env : environ);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return -rc;
}

/* In the image just started: close every fd from 3 up but keep[0..n),
 * given in ascending order (an fd the program leaked without
 * close-on-exec must not stay open in the server). */
static void fs_close_others(const int *keep, int n) {
  unsigned lo = 3;
  for (int i = 0; i < n; i++) {
    if ((unsigned)keep[i] > lo)
      (void)close_range(lo, (unsigned)keep[i] - 1, 0);
    lo = (unsigned)keep[i] + 1;
  }
  (void)close_range(lo, ~0u, 0);
}

/* A decimal fd from argv, or -1. */
static int fs_parse_fd(const char *s) {
  char *end;
  long v = s ? strtol(s, &end, 10) : -1;
  return (v >= 3 && v < INT_MAX && *end == 0) ? (int)v : -1;
}

/* ---- the protocol ---- */

enum {
  FS_HELLO = 1,
  FS_SPAWN,
  FS_KILL,
  FS_QUIT,
  FS_READY,
  FS_SPAWNED,
  FS_STATUS
};

typedef struct fs_msg {
  uint32_t type;
  int32_t code;  /* SPAWN: slot; KILL: signal; READY, SPAWNED: 0 or
                  * -errno / MP_E*; STATUS: exit code (mp__exitcode) */
  int64_t pid;   /* SPAWNED, KILL, STATUS */
  char name[32]; /* SPAWN: the worker's name */
} fs_msg;

typedef struct fs_hello {
  uint32_t type; /* FS_HELLO */
  uint32_t nslots;
  int32_t maxtasks;
  int32_t timed;
  uint32_t max_res;
  uint32_t has_init;
  uint64_t initarg_len; /* bytes in the memfd after the slots */
  uint64_t initarg_val; /* initarg itself when initarg_len is 0 */
  mp__fnref init;
} fs_hello;

/* Where the initializer's argument bytes start in the memfd. */
static size_t fs_arg_off(uint32_t nslots) {
  return ((size_t)nslots * sizeof(mp__slot) + 15) & ~(size_t)15;
}

/* ---- the server (in the image started with FS_MARK_SERVER) ---- */

typedef struct server {
  int ctl, sfd;
  int life; /* hangs up when the pool's process is gone: see the top */
  uint32_t nslots;
  mp__slot *slots;
  mp__worker_cfg wcfg; /* what every worker runs; fds and slot per worker */
  pid_t *live;         /* forked, not yet reaped */
  size_t nlive, cap;
} server;

static _Noreturn void server_exit(server *s) {
  for (size_t i = 0; i < s->nlive; i++)
    kill(s->live[i], SIGKILL); /* ours and unreaped: the pid is theirs */
  int ws;
  while (waitpid(-1, &ws, 0) > 0 || errno == EINTR)
    ;
  _exit(0);
}

static int server_send(server *s, fs_msg *m, int fd) {
  return mp__send_msg(s->ctl, m, sizeof *m, &fd, fd >= 0);
}

static int server_hello(server *s, const fs_hello *h, int memfd) {
  struct stat st;
  size_t off = fs_arg_off(h->nslots);
  if (h->nslots == 0 || h->nslots > 1u << 20 || h->initarg_len > SIZE_MAX / 2 ||
      fstat(memfd, &st) < 0 || (uint64_t)st.st_size != off + h->initarg_len)
    return MP_EPROTO;
  char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 memfd, 0);
  if (m == MAP_FAILED)
    return -errno;
  s->nslots = h->nslots;
  s->slots = (mp__slot *)(void *)m;
  void *arg = (void *)(uintptr_t)h->initarg_val;
  if (h->initarg_len) {
    /* A private copy every worker inherits; the mapping is shared. */
    if (!(arg = malloc((size_t)h->initarg_len)))
      return -ENOMEM;
    memcpy(arg, m + off, (size_t)h->initarg_len);
  }
  mp__fn init = NULL;
  if (h->has_init) {
    int rc = mp__fnref_resolve(&h->init, &init);
    if (rc < 0)
      return rc;
  }
  s->wcfg = (mp__worker_cfg){
      .parent = getpid(),
      .initializer = (void (*)(void *))init,
      .initarg = arg,
      .maxtasks = h->maxtasks,
      .timed = h->timed,
      .max_res = h->max_res,
      .max_task = UINT32_MAX,
      .chan_fd = -1,
  };
  return 0;
}

static void server_spawn(server *s, const fs_msg *m, const int *fds, int nfds) {
  fs_msg r = {.type = FS_SPAWNED};
  int pidfd = -1;
  char name[sizeof m->name + 1];
  memcpy(name, m->name, sizeof m->name);
  name[sizeof m->name] = 0;
  if (nfds < 2 || nfds > 3 || m->code < 0 ||
      (uint32_t)m->code >= s->nslots) {
    r.code = MP_EPROTO;
  } else if (s->nlive == s->cap &&
             !(s->live = realloc(s->live, (s->cap = s->cap * 2 + 8) *
                                              sizeof *s->live))) {
    r.code = -ENOMEM;
  } else {
    mp__fork_req req = {.die_with_parent = 1, .name = name};
    pid_t pid = mp__fork(&req);
    if (pid == 0) {
      close(s->ctl);
      close(s->sfd);
      close(s->life);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      mp__worker_cfg cfg = s->wcfg;
      cfg.task_fd = fds[0];
      cfg.res_fd = fds[1];
      cfg.chan_fd = nfds == 3 ? fds[2] : -1;
      cfg.slot = &s->slots[m->code];
      mp__worker_main(&cfg);
    }
    if (pid < 0) {
      r.code = pid;
    } else {
      s->live[s->nlive++] = pid;
      r.pid = pid;
      pidfd = mp__pidfd_open(pid);
    }
  }
  for (int i = 0; i < nfds; i++)
    mp__close(fds[i]);
  int rc = server_send(s, &r, pidfd);
  mp__close(pidfd);
  if (rc < 0)
    server_exit(s);
}

/* Reap what has ended and tell the pool. */
static void server_reap(server *s) {
  struct signalfd_siginfo si;
  while (mp__read_some(s->sfd, &si, sizeof si) > 0)
    ;
  int ws;
  pid_t pid;
  while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
    for (size_t i = 0; i < s->nlive; i++)
      if (s->live[i] == pid)
        s->live[i] = s->live[--s->nlive];
    fs_msg st = {.type = FS_STATUS, .code = mp__exitcode(ws), .pid = pid};
    if (server_send(s, &st, -1) < 0)
      server_exit(s);
  }
}

static void server_kill(server *s, const fs_msg *m) {
  for (size_t i = 0; i < s->nlive; i++)
    if (s->live[i] == m->pid && m->code > 0 && m->code < NSIG)
      kill(s->live[i], m->code);
}

/* Be killed (SIGKILL, which a stopped process gets too) when the pool's
 * process is gone: its end of life hangs up. Armed, then checked, for a
 * process gone before. Without O_ASYNC (no such kernel) EOF on the socket
 * remains, for a server that runs. */
static void server_watch_pool(int life) {
  if (fcntl(life, F_SETOWN, getpid()) < 0 ||
      fcntl(life, F_SETSIG, SIGKILL) < 0 ||
      fcntl(life, F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
    return;
  struct pollfd p = {.fd = life, .events = POLLIN};
  if (mp__poll(&p, 1, 0) != 0)
    _exit(0); /* hung up (or readable: nobody writes there) */
}

static _Noreturn void server_main(int ctl, int life) {
  server s = {.ctl = ctl, .sfd = -1, .life = life};
  int keep[2] = {ctl < life ? ctl : life, ctl < life ? life : ctl};
  fs_close_others(keep, 2);
  server_watch_pool(life);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  s.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  union {
    fs_msg m;
    fs_hello h;
  } u;
  int fds[MP__MSG_MAX_FDS], nfds;
  ssize_t n = mp__recv_msg(ctl, &u, sizeof u, fds, &nfds, 0);
  fs_msg ready = {.type = FS_READY, .code = MP_EPROTO};
  if (s.sfd < 0)
    ready.code = -errno;
  else if (n == (ssize_t)sizeof u.h && u.h.type == FS_HELLO && nfds == 1)
    ready.code = server_hello(&s, &u.h, fds[0]);
  for (int i = 0; n >= 0 && i < nfds; i++)
    mp__close(fds[i]);
  if (server_send(&s, &ready, -1) < 0 || ready.code < 0)
    server_exit(&s);
  for (;;) {
    struct pollfd p[2] = {{.fd = ctl, .events = POLLIN},
                          {.fd = s.sfd, .events = POLLIN}};
    if (mp__poll(p, 2, INT64_MAX) < 0)
      server_exit(&s);
    if (p[1].revents)
      server_reap(&s);
    if (!p[0].revents)
      continue;
    n = mp__recv_msg(ctl, &u, sizeof u, fds, &nfds, MSG_DONTWAIT);
    if (n == -EAGAIN)
      continue;
    if (n != (ssize_t)sizeof u.m || u.m.type == FS_QUIT) {
      for (int i = 0; n > 0 && i < nfds; i++)
        mp__close(fds[i]);
      server_exit(&s); /* EOF: the pool's process is gone; or QUIT */
    }
    if (u.m.type == FS_SPAWN) {
      server_spawn(&s, &u.m, fds, nfds);
      continue;
    }
    for (int i = 0; i < nfds; i++)
      mp__close(fds[i]);
    if (u.m.type == FS_KILL)
      server_kill(&s, &u.m);
  }
}

/* ---- the pool's side: the spawner ---- */

typedef struct fs_status {
  pid_t pid;
  int code;
} fs_status;

typedef struct fs_client {
  int ctl;  /* the pool's end of the socket, non-blocking; -1: lost */
  int life; /* the write end of the server's life pipe (see the top) */
  pid_t server;   /* 0 once reaped */
  int server_fd;  /* its pidfd (-1: none): signals go through it */
  char *map; /* the memfd: slots, then the initializer's argument */
  size_t map_len;
  int nproc;
  pid_t *live;      /* each slot's worker, until reaped; 0: none */
  fs_status *early; /* statuses read ahead of their reap: at most one */
  size_t nearly;    /* per live worker, so nproc entries suffice */
} fs_client;

/* Keep a status read ahead of its reap; one for a pid no slot holds (a
 * worker whose SPAWNED could not be received) goes. */
static void fc_note(fs_client *c, const fs_msg *m) {
  for (int i = 0; i < c->nproc; i++) {
    if (c->live[i] == (pid_t)m->pid && (size_t)c->nproc > c->nearly) {
      c->early[c->nearly++] = (fs_status){(pid_t)m->pid, m->code};
      return;
    }
  }
}

/* The server is lost (it did not answer in time, or broke the protocol):
 * kill it, which takes its workers (armed with the parent-death signal on
 * it), and reap it. SIGKILL reaches a stopped process. From now on every
 * spawn fails with -EPIPE and every status is unknown, as when the server
 * is killed from outside. */
static void fc_lose(fs_client *c) {
  mp__fd_drop(&c->ctl);
  if (c->server > 0) {
    (void)mp__child_signal(c->server, c->server_fd, SIGKILL);
    int ws;
    (void)mp__waitpid(c->server, &ws, 0);
    c->server = 0;
  }
  mp__fd_drop(&c->server_fd);
  mp__fd_drop(&c->life);
}

/* Read messages from the server until one of type want, up to deadline:
 * the pidfd a SPAWNED carries, if any, into *pidfd (registered). Statuses
 * met on the way are kept (fc_note). Returns 1, 0 when the server is gone
 * (or lost), MP_ETIMEDOUT, MP_EPROTO or -errno: the caller then takes the
 * server for lost. */
static int fc_next(fs_client *c, uint32_t want, fs_msg *m, int *pidfd,
                   int64_t deadline) {
  if (pidfd)
    *pidfd = -1;
  if (c->ctl < 0)
    return 0;
  for (;;) {
    int fds[MP__MSG_MAX_FDS], nfds;
    ssize_t n = mp__recv_msg_reg(c->ctl, m, sizeof *m, fds, &nfds, deadline);
    int keep = n == (ssize_t)sizeof *m && m->type == FS_SPAWNED &&
               want == FS_SPAWNED && nfds > 0;
    for (int i = keep; i < nfds; i++)
      mp__fd_drop(&fds[i]);
    if (pidfd)
      *pidfd = keep ? fds[0] : -1;
    if (n <= 0)
      return n == 0 || n == -ECONNRESET ? 0 : (int)n;
    if (n != (ssize_t)sizeof *m)
      return MP_EPROTO;
    if (m->type == want)
      return 1;
    if (m->type != FS_STATUS)
      return MP_EPROTO;
    fc_note(c, m);
  }
}

/* A request of the pool's: sent without waiting (the socket is
 * non-blocking: a server that reads nothing fills it). Returns 0, or
 * -EPIPE when the server is lost (taken for lost now if it cannot be
 * sent). */
static int fc_send(fs_client *c, const fs_msg *m, const int *fds, int nfds) {
  if (c->ctl < 0)
    return -EPIPE;
  if (mp__send_msg(c->ctl, m, sizeof *m, fds, nfds) < 0) {
    fc_lose(c);
    return -EPIPE;
  }
  return 0;
}

static void fc_free(fs_client *c) {
  if (c->ctl >= 0) {
    /* QUIT, then its EOF (the server exits: every worker is reaped by
     * now), for FS_ANSWER_NS at most; statuses on the way are no one's. */
    fs_msg quit = {.type = FS_QUIT}, m;
    int rc = fc_send(c, &quit, NULL, 0);
    int64_t dl = mp__now_ns() + FS_ANSWER_NS;
    while (rc == 0 && (rc = fc_next(c, FS_STATUS, &m, NULL, dl)) == 1)
      rc = 0;
    if (rc != 0)
      fc_lose(c);
    mp__fd_drop(&c->ctl);
  }
  if (c->server > 0) {
    int ws; /* it has closed its socket: it is exiting, if not gone */
    (void)mp__waitpid(c->server, &ws, 0);
  }
  mp__fd_drop(&c->server_fd);
  mp__fd_drop(&c->life);
  if (c->map)
    munmap(c->map, c->map_len);
  free(c->early);
  free(c->live);
  free(c);
}

static int fc_create(const mp__tp_cfg *cfg, void **out, mp__slot **slots) {
  const mp_pool_opts *o = cfg->opts;
  fs_hello h = {
      .type = FS_HELLO,
      .nslots = (uint32_t)cfg->nproc,
      .maxtasks = o->maxtasksperchild,
      .timed = o->task_timeout > 0,
      .max_res = (uint32_t)cfg->max_res,
      .has_init = o->initializer != NULL,
      .initarg_len = o->initarg_len,
      .initarg_val = o->initarg_len ? 0 : (uint64_t)(uintptr_t)o->initarg,
  };
  if ((o->initarg_len && !o->initarg) ||
      (o->initializer && mp__fnref_make((mp__fn)o->initializer, &h.init) < 0))
    return MP_EINVAL;
  fs_client *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->ctl = c->life = c->server_fd = -1;
  c->nproc = cfg->nproc;
  c->live = calloc((size_t)cfg->nproc, sizeof *c->live);
  c->early = calloc((size_t)cfg->nproc, sizeof *c->early);
  if (!c->live || !c->early) {
    fc_free(c);
    return -ENOMEM;
  }
  int sv[2] = {-1, -1}, life[2] = {-1, -1}, memfd = -1, rc;
  size_t off = fs_arg_off(h.nslots);
  c->map_len = off + o->initarg_len;
  if ((rc = memfd = mp__memfd_reg("mpool-slots")) < 0)
    goto error;
  if (ftruncate(memfd, (off_t)c->map_len) < 0) {
    rc = -errno;
    goto error;
  }
  c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (c->map == MAP_FAILED) {
    c->map = NULL;
    rc = -errno;
    goto error;
  }
  if (o->initarg_len)
    memcpy(c->map + off, o->initarg, o->initarg_len);
  if ((rc = mp__socketpair_reg(sv)) < 0 || (rc = mp__pipe_reg(life)) < 0 ||
      (rc = mp__set_nonblock(sv[0])) < 0)
    goto error;
  int theirs[2] = {sv[1], life[0]};
  if ((rc = fs_exec_image("mpool-forkserver", FS_MARK_SERVER, theirs, 2,
                          &c->server)) < 0)
    goto error;
  mp__fd_drop(&sv[1]);
  mp__fd_drop(&life[0]);
  c->ctl = sv[0]; /* the client's now: fc_free closes them */
  c->life = life[1];
  sv[0] = life[1] = -1;
  c->server_fd = mp__child_pidfd(c->server);
  fs_msg ready;
  if ((rc = mp__send_msg(c->ctl, &h, sizeof h, &memfd, 1)) < 0 ||
      (rc = fc_next(c, FS_READY, &ready, NULL,
                    mp__now_ns() + FS_START_NS)) <= 0) {
    rc = rc == 0 ? -EPIPE : rc;
    fc_lose(c); /* nothing waits on it: a server that answered no HELLO */
    goto error;
  }
  if ((rc = ready.code) < 0)
    goto error;
  mp__fd_drop(&memfd);
  *slots = (mp__slot *)(void *)c->map;
  *out = c;
  return 0;

error:
  mp__fd_drop(&memfd);
  mp__fd_drop(&sv[1]);
  mp__fd_drop(&life[0]);
  mp__fd_drop(&sv[0]);
  mp__fd_drop(&life[1]);
  fc_free(c);
  return rc;
}

static int fc_spawn(void *sp, int idx, const char *name, int task_rd,
                    int res_wr, int chan_fd, pid_t *pid, int *pidfd) {
  fs_client *c = sp;
  fs_msg m = {.type = FS_SPAWN, .code = idx};
  snprintf(m.name, sizeof m.name, "%s", name);
  int fds[3] = {task_rd, res_wr, chan_fd};
  int rc = fc_send(c, &m, fds, chan_fd >= 0 ? 3 : 2);
  if (rc < 0)
    return rc;
  if ((rc = fc_next(c, FS_SPAWNED, &m, pidfd,
                    mp__now_ns() + FS_ANSWER_NS)) <= 0) {
    /* Gone, or lost now: a worker it may have forked dies with it. */
    fc_lose(c);
    return -EPIPE;
  }
  if (m.code < 0 || m.pid <= 0) {
    mp__fd_drop(pidfd);
    return m.code < 0 ? m.code : MP_EPROTO;
  }
  *pid = (pid_t)m.pid;
  c->live[idx] = *pid;
  return 0;
}

static void fc_signal(void *sp, pid_t pid, int pidfd, int sig) {
  fs_client *c = sp;
  /* Not our child: no waitid check to fall back on; without pidfd
   * signals (old kernels, valgrind) the server, its parent, sends it. */
  if (pidfd >= 0 && mp__pidfd_signal(pidfd, sig) != -ENOSYS)
    return;
  fs_msg m = {.type = FS_KILL, .code = sig, .pid = pid};
  (void)fc_send(c, &m, NULL, 0);
}

static int fc_reap(void *sp, pid_t pid, int *code) {
  fs_client *c = sp;
  for (int i = 0; i < c->nproc; i++)
    if (c->live[i] == pid)
      c->live[i] = 0; /* a status for it from now on is this reap's */
  int64_t dl = mp__now_ns() + FS_ANSWER_NS;
  for (;;) {
    for (size_t i = 0; i < c->nearly; i++) {
      if (c->early[i].pid == pid) {
        *code = c->early[i].code;
        c->early[i] = c->early[--c->nearly];
        return 1;
      }
    }
    fs_msg m;
    if (fc_next(c, FS_STATUS, &m, NULL, dl) <= 0) {
      fc_lose(c); /* gone, or lost now: so is its worker */
      return 0;
    }
    if (m.pid == pid) {
      *code = m.code;
      return 1;
    }
    fc_note(c, &m); /* another worker's, kept for its own reap */
  }
}

static void fc_destroy(void *sp) { fc_free(sp); }

const mp__spawn_ops mp__spawn_server = {
    .create = fc_create,
    .spawn = fc_spawn,
    .signal = fc_signal,
    .reap = fc_reap,
    .destroy = fc_destroy,
};

/* ---- an mp_process started by forkserver ---- */

/* The memfd the process reads at start: this, then the arg bytes. */
typedef struct fs_proc {
  mp__fnref target;
  uint64_t arg_len;
  uint64_t arg_val; /* arg itself when arg_len is 0 */
  int32_t daemon;
  int32_t parent;
  int32_t armed_fd; /* a daemon's: write a byte once armed; -1: none */
  char name[64];
  char ident[80];
} fs_proc;

enum { FS_PROC_ARG_OFF = (sizeof(fs_proc) + 15) & ~(size_t)15 };

pid_t mp__exec_process(const mp__proc_spec *spec) {
  fs_proc h = {.arg_len = spec->arg_len,
               .arg_val = spec->arg_len ? 0 : (uint64_t)(uintptr_t)spec->arg,
               .daemon = spec->daemon,
               .parent = (int32_t)getpid(),
               .armed_fd = -1};
  if (mp__fnref_make((mp__fn)spec->target, &h.target) < 0)
    return MP_EINVAL;
  /* A daemon's parent-death signal follows the starting thread: that
   * thread returns only once the child has armed it (mp__await_armed). */
  int armed[2] = {-1, -1};
  if (spec->daemon) {
    int rc = mp__pipe_reg(armed);
    if (rc < 0)
      return rc;
    h.armed_fd = armed[1];
  }
  snprintf(h.name, sizeof h.name, "%s", spec->name);
  snprintf(h.ident, sizeof h.ident, "%s", spec->ident);
  size_t len = FS_PROC_ARG_OFF + spec->arg_len;
  int memfd = mp__memfd_reg("mpool-process");
  if (memfd < 0) {
    mp__fd_drop(&armed[0]);
    mp__fd_drop(&armed[1]);
    return memfd;
  }
  int rc = ftruncate(memfd, (off_t)len) < 0 ? -errno : 0;
  char *m = rc ? MAP_FAILED
               : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (!rc && m == MAP_FAILED)
    rc = -errno;
  if (!rc) {
    memcpy(m, &h, sizeof h);
    if (spec->arg_len)
      memcpy(m + FS_PROC_ARG_OFF, spec->arg, spec->arg_len);
    munmap(m, len);
  }
  pid_t pid = 0;
  if (!rc) {
    int fds[3], n = 0;
    fds[n++] = memfd;
    if (spec->status_fd >= 0)
      fds[n++] = spec->status_fd;
    if (armed[1] >= 0)
      fds[n++] = armed[1];
    for (int i = 1; i < n; i++) /* ascending, as the child closes others */
      for (int j = i; j > 0 && fds[j] < fds[j - 1]; j--) {
        int t = fds[j];
        fds[j] = fds[j - 1];
        fds[j - 1] = t;
      }
    rc = fs_exec_image("mpool-process", FS_MARK_PROCESS, fds, n, &pid);
  }
  mp__fd_drop(&memfd);
  mp__fd_drop(&armed[1]);
  if (!rc && armed[0] >= 0)
    rc = mp__await_armed(pid, armed[0]);
  mp__fd_drop(&armed[0]);
  return rc < 0 ? rc : pid;
}

/* In the image started with FS_MARK_PROCESS: fds (ascending) hold the
 * spec's memfd (told apart by fstat), the status pipe and a daemon's
 * armed pipe (the one the spec names). */
static _Noreturn void process_main(const int *fds, int nfds) {
  fs_close_others(fds, nfds);
  int memfd = -1, status_fd = -1;
  for (int i = 0; i < nfds; i++) {
    struct stat st;
    if (fstat(fds[i], &st) < 0)
      _exit(127);
    if (!S_ISFIFO(st.st_mode))
      memfd = fds[i];
  }
  struct stat st;
  fs_proc h;
  if (memfd < 0 || fstat(memfd, &st) < 0 ||
      (size_t)st.st_size < FS_PROC_ARG_OFF)
    _exit(127);
  char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, memfd, 0);
  if (m == MAP_FAILED)
    _exit(127);
  memcpy(&h, m, sizeof h);
  h.name[sizeof h.name - 1] = h.ident[sizeof h.ident - 1] = 0;
  int armed_fd = -1;
  for (int i = 0; i < nfds; i++) {
    if (fds[i] == memfd)
      continue;
    if (fds[i] == h.armed_fd)
      armed_fd = fds[i];
    else
      status_fd = fds[i];
  }
  if (h.daemon) {
    /* First, while the starting thread waits for it (mp__await_armed). */
    mp__die_with_parent((pid_t)h.parent);
    char c = 1;
    (void)mp__write_full(armed_fd, &c, 1);
  }
  if (armed_fd >= 0)
    close(armed_fd);
  void *arg = (void *)(uintptr_t)h.arg_val;
  if ((uint64_t)st.st_size != FS_PROC_ARG_OFF + h.arg_len)
    _exit(127);
  if (h.arg_len) {
    if (!(arg = malloc((size_t)h.arg_len)))
      _exit(127);
    memcpy(arg, m + FS_PROC_ARG_OFF, (size_t)h.arg_len);
  }
  munmap(m, (size_t)st.st_size);
  close(memfd);
  mp__fn target;
  if (mp__fnref_resolve(&h.target, &target) < 0)
    _exit(127);
  mp__set_process_name(h.name);
  mp__process_child((mp_target_fn)target, arg, h.ident, status_fd);
}

/* ---- taking control before main ---- */

/*
 * Every program linked with the library runs this before main: it reads
 * the start-method default from the environment (here, before any thread
 * of the program can be changing the environment), and when the program's
 * image was started by the library as a server or a process (argv[1] is
 * a marker no user types: it begins with a control character), runs that
 * and exits, never returning to main. glibc hands constructors argc and
 * argv, in the executable and in shared libraries alike.
 */
__attribute__((constructor)) static void fs_ctor(int argc, char **argv,
                                                 char **envp) {
  size_t n = 0;
  while (envp && envp[n])
    n++;
  if (envp && (start_env = malloc((n + 1) * sizeof *start_env)))
    memcpy(start_env, envp, (n + 1) * sizeof *start_env);
  const char *m = getenv("MPOOL_START_METHOD");
  if (m && strcmp(m, "forkserver") == 0)
    initial_method = MP_START_FORKSERVER;
  const char *pre = getenv("LD_PRELOAD");
  if (pre && strstr(pre, "vgpreload")) {
    ssize_t len = readlink("/proc/self/exe", image_path, sizeof image_path - 1);
    image_path[len > 0 ? len : 0] = 0;
    if (len <= 0)
      snprintf(image_path, sizeof image_path, "/proc/self/exe");
  }
  if (argc < 3 || !argv || !argv[1] || argv[1][0] != '\001')
    return;
  if (strcmp(argv[1], FS_MARK_SERVER) == 0 && argc == 4) {
    int fd = fs_parse_fd(argv[2]), life = fs_parse_fd(argv[3]);
    if (fd < 0 || life < 0 || fd == life)
      _exit(127);
    server_main(fd, life);
  }
  if (strcmp(argv[1], FS_MARK_PROCESS) == 0 && argc <= 5) {
    int fds[3];
    for (int i = 0; i < argc - 2; i++)
      if ((fds[i] = fs_parse_fd(argv[2 + i])) < 0)
        _exit(127);
    process_main(fds, argc - 2);
  }
}
