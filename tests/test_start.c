/* test_start.c: start methods (fork, forkserver) and the hygiene of every
 * child in a threaded program: each test a failure measured on the fork
 * method (issue 12), under both methods where it applies. */
#include "fixture.h"
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int methods[] = {MP_START_FORK, MP_START_FORKSERVER};
enum { NMETHODS = 2 };

static int square(const void *in, void *out) {
  *(int *)out = *(const int *)in * *(const int *)in;
  return 0;
}

/* A map of n squares on p, checked. */
static void assert_squares(mp_pool *p, int n) {
  int in[64], out[64];
  assert_true(n <= 64);
  for (int i = 0; i < n; i++)
    in[i] = i;
  assert_int_equal(
      mp_pool_map(p, square, in, (size_t)n, sizeof *in, out, sizeof *out, NULL),
      0);
  for (int i = 0; i < n; i++)
    assert_int_equal(out[i], i * i);
}

static int target_checks_arg(void *arg);

/* ---- the start method: options, default, environment ---- */

static void test_start_method_default(void **state) {
  (void)state;
  int was = mp_get_start_method();
  assert_int_equal(mp_set_start_method(3), MP_EINVAL);
  assert_int_equal(mp_set_start_method(-1), MP_EINVAL);
  assert_int_equal(mp_get_start_method(), was);
  assert_int_equal(mp_set_start_method(MP_START_FORKSERVER), 0);
  assert_int_equal(mp_get_start_method(), MP_START_FORKSERVER);
  /* A pool with start_method 0 takes the default: its workers are not our
   * children. */
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  pid_t w;
  assert_int_equal(mp_pool_worker_pids(p, &w, 1), 1);
  assert_true(w > 0);
  assert_int_equal(waitpid(w, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  assert_squares(p, 10);
  mpt_pool_done(p);
  assert_int_equal(mp_set_start_method(0), 0);
  assert_int_equal(mp_get_start_method(), was);
  /* What the environment said when the program started. */
  const char *env = getenv("MPOOL_START_METHOD");
  assert_int_equal(was, env && strcmp(env, "forkserver") == 0
                            ? MP_START_FORKSERVER
                            : MP_START_FORK);
  mp_pool *bad = NULL;
  assert_int_equal(mp_pool_create(&bad, &(mp_pool_opts){.start_method = 7}),
                   MP_EINVAL);
  assert_null(bad);
  mp_process *pr = NULL;
  assert_int_equal(mp_process_create(&pr, target_checks_arg, NULL,
                                     &(mp_process_opts){.start_method = 7}),
                   MP_EINVAL);
  assert_null(pr);
}

/* ---- 1. no stdout line printed twice, with threads printing ---- */

typedef struct printer {
  int id;
  _Atomic int *stop;
} printer;

static void *print_loop(void *arg) {
  printer *pr = arg;
  /* A line every 10 us or so: always some in the buffer, not gigabytes. */
  struct timespec pace = {0, 10000};
  for (long i = 0; i < 2000000 && !atomic_load(pr->stop); i++) {
    printf("%d %ld\n", pr->id, i);
    nanosleep(&pace, NULL);
  }
  return NULL;
}

/* In a child whose stdout is a pipe: 4 threads print numbered lines while
 * the main thread makes 100 pools (one map each, tasks that print
 * nothing). Returns the number of lines seen more than once. */
static long dup_lines(int method) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0) {
    if (dup2(p[1], STDOUT_FILENO) < 0)
      _exit(2);
    _Atomic int stop = 0;
    printer pr[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
      pr[t] = (printer){t, &stop};
      pthread_create(&th[t], NULL, print_loop, &pr[t]);
    }
    int bad = 0;
    for (int round = 0; round < 100; round++) {
      mp_pool *pool;
      int in[4] = {1, 2, 3, 4}, out[4];
      if (mp_pool_create(&pool, &(mp_pool_opts){.processes = 2,
                                                .start_method = method}) < 0 ||
          mp_pool_map(pool, square, in, 4, sizeof *in, out, sizeof *out,
                      &(mp_map_opts){.chunksize = 1}) != 0)
        bad = 1;
      mp_pool_free(pool);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < 4; t++)
      pthread_join(th[t], NULL);
    fflush(stdout);
    _exit(bad ? 3 : 0);
  }
  close(p[1]);
  size_t len;
  char *all = mpt_read_all(p[0], &len);
  close(p[0]);
  int st;
  assert_int_equal(waitpid(kid, &st, 0), kid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  /* Each thread's numbers, counted. */
  enum { MAXN = 2000000 };
  unsigned char *seen = calloc(4 * (size_t)MAXN, 1);
  long dups = 0;
  for (char *line = all, *nl; line < all + len; line = nl + 1) {
    if (!(nl = memchr(line, '\n', (size_t)(all + len - line))))
      break;
    char *end;
    long t = strtol(line, &end, 10);
    long i = end != line ? strtol(end, &end, 10) : -1;
    if (t < 0 || t > 3 || i < 0 || i >= MAXN)
      continue;
    dups += seen[(size_t)t * MAXN + (size_t)i]++ > 0;
  }
  free(seen);
  free(all);
  return dups;
}

static void test_no_line_printed_twice(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* 100 pools beside 4 busy threads: minutes under a tool */
  for (int m = 0; m < NMETHODS; m++) {
    long dups = dup_lines(methods[m]);
    if (dups)
      fail_msg("method %d: %ld lines printed twice", methods[m], dups);
  }
}

/* ---- 2. forkserver pools beside threads in localtime_r and setenv ---- */

static int use_libc_locks(const void *in, void *out) {
  time_t t = *(const int *)in;
  struct tm tm;
  localtime_r(&t, &tm);
  *(int *)out = (getenv("MPT_BUSY_VAR") != NULL) + tm.tm_year * 0;
  setenv("MPT_WORKER_VAR", "1", 1);
  return 0;
}

static void *lock_loop(void *arg) {
  _Atomic int *stop = arg;
  struct tm tm;
  time_t t = 0;
  for (unsigned i = 0; !atomic_load(stop); i++) {
    if (i % 2) {
      localtime_r(&t, &tm);
    } else {
      setenv("MPT_BUSY_VAR", i % 4 ? "a" : "bb", 1);
      unsetenv("MPT_BUSY_VAR");
    }
  }
  return NULL;
}

static void test_forkserver_beside_locking_threads(void **state) {
  (void)state;
  if (mpt_under_tool())
    skip(); /* threads spinning in libc: minutes under a tool */
  _Atomic int stop = 0;
  pthread_t th[2];
  for (int t = 0; t < 2; t++)
    assert_int_equal(pthread_create(&th[t], NULL, lock_loop, &stop), 0);
  int stuck = 0;
  for (int round = 0; round < 20; round++) {
    mp_pool *p = NULL;
    /* A worker stuck on a lock is killed at the timeout: the map says so. */
    int rc = mp_pool_create(
        &p, &(mp_pool_opts){.processes = 2,
                            .task_timeout = 5,
                            .start_method = MP_START_FORKSERVER});
    int in[8] = {0}, out[8];
    if (rc == 0)
      rc = mp_pool_map(p, use_libc_locks, in, 8, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = 1});
    stuck += rc != 0;
    mp_pool_free(p);
  }
  atomic_store(&stop, 1);
  for (int t = 0; t < 2; t++)
    pthread_join(th[t], NULL);
  unsetenv("MPT_BUSY_VAR");
  assert_int_equal(stuck, 0);
}

