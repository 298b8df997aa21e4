/* test_faults.c: tasks that crash, hang or break the protocol never hang the
 * pool or lose another item's result. Run with the argument "stress" for the
 * 100,000-task stress test. */
#include "fixture.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { OK, SEGV, ABRT, EXIT3, HANG, REPORT_HANG, GARBAGE, FAIL, PRINT,
            FORK_ABRT };

typedef struct item {
  int kind;
  int value;
  int fd; /* REPORT_HANG: where to write the worker's pid */
  int arg;
} item;

static void hang(void) {
  for (;;)
    pause();
}

static void crash(int sig) {
  /* The test runner catches some signals; a crash must be a crash. */
  signal(sig, SIG_DFL);
  raise(sig);
}

static int fault_task(const void *in, void *out) {
  const item *it = in;
  switch (it->kind) {
  case SEGV:
    crash(SIGSEGV);
    break;
  case ABRT:
    crash(SIGABRT);
    break;
  case EXIT3:
    _exit(3);
  case HANG:
    hang();
    break;
  case REPORT_HANG: {
    pid_t me = getpid();
    (void)!write(mpt_peer_fd(it->fd), &me, sizeof me);
    hang();
    break;
  }
  case GARBAGE: {
    /* Bytes in the result stream that are not a valid frame. */
    mp__frame_hdr h;
    memset(&h, 0xab, sizeof h);
    if (it->arg == 1) /* right magic, unknown task id */
      mp__frame_init(&h, MP__FR_MAP_RES, 999999, 8);
    if (it->arg == 2) /* right magic, absurd length */
      mp__frame_init(&h, MP__FR_MAP_RES, 1, 0x7fffffff);
    (void)mp__worker_inject(&h, sizeof h);
    hang();
    break;
  }
  case FAIL:
    return it->arg;
  case PRINT:
    printf("item %d\n", it->value);
    break;
  case FORK_ABRT: {
    /* A raw fork: the grandchild holds the worker's pipes, waits on fd. */
    int gate = mpt_peer_fd(it->fd);
    pid_t g = fork();
    if (g == 0) {
      char c;
      while (read(gate, &c, 1) < 0 && errno == EINTR)
        ;
      _exit(0);
    }
    (void)!write(mpt_peer_fd(it->arg), &g, sizeof g); /* tell the test who to wait for */
    crash(SIGABRT);
    break;
  }
  default:
    break;
  }
  *(int *)out = it->value * 2;
  return 0;
}

static item *items(int n) {
  item *v = calloc((size_t)n, sizeof *v);
  for (int i = 0; i < n; i++)
    v[i] = (item){.kind = OK, .value = i + 1};
  return v;
}

/* A plain map still works on this pool. */
static void assert_pool_works(mp_pool *p) {
  enum { N = 500 };
  item *in = items(N);
  int out[N];
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out, NULL), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 2 * (i + 1));
  free(in);
}

static void assert_others_ok(const item *in, const int *out, const mp_status *st, int n) {
  for (int i = 0; i < n; i++)
    if (in[i].kind == OK) {
      assert_int_equal(st[i].code, 0);
      assert_int_equal(out[i], 2 * in[i].value);
    }
}

static void test_crashes_fail_alone(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  pid_t before[2], after[2];
  mp_pool_worker_pids(p, before, 2);
  enum { N = 40 };
  item *in = items(N);
  in[5].kind = SEGV;
  in[15].kind = ABRT;
  in[25].kind = EXIT3;
  int out[N];
  mp_status st[N];
  int rc = mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st});
  assert_int_equal(rc, MP_ECRASHED); /* the lowest-indexed failure */
  assert_int_equal(st[5].code, MP_ECRASHED);
  assert_int_equal(st[5].detail, -SIGSEGV);
  assert_int_equal(st[15].code, MP_ECRASHED);
  assert_int_equal(st[15].detail, -SIGABRT);
  assert_int_equal(st[25].code, MP_ECRASHED);
  assert_int_equal(st[25].detail, 3);
  assert_others_ok(in, out, st, N);
  /* Crashed workers were replaced: three deaths, two slots. */
  mp_pool_worker_pids(p, after, 2);
  assert_true(after[0] > 0 && after[1] > 0);
  assert_false(after[0] == before[0] && after[1] == before[1]);
  assert_pool_works(p);
  free(in);
  mpt_pool_done(p);
}

