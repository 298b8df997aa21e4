/* test_data.c: data in and out of a pool: variable-length items and
 * results, streaming sources, a call's context, a call's own timeout,
 * chunk sizes honoured, results batched, outcomes as text. */
#include "fixture.h"
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* "abc" -> "abc|abc|" (the item twice, each with a bar), the length of
 * the context prefix first when there is one. */
static int twice_bar(const void *in, size_t len, mp_buf *out) {
  size_t clen;
  const char *ctx = mp_context(&clen);
  if (ctx && mp_buf_append(out, ctx, clen) < 0)
    return 1;
  for (int k = 0; k < 2; k++)
    if (mp_buf_append(out, in, len) < 0 || mp_buf_append(out, "|", 1) < 0)
      return 1;
  if (len == 4 && memcmp(in, "fail", 4) == 0)
    return 7;
  return 0;
}

static void expect_twice(const char *ctx, const void *in, size_t len,
                         const mp_bytes *got) {
  size_t clen = ctx ? strlen(ctx) : 0;
  assert_int_equal(got->len, clen + 2 * (len + 1));
  const char *g = got->data;
  if (clen)
    assert_memory_equal(g, ctx, clen);
  for (int k = 0; k < 2; k++) {
    if (len)
      assert_memory_equal(g + clen + k * (len + 1), in, len);
    assert_int_equal(g[clen + k * (len + 1) + len], '|');
  }
}

enum { NS = 3000 };

/* NS strings of lengths 0..99, made after the pool exists. */
static mp_bytes *make_items(char ***keep) {
  mp_bytes *in = calloc(NS, sizeof *in);
  char **s = calloc(NS, sizeof *s);
  for (int i = 0; i < NS; i++) {
    size_t len = (size_t)(i * 7919) % 100;
    s[i] = malloc(len + 1);
    for (size_t k = 0; k < len; k++)
      s[i][k] = (char)('a' + (i + k) % 26);
    in[i] = (mp_bytes){s[i], len};
  }
  *keep = s;
  return in;
}

static void free_items(mp_bytes *in, char **s) {
  for (int i = 0; i < NS; i++)
    free(s[i]);
  free(s);
  free(in);
}

static void test_map_bytes(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  char **keep;
  mp_bytes *in = make_items(&keep);
  mp_bytes *out = calloc(NS, sizeof *out);
  mp_status *st = calloc(NS, sizeof *st);
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, in, NS, out,
                                     &(mp_map_opts){.status = st}), 0);
  for (int i = 0; i < NS; i++) {
    assert_int_equal(st[i].code, 0);
    expect_twice(NULL, in[i].data, in[i].len, &out[i]);
  }
  mp_bytes_free(out, NS);
  assert_null(out[0].data);
  /* A failing item and an item too large for the pool's result cap. */
  in[10] = (mp_bytes){"fail", 4};
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, in, NS, out,
                                     &(mp_map_opts){.status = st}), MP_ETASK);
  assert_int_equal(st[10].code, MP_ETASK);
  assert_int_equal(st[10].detail, 7);
  assert_null(out[10].data);
  assert_int_equal(st[11].code, 0);
  mp_bytes_free(out, NS);
  /* Explicit chunks, and chunks of one. */
  size_t sizes[2] = {1, 1000};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(mp_pool_map_bytes(p, twice_bar, in + 100, 500, out,
                                       &(mp_map_opts){.chunksize = sizes[k]}),
                     0);
    for (int i = 0; i < 500; i++)
      expect_twice(NULL, in[100 + i].data, in[100 + i].len, &out[i]);
    mp_bytes_free(out, 500);
  }
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, NULL, 0, NULL, NULL), 0);
  assert_int_equal(mp_pool_map_bytes(p, NULL, in, 1, out, NULL), MP_EINVAL);
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, in, 1, NULL, NULL), MP_EINVAL);
  mp_bytes bad = {NULL, 3};
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, &bad, 1, out, NULL), MP_EINVAL);
  free(st);
  free(out);
  free_items(in, keep);
  mpt_pool_done(p);
}

