/* codec.c: the payloads a task and its result carry, whatever moves them:
 * a map task (function, sizes, count, inputs), a map result (outputs, then
 * the items' codes when any is non-zero), an apply result (code, detail,
 * bytes). Every check here validates bytes that came from another process. */
#include "internal.h"

#include <errno.h>
#include <string.h>

int mp__map_res_check(uint32_t len, uint32_t count, uint32_t out_size) {
  uint64_t outs = (uint64_t)count * out_size;
  if (len == outs + (uint64_t)count * sizeof(int32_t))
    return 1;
  return len == outs ? 0 : MP_EPROTO;
}

int mp__map_task_check(const void *payload, uint32_t len, mp__map_task *t) {
  if (len < sizeof *t)
    return MP_EPROTO;
  memcpy(t, payload, sizeof *t);
  uint64_t in_bytes = (uint64_t)t->count * t->in_size;
  if (t->count == 0 || t->in_size == 0 || t->out_size == 0 ||
      in_bytes != len - sizeof *t)
    return MP_EPROTO;
  return 0;
}

int mp__apply_res_check(const void *payload, uint32_t len, uint32_t max_res) {
  mp__apply_res h;
  if (len < sizeof h)
    return MP_EPROTO;
  memcpy(&h, payload, sizeof h);
  uint32_t body = len - (uint32_t)sizeof h;
  if (body > max_res)
    return MP_EPROTO;
  switch (h.code) {
  case 0:
    return 0;
  case MP_ETASK:
    return (body == 0 && h.detail != 0) ? 0 : MP_EPROTO;
  case -EMSGSIZE:
  case -ENOMEM:
    return body == 0 ? 0 : MP_EPROTO;
  default:
    return MP_EPROTO;
  }
}

int mp__bytes_task_check(const void *payload, uint32_t len, mp__bytes_task *t,
                         const uint32_t **lens, const char **data) {
  if (len < sizeof *t)
    return MP_EPROTO;
  memcpy(t, payload, sizeof *t);
  size_t body = len - sizeof *t;
  if (t->count == 0 || t->count > body / sizeof(uint32_t))
    return MP_EPROTO;
  const char *p = (const char *)payload + sizeof *t;
  size_t head = mp__pad8((size_t)t->count * sizeof(uint32_t)), sum = 0;
  if (head > body)
    return MP_EPROTO;
  for (uint32_t i = 0; i < t->count; i++) {
    uint32_t l;
    memcpy(&l, p + (size_t)i * sizeof l, sizeof l);
    sum += mp__pad8(l);
    if (sum > body - head)
      return MP_EPROTO;
  }
  if (sum != body - head)
    return MP_EPROTO;
  *lens = (const uint32_t *)(const void *)p;
  *data = p + head;
  return 0;
}

int mp__bytes_res_check(const void *payload, uint32_t len, uint32_t count,
                        uint32_t max_res) {
  size_t head = (size_t)count * sizeof(mp__item_res);
  if (count == 0 || len < head)
    return MP_EPROTO;
  size_t sum = 0;
  for (uint32_t i = 0; i < count; i++) {
    mp__item_res r;
    memcpy(&r, (const char *)payload + (size_t)i * sizeof r, sizeof r);
    if (r.len > max_res || (r.code != 0 && r.len != 0))
      return MP_EPROTO;
    switch (r.code) {
    case 0:
      break;
    case MP_ETASK:
      if (r.detail == 0)
        return MP_EPROTO;
      break;
    case -EMSGSIZE:
    case -ENOMEM:
      break;
    default:
      return MP_EPROTO;
    }
    sum += mp__pad8(r.len);
    if (sum > len - head)
      return MP_EPROTO;
  }
  return sum == len - head ? 0 : MP_EPROTO;
}

int mp__status_check(int32_t code, int32_t detail) {
  switch (code) {
  case 0:
    return detail == 0 ? 0 : MP_EPROTO;
  case MP_ETASK:
    return detail != 0 ? 0 : MP_EPROTO;
  case MP_ECRASHED:
  case MP_ETIMEDOUT:
  case MP_EPROTO:
  case MP_ECLOSED:
  case MP_ENOFUNC:
    return 0;
  default:
    return code < 0 && code > -4096 ? 0 : MP_EPROTO;
  }
}

int mp__map_res_st_check(const void *payload, uint32_t len, uint32_t count,
                         uint32_t out_size) {
  uint64_t outs = (uint64_t)count * out_size;
  if (len != outs + (uint64_t)count * sizeof(mp__item_st))
    return MP_EPROTO;
  const char *st = (const char *)payload + outs;
  for (uint32_t i = 0; i < count; i++) {
    mp__item_st s;
    memcpy(&s, st + (size_t)i * sizeof s, sizeof s);
    if (mp__status_check(s.code, s.detail) < 0)
      return MP_EPROTO;
  }
  return 0;
}

int mp__apply_res_st_check(const void *payload, uint32_t len,
                           uint32_t max_res) {
  mp__apply_res h;
  if (len < sizeof h)
    return MP_EPROTO;
  memcpy(&h, payload, sizeof h);
  uint32_t body = len - (uint32_t)sizeof h;
  if (body > max_res || (h.code != 0 && body != 0))
    return MP_EPROTO;
  return mp__status_check(h.code, h.detail);
}

int mp__task_fail_check(const void *payload, uint32_t len, int *code) {
  mp__apply_res h;
  if (len != sizeof h)
    return MP_EPROTO;
  memcpy(&h, payload, sizeof h);
  if (h.code != MP_ENOFUNC || h.detail != 0 || h.reserved != 0)
    return MP_EPROTO;
  *code = h.code;
  return 0;
}
