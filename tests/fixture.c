/* fixture.c: leak checks shared by every test file. */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

int mpt_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

int mpt_has_children(void) {
  int st;
  pid_t r = waitpid(-1, &st, WNOHANG);
  /* r > 0: a zombie (now reaped, but the test still fails); 0: a live child;
   * -1 with ECHILD: none. */
  return !(r < 0 && errno == ECHILD);
}

/* From /proc/<pid>/stat (pid: a number, or "self"): the state letter (R,
 * S, D, Z...) and the parent. Returns 0, or -1 if it cannot be read. */
static int proc_stat(const char *pid, char *state, int *ppid) {
  char path[300], buf[512], *paren;
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  int ok = fgets(buf, sizeof buf, f) && (paren = strrchr(buf, ')')) &&
           sscanf(paren + 1, " %c %d", state, ppid) == 2;
  fclose(f);
  return ok ? 0 : -1;
}

/* Kill and reap every child, so one failed test does not fail the next. */
static void reap_all(void) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char state;
    int ppid;
    if (proc_stat(e->d_name, &state, &ppid) == 0 && ppid == getpid())
      kill(atoi(e->d_name), SIGKILL);
  }
  if (d)
    closedir(d);
  int st;
  while (waitpid(-1, &st, 0) > 0 || errno == EINTR)
    ;
}

static int baseline_fds;

#ifdef SA_RESTORER
#define MPT_SA_RESTORER SA_RESTORER
#else
#define MPT_SA_RESTORER 0x04000000 /* its value on Linux */
#endif

void mpt_sigs_save(mpt_sigs *s) {
  memset(s, 0, sizeof *s);
  for (int i = 1; i < NSIG; i++)
    s->valid[i] = sigaction(i, NULL, &s->sa[i]) == 0;
}

void mpt_sigs_assert_same(const mpt_sigs *s) {
  for (int i = 1; i < NSIG; i++) {
    struct sigaction now;
    if (!s->valid[i] || sigaction(i, NULL, &now) < 0)
      continue;
    assert_ptr_equal(s->sa[i].sa_handler, now.sa_handler);
    assert_int_equal(s->sa[i].sa_flags, now.sa_flags);
  }
}

/* Process-wide state a test may change and must put back: signal
 * dispositions, the signal mask, the child-subreaper flag, ITIMER_REAL. */
static struct {
  mpt_sigs sigs;
  sigset_t mask;
  int subreaper;
} base;

static void save_state(void) {
  mpt_sigs_save(&base.sigs);
  sigprocmask(SIG_SETMASK, NULL, &base.mask);
  base.subreaper = 0;
  prctl(PR_GET_CHILD_SUBREAPER, &base.subreaper);
}

/* Put the saved state back; returns what differed, or NULL. A test that
 * failed midway leaves its changes behind, and the next test must not run
 * with them. */
static const char *restore_state(void) {
  const char *changed = NULL;
  sigset_t all, now;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &now);
  struct itimerval it, off = {{0, 0}, {0, 0}};
  if (getitimer(ITIMER_REAL, &it) == 0 && (it.it_value.tv_sec || it.it_value.tv_usec)) {
    setitimer(ITIMER_REAL, &off, NULL);
    changed = "ITIMER_REAL";
  }
  for (int s = 1; s < NSIG; s++) {
    struct sigaction sa;
    const struct sigaction *was = &base.sigs.sa[s];
    if (!base.sigs.valid[s] || sigaction(s, NULL, &sa) < 0)
      continue;
    /* libc adds SA_RESTORER to any action it installs, a restore too. */
    if (sa.sa_handler == was->sa_handler &&
        ((sa.sa_flags ^ was->sa_flags) & ~MPT_SA_RESTORER) == 0)
      continue;
    /* Ignoring a signal first discards one still pending, which could
     * otherwise kill this process once its default action is back. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(s, &ign, NULL);
    sigaction(s, was, NULL);
    changed = "a signal disposition";
  }
  int sub = 0;
  prctl(PR_GET_CHILD_SUBREAPER, &sub);
  if (sub != base.subreaper) {
    prctl(PR_SET_CHILD_SUBREAPER, base.subreaper);
    changed = "the child-subreaper flag";
  }
  for (int s = 1; s < NSIG; s++)
    if (sigismember(&now, s) != sigismember(&base.mask, s))
      changed = "the signal mask";
  sigprocmask(SIG_SETMASK, &base.mask, NULL);
  return changed;
}

void mpt_filter(int argc, char **argv) {
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
}

/* The test process: set before every test, inherited by forked workers,
 * 0 (its start-up value) in a forkserver worker. */
static pid_t origin_pid;

int mpt_forkserver(void) {
  return mp_get_start_method() == MP_START_FORKSERVER;
}

/* The parent of pid, or -1. */
static pid_t parent_of(pid_t pid) {
  char name[32], state;
  int ppid;
  snprintf(name, sizeof name, "%d", (int)pid);
  return proc_stat(name, &state, &ppid) == 0 ? ppid : -1;
}

int mpt_peer_fd(int fd) {
  if (origin_pid)
    return fd;
  static struct {
    int theirs, ours;
  } cache[16];
  static int ncache;
  for (int i = 0; i < ncache; i++)
    if (cache[i].theirs == fd)
      return cache[i].ours;
  /* A forkserver worker: its parent is the server, the server's is the
   * test process. */
  pid_t test = parent_of(getppid());
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)test, fd);
  int ours = open(path, O_RDWR | O_CLOEXEC);
  if (ours >= 0 && ncache < 16) {
    cache[ncache].theirs = fd;
    cache[ncache++].ours = ours;
  }
  return ours;
}