static int big_result(const void *in, size_t len, mp_buf *out) {
  (void)in, (void)len;
  return mp_buf_grow(out, 100000) ? 0 : 1;
}

static void test_bytes_result_cap(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1, .max_result_bytes = 65536});
  mp_bytes in[3] = {{"a", 1}, {"b", 1}, {"c", 1}}, out[3];
  mp_status st[3];
  assert_int_equal(mp_pool_map_bytes(p, big_result, in, 3, out,
                                     &(mp_map_opts){.status = st}), -EMSGSIZE);
  for (int i = 0; i < 3; i++)
    assert_int_equal(st[i].code, -EMSGSIZE);
  mp_bytes_free(out, 3);
  mpt_pool_done(p);
}

static void test_imap_bytes(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  char **keep;
  mp_bytes *in = make_items(&keep);
  for (int unordered = 0; unordered < 2; unordered++) {
    mp_iter *it;
    assert_int_equal((unordered ? mp_pool_imap_bytes_unordered
                                : mp_pool_imap_bytes)(p, twice_bar, in, NS,
                                                      NULL, &it),
                     0);
    char *seen = calloc(NS, 1);
    for (int i = 0; i < NS; i++) {
      mp_bytes r;
      size_t idx;
      assert_int_equal(mp_iter_next_bytes(it, &r, &idx, NULL, -1), 0);
      assert_true(idx < NS);
      if (!unordered)
        assert_int_equal((int)idx, i);
      seen[idx]++;
      expect_twice(NULL, in[idx].data, in[idx].len, &r);
      mp_bytes_free(&r, 1);
    }
    for (int i = 0; i < NS; i++)
      assert_int_equal(seen[i], 1);
    mp_bytes r;
    assert_int_equal(mp_iter_next_bytes(it, &r, NULL, NULL, -1), MP_EOF);
    int fixed;
    assert_int_equal(mp_iter_next(it, &fixed, NULL, NULL, -1), MP_EINVAL);
    mp_iter_free(it);
    free(seen);
  }
  /* Freed half consumed: its results are released, nothing leaks. */
  mp_iter *it;
  assert_int_equal(mp_pool_imap_bytes(p, twice_bar, in, NS, NULL, &it), 0);
  mp_bytes r;
  assert_int_equal(mp_iter_next_bytes(it, &r, NULL, NULL, -1), 0);
  mp_bytes_free(&r, 1);
  mp_iter_free(it);
  free_items(in, keep);
  mpt_pool_done(p);
}

/* A source of `limit` items "item N", failing with `err` at the end when
 * err is non-zero; counts what it produced. */
typedef struct counter {
  int next, limit, err;
} counter;

static int count_source(void *arg, mp_buf *item) {
  counter *c = arg;
  if (c->next >= c->limit)
    return c->err ? c->err : 0;
  char s[32];
  int n = snprintf(s, sizeof s, "item %d", c->next++);
  return mp_buf_append(item, s, (size_t)n) < 0 ? -ENOMEM : 1;
}

static void drain_source(mp_pool *p, counter *c, int unordered, int expect_end,
                         int window_max) {
  mp_iter *it;
  assert_int_equal((unordered ? mp_pool_imap_source_unordered
                              : mp_pool_imap_source)(p, twice_bar, count_source,
                                                     c, NULL, &it),
                   0);
  char *seen = calloc((size_t)c->limit + 1, 1);
  int got = 0;
  for (;;) {
    mp_bytes r;
    size_t idx;
    int rc = mp_iter_next_bytes(it, &r, &idx, NULL, -1);
    if (rc == expect_end)
      break;
    assert_int_equal(rc, 0);
    assert_true(idx < (size_t)c->limit);
    if (!unordered)
      assert_int_equal((int)idx, got);
    seen[idx]++;
    char s[32];
    int n = snprintf(s, sizeof s, "item %d", (int)idx);
    expect_twice(NULL, s, (size_t)n, &r);
    mp_bytes_free(&r, 1);
    got++;
    /* Pulled only as the window drains. */
    assert_true(c->next - got <= window_max);
  }
  assert_int_equal(got, c->limit);
  for (int i = 0; i < c->limit; i++)
    assert_int_equal(seen[i], 1);
  mp_bytes r;
  /* The end is told once (an error too); then the iterator is at its end. */
  assert_int_equal(mp_iter_next_bytes(it, &r, NULL, NULL, -1), MP_EOF);
  mp_iter_free(it);
  free(seen);
}

