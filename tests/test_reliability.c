/* test_reliability.c: promises of mpool.h that fault injection from outside
 * once broke: freed results that kept reading the caller's input, pools of
 * two threads that leaked pipes into each other's workers, signals sent to
 * recycled pids, protocol errors that failed innocent items, workers that
 * outlived their parent, a flush that killed the caller, initializers that
 * hung the pool. Each test failed on the code before its fix. */
#include "fixture.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int first_byte(const void *in, void *out) {
  *(int *)out = *(const unsigned char *)in;
  return 0;
}

static int twice(const void *in, void *out) {
  *(int *)out = 2 * *(const int *)in;
  return 0;
}

static int segv_task(const void *in, void *out) {
  (void)in;
  (void)out;
  signal(SIGSEGV, SIG_DFL); /* the test runner may catch it */
  raise(SIGSEGV);
  return 0;
}

static int exit_task(const void *in, void *out) {
  (void)in;
  (void)out;
  _exit(3);
}

/* The pool still maps, within a bound: a map_async of n items and a wait. */
static void assert_maps_within(mp_pool *p, double seconds) {
  enum { N = 64 };
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  mp_result *r;
  assert_int_equal(mp_pool_map_async(p, twice, in, N, sizeof *in, out, sizeof *out, NULL, &r), 0);
  int rc = mp_result_wait(r, seconds);
  int got = rc == 0 ? mp_result_get(r, 0, NULL, NULL, NULL) : rc;
  mp_result_free(r);
  assert_int_equal(rc, 0);
  assert_int_equal(got, 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(out[i], 2 * i);
}

/* ---- 1. a freed result never reads the caller's input again ---- */

static int gate_rd = -1;

/* Keeps its worker busy until the test writes a byte to the gate. */
static int wait_gate(const void *arg, size_t len, mp_buf *res) {
  (void)arg;
  (void)len;
  (void)res;
  char c;
  while (read(gate_rd, &c, 1) < 0 && errno == EINTR)
    ;
  return 0;
}

enum { BIG = 4 << 20 };

/* A 1-worker pool busy behind the gate, 2 items of 4 MiB submitted by
 * submit (map_async or imap), the handle freed and the input unmapped (so a
 * read of it is EFAULT, not stale bytes), the gate opened: the busy task
 * completes and the pool maps again. Before the fix the half-written frame
 * was finished from the unmapped input: writev failed, the worker waited
 * for the rest of its frame forever and the pool hung. */
static void freed_input_case(int use_iter) {
  int g[2];
  assert_int_equal(pipe2(g, O_CLOEXEC), 0);
  gate_rd = g[0];
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  mp_result *busy;
  assert_int_equal(mp_pool_apply_async(p, wait_gate, NULL, 0, NULL, &busy), 0);
  char *in = mmap(NULL, 2 * (size_t)BIG, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(in != MAP_FAILED);
  memset(in, 7, 2 * (size_t)BIG);
  int out[2];
  if (use_iter) {
    mp_iter *it;
    assert_int_equal(mp_pool_imap(p, first_byte, in, 2, BIG, sizeof(int), NULL, &it), 0);
    mp_iter_free(it);
  } else {
    mp_result *r;
    assert_int_equal(mp_pool_map_async(p, first_byte, in, 2, BIG, out, sizeof *out, NULL, &r), 0);
    mp_result_free(r);
  }
  munmap(in, 2 * (size_t)BIG);
  mpt_write(g[1], "x", 1);
  int rc = mp_result_wait(busy, 10);
  mp_result_free(busy);
  assert_int_equal(rc, 0);
  assert_maps_within(p, 10);
  mpt_pool_done(p);
  close(g[0]);
  close(g[1]);
}

static void test_freed_map_async_reads_no_input(void **state) {
  (void)state;
  freed_input_case(0);
}

static void test_freed_iter_reads_no_input(void **state) {
  (void)state;
  freed_input_case(1);
}

/* ---- 2. pools of two threads share no pipe ---- */

typedef struct fd_race {
  int report[2];         /* the workers' initializers write their pids here */
  const unsigned long *base; /* pipes of the test process before the threads */
  int nbase;
  int iters;
  int leaks, stuck, errors, scans; /* results */
} fd_race;

static void report_pid(void *arg) {
  pid_t me = getpid();
  (void)!write(mpt_peer_fd(*(int *)arg), &me, sizeof me);
}

/* Every worker of p, once past start-up, holds exactly its own two pipe
 * ends beyond those the test process had at the start. Returns the number
 * of workers holding more. */
static int scan_workers(mp_pool *p, fd_race *r) {
  pid_t pids[2], seen[64];
  int nseen = 0, bad = 0;
  /* Wait until every current worker has reported (its fds are final). */
  double t0 = mpt_now();
  for (;;) {
    int n = mp_pool_worker_pids(p, pids, 2), all = 1;
    for (int k = 0; k < n; k++) {
      int found = 0;
      for (int i = 0; i < nseen; i++)
        found |= seen[i] == pids[k];
      all &= found;
    }
    if (all || mpt_now() - t0 > 10)
      break;
    pid_t got;
    if (read(r->report[0], &got, sizeof got) == (ssize_t)sizeof got && nseen < 64)
      seen[nseen++] = got;
  }
  for (int k = 0; k < 2; k++) {
    unsigned long ino[64];
    int n = mpt_pipe_inodes(pids[k], ino, 64), own = 0;
    for (int i = 0; i < n; i++) {
      int known = 0;
      for (int b = 0; b < r->nbase; b++)
        known |= ino[i] == r->base[b];
      own += !known;
    }
    bad += own > 2;
    r->scans++;
  }
  return bad;
}

static void *fd_race_thread(void *arg) {
  fd_race *r = arg;
  enum { N = 4 };
  static const int in[N] = {0};
  for (int i = 0; i < r->iters; i++) {
    mp_pool *p;
    mp_pool_opts o = {.processes = 2, .initializer = report_pid,
                      .initarg = &r->report[1],
                      .initarg_len = sizeof r->report[1]};
    if (mp_pool_create(&p, &o) < 0) {
      r->errors++;
      continue;
    }
    /* Items that exit: every one forks a replacement worker. (Not a
     * signal: a sanitizer's report on each would take seconds.) */
    int out[N];
    mp_result *res;
    if (mp_pool_map_async(p, exit_task, in, N, sizeof *in, out, sizeof *out,
                          &(mp_map_async_opts){.map.chunksize = 1}, &res) < 0) {
      r->errors++;
    } else {
      r->stuck += mp_result_wait(res, 10) == MP_ETIMEDOUT;
      mp_result_free(res);
      r->leaks += scan_workers(p, r);
    }
    mp_pool_free(p);
  }
  return NULL;
}

static void test_two_threads_pools_share_no_pipe(void **state) {
  (void)state;
  /* Natively only: the sanitizer's allocator is not fork-safe in a
   * threaded process (a worker forked while the other thread allocates
   * deadlocks in it, seen here), and valgrind runs one thread at a time,
   * so the race this looks for cannot happen there. */
  if (mpt_under_tool())
    skip();
  fd_race r[2];
  memset(r, 0, sizeof r);
  for (int t = 0; t < 2; t++)
    assert_int_equal(pipe2(r[t].report, O_CLOEXEC), 0);
  unsigned long base[256];
  int nbase = mpt_pipe_inodes(getpid(), base, 256);
  for (int t = 0; t < 2; t++) {
    r[t].base = base;
    r[t].nbase = nbase;
    r[t].iters = 150;
  }
  pthread_t th[2];
  for (int t = 0; t < 2; t++)
    assert_int_equal(pthread_create(&th[t], NULL, fd_race_thread, &r[t]), 0);
  for (int t = 0; t < 2; t++)
    pthread_join(th[t], NULL);
  for (int t = 0; t < 2; t++) {
    close(r[t].report[0]);
    close(r[t].report[1]);
  }
  int leaks = r[0].leaks + r[1].leaks, stuck = r[0].stuck + r[1].stuck;
  if (leaks || stuck || r[0].errors || r[1].errors)
    fail_msg("%d of %d worker scans held another pool's pipe; %d maps stuck; "
             "%d errors", leaks, r[0].scans + r[1].scans, stuck,
             r[0].errors + r[1].errors);
}

/* ---- 3. with SIGCHLD ignored, no signal reaches a recycled pid ---- */

/*
 * A process given pid `want`, not a child of ours: an intermediate child
 * makes it with clone3's set_tid and reports its wait status on *status_fd
 * once it has ended. The victim waits for a byte on gate. Returns the
 * intermediate's pid, or 0 when this kernel or these privileges cannot
 * choose a pid (the test is then skipped).
 */
static pid_t victim_with_pid(pid_t want, int gate, int *status_fd) {
  int rep[2];
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid == 0) {
    pid_t tid = want;
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    ca.set_tid = (uint64_t)(uintptr_t)&tid;
    ca.set_tid_size = 1;
    long v = syscall(SYS_clone3, &ca, sizeof ca);
    if (v == 0) {
      char c;
      while (read(gate, &c, 1) < 0 && errno == EINTR)
        ;
      _exit(0);
    }
    int ok = v == want, st = 0;
    (void)!write(rep[1], &ok, sizeof ok);
    if (ok)
      while (waitpid((pid_t)v, &st, 0) < 0 && errno == EINTR)
        ;
    (void)!write(rep[1], &st, sizeof st);
    _exit(0);
  }
  close(rep[1]);
  int ok;
  mpt_read(rep[0], &ok, sizeof ok);
  if (!ok) {
    int st;
    mpt_read(rep[0], &st, sizeof st);
    close(rep[0]);
    assert_int_equal(waitpid(mid, &st, 0), mid);
    return 0;
  }
  *status_fd = rep[0];
  return mid;
}

/* Wait (bounded) until pid no longer exists: reaped by the kernel. */
static void wait_pid_gone(pid_t pid) {
  double t0 = mpt_now();
  while (kill(pid, 0) == 0 && mpt_now() - t0 < 10)
    usleep(1000);
  assert_int_equal(kill(pid, 0), -1);
}

/* Open the gate and read how the victim ended: 0 means it exited 0, as it
 * does unless something signalled it. */
static int victim_end(pid_t mid, int gate_w, int status_fd) {
  mpt_write(gate_w, "x", 1);
  int st, mst;
  mpt_read(status_fd, &st, sizeof st);
  close(status_fd);
  assert_int_equal(waitpid(mid, &mst, 0), mid);
  return st;
}

static void test_sigchld_ignored_pool_spares_recycled_pid(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* clone3 with set_tid is not emulated there */
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGCHLD, &ign, &old);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  pid_t worker;
  assert_int_equal(mp_pool_worker_pids(p, &worker, 1), 1);
  int x = 0, y;
  mp_result *r;
  assert_int_equal(mp_pool_map_async(p, segv_task, &x, 1, sizeof x, &y, sizeof y, NULL, &r), 0);
  wait_pid_gone(worker); /* crashed, and reaped by the kernel */
  sigaction(SIGCHLD, &old, NULL);
  int gate[2], status_fd;
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  pid_t mid = victim_with_pid(worker, gate[0], &status_fd);
  if (!mid) {
    close(gate[0]);
    close(gate[1]);
    mp_result_free(r);
    mp_pool_free(p);
    skip();
  }
  /* The pool learns of the death now, with its pid another process's. */
  assert_int_equal(mp_result_wait(r, 10), 0);
  mp_status st;
  assert_int_equal(mp_result_get(r, 0, NULL, NULL, &st), MP_ECRASHED);
  mp_result_free(r);
  int vst = victim_end(mid, gate[1], status_fd);
  close(gate[0]);
  close(gate[1]);
  assert_maps_within(p, 10);
  mpt_pool_done(p);
  if (!WIFEXITED(vst))
    fail_msg("the process that took the dead worker's pid was killed by "
             "signal %d", WTERMSIG(vst));
}

