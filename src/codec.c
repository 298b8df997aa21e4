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
