/* submit.c: submission and result handles: map, apply, their async forms,
 * and mp_result. */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
  CHUNK_BYTES = 256 * 1024,     /* bound on a map chunk's input or output */
  ITER_CHUNK_BYTES = 64 * 1024, /* tighter bound for iterators: flat memory */
};
#define MAX_ELEM ((size_t)1 << 30)
#define MAX_ARG (((size_t)2 << 30) - 4096)

job *mp__job_new(mp_pool *p, enum job_kind kind, enum job_sink sink) {
  (void)p;
  job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->refs = 1;
  j->kind = kind;
  j->sink = sink;
  mp__list_init(&j->link);
  mp__list_init(&j->cb_link);
  mp__list_init(&j->prog_link);
  mp__list_init(&j->blocks);
  return j;
}

static size_t pick_chunksize(const mp_pool *p, size_t n, size_t in_size,
                             size_t out_size, size_t asked, size_t bytes) {
  size_t cs = asked;
  if (cs == 0) {
    size_t div = (size_t)p->nproc * 4;
    cs = n / div + (n % div != 0);
  }
  size_t elem = in_size > out_size + sizeof(int32_t) ? in_size
                                                     : out_size + sizeof(int32_t);
  size_t bound = bytes / elem;
  if (cs > bound)
    cs = bound;
  if (cs > UINT32_MAX / 2)
    cs = UINT32_MAX / 2;
  return cs ? cs : 1;
}

/* f as a reference, when the pool's transport needs one. */
static int fn_ref(const mp_pool *p, mp__fn f, mp__fnref *ref) {
  return p->tp_ops->by_reference ? mp__fnref_make(f, ref) : 0;
}

int mp__map_args_ok(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                    size_t in_size, size_t out_size, mp__fnref *ref) {
  if (!p || !f || in_size == 0 || out_size == 0 || in_size > MAX_ELEM ||
      out_size > MAX_ELEM || (n && !in) || n > SIZE_MAX / 2 / in_size ||
      n > SIZE_MAX / 2 / out_size)
    return MP_EINVAL;
  if (p->closed)
    return MP_ECLOSED;
  return fn_ref(p, (mp__fn)f, ref);
}

job *mp__job_new_map(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                     size_t in_size, size_t out_size, const mp_map_opts *mo,
                     enum job_sink sink, const mp__fnref *ref) {
  job *j = mp__job_new(p, JOB_MAP, sink);
  if (!j)
    return NULL;
  j->mfn = f;
  j->ref = *ref;
  j->in = in;
  j->n = n;
  j->in_size = in_size;
  j->out_size = out_size;
  j->chunksize = pick_chunksize(
      p, n, in_size, out_size, mo ? mo->chunksize : 0,
      sink == SINK_ARRAY ? CHUNK_BYTES : ITER_CHUNK_BYTES);
  if (sink == SINK_ARRAY && mo) {
    j->status = mo->status;
    j->progress = mo->progress;
    j->progress_arg = mo->progress_arg;
  }
  int deep = j->chunksize <= MP__SMALL_CHUNK ? MP__DEEP_WINDOW : MP__WINDOW;
  j->window = j->chunksize * (size_t)p->nproc * (size_t)(deep + 1);
  mp__job_link(p, j);
  return j;
}

static int job_complete(void *arg) {
  return ((job *)arg)->state == JOB_COMPLETE;
}

/* The outcome of a job waited for: 0 or its lowest-indexed failure (code
 * and detail into st, when given); MP_ECLOSED if it never completed. */
static int job_outcome(const job *j, mp_status *st) {
  mp_status o = j->state == JOB_COMPLETE ? j->first_fail
                                         : (mp_status){MP_ECLOSED, 0};
  if (st)
    *st = o;
  return o.code;
}

/* The handle goes before the job completes: no outcome is delivered after
 * this, and (a map) its input is never read again. */
static void job_detach(job *j) {
  if (j->state == JOB_COMPLETE || j->state == JOB_DETACHED || !j->pool)
    return;
  j->state = JOB_DETACHED;
  j->next_item = j->n;
  if (j->kind == JOB_MAP)
    mp__sched_detach_input(j->pool, j);
  mp__job_check_done(j);
}

/* Wait for a job a blocking call made; on a failed wait the job is
 * detached, so nothing touches the caller's memory after the call. */
static int job_wait_blocking(job *j) {
  int rc = mp__pool_drive(j->pool, job_complete, j, INT64_MAX);
  if (rc < 0)
    job_detach(j);
  return rc;
}

