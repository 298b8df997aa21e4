/* sys/clock.h: the monotonic clock, deadlines, and seconds as nanoseconds.
 * Header-only (static inline), so that libmpool_mpi, which reaches none of
 * the core's hidden symbols, uses the same clock as the core. */
#ifndef MPOOL_SYS_CLOCK_H
#define MPOOL_SYS_CLOCK_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

/* Seconds as nanoseconds, truncated. The caller bounds s first (finite,
 * at most 1e9: 31 years, and no overflow). */
static inline int64_t mp__sec_to_ns(double s) { return (int64_t)(s * 1e9); }

/* A time in nanoseconds as a timespec (an absolute deadline for the calls
 * that take one). */
static inline struct timespec mp__ns_timespec(int64_t ns) {
  struct timespec ts = {.tv_sec = ns / 1000000000,
                        .tv_nsec = ns % 1000000000};
  return ts;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t mp__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Deadline for a timeout in seconds (negative or NaN: none, returns
 * INT64_MAX). */
static inline int64_t mp__deadline(double timeout) {
  if (!(timeout >= 0)) /* negative or NaN: no deadline */
    return INT64_MAX;
  if (timeout > 1e9) /* 31 years, and no overflow below */
    timeout = 1e9;
  return mp__now_ns() + mp__sec_to_ns(timeout);
}

/* Milliseconds left until deadline for poll(): -1 forever, >= 0 otherwise,
 * rounded up so a poll never wakes just before the deadline. */
static inline int mp__ms_left(int64_t deadline) {
  if (deadline == INT64_MAX)
    return -1;
  int64_t left = deadline - mp__now_ns();
  if (left <= 0)
    return 0;
  int64_t ms = (left + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

#endif /* MPOOL_SYS_CLOCK_H */
