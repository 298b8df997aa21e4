/* submit.c: submission and result handles: map, apply, their async forms,
 * and mp_result. */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
  CHUNK_BYTES = 256 * 1024,     /* bound on a map chunk's input or output */
  ITER_CHUNK_BYTES = 64 * 1024, /* tighter bound for iterators: flat memory */
  BYTES_ITEMS_MAX = 4096,       /* variable-length items per default chunk */
};

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

/* MP_EINVAL for a call the pool's transport cannot carry as asked: items
 * of their own lengths, a context or a call's timeout over a transport
 * that carries none (fixed_calls_only), or a context too long for one
 * frame (checked here, before a byte of it is copied). */
static int call_ok(const mp_pool *p, int bytes, const void *ctx,
                   size_t ctx_len, double timeout) {
  if (p->tp_ops->fixed_calls_only && (bytes || ctx || timeout != 0))
    return MP_EINVAL;
  if (ctx && ctx_len > MP__ARG_MAX)
    return MP_EINVAL;
  return 0;
}

/* f as a reference, when the pool's transport needs one. */
static int fn_ref(const mp_pool *p, mp__fn f, mp__fnref *ref) {
  return p->tp_ops->by_reference ? mp__fnref_make(f, ref) : 0;
}

int mp__map_args_ok(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                    size_t in_size, size_t out_size, const mp_map_opts *mo,
                    mp__fnref *ref) {
  if (!p || !f || in_size == 0 || out_size == 0 || in_size > MP__ELEM_MAX ||
      out_size > MP__ELEM_MAX || (n && !in) || n > SIZE_MAX / 2 / in_size ||
      n > SIZE_MAX / 2 / out_size)
    return MP_EINVAL;
  /* An explicit chunk travels as one message of at most MP__ELEM_MAX bytes
   * each way: a larger one is refused, not cut down. */
  size_t cs = mo ? mo->chunksize : 0;
  if (cs && (cs > MP__ELEM_MAX / in_size ||
             cs > MP__ELEM_MAX / (out_size + sizeof(int32_t))))
    return MP_EINVAL;
  if (mo && call_ok(p, 0, mo->context, mo->context_len, mo->task_timeout) < 0)
    return MP_EINVAL;
  if (!mp__pool_accepts_work(p))
    return MP_ECLOSED;
  return fn_ref(p, (mp__fn)f, ref);
}

/* A call's context and timeout, from opts, into j. Returns 0 or -ENOMEM. */
static int job_call_opts(mp_pool *p, job *j, const void *ctx, size_t ctx_len,
                         double timeout) {
  if (ctx) {
    j->ctx = malloc(ctx_len ? ctx_len : 1);
    if (!j->ctx)
      return -ENOMEM;
    memcpy(j->ctx, ctx, ctx_len);
    j->ctx_len = ctx_len;
    j->ctx_id = ++p->next_ctx;
  }
  if (timeout < 0 || timeout > 1e9)
    j->timeout_ns = -1;
  else if (timeout > 0)
    j->timeout_ns = mp__sec_to_ns(timeout) ? mp__sec_to_ns(timeout) : 1;
  return 0;
}

/* Chunking for a job of fixed-size items (in_size, out_size) or, out_size
 * 0, of variable-length ones: the explicit chunksize or the guided rule's
 * bounds, and an iterator's window. */
static void job_chunking(mp_pool *p, job *j, size_t asked) {
  size_t bytes = j->sink == SINK_ARRAY ? CHUNK_BYTES : ITER_CHUNK_BYTES;
  if (j->kind == JOB_MAP) {
    size_t elem = j->in_size > j->out_size + sizeof(int32_t)
                      ? j->in_size
                      : j->out_size + sizeof(int32_t);
    j->cs_max = bytes / elem ? bytes / elem : 1;
  } else {
    j->byte_bound = bytes;
    j->cs_max = BYTES_ITEMS_MAX;
  }
  j->chunksize = asked;
  size_t cs0 = asked;
  if (!cs0) {
    size_t div = (size_t)p->nproc * 4;
    cs0 = j->src ? j->cs_max : j->n / div + (j->n % div != 0);
    if (cs0 > j->cs_max)
      cs0 = j->cs_max;
    if (!cs0)
      cs0 = 1;
  }
  int deep = asked && asked <= MP__SMALL_CHUNK ? MP__DEEP_WINDOW : MP__WINDOW;
  j->window = cs0 * (size_t)p->nproc * (size_t)(deep + 1);
}

job *mp__job_new_items(mp_pool *p, enum job_kind kind, enum job_sink sink,
                       size_t n, const mp_map_opts *mo, const mp__fnref *ref) {
  job *j = mp__job_new(p, kind, sink);
  if (!j)
    return NULL;
  j->ref = *ref;
  j->n = n;
  if (mo && job_call_opts(p, j, mo->context, mo->context_len,
                          mo->task_timeout) < 0) {
    mp__job_unref(j);
    return NULL;
  }
  if (sink == SINK_ARRAY && mo) {
    j->status = mo->status;
    j->progress = mo->progress;
    j->progress_arg = mo->progress_arg;
  }
  return j;
}

