/*
 * test_shmchan.c: the shared-memory channel (src/shmchan.h) in one
 * process, both sides of one channel mapped side by side: frames of many
 * sizes across the rings' wrap-around, partial puts, the validation of
 * the indices a peer can write, the wake protocol (sleep words and the
 * wake-up byte), and the worker's bounded futex wait. Pools over the
 * channel are test_shm.c's.
 */
#include "fixture.h"

#include "../src/shmchan.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { RING = MP__RING_BYTES };

/* One channel, both sides: par is the parent's, wrk the worker's, whose
 * wake-up bytes land on pipe[0] (non-blocking, so a test can count them). */
typedef struct ring {
  int fd;
  int pipe[2];
  mp__chan par, wrk;
} ring;

static void ring_open(ring *r) {
  r->fd = mp__chan_create();
  assert_true(r->fd >= 0);
  assert_int_equal(pipe2(r->pipe, O_CLOEXEC | O_NONBLOCK), 0);
  assert_int_equal(mp__chan_open(&r->par, r->fd, 1, -1), 0);
  assert_int_equal(mp__chan_open(&r->wrk, r->fd, 0, r->pipe[1]), 0);
}

static void ring_close(ring *r) {
  mp__chan_close(&r->par);
  mp__chan_close(&r->wrk);
  assert_null(r->par.map);
  mp__chan_close(&r->par); /* an empty one: a no-op */
  close(r->pipe[0]);
  close(r->pipe[1]);
  mp__fd_drop(&r->fd);
}

/* The wake-up bytes waiting on the pipe (read, so counted once). */
static int wake_bytes(ring *r) {
  char b[64];
  ssize_t n = read(r->pipe[0], b, sizeof b);
  if (n < 0) {
    assert_int_equal(errno, EAGAIN);
    return 0;
  }
  for (ssize_t i = 0; i < n; i++)
    assert_int_equal((unsigned char)b[i], MP__CHAN_WAKE);
  return (int)n;
}

/* The byte at stream position pos of stream seed: no period a ring's size
 * divides, so a byte copied to the wrong offset shows. */
static unsigned char pat(unsigned seed, uint64_t pos) {
  return (unsigned char)((pos * 131 + pos / 251 + seed * 7) & 0xff);
}

static void fill(unsigned char *b, size_t n, unsigned seed, uint64_t pos) {
  for (size_t i = 0; i < n; i++)
    b[i] = pat(seed, pos + i);
}

static void check(const unsigned char *b, size_t n, unsigned seed,
                  uint64_t pos) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(seed, pos + i))
      fail_msg("byte %zu of %zu (stream pos %llu): %u, not %u", i, n,
               (unsigned long long)(pos + i), b[i], pat(seed, pos + i));
}

static ssize_t put1(mp__chan *c, const void *b, size_t n) {
  struct iovec v = {(void *)b, n};
  return mp__chan_put(c, &v, 1);
}

/* Both directions, one frame of each size at a time: each comes out
 * whole, as written, and the ring is empty again. Exactly a ring fits an
 * empty ring. */
static void test_frames_of_many_sizes(void **state) {
  (void)state;
  static const size_t sizes[] = {0,    1,    2,     7,     63,       64,
                                 65,   4095, 4096,  4097,  65536,    RING / 2,
                                 RING - 1,   RING,  1000,  RING - 64};
  ring r;
  ring_open(&r);
  unsigned char *in = malloc(RING), *out = malloc(RING);
  assert_non_null(in);
  assert_non_null(out);
  mp__chan *side[2][2] = {{&r.par, &r.wrk}, {&r.wrk, &r.par}};
  uint64_t pos[2] = {0, 0};
  for (int d = 0; d < 2; d++) {
    mp__chan *tx = side[d][0], *rx = side[d][1];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      size_t n = sizes[i];
      fill(in, n, (unsigned)d, pos[d]);
      assert_int_equal(mp__chan_room(tx), RING);
      assert_int_equal(put1(tx, in, n), n);
      assert_int_equal(mp__chan_readable(rx), n > 0);
      assert_int_equal(mp__chan_room(tx), RING - n);
      assert_int_equal(mp__chan_writable(tx), RING - n >= MP__CHAN_MIN_ROOM);
      memset(out, 0, RING);
      assert_int_equal(mp__chan_get(rx, out, RING), n);
      check(out, n, (unsigned)d, pos[d]);
      assert_int_equal(mp__chan_get(rx, out, RING), 0);
      assert_false(mp__chan_readable(rx));
      pos[d] += n;
    }
  }
  /* The private indices went round, the shared ones agree. */
  assert_int_equal(r.par.tx_pos, pos[0]);
  assert_int_equal(r.wrk.rx_pos, pos[0]);
  assert_int_equal(r.wrk.tx_pos, pos[1]);
  assert_int_equal(r.par.rx_pos, pos[1]);
  free(in);
  free(out);
  ring_close(&r);
}

