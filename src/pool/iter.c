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

static int iter_create(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                       size_t in_size, size_t out_size,
                       const mp_map_opts *opts, enum job_sink sink,
                       mp_iter **out) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size, &ref);
  if (rc < 0)
    return rc;
  if (!out)
    return MP_EINVAL;
  mp_iter *it = malloc(sizeof *it);
  if (!it)
    return -ENOMEM;
  mp_map_opts o = {.chunksize = opts ? opts->chunksize : 0};
  it->j = mp__job_new_map(pool, f, in, n, in_size, out_size, &o, sink, &ref);
  if (!it->j) {
    free(it);
    return -ENOMEM;
  }
  mp__job_check_done(it->j);
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

static int iter_has_next(void *arg) {
  job *j = arg;
  return iter_find(j) != NULL || iter_at_tail(j) || j->returned >= j->n ||
         j->state == JOB_COMPLETE;
}

int mp_iter_next(mp_iter *it, void *out, size_t *index, mp_status *status,
                 double timeout) {
  if (!it || !out)
    return MP_EINVAL;
  job *j = it->j;
  if (j->returned >= j->n)
    return MP_EOF;
  block *b = iter_find(j);
  if (!b && !iter_at_tail(j) && j->state != JOB_COMPLETE) {
    int rc = mp__pool_drive(j->pool, iter_has_next, j, mp__deadline(timeout));
    if (rc < 0)
      return rc;
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
    memcpy(out, b->outs + k * j->out_size, j->out_size);
    if (b->taken == b->count) {
      mp__list_remove(&b->link);
      free(b);
    }
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

void mp_iter_free(mp_iter *it) {
  if (!it)
    return;
  mp_result_free(it->j);
  free(it);
}