/* ---- 3. a pool created on a thread that exits ---- */

static void *create_pool(void *arg) {
  mp_pool_opts *o = arg;
  mp_pool *p = NULL;
  if (mp_pool_create(&p, o) < 0)
    return NULL;
  return p;
}

/* 1 when pid has ended within ms (pidfd), else 0; -1 without pidfds. */
static int ended_within(pid_t pid, int ms) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return errno == ESRCH ? 1 : -1;
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r;
  do
    r = poll(&pfd, 1, ms);
  while (r < 0 && errno == EINTR);
  close(fd);
  return r == 1;
}

static void test_pool_outlives_creating_thread(void **state) {
  (void)state;
  /* forkserver: the pool keeps its workers and maps. */
  pthread_t th;
  mp_pool_opts o = {.processes = 2, .start_method = MP_START_FORKSERVER};
  assert_int_equal(pthread_create(&th, NULL, create_pool, &o), 0);
  void *ret;
  pthread_join(th, &ret);
  mp_pool *p = ret;
  assert_non_null(p);
  pid_t before[2], after[2];
  assert_int_equal(mp_pool_worker_pids(p, before, 2), 2);
  assert_true(before[0] > 0 && before[1] > 0);
  assert_true(ended_within(before[0], 200) != 1); /* still running */
  assert_squares(p, 40);
  assert_int_equal(mp_pool_worker_pids(p, after, 2), 2);
  assert_memory_equal(before, after, sizeof before); /* none replaced */
  mpt_pool_done(p);
}

