/* error.c: the error table. One X-macro list gives names and messages. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(MP_EINVAL == -EINVAL, "MP_EINVAL must equal -EINVAL");

/* The errno values the library returns, and those a task is likely to meet. */
#define ERRNO_NAMES(XX)                                                        \
  XX(EPERM) XX(ENOENT) XX(ESRCH) XX(EINTR) XX(EIO) XX(E2BIG) XX(EBADF)         \
  XX(ECHILD) XX(EAGAIN) XX(ENOMEM) XX(EACCES) XX(EFAULT) XX(EBUSY)             \
  XX(EEXIST) XX(EINVAL) XX(ENFILE) XX(EMFILE) XX(ENOSPC) XX(EPIPE)             \
  XX(ERANGE) XX(EDEADLK) XX(ENAMETOOLONG) XX(ENOSYS) XX(EOVERFLOW)             \
  XX(EMSGSIZE) XX(ETIMEDOUT) XX(ECANCELED) XX(EOWNERDEAD) XX(EHOSTDOWN)       \
  XX(ENOTRECOVERABLE)

const char *mp_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define XX(name, value, msg)                                                   \
  case value:                                                                  \
    return msg;
    MP_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (code < 0 && code > -1000) {
    switch (-code) {
#define XX(name)                                                               \
  case name:                                                                   \
    return strerror(name);
      ERRNO_NAMES(XX)
#undef XX
    default:
      break;
    }
  }
  return "unknown error";
}

const char *mp_err_name(int code) {
  switch (code) {
  case 0:
    return "OK";
#define XX(name, value, msg)                                                   \
  case value:                                                                  \
    return #name;
    MP_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (code < 0 && code > -1000) {
    switch (-code) {
#define XX(name)                                                               \
  case name:                                                                   \
    return #name;
      ERRNO_NAMES(XX)
#undef XX
    default:
      break;
    }
  }
  return "UNKNOWN";
}

const char *mp_version(void) { return MP__VERSION_STRING; }

const char *mp_status_str(const mp_status *st, char *buf, size_t len) {
  if (!buf || !len)
    return buf;
  if (!st) {
    snprintf(buf, len, "(no status)");
    return buf;
  }
  switch (st->code) {
  case 0:
    snprintf(buf, len, "ok");
    break;
  case MP_ETASK:
    snprintf(buf, len, "task returned %d", st->detail);
    break;
  case MP_ECRASHED:
    if (st->detail < 0)
      snprintf(buf, len, "killed by signal %d (%s)", -st->detail,
               strsignal(-st->detail));
    else if (st->detail > 0)
      snprintf(buf, len, "exit status %d", st->detail);
    else
      snprintf(buf, len, "crashed (status lost: SIGCHLD ignored)");
    break;
  case MP_ETIMEDOUT:
    snprintf(buf, len, "timed out");
    break;
  default:
    snprintf(buf, len, "%s", mp_strerror(st->code));
    break;
  }
  return buf;
}