static void test_imap_source(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  /* 4096 items a chunk, 2 workers, 3 chunks each: 24576 out at most. */
  counter c = {0, 60000, 0};
  drain_source(p, &c, 0, MP_EOF, 24576);
  c = (counter){0, 20000, 0};
  drain_source(p, &c, 1, MP_EOF, 24576);
  /* A source that fails mid-way: what it made is delivered, then its
   * error, once. */
  c = (counter){0, 777, -EIO};
  drain_source(p, &c, 0, -EIO, 24576);
  c = (counter){0, 0, 0};
  drain_source(p, &c, 0, MP_EOF, 24576);
  assert_int_equal(mp_pool_imap_source(p, twice_bar, NULL, NULL, NULL, NULL),
                   MP_EINVAL);
  mpt_pool_done(p);
}

/* out = in * the int the context holds. */
static int times_ctx(const void *in, void *out) {
  size_t len;
  const int *k = mp_context(&len);
  if (!k || len != sizeof *k)
    return 9;
  *(int *)out = *(const int *)in * *k;
  return 0;
}

static int ctx_len_apply(const void *arg, size_t len, mp_buf *out) {
  (void)arg, (void)len;
  size_t clen;
  const void *c = mp_context(&clen);
  return c ? mp_buf_append(out, c, clen) : 5;
}

static void test_context(void **state) {
  (void)state;
  size_t len = 99;
  assert_null(mp_context(&len)); /* outside a task */
  assert_int_equal(len, 0);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  enum { N = 1000 };
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  /* Set after the pool exists, changed between calls: each call sees its
   * own. */
  for (int k = 2; k < 5; k++) {
    assert_int_equal(MP_POOL_MAP(p, times_ctx, in, N, out,
                                 &(mp_map_opts){.context = &k,
                                                .context_len = sizeof k,
                                                .chunksize = k == 3 ? 1 : 0}),
                     0);
    for (int i = 0; i < N; i++)
      assert_int_equal(out[i], i * k);
  }
  /* Two calls with different contexts in flight at once. */
  int k5 = 5, k7 = 7, out2[N];
  mp_result *a, *b;
  assert_int_equal(MP_POOL_MAP_ASYNC(p, times_ctx, in, N, out,
                                     &(mp_map_async_opts){.map = {.context = &k5, .context_len = sizeof k5, .chunksize = 10}}, &a), 0);
  assert_int_equal(MP_POOL_MAP_ASYNC(p, times_ctx, in, N, out2,
                                     &(mp_map_async_opts){.map = {.context = &k7, .context_len = sizeof k7, .chunksize = 10}}, &b), 0);
  assert_int_equal(mp_result_get(a, -1, NULL, NULL, NULL), 0);
  assert_int_equal(mp_result_get(b, -1, NULL, NULL, NULL), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(out[i], 5 * i);
    assert_int_equal(out2[i], 7 * i);
  }
  mp_result_free(a);
  mp_result_free(b);
  /* Without one: NULL in the task. */
  mp_status st[N];
  assert_int_equal(MP_POOL_MAP(p, times_ctx, in, N, out, &(mp_map_opts){.status = st}),
                   MP_ETASK);
  assert_int_equal(st[0].detail, 9);
  /* apply_async, and an empty context. */
  mp_result *r;
  assert_int_equal(mp_pool_apply_async(p, ctx_len_apply, NULL, 0,
                                       &(mp_async_opts){.context = "hello", .context_len = 5}, &r), 0);
  const void *data;
  size_t dlen;
  assert_int_equal(mp_result_get(r, -1, &data, &dlen, NULL), 0);
  assert_int_equal(dlen, 5);
  assert_memory_equal(data, "hello", 5);
  mp_result_free(r);
  assert_int_equal(mp_pool_apply_async(p, ctx_len_apply, NULL, 0,
                                       &(mp_async_opts){.context = "", .context_len = 0}, &r), 0);
  assert_int_equal(mp_result_get(r, -1, &data, &dlen, NULL), 0);
  assert_int_equal(dlen, 0);
  mp_result_free(r);
  /* A bytes call with a context. */
  mp_bytes bi[2] = {{"x", 1}, {"yz", 2}}, bo[2];
  assert_int_equal(mp_pool_map_bytes(p, twice_bar, bi, 2, bo,
                                     &(mp_map_opts){.context = "C:", .context_len = 2}), 0);
  expect_twice("C:", "x", 1, &bo[0]);
  expect_twice("C:", "yz", 2, &bo[1]);
  mp_bytes_free(bo, 2);
  mpt_pool_done(p);
}