/* Bytes that straddle the ring's end: fill nearly to the end, drain, put
 * across it, and get in pieces whose ends fall before, on and after the
 * end. Then a long stream of odd sizes, several rings' worth, with the
 * reader a varying distance behind. */
static void test_wrap_around(void **state) {
  (void)state;
  static const size_t before[] = {RING - 1, RING - 7, RING - 100, RING - 4096,
                                  RING / 2 + 3};
  unsigned char *in = malloc(RING), *out = malloc(RING);
  assert_non_null(in);
  assert_non_null(out);
  for (size_t k = 0; k < sizeof before / sizeof *before; k++) {
    ring r;
    ring_open(&r);
    uint64_t wpos = 0, rpos = 0;
    fill(in, before[k], 1, wpos);
    assert_int_equal(put1(&r.par, in, before[k]), before[k]);
    wpos += before[k];
    /* Drain part, then the rest: the room comes back as it is read. */
    assert_int_equal(mp__chan_get(&r.wrk, out, before[k] / 2), before[k] / 2);
    check(out, before[k] / 2, 1, rpos);
    rpos += before[k] / 2;
    assert_int_equal(mp__chan_room(&r.par), RING - (wpos - rpos));
    size_t rest = (size_t)(wpos - rpos);
    assert_int_equal(mp__chan_get(&r.wrk, out, rest), rest);
    check(out, rest, 1, rpos);
    rpos += rest;
    /* Across the end, more than fits before it. */
    size_t n = RING - 3;
    fill(in, n, 1, wpos);
    assert_int_equal(put1(&r.par, in, n), n);
    wpos += n;
    size_t to_end = RING - (size_t)(rpos % RING);
    size_t caps[] = {to_end - 1, 2, 4096, RING}; /* the 2 straddle */
    for (size_t i = 0; i < sizeof caps / sizeof *caps && rpos < wpos; i++) {
      ssize_t g = mp__chan_get(&r.wrk, out, caps[i]);
      size_t want = caps[i] < wpos - rpos ? caps[i] : (size_t)(wpos - rpos);
      assert_int_equal(g, want);
      check(out, want, 1, rpos);
      rpos += want;
    }
    assert_int_equal(rpos, wpos);
    ring_close(&r);
  }
  /* A stream: odd sizes, the reader lagging, about five rings' worth,
   * results ring (worker to parent) this time. */
  ring r;
  ring_open(&r);
  uint64_t wpos = 0, rpos = 0;
  unsigned x = 12345;
  while (rpos < 5ull * RING) {
    x = x * 1103515245 + 12345;
    size_t n = (x >> 8) % 70001;
    fill(in, n, 2, wpos);
    ssize_t p = put1(&r.wrk, in, n);
    assert_true(p >= 0);
    assert_true((size_t)p <= n);
    wpos += (uint64_t)p;
    assert_true(wpos - rpos <= RING);
    size_t cap = (x >> 4) % 90001;
    ssize_t g = mp__chan_get(&r.par, out, cap);
    assert_true(g >= 0);
    check(out, (size_t)g, 2, rpos);
    rpos += (uint64_t)g;
  }
  free(in);
  free(out);
  ring_close(&r);
}

/* More than the room: put copies what fits, in order, and says how much;
 * a full ring takes nothing; mp__chan_room says what put would take. A
 * ring and one byte more on an empty ring: a ring goes in. */
