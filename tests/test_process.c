/* test_process.c: mp_process, mp_cpu_count, mp_current_process_name,
 * mp_active_children, mp_parent_process. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }
static int call_exit(void *arg) { exit((int)(intptr_t)arg); }
static int die_by(void *arg) {
  /* The test runner catches some signals; a crash must be a crash. */
  signal((int)(intptr_t)arg, SIG_DFL);
  raise((int)(intptr_t)arg);
  return 0;
}

/* Blocks until its pipe (arg: int[2] from pipe2) is written to or closed
 * by the parent. */
static int wait_on_fd(void *arg) {
  const int *fds = arg;
  char c;
  ssize_t r;
  close(fds[1]);
  do
    r = read(fds[0], &c, 1);
  while (r < 0 && errno == EINTR);
  return 5;
}

/* Writes mp_current_process_name() to the fd in arg. */
static int tell_name(void *arg) {
  const char *n = mp_current_process_name();
  mpt_write((int)(intptr_t)arg, n, strlen(n));
  return 0;
}

static void test_exitcode_from_return(void **state) {
  (void)state;
  mp_process *p;
  assert_int_equal(mp_process_create(&p, ret_arg, (void *)(intptr_t)7, NULL), 0);
  int code = 123;
  assert_int_equal(mp_process_exitcode(p, &code), MP_ESTATE);
  assert_int_equal(code, 123);
  assert_int_equal(mp_process_pid(p), 0);
  assert_int_equal(mp_process_start(p), 0);
  assert_true(mp_process_pid(p) > 0);
  assert_int_not_equal(mp_process_pid(p), getpid());
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_exitcode(p, &code), 0);
  assert_int_equal(code, 7);
  assert_int_equal(mp_process_join(p, -1), 0); /* again: still 0 */
  assert_false(mp_process_is_alive(p));
  mp_process_free(p);
}