/* Sleeps the tenths of a second its input says, then doubles it. */
static int nap(const void *in, void *out) {
  int v = *(const int *)in;
  if (v > 0) {
    struct timespec ts = {v / 10, (v % 10) * 100000000L};
    nanosleep(&ts, NULL);
  }
  *(int *)out = 2 * v;
  return 0;
}

static void test_call_timeout(void **state) {
  (void)state;
  /* No pool timeout; this call's bounds its hanging item. */
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  int in[6] = {0, 0, 600, 0, 0, 0}, out[6];
  mp_status st[6];
  assert_int_equal(MP_POOL_MAP(p, nap, in, 6, out,
                               &(mp_map_opts){.status = st, .chunksize = 1,
                                              .task_timeout = 1}),
                   MP_ETIMEDOUT);
  assert_int_equal(st[2].code, MP_ETIMEDOUT);
  for (int i = 0; i < 6; i++)
    if (i != 2)
      assert_int_equal(st[i].code, 0);
  mpt_pool_done(p);
  /* A pool timeout that one call lifts. */
  p = mpt_pool((mp_pool_opts){.processes = 1, .task_timeout = 0.1});
  int slow = 3;
  assert_int_equal(MP_POOL_MAP(p, nap, &slow, 1, out,
                               &(mp_map_opts){.task_timeout = -1}), 0);
  assert_int_equal(out[0], 6);
  assert_int_equal(MP_POOL_MAP(p, nap, &slow, 1, out, NULL), MP_ETIMEDOUT);
  mpt_pool_done(p);
}

/* The worker's pid, to see which items shared a chunk: with
 * maxtasksperchild 1 every chunk has a worker of its own. */
static int whose(const void *in, void *out) {
  (void)in;
  *(pid_t *)out = getpid();
  return 0;
}

static void test_chunksize_honoured(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2, .maxtasksperchild = 1});
  enum { N = 400, ELEM = 4096 };
  char *in = calloc(N, ELEM);
  pid_t out[N];
  mp_iter *it;
  /* 100 items of 4 KiB: 400 KiB, past the iterator's default bound of
   * 64 KiB, which once cut it silently to 16. */
  assert_int_equal(mp_pool_imap(p, whose, in, N, ELEM, sizeof(pid_t),
                                &(mp_map_opts){.chunksize = 100}, &it), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(mp_iter_next(it, &out[i], NULL, NULL, -1), 0);
  mp_iter_free(it);
  for (int c = 0; c < N / 100; c++)
    for (int i = 1; i < 100; i++)
      assert_int_equal(out[c * 100 + i], out[c * 100]);
  assert_int_not_equal(out[0], out[100]);
  /* One that cannot be one message is refused, not cut. */
  assert_int_equal(mp_pool_imap(p, whose, in, N, ELEM, sizeof(pid_t),
                                &(mp_map_opts){.chunksize = (size_t)1 << 20}, &it),
                   MP_EINVAL);
  free(in);
  mpt_pool_done(p);
}

/* Tiny tasks answer in batches; a crash among them still fails only its
 * item, and those whose results were held back run again. */