static void test_partial_puts_and_room(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  unsigned char *in = malloc(RING + 1), *out = malloc(RING + 1);
  assert_non_null(in);
  assert_non_null(out);
  fill(in, RING + 1, 3, 0);
  assert_int_equal(put1(&r.par, in, RING + 1), RING);
  assert_int_equal(mp__chan_room(&r.par), 0);
  assert_false(mp__chan_writable(&r.par));
  assert_int_equal(put1(&r.par, in, 1), 0);
  assert_int_equal(put1(&r.par, in, 0), 0);
  assert_int_equal(mp__chan_get(&r.wrk, out, RING + 1), RING);
  check(out, RING, 3, 0);
  /* Partly full: RING - 10 in, then 100 more take 10. */
  uint64_t wpos = RING, rpos = RING;
  fill(in, RING - 10, 3, wpos);
  assert_int_equal(put1(&r.par, in, RING - 10), RING - 10);
  wpos += RING - 10;
  assert_int_equal(mp__chan_room(&r.par), 10);
  fill(in, 100, 3, wpos);
  assert_int_equal(put1(&r.par, in, 100), 10);
  wpos += 10;
  assert_int_equal(mp__chan_room(&r.par), 0);
  assert_int_equal(put1(&r.par, in + 10, 90), 0);
  /* Read 50: 50 of the remaining 90 go in. */
  assert_int_equal(mp__chan_get(&r.wrk, out, 50), 50);
  check(out, 50, 3, rpos);
  rpos += 50;
  assert_int_equal(mp__chan_room(&r.par), 50);
  assert_false(mp__chan_writable(&r.par)); /* under MIN_ROOM */
  assert_int_equal(put1(&r.par, in + 10, 90), 50);
  wpos += 50;
  while (rpos < wpos) {
    ssize_t g = mp__chan_get(&r.wrk, out, RING);
    assert_true(g > 0);
    check(out, (size_t)g, 3, rpos);
    rpos += (uint64_t)g;
  }
  assert_int_equal(mp__chan_room(&r.par), RING);
  assert_true(mp__chan_writable(&r.par));
  free(in);
  free(out);
  ring_close(&r);
}

/* No iovecs, empty ones among full ones, many small ones across the end,
 * and a partial put that stops inside an iovec. */
static void test_iovecs(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  enum { NV = 2000 };
  struct iovec *v = calloc(NV, sizeof *v);
  unsigned char *in = malloc(RING), *out = malloc(RING);
  assert_non_null(v);
  assert_non_null(in);
  assert_non_null(out);
  assert_int_equal(mp__chan_put(&r.par, NULL, 0), 0);
  struct iovec none[3] = {{in, 0}, {NULL, 0}, {in, 0}};
  assert_int_equal(mp__chan_put(&r.par, none, 3), 0);
  assert_false(mp__chan_readable(&r.wrk));
  /* Near the end first. */
  uint64_t wpos = 0, rpos = 0;
  fill(in, RING - 5000, 4, wpos);
  assert_int_equal(put1(&r.par, in, RING - 5000), RING - 5000);
  wpos += RING - 5000;
  assert_int_equal(mp__chan_get(&r.wrk, out, RING), RING - 5000);
  rpos = wpos;
  /* NV iovecs of 0 to 12 bytes, every third empty: about 12000 bytes. */
  size_t total = 0;
  for (int i = 0; i < NV; i++) {
    size_t n = i % 3 == 0 ? 0 : (size_t)(i * 7 % 13);
    v[i].iov_base = in + total;
    v[i].iov_len = n;
    total += n;
  }
  fill(in, total, 4, wpos);
  assert_int_equal(mp__chan_put(&r.par, v, NV), total);
  wpos += total;
  assert_int_equal(mp__chan_get(&r.wrk, out, RING), total);
  check(out, total, 4, rpos);
  rpos = wpos;
  /* Room for 1000 bytes only: the put stops inside the iovec that
   * crosses byte 1000, the rest untouched. */
  size_t filler = RING - 1000;
  fill(in, filler, 5, 0);
  assert_int_equal(put1(&r.par, in, filler), filler);
  fill(in, total, 4, wpos);
  assert_int_equal(mp__chan_put(&r.par, v, NV), 1000);
  assert_int_equal(mp__chan_get(&r.wrk, out, filler), filler);
  check(out, filler, 5, 0);
  assert_int_equal(mp__chan_get(&r.wrk, out, RING), 1000);
  check(out, 1000, 4, wpos);
  free(v);
  free(in);
  free(out);
  ring_close(&r);
}