static void test_killed_from_outside(void **state) {
  (void)state;
  int rep[2];
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  enum { N = 30 };
  item *in = items(N);
  in[3] = (item){.kind = REPORT_HANG, .value = 4, .fd = rep[1]};
  int out[N];
  mp_status st[N];
  mp_result *r;
  assert_int_equal(mp_pool_map_async(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                                     &(mp_map_async_opts){.map = {.status = st, .chunksize = 1}}, &r), 0);
  pid_t victim;
  /* The worker is running item 3 once its pid arrives; the library only
   * makes progress inside its calls, so drive it while we wait. */
  while (mp_result_wait(r, 0) == MP_ETIMEDOUT) {
    struct pollfd pfd = {.fd = rep[0], .events = POLLIN};
    if (poll(&pfd, 1, 10) == 1)
      break;
  }
  mpt_read(rep[0], &victim, sizeof victim);
  assert_int_equal(kill(victim, SIGKILL), 0);
  assert_int_equal(mp_result_get(r, -1, NULL, NULL, NULL), MP_ECRASHED);
  assert_int_equal(st[3].code, MP_ECRASHED);
  assert_int_equal(st[3].detail, -SIGKILL);
  assert_others_ok(in, out, st, N);
  mp_result_free(r);
  assert_pool_works(p);
  free(in);
  mpt_pool_done(p);
  close(rep[0]);
  close(rep[1]);
}

static void test_task_timeout(void **state) {
  (void)state;
  /* Long enough that no quick item, preempted on a loaded machine, is
   * judged overdue: only the hung one waits it out. */
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .task_timeout = 1});
  enum { N = 20 };
  item *in = items(N);
  in[7].kind = HANG;
  int out[N];
  mp_status st[N];
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st}), MP_ETIMEDOUT);
  assert_int_equal(st[7].code, MP_ETIMEDOUT);
  assert_others_ok(in, out, st, N);
  assert_pool_works(p);
  free(in);
  mpt_pool_done(p);
}

static int apply_hang(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  (void)res;
  hang();
  return 0;
}

static void test_apply_timeout(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1, .task_timeout = 1});
  void *res;
  size_t len;
  mp_status st;
  assert_int_equal(mp_pool_apply(p, apply_hang, NULL, 0, &res, &len, &st), MP_ETIMEDOUT);
  assert_int_equal(st.code, MP_ETIMEDOUT);
  assert_null(res);
  assert_pool_works(p);
  mpt_pool_done(p);
}

static void test_task_failure_code(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  enum { N = 10 };
  item *in = items(N);
  in[6] = (item){.kind = FAIL, .arg = -77};
  int out[N];
  mp_status st[N];
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st}), MP_ETASK);
  assert_int_equal(st[6].code, MP_ETASK);
  assert_int_equal(st[6].detail, -77);
  assert_others_ok(in, out, st, N);
  free(in);
  mpt_pool_done(p);
}

static void init_crash(void *arg) {
  (void)arg;
  crash(SIGSEGV);
}

/* Crashes the first time any worker runs it (a counter in shared memory). */
static void init_crash_once(void *arg) {
  mpt_shared sh;
  memcpy(&sh, arg, sizeof sh);
  int *count = mpt_shared_ptr(&sh);
  if (count && __atomic_fetch_add(count, 1, __ATOMIC_SEQ_CST) == 0)
    crash(SIGSEGV);
}

static void test_initializer_always_crashes(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .initializer = init_crash});
  enum { N = 10 };
  item *in = items(N);
  int out[N];
  mp_status st[N];
  /* The pool gives up instead of replacing workers forever. */
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st}), MP_ECRASHED);
  for (int i = 0; i < N; i++) {
    assert_int_equal(st[i].code, MP_ECRASHED);
    assert_int_equal(st[i].detail, -SIGSEGV);
  }
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out, NULL),
                   MP_ECLOSED);
  assert_int_equal(mp_pool_close(p), MP_ESTATE); /* it terminated itself */
  assert_int_equal(mp_pool_join(p), 0);
  mp_pool_free(p);
  free(in);
}

