/* loop.c: a pool's lifetime and its loop. One round feeds workers, waits
 * on the transport, kills what overran, replaces what was lost and runs
 * the callbacks; the public calls drive rounds until what they wait for is
 * done. No hidden threads: progress happens only inside these calls. */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { INIT_FAILURES_MAX = 3 }; /* workers in a row lost in the initializer */
#define DEFAULT_MAX_RESULT ((size_t)256 << 20)

static int pool_live_workers(const mp_pool *p) {
  int n = 0;
  for (int i = 0; i < p->nproc; i++)
    n += mp__worker_has_process(&p->w[i]);
  return n;
}

static int pool_start(mp_pool *p, int i) {
  assert(!mp__worker_has_process(&p->w[i]));
  int rc = p->tp_ops->start(p->tp, i);
  if (rc < 0)
    return rc;
  core_worker *cw = &p->w[i];
  cw->state = W_RUNNING;
  cw->nq = cw->tasks_sent = 0;
  cw->born_ns = p->opts.task_timeout > 0 ? mp__now_ns() : 0;
  return 0;
}

/* Every item not with a worker fails with code and detail: the retry list
 * and the items no job has handed out yet. */
static void pool_fail_queued(mp_pool *p, int code, int detail) {
  mp__list *n;
  while ((n = mp__list_first(&p->retry))) {
    chunk *c = MP__ENTRY(n, chunk, link);
    mp__list_remove(n);
    mp__chunk_fail(c, c->start, c->t.count, code, detail);
    mp__chunk_free(p, c);
  }
  MP__LIST_EACH(jn, jnx, &p->jobs) {
    job *j = MP__ENTRY(jn, job, link);
    mp__job_fail_rest(j, code, detail);
    mp__job_check_done(j);
  }
}

void mp__pool_shutdown(mp_pool *p, int code, int detail) {
  mp__pool_set_state(p, POOL_TERMINATED);
  int killed = 0;
  for (int i = 0; i < p->nproc; i++) {
    mp__sched_kill(p, i, MP_ECLOSED, 0, 0, 0);
    killed |= p->w[i].state == W_KILLED;
  }
  /* Every worker killed is reported lost before wait returns: what each
   * held comes back to the retry list, then fails. */
  if (killed)
    (void)p->tp_ops->wait(p->tp, 0);
  pool_fail_queued(p, code, detail);
}

/* Workers lost this round are replaced, unless the pool is closed and has
 * no work for them; a slot left empty by a failed start is tried again
 * while work waits, and if no worker at all can be had, queued work fails
 * with the start's error rather than waiting forever. */
static void pool_replace(mp_pool *p) {
  if (p->init_failures >= INIT_FAILURES_MAX && !mp__pool_is_terminated(p)) {
    /* The initializer kills every worker: replacing them would loop
     * forever (as Python's Pool does). The pool is broken. */
    mp__pool_shutdown(p, p->init_fail.code, p->init_fail.detail);
    return;
  }
  if (mp__pool_is_terminated(p))
    return;
  int work = mp__pool_has_work(p), err = 0;
  if (mp__pool_is_closed(p) && !work)
    return;
  for (int i = 0; i < p->nproc; i++) {
    if (mp__worker_has_process(&p->w[i]))
      continue;
    int rc = pool_start(p, i);
    if (rc < 0)
      err = rc;
  }
  if (err && work && !pool_live_workers(p))
    pool_fail_queued(p, err, 0);
}

/* Progress reports, then completion callbacks, at the end of a round. A
 * nested round (a callback calling the library) only queues more. */
static void pool_run_callbacks(mp_pool *p) {
  if (p->in_callbacks)
    return;
  p->in_callbacks = 1;
  for (;;) {
    mp__list *n;
    while ((n = mp__list_first(&p->prog_queue))) {
      job *j = MP__ENTRY(n, job, prog_link);
      mp__list_remove(n);
      j->progress(j->done, j->n, j->progress_arg);
      mp__job_unref(j);
    }
    if (!(n = mp__list_first(&p->cb_queue)))
      break;
    job *j = MP__ENTRY(n, job, cb_link);
    mp__list_remove(n);
    mp_result_cb cb = j->first_fail.code ? j->ecb : j->cb;
    if (cb)
      cb(j, j->cb_arg);
    mp__job_unref(j);
  }
  p->in_callbacks = 0;
}