/* A head the peer could not have written: behind the last one seen, past
 * the tail, wild. Room and put answer MP_EPROTO and publish nothing; the
 * right value again, and all is well. Both directions. */
static void test_bad_head_is_eproto(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  unsigned char buf[2000];
  memset(buf, 0xab, sizeof buf);
  mp__chan *pairs[2][2] = {{&r.par, &r.wrk}, {&r.wrk, &r.par}};
  for (int d = 0; d < 2; d++) {
    mp__chan *tx = pairs[d][0], *rx = pairs[d][1];
    assert_int_equal(put1(tx, buf, 1000), 1000);
    assert_int_equal(mp__chan_get(rx, buf, 500), 500);
    assert_int_equal(mp__chan_room(tx), RING - 500); /* head 500 seen */
    static const uint64_t bad[] = {499, 0, 1001, 1000 + RING, UINT64_MAX,
                                   (uint64_t)1 << 63, 0xdeadbeefcafeull};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
      atomic_store(tx->tx_head, bad[i]);
      assert_int_equal(mp__chan_room(tx), MP_EPROTO);
      assert_int_equal(put1(tx, buf, 10), MP_EPROTO);
      assert_int_equal(atomic_load(tx->tx_tail), 1000);
      assert_int_equal(tx->tx_pos, 1000);
      assert_int_equal(tx->tx_seen, 500);
    }
    /* Any head from the last seen to the tail is one it could write. */
    atomic_store(tx->tx_head, 500);
    assert_int_equal(mp__chan_room(tx), RING - 500);
    atomic_store(tx->tx_head, 1000);
    assert_int_equal(mp__chan_room(tx), RING);
    /* Now 500 is behind the last one seen. */
    atomic_store(tx->tx_head, 500);
    assert_int_equal(mp__chan_room(tx), MP_EPROTO);
    atomic_store(tx->tx_head, 1000);
    assert_int_equal(mp__chan_get(rx, buf, sizeof buf), 500);
    assert_int_equal(put1(tx, buf, 10), 10);
  }
  ring_close(&r);
}

/* A tail the peer could not have written: backwards, more than a ring
 * ahead, wild. get answers MP_EPROTO and reads nothing; a tail exactly a
 * ring ahead is allowed and reads within the ring (ASan would see
 * otherwise). */
static void test_bad_tail_is_eproto(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  unsigned char *buf = malloc(RING + 64);
  assert_non_null(buf);
  memset(buf, 0x5a, RING + 64);
  assert_int_equal(put1(&r.wrk, buf, 100), 100);
  assert_int_equal(mp__chan_get(&r.par, buf, 100), 100);
  static const uint64_t bad[] = {99, 0, 100 + RING + 1, UINT64_MAX,
                                 (uint64_t)1 << 63, 0xdeadbeefcafeull};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    atomic_store(r.par.rx_tail, bad[i]);
    assert_int_equal(mp__chan_get(&r.par, buf, RING + 64), MP_EPROTO);
    assert_int_equal(r.par.rx_pos, 100);
    assert_int_equal(atomic_load(r.par.rx_head), 100);
  }
  /* Both directions: the worker checks the parent's tail too. */
  atomic_store(r.wrk.rx_tail, UINT64_MAX);
  assert_int_equal(mp__chan_get(&r.wrk, buf, 10), MP_EPROTO);
  atomic_store(r.wrk.rx_tail, 0);
  /* A ring ahead: garbage, but a ring's worth, within bounds. */
  atomic_store(r.par.rx_tail, 100 + RING);
  assert_int_equal(mp__chan_get(&r.par, buf, RING + 64), RING);
  assert_int_equal(r.par.rx_pos, 100 + RING);
  atomic_store(r.par.rx_tail, 100 + RING);
  assert_int_equal(mp__chan_get(&r.par, buf, RING), 0);
  free(buf);
  ring_close(&r);
}

/* An older value stored over the parent's own head: the worker sees less
 * room (no error), and mp__chan_restate stores the right one again, and
 * wakes a worker asleep for room. */
