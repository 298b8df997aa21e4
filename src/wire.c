/* wire.c: the pipe stream framing (magic, type, length, padding). The
 * payloads inside a frame are codec.c's; the bytes move through
 * sys/fdio.c. */
#include "internal.h"

#include <string.h>

void mp__frame_init(mp__frame_hdr *h, unsigned type, uint64_t id,
                    uint32_t len) {
  h->magic_type = MP__FRAME_MAGIC | type;
  h->len = len;
  h->id = id;
}

int mp__frame_check(const mp__frame_hdr *h, uint32_t max_len) {
  if ((h->magic_type & MP__FRAME_MAGIC_MASK) != MP__FRAME_MAGIC)
    return MP_EPROTO;
  unsigned type = h->magic_type & ~MP__FRAME_MAGIC_MASK;
  if (type < MP__FR_MAP || type > MP__FR_LAST)
    return MP_EPROTO;
  if (h->len > max_len)
    return MP_EPROTO;
  return (int)type;
}

int mp__frame_next(const void *buf, size_t len, uint32_t max_len,
                   mp__frame_hdr *h, size_t *frame_len) {
  *frame_len = 0;
  if (len < sizeof *h)
    return 0;
  memcpy(h, buf, sizeof *h);
  if (mp__frame_check(h, max_len) < 0)
    return MP_EPROTO;
  *frame_len = sizeof *h + (size_t)mp__padded(h->len);
  return len >= *frame_len;
}
