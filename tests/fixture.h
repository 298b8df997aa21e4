/* fixture.h: what every test file uses. Each test runs between mpt_setup and
 * mpt_teardown, which fail the test if it left a child, a zombie or an open
 * fd behind, or changed a signal disposition, the signal mask, the
 * child-subreaper flag or ITIMER_REAL; each is put back first, so one
 * failure cannot fail the next test. Memory is checked by the sanitizer and
 * valgrind runs. */
#ifndef MPOOL_TEST_FIXTURE_H
#define MPOOL_TEST_FIXTURE_H

#include <setjmp.h>
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

/* 1 if pid, a child of ours, has exited (not reaped) within ms
 * milliseconds, else 0. A pidfd when the kernel (and valgrind) has one,
 * else its status is polled for the same time. */
int mpt_exited_within(pid_t pid, int ms);

/* 1 once pid, a child, is asleep in futex(2), as a process blocked in a
 * queue, lock or event is; 0 if not within max_s seconds; -1 if this kernel
 * does not say (no /proc/PID/syscall). Lets a test act on a process that
 * is really waiting, not one about to. */
int mpt_wait_in_futex(pid_t pid, double max_s);

/* CLOCK_MONOTONIC in seconds. */
double mpt_now(void);
/* Create and start a process running fn(arg), or fail the test. */
mp_process *mpt_start(mp_target_fn fn, void *arg);
/* Join and free p; returns its exit code (fails the test if it cannot). */
int mpt_finish(mp_process *p);

/* Blocking helpers for tests: write/read exactly n bytes or fail the test. */
void mpt_write(int fd, const void *buf, size_t n);
void mpt_read(int fd, void *buf, size_t n);
/* Read until EOF into a malloc'd, NUL-terminated buffer. */
char *mpt_read_all(int fd, size_t *len);

#endif