/* A pool created on a thread that exits, many times over (a worker's
 * parent-death signal raced the thread's exit: one of two workers
 * sometimes outlived it and kept serving). Fork: both workers die with the
 * thread, every time. Forkserver: the server forks them, so the thread's
 * exit touches neither: both keep serving, every time. */
typedef struct made_pool {
  mp_pool_opts opts;
  mp_pool *pool;
  pid_t w[2]; /* its workers, seen by the thread before it exits */
} made_pool;

static void *create_pool_and_exit(void *arg) {
  made_pool *mp = arg;
  if (mp_pool_create(&mp->pool, &mp->opts) == 0 &&
      mp_pool_worker_pids(mp->pool, mp->w, 2) != 2)
    mp->w[0] = mp->w[1] = 0;
  return NULL;
}

static void test_creating_thread_exit_is_all_or_none(void **state) {
  (void)state;
  enum { ROUNDS = 20 };
  for (int m = 0; m < NMETHODS; m++) {
    for (int k = 0; k < ROUNDS; k++) {
      pthread_t th;
      made_pool mp = {.opts = {.processes = 2, .start_method = methods[m]}};
      assert_int_equal(pthread_create(&th, NULL, create_pool_and_exit, &mp),
                       0);
      pthread_join(th, NULL);
      mp_pool *p = mp.pool;
      assert_non_null(p);
      pid_t *w = mp.w;
      assert_true(w[0] > 0 && w[1] > 0);
      if (methods[m] == MP_START_FORK) {
        int e[2];
        for (int i = 0; i < 2; i++)
          e[i] = ended_within(w[i], 10000);
        mp_pool_free(p); /* kills a survivor: nothing is left behind */
        if (e[0] < 0)
          skip(); /* no pidfd here to see it end */
        assert_int_equal(e[0], 1); /* both ended, in round k */
        assert_int_equal(e[1], 1);
      } else {
        assert_squares(p, 8);
        pid_t now[2];
        assert_int_equal(mp_pool_worker_pids(p, now, 2), 2);
        assert_memory_equal(w, now, sizeof now); /* none died, none replaced */
        mpt_pool_done(p);
      }
    }
  }
}

/* ---- a fork server that is stopped ---- */

/* pid's state letter and parent from /proc/pid/stat; 0 when unreadable. */
static char proc_state(pid_t pid, pid_t *ppid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  char *r = strrchr(buf, ')');
  char st = 0;
  int pp = 0;
  if (!r || sscanf(r + 1, " %c %d", &st, &pp) != 2)
    return 0;
  if (ppid)
    *ppid = pp;
  return st;
}

/* Stop pid and wait (up to 10 s) until the kernel shows it stopped, so
 * that what follows meets a stopped process, not one about to be. */
static void stop_and_see_stopped(pid_t pid) {
  assert_int_equal(kill(pid, SIGSTOP), 0);
  double end = mpt_now() + 10;
  while (proc_state(pid, NULL) != 'T' && mpt_now() < end) {
    struct timespec tick = {0, 1000000};
    nanosleep(&tick, NULL);
  }
  assert_int_equal(proc_state(pid, NULL), 'T');
}

