/* error.c: the error table. One X-macro list (mpool.h) gives the names
 * and messages of the library's own codes; the errno values have a table
 * of names, and their text is libc's. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(MP_EINVAL == -EINVAL, "MP_EINVAL must equal -EINVAL");

/* Every errno name Linux defines (the kernel's list, which every C library
 * on it shares). The aliases (EWOULDBLOCK for EAGAIN, EDEADLOCK,
 * ENOTSUP) are left out: a value is found under its first name. */
#define ERRNO_NAMES(XX)                                                        \
  XX(EPERM) XX(ENOENT) XX(ESRCH) XX(EINTR) XX(EIO) XX(ENXIO) XX(E2BIG)         \
  XX(ENOEXEC) XX(EBADF) XX(ECHILD) XX(EAGAIN) XX(ENOMEM) XX(EACCES)            \
  XX(EFAULT) XX(ENOTBLK) XX(EBUSY) XX(EEXIST) XX(EXDEV) XX(ENODEV)             \
  XX(ENOTDIR) XX(EISDIR) XX(EINVAL) XX(ENFILE) XX(EMFILE) XX(ENOTTY)           \
  XX(ETXTBSY) XX(EFBIG) XX(ENOSPC) XX(ESPIPE) XX(EROFS) XX(EMLINK) XX(EPIPE)   \
  XX(EDOM) XX(ERANGE) XX(EDEADLK) XX(ENAMETOOLONG) XX(ENOLCK) XX(ENOSYS)       \
  XX(ENOTEMPTY) XX(ELOOP) XX(ENOMSG) XX(EIDRM) XX(ECHRNG) XX(EL2NSYNC)         \
  XX(EL3HLT) XX(EL3RST) XX(ELNRNG) XX(EUNATCH) XX(ENOCSI) XX(EL2HLT)           \
  XX(EBADE) XX(EBADR) XX(EXFULL) XX(ENOANO) XX(EBADRQC) XX(EBADSLT)            \
  XX(EBFONT) XX(ENOSTR) XX(ENODATA) XX(ETIME) XX(ENOSR) XX(ENONET)             \
  XX(ENOPKG) XX(EREMOTE) XX(ENOLINK) XX(EADV) XX(ESRMNT) XX(ECOMM)             \
  XX(EPROTO) XX(EMULTIHOP) XX(EDOTDOT) XX(EBADMSG) XX(EOVERFLOW)               \
  XX(ENOTUNIQ) XX(EBADFD) XX(EREMCHG) XX(ELIBACC) XX(ELIBBAD) XX(ELIBSCN)      \
  XX(ELIBMAX) XX(ELIBEXEC) XX(EILSEQ) XX(ERESTART) XX(ESTRPIPE) XX(EUSERS)     \
  XX(ENOTSOCK) XX(EDESTADDRREQ) XX(EMSGSIZE) XX(EPROTOTYPE) XX(ENOPROTOOPT)    \
  XX(EPROTONOSUPPORT) XX(ESOCKTNOSUPPORT) XX(EOPNOTSUPP) XX(EPFNOSUPPORT)      \
  XX(EAFNOSUPPORT) XX(EADDRINUSE) XX(EADDRNOTAVAIL) XX(ENETDOWN)               \
  XX(ENETUNREACH) XX(ENETRESET) XX(ECONNABORTED) XX(ECONNRESET) XX(ENOBUFS)    \
  XX(EISCONN) XX(ENOTCONN) XX(ESHUTDOWN) XX(ETOOMANYREFS) XX(ETIMEDOUT)        \
  XX(ECONNREFUSED) XX(EHOSTDOWN) XX(EHOSTUNREACH) XX(EALREADY)                 \
  XX(EINPROGRESS) XX(ESTALE) XX(EUCLEAN) XX(ENOTNAM) XX(ENAVAIL) XX(EISNAM)    \
  XX(EREMOTEIO) XX(EDQUOT) XX(ENOMEDIUM) XX(EMEDIUMTYPE) XX(ECANCELED)         \
  XX(ENOKEY) XX(EKEYEXPIRED) XX(EKEYREVOKED) XX(EKEYREJECTED) XX(EOWNERDEAD)   \
  XX(ENOTRECOVERABLE) XX(ERFKILL) XX(EHWPOISON)

static const struct errno_name {
  int value;
  const char *name;
} errno_names[] = {
#define XX(e) {e, #e},
    ERRNO_NAMES(XX)
#undef XX
};

static const char *errno_name(int e) {
  for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
    if (errno_names[i].value == e)
      return errno_names[i].name;
  return NULL;
}

#if defined(__GLIBC__) &&                                                     \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
/* glibc's own static, thread-safe text; NULL for a value it does not know. */
static const char *errno_text(int e) {
  return strerrordesc_np(e);
}
#else
/* strerror_r into a buffer of the calling thread's own: a text stays valid
 * until that thread's next call for another errno value. */
static const char *errno_text(int e) {
  static _Thread_local char buf[128];
  if (!errno_name(e))
    return NULL;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(e, buf, sizeof buf);
#else
  return strerror_r(e, buf, sizeof buf) == 0 ? buf : NULL;
#endif
}
#endif

/* Whether code is -errno (the library's own codes are below -1000). */
static int is_errno(int code) { return code < 0 && code > -1000; }

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
  const char *s = is_errno(code) ? errno_text(-code) : NULL;
  return s ? s : "unknown error";
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
  const char *s = is_errno(code) ? errno_name(-code) : NULL;
  return s ? s : "UNKNOWN";
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