static void test_initializer_crashes_once(void **state) {
  (void)state;
  static mpt_shared sh;
  mpt_shared_new(&sh, 4096);
  int *count = sh.ptr;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .initializer = init_crash_once,
                                        .initarg = &sh, .initarg_len = sizeof sh});
  assert_pool_works(p);
  mpt_pool_done(p);
  assert_true(*count >= 3); /* two workers and the one replacement */
  mpt_shared_free(&sh);
}

static void test_huge_timeout_means_none(void **state) {
  (void)state;
  double limits[] = {INFINITY, 1e12, 1e9 + 1};
  for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .task_timeout = limits[k]});
    assert_pool_works(p); /* no item killed as overdue */
    mpt_pool_done(p);
  }
  mp_pool *p = NULL;
  assert_int_equal(mp_pool_create(&p, &(mp_pool_opts){.task_timeout = NAN}), MP_EINVAL);
  assert_null(p);
}

/* Every worker dies flushing a task's output into a closed pipe (SIGPIPE):
 * each death is charged to the item that printed, and the map ends. */
static void test_death_in_flush_is_charged(void **state) {
  (void)state;
  pid_t kid = fork();
  if (kid == 0) {
    /* The pipe is made here, so no other process can hold its reader. */
    int out[2];
    signal(SIGPIPE, SIG_DFL);
    if (pipe2(out, O_CLOEXEC) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
      _exit(12);
    close(out[0]);
    close(out[1]); /* no reader left: a flush raises SIGPIPE */
    mp_pool *p;
    if (mp_pool_create(&p, &(mp_pool_opts){.processes = 2}) < 0)
      _exit(10);
    enum { N = 12 };
    item *in = items(N);
    for (int i = 0; i < N; i++)
      in[i].kind = PRINT;
    int res[N];
    mp_status st[N];
    int rc = mp_pool_map(p, fault_task, in, N, sizeof *in, res, sizeof *res,
                         &(mp_map_opts){.status = st});
    int wrong = 0;
    for (int i = 0; i < N; i++) {
      if (st[i].code == MP_ECRASHED && st[i].detail == -SIGPIPE)
        continue;
      wrong++;
      fprintf(stderr, "item %d: %s, detail %d\n", i, mp_err_name(st[i].code),
              st[i].detail);
    }
    if (rc != MP_ECRASHED)
      fprintf(stderr, "map: %s\n", mp_err_name(rc));
    mp_pool_free(p);
    _exit(rc == MP_ECRASHED && !wrong ? 0 : 11);
  }
  /* A map that forked replacements forever would never let it exit. */
  int st;
  assert_true(mpt_reap_within(kid, 20000, &st));
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* A task forks a child, then crashes: the crash is seen at once, not when
 * the grandchild exits (the child drops the worker's pipes at fork). */
static void test_grandchild_holding_pipes(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int gate[2], rep[2];
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  enum { N = 4 };
  item *in = items(N);
  in[1] = (item){.kind = FORK_ABRT, .value = 2, .fd = gate[0], .arg = rep[1]};
  int out[N];
  mp_status st[N];
  int rc = mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st, .chunksize = 1});
  /* The grandchild is still blocked on the gate here: let it go, reap it
   * (it was re-parented to us). */
  pid_t g;
  mpt_read(rep[0], &g, sizeof g);
  mpt_write(gate[1], "x", 1);
  int ws;
  assert_int_equal(waitpid(g, &ws, 0), g);
  close(gate[0]);
  close(gate[1]);
  close(rep[0]);
  close(rep[1]);
  mpt_pool_done(p);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  free(in);
  assert_int_equal(rc, MP_ECRASHED);
  assert_int_equal(st[1].code, MP_ECRASHED);
  assert_int_equal(st[1].detail, -SIGABRT);
  assert_int_equal(st[0].code, 0);
  assert_int_equal(st[2].code, 0);
}

static void test_no_orphans(void **state) {
  (void)state;
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int rep[2];
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  pid_t mid = fork();
  if (mid == 0) {
    mp_pool *p;
    if (mp_pool_create(&p, &(mp_pool_opts){.processes = 2}) < 0)
      _exit(1);
    static item in[4] = {{.kind = HANG}, {.kind = HANG}, {.kind = HANG}, {.kind = HANG}};
    static int out[4];
    mp_result *r;
    if (mp_pool_map_async(p, fault_task, in, 4, sizeof *in, out, sizeof *out, NULL, &r) < 0)
      _exit(1);
    pid_t pids[2];
    mp_pool_worker_pids(p, pids, 2);
    mpt_write(rep[1], pids, sizeof pids);
    mp_result_wait(r, -1); /* mid-map, forever */
    _exit(1);
  }
  pid_t workers[2];
  mpt_read(rep[0], workers, sizeof workers);
  int gone = mpt_kill_parent_of(mid, workers, 2);
  close(rep[0]);
  close(rep[1]);
  assert_int_equal(gone, 2);
}

static void test_protocol_violation(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  for (int variant = 0; variant < 3; variant++) {
    enum { N = 20 };
    item *in = items(N);
    in[4] = (item){.kind = GARBAGE, .arg = variant};
    int out[N];
    mp_status st[N];
    memset(st, 0x55, sizeof st);
    assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                                 &(mp_map_opts){.status = st, .chunksize = 1}), MP_EPROTO);
    assert_int_equal(st[4].code, MP_EPROTO);
    assert_others_ok(in, out, st, N);
    free(in);
  }
  assert_pool_works(p);
  mpt_pool_done(p);
}