/* The pool's fork server: its workers' parent, a child of ours. */
static pid_t server_of(mp_pool *p) {
  pid_t w[2], srv = 0, pp = 0;
  assert_int_equal(mp_pool_worker_pids(p, w, 2), 2);
  assert_true(proc_state(w[0], &srv) != 0);
  assert_true(proc_state(srv, &pp) != 0);
  assert_int_equal(pp, getpid());
  return srv;
}

static int square_or_crash_at_5(const void *in, void *out) {
  int x = *(const int *)in;
  if (x == 5)
    raise(SIGSEGV);
  *(int *)out = x * x;
  return 0;
}

/* A hang must fail the test, not block the suite: SIGALRM's default
 * action ends the process. */
static unsigned hang_bound(unsigned s) { return mpt_under_tool() ? 5 * s : s; }

/* A generous bound on a call that waits on a stopped server: its own
 * timeout (2 s here) plus the 2 s the pool gives the server, with room for
 * a loaded machine; a bound for hangs, not a timing. */
static double stopped_call_bound(void) { return mpt_under_tool() ? 30 : 10; }

static const int transports[] = {MP_TRANSPORT_PIPE, MP_TRANSPORT_SHM};

/* mp_pool_free of a pool whose server is stopped returns within the
 * bound (an alarm ends a hang). */
static void free_within_bound(mp_pool *p) {
  alarm(hang_bound(60));
  double t0 = mpt_now();
  mp_pool_free(p);
  double took = mpt_now() - t0;
  alarm(0);
  assert_true(took < stopped_call_bound());
}

/* A crash needs a replacement from a stopped server: the wait still
 * returns near its timeout, the items all get an outcome, free returns. */
static void test_stopped_server_bounds_wait(void **state) {
  (void)state;
  for (int t = 0; t < 2; t++) {
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2,
                                         .start_method = MP_START_FORKSERVER,
                                         .transport = transports[t]});
    pid_t srv = server_of(p);
    stop_and_see_stopped(srv);
    int in[10], out[10];
    mp_status st[10];
    for (int i = 0; i < 10; i++)
      in[i] = i;
    mp_map_async_opts mo = {.map = {.chunksize = 1, .status = st}};
    mp_result *r = NULL;
    assert_int_equal(mp_pool_map_async(p, square_or_crash_at_5, in, 10,
                                       sizeof *in, out, sizeof *out, &mo, &r),
                     0);
    alarm(hang_bound(60));
    double t0 = mpt_now();
    int rc = mp_result_wait(r, 2.0);
    double took = mpt_now() - t0;
    alarm(0);
    assert_true(rc == 0 || rc == MP_ETIMEDOUT);
    assert_true(took < stopped_call_bound());
    /* The server is lost by now: the result completes at once. */
    alarm(hang_bound(60));
    assert_int_equal(mp_result_wait(r, 10.0), 0);
    alarm(0);
    assert_int_equal(st[5].code, MP_ECRASHED);
    for (int i = 0; i < 10; i++)
      assert_true(st[i].code == 0 ? out[i] == i * i : st[i].code < 0);
    mp_result_free(r);
    free_within_bound(p);
  }
}

/* Free of an idle pool whose server is stopped: bounded, and it leaves no
 * process behind (the fixture checks for children). */
static void test_free_with_stopped_server(void **state) {
  (void)state;
  for (int t = 0; t < 2; t++) {
    mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2,
                                         .start_method = MP_START_FORKSERVER,
                                         .transport = transports[t]});
    stop_and_see_stopped(server_of(p));
    free_within_bound(p);
  }
}

/* The caller of a pool is killed while its server is stopped: the server
 * and its workers die all the same (a stopped server once lived on). */
