/* buf.h: the body of mp_buf, shared by buf.c, which grows it, and the
 * worker loop, which keeps one result buffer across tasks. */
#ifndef MPOOL_BUF_H
#define MPOOL_BUF_H

#include "internal.h"

#include <stddef.h>

struct mp_buf {
  char *data;   /* room for an mp__apply_res header, then the result */
  size_t len;   /* result bytes after the header */
  size_t cap;   /* bytes allocated after the header */
  size_t max;   /* the pool's cap on len */
  int err;      /* first failure: -ENOMEM or -EMSGSIZE */
};

#endif /* MPOOL_BUF_H */