static int return_at_once(void *arg) {
  (void)arg;
  return 0;
}

static void test_sigchld_ignored_terminate_spares_recycled_pid(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip();
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGCHLD, &ign, &old);
  mp_process *pr = mpt_start(return_at_once, NULL);
  pid_t pid = mp_process_pid(pr);
  wait_pid_gone(pid);
  sigaction(SIGCHLD, &old, NULL);
  int gate[2], status_fd;
  assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
  pid_t mid = victim_with_pid(pid, gate[0], &status_fd);
  int rc = mid ? mp_process_terminate(pr) : 0;
  int vst = mid ? victim_end(mid, gate[1], status_fd) : 0;
  close(gate[0]);
  close(gate[1]);
  assert_int_equal(mp_process_join(pr, 10), 0);
  int code = -1;
  assert_int_equal(mp_process_exitcode(pr, &code), 0);
  mp_process_free(pr);
  if (!mid)
    skip();
  assert_int_equal(rc, 0);
  assert_int_equal(code, 0); /* from the status pipe */
  if (!WIFEXITED(vst))
    fail_msg("terminate signalled the process that took the child's pid "
             "(signal %d)", WTERMSIG(vst));
}

/* ---- 5. a protocol error fails the item that made it, and only it ---- */

enum { JUNK_RETURN = 1, JUNK_HANG = 2 };

