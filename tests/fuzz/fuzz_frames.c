/* fuzz_frames.c: libFuzzer harness for the frame decoder. The input is a
 * byte stream as a worker (or the parent) might send it; it is parsed the way
 * pool.c and worker.c parse theirs, and every invariant the callers rely on
 * is checked. Build: clang -fsanitize=fuzzer,address (see .ci/fuzz). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The first byte picks the decoder's bound, as the head task would. */
  uint32_t max_len = size ? (uint32_t)data[0] << 8 : 0;
  size_t off = size ? 1 : 0;
  while (off <= size) {
    mp__frame_hdr h;
    size_t need = 12345;
    int r = mp__frame_next(data + off, size - off, max_len, &h, &need);
    if (r < 0)
      break;
    if (r == 0) {
      /* Incomplete: a caller grows its buffer to need, which must be a
       * validated size. */
      if (need && (need % MP__ALIGN || need < sizeof h ||
                   need > sizeof h + (size_t)max_len + MP__ALIGN - 1))
        abort();
      break;
    }
    if (need % MP__ALIGN || need < sizeof h || need > size - off ||
        h.len > max_len)
      abort();
    /* Payload copied out, so the checks see an aligned, exact buffer. */
    void *payload = malloc(h.len ? h.len : 1);
    if (!payload)
      abort();
    memcpy(payload, data + off + sizeof h, h.len);
    unsigned type = h.magic_type & ~MP__FRAME_MAGIC_MASK;
    if (type == MP__FR_MAP) {
      mp__map_task t;
      if (mp__map_task_check(payload, h.len, &t) == 0 &&
          (uint64_t)t.count * t.in_size + sizeof t != h.len)
        abort();
    } else if (type == MP__FR_APPLY_RES) {
      (void)mp__apply_res_check(payload, h.len, max_len);
    } else if (type == MP__FR_MAP_RES) {
      uint32_t count = (uint32_t)(h.id & 0xffff), out_size = (uint32_t)(h.id >> 16 & 0xffff);
      int r2 = mp__map_res_check(h.len, count, out_size);
      if ((r2 == 1 && (uint64_t)count * (4 + (uint64_t)out_size) != h.len) ||
          (r2 == 0 && (uint64_t)count * out_size != h.len))
        abort();
    }
    free(payload);
    off += need;
  }
  return 0;
}