static void test_stopped_server_dies_with_caller(void **state) {
  (void)state;
  for (int t = 0; t < 2; t++) {
    int pp[2], hold[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
      close(pp[0]);
      close(hold[1]);
      mp_pool *p = NULL;
      pid_t ids[3] = {0};
      if (mp_pool_create(&p,
                         &(mp_pool_opts){.processes = 2,
                                         .start_method = MP_START_FORKSERVER,
                                         .transport = transports[t]}) == 0 &&
          mp_pool_worker_pids(p, &ids[1], 2) == 2)
        proc_state(ids[1], &ids[0]);
      (void)!write(pp[1], ids, sizeof ids);
      char c;
      (void)!read(hold[0], &c, 1); /* until killed */
      _exit(0);
    }
    close(pp[1]);
    close(hold[0]);
    pid_t ids[3];
    mpt_read(pp[0], ids, sizeof ids);
    close(pp[0]);
    assert_true(ids[0] > 0 && ids[1] > 0 && ids[2] > 0);
    stop_and_see_stopped(ids[0]);
    int died = mpt_kill_parent_of(mid, ids, 3);
    close(hold[1]);
    assert_int_equal(died, 3); /* the server and both workers */
  }
}

/* A worker killed from outside shows as 0 until it is replaced (it used to
 * show as the zombie it was), under both methods. */
static void test_gone_worker_shows_as_zero(void **state) {
  (void)state;
  for (int m = 0; m < NMETHODS; m++) {
    mp_pool *p =
        mpt_pool((mp_pool_opts){.processes = 2, .start_method = methods[m]});
    pid_t w[2];
    assert_int_equal(mp_pool_worker_pids(p, w, 2), 2);
    assert_int_equal(kill(w[0], SIGKILL), 0);
    int e = ended_within(w[0], 5000);
    if (e < 0) {
      mp_pool_free(p);
      skip(); /* no pidfd here to see it end */
    }
    assert_int_equal(e, 1);
    pid_t now[2];
    assert_int_equal(mp_pool_worker_pids(p, now, 2), 2);
    assert_int_equal(now[0], 0);
    assert_int_equal(now[1], w[1]);
    assert_squares(p, 10); /* replaced at the next call */
    assert_int_equal(mp_pool_worker_pids(p, now, 2), 2);
    assert_true(now[0] > 0 && now[0] != w[0]);
    mpt_pool_done(p);
  }
}

/* ---- 4. no parent atexit handler runs in a child ---- */

static int atexit_fd = -1; /* the parent's handler writes 'A' here */
static int own_fd = -1;    /* a child's own handler writes 'C' here */

static void parent_handler(void) {
  if (atexit_fd >= 0)
    (void)!write(atexit_fd, "A", 1);
}

static void own_handler(void) {
  if (own_fd >= 0)
    (void)!write(own_fd, "C", 1);
}

static int target_exits(void *arg) {
  (void)arg;
  atexit(own_handler); /* the child's own: it runs */
  exit(3);
}

static int task_exits(const void *in, void *out) {
  (void)in;
  (void)out;
  atexit(own_handler);
  exit(4);
}

static void test_no_parent_atexit_in_children(void **state) {
  (void)state;
  static int registered;
  if (!registered++)
    assert_int_equal(atexit(parent_handler), 0);
  int pa[2], pc[2];
  assert_int_equal(pipe2(pa, O_CLOEXEC), 0);
  assert_int_equal(pipe2(pc, O_CLOEXEC), 0);
  atexit_fd = pa[1];
  own_fd = pc[1];
  for (int m = 0; m < NMETHODS; m++) {
    mp_process *pr;
    assert_int_equal(
        mp_process_create(&pr, target_exits, NULL,
                          &(mp_process_opts){.start_method = methods[m]}),
        0);
    assert_int_equal(mp_process_start(pr), 0);
    int code = mpt_finish(pr);
    assert_int_equal(code, 3);

    mp_pool *p =
        mpt_pool((mp_pool_opts){.processes = 1, .start_method = methods[m]});
    int in = 0, out;
    mp_status st;
    assert_int_equal(mp_pool_map(p, task_exits, &in, 1, sizeof in, &out,
                                 sizeof out, &(mp_map_opts){.status = &st}),
                     MP_ECRASHED);
    assert_int_equal(st.detail, 4);
    mpt_pool_done(p);
  }
  atexit_fd = own_fd = -1;
  close(pa[1]);
  close(pc[1]);
  size_t n;
  char *got = mpt_read_all(pa[0], &n);
  assert_int_equal(n, 0); /* the parent's handler ran in no child */
  free(got);
  got = mpt_read_all(pc[0], &n);
  /* The children's own ran in the forked ones (a forkserver child is not
   * a copy: own_fd is -1 there). */
  assert_int_equal(n, 2);
  assert_memory_equal(got, "CC", 2);
  free(got);
  close(pa[0]);
  close(pc[0]);
}

