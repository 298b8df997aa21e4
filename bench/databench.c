/*
 * databench: the C side of the data rows of libmpool's benchmarks (issue
 * 13), beside mpbench's rows 1 to 7, printing "side key value" lines the
 * same way for bench/run.
 *
 *   databench [-q] ROW    one round of row ROW (8..11)
 *
 * Rows:
 *   8  streaming imap over the 5,000,000 lines `seq` writes into a pipe, a
 *      cheap hash each, each hash printed (to /dev/null), 2 workers:
 *      lines/s, and the parent's peak RSS                 (Python beside)
 *   9  20,000 lines to new strings of other lengths, 2 workers: lines/s,
 *      mp_pool_map_bytes against batches of 100 lines per apply_async
 *      packed by hand                                     (Python beside)
 *   10 400 items of heavy-tailed cost (a few at 100x the median), default
 *      options, 2 workers, against the same work serial in-process
 *   11 1,000,000 tiny items, chunksize 1, against default chunks
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int quick;

const char *bench_name = "databench";

static mp_pool *pool2(void) {
  mp_pool *p;
  CHECK(mp_pool_create(&p, &(mp_pool_opts){.processes = 2}));
  return p;
}

static void pool_done(mp_pool *p) {
  CHECK(mp_pool_close(p));
  CHECK(mp_pool_join(p));
  mp_pool_free(p);
}

/* ---- row 8: a stream of lines from a pipe ---- */

static int fnv(const void *in, size_t len, mp_buf *out) {
  const unsigned char *s = in;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ s[i]) * 16777619u;
  return mp_buf_append(out, &h, sizeof h) < 0;
}

typedef struct lines {
  FILE *f;
  char *buf;
  size_t cap;
} lines;

static int next_line(void *arg, mp_buf *item) {
  lines *l = arg;
  ssize_t n = getline(&l->buf, &l->cap, l->f);
  if (n < 0)
    return 0;
  return mp_buf_append(item, l->buf, (size_t)n) < 0 ? -1 : 1;
}

/* Row 8b: each hash its own write, as a line-buffered stdout on a
 * terminal does (the setting in which the issue measured Python's RSS). */
static int line_buffered;