/* Drop queued reports and callbacks unrun (the pool is going away). */
static void pool_drop_callbacks(mp_pool *p) {
  mp__list *queues[2] = {&p->prog_queue, &p->cb_queue}, *n;
  for (int q = 0; q < 2; q++) {
    while ((n = mp__list_first(queues[q]))) {
      job *j = q ? MP__ENTRY(n, job, cb_link) : MP__ENTRY(n, job, prog_link);
      mp__list_remove(n);
      mp__job_unref(j);
    }
  }
}

/* The first half of a round: work handed out, idle workers retired. Then
 * the deadline its wait may sleep to, at most deadline: now when a killed
 * worker waits to be reported, a job ended for lack of memory or callbacks
 * wait to run, else the earliest timeout. */
static int64_t pool_round_begin(mp_pool *p, int64_t deadline) {
  int ended = mp__sched_feed(p);
  mp__sched_retire_idle(p);
  int killed = 0;
  for (int i = 0; i < p->nproc; i++)
    killed |= p->w[i].state == W_KILLED;
  if (killed || ended ||
      (!p->in_callbacks && (!mp__list_empty(&p->cb_queue) ||
                            !mp__list_empty(&p->prog_queue))))
    return 0;
  int64_t due = mp__sched_timeouts(p, 0);
  return due < deadline ? due : deadline;
}

int mp__pool_step(mp_pool *p, int64_t deadline) {
  int rc = p->tp_ops->wait(p->tp, pool_round_begin(p, deadline));
  /* Only after the wait has read what workers sent: one that died on its
   * own but whose death was not seen yet must not be taken for one that
   * overran. */
  mp__sched_timeouts(p, 1);
  pool_replace(p);
  pool_run_callbacks(p);
  return rc;
}

int mp__pool_pollfds(mp_pool *p, struct pollfd *out, int max, int64_t *due) {
  *due = pool_round_begin(p, *due); /* as mp__pool_step decides */
  if (!p->tp_ops->pollfds) {
    int64_t slice = mp__now_ns() + MP__POOL_SLICE_NS;
    if (slice < *due)
      *due = slice;
    return 0;
  }
  return p->tp_ops->pollfds(p->tp, out, max, due);
}

int mp__pool_drive(mp_pool *p, int (*done)(void *), void *arg,
                   int64_t deadline) {
  while (!done(arg)) {
    if (!pool_live_workers(p) && !mp__pool_has_work(p) &&
        mp__list_empty(&p->jobs))
      break;
    int rc = mp__pool_step(p, deadline);
    if (rc < 0)
      return rc; /* the wait failed: say so rather than spin */
    if (!done(arg) && mp__now_ns() >= deadline)
      return MP_ETIMEDOUT;
  }
  return 0;
}

/* ---- public: lifetime ---- */