void mpt_shared_new(mpt_shared *s, size_t len) {
  s->len = len;
  s->fd = memfd_create("mpt-shared", MFD_CLOEXEC);
  assert_true(s->fd >= 0);
  assert_int_equal(ftruncate(s->fd, (off_t)len), 0);
  s->ptr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
  assert_true(s->ptr != MAP_FAILED);
}

void mpt_shared_free(mpt_shared *s) {
  munmap(s->ptr, s->len);
  close(s->fd);
}

void *mpt_shared_ptr(const mpt_shared *s) {
  if (origin_pid)
    return s->ptr;
  static struct {
    int fd;
    void *p;
  } cache[4];
  static int ncache;
  for (int i = 0; i < ncache; i++)
    if (cache[i].fd == s->fd)
      return cache[i].p;
  int fd = mpt_peer_fd(s->fd);
  void *p = fd < 0 ? MAP_FAILED
                   : mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED,
                          fd, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (ncache < 4) {
    cache[ncache].fd = s->fd;
    cache[ncache++].p = p;
  }
  return p;
}

int mpt_setup(void **state) {
  (void)state;
  origin_pid = getpid();
  save_state();
  baseline_fds = mpt_count_fds();
  if (mpt_has_children()) {
    reap_all();
    fail_msg("a child was already running before the test");
  }
  return 0;
}

int mpt_teardown(void **state) {
  (void)state;
  const char *changed = restore_state();
  if (mpt_has_children()) {
    reap_all();
    fail_msg("the test left a child or zombie behind");
  }
  int fds = mpt_count_fds();
  if (fds != baseline_fds)
    fail_msg("open fds: %d before the test, %d after", baseline_fds, fds);
  if (changed)
    fail_msg("the test left %s changed", changed);
  return 0;
}

/* 1 if pid, a child of ours, has exited (not reaped) within ms
 * milliseconds, else 0. A pidfd when the kernel (and valgrind) has one,
 * else its status is polled for the same time. */
static int exited_within(pid_t pid, int ms) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) {
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int r;
    do
      r = poll(&pfd, 1, ms);
    while (r < 0 && errno == EINTR);
    close(pidfd);
    return r == 1;
  }
  double end = mpt_now() + ms / 1e3;
  struct timespec tick = {0, 1000000};
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid)
      return 1;
    if (mpt_now() >= end)
      return 0;
    nanosleep(&tick, NULL);
  }
}

int mpt_reap_within(pid_t pid, int ms, int *status) {
  int done = exited_within(pid, ms);
  if (!done)
    kill(pid, SIGKILL);
  pid_t r;
  while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal(r, pid);
  return done;
}

int mpt_under_tool(void) {
#ifdef __SANITIZE_ADDRESS__
  return 1;
#else
  return getenv("MPOOL_TEST_UNDER_TOOL") != NULL;
#endif
}

mp_pool *mpt_pool(mp_pool_opts opts) {
  mp_pool *p = NULL;
  assert_int_equal(mp_pool_create(&p, &opts), 0);
  assert_non_null(p);
  return p;
}

void mpt_pool_done(mp_pool *p) {
  assert_int_equal(mp_pool_close(p), 0);
  assert_int_equal(mp_pool_join(p), 0);
  mp_pool_free(p);
}

double mpt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

mp_process *mpt_start(mp_target_fn fn, void *arg) {
  mp_process *p = NULL;
  assert_int_equal(mp_process_create(&p, fn, arg, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  return p;
}

int mpt_finish(mp_process *p) {
  int code = -1000;
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_exitcode(p, &code), 0);
  mp_process_free(p);
  return code;
}

int mpt_finish_within(mp_process *p, double max_s) {
  int rc = mp_process_join(p, max_s);
  if (rc == 0)
    return mpt_finish(p);
  assert_int_equal(rc, MP_ETIMEDOUT);
  assert_int_equal(mp_process_kill(p), 0);
  mpt_finish(p);
  return MPT_HUNG;
}

void mpt_write(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, (const char *)buf + off, n - off);
    if (w < 0 && errno == EINTR)
      continue;
    assert_true(w > 0);
    off += (size_t)w;
  }
}

void mpt_read(int fd, void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = read(fd, (char *)buf + off, n - off);
    if (r < 0 && errno == EINTR)
      continue;
    assert_true(r > 0);
    off += (size_t)r;
  }
}