static void test_restate(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  unsigned char buf[4096];
  memset(buf, 1, sizeof buf);
  assert_int_equal(put1(&r.wrk, buf, 4000), 4000);
  assert_int_equal(mp__chan_get(&r.par, buf, 4000), 4000);
  atomic_store(r.par.rx_head, 1000); /* the worker has not seen 4000 yet */
  assert_int_equal(mp__chan_room(&r.wrk), RING - 3000);
  mp__chan_restate(&r.par);
  assert_int_equal(atomic_load(r.par.rx_head), 4000);
  assert_int_equal(mp__chan_room(&r.wrk), RING);
  assert_int_equal(r.par.woke, 0);
  /* Asleep for room: restate wakes it (the futex word taken), once. */
  mp__chan_sleep_begin(&r.wrk, MP__SLEEP_ROOM);
  assert_true(mp__chan_peer_asleep(&r.par));
  mp__chan_restate(&r.par);
  assert_int_equal(r.par.woke, 1);
  assert_false(mp__chan_peer_asleep(&r.par));
  assert_int_equal(mp__chan_sleep_take(&r.wrk), 0);
  /* Asleep for data only: restate leaves it be. */
  r.par.woke = 0;
  mp__chan_sleep_begin(&r.wrk, MP__SLEEP_DATA);
  mp__chan_restate(&r.par);
  assert_int_equal(r.par.woke, 0);
  assert_int_equal(mp__chan_sleep_take(&r.wrk), MP__SLEEP_DATA);
  ring_close(&r);
}

/* The parent's sleep and the worker's wake-up byte: one byte per
 * announced sleep, none without one, none for a sleep taken back, none
 * for room when it waits for data only. */
static void test_wake_protocol(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  char b[8] = "results";
  /* Not announced: no byte, no system call. */
  assert_false(mp__chan_peer_asleep(&r.wrk));
  assert_int_equal(put1(&r.wrk, b, 8), 8);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 0);
  assert_int_equal(r.wrk.wakes, 0);
  assert_int_equal(r.wrk.woke, 0);
  /* Announced: one byte, the announcement taken, once only. */
  assert_int_equal(mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA), 0);
  assert_true(mp__chan_peer_asleep(&r.wrk));
  assert_int_equal(put1(&r.wrk, b, 8), 8);
  mp__chan_wake_data(&r.wrk);
  mp__chan_wake_data(&r.wrk);
  mp__chan_wake_room(&r.wrk);
  assert_int_equal(wake_bytes(&r), 1);
  assert_int_equal(r.wrk.wakes, 1);
  assert_int_equal(r.wrk.woke, 1);
  assert_false(mp__chan_peer_asleep(&r.wrk));
  assert_int_equal(mp__chan_sleep_take(&r.par), 0); /* owed: sent */
  /* Announced and taken back before the peer looked: no byte, and take
   * says it was still ours. */
  assert_int_equal(mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA), 0);
  assert_int_equal(mp__chan_sleep_take(&r.par), MP__SLEEP_DATA);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 0);
  mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA);
  mp__chan_sleep_end(&r.par);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 0);
  /* Asleep for data: room freed is no reason to wake it; data is. */
  mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA);
  mp__chan_wake_room(&r.wrk);
  assert_int_equal(wake_bytes(&r), 0);
  assert_int_equal(mp__chan_sleep_begin(&r.par,
                                        MP__SLEEP_DATA | MP__SLEEP_ROOM),
                   MP__SLEEP_DATA);
  mp__chan_wake_room(&r.wrk);
  assert_int_equal(wake_bytes(&r), 1);
  assert_int_equal(mp__chan_sleep_take(&r.par), 0);
  assert_int_equal(r.wrk.wakes, 2);
  /* Ten sleeps, ten bytes. */
  for (int i = 0; i < 10; i++) {
    mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA);
    mp__chan_wake_data(&r.wrk);
    mp__chan_wake_data(&r.wrk);
    mp__chan_sleep_end(&r.par);
  }
  assert_int_equal(wake_bytes(&r), 10);
  assert_int_equal(r.wrk.wakes, 12);
  /* The other way: the parent wakes a sleeping worker by its futex word,
   * once per sleep, and writes no byte. */
  assert_false(mp__chan_peer_asleep(&r.par));
  mp__chan_sleep_begin(&r.wrk, MP__SLEEP_DATA);
  assert_true(mp__chan_peer_asleep(&r.par));
  mp__chan_wake_data(&r.par);
  assert_int_equal(r.par.woke, 1);
  r.par.woke = 0;
  mp__chan_wake_data(&r.par);
  assert_int_equal(r.par.woke, 0);
  assert_int_equal(mp__chan_sleep_take(&r.wrk), 0);
  assert_int_equal(wake_bytes(&r), 0);
  ring_close(&r);
}