/* ---- signals ---- */

static volatile sig_atomic_t g_sigs;
static void count_signal(int sig) {
  (void)sig;
  g_sigs++;
}

/* A mixed workload: crashes, a task failure, imap. */
static void mixed_workload(mp_pool *p, int expect_status_known) {
  int N = mpt_under_tool() ? 2000 : 20000;
  item *in = items(N);
  in[100].kind = SEGV;
  in[N / 2].kind = EXIT3;
  in[N - 5] = (item){.kind = FAIL, .arg = 5};
  int *out = malloc(N * sizeof *out);
  mp_status *st = malloc(N * sizeof *st);
  assert_int_equal(mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st}), MP_ECRASHED);
  assert_int_equal(st[100].code, MP_ECRASHED);
  assert_int_equal(st[N / 2].code, MP_ECRASHED);
  if (expect_status_known) {
    assert_int_equal(st[100].detail, -SIGSEGV);
    assert_int_equal(st[N / 2].detail, 3);
  }
  assert_int_equal(st[N - 5].code, MP_ETASK);
  assert_others_ok(in, out, st, N);
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, fault_task, in, 1000, sizeof *in, sizeof(int), NULL, &it), 0);
  for (int i = 0; i < 1000; i++) {
    int y;
    size_t idx;
    int rc = mp_iter_next(it, &y, &idx, NULL, -1);
    assert_int_equal(idx, (size_t)i);
    if (i == 100)
      assert_int_equal(rc, MP_ECRASHED);
    else
      assert_int_equal(y, 2 * (i + 1));
  }
  mp_iter_free(it);
  free(in);
  free(out);
  free(st);
}

static void test_app_sigchld_handler(void **state) {
  (void)state;
  struct sigaction sa = {.sa_handler = count_signal}, old;
  sigaction(SIGCHLD, &sa, &old);
  mpt_sigs before;
  mpt_sigs_save(&before);
  g_sigs = 0;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  mixed_workload(p, 1);
  mpt_pool_done(p);
  mpt_sigs_assert_same(&before);
  sigaction(SIGCHLD, &old, NULL);
  assert_true(g_sigs > 0); /* the application's handler saw the deaths */
}

static void test_sigchld_ignored(void **state) {
  (void)state;
  struct sigaction sa = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGCHLD, &sa, &old);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .maxtasksperchild = 3});
  mixed_workload(p, 0); /* the kernel keeps no status to report */
  mpt_pool_done(p);
  sigaction(SIGCHLD, &old, NULL);
}

static int echo_len(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  return mp_buf_append(res, &len, sizeof len);
}