/* ---- 5. what a task or target forks holds nothing of the library's ---- */

static int target_forks_exiting_child(void *arg) {
  (void)arg;
  pid_t g = fork();
  if (g == 0)
    exit(7); /* must not report 7 as its parent's status */
  while (waitpid(g, NULL, 0) < 0 && errno == EINTR)
    ;
  return 3;
}

static void test_grandchild_does_not_report(void **state) {
  (void)state;
  /* SIGCHLD ignored: the status pipe carries the target's code. */
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  int code[NMETHODS];
  assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
  for (int m = 0; m < NMETHODS; m++) {
    mp_process *pr = NULL;
    code[m] = -1;
    if (mp_process_create(&pr, target_forks_exiting_child, NULL,
                          &(mp_process_opts){.start_method = methods[m]}) ==
            0 &&
        mp_process_start(pr) == 0 && mp_process_join(pr, 30) == 0)
      (void)mp_process_exitcode(pr, &code[m]);
    mp_process_free(pr);
  }
  assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
  for (int m = 0; m < NMETHODS; m++)
    assert_int_equal(code[m], 3);
}

static int task_forks(const void *in, void *out) {
  (void)in;
  pid_t g = fork();
  if (g == 0)
    _exit(mp__worker_res_fd() == -1 ? 0 : 1);
  int st = 0;
  while (waitpid(g, &st, 0) < 0 && errno == EINTR)
    ;
  *(int *)out = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
  return 0;
}

static void test_grandchild_holds_no_worker_state(void **state) {
  (void)state;
  for (int m = 0; m < NMETHODS; m++) {
    mp_pool *p =
        mpt_pool((mp_pool_opts){.processes = 1, .start_method = methods[m]});
    int in = 0, out = -1;
    assert_int_equal(
        mp_pool_map(p, task_forks, &in, 1, sizeof in, &out, sizeof out, NULL),
        0);
    assert_int_equal(out, 0);
    mpt_pool_done(p);
  }
}

/* ---- forkserver: what crosses, and what cannot ---- */

static int g_base; /* 0 at start-up; set by the initializer from its bytes */

static void init_base(void *arg) { g_base = *(const int *)arg; }

static int add_base(const void *in, void *out) {
  *(int *)out = *(const int *)in + g_base;
  return 0;
}

static int echo(const void *arg, size_t len, mp_buf *res) {
  return mp_buf_append(res, arg, len);
}

static int target_checks_arg(void *arg) {
  const char *s = arg;
  return strcmp(s, "hello") == 0 ? 42 : 1;
}

/* g_base as this process sees it: a forkserver child sees start-up's. */
static int target_returns_base(void *arg) {
  (void)arg;
  return g_base;
}