static int crash_at_150(const void *in, void *out) {
  int v = *(const int *)in;
  if (v == 150) {
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
  }
  *(int *)out = v + 1;
  return 0;
}

static void test_batched_results_blame(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  enum { N = 2000 };
  static int in[N], out[N];
  static mp_status st[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  for (int round = 0; round < 3; round++) {
    assert_int_equal(MP_POOL_MAP(p, crash_at_150, in, N, out,
                                 &(mp_map_opts){.chunksize = 1, .status = st}),
                     MP_ECRASHED);
    for (int i = 0; i < N; i++) {
      if (i == 150) {
        assert_int_equal(st[i].code, MP_ECRASHED);
        assert_int_equal(st[i].detail, -SIGSEGV);
      } else if (st[i].code != 0 || out[i] != i + 1) {
        fail_msg("item %d: %s", i, mp_err_name(st[i].code));
      }
    }
  }
  mpt_pool_done(p);
}

static void test_status_str(void **state) {
  (void)state;
  char b[64];
  assert_string_equal(mp_status_str(&(mp_status){0, 0}, b, sizeof b), "ok");
  assert_string_equal(mp_status_str(&(mp_status){MP_ETASK, 42}, b, sizeof b),
                      "task returned 42");
  assert_string_equal(mp_status_str(&(mp_status){MP_ECRASHED, -SIGSEGV}, b, sizeof b),
                      "killed by signal 11 (Segmentation fault)");
  assert_string_equal(mp_status_str(&(mp_status){MP_ECRASHED, 3}, b, sizeof b),
                      "exit status 3");
  assert_string_equal(mp_status_str(&(mp_status){MP_ETIMEDOUT, 0}, b, sizeof b),
                      "timed out");
  assert_string_equal(mp_status_str(&(mp_status){-ENOMEM, 0}, b, sizeof b),
                      mp_strerror(-ENOMEM));
  char small[8];
  mp_status_str(&(mp_status){MP_ECRASHED, -SIGSEGV}, small, sizeof small);
  assert_int_equal(strlen(small), 7);
}

/* A source that fails ends its iterator: the error once, with the index
 * the failed item would have had and its status, then MP_EOF for good; a
 * loop that goes on past failed items stops. */
static void test_source_error_then_eof(void **state) {
  (void)state;
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 2});
  for (int unordered = 0; unordered < 2; unordered++) {
    counter c = {0, 5, -EIO};
    mp_iter *it;
    assert_int_equal((unordered ? mp_pool_imap_source_unordered
                                : mp_pool_imap_source)(p, twice_bar,
                                                       count_source, &c, NULL,
                                                       &it),
                     0);
    int ok = 0, errors = 0, rc;
    size_t idx;
    mp_status st;
    /* Bounded: the old behaviour answered -EIO forever. */
    for (int calls = 0; calls < 100; calls++) {
      mp_bytes r;
      idx = 12345;
      st = (mp_status){77, 77};
      rc = mp_iter_next_bytes(it, &r, &idx, &st, 30);
      if (rc == MP_EOF)
        break;
      if (rc == 0) {
        ok++;
        mp_bytes_free(&r, 1);
        continue;
      }
      assert_int_equal(rc, -EIO);
      assert_int_equal(idx, 5);
      assert_int_equal(st.code, -EIO);
      assert_int_equal(st.detail, 0);
      assert_null(r.data);
      errors++;
    }
    assert_int_equal(rc, MP_EOF);
    assert_int_equal(ok, 5);
    assert_int_equal(errors, 1);
    mp_bytes r;
    assert_int_equal(mp_iter_next_bytes(it, &r, NULL, NULL, -1), MP_EOF);
    mp_iter_free(it);
  }
  mpt_pool_done(p);
}

/* A context, an argument or an item the frame format cannot carry (4 GiB
 * and more: its 32-bit length would be cut, and the rest of it read as
 * frames) is refused at submit with MP_EINVAL, before a byte of it is
 * read: here it is address space no byte can be read from, so a copy
 * would crash the test. The same for anything past the documented 2 GiB
 * - 4 KiB a context or an argument may hold. */