typedef struct pitem {
  int value;
  int junk;
} pitem;

static int proto_task(const void *in, void *out) {
  const pitem *it = in;
  if (it->junk) {
    static const char junk[64] = "these bytes are not a frame of the pool";
    (void)mp__worker_inject(junk, sizeof junk);
    if (it->junk == JUNK_HANG)
      for (;;)
        pause();
  }
  *(int *)out = it->value * 3;
  return 0;
}

static void proto_case(mp_pool *p, int n, int bad, int junk, size_t chunksize) {
  pitem *in = calloc((size_t)n, sizeof *in);
  int *out = calloc((size_t)n, sizeof *out);
  mp_status *st = calloc((size_t)n, sizeof *st);
  assert_non_null(in);
  assert_non_null(out);
  assert_non_null(st);
  for (int i = 0; i < n; i++)
    in[i].value = i + 1;
  in[bad].junk = junk;
  int rc = mp_pool_map(p, proto_task, in, (size_t)n, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.status = st, .chunksize = chunksize});
  int wrong = 0;
  for (int i = 0; i < n; i++)
    if (i != bad && (st[i].code != 0 || out[i] != 3 * (i + 1)))
      wrong++;
  int bad_code = st[bad].code;
  free(in);
  free(out);
  free(st);
  if (wrong)
    fail_msg("item %d wrote junk: %d innocent items lost their results", bad,
             wrong);
  if (bad_code != MP_EPROTO)
    fail_msg("item %d (junk %d, chunksize %zu) got %d, not MP_EPROTO", bad,
             junk, chunksize, bad_code);
  assert_int_equal(rc, MP_EPROTO);
}

