/*
 * stream_filter.c: a filter over stdin, line by line, in a pool. Lines are
 * pulled from stdin only as the pool's window drains, so memory stays flat
 * however long the stream, and come out in input order. Each output line is
 * the input line reversed, a tab, and its length. In Python:
 *
 *   def f(line):
 *       line = line.rstrip(b'\n')
 *       return line[::-1] + b'\t' + str(len(line)).encode()
 *
 *   with multiprocessing.Pool() as pool:
 *       for out in pool.imap(f, sys.stdin.buffer, chunksize=1000):
 *           sys.stdout.buffer.write(out + b'\n')
 *
 * The test runs it beside the same filter written in awk, serially.
 */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

static int filter(const void *in, size_t len, mp_buf *out) {
  const char *s = in;
  char *r = mp_buf_grow(out, len);
  if (!r && len)
    return 1;
  for (size_t i = 0; i < len; i++)
    r[i] = s[len - 1 - i];
  char tail[24];
  int n = snprintf(tail, sizeof tail, "\t%zu", len);
  return mp_buf_append(out, tail, (size_t)n) < 0;
}

/* The source: the next line of stdin, without its newline. */
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
  if (n && l->buf[n - 1] == '\n')
    n--;
  return mp_buf_append(item, l->buf, (size_t)n) < 0 ? -1 : 1;
}

int main(void) {
  lines src = {stdin, NULL, 0};
  mp_pool *pool;
  mp_iter *it;
  if (mp_pool_create(&pool, NULL) < 0)
    return 1;
  int rc = mp_pool_imap_source(pool, filter, next_line, &src, NULL, &it);
  while (rc == 0) {
    mp_bytes r;
    if ((rc = mp_iter_next_bytes(it, &r, NULL, NULL, -1)) != 0)
      break;
    fwrite(r.data, 1, r.len, stdout);
    putchar('\n');
    mp_bytes_free(&r, 1);
  }
  mp_iter_free(it);
  mp_pool_free(pool);
  free(src.buf);
  return rc == MP_EOF ? 0 : 1;
}
