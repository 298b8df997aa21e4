/* test_wire.c: frame validation and the raw I/O helpers. */
#include "fixture.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void test_frame_check(void **state) {
  (void)state;
  mp__frame_hdr h;
  for (unsigned t = MP__FR_MAP; t <= MP__FR_LAST; t++) {
    mp__frame_init(&h, t, 42, 100);
    assert_int_equal(mp__frame_check(&h, 100), (int)t);
    assert_int_equal(mp__frame_check(&h, 99), MP_EPROTO); /* too long */
  }
  mp__frame_init(&h, 0, 1, 0);
  assert_int_equal(mp__frame_check(&h, 10), MP_EPROTO); /* unknown type */
  mp__frame_init(&h, MP__FR_LAST + 1, 1, 0);
  assert_int_equal(mp__frame_check(&h, 10), MP_EPROTO);
  mp__frame_init(&h, MP__FR_MAP, 1, 0);
  h.magic_type ^= 0x10000000u; /* bad magic */
  assert_int_equal(mp__frame_check(&h, 10), MP_EPROTO);
  memset(&h, 0xff, sizeof h);
  assert_int_equal(mp__frame_check(&h, UINT32_MAX), MP_EPROTO);
}

/* A task sent by reference that failed whole: only MP_ENOFUNC, exactly a
 * header long, detail and reserved zero. */
static void test_task_fail_check(void **state) {
  (void)state;
  mp__apply_res r = {MP_ENOFUNC, 0, 0};
  int code = 0;
  assert_int_equal(mp__task_fail_check(&r, sizeof r, &code), 0);
  assert_int_equal(code, MP_ENOFUNC);
  assert_int_equal(mp__task_fail_check(&r, sizeof r - 1, &code), MP_EPROTO);
  assert_int_equal(mp__task_fail_check(&r, sizeof r + 1, &code), MP_EPROTO);
  r.detail = 1;
  assert_int_equal(mp__task_fail_check(&r, sizeof r, &code), MP_EPROTO);
  r = (mp__apply_res){MP_ETASK, 1, 0};
  assert_int_equal(mp__task_fail_check(&r, sizeof r, &code), MP_EPROTO);
  r = (mp__apply_res){MP_ENOFUNC, 0, 1};
  assert_int_equal(mp__task_fail_check(&r, sizeof r, &code), MP_EPROTO);
}

static void test_map_res_check(void **state) {
  (void)state;
  assert_int_equal(mp__map_res_check(3 * (4 + 8), 3, 8), 1); /* with codes */
  assert_int_equal(mp__map_res_check(3 * 8, 3, 8), 0);       /* all succeeded */
  assert_int_equal(mp__map_res_check(3 * (4 + 8) - 1, 3, 8), MP_EPROTO);
  assert_int_equal(mp__map_res_check(3 * (4 + 8) + 1, 3, 8), MP_EPROTO);
  assert_int_equal(mp__map_res_check(3 * 8 + 4, 3, 8), MP_EPROTO);
  /* Overflow of count * size must not wrap to the given length. */
  assert_int_equal(mp__map_res_check(0, 0x40000000u, 0xfffffffcu), MP_EPROTO);
}

static void test_apply_res_check(void **state) {
  (void)state;
  char buf[64] = {0};
  mp__apply_res r = {.code = 0};
  memcpy(buf, &r, sizeof r);
  assert_int_equal(mp__apply_res_check(buf, sizeof r + 10, 10), 0);
  assert_int_equal(mp__apply_res_check(buf, sizeof r + 11, 10), MP_EPROTO);
  assert_int_equal(mp__apply_res_check(buf, sizeof r - 1, 10), MP_EPROTO);
  r = (mp__apply_res){.code = MP_ETASK, .detail = 7};
  memcpy(buf, &r, sizeof r);
  assert_int_equal(mp__apply_res_check(buf, sizeof r, 10), 0);
  assert_int_equal(mp__apply_res_check(buf, sizeof r + 1, 10), MP_EPROTO);
  r = (mp__apply_res){.code = MP_ETASK, .detail = 0}; /* failure with detail 0 is a lie */
  memcpy(buf, &r, sizeof r);
  assert_int_equal(mp__apply_res_check(buf, sizeof r, 10), MP_EPROTO);
  r = (mp__apply_res){.code = 12345, .detail = 0}; /* unknown code */
  memcpy(buf, &r, sizeof r);
  assert_int_equal(mp__apply_res_check(buf, sizeof r, 10), MP_EPROTO);
  r = (mp__apply_res){.code = -EMSGSIZE, .detail = 0};
  memcpy(buf, &r, sizeof r);
  assert_int_equal(mp__apply_res_check(buf, sizeof r, 10), 0);
}