static void test_protocol_error_fails_one_item(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .task_timeout = 30});
  proto_case(p, 1000, 500, JUNK_RETURN, 0);  /* default chunks: 125 items */
  proto_case(p, 1000, 375, JUNK_RETURN, 0);  /* first item of a chunk */
  proto_case(p, 1000, 499, JUNK_RETURN, 0);  /* last item of a chunk */
  proto_case(p, 1000, 500, JUNK_HANG, 0);    /* caught while it runs */
  proto_case(p, 200, 7, JUNK_RETURN, 200);   /* one chunk for everything */
  assert_maps_within(p, 10);
  mpt_pool_done(p);
}

/* ---- 6. workers die with their parent whatever the initializer did ---- */

static void drop_privileges(void *arg) {
  /* The test's pipe, reached while this worker still may (forkserver). */
  (void)mpt_peer_fd(*(const int *)arg);
  /* The kernel clears the parent-death signal on a credential change. */
  if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
    _exit(99);
}

static int report_and_hang(const void *in, void *out) {
  (void)out;
  pid_t me = getpid();
  (void)!write(mpt_peer_fd(*(const int *)in), &me, sizeof me);
  for (;;)
    pause();
  return 0;
}

static void test_privilege_dropping_initializer_dies_with_parent(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip(); /* dropping privileges needs them */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int rep[2];
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  pid_t mid = fork();
  if (mid == 0) {
    mp_pool *p;
    static int fd;
    fd = rep[1];
    if (mp_pool_create(&p, &(mp_pool_opts){.processes = 2,
                                           .initializer = drop_privileges,
                                           .initarg = &fd,
                                           .initarg_len = sizeof fd}) < 0)
      _exit(1);
    static int in[2], out[2];
    in[0] = in[1] = rep[1];
    mp_result *r;
    if (mp_pool_map_async(p, report_and_hang, in, 2, sizeof *in, out, sizeof *out,
                          &(mp_map_async_opts){.map.chunksize = 1}, &r) < 0)
      _exit(1);
    mp_result_wait(r, -1); /* mid-map, forever */
    _exit(1);
  }
  pid_t workers[2];
  mpt_read(rep[0], &workers[0], sizeof workers[0]); /* both past their */
  mpt_read(rep[0], &workers[1], sizeof workers[1]); /* initializers */
  int gone = mpt_kill_parent_of(mid, workers, 2);
  close(rep[0]);
  close(rep[1]);
  assert_int_equal(gone, 2);
}

