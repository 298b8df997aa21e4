/* iter.c: imap and imap_unordered. A map job whose outcomes go to blocks
 * the iterator hands out one item at a time; input goes out only as items
 * are taken, so memory stays flat. */
#include "pool_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mp_iter {
  job *j;
};

/* What an iterator takes of a map's options: status and progress are
 * mp_iter_next's. */
static const mp_map_opts *iter_opts(const mp_map_opts *opts, mp_map_opts *o) {
  if (!opts)
    return NULL;
  *o = *opts;
  o->status = NULL;
  o->progress = NULL;
  return o;
}

static int iter_create(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                       size_t in_size, size_t out_size,
                       const mp_map_opts *opts, enum job_sink sink,
                       mp_iter **out) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size, opts, &ref);
  if (rc < 0)
    return rc;
  if (!out)
    return MP_EINVAL;
  mp_iter *it = malloc(sizeof *it);
  if (!it)
    return -ENOMEM;
  mp_map_opts o;
  it->j = mp__job_new_map(pool, f, in, n, in_size, out_size,
                          iter_opts(opts, &o), sink, &ref);
  if (!it->j) {
    free(it);
    return -ENOMEM;
  }
  mp__job_start(pool, it->j, iter_opts(opts, &o));
  (void)mp__pool_step(pool, 0);
  *out = it;
  return 0;
}

int mp_pool_imap(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                 size_t in_size, size_t out_size, const mp_map_opts *opts,
                 mp_iter **out) {
  return iter_create(pool, f, in, n, in_size, out_size, opts, SINK_ORDERED,
                     out);
}

int mp_pool_imap_unordered(mp_pool *pool, mp_map_fn f, const void *in,
                           size_t n, size_t in_size, size_t out_size,
                           const mp_map_opts *opts, mp_iter **out) {
  return iter_create(pool, f, in, n, in_size, out_size, opts, SINK_UNORDERED,
                     out);
}

static int iter_bytes_create(mp_pool *pool, mp_apply_fn f,
                             const mp_bytes *in, size_t n, mp_source_fn src,
                             void *src_arg, const mp_map_opts *opts,
                             enum job_sink sink, mp_iter **out) {
  mp__fnref ref = {0};
  int rc = mp__bytes_args_ok(pool, f, in, n, opts, &ref);
  if (rc < 0)
    return rc;
  if (!out || (opts && opts->chunksize > UINT32_MAX / 2))
    return MP_EINVAL;
  mp_iter *it = malloc(sizeof *it);
  if (!it)
    return -ENOMEM;
  mp_map_opts o;
  job *j = mp__job_new_items(pool, JOB_BYTES, sink, n, iter_opts(opts, &o),
                             &ref);
  if (j && src && !(j->src_item = mp__buf_new((size_t)1 << 30))) {
    mp__job_unref(j);
    j = NULL;
  }
  if (!j) {
    free(it);
    return -ENOMEM;
  }
  j->afn = f;
  j->bin = in;
  j->src = src;
  j->src_arg = src_arg;
  j->out_size = sizeof(mp_bytes);
  mp__job_start(pool, j, iter_opts(opts, &o));
  it->j = j;
  (void)mp__pool_step(pool, 0);
  *out = it;
  return 0;
}

int mp_pool_imap_bytes(mp_pool *pool, mp_apply_fn f, const mp_bytes *in,
                       size_t n, const mp_map_opts *opts, mp_iter **out) {
  return iter_bytes_create(pool, f, in, n, NULL, NULL, opts, SINK_ORDERED,
                           out);
}

int mp_pool_imap_bytes_unordered(mp_pool *pool, mp_apply_fn f,
                                 const mp_bytes *in, size_t n,
                                 const mp_map_opts *opts, mp_iter **out) {
  return iter_bytes_create(pool, f, in, n, NULL, NULL, opts, SINK_UNORDERED,
                           out);
}

int mp_pool_imap_source(mp_pool *pool, mp_apply_fn f, mp_source_fn src,
                        void *src_arg, const mp_map_opts *opts,
                        mp_iter **out) {
  if (!src)
    return MP_EINVAL;
  return iter_bytes_create(pool, f, NULL, 0, src, src_arg, opts, SINK_ORDERED,
                           out);
}