/* The worker, leaving, says so: the parent sees a peer that sleeps for
 * good, and wakes it for nothing. The CPU words. A scribbled sleep word:
 * a wake-up lost, or one for nothing, and no crash. */
static void test_gone_cpu_and_scribbled_sleep(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  assert_int_equal(mp__chan_peer_cpu(&r.par), -1);
  assert_int_equal(mp__chan_peer_cpu(&r.wrk), -1);
  mp__chan_set_cpu(&r.wrk, 3);
  mp__chan_set_cpu(&r.par, 5);
  assert_int_equal(mp__chan_peer_cpu(&r.par), 3);
  assert_int_equal(mp__chan_peer_cpu(&r.wrk), 5);
  mp__chan_gone(&r.wrk);
  assert_true(mp__chan_peer_asleep(&r.par));
  mp__chan_wake_data(&r.par);
  mp__chan_wake_room(&r.par);
  assert_int_equal(r.par.woke, 0);
  assert_true(mp__chan_peer_asleep(&r.par));
  assert_int_equal(mp__chan_sleep_take(&r.wrk), MP__SLEEP_GONE);
  /* The worker stores 0 over the parent's announcement: no byte comes
   * (a wake-up lost: latency, the parent's poll() is bounded); the
   * parent's take says 0, as if owed one. Its next sleep works. */
  mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA);
  atomic_store(r.wrk.peer_sleep, 0);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 0);
  assert_int_equal(mp__chan_sleep_take(&r.par), 0);
  mp__chan_sleep_begin(&r.par, MP__SLEEP_DATA);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 1);
  /* A wild word: at most one byte for it, then nothing. */
  atomic_store(r.wrk.peer_sleep, 0xffffffffu);
  mp__chan_wake_data(&r.wrk);
  mp__chan_wake_data(&r.wrk);
  assert_int_equal(wake_bytes(&r), 1);
  assert_int_equal(mp__chan_sleep_take(&r.par), 0);
  /* reset: the parent's side for a new worker. */
  mp__chan_sleep_begin(&r.wrk, MP__SLEEP_DATA);
  assert_int_equal(put1(&r.par, "x", 1), 1);
  mp__chan_reset(&r.par);
  assert_false(mp__chan_peer_asleep(&r.par));
  assert_int_equal(mp__chan_peer_cpu(&r.par), -1);
  assert_int_equal(mp__chan_room(&r.par), RING);
  assert_false(mp__chan_readable(&r.par));
  ring_close(&r);
}

/* mp__chan_wait in a thread of its own, so the test can bound it. */
typedef struct waiter {
  mp__chan *c;
  int what;
  pid_t parent;
  int rc;
  double took;
  double end; /* when the wait returned (mpt_now) */
  _Atomic pid_t tid;
  pthread_t th;
} waiter;

static void *wait_main(void *arg) {
  waiter *w = arg;
  atomic_store(&w->tid, gettid());
  double t0 = mpt_now();
  w->rc = mp__chan_wait(w->c, w->what, w->parent);
  w->end = mpt_now();
  w->took = w->end - t0;
  return NULL;
}

static void wait_start(waiter *w, mp__chan *c, int what, pid_t parent) {
  w->c = c;
  w->what = what;
  w->parent = parent;
  w->rc = -2;
  atomic_store(&w->tid, 0);
  assert_int_equal(pthread_create(&w->th, NULL, wait_main, w), 0);
}

/* Join within max_s, or fail (the thread is left, stuck: the test failed
 * and its channel is never unmapped under it). */
static void wait_join(waiter *w, double max_s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)max_s + 1;
  int rc = pthread_timedjoin_np(w->th, NULL, &ts);
  if (rc != 0)
    fail_msg("mp__chan_wait did not return within %.0f s", max_s + 1);
}