int mp__pool_create_with(mp_pool **out, const mp_pool_opts *opts,
                         const mp__tp_ops *ops, void *arg) {
  mp_pool_opts o = opts ? *opts : (mp_pool_opts){0};
  if (!out || o.processes < 0 || o.maxtasksperchild < 0 ||
      !(o.task_timeout >= 0) || o.max_result_bytes > MP__ARG_MAX)
    return MP_EINVAL;
  if (o.processes == 0)
    o.processes = mp_cpu_count();
  if (o.task_timeout > 1e9) /* beyond 31 years (infinity too): no limit */
    o.task_timeout = 0;
  mp_pool *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  p->opts = o;
  p->nproc = o.processes;
  p->max_res = o.max_result_bytes ? o.max_result_bytes : DEFAULT_MAX_RESULT;
  p->tp_ops = ops;
  mp__list_init(&p->jobs);
  mp__list_init(&p->retry);
  mp__list_init(&p->free_chunks);
  mp__list_init(&p->cb_queue);
  mp__list_init(&p->prog_queue);
  int rc = -ENOMEM;
  p->w = calloc((size_t)p->nproc, sizeof *p->w);
  if (p->w) {
    for (int i = 0; i < p->nproc; i++)
      mp__list_init(&p->w[i].q);
    mp__tp_cfg cfg = {.core = p, .nproc = p->nproc, .opts = &p->opts,
                      .max_res = p->max_res};
    rc = ops->create(&cfg, arg, &p->tp);
  }
  for (int i = 0; rc == 0 && i < p->nproc; i++)
    rc = pool_start(p, i);
  if (rc < 0) {
    mp_pool_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

/* The default transport: shm, unless MPOOL_TRANSPORT said "pipe" when the
 * program started (read before main, so no thread's setenv can race it). */
static int default_transport = MP_TRANSPORT_SHM;

__attribute__((constructor)) static void transport_from_env(void) {
  const char *t = getenv("MPOOL_TRANSPORT");
  if (t && strcmp(t, "pipe") == 0)
    default_transport = MP_TRANSPORT_PIPE;
}

/* Whether n workers of the fork transports can live in this process's
 * limits: the cap, and the fds each needs at least in the pool's process.
 * Checked before anything is forked, so an absurd count fails at once, not
 * after minutes of forking. What fails later (fork at RLIMIT_NPROC, the
 * rest of the fds) fails as it comes, -EAGAIN or -EMFILE, and is undone. */
static int pool_fits(int n) {
  if (n > MP_POOL_MAX_PROCESSES)
    return 0;
  struct rlimit r;
  return !(getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
           (rlim_t)n * MP__FDS_PER_WORKER_MIN > r.rlim_cur);
}

int mp_pool_create(mp_pool **out, const mp_pool_opts *opts) {
  mp_pool_opts o = opts ? *opts : (mp_pool_opts){0};
  if (o.processes == 0) {
    int cpus = mp_cpu_count();
    o.processes = cpus < MP_POOL_MAX_PROCESSES ? cpus : MP_POOL_MAX_PROCESSES;
  }
  if (o.processes > 0 && !pool_fits(o.processes))
    return MP_EINVAL;
  opts = &o;
  int m = mp__start_method(opts->start_method);
  if (m < 0)
    return m;
  int t = opts->transport ? opts->transport : default_transport;
  /* By default, pipes where shared memory cannot win: a worker that runs
   * one task and exits has no wait to save, and a channel to map. */
  if (!opts->transport && opts->maxtasksperchild == 1)
    t = MP_TRANSPORT_PIPE;
  if (t != MP_TRANSPORT_PIPE && t != MP_TRANSPORT_SHM)
    return MP_EINVAL;
  const mp__tp_ops *ops;
  if (m == MP_START_FORKSERVER)
    ops = t == MP_TRANSPORT_SHM ? &mp__tp_forkserver_shm : &mp__tp_forkserver;
  else
    ops = t == MP_TRANSPORT_SHM ? &mp__tp_fork_shm : &mp__tp_fork;
  return mp__pool_create_with(out, opts, ops, NULL);
}

int mp_pool_processes(const mp_pool *pool) { return pool ? pool->nproc : 0; }

int mp_pool_worker_pids(const mp_pool *pool, pid_t *pids, int n) {
  if (!pool || (!pids && n > 0) || n < 0)
    return MP_EINVAL;
  int k = 0;
  for (int i = 0; i < pool->nproc && k < n; i++)
    pids[k++] = mp__worker_has_process(&pool->w[i])
                    ? (pid_t)pool->tp_ops->ident(pool->tp, i)
                    : 0;
  return k;
}

int mp_pool_close(mp_pool *pool) {
  if (!pool)
    return MP_EINVAL;
  if (mp__pool_is_terminated(pool))
    return MP_ESTATE;
  mp__pool_set_state(pool, POOL_CLOSED);
  return mp__pool_step(pool, 0);
}

int mp_pool_terminate(mp_pool *p) {
  if (!p)
    return MP_EINVAL;
  mp__pool_shutdown(p, MP_ECLOSED, 0);
  pool_run_callbacks(p);
  return 0;
}

static int pool_idle(void *arg) {
  mp_pool *p = arg;
  return mp__list_empty(&p->jobs) && !pool_live_workers(p);
}

int mp_pool_join(mp_pool *p) {
  if (!p)
    return MP_EINVAL;
  if (!mp__pool_is_closed(p))
    return MP_ESTATE;
  return mp__pool_drive(p, pool_idle, p, INT64_MAX);
}

void mp_pool_free(mp_pool *p) {
  if (!p)
    return;
  if (p->tp) {
    mp_pool_terminate(p);
    p->tp_ops->destroy(p->tp);
  }
  /* Reports and callbacks still queued (free called from a callback, which
   * the header forbids, or terminate's ran): their references go. */
  pool_drop_callbacks(p);
  mp__chunks_release(p);
  free(p->w);
  free(p);
}
