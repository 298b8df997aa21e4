/* buf.c: mp_buf, the growable buffer a task writes its result into (and a
 * streaming source its items), capped at the pool's result size. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *mp_buf_grow(mp_buf *b, size_t n) {
  if (!b)
    return NULL;
  if (b->err)
    return NULL;
  if (n > b->max - b->len) {
    b->err = -EMSGSIZE;
    return NULL;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap = cap > b->max / 2 ? b->max : cap * 2;
    char *d = realloc(b->data, sizeof(mp__apply_res) + cap);
    if (!d) {
      b->err = -ENOMEM;
      return NULL;
    }
    b->data = d;
    b->cap = cap;
  }
  void *p = b->data + sizeof(mp__apply_res) + b->len;
  b->len += n;
  return p;
}

mp_buf *mp__buf_new(size_t max) {
  mp_buf *b = calloc(1, sizeof *b);
  if (b)
    b->max = max;
  return b;
}

void mp__buf_reset(mp_buf *b) {
  b->len = 0;
  b->err = 0;
}

const char *mp__buf_bytes(const mp_buf *b, size_t *len, int *err) {
  *len = b->len;
  *err = b->err;
  return b->data ? b->data + sizeof(mp__apply_res) : NULL;
}

void mp__buf_free(mp_buf *b) {
  if (b)
    free(b->data);
  free(b);
}

int mp_buf_append(mp_buf *b, const void *data, size_t n) {
  if (!b || (!data && n))
    return MP_EINVAL;
  void *p = mp_buf_grow(b, n);
  if (!p)
    return n ? b->err : 0;
  if (n)
    memcpy(p, data, n);
  return 0;
}