static void test_interval_timer_eintr(void **state) {
  (void)state;
  struct sigaction sa = {.sa_handler = count_signal}, old; /* no SA_RESTART */
  sigaction(SIGALRM, &sa, &old);
  mpt_sigs before;
  mpt_sigs_save(&before);
  /* Every millisecond; under valgrind every 10 (it could not keep up). */
  long us = mpt_under_tool() ? 10000 : 1000;
  struct itimerval every_ms = {{0, us}, {0, us}}, off = {{0, 0}, {0, 0}};
  g_sigs = 0;
  setitimer(ITIMER_REAL, &every_ms, NULL);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .task_timeout = 5});
  mixed_workload(p, 1);
  size_t n = (size_t)8 << 20;
  char *big = calloc(1, n);
  void *res;
  size_t len;
  assert_int_equal(mp_pool_apply(p, echo_len, big, n, &res, &len, NULL), 0);
  assert_int_equal(len, sizeof(size_t));
  assert_int_equal(*(size_t *)res, n);
  free(res);
  free(big);
  mpt_pool_done(p);
  mpt_sigs_assert_same(&before);
  /* A tick may already be pending when the timer stops (valgrind holds
   * signals back until its next syscall); restoring SIG_DFL with one
   * pending would kill this process. Block, stop, drain, then restore. */
  sigset_t alrm, mask;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigprocmask(SIG_BLOCK, &alrm, &mask);
  setitimer(ITIMER_REAL, &off, NULL);
  const struct timespec now = {0, 0};
  while (sigtimedwait(&alrm, NULL, &now) == SIGALRM)
    g_sigs++;
  sigaction(SIGALRM, &old, NULL);
  sigprocmask(SIG_SETMASK, &mask, NULL);
  assert_true(g_sigs > 0); /* the calls above were interrupted */
}

static int apply_report_hang(const void *arg, size_t len, mp_buf *res) {
  (void)len;
  (void)res;
  pid_t me = getpid();
  (void)!write(mpt_peer_fd(*(const int *)arg), &me, sizeof me);
  hang();
  return 0;
}

static void test_no_sigpipe_when_worker_dies_mid_write(void **state) {
  (void)state;
  mpt_sigs before;
  mpt_sigs_save(&before);
  assert_ptr_equal(before.sa[SIGPIPE].sa_handler, SIG_DFL); /* SIGPIPE would kill us */
  int rep[2];
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  mp_result *a, *b;
  assert_int_equal(mp_pool_apply_async(p, apply_report_hang, &rep[1], sizeof rep[1], NULL, &a), 0);
  size_t n = (size_t)16 << 20; /* far more than the pipe holds */
  char *big = calloc(1, n);
  assert_int_equal(mp_pool_apply_async(p, echo_len, big, n, NULL, &b), 0);
  /* The worker hangs in a; b is partly written into its full pipe. */
  while (mp_result_wait(a, 0) == MP_ETIMEDOUT) {
    struct pollfd pfd = {.fd = rep[0], .events = POLLIN};
    if (poll(&pfd, 1, 10) == 1)
      break;
  }
  pid_t victim;
  mpt_read(rep[0], &victim, sizeof victim);
  assert_int_equal(kill(victim, SIGKILL), 0);
  mp_status st;
  assert_int_equal(mp_result_get(a, -1, NULL, NULL, &st), MP_ECRASHED);
  assert_int_equal(st.detail, -SIGKILL);
  const void *data;
  size_t len;
  assert_int_equal(mp_result_get(b, -1, &data, &len, NULL), 0); /* rerun */
  assert_int_equal(len, sizeof(size_t));
  assert_int_equal(*(const size_t *)data, n);
  mp_result_free(a);
  mp_result_free(b);
  free(big);
  mpt_pool_done(p);
  close(rep[0]);
  close(rep[1]);
  sigset_t pending;
  sigpending(&pending);
  assert_false(sigismember(&pending, SIGPIPE));
  mpt_sigs_assert_same(&before);
}

/* ---- exhaustion, each in a child so limits do not leak into other tests */