static void test_exitcode_zero_is_distinct(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *p;
  assert_int_equal(mp_process_create(&p, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  int code = -77;
  assert_int_equal(mp_process_exitcode(p, &code), MP_ESTATE); /* running */
  assert_int_equal(code, -77);
  assert_true(mp_process_is_alive(p));
  close(fds[1]);
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_exitcode(p, &code), 0);
  assert_int_equal(code, 5);
  close(fds[0]);
  mp_process_free(p);

  assert_int_equal(mp_process_create(&p, ret_arg, (void *)0, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_exitcode(p, &code), 0);
  assert_int_equal(code, 0);
  mp_process_free(p);
}

static void test_exitcode_from_exit_and_signal(void **state) {
  (void)state;
  struct { mp_target_fn fn; intptr_t arg; int want; } cases[] = {
      {call_exit, 3, 3},
      {die_by, SIGSEGV, -SIGSEGV},
      {die_by, SIGABRT, -SIGABRT},
      {die_by, SIGKILL, -SIGKILL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mp_process *p;
    assert_int_equal(mp_process_create(&p, cases[i].fn, (void *)cases[i].arg, NULL), 0);
    assert_int_equal(mp_process_start(p), 0);
    assert_int_equal(mp_process_join(p, -1), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, cases[i].want);
    mp_process_free(p);
  }
}

static void test_misuse(void **state) {
  (void)state;
  mp_process *p = NULL;
  assert_int_equal(mp_process_create(&p, NULL, NULL, NULL), MP_EINVAL);
  assert_null(p);
  assert_int_equal(mp_process_create(NULL, ret_arg, NULL, NULL), MP_EINVAL);
  assert_int_equal(mp_process_create(&p, ret_arg, NULL, NULL), 0);
  assert_int_equal(mp_process_join(p, -1), MP_ESTATE);
  assert_int_equal(mp_process_terminate(p), MP_ESTATE);
  assert_int_equal(mp_process_kill(p), MP_ESTATE);
  assert_false(mp_process_is_alive(p));
  assert_int_equal(mp_process_start(p), 0);
  assert_int_equal(mp_process_start(p), MP_ESTATE);
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_start(p), MP_ESTATE);
  assert_int_equal(mp_process_terminate(p), 0); /* finished: no-op */
  mp_process_free(p);
  mp_process_free(NULL);
  assert_int_equal(mp_process_start(NULL), MP_EINVAL);
  assert_int_equal(mp_process_join(NULL, 0), MP_EINVAL);
  int code;
  assert_int_equal(mp_process_exitcode(NULL, &code), MP_EINVAL);
}

static void test_join_timeout(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *p;
  assert_int_equal(mp_process_create(&p, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  /* The child cannot exit before we write: no race, no sleep. */
  assert_int_equal(mp_process_join(p, 0), MP_ETIMEDOUT);
  assert_int_equal(mp_process_join(p, 0.05), MP_ETIMEDOUT);
  assert_true(mp_process_is_alive(p));
  mpt_write(fds[1], "x", 1);
  assert_int_equal(mp_process_join(p, 30), 0);
  assert_false(mp_process_is_alive(p));
  close(fds[0]);
  close(fds[1]);
  mp_process_free(p);
}

static void test_terminate_and_kill(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *a, *b;
  assert_int_equal(mp_process_create(&a, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_create(&b, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_start(a), 0);
  assert_int_equal(mp_process_start(b), 0);
  assert_int_equal(mp_process_terminate(a), 0);
  assert_int_equal(mp_process_kill(b), 0);
  assert_int_equal(mp_process_join(a, -1), 0);
  assert_int_equal(mp_process_join(b, -1), 0);
  int code;
  assert_int_equal(mp_process_exitcode(a, &code), 0);
  assert_int_equal(code, -SIGTERM);
  assert_int_equal(mp_process_exitcode(b, &code), 0);
  assert_int_equal(code, -SIGKILL);
  mp_process_free(a);
  mp_process_free(b);
  close(fds[0]);
  close(fds[1]);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(mp_current_process_name(), "MainProcess");
  mp_process *a, *b, *c;
  assert_int_equal(mp_process_create(&a, ret_arg, NULL, NULL), 0);
  assert_int_equal(mp_process_create(&b, ret_arg, NULL, NULL), 0);
  assert_int_equal(mp_process_create(&c, ret_arg, NULL, &(mp_process_opts){.name = "worker"}), 0);
  int na, nb;
  assert_int_equal(sscanf(mp_process_name(a), "Process-%d", &na), 1);
  assert_int_equal(sscanf(mp_process_name(b), "Process-%d", &nb), 1);
  assert_int_equal(nb, na + 1);
  assert_string_equal(mp_process_name(c), "worker");
  mp_process_free(a);
  mp_process_free(b);
  mp_process_free(c);

  /* In the child, its own name. */
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  assert_int_equal(mp_process_create(&c, tell_name, (void *)(intptr_t)fds[1], &(mp_process_opts){.name = "reporter"}), 0);
  assert_int_equal(mp_process_start(c), 0);
  assert_int_equal(mp_process_join(c, -1), 0);
  close(fds[1]);
  char *got = mpt_read_all(fds[0], NULL);
  assert_string_equal(got, "reporter");
  free(got);
  close(fds[0]);
  mp_process_free(c);
  assert_string_equal(mp_current_process_name(), "MainProcess");
}

static int nested_names(void *arg) {
  mp_process *p;
  if (mp_process_create(&p, tell_name, arg, NULL) < 0 || mp_process_start(p) < 0)
    return 1;
  mp_process_join(p, -1);
  mp_process_free(p);
  return 0;
}

static void test_nested_name(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *p;
  assert_int_equal(mp_process_create(&p, nested_names, (void *)(intptr_t)fds[1], NULL), 0);
  int n;
  assert_int_equal(sscanf(mp_process_name(p), "Process-%d", &n), 1);
  assert_int_equal(mp_process_start(p), 0);
  assert_int_equal(mp_process_join(p, -1), 0);
  close(fds[1]);
  char *got = mpt_read_all(fds[0], NULL);
  char want[64];
  snprintf(want, sizeof want, "Process-%d:1", n);
  assert_string_equal(got, want);
  free(got);
  close(fds[0]);
  mp_process_free(p);
}

static void test_cpu_count(void **state) {
  (void)state;
  cpu_set_t set, one;
  assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
  assert_int_equal(mp_cpu_count(), CPU_COUNT(&set));
  /* Pinned to one CPU, it says 1 however many are online. */
  int first = -1;
  for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
    if (CPU_ISSET(i, &set))
      first = i;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
  int n = mp_cpu_count();
  assert_int_equal(sched_setaffinity(0, sizeof set, &set), 0);
  assert_int_equal(n, 1);
}

static int say_child(void *arg) {
  (void)arg;
  printf("child\n");
  return 0;
}

/* In a fresh process whose stdout is fd out: buffered output before a fork
 * must appear once, the child's once. */
static void print_around_child(int out) {
  dup2(out, STDOUT_FILENO);
  printf("before\n"); /* buffered: stdout is a file or pipe */
  mp_process *p;
  if (mp_process_create(&p, say_child, NULL, NULL) < 0 || mp_process_start(p) < 0)
    _exit(1);
  mp_process_join(p, -1);
  mp_process_free(p);
  printf("after\n");
  exit(0);
}

/* Run body(fd) in a forked child (body ends it), fd being a pipe or, with
 * to_file, an unlinked temporary file. Fails the test unless the child
 * exits 0; returns what it wrote, malloc'd. */
static char *child_output(void (*body)(int fd), int to_file) {
  int fds[2];
  if (to_file) {
    char path[] = "/tmp/mpool-out-XXXXXX";
    fds[0] = fds[1] = mkostemp(path, O_CLOEXEC);
    assert_true(fds[0] >= 0);
    unlink(path);
  } else {
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (!to_file)
      close(fds[0]);
    body(fds[1]);
  }
  if (!to_file)
    close(fds[1]);
  int st;
  char *got;
  if (to_file) { /* the child's whole output is there once it has exited */
    assert_int_equal(waitpid(pid, &st, 0), pid);
    lseek(fds[0], 0, SEEK_SET);
    got = mpt_read_all(fds[0], NULL);
  } else { /* read first: a full pipe would block the child */
    got = mpt_read_all(fds[0], NULL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
  }
  close(fds[0]);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return got;
}

static void test_output_once_file(void **state) {
  (void)state;
  char *got = child_output(print_around_child, 1);
  assert_string_equal(got, "before\nchild\nafter\n");
  free(got);
}

static void test_output_once_pipe(void **state) {
  (void)state;
  char *got = child_output(print_around_child, 0);
  assert_string_equal(got, "before\nchild\nafter\n");
  free(got);
}

static int atexit_fd = -1;
static void atexit_handler(void) {
  if (atexit_fd >= 0)
    (void)!write(atexit_fd, "atexit\n", 7);
}

/* Registers an atexit handler that writes to out, then runs a process. */
static void atexit_then_process(int out) {
  atexit_fd = out;
  atexit(atexit_handler);
  mp_process *p;
  if (mp_process_create(&p, ret_arg, NULL, NULL) < 0 || mp_process_start(p) < 0)
    _exit(1);
  mp_process_join(p, -1);
  int code = -1;
  mp_process_exitcode(p, &code);
  mp_process_free(p);
  _exit(code == 0 ? 0 : 2); /* our own atexit must not run either */
}

static void test_atexit_not_in_child(void **state) {
  (void)state;
  char *got = child_output(atexit_then_process, 0);
  assert_string_equal(got, "");
  free(got);
}

static int block_forever(void *arg) {
  (void)arg;
  for (;;)
    pause();
  return 0;
}

static void test_daemon_dies_with_parent(void **state) {
  (void)state;
  /* Orphans are re-parented to us, so we can wait for the daemon. */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  pid_t mid = fork();
  if (mid == 0) {
    mp_process *d;
    if (mp_process_create(&d, block_forever, NULL, &(mp_process_opts){.daemon = 1}) < 0 ||
        mp_process_start(d) < 0)
      _exit(1);
    pid_t dp = mp_process_pid(d);
    mpt_write(fds[1], &dp, sizeof dp);
    block_forever(NULL);
  }
  close(fds[1]);
  pid_t daemon_pid;
  mpt_read(fds[0], &daemon_pid, sizeof daemon_pid);
  close(fds[0]);
  assert_int_equal(kill(mid, SIGKILL), 0);
  int st;
  assert_int_equal(waitpid(mid, &st, 0), mid);
  /* The daemon must be gone within a second of its parent's death. */
  int r = mpt_reap_within(daemon_pid, 1000, &st);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  assert_int_equal(r, 1);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* A daemon started on a thread that exits at once, many times over: it
 * dies with that thread every time, under both start methods (it once
 * armed its parent-death signal after the thread was gone, and lived). */
typedef struct started {
  int method;
  mp_process *p;
} started;

static void *start_daemon_and_exit(void *arg) {
  started *st = arg;
  mp_process *p = NULL;
  if (mp_process_create(&p, block_forever, NULL,
                        &(mp_process_opts){.daemon = 1,
                                           .start_method = st->method}) < 0)
    return NULL;
  if (mp_process_start(p) < 0) {
    mp_process_free(p);
    return NULL;
  }
  st->p = p;
  return NULL;
}

static void test_daemon_dies_with_starting_thread(void **state) {
  (void)state;
  enum { ROUNDS = 10 };
  const int methods[] = {MP_START_FORK, MP_START_FORKSERVER};
  for (int m = 0; m < 2; m++) {
    for (int k = 0; k < ROUNDS; k++) {
      started st = {.method = methods[m]};
      pthread_t th;
      assert_int_equal(pthread_create(&th, NULL, start_daemon_and_exit, &st),
                       0);
      pthread_join(th, NULL);
      assert_non_null(st.p);
      int joined = mp_process_join(st.p, 10.0), code = 0;
      if (joined == MP_ETIMEDOUT) { /* it outlived the thread: end it */
        mp_process_kill(st.p);
        mp_process_join(st.p, -1);
      }
      assert_int_equal(mp_process_exitcode(st.p, &code), 0);
      mp_process_free(st.p);
      assert_int_equal(joined, 0); /* method m, round k */
      assert_int_equal(code, -SIGKILL);
    }
  }
}

static void test_free_running(void **state) {
  (void)state;
  /* A daemon still running is terminated by free. */
  mp_process *d;
  assert_int_equal(mp_process_create(&d, block_forever, NULL, &(mp_process_opts){.daemon = 1}), 0);
  assert_int_equal(mp_process_start(d), 0);
  mp_process_free(d);
  /* A non-daemon is waited for: it finishes once its pipe closes. */
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *p;
  assert_int_equal(mp_process_create(&p, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  close(fds[1]);
  mp_process_free(p);
  close(fds[0]);
  /* The fixture checks neither left a child or zombie. */
}

static void test_no_disposition_changed_and_cloexec(void **state) {
  (void)state;
  mpt_sigs before;
  mpt_sigs_save(&before); /* the mask is compared by the teardown */
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  static char open_before[1024];
  for (int fd = 0; fd < 1024; fd++)
    open_before[fd] = fcntl(fd, F_GETFD) >= 0;
  mp_process *p;
  assert_int_equal(mp_process_create(&p, wait_on_fd, fds, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  /* Every fd the library opened is close-on-exec. */
  int opened = 0;
  for (int fd = 0; fd < 1024; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !open_before[fd]) {
      opened++;
      assert_true(fl & FD_CLOEXEC);
    }
  }
  assert_true(opened > 0);
  close(fds[1]);
  assert_int_equal(mp_process_join(p, -1), 0);
  mp_process_free(p);
  close(fds[0]);
  mpt_sigs_assert_same(&before);
}

static void test_sigchld_ignored(void **state) {
  (void)state;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGCHLD, &ign, &old);
  mp_process *p, *q;
  assert_int_equal(mp_process_create(&p, ret_arg, (void *)(intptr_t)9, NULL), 0);
  assert_int_equal(mp_process_create(&q, call_exit, (void *)(intptr_t)4, NULL), 0);
  assert_int_equal(mp_process_start(p), 0);
  assert_int_equal(mp_process_start(q), 0);
  assert_int_equal(mp_process_join(p, -1), 0);
  assert_int_equal(mp_process_join(q, -1), 0);
  sigaction(SIGCHLD, &old, NULL);
  int code;
  assert_int_equal(mp_process_exitcode(p, &code), 0);
  assert_int_equal(code, 9);
  assert_int_equal(mp_process_exitcode(q, &code), 0);
  assert_int_equal(code, 4);
  mp_process_free(p);
  mp_process_free(q);
}

/* gate[0]: the grandchild waits on it; rep[1]: the target reports the
 * grandchild's pid there; how: 0 to return 7, else the signal to die by. */
typedef struct fork_then_end {
  int gate[2], rep[2], how;
} fork_then_end;

/* Forks a grandchild that holds every fd the target has (its status pipe
 * among them) until the gate opens, then returns 7 or dies by a signal. */
static int fork_then_end_fn(void *arg) {
  const fork_then_end *f = arg;
  pid_t g = fork();
  if (g == 0) {
    char c;
    close(f->gate[1]);
    while (read(f->gate[0], &c, 1) < 0 && errno == EINTR)
      ;
    _exit(0);
  }
  mpt_write(f->rep[1], &g, sizeof g);
  return f->how ? die_by((void *)(intptr_t)f->how) : 7;
}

/* With SIGCHLD ignored (a status pipe carries the code) a grandchild that
 * holds that pipe open does not delay join: the target's end is seen when
 * it ends, by return or by signal, with or without a pidfd (valgrind). */
static void test_grandchild_holds_status_pipe(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int hows[] = {0, SIGKILL}, want[] = {7, -SIGKILL};
  for (int k = 0; k < 2; k++) {
    fork_then_end f = {.how = hows[k]};
    assert_int_equal(pipe2(f.gate, O_CLOEXEC), 0);
    assert_int_equal(pipe2(f.rep, O_CLOEXEC), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    mp_process *p;
    assert_int_equal(mp_process_create(&p, fork_then_end_fn, &f, NULL), 0);
    assert_int_equal(mp_process_start(p), 0);
    pid_t g;
    mpt_read(f.rep[0], &g, sizeof g);
    /* The gate is still shut: the grandchild holds the pipe meanwhile. */
    assert_int_equal(mp_process_join(p, 30), 0);
    int code;
    assert_int_equal(mp_process_exitcode(p, &code), 0);
    assert_int_equal(code, want[k]);
    mp_process_free(p);
    sigaction(SIGCHLD, &old, NULL);
    /* Let the grandchild go and reap it (it was re-parented to us). */
    close(f.gate[1]);
    int ws;
    assert_int_equal(waitpid(g, &ws, 0), g);
    close(f.gate[0]);
    close(f.rep[0]);
    close(f.rep[1]);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* ---- active_children and parent_process ---- */

/* Block until pid, a child, has exited, without reaping it. */
static void wait_exited_unreaped(pid_t pid) {
  siginfo_t si;
  int r;
  do
    r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
  while (r < 0 && errno == EINTR);
  assert_int_equal(r, 0);
}

static int is_reaped(pid_t pid) {
  siginfo_t si;
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
         errno == ECHILD;
}

/* Child: reports what it sees as active children (none of its parent's)
 * and its parent. Exit code: 0 when all is as Python would say. */
static int report_parent(void *arg) {
  pid_t want = (pid_t)(intptr_t)arg;
  const char *name = "x";
  if (mp_active_children(NULL, 0) != 0)
    return 1;
  if (mp_parent_process(&name) != want || getppid() != want)
    return 2;
  if (!name || strcmp(name, "MainProcess") != 0)
    return 3;
  /* A grandchild's parent is this process, by its name. */
  mp_process *g;
  if (mp_process_create(&g, ret_arg, (void *)0, NULL) < 0 ||
      mp_process_start(g) < 0)
    return 4;
  mp_process *list[2];
  int n = mp_active_children(list, 2);
  if (n > 1 || (n == 1 && list[0] != g))
    return 5;
  mp_process_join(g, -1);
  int code = -1;
  mp_process_exitcode(g, &code);
  mp_process_free(g);
  return code == 0 && mp_active_children(NULL, 0) == 0 ? 0 : 6;
}

static void test_parent_process(void **state) {
  (void)state;
  const char *name = "x";
  assert_int_equal(mp_parent_process(&name), 0);
  assert_null(name);
  assert_int_equal(mp_parent_process(NULL), 0);
  assert_int_equal(mpt_finish(mpt_start(report_parent,
                                        (void *)(intptr_t)getpid())),
                   0);
}

static int apply_parent(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  const char *name = NULL;
  pid_t pid = mp_parent_process(&name);
  if (!name)
    return 1;
  mp_buf_append(res, &pid, sizeof pid);
  return mp_buf_append(res, name, strlen(name) + 1);
}

static void test_parent_process_in_worker(void **state) {
  (void)state;
  mp_pool *pool = mpt_pool((mp_pool_opts){.processes = 1});
  void *res = NULL;
  size_t len = 0;
  assert_int_equal(mp_pool_apply(pool, apply_parent, NULL, 0, &res, &len,
                                 NULL), 0);
  pid_t pid;
  assert_true(len > sizeof pid);
  memcpy(&pid, res, sizeof pid);
  assert_int_equal(pid, getpid());
  assert_string_equal((char *)res + sizeof pid, "MainProcess");
  free(res);
  mpt_pool_done(pool);
  /* Pool workers are the pool's: never active children. */
  assert_int_equal(mp_active_children(NULL, 0), 0);
}

enum { NKIDS = 6 };

static void test_active_children(void **state) {
  (void)state;
  assert_int_equal(mp_active_children(NULL, 1), MP_EINVAL);
  assert_int_equal(mp_active_children(NULL, -1), MP_EINVAL);
  assert_int_equal(mp_active_children(NULL, 0), 0);
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_process *p[NKIDS], *list[NKIDS + 1];
  for (int i = 0; i < NKIDS; i++)
    p[i] = mpt_start(wait_on_fd, fds);
  mp_process *unstarted;
  assert_int_equal(mp_process_create(&unstarted, ret_arg, NULL, NULL), 0);
  assert_int_equal(mp_active_children(list, NKIDS + 1), NKIDS);
  for (int i = 0; i < NKIDS; i++)
    assert_ptr_equal(list[i], p[NKIDS - 1 - i]); /* newest first */
  /* Fewer slots than children: the count, and the first ones. */
  list[1] = NULL;
  assert_int_equal(mp_active_children(list, 1), NKIDS);
  assert_ptr_equal(list[0], p[NKIDS - 1]);
  assert_null(list[1]);

  /* Random kills: each dead child leaves the list, reaped by it. */
  srand((unsigned)getpid());
  int alive[NKIDS], left = NKIDS;
  for (int i = 0; i < NKIDS; i++)
    alive[i] = 1;
  for (int round = 0; round < 3; round++) {
    int k;
    do
      k = rand() % NKIDS;
    while (!alive[k]);
    pid_t pid = mp_process_pid(p[k]);
    assert_int_equal(mp_process_kill(p[k]), 0);
    wait_exited_unreaped(pid);
    alive[k] = 0;
    left--;
    assert_int_equal(mp_active_children(list, NKIDS), left);
    for (int i = 0; i < left; i++)
      assert_ptr_not_equal(list[i], p[k]);
    assert_true(is_reaped(pid));
    int code;
    assert_int_equal(mp_process_exitcode(p[k], &code), 0);
    assert_int_equal(code, -SIGKILL);
  }
  /* A freed handle leaves the list at once. */
  for (int i = 0; i < NKIDS; i++)
    if (!alive[i]) {
      mp_process_free(p[i]);
      p[i] = NULL;
    }
  close(fds[1]);
  close(fds[0]);
  for (int i = 0; i < NKIDS; i++)
    if (p[i])
      assert_int_equal(mpt_finish(p[i]), 5);
  assert_int_equal(mp_active_children(list, NKIDS), 0);
  mp_process_free(unstarted);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_exitcode_from_return),
      MPT_TEST(test_exitcode_zero_is_distinct),
      MPT_TEST(test_exitcode_from_exit_and_signal),
      MPT_TEST(test_misuse),
      MPT_TEST(test_join_timeout),
      MPT_TEST(test_terminate_and_kill),
      MPT_TEST(test_names),
      MPT_TEST(test_nested_name),
      MPT_TEST(test_cpu_count),
      MPT_TEST(test_output_once_file),
      MPT_TEST(test_output_once_pipe),
      MPT_TEST(test_atexit_not_in_child),
      MPT_TEST(test_daemon_dies_with_parent),
      MPT_TEST(test_daemon_dies_with_starting_thread),
      MPT_TEST(test_free_running),
      MPT_TEST(test_no_disposition_changed_and_cloexec),
      MPT_TEST(test_sigchld_ignored),
      MPT_TEST(test_grandchild_holds_status_pipe),
      MPT_TEST(test_parent_process),
      MPT_TEST(test_parent_process_in_worker),
      MPT_TEST(test_active_children),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