int mp_pool_imap_source_unordered(mp_pool *pool, mp_apply_fn f,
                                  mp_source_fn src, void *src_arg,
                                  const mp_map_opts *opts, mp_iter **out) {
  if (!src)
    return MP_EINVAL;
  return iter_bytes_create(pool, f, NULL, 0, src, src_arg, opts,
                           SINK_UNORDERED, out);
}

/* The block holding the next item to return, or NULL if it has not come. */
static block *iter_find(const job *j) {
  MP__LIST_EACH(n, nx, &j->blocks) {
    block *b = MP__ENTRY(n, block, link);
    /* A block is freed once all its items are taken: b->taken < b->count. */
    if (j->sink == SINK_UNORDERED || j->next_ordered == b->start + b->taken)
      return b;
  }
  return NULL;
}

/* Whether the next item is a made-up one of the failed tail. */
static int iter_at_tail(const job *j) {
  if (!j->has_tail)
    return 0;
  if (j->sink == SINK_ORDERED)
    return j->next_ordered >= j->tail_from;
  return j->tail_next < j->n;
}

/* Every item returned: a source too has ended. */
static int iter_exhausted(const job *j) {
  return j->returned >= j->n && (!j->src || j->src_end);
}

static int iter_has_next(void *arg) {
  job *j = arg;
  return iter_find(j) != NULL || iter_at_tail(j) || iter_exhausted(j) ||
         j->state == JOB_COMPLETE;
}

/* Every item returned: MP_EOF, or once, the error a source stopped with,
 * as the outcome of the item it failed to make (index: the number of items
 * it made). Then its job has ended like any other: MP_EOF from then on. */
static int iter_end(job *j, size_t *index, mp_status *status) {
  if (j->src_end >= 0)
    return MP_EOF;
  int err = j->src_end;
  j->src_end = 1;
  if (index)
    *index = j->n;
  if (status)
    *status = (mp_status){err, 0};
  return err;
}

/* The next item of it: its output (out_size bytes) into out. */
static int iter_next(mp_iter *it, void *out, size_t *index, mp_status *status,
                     double timeout) {
  job *j = it->j;
  if (iter_exhausted(j))
    return iter_end(j, index, status);
  block *b = iter_find(j);
  if (!b && !iter_at_tail(j) && j->state != JOB_COMPLETE) {
    int rc = mp__pool_drive(j->pool, iter_has_next, j, mp__deadline(timeout));
    if (rc < 0)
      return rc;
    if (iter_exhausted(j)) /* a source that ended with nothing more */
      return iter_end(j, index, status);
    b = iter_find(j);
  }
  size_t idx;
  mp_status st;
  if (!b && iter_at_tail(j)) {
    idx = j->sink == SINK_ORDERED ? j->next_ordered : j->tail_next++;
    st = j->tail_st;
  } else if (!b) {
    /* Complete, yet the item never came: it could not be stored. Its index
     * is known only in input order. */
    idx = j->sink == SINK_ORDERED ? j->next_ordered : SIZE_MAX;
    st = (mp_status){-ENOMEM, 0};
  } else {
    size_t k = b->taken++;
    idx = b->start + k;
    st = b->st[k];
    if (j->kind == JOB_BYTES) {
      if (mp__block_take_bytes(b, k, out) == -ENOMEM)
        st = (mp_status){-ENOMEM, 0};
    } else {
      memcpy(out, b->outs + k * j->out_size, j->out_size);
    }
    if (b->taken == b->count)
      mp__block_done(j, b);
  }
  j->returned++;
  if (j->sink == SINK_ORDERED)
    j->next_ordered++;
  if (index)
    *index = idx;
  if (status)
    *status = st;
  return st.code;
}

int mp_iter_next(mp_iter *it, void *out, size_t *index, mp_status *status,
                 double timeout) {
  if (!it || !out || it->j->kind != JOB_MAP)
    return MP_EINVAL;
  return iter_next(it, out, index, status, timeout);
}

int mp_iter_next_bytes(mp_iter *it, mp_bytes *out, size_t *index,
                       mp_status *status, double timeout) {
  if (!it || !out || it->j->kind != JOB_BYTES)
    return MP_EINVAL;
  *out = (mp_bytes){NULL, 0};
  return iter_next(it, out, index, status, timeout);
}

void mp_iter_free(mp_iter *it) {
  if (!it)
    return;
  mp_result_free(it->j);
  free(it);
}