static void test_forkserver_crossings(void **state) {
  (void)state;
  int base = 1000;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2,
                                       .start_method = MP_START_FORKSERVER,
                                       .initializer = init_base,
                                       .initarg = &base,
                                       .initarg_len = sizeof base});
  int in[16], out[16];
  for (int i = 0; i < 16; i++)
    in[i] = i;
  assert_int_equal(
      mp_pool_map(p, add_base, in, 16, sizeof *in, out, sizeof *out, NULL), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(out[i], 1000 + i);
  void *res;
  size_t len;
  assert_int_equal(mp_pool_apply(p, echo, "abc", 3, &res, &len, NULL), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(res, "abc", 3);
  free(res);
  /* Code made at run time has no reference: refused at submit. */
  mp_map_fn heap = (mp_map_fn)(uintptr_t)in;
  assert_int_equal(
      mp_pool_map(p, heap, in, 1, sizeof *in, out, sizeof *out, NULL),
      MP_EINVAL);
  mpt_pool_done(p);

  /* An initializer with no reference: refused at create. */
  mp_pool *bad = NULL;
  assert_int_equal(
      mp_pool_create(&bad, &(mp_pool_opts){.processes = 1,
                                           .start_method = MP_START_FORKSERVER,
                                           .initializer = (void (*)(void *))(
                                               uintptr_t)in}),
      MP_EINVAL);
  assert_null(bad);

  /* A process: its argument's bytes cross. */
  mp_process *pr;
  assert_int_equal(
      mp_process_create(&pr, target_checks_arg, "hello",
                        &(mp_process_opts){.start_method = MP_START_FORKSERVER,
                                           .arg_len = 6}),
      0);
  assert_int_equal(mp_process_start(pr), 0);
  assert_int_equal(mpt_finish(pr), 42);

  /* Memory as at start-up, not as the caller has it now. */
  g_base = 5;
  for (int m = 0; m < NMETHODS; m++) {
    assert_int_equal(
        mp_process_create(&pr, target_returns_base, NULL,
                          &(mp_process_opts){.start_method = methods[m]}),
        0);
    assert_int_equal(mp_process_start(pr), 0);
    assert_int_equal(mpt_finish(pr), methods[m] == MP_START_FORK ? 5 : 0);
  }
  g_base = 0;
}

/* A function from a library only this process loaded: every item of the
 * map and the apply fail with MP_ENOFUNC, the pool goes on. */
static void test_forkserver_enofunc(void **state) {
  (void)state;
  void *h = dlopen(FNREF_MODULE, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(h);
  mp_map_fn fn = (mp_map_fn)(uintptr_t)dlsym(h, "fnref_module_fn");
  assert_non_null(fn);
  mp_pool *p = mpt_pool(
      (mp_pool_opts){.processes = 2, .start_method = MP_START_FORKSERVER});
  int in[10] = {0}, out[10];
  mp_status st[10];
  assert_int_equal(mp_pool_map(p, fn, in, 10, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st, .chunksize = 3}),
                   MP_ENOFUNC);
  for (int i = 0; i < 10; i++)
    assert_int_equal(st[i].code, MP_ENOFUNC);
  void *res = NULL;
  size_t len = 1;
  mp_status ast;
  assert_int_equal(
      mp_pool_apply(p, (mp_apply_fn)(uintptr_t)fn, "x", 1, &res, &len, &ast),
      MP_ENOFUNC);
  assert_null(res);
  assert_int_equal(ast.code, MP_ENOFUNC);
  assert_squares(p, 20);
  mpt_pool_done(p);

  /* An initializer there: the server cannot resolve it, create says so. */
  mp_pool *bad = NULL;
  assert_int_equal(
      mp_pool_create(&bad, &(mp_pool_opts){.processes = 1,
                                           .start_method = MP_START_FORKSERVER,
                                           .initializer = (void (*)(void *))(
                                               uintptr_t)fn}),
      MP_ENOFUNC);
  assert_null(bad);
  /* A process target there: the child cannot resolve it, exits 127. */
  mp_process *pr;
  assert_int_equal(mp_process_create(
                       &pr, (mp_target_fn)(uintptr_t)fn, NULL,
                       &(mp_process_opts){.start_method = MP_START_FORKSERVER}),
                   0);
  assert_int_equal(mp_process_start(pr), 0);
  assert_int_equal(mpt_finish(pr), 127);
  dlclose(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_start_method_default),
      MPT_TEST(test_no_line_printed_twice),
      MPT_TEST(test_forkserver_beside_locking_threads),
      MPT_TEST(test_pool_outlives_creating_thread),
      MPT_TEST(test_creating_thread_exit_is_all_or_none),
      MPT_TEST(test_stopped_server_bounds_wait),
      MPT_TEST(test_free_with_stopped_server),
      MPT_TEST(test_stopped_server_dies_with_caller),
      MPT_TEST(test_gone_worker_shows_as_zero),
      MPT_TEST(test_no_parent_atexit_in_children),
      MPT_TEST(test_grandchild_does_not_report),
      MPT_TEST(test_grandchild_holds_no_worker_state),
      MPT_TEST(test_forkserver_crossings),
      MPT_TEST(test_forkserver_enofunc),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
