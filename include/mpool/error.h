/*
 * mpool/error.h: errors: the MP_E* codes, their names and messages, and
 * mp_status, the outcome of one task.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_ERROR_H
#define MPOOL_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The library's own codes. They lie below -1000, outside errno's range, so a
 * return value is either 0, a negated errno value, or one of these.
 */
#define MP_ERRNO_MAP(XX)                                                      \
  XX(ECRASHED, -1001, "task's worker crashed (signal or exit)")               \
  XX(ETIMEDOUT, -1002, "timed out")                                           \
  XX(ETASK, -1003, "task function reported failure")                          \
  XX(ECLOSED, -1004, "pool closed or terminated")                             \
  XX(ESTATE, -1005, "call not valid in the object's current state")           \
  XX(EPROTO, -1006, "worker sent bytes that are not a valid frame")           \
  XX(EOF, -1007, "no more items")                                             \
  XX(EPEERDEAD, -1008, "peer process is gone")                                \
  XX(EOWNERDEAD, -1009, "lock acquired; its previous holder died holding it") \
  XX(ENOFUNC, -1010, "function cannot be found in the worker's process")   \
  XX(EBROKEN, -1011, "barrier is broken")                                     \
  XX(EAUTH, -1012, "authentication with the peer failed")

enum {
#define MP__ERR_ENUM(name, value, msg) MP_##name = (value),
  MP_ERRNO_MAP(MP__ERR_ENUM)
#undef MP__ERR_ENUM
  /* Bad argument: a NULL handle or target, a zero size, an absurd count. */
  MP_EINVAL = -22 /* == -EINVAL */
};

/*
 * A static English message for any return code: 0, -errno (the C
 * library's own text for it, as strerror gives) or MP_E*. Never NULL;
 * codes that are none of these give "unknown error". Safe from any thread:
 * the text is never overwritten by a later call.
 */
MP_EXPORT const char *mp_strerror(int code);

/*
 * The code's symbolic name without sign: "ECRASHED", "EAGAIN", "OK" for 0;
 * every errno value the system defines has its name (a value with two
 * names gets one: "EAGAIN", not "EWOULDBLOCK"); "UNKNOWN" for any other
 * code. Static; never NULL.
 */
MP_EXPORT const char *mp_err_name(int code);

/*
 * The outcome of one task or item. code is 0 on success, else one of:
 *   MP_ETASK      the task function returned non-zero; detail is that value.
 *   MP_ECRASHED   the worker died running it; detail is -N if signal N killed
 *                 it, the exit status if it called exit(), or 0 when the
 *                 status could not be learned (SIGCHLD set to SIG_IGN).
 *   MP_ETIMEDOUT  it ran past the pool's task_timeout and was killed.
 *   MP_EPROTO     it wrote bytes to its worker's result pipe that are not
 *                 a valid frame (under the shm transport, where that pipe
 *                 carries only the worker's wake-up bytes: any byte), or
 *                 scribbled on its ring; the worker was killed. Only that
 *                 item fails: the other items of its chunk deliver or run
 *                 again.
 *   MP_ECLOSED    the pool was terminated before it finished.
 *   MP_ENOFUNC    the process that was to run it cannot resolve its
 *                 function (see "Functions cross as references"); only
 *                 transports whose workers are not forked copies give it.
 *   -EMSGSIZE     (apply) the result grew past the pool's max_result_bytes.
 *   -errno        the library could not run it, or receive its result
 *                 (e.g. -ENOMEM).
 */
typedef struct mp_status {
  int code;
  int detail;
} mp_status;

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_ERROR_H */