/* Link a job made by mp__job_new_items once its inputs are set. */
void mp__job_start(mp_pool *p, job *j, const mp_map_opts *mo) {
  job_chunking(p, j, mo ? mo->chunksize : 0);
  mp__job_link(p, j);
  /* The first report, 0 done, before any result can have come: here,
   * not queued, since a queued report carries the count of its round. */
  if (j->progress)
    j->progress(0, j->n, j->progress_arg);
  mp__job_check_done(j); /* n == 0 */
}

job *mp__job_new_map(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                     size_t in_size, size_t out_size, const mp_map_opts *mo,
                     enum job_sink sink, const mp__fnref *ref) {
  job *j = mp__job_new_items(p, JOB_MAP, sink, n, mo, ref);
  if (!j)
    return NULL;
  j->mfn = f;
  j->in = in;
  j->in_size = in_size;
  j->out_size = out_size;
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

/* Start a blocking map's job, wait for it and drop it: its outcome. */
static int job_run_map(mp_pool *pool, job *j, const mp_map_opts *opts) {
  j->blocking = 1;
  mp__job_start(pool, j, opts);
  int rc = job_wait_blocking(j);
  if (rc == 0)
    rc = job_outcome(j, NULL);
  mp__job_unref(j);
  return rc;
}

int mp_pool_map_async(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                      size_t in_size, void *out, size_t out_size,
                      const mp_map_async_opts *opts, mp_result **out_result) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size,
                           opts ? &opts->map : NULL, &ref);
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
  mp__job_start(pool, j, opts ? &opts->map : NULL);
  (void)mp__pool_step(pool, 0); /* a failing wait shows at the next one */
  *out_result = j;
  return 0;
}

int mp_pool_map(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                size_t in_size, void *out, size_t out_size,
                const mp_map_opts *opts) {
  mp__fnref ref = {0};
  int rc = mp__map_args_ok(pool, f, in, n, in_size, out_size, opts, &ref);
  if (rc < 0)
    return rc;
  if (n && !out)
    return MP_EINVAL;
  job *j = mp__job_new_map(pool, f, in, n, in_size, out_size, opts,
                           SINK_ARRAY, &ref);
  if (!j)
    return -ENOMEM;
  j->out = out;
  return job_run_map(pool, j, opts);
}

static int apply_submit(mp_pool *pool, mp_apply_fn f, const void *arg,
                        size_t len, const mp_async_opts *opts, job **out) {
  if (!pool || !f || (len && !arg) || len > MP__ARG_MAX)
    return MP_EINVAL;
  if (opts && call_ok(pool, 0, opts->context, opts->context_len,
                      opts->task_timeout) < 0)
    return MP_EINVAL;
  if (!mp__pool_accepts_work(pool))
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
  if (opts && job_call_opts(pool, j, opts->context, opts->context_len,
                            opts->task_timeout) < 0) {
    mp__job_unref(j);
    return -ENOMEM;
  }
  j->afn = f;
  j->arg_len = len;
  j->n = 1;
  j->chunksize = 1;
  j->cs_max = 1;
  mp__job_link(pool, j);
  *out = j;
  return 0;
}

int mp_pool_apply(mp_pool *pool, mp_apply_fn f, const void *arg, size_t len,
                  void **result, size_t *result_len, mp_status *status) {
  if (!result || !result_len)
    return MP_EINVAL;
  job *j;
  int rc = apply_submit(pool, f, arg, len, NULL, &j);
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
  int rc = apply_submit(pool, f, arg, len, opts, &j);
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

/* ---- variable-length items ---- */

void mp_bytes_free(mp_bytes *b, size_t n) {
  for (size_t i = 0; b && i < n; i++) {
    free((void *)b[i].data);
    b[i] = (mp_bytes){NULL, 0};
  }
}

int mp__bytes_args_ok(mp_pool *p, mp_apply_fn f, const mp_bytes *in,
                      size_t n, const mp_map_opts *mo, mp__fnref *ref) {
  if (!p || !f || (n && !in) || n > SIZE_MAX / sizeof(mp_bytes))
    return MP_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (in[i].len > MP__ELEM_MAX || (in[i].len && !in[i].data))
      return MP_EINVAL;
  if (call_ok(p, 1, mo ? mo->context : NULL, mo ? mo->context_len : 0, 0) < 0)
    return MP_EINVAL;
  if (!mp__pool_accepts_work(p))
    return MP_ECLOSED;
  return fn_ref(p, (mp__fn)f, ref);
}

int mp_pool_map_bytes(mp_pool *pool, mp_apply_fn f, const mp_bytes *in,
                      size_t n, mp_bytes *out, const mp_map_opts *opts) {
  mp__fnref ref = {0};
  int rc = mp__bytes_args_ok(pool, f, in, n, opts, &ref);
  if (rc < 0)
    return rc;
  if (n && !out)
    return MP_EINVAL;
  for (size_t i = 0; i < n; i++)
    out[i] = (mp_bytes){NULL, 0};
  job *j = mp__job_new_items(pool, JOB_BYTES, SINK_ARRAY, n, opts, &ref);
  if (!j)
    return -ENOMEM;
  j->afn = f;
  j->bin = in;
  j->bout = out;
  j->out_size = sizeof(mp_bytes);
  return job_run_map(pool, j, opts);
}
