/*
 * pwc.c: a parallel wc. Each path given is an item of its own length, sent
 * by value (the paths are argv's, memory the pool never saw); each result
 * is bytes of its own length too: "lines words bytes". In Python:
 *
 *   def count(path):
 *       data = open(path, 'rb').read()
 *       return len(data.splitlines()), len(data.split()), len(data)
 *
 *   with multiprocessing.Pool() as pool:
 *       for (l, w, c), path in zip(pool.map(count, paths), paths):
 *           print(l, w, c, path)
 *
 * Prints what `wc FILE...` prints, numbers separated by one space.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <mpool.h>

/* Count one file; the result is its counts as text. */
static int count(const void *path, size_t len, mp_buf *out) {
  char name[4096];
  if (len >= sizeof name)
    return 1;
  memcpy(name, path, len);
  name[len] = 0;
  FILE *f = fopen(name, "rb");
  if (!f)
    return 2;
  unsigned long lines = 0, words = 0, bytes = 0;
  int c, in_word = 0;
  while ((c = getc(f)) != EOF) {
    bytes++;
    lines += c == '\n';
    if (isspace(c))
      in_word = 0;
    else if (!in_word)
      in_word = 1, words++;
  }
  fclose(f);
  char s[96];
  int n = snprintf(s, sizeof s, "%lu %lu %lu", lines, words, bytes);
  return mp_buf_append(out, s, (size_t)n) < 0;
}

int main(int argc, char **argv) {
  int n = argc - 1, rc = 0;
  mp_bytes in[n > 0 ? n : 1], out[n > 0 ? n : 1];
  mp_status st[n > 0 ? n : 1];
  for (int i = 0; i < n; i++)
    in[i] = (mp_bytes){argv[i + 1], strlen(argv[i + 1])};
  mp_pool *pool;
  if (mp_pool_create(&pool, NULL) < 0)
    return 1;
  mp_pool_map_bytes(pool, count, in, (size_t)n, out,
                    &(mp_map_opts){.status = st});
  unsigned long total[3] = {0, 0, 0};
  for (int i = 0; i < n; i++) {
    if (st[i].code) {
      char why[64];
      fprintf(stderr, "pwc: %s: %s\n", argv[i + 1],
              mp_status_str(&st[i], why, sizeof why));
      rc = 1;
      continue;
    }
    unsigned long v[3];
    sscanf(out[i].data, "%lu %lu %lu", &v[0], &v[1], &v[2]);
    printf("%lu %lu %lu %s\n", v[0], v[1], v[2], argv[i + 1]);
    for (int k = 0; k < 3; k++)
      total[k] += v[k];
  }
  if (n > 1)
    printf("%lu %lu %lu total\n", total[0], total[1], total[2]);
  mp_bytes_free(out, (size_t)n);
  mp_pool_close(pool);
  mp_pool_join(pool);
  mp_pool_free(pool);
  return rc;
}