static void row_stream(void) {
  long n = quick ? 50000 : 5000000;
  mp_pool *p = pool2(); /* first: its workers must not hold the pipe */
  int fds[2];
  if (pipe(fds) < 0)
    die("pipe", 0);
  pid_t w = fork();
  if (w == 0) { /* the writer: seq 1 n, as the row's input was measured */
    char last[24];
    snprintf(last, sizeof last, "%ld", n);
    if (dup2(fds[1], STDOUT_FILENO) < 0)
      _exit(1);
    close(fds[0]);
    close(fds[1]);
    execlp("seq", "seq", "1", last, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  lines l = {fdopen(fds[0], "r"), NULL, 0};
  double t0 = now_s();
  mp_iter *it;
  CHECK(mp_pool_imap_source(p, fnv, next_line, &l, NULL, &it));
  long got = 0;
  FILE *out = fopen("/dev/null", "w"); /* each hash printed, as a filter */
  if (!out)
    die("/dev/null", 0);
  if (line_buffered && setvbuf(out, NULL, _IOLBF, 0) != 0)
    die("setvbuf", 0);
  for (;;) {
    mp_bytes r;
    int rc = mp_iter_next_bytes(it, &r, NULL, NULL, -1);
    if (rc == MP_EOF)
      break;
    CHECK(rc);
    uint32_t h;
    memcpy(&h, r.data, sizeof h);
    fprintf(out, "%08x\n", h);
    got++;
    mp_bytes_free(&r, 1);
  }
  fclose(out);
  double t = now_s() - t0;
  mp_iter_free(it);
  if (got != n)
    die("row 8: lines lost", MP_EPROTO);
  fclose(l.f);
  free(l.buf);
  int st;
  waitpid(w, &st, 0);
  pool_done(p);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  emit("lib", "lines_per_s", (double)n / t);
  emit("lib", "rss_kb", (double)ru.ru_maxrss);
}

/* ---- row 9: lines to new strings of other lengths ---- */

/* The line upper-cased, (its length % 3) + 1 times. */
static void transform(const char *s, size_t len, char *out) {
  size_t reps = len % 3 + 1;
  for (size_t r = 0; r < reps; r++)
    for (size_t i = 0; i < len; i++)
      out[r * len + i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
}

static int xform(const void *in, size_t len, mp_buf *out) {
  char *o = mp_buf_grow(out, len * (len % 3 + 1));
  if (!o && len)
    return 1;
  transform(in, len, o);
  return 0;
}

/* A batch by hand: [u32 count] then [u32 len][bytes] per line, in and
 * out. */
static int xform_batch(const void *arg, size_t len, mp_buf *out) {
  const char *p = arg, *end = p + len;
  uint32_t count;
  memcpy(&count, p, 4);
  p += 4;
  if (mp_buf_append(out, &count, 4) < 0)
    return 1;
  for (uint32_t i = 0; i < count && p + 4 <= end; i++) {
    uint32_t l;
    memcpy(&l, p, 4);
    p += 4;
    uint32_t ol = l * (l % 3 + 1);
    char *o = mp_buf_grow(out, 4 + ol);
    if (!o)
      return 1;
    memcpy(o, &ol, 4);
    transform(p, l, o + 4);
    p += l;
  }
  return 0;
}

enum { NLINES = 20000, BATCH = 100 };

static double lines_by_bytes(mp_pool *p, const mp_bytes *in, int n) {
  mp_bytes *out = malloc((size_t)n * sizeof *out);
  double t0 = now_s();
  CHECK(mp_pool_map_bytes(p, xform, in, (size_t)n, out, NULL));
  double t = now_s() - t0;
  for (int i = 0; i < n; i++)
    if (out[i].len != in[i].len * (in[i].len % 3 + 1))
      die("row 9: wrong result", MP_EPROTO);
  mp_bytes_free(out, (size_t)n);
  free(out);
  return n / t;
}

static double lines_by_hand(mp_pool *p, const mp_bytes *in, int n) {
  int nb = (n + BATCH - 1) / BATCH;
  mp_result **r = malloc((size_t)nb * sizeof *r);
  mp_bytes *out = malloc((size_t)n * sizeof *out);
  char *buf = malloc((size_t)BATCH * 4096);
  double t0 = now_s();
  for (int b = 0; b < nb; b++) {
    uint32_t count = 0;
    size_t off = 4;
    for (int i = b * BATCH; i < n && i < (b + 1) * BATCH; i++, count++) {
      uint32_t l = (uint32_t)in[i].len;
      memcpy(buf + off, &l, 4);
      memcpy(buf + off + 4, in[i].data, l);
      off += 4 + l;
    }
    memcpy(buf, &count, 4);
    CHECK(mp_pool_apply_async(p, xform_batch, buf, off, NULL, &r[b]));
  }
  for (int b = 0; b < nb; b++) {
    const void *data;
    size_t len;
    CHECK(mp_result_get(r[b], -1, &data, &len, NULL));
    const char *q = data;
    uint32_t count;
    memcpy(&count, q, 4);
    q += 4;
    for (uint32_t i = 0; i < count; i++) { /* one malloc'd string each, as
                                            * map_bytes gives */
      uint32_t l;
      memcpy(&l, q, 4);
      char *s = malloc(l ? l : 1);
      memcpy(s, q + 4, l);
      out[b * BATCH + (int)i] = (mp_bytes){s, l};
      q += 4 + l;
    }
    mp_result_free(r[b]);
  }
  double t = now_s() - t0;
  for (int i = 0; i < n; i++)
    if (out[i].len != in[i].len * (in[i].len % 3 + 1))
      die("row 9: wrong hand-rolled result", MP_EPROTO);
  mp_bytes_free(out, (size_t)n);
  free(out);
  free(buf);
  free(r);
  return n / t;
}

static void row_strings(void) {
  int n = quick ? 2000 : NLINES;
  mp_bytes *in = malloc((size_t)n * sizeof *in);
  for (int i = 0; i < n; i++) {
    char s[128];
    int l = snprintf(s, sizeof s, "line %d of the text, %.*s", i,
                     (i * 7) % 40, "with words that make lengths vary ok");
    in[i] = (mp_bytes){strdup(s), (size_t)l};
  }
  mp_pool *p = pool2();
  double lib[5], hand[5];
  int reps = quick ? 1 : 5;
  for (int r = 0; r < reps; r++) {
    if (r % 2) {
      lib[r] = lines_by_bytes(p, in, n);
      hand[r] = lines_by_hand(p, in, n);
    } else {
      hand[r] = lines_by_hand(p, in, n);
      lib[r] = lines_by_bytes(p, in, n);
    }
  }
  pool_done(p);
  emit("lib", "lines_per_s", median(lib, reps));
  emit("floor", "lines_per_s", median(hand, reps));
  for (int i = 0; i < n; i++)
    free((void *)in[i].data);
  free(in);
}

/* ---- row 10: uneven items ---- */

/* Work of about `units` times a unit, the same in any process. */
static volatile uint64_t sink;
static int spin(const void *in, void *out) {
  uint32_t units;
  memcpy(&units, in, sizeof units);
  uint64_t x = units;
  for (uint64_t i = 0; i < (uint64_t)units * 100000; i++)
    x = x * 6364136223846793005u + 1442695040888963407u;
  sink = x;
  memcpy(out, &units, sizeof units);
  return 0;
}

static void row_uneven(void) {
  enum { N = 400 };
  uint32_t cost[N], out[N];
  /* Heavy-tailed: a Pareto(1.1) draw from a fixed sequence, capped at 100x
   * the median; a few items sit at the cap. */
  uint64_t s = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005u + 1442695040888963407u;
    double u = ((double)(s >> 11) + 1) / 9007199254740993.0;
    double c = 3 * pow(u, -1 / 1.1);
    cost[i] = (uint32_t)(c > 300 ? 300 : c);
  }
  int n = quick ? 40 : N;
  mp_pool *p = pool2();
  double lib[3], ser[3];
  int reps = quick ? 1 : 3;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    for (int i = 0; i < n; i++)
      spin(&cost[i], &out[i]);
    double t1 = now_s();
    CHECK(MP_POOL_MAP(p, spin, cost, (size_t)n, out, NULL));
    double t2 = now_s();
    ser[r] = t1 - t0;
    lib[r] = t2 - t1;
  }
  pool_done(p);
  emit("lib", "s", median(lib, reps));
  emit("floor", "s", median(ser, reps));
}

/* ---- row 11: tiny items, chunksize 1 against default chunks ---- */

/* A tiny task: about a third of a microsecond of arithmetic, the cost at
 * which default chunks ran 1,000,000 of them at 5.5 M items/s when the
 * row was set. */
static int inc(const void *in, void *out) {
  uint32_t x = (uint32_t)*(const int32_t *)in;
  for (int k = 0; k < 300; k++)
    x = x * 1664525u + 1013904223u;
  sink = x;
  *(int32_t *)out = *(const int32_t *)in + 1;
  return 0;
}

static void row_tiny(void) {
  int n = quick ? 20000 : 1000000;
  int32_t *in = malloc((size_t)n * sizeof *in), *out = malloc((size_t)n * sizeof *out);
  for (int i = 0; i < n; i++)
    in[i] = i;
  mp_pool *p = pool2();
  double one[3], def[3];
  int reps = quick ? 1 : 3;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    CHECK(MP_POOL_MAP(p, inc, in, (size_t)n, out, &(mp_map_opts){.chunksize = 1}));
    double t1 = now_s();
    CHECK(MP_POOL_MAP(p, inc, in, (size_t)n, out, NULL));
    double t2 = now_s();
    one[r] = t1 - t0;
    def[r] = t2 - t1;
  }
  for (int i = 0; i < n; i++)
    if (out[i] != i + 1)
      die("row 11: wrong result", MP_EPROTO);
  pool_done(p);
  emit("lib", "items_per_s", n / median(one, reps));
  emit("floor", "items_per_s", n / median(def, reps));
  free(in);
  free(out);
}

int main(int argc, char **argv) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "-q") == 0) {
    quick = 1;
    i++;
  }
  if (i + 2 == argc && strcmp(argv[i], "8") == 0 &&
      strcmp(argv[i + 1], "lb") == 0) {
    line_buffered = 1;
  } else if (i + 1 != argc) {
    fprintf(stderr, "usage: databench [-q] {8 [lb]|9|10|11}\n");
    return 2;
  }
  int row = atoi(argv[i]);
  if (row == 8)
    row_stream();
  else if (row == 9)
    row_strings();
  else if (row == 10)
    row_uneven();
  else if (row == 11)
    row_tiny();
  else
    return 2;
  return fflush(stdout) == 0 ? 0 : 1;
}
