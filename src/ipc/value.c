/* value.c: mp_value, Python's Value and Array: shared bytes and their lock
 * in one shared anonymous mapping. */
#include "ipc_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The lock, then the bytes at a cache-line boundary (aligned for any type). */
#define VALUE_DATA_OFF 64
_Static_assert(sizeof(pthread_mutex_t) <= VALUE_DATA_OFF,
               "the mutex must fit before the data");

/* A sane ceiling: the mapping is reserved, not touched, but its size must
 * still fit the address space. */
#define VALUE_MAX ((size_t)1 << 40)

struct mp_value {
  pthread_mutex_t *mu; /* start of the mapping */
  unsigned char *data;
  size_t size;
  size_t map_len;
};

int mp_value_create(mp_value **out, size_t size) {
  if (!out || size == 0 || size > VALUE_MAX)
    return MP_EINVAL;
  mp_value *v = malloc(sizeof *v);
  if (!v)
    return -ENOMEM;
  void *m;
  v->size = size;
  v->map_len = VALUE_DATA_OFF + size;
  int rc = mp__ipc_map_locked(&m, v->map_len);
  if (rc < 0) {
    free(v);
    return rc;
  }
  v->mu = m;
  v->data = (unsigned char *)m + VALUE_DATA_OFF;
  *out = v;
  return 0;
}

int mp_array_create(mp_value **out, size_t n, size_t elem_size) {
  if (!out || n == 0 || elem_size == 0 || n > VALUE_MAX / elem_size)
    return MP_EINVAL;
  return mp_value_create(out, n * elem_size);
}

void *mp_value_ptr(const mp_value *v) { return v ? v->data : NULL; }

size_t mp_value_size(const mp_value *v) { return v ? v->size : 0; }

int mp_value_lock(mp_value *v, double timeout) {
  if (!v)
    return MP_EINVAL;
  return mp__ipc_mutex_lock(v->mu, mp__deadline(timeout));
}

int mp_value_unlock(mp_value *v) {
  if (!v)
    return MP_EINVAL;
  return mp__ipc_mutex_unlock(v->mu);
}

/* Copy size bytes from src to dst under the value's lock. Returns 0, or
 * MP_EOWNERDEAD (copied all the same) when a holder died holding it. */
static int value_copy(mp_value *v, void *dst, const void *src) {
  int rc = mp__ipc_mutex_lock(v->mu, INT64_MAX);
  if (rc < 0 && rc != MP_EOWNERDEAD)
    return rc;
  memcpy(dst, src, v->size);
  mp__ipc_mutex_unlock(v->mu);
  return rc;
}

int mp_value_load(mp_value *v, void *dst) {
  if (!v || !dst)
    return MP_EINVAL;
  return value_copy(v, dst, v->data);
}

int mp_value_store(mp_value *v, const void *src) {
  if (!v || !src)
    return MP_EINVAL;
  return value_copy(v, v->data, src);
}

void mp_value_free(mp_value *v) {
  if (!v)
    return;
  mp__ipc_unmap(v->mu, v->map_len);
  free(v);
}