char *mpt_read_all(int fd, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  for (;;) {
    if (cap - n < 1024) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    assert_true(r >= 0);
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = 0;
  if (len)
    *len = n;
  return buf;
}

int mpt_wait_in_futex(pid_t pid, double max_s) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
  double t0 = mpt_now();
  struct timespec tick = {0, 1000000};
  do {
    FILE *f = fopen(path, "r");
    if (!f)
      return -1;
    long nr = -1;
    int got = fscanf(f, "%ld", &nr); /* "running" when it is not in a call */
    fclose(f);
    /* Asleep, not merely preempted inside a futex call (a wake). */
    char id[16], state = 0;
    int ppid;
    snprintf(id, sizeof id, "%d", (int)pid);
    if (got == 1 && nr == SYS_futex && proc_stat(id, &state, &ppid) == 0 &&
        state == 'S')
      return 1;
    nanosleep(&tick, NULL);
  } while (mpt_now() - t0 < max_s);
  return 0;
}

int mpt_pipe_inodes(pid_t pid, unsigned long *ino, int max) {
  char dir[64], path[384], link[128];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ssize_t l = readlink(path, link, sizeof link - 1);
    if (l <= 0)
      continue;
    link[l] = 0;
    unsigned long i;
    if (sscanf(link, "pipe:[%lu]", &i) == 1 && n < max)
      ino[n++] = i;
  }
  if (d)
    closedir(d);
  return n;
}

#if defined(__x86_64__)
#define MPT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MPT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define MPT_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MPT_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define MPT_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__riscv) && __riscv_xlen == 64
#define MPT_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U /* Linux 4.14 */
#endif

int mpt_die_at_futex(void) {
#if defined(MPT_AUDIT_ARCH) && defined(SYS_futex)
  /* Another architecture's futex has another number: let it through. */
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MPT_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof *code, .filter = code};
  struct rlimit nocore = {0, 0};
  setrlimit(RLIMIT_CORE, &nocore); /* SIGSYS dumps core by default */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
    return -errno;
  return 0;
#else
  return -ENOSYS;
#endif
}

int mpt_die_at_futex_works(void) {
  static int known = -1;
  if (known >= 0)
    return known;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0)
    return known = 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    uint32_t word = 0;
    if (mpt_die_at_futex() < 0)
      _exit(2);
    if (write(fds[1], "a", 1) != 1) /* alive after arming */
      _exit(3);
    syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0);
    _exit(4); /* not killed */
  }
  close(fds[1]);
  char c;
  ssize_t r = -1;
  if (pid > 0)
    do
      r = read(fds[0], &c, 1);
    while (r < 0 && errno == EINTR);
  close(fds[0]);
  int st = 0;
  if (pid > 0 && mpt_reap_within(pid, 10000, &st) && r == 1 &&
      WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
    return known = 1;
  return known = 0;
}

int mpt_kill_parent_of(pid_t mid, const pid_t *workers, int n) {
  int st, gone = 0, fds[16];
  /* How long a worker may take to be gone: a bound for hangs, not a
   * timing; a process under valgrind or a sanitizer tears down far more
   * memory than its own, and CI runs two of them at once. */
  int ms = mpt_under_tool() ? 5000 : 1000;
  /* Forkserver workers are not ours (their server is mid's child): watch
   * them through pidfds taken while they still run. */
  for (int i = 0; i < n && i < 16; i++)
    fds[i] = (int)syscall(SYS_pidfd_open, workers[i], 0);
  if (kill(mid, SIGKILL) < 0 || waitpid(mid, &st, 0) != mid) {
    for (int i = 0; i < n && i < 16; i++)
      if (fds[i] >= 0)
        close(fds[i]);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    if (i < 16 && fds[i] >= 0) {
      struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
      int r;
      do
        r = poll(&pfd, 1, ms);
      while (r < 0 && errno == EINTR);
      gone += r == 1;
      if (r != 1)
        syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
      close(fds[i]);
      (void)waitpid(workers[i], &st, 0); /* if it became ours */
    } else if (waitid(P_PID, (id_t)workers[i], &(siginfo_t){0},
                      WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) {
      /* Not ours and no pidfd (valgrind): gone once kill finds no one. */
      double end = mpt_now() + ms / 1000.0;
      while (kill(workers[i], 0) == 0 && mpt_now() < end)
        usleep(1000);
      gone += kill(workers[i], 0) < 0 && errno == ESRCH;
    } else {
      gone += mpt_reap_within(workers[i], ms, &st);
    }
  }
  /* What else became ours when mid died (a fork server) ends with it. */
  double end = mpt_now() + 5;
  pid_t r;
  while ((r = waitpid(-1, &st, WNOHANG)) >= 0 || errno == EINTR) {
    if (r > 0 || errno == EINTR)
      continue;
    if (mpt_now() > end)
      break;
    usleep(1000);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  return gone;
}
