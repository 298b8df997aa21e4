/* fixture.c: leak checks shared by every test file. */
#define _GNU_SOURCE
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Kill and reap every child, so one failed test does not fail the next. */
static void reap_all(void) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    int pid, ppid;
    char *close_paren;
    if (fgets(buf, sizeof buf, f) && (close_paren = strrchr(buf, ')')) &&
        sscanf(buf, "%d", &pid) == 1 &&
        sscanf(close_paren + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
      kill(pid, SIGKILL);
    fclose(f);
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

/* Process-wide state a test may change and must put back: signal
 * dispositions, the signal mask, the child-subreaper flag, ITIMER_REAL. */
static struct {
  struct sigaction sa[NSIG];
  int valid[NSIG];
  sigset_t mask;
  int subreaper;
} base;

static void save_state(void) {
  for (int s = 1; s < NSIG; s++)
    base.valid[s] = sigaction(s, NULL, &base.sa[s]) == 0;
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
    if (!base.valid[s] || sigaction(s, NULL, &sa) < 0)
      continue;
    /* libc adds SA_RESTORER to any action it installs, a restore too. */
    if (sa.sa_handler == base.sa[s].sa_handler &&
        ((sa.sa_flags ^ base.sa[s].sa_flags) & ~MPT_SA_RESTORER) == 0)
      continue;
    /* Ignoring a signal first discards one still pending, which could
     * otherwise kill this process once its default action is back. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(s, &ign, NULL);
    sigaction(s, &base.sa[s], NULL);
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

int mpt_setup(void **state) {
  (void)state;
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

int mpt_exited_within(pid_t pid, int ms) {
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
  struct timespec t0, t, tick = {0, 1000000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid)
      return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L >= ms)
      return 0;
    nanosleep(&tick, NULL);
  }
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

/* The state letter of pid (R, S, D, Z...), or 0. */
static char proc_state(pid_t pid) {
  char path[64], buf[512], *paren;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  char st = 0;
  if (fgets(buf, sizeof buf, f) && (paren = strrchr(buf, ')')) && paren[1] == ' ')
    st = paren[2];
  fclose(f);
  return st;
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
    if (got == 1 && nr == SYS_futex && proc_state(pid) == 'S')
      return 1;
    nanosleep(&tick, NULL);
  } while (mpt_now() - t0 < max_s);
  return 0;
}