static int limited(int resource, rlim_t lim, int drop_root) {
  pid_t pid = fork();
  if (pid == 0) {
    if (drop_root && getuid() == 0) {
      /* Root ignores RLIMIT_NPROC: become nobody. */
      if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
        _exit(77);
    }
    int fds = mpt_count_fds();
    struct rlimit rl = {lim, lim};
    if (resource == RLIMIT_NOFILE) {
      /* Exactly lim more fds can be opened. */
      rlim_t free_seen = 0, fd = 0;
      for (; fd < 4096 && free_seen < lim; fd++)
        free_seen += fcntl((int)fd, F_GETFD) < 0;
      rl.rlim_cur = rl.rlim_max = fd;
    }
    if (setrlimit(resource, &rl) < 0)
      _exit(78);
    mp_pool *p = NULL;
    int rc = mp_pool_create(&p, &(mp_pool_opts){.processes = 2});
    if (p || mpt_count_fds() != fds || mpt_has_children()) {
      fprintf(stderr, "limited: rc %d p %p fds %d -> %d\n", rc, (void *)p, fds, mpt_count_fds());
      _exit(79);
    }
    mp_process *proc;
    if (mp_process_create(&proc, NULL, NULL, NULL) != MP_EINVAL)
      _exit(80);
    _exit(rc == -EAGAIN ? 10 : rc == -EMFILE ? 11 : 12);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void test_rlimit_nproc(void **state) {
  (void)state;
  int r0 = limited(RLIMIT_NPROC, 0, 1);
  if (r0 == 77)
    skip(); /* cannot drop root here */
  assert_int_equal(r0, 10);
  /* One worker forks, the second cannot: the first is killed and reaped. */
  assert_int_equal(limited(RLIMIT_NPROC, 2, 1), 10);
}

static void test_rlimit_nofile(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* valgrind keeps fds of its own under a limit it fakes */
  assert_int_equal(limited(RLIMIT_NOFILE, 3, 0), 11); /* a worker needs 4 */
  assert_int_equal(limited(RLIMIT_NOFILE, 5, 0), 11); /* the second one */
}

/* ---- the loop's own failures reach the caller ---- */

static int square_task(const void *in, void *out) {
  *(int *)out = *(const int *)in * *(const int *)in;
  return 0;
}

/* In a child: a pool of 2, then poll() made to fail for good (it refuses
 * more fds than RLIMIT_NOFILE allows): map must return that error, not
 * spin. Before, the loop dropped poll's -errno and the map never returned. */
static void test_wait_failure_is_returned(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* valgrind keeps fds of its own under a limit it fakes */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    mp_pool *p;
    if (mp_pool_create(&p, &(mp_pool_opts){.processes = 2}) < 0)
      _exit(2);
    struct rlimit rl = {1, 1};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      _exit(77);
    int x = 3, y = 0;
    int rc = mp_pool_map(p, square_task, &x, 1, sizeof x, &y, sizeof y, NULL);
    mp_pool_free(p);
    _exit(rc == -EINVAL ? 0 : 3);
  }
  int st;
  assert_true(mpt_reap_within(pid, 10000, &st));
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* In a test's child: cap the address space at what it maps now plus
 * room bytes; exit 77 (the test skips) where that cannot be done. */
static void cap_address_space(rlim_t room) {
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld", &pages) != 1)
    _exit(77);
  fclose(f);
  rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + room;
  struct rlimit rl = {cap, cap};
  if (setrlimit(RLIMIT_AS, &rl) < 0)
    _exit(77);
}

/* Run body in a child of its own (the address-space cap must not reach
 * the test process): it passes when body returns 0, skips on 77. */
static void in_capped_child(int (*body)(void)) {
  if (mpt_under_tool())
    skip(); /* a sanitizer or valgrind reserves far more than it uses */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(body());
  int st;
  assert_true(mpt_reap_within(pid, 30000, &st));
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 77)
    skip();
  assert_int_equal(WEXITSTATUS(st), 0);
}

static int big_result(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  void *p = mp_buf_grow(res, (size_t)64 << 20);
  if (!p)
    return 1;
  memset(p, 1, (size_t)64 << 20);
  return 0;
}

/* In a child: the parent's address space is capped after its worker is
 * forked, so a 64 MiB result cannot be received: that is -ENOMEM (it was
 * reported as MP_EPROTO, a worker breaking the protocol). */
static int no_memory_for_a_result(void) {
  mp_pool *p;
  if (mp_pool_create(&p, &(mp_pool_opts){.processes = 1}) < 0)
    return 2;
  cap_address_space(32 << 20);
  void *r = NULL;
  size_t len = 0;
  mp_status st = {0, 0};
  int rc = mp_pool_apply(p, big_result, NULL, 0, &r, &len, &st);
  free(r);
  mp_pool_free(p);
  return rc == -ENOMEM && st.code == -ENOMEM ? 0 : rc == MP_EPROTO ? 4 : 3;
}

static void test_no_memory_for_a_result(void **state) {
  (void)state;
  in_capped_child(no_memory_for_a_result);
}

/* Item "a": a 24 MiB result; any other: its length. */
static int mid_result(const void *arg, size_t len, mp_buf *res) {
  if (len != 1)
    return mp_buf_append(res, &len, sizeof len);
  (void)arg;
  void *p = mp_buf_grow(res, (size_t)24 << 20);
  if (!p)
    return 1;
  memset(p, 2, (size_t)24 << 20);
  return 0;
}

/* In a child: an iterator's results are received and stored, then the
 * address space is capped, so the copy of the 24 MiB one that
 * mp_iter_next_bytes hands out cannot be made: that item is -ENOMEM (data
 * NULL), the next one still comes, and the iterator ends as usual. */
static int no_memory_for_an_iterator_copy(void) {
  mp_pool *p;
  mp_iter *it;
  mp_bytes in[2] = {{"a", 1}, {"bc", 2}};
  if (mp_pool_create(&p, &(mp_pool_opts){.processes = 1}) < 0 ||
      mp_pool_imap_bytes(p, mid_result, in, 2,
                         &(mp_map_opts){.chunksize = 1}, &it) < 0)
    return 2;
  /* One worker runs in order: once this apply's result is in, both of
   * the iterator's are stored. */
  void *r = NULL;
  size_t rl = 0;
  if (mp_pool_apply(p, mid_result, "xy", 2, &r, &rl, NULL) < 0)
    return 2;
  free(r);
  cap_address_space(8 << 20);
  mp_bytes b0, b1, b2;
  mp_status st0 = {0, 0};
  size_t i0 = 9, i1 = 9;
  int rc0 = mp_iter_next_bytes(it, &b0, &i0, &st0, -1);
  int rc1 = mp_iter_next_bytes(it, &b1, &i1, NULL, -1);
  size_t v1 = 0;
  if (rc1 == 0 && b1.len == sizeof v1)
    memcpy(&v1, b1.data, sizeof v1);
  int rc2 = mp_iter_next_bytes(it, &b2, NULL, NULL, -1);
  int ok0 = rc0 == -ENOMEM && st0.code == -ENOMEM && i0 == 0 && !b0.data,
      ok1 = rc1 == 0 && i1 == 1 && v1 == 2, ok2 = rc2 == MP_EOF;
  mp_bytes_free(&b1, 1);
  mp_iter_free(it);
  mp_pool_free(p);
  return !ok0 ? 3 : !ok1 ? 4 : !ok2 ? 5 : 0;
}

static void test_no_memory_for_an_iterator_copy(void **state) {
  (void)state;
  in_capped_child(no_memory_for_an_iterator_copy);
}

/* In a child: the address space capped at its size plus 48 MiB, pools of
 * 2 are made until one cannot be, then each maps 50 ints. Each map returns,
 * right or -ENOMEM: none waits forever for a task that never reached its
 * worker or for a wake-up that was never sent. */
static int maps_short_of_memory(void) {
  enum { MAXP = 64, N = 50 };
  mp_pool *p[MAXP];
  int np = 0, rc = 0;
  cap_address_space(48 << 20);
  while (np < MAXP &&
         (rc = mp_pool_create(&p[np], &(mp_pool_opts){.processes = 2})) == 0)
    np++;
  if (np == MAXP || rc != -ENOMEM)
    rc = 77; /* the cap was not reached as expected: nothing to test */
  else
    rc = 0;
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  for (int k = 0; k < np && rc == 0; k++) {
    memset(out, 0, sizeof out);
    int r = mp_pool_map(p[k], square_task, in, N, sizeof *in, out,
                        sizeof *out, NULL);
    if (r == 0) {
      for (int i = 0; i < N; i++)
        if (out[i] != i * i)
          rc = 3;
    } else if (r != -ENOMEM) {
      rc = 4;
    }
  }
  for (int k = 0; k < np; k++)
    mp_pool_free(p[k]);
  return rc;
}

static void test_maps_short_of_memory_return(void **state) {
  (void)state;
  in_capped_child(maps_short_of_memory);
}

/* ---- stress: 100,000 tasks, 1% crash, 1% time out ---- */

static uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

static int stress(void) {
  enum { N = 100000 };
  item *in = items(N);
  int ncrash = 0, nhang = 0;
  for (int i = 0; i < N; i++) {
    uint32_t h = mix((uint32_t)i + 12345u) % 100;
    if (h == 0) {
      in[i].kind = (i & 1) ? SEGV : EXIT3;
      ncrash++;
    } else if (h == 1) {
      in[i].kind = HANG;
      nhang++;
    }
  }
  mp_pool *p;
  /* Hung workers sleep, so many workers cost no CPU; the timeout leaves a
   * loaded machine's scheduler room before a quick item could be judged
   * overdue (about 1,000 hangs x 0.4 s / 64 workers: 6 s). */
  if (mp_pool_create(&p, &(mp_pool_opts){.processes = 64, .task_timeout = 0.4}) < 0)
    return 1;
  int *out = malloc(N * sizeof *out);
  mp_status *st = malloc(N * sizeof *st);
  int rc = mp_pool_map(p, fault_task, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st});
  int bad = 0, crashed = 0, timed = 0;
  for (int i = 0; i < N; i++) {
    if (in[i].kind == OK)
      bad += st[i].code != 0 || out[i] != 2 * in[i].value;
    else if (in[i].kind == HANG)
      timed += st[i].code == MP_ETIMEDOUT;
    else if (st[i].code == MP_ECRASHED &&
             st[i].detail == (in[i].kind == SEGV ? -SIGSEGV : 3))
      crashed++;
    else
      printf("stress: item %d (kind %d) reported %s, detail %d\n", i,
             in[i].kind, mp_err_name(st[i].code), st[i].detail);
  }
  mp_pool_close(p);
  mp_pool_join(p);
  mp_pool_free(p);
  printf("stress: %d tasks, %d crashed (%d reported), %d hung (%d timed out), "
         "%d wrong results, map returned %s\n",
         N, ncrash, crashed, nhang, timed, bad, mp_err_name(rc));
  free(in);
  free(out);
  free(st);
  return !(bad == 0 && crashed == ncrash && timed == nhang && ncrash > 500 &&
           nhang > 500 && mpt_has_children() == 0);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "stress") == 0)
    return stress();
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_crashes_fail_alone),
      MPT_TEST(test_killed_from_outside),
      MPT_TEST(test_task_timeout),
      MPT_TEST(test_apply_timeout),
      MPT_TEST(test_task_failure_code),
      MPT_TEST(test_initializer_always_crashes),
      MPT_TEST(test_initializer_crashes_once),
      MPT_TEST(test_huge_timeout_means_none),
      MPT_TEST(test_death_in_flush_is_charged),
      MPT_TEST(test_grandchild_holding_pipes),
      MPT_TEST(test_no_orphans),
      MPT_TEST(test_protocol_violation),
      MPT_TEST(test_app_sigchld_handler),
      MPT_TEST(test_sigchld_ignored),
      MPT_TEST(test_interval_timer_eintr),
      MPT_TEST(test_no_sigpipe_when_worker_dies_mid_write),
      MPT_TEST(test_rlimit_nproc),
      MPT_TEST(test_rlimit_nofile),
      MPT_TEST(test_wait_failure_is_returned),
      MPT_TEST(test_no_memory_for_a_result),
      MPT_TEST(test_no_memory_for_an_iterator_copy),
      MPT_TEST(test_maps_short_of_memory_return),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