/* Until the worker announced its sleep (it spins first), up to 10 s. */
static int until_asleep(ring *r) {
  double t0 = mpt_now();
  while (!mp__chan_peer_asleep(&r->par))
    if (mpt_now() - t0 > 10)
      return 0;
  return 1;
}

/* The worker's wait returns when data comes, or room, woken on its futex
 * well before its one-second slice ends (not checked under valgrind or a
 * sanitizer, where a thread may take that long to run again). */
static void test_wait_returns_when_woken(void **state) {
  (void)state;
  for (int what = MP__SLEEP_DATA; what <= MP__SLEEP_ROOM; what++) {
    ring r;
    ring_open(&r);
    unsigned char *buf = malloc(RING);
    assert_non_null(buf);
    memset(buf, 7, RING);
    if (what == MP__SLEEP_ROOM)
      assert_int_equal(put1(&r.wrk, buf, RING), RING);
    waiter w;
    wait_start(&w, &r.wrk, what, getppid());
    assert_true(until_asleep(&r));
    /* Asleep in futex(2), where this kernel says so (best effort: under
     * valgrind the thread's system calls are valgrind's). */
    (void)mpt_wait_in_futex(atomic_load(&w.tid), mpt_under_tool() ? 2 : 5);
    double woke = mpt_now();
    if (what == MP__SLEEP_DATA) {
      assert_int_equal(put1(&r.par, buf, 100), 100);
      mp__chan_wake_data(&r.par);
    } else {
      assert_int_equal(mp__chan_get(&r.par, buf, 1000), 1000);
      mp__chan_wake_room(&r.par);
    }
    wait_join(&w, 10);
    assert_int_equal(w.rc, 0);
    /* Woken: it returns at once, not at the end of its one-second slice
     * (a wait that timed out before the wake, on a starved machine, ended
     * before it and proves nothing either way). */
    if (!mpt_under_tool())
      assert_true(w.end - woke < 0.9);
    assert_false(mp__chan_peer_asleep(&r.par));
    if (what == MP__SLEEP_DATA)
      assert_true(mp__chan_readable(&r.wrk));
    else
      assert_true(mp__chan_writable(&r.wrk));
    /* Ready already: at once. */
    wait_start(&w, &r.wrk, what, getppid());
    wait_join(&w, 10);
    assert_int_equal(w.rc, 0);
    free(buf);
    ring_close(&r);
  }
}

/* Nothing comes: the wait ends within about a second: 0 (look again)
 * while the parent is ours, -1 when the process it was given as the
 * parent is not (the parent is gone). */
static void test_wait_is_bounded(void **state) {
  (void)state;
  ring r;
  ring_open(&r);
  waiter w;
  wait_start(&w, &r.wrk, MP__SLEEP_DATA, getppid());
  wait_join(&w, 10);
  assert_int_equal(w.rc, 0);
  assert_true(w.took >= 0.9);
  assert_true(w.took < 5);
  assert_false(mp__chan_peer_asleep(&r.par));
  wait_start(&w, &r.wrk, MP__SLEEP_DATA, getppid() + 100000);
  wait_join(&w, 10);
  assert_int_equal(w.rc, -1);
  assert_true(w.took >= 0.9);
  /* A parent that scribbles on the worker's futex word does not make it
   * wait longer: it returns, and may be called again. */
  wait_start(&w, &r.wrk, MP__SLEEP_DATA, getppid());
  assert_true(until_asleep(&r));
  atomic_store(r.par.peer_sleep, 0x1234);
  wait_join(&w, 10);
  assert_int_equal(w.rc, 0);
  assert_true(w.took < 5);
  ring_close(&r);
}

int main(int argc, char **argv) {
  mpt_filter(argc, argv);
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_frames_of_many_sizes),
      MPT_TEST(test_wrap_around),
      MPT_TEST(test_partial_puts_and_room),
      MPT_TEST(test_iovecs),
      MPT_TEST(test_bad_head_is_eproto),
      MPT_TEST(test_bad_tail_is_eproto),
      MPT_TEST(test_restate),
      MPT_TEST(test_wake_protocol),
      MPT_TEST(test_gone_cpu_and_scribbled_sleep),
      MPT_TEST(test_wait_returns_when_woken),
      MPT_TEST(test_wait_is_bounded),
  };
  return MPT_RUN(tests);
}
