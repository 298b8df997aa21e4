/* error.c: the error table. One X-macro list gives names and messages. */
#include "internal.h"

#include <errno.h>
#include <string.h>

_Static_assert(MP_EINVAL == -EINVAL, "MP_EINVAL must equal -EINVAL");

/* The errno values the library returns, and those a task is likely to meet. */
#define ERRNO_NAMES(XX)                                                        \
  XX(EPERM) XX(ENOENT) XX(ESRCH) XX(EINTR) XX(EIO) XX(E2BIG) XX(EBADF)         \
  XX(ECHILD) XX(EAGAIN) XX(ENOMEM) XX(EACCES) XX(EFAULT) XX(EBUSY)             \
  XX(EEXIST) XX(EINVAL) XX(ENFILE) XX(EMFILE) XX(ENOSPC) XX(EPIPE)             \
  XX(ERANGE) XX(EDEADLK) XX(ENAMETOOLONG) XX(ENOSYS) XX(EOVERFLOW)             \
  XX(EMSGSIZE) XX(ETIMEDOUT) XX(ECANCELED) XX(EOWNERDEAD)                      \
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