static void test_oversized_refused_before_copy(void **state) {
  (void)state;
  const size_t huge = ((size_t)4 << 30) + 64, over = ((size_t)2 << 30) - 4095;
  void *none = mmap(NULL, huge, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true(none != MAP_FAILED);
  mp_pool *p = mpt_pool((mp_pool_opts){.processes = 1});
  int in[2] = {1, 2}, out[2];
  mp_bytes bin[1] = {{"x", 1}}, bout[1];
  mp_result *r = NULL;
  mp_iter *it = NULL;
  counter c = {0, 3, 0};
  const size_t lens[2] = {huge, over};
  for (int k = 0; k < 2; k++) {
    mp_map_opts mo = {.context = none, .context_len = lens[k]};
    mp_async_opts ao = {.context = none, .context_len = lens[k]};
    assert_int_equal(mp_pool_map(p, times_ctx, in, 2, sizeof *in, out,
                                 sizeof *out, &mo),
                     MP_EINVAL);
    assert_int_equal(mp_pool_map_async(p, times_ctx, in, 2, sizeof *in, out,
                                       sizeof *out,
                                       &(mp_map_async_opts){.map = mo}, &r),
                     MP_EINVAL);
    assert_int_equal(mp_pool_imap(p, times_ctx, in, 2, sizeof *in,
                                  sizeof *out, &mo, &it),
                     MP_EINVAL);
    assert_int_equal(mp_pool_imap_unordered(p, times_ctx, in, 2, sizeof *in,
                                            sizeof *out, &mo, &it),
                     MP_EINVAL);
    void *res = NULL;
    size_t res_len = 0;
    assert_int_equal(mp_pool_apply_async(p, ctx_len_apply, "a", 1, &ao, &r),
                     MP_EINVAL);
    assert_int_equal(mp_pool_map_bytes(p, twice_bar, bin, 1, bout, &mo),
                     MP_EINVAL);
    assert_int_equal(mp_pool_imap_bytes(p, twice_bar, bin, 1, &mo, &it),
                     MP_EINVAL);
    assert_int_equal(
        mp_pool_imap_bytes_unordered(p, twice_bar, bin, 1, &mo, &it),
        MP_EINVAL);
    assert_int_equal(
        mp_pool_imap_source(p, twice_bar, count_source, &c, &mo, &it),
        MP_EINVAL);
    assert_int_equal(mp_pool_imap_source_unordered(p, twice_bar, count_source,
                                                   &c, &mo, &it),
                     MP_EINVAL);
    /* An argument, and an item, of the same length. */
    assert_int_equal(mp_pool_apply(p, ctx_len_apply, none, lens[k], &res,
                                   &res_len, NULL),
                     MP_EINVAL);
    mp_bytes big[1] = {{none, lens[k]}};
    assert_int_equal(mp_pool_map_bytes(p, twice_bar, big, 1, bout, NULL),
                     MP_EINVAL);
  }
  assert_null(r);
  assert_null(it);
  assert_int_equal(c.next, 0);
  /* The pool is unharmed: a context within the limit reaches the task. */
  int k = 3;
  assert_int_equal(
      mp_pool_map(p, times_ctx, in, 2, sizeof *in, out, sizeof *out,
                  &(mp_map_opts){.context = &k, .context_len = sizeof k}),
      0);
  assert_int_equal(out[0], 3);
  assert_int_equal(out[1], 6);
  mpt_pool_done(p);
  assert_int_equal(munmap(none, huge), 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_map_bytes),
      MPT_TEST(test_bytes_result_cap),
      MPT_TEST(test_imap_bytes),
      MPT_TEST(test_imap_source),
      MPT_TEST(test_context),
      MPT_TEST(test_call_timeout),
      MPT_TEST(test_chunksize_honoured),
      MPT_TEST(test_batched_results_blame),
      MPT_TEST(test_status_str),
      MPT_TEST(test_source_error_then_eof),
      MPT_TEST(test_oversized_refused_before_copy),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
