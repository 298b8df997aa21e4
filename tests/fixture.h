/* fixture.h: what every test file uses. Each test runs between mpt_setup and
 * mpt_teardown, which fail the test if it left a child, a zombie or an open
 * fd behind, or changed a signal disposition, the signal mask, the
 * child-subreaper flag or ITIMER_REAL; each is put back first, so one
 * failure cannot fail the next test. Memory is checked by the sanitizer and
 * valgrind runs. */
#ifndef MPOOL_TEST_FIXTURE_H
#define MPOOL_TEST_FIXTURE_H

/* Included first by every test file, so this reaches every system header:
 * NSIG, pipe2, prctl and friends. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "mpool.h"

/* The number of open fds of this process. */
int mpt_count_fds(void);
/* 1 if this process has a child (running or zombie), else 0. */
int mpt_has_children(void);

int mpt_setup(void **state);
int mpt_teardown(void **state);

#define MPT_TEST(f) cmocka_unit_test_setup_teardown(f, mpt_setup, mpt_teardown)

/* From main: a first argument, when given, is a cmocka name pattern
 * ('test_map*') that picks the tests MPT_RUN runs. */
void mpt_filter(int argc, char **argv);

/* Run the group; returns cmocka's failure count. */
#define MPT_RUN(tests) cmocka_run_group_tests(tests, NULL, NULL)

/* Wait up to ms milliseconds for pid, a child of ours, to exit; SIGKILL it
 * if it has not; reap it, its wait status into *status. Returns 1 if it
 * exited in time, else 0. */
int mpt_reap_within(pid_t pid, int ms, int *status);

/* mid, a child of ours, runs a pool whose n workers are given (the caller
 * made itself a child subreaper, so they become ours when mid dies): SIGKILL
 * mid, reap it, and give each worker a second to die (reaping it, killing
 * it if it has not). Clears the subreaper flag. Returns how many died in
 * time, -1 if mid could not be killed and reaped. */
int mpt_kill_parent_of(pid_t mid, const pid_t *workers, int n);

/* 1 under valgrind or a sanitizer (the presets set MPOOL_TEST_UNDER_TOOL;
 * an ASan build knows by itself): every fork and signal costs far more,
 * and the process's RSS says nothing about the library. */
int mpt_under_tool(void);

/* Every signal's disposition, and whether it could be read. */
typedef struct mpt_sigs {
  struct sigaction sa[NSIG];
  int valid[NSIG];
} mpt_sigs;
void mpt_sigs_save(mpt_sigs *s);
/* Fail unless every disposition is as saved, sa_flags exactly: even a
 * sigaction call that put the same action back shows (libc's
 * SA_RESTORER), which is stricter than the teardown's check. */
void mpt_sigs_assert_same(const mpt_sigs *s);

/* A pool made with opts, or fail the test. */
mp_pool *mpt_pool(mp_pool_opts opts);
/* Close, join and free p, failing the test if close or join fails. */
void mpt_pool_done(mp_pool *p);

/* 1 once pid, a child, is asleep in futex(2), as a process blocked in a
 * queue, lock or event is; 0 if not within max_s seconds; -1 if this kernel
 * does not say (no /proc/PID/syscall). Lets a test act on a process that
 * is really waiting, not one about to. */
int mpt_wait_in_futex(pid_t pid, double max_s);

/* The inodes of the pipes pid holds open (at most max of them), from
 * /proc/PID/fd. Returns how many were written. */
int mpt_pipe_inodes(pid_t pid, unsigned long *ino, int max);

/* Arm this process (a test's child) to be killed at its next futex(2)
 * call, before the call runs: a seccomp filter that answers futex with
 * SECCOMP_RET_KILL_PROCESS (the status says SIGSYS; no core file). Lets a
 * test kill a process exactly between a change to shared memory and the
 * wakeup that announces it. Returns 0, or -errno when this system cannot
 * (no seccomp, an architecture the filter does not know). */
int mpt_die_at_futex(void);
/* 1 when mpt_die_at_futex works here: a child armed with it lives until
 * its futex call and dies there (checked once per process, in a child:
 * valgrind, say, may use futexes of its own). Else 0: the test skips. */
int mpt_die_at_futex_works(void);

/* CLOCK_MONOTONIC in seconds. */
double mpt_now(void);
/* Create and start a process running fn(arg), or fail the test. */
mp_process *mpt_start(mp_target_fn fn, void *arg);
/* Join and free p; returns its exit code (fails the test if it cannot). */
int mpt_finish(mp_process *p);
/* As mpt_finish, but p gets max_s seconds to end: one still running then
 * is killed and reaped, and MPT_HUNG is returned. For a process that waits
 * forever on something the test expects to come. */
#define MPT_HUNG (-1000)
int mpt_finish_within(mp_process *p, double max_s);

/* Blocking helpers for tests: write/read exactly n bytes or fail the test. */
void mpt_write(int fd, const void *buf, size_t n);
void mpt_read(int fd, void *buf, size_t n);
/* Read until EOF into a malloc'd, NUL-terminated buffer. */
char *mpt_read_all(int fd, size_t *len);

/* ---- start methods: the same tests under fork and forkserver ----
 * ctest runs the pool and fault suites a second time with
 * MPOOL_START_METHOD=forkserver. A forkserver worker is not a copy of the
 * test process: it holds none of its fds and shares none of its memory,
 * and sees globals as they were at start-up. Tasks reach the test's fds
 * and shared memory through these. */

/* 1 when pools and processes start by forkserver here (the default the
 * environment chose), else 0. */
int mpt_forkserver(void);

/* In a task or initializer: fd, an fd of the test process, as this
 * process can use it: fd itself in a forked worker, which inherited it;
 * in a forkserver worker the test's own pipe or file, opened through
 * /proc/<test pid>/fd (cached: the same fd comes back for the same fd).
 * -1 when it cannot be. */
int mpt_peer_fd(int fd);

/* Memory a test shares with its workers under either method. */
typedef struct mpt_shared {
  void *ptr;  /* in the test process */
  int fd;     /* its memfd, in the test process */
  size_t len;
} mpt_shared;
/* len zeroed bytes, MAP_SHARED, or fail the test. */
void mpt_shared_new(mpt_shared *s, size_t len);
void mpt_shared_free(mpt_shared *s);
/* In a task or initializer: the same bytes (mapped through mpt_peer_fd
 * in a forkserver worker, once), or NULL. */
void *mpt_shared_ptr(const mpt_shared *s);

#endif