/* ---- extra: a flush before fork never kills the caller ---- */

static void test_create_with_stdout_a_closed_pipe(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int p[2];
    if (pipe(p) < 0 || dup2(p[1], STDOUT_FILENO) < 0)
      _exit(2);
    close(p[0]); /* no reader: writing to stdout raises SIGPIPE */
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
    printf("buffered, flushed by the fork\n");
    mp_pool *pool;
    int rc = mp_pool_create(&pool, &(mp_pool_opts){.processes = 1});
    sigset_t pending;
    sigpending(&pending);
    if (rc == 0)
      mp_pool_free(pool);
    /* Alive, and no SIGPIPE left to kill the process later. */
    _exit(rc != 0 ? 3 : sigismember(&pending, SIGPIPE) ? 4 : 0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFSIGNALED(st))
    fail_msg("mp_pool_create killed its caller with signal %d", WTERMSIG(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- extra: task_timeout bounds an initializer too ---- */

static void init_hang(void *arg) {
  (void)arg;
  for (;;)
    pause();
}

/* The first worker to start hangs; the others do not. */
static void init_hang_once(void *arg) {
  mpt_shared sh;
  memcpy(&sh, arg, sizeof sh);
  _Atomic int *starts = mpt_shared_ptr(&sh);
  if (starts && atomic_fetch_add(starts, 1) == 0)
    init_hang(NULL);
}

static void test_initializer_hang_times_out(void **state) {
  (void)state;
  /* Every initializer hangs: three timeouts in a row break the pool. */
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1, .task_timeout = 0.2,
                                       .initializer = init_hang});
  int in[2] = {1, 2}, out[2];
  mp_status st[2];
  mp_result *r;
  assert_int_equal(mp_pool_map_async(p, twice, in, 2, sizeof *in, out, sizeof *out,
                                     &(mp_map_async_opts){.map.status = st}, &r), 0);
  int rc = mp_result_wait(r, 20);
  mp_status o = {0, 0};
  if (rc == 0)
    mp_result_get(r, 0, NULL, NULL, &o);
  mp_result_free(r);
  assert_int_equal(rc, 0);
  assert_int_equal(o.code, MP_ETIMEDOUT);
  assert_int_equal(st[0].code, MP_ETIMEDOUT);
  assert_int_equal(st[1].code, MP_ETIMEDOUT);
  assert_int_equal(mp_pool_map(p, twice, in, 2, sizeof *in, out, sizeof *out, NULL),
                   MP_ECLOSED);
  mp_pool_free(p);

  /* Only the first hangs: its replacement takes the work. */
  static mpt_shared sh;
  mpt_shared_new(&sh, sizeof(_Atomic int));
  _Atomic int *starts = sh.ptr;
  p = mpt_pool((mp_pool_opts){.processes = 1, .task_timeout = 0.2,
                              .initializer = init_hang_once,
                              .initarg = &sh, .initarg_len = sizeof sh});
  assert_maps_within(p, 20);
  assert_true(atomic_load(starts) >= 2);
  mpt_pool_done(p);
  mpt_shared_free(&sh);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_freed_map_async_reads_no_input),
      MPT_TEST(test_freed_iter_reads_no_input),
      MPT_TEST(test_two_threads_pools_share_no_pipe),
      MPT_TEST(test_sigchld_ignored_pool_spares_recycled_pid),
      MPT_TEST(test_sigchld_ignored_terminate_spares_recycled_pid),
      MPT_TEST(test_protocol_error_fails_one_item),
      MPT_TEST(test_privilege_dropping_initializer_dies_with_parent),
      MPT_TEST(test_create_with_stdout_a_closed_pipe),
      MPT_TEST(test_initializer_hang_times_out),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