static void test_frame_next(void **state) {
  (void)state;
  char buf[64] = {0};
  mp__frame_hdr h, got;
  size_t need = 99;
  assert_int_equal(mp__frame_next(buf, 0, 100, &got, &need), 0); /* nothing */
  assert_int_equal(need, 0);
  mp__frame_init(&h, MP__FR_MAP_RES, 7, 20);
  memcpy(buf, &h, sizeof h);
  assert_int_equal(mp__frame_next(buf, 10, 100, &got, &need), 0); /* half a header */
  assert_int_equal(need, 0);
  /* Header in, payload not: need is the padded frame size. */
  assert_int_equal(mp__frame_next(buf, 20, 100, &got, &need), 0);
  assert_int_equal(need, 16 + 32);
  assert_int_equal(got.id, 7);
  assert_int_equal(mp__frame_next(buf, 47, 100, &got, &need), 0);
  assert_int_equal(mp__frame_next(buf, 48, 100, &got, &need), 1);
  assert_int_equal(need, 48);
  assert_int_equal(mp__frame_next(buf, 64, 100, &got, &need), 1);
  /* Too long for the bound, or garbage: an error at once, before any
   * payload arrives. */
  assert_int_equal(mp__frame_next(buf, 16, 19, &got, &need), MP_EPROTO);
  memset(buf, 0xab, 16);
  assert_int_equal(mp__frame_next(buf, 16, 100, &got, &need), MP_EPROTO);
}

static void test_map_task_check(void **state) {
  (void)state;
  char buf[sizeof(mp__map_task) + 12];
  mp__map_task t = {.fn = 1, .in_size = 4, .out_size = 8, .count = 3}, got;
  memcpy(buf, &t, sizeof t);
  assert_int_equal(mp__map_task_check(buf, sizeof buf, &got), 0);
  assert_int_equal(got.count, 3);
  assert_int_equal(mp__map_task_check(buf, sizeof buf - 1, &got), MP_EPROTO);
  assert_int_equal(mp__map_task_check(buf, sizeof t - 1, &got), MP_EPROTO);
  t.count = 0;
  memcpy(buf, &t, sizeof t);
  assert_int_equal(mp__map_task_check(buf, sizeof t, &got), MP_EPROTO);
  t = (mp__map_task){.in_size = 0x80000000u, .out_size = 4, .count = 2};
  memcpy(buf, &t, sizeof t); /* count * in_size wraps 32 bits */
  assert_int_equal(mp__map_task_check(buf, sizeof t, &got), MP_EPROTO);
}

static void test_full_io_and_eof(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(mp__pipe(fds), 0);
  assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
  assert_true(fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
  assert_int_equal(mp__write_full(fds[1], "hello", 5), 0);
  mp__close(fds[1]);
  char buf[16];
  assert_int_equal(mp__read_full(fds[0], buf, sizeof buf), 5); /* short: EOF */
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(mp__read_full(fds[0], buf, sizeof buf), 0);
  mp__close(fds[0]);
}

static void test_nonblocking(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(mp__pipe(fds), 0);
  assert_int_equal(mp__set_nonblock(fds[0]), 0);
  assert_int_equal(mp__set_nonblock(fds[1]), 0);
  char buf[4096];
  assert_int_equal(mp__read_some(fds[0], buf, sizeof buf), -EAGAIN);
  memset(buf, 'x', sizeof buf);
  struct iovec iov = {buf, sizeof buf};
  ssize_t total = 0, w;
  while ((w = mp__writev_some(fds[1], &iov, 1)) > 0)
    total += w;
  assert_int_equal(w, -EAGAIN); /* full */
  assert_true(total >= 4096);
  mp__close(fds[0]);
  mp__close(fds[1]);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_frame_check),
      MPT_TEST(test_map_res_check),
      MPT_TEST(test_task_fail_check),
      MPT_TEST(test_apply_res_check),
      MPT_TEST(test_frame_next),
      MPT_TEST(test_map_task_check),
      MPT_TEST(test_full_io_and_eof),
      MPT_TEST(test_nonblocking),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