int mp_pool_map_async(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                      size_t in_size, void *out, size_t out_size,
                      const mp_map_async_opts *opts, mp_result **out_result) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size, &ref);
  if (rc < 0)
    return rc;
  if (!out_result || (n && !out))
    return MP_EINVAL;
  job *j = mp__job_new_map(pool, f, in, n, in_size, out_size,
                           opts ? &opts->map : NULL, SINK_ARRAY, &ref);
  if (!j)
    return -ENOMEM;
  j->out = out;
  if (opts) {
    j->cb = opts->async.callback;
    j->ecb = opts->async.error_callback;
    j->cb_arg = opts->async.arg;
  }
  mp__job_check_done(j); /* n == 0 */
  (void)mp__pool_step(pool, 0); /* a failing wait shows at the next one */
  *out_result = j;
  return 0;
}

int mp_pool_map(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                size_t in_size, void *out, size_t out_size,
                const mp_map_opts *opts) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size, &ref);
  if (rc < 0)
    return rc;
  if (n && !out)
    return MP_EINVAL;
  job *j = mp__job_new_map(pool, f, in, n, in_size, out_size, opts,
                           SINK_ARRAY, &ref);
  if (!j)
    return -ENOMEM;
  j->out = out;
  j->blocking = 1;
  mp__job_check_done(j);
  rc = job_wait_blocking(j);
  if (rc == 0)
    rc = job_outcome(j, NULL);
  mp__job_unref(j);
  return rc;
}

static int apply_submit(mp_pool *pool, mp_apply_fn f, const void *arg,
                        size_t len, job **out) {
  if (!pool || !f || (len && !arg) || len > MAX_ARG)
    return MP_EINVAL;
  if (pool->closed)
    return MP_ECLOSED;
  mp__fnref ref = {0};
  int rc = fn_ref(pool, (mp__fn)f, &ref);
  if (rc < 0)
    return rc;
  job *j = mp__job_new(pool, JOB_APPLY, SINK_ARRAY);
  if (!j)
    return -ENOMEM;
  j->ref = ref;
  if (len) {
    j->arg = malloc(len);
    if (!j->arg) {
      free(j);
      return -ENOMEM;
    }
    memcpy(j->arg, arg, len);
  }
  j->afn = f;
  j->arg_len = len;
  j->n = 1;
  j->chunksize = 1;
  mp__job_link(pool, j);
  *out = j;
  return 0;
}

int mp_pool_apply(mp_pool *pool, mp_apply_fn f, const void *arg, size_t len,
                  void **result, size_t *result_len, mp_status *status) {
  if (!result || !result_len)
    return MP_EINVAL;
  job *j;
  int rc = apply_submit(pool, f, arg, len, &j);
  if (rc < 0)
    return rc;
  rc = job_wait_blocking(j);
  if (rc == 0)
    rc = job_outcome(j, status);
  else if (status)
    *status = (mp_status){rc, 0};
  *result = rc ? NULL : j->res;
  *result_len = rc ? 0 : j->res_len;
  if (!rc)
    j->res = NULL;
  mp__job_unref(j);
  return rc;
}

int mp_pool_apply_async(mp_pool *pool, mp_apply_fn f, const void *arg,
                        size_t len, const mp_async_opts *opts,
                        mp_result **out) {
  if (!out)
    return MP_EINVAL;
  job *j;
  int rc = apply_submit(pool, f, arg, len, &j);
  if (rc < 0)
    return rc;
  if (opts) {
    j->cb = opts->callback;
    j->ecb = opts->error_callback;
    j->cb_arg = opts->arg;
  }
  (void)mp__pool_step(pool, 0);
  *out = j;
  return 0;
}

/* ---- results ---- */

int mp_result_wait(mp_result *r, double timeout) {
  if (!r)
    return MP_EINVAL;
  if (r->state == JOB_COMPLETE)
    return 0;
  if (!r->pool)
    return MP_ECLOSED;
  return mp__pool_drive(r->pool, job_complete, r, mp__deadline(timeout));
}

int mp_result_ready(mp_result *r) {
  if (!r)
    return 0;
  if (r->state != JOB_COMPLETE && r->pool)
    (void)mp__pool_step(r->pool, 0);
  return r->state == JOB_COMPLETE;
}

int mp_result_get(mp_result *r, double timeout, const void **data,
                  size_t *len, mp_status *status) {
  int rc = mp_result_wait(r, timeout);
  if (rc < 0)
    return rc;
  rc = job_outcome(r, status);
  if (data)
    *data = rc ? NULL : r->res;
  if (len)
    *len = rc ? 0 : r->res_len;
  return rc;
}

int mp_result_successful(mp_result *r) {
  if (!r)
    return MP_EINVAL;
  if (r->state != JOB_COMPLETE)
    return MP_ESTATE;
  return r->first_fail.code == 0;
}

void mp_result_free(mp_result *r) {
  if (!r)
    return;
  /* Complete, its report or callback queued but not yet run: it must not
   * run now. The queue's reference goes with it. */
  mp__list *queued[2] = {&r->prog_link, &r->cb_link};
  for (int i = 0; i < 2; i++) {
    if (mp__list_linked(queued[i])) {
      mp__list_remove(queued[i]);
      mp__job_unref(r);
    }
  }
  job_detach(r);
  mp__job_unref(r);
}
