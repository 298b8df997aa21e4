/*
 * pool_internal.h: the pool's core, shared by the files of src/pool/, and
 * the interface through which it reaches its workers: a transport.
 *
 * How a task flows. A call (map, imap, apply) makes a job. The scheduler
 * (sched.c) cuts it into chunks of items, hands each chunk to a worker as an
 * mp__task through the transport's send(), and keeps, per worker, the queue
 * of chunks that worker holds, oldest first: a small window of them, so no
 * worker waits for the parent. The transport moves a task's bytes to its
 * worker and the result back, and reports two events to the core:
 *   mp__core_result(): the oldest task worker w holds has its result;
 *   mp__core_lost():   worker w is gone: how, and what it was running.
 * The core delivers outcomes to the job's sink (job.c: the caller's arrays,
 * an iterator's blocks, an apply's buffer), settles what a lost worker held
 * (the item it was running fails, the rest run again), orders results and
 * runs callbacks at the end of a round (loop.c). The core knows no fd, pid
 * or signal; it keeps its own record of why it killed a worker (a timeout,
 * terminate), since only it knows.
 *
 * What a transport must do (mp__tp_ops): start a worker in an empty slot;
 * queue a task without blocking, and return results in the order tasks were
 * sent; take back a task not yet begun (cancel); end a worker now (kill) or
 * once idle (retire); in wait(), move bytes until the deadline or an event,
 * report every event through the two entry points, and report every worker
 * killed before the call as lost before it returns; say what a worker runs
 * now and whether its initializer has returned (running, ready); validate
 * every byte it reads from a worker before the core sees it. The fork
 * transport (tp_fork.c) is the one the public API creates; tests drive the
 * core with a fake one.
 */
#ifndef MPOOL_POOL_INTERNAL_H
#define MPOOL_POOL_INTERNAL_H

#include "internal.h"

#include <assert.h>
#include <stddef.h>

/* ---- one small intrusive list: circular, doubly linked, with a head ---- */

typedef struct mp__list {
  struct mp__list *prev, *next;
} mp__list;

static inline void mp__list_init(mp__list *h) { h->prev = h->next = h; }
static inline int mp__list_empty(const mp__list *h) { return h->next == h; }
/* A node unlinked by mp__list_remove points at itself: in no list. */
static inline int mp__list_linked(const mp__list *n) { return n->next != n; }
static inline void mp__list_insert(mp__list *before, mp__list *n) {
  n->next = before;
  n->prev = before->prev;
  before->prev->next = n;
  before->prev = n;
}
static inline void mp__list_push(mp__list *h, mp__list *n) {
  mp__list_insert(h, n);
}
static inline void mp__list_push_front(mp__list *h, mp__list *n) {
  mp__list_insert(h->next, n);
}
static inline void mp__list_remove(mp__list *n) {
  assert(mp__list_linked(n));
  n->prev->next = n->next;
  n->next->prev = n->prev;
  mp__list_init(n);
}
/* How many nodes h holds (walks the list: for asserts). */
static inline size_t mp__list_len(const mp__list *h) {
  size_t n = 0;
  for (const mp__list *i = h->next; i != h; i = i->next)
    n++;
  return n;
}
/* The first node, or NULL. */
static inline mp__list *mp__list_first(const mp__list *h) {
  return mp__list_empty(h) ? NULL : h->next;
}
#define MP__ENTRY(node, type, member)                                          \
  ((type *)(void *)((char *)(node) - offsetof(type, member)))
/* For each node n of h; n may be removed in the body (next is kept). */
#define MP__LIST_EACH(n, nx, h)                                                \
  for (mp__list *n = (h)->next, *nx = n->next; n != (h); n = nx, nx = n->next)

/* ---- what the core hands a transport ---- */

enum { MP__TASK_MAP, MP__TASK_APPLY, MP__TASK_BYTES };

typedef struct mp__task {
  uint64_t id;      /* unique in its pool, never 0 */
  int kind;         /* MP__TASK_MAP or MP__TASK_APPLY */
  void (*fn)(void); /* mp_map_fn or mp_apply_fn */
  const mp__fnref *ref; /* fn as a portable reference, for transports
                         * whose workers are not forked copies; else NULL */
  const char *in;   /* map: count * in_size bytes; apply: the argument */
  size_t in_len;
  uint32_t count, in_size, out_size; /* map */
  uint32_t flags;   /* MP__TF_* */
  const char *ctx;  /* the call's context, ctx_len bytes, id ctx_id (0:
                     * none): a worker needs it once, before the first
                     * task of the call it runs */
  size_t ctx_len;
  uint64_t ctx_id;
  int by_ref;       /* in stays unchanged until this task's result is in:
                     * it may be sent by reference (vmsplice) */
  /* The transport's own, while the task is with it. */
  mp__list tp_link;
  size_t tp_off;    /* bytes of its frame already sent */
  char *tp_copy;    /* its input, copied by cancel(); freed by the core */
  int tp_ctx;       /* its context goes before it */
  int tp_divert;    /* its frames go on the pipe, announced in the ring */
  unsigned char tp_head[128] __attribute__((aligned(16))); /* its headers */
} mp__task;

/* How a worker was lost, as its transport saw it. */
enum {
  MP__LOST_EXIT = 1, /* it ended: detail is its exit code (-N: signal N) */
  MP__LOST_PROTO,    /* it sent bytes that are not a valid frame */
  MP__LOST_NOMEM,    /* its result could not be received: no memory */
};

typedef struct mp__loss {
  int why;          /* MP__LOST_* */
  int detail;       /* the exit code (0 when the kernel kept no status) */
  int status_known; /* the kernel kept its status: detail is exact */
  uint64_t task;    /* the task it was running (when the bad bytes were
                     * read, for PROTO), 0 if none or not known */
  uint32_t item;    /* the item of that task */
  int init_done;    /* its initializer had returned */
} mp__loss;

typedef struct mp__tp_cfg {
  mp_pool *core;    /* to report to */
  int nproc;
  const mp_pool_opts *opts;
  size_t max_res;   /* largest apply result, bytes */
} mp__tp_cfg;

typedef struct mp__tp_ops {
  /* Non-zero: functions cross as references (its workers are not forked
   * copies of the caller). The core makes one per job at submit, refusing
   * with MP_EINVAL a function no process could resolve, and hands it with
   * each task. */
  int by_reference;
  /* Non-zero: its workers run tasks in pools of their own (MPI ranks), so
   * a result carries each item's outcome as that pool reported it: a map
   * result holds the outputs, then one mp__item_st per item (codec.c), and
   * an apply result may carry any outcome (MP_ECRASHED, MP_ETIMEDOUT,
   * MP_ENOFUNC...). Each outcome is validated before the core uses it. */
  int item_status;
  /* Non-zero: it carries only fixed-size maps and applies, without a
   * call's context or timeout (its workers' own pools take the pool's
   * options); the core refuses the rest at submit with MP_EINVAL rather
   * than let them run without what they asked for. */
  int fixed_calls_only;
  /* Make the transport for cfg's pool; no worker is started yet. Returns 0
   * and sets *tp, or -errno. */
  int (*create)(const mp__tp_cfg *cfg, void *arg, void **tp);
  /* Start worker w in its empty slot. Returns 0 or -errno. */
  int (*start)(void *tp, int w);
  /* Queue t for worker w; never blocks. Returns 0 or -errno. */
  int (*send)(void *tp, int w, mp__task *t);
  /* Take task id back from worker w. Returns 1 when no byte of it had
   * gone (it is no longer the transport's), 0 when it has begun: then the
   * transport has stopped reading t->in (it copied what was left into
   * t->tp_copy, or sent it all), or -errno when it could not (kill w). */
  int (*cancel)(void *tp, int w, uint64_t id);
  /* End worker w now. drain: results it sent before still count. */
  void (*kill)(void *tp, int w, int drain);
  /* Worker w gets no more tasks: let it exit once it has answered all. */
  void (*retire)(void *tp, int w);
  /* Move bytes until the deadline (ns, CLOCK_MONOTONIC; INT64_MAX: none)
   * or until something happened; report through the core's entry points.
   * Returns 0 or -errno (the wait itself failed). */
  int (*wait)(void *tp, int64_t deadline);
  /* What worker w runs now, read consistently: 1 with the task, item and
   * when it started (ns), or 0 when none (or it is moving on). */
  int (*running)(void *tp, int w, uint64_t *task, uint32_t *item,
                 int64_t *since);
  /* 1 once worker w's initializer has returned. */
  int (*ready)(void *tp, int w);
  /* Worker w's process id as the user sees it, 0 if none. */
  long (*ident)(void *tp, int w);
  /* Kill and reap every worker, free everything. No event is reported. */
  void (*destroy)(void *tp);
  /* Optional (NULL: the pool is polled in slices, see mp__pool_pollfds):
   * the fds wait() would poll now, into out[0..max), their events set;
   * returns how many there are, which may exceed max (call again with
   * room). Lowers *due (ns, CLOCK_MONOTONIC) to when wait() must run even
   * if none of them fires (0: now). After a poll of them, a wait(tp, 0)
   * moves whatever became ready; their revents are not used. */
  int (*pollfds)(void *tp, struct pollfd *out, int max, int64_t *due);
} mp__tp_ops;

/* The pipes transport (tp_fork.c), its workers forked from the caller
 * (fork) or by a fork server (forkserver, tp_forkserver.c); and the same
 * with the bytes in shared-memory rings (shm: tp_fork.c over shmchan.c). */
extern const mp__tp_ops mp__tp_fork;
extern const mp__tp_ops mp__tp_forkserver;
extern const mp__tp_ops mp__tp_fork_shm;
extern const mp__tp_ops mp__tp_forkserver_shm;
/* The fds these hold in the pool's process per worker, at least: its task
 * pipe's write end and its result pipe's read end (and up to 3 more: a
 * copy of the task pipe's read end, a pidfd, a shared-memory channel). */
enum { MP__FDS_PER_WORKER_MIN = 2 };

/* ---- the core's records ---- */

enum job_kind { JOB_MAP, JOB_APPLY, JOB_BYTES };
enum job_sink { SINK_ARRAY, SINK_ORDERED, SINK_UNORDERED };
enum job_state {
  JOB_QUEUED,   /* items left to hand out */
  JOB_DRAINING, /* all handed out (or dropped); outcomes outstanding */
  JOB_COMPLETE, /* every item has its outcome */
  JOB_DETACHED, /* the handle was freed first: outcomes are dropped */
};

typedef struct block block;

/* A job: one map, imap or apply (a job of one item). It is the mp_result
 * handle too. */
struct mp_result {
  enum job_kind kind;
  enum job_sink sink;
  enum job_state state;
  int blocking;    /* a map whose caller waits inside mp_pool_map */
  int refs;        /* the caller's handle, the pool's list, each queue */
  mp_pool *pool;   /* NULL once complete or the pool is gone */
  mp__list link;   /* the pool's jobs, oldest first */
  mp__list cb_link, prog_link; /* queued for a callback, a progress report */
  size_t inflight; /* chunks alive: with workers or awaiting a retry */

  size_t n;          /* items: 1 for apply */
  size_t next_item;  /* next index to hand out */
  size_t done;       /* items with an outcome */
  size_t first_fail_idx;
  mp_status first_fail; /* the lowest-indexed failure; code 0: none */
  size_t chunksize;

  /* map */
  mp_map_fn mfn;
  const char *in;
  char *out;
  size_t in_size, out_size;
  mp_status *status;
  mp_progress_fn progress;
  void *progress_arg;

  /* iterators: result blocks waiting for mp_iter_next */
  mp__list blocks;
  block *spare;      /* one block all taken, kept for the next one */
  size_t window;     /* items handed out and not yet returned, at most */
  size_t returned;   /* items returned by mp_iter_next */
  size_t next_ordered;
  /* Items from tail_from on, never handed out, all fail alike (terminate,
   * out of memory): their outcomes are made up as they are asked for, so
   * failing a million items costs no memory. */
  int has_tail;
  size_t tail_from, tail_next;
  mp_status tail_st;

  mp__fnref ref; /* the function, for by_reference transports */
  char *ctx;     /* the call's context, copied; ctx_id 0: none */
  size_t ctx_len;
  uint64_t ctx_id;
  int64_t timeout_ns; /* per item: 0 the pool's, negative none */

  /* variable-length items (JOB_BYTES; the function is afn) */
  const mp_bytes *bin; /* the items, or */
  mp_source_fn src;    /* where they come from, one at a time */
  void *src_arg;
  int src_end;         /* source: 0 active, 1 ended, < 0 its error (not
                        * yet returned by mp_iter_next_bytes) */
  mp_buf *src_item;    /* the item the source is writing */
  size_t pack_hint;    /* item bytes the last source chunk packed */
  size_t byte_bound;   /* bytes of items a default chunk holds at most */
  size_t cs_max;       /* items a default chunk holds at most */
  mp_bytes *bout;      /* map_bytes: the results */

  /* apply (and the function of a bytes job) */
  mp_apply_fn afn;
  char *arg;
  size_t arg_len;
  char *res;
  size_t res_len;

  mp_result_cb cb, ecb;
  void *cb_arg;
};
typedef struct mp_result job;

/* Outcomes of items [start, start + count) of an iterator's job, waiting
 * for mp_iter_next; taken, oldest first, up to taken. For a bytes job outs
 * is the result payload as it came (count mp__item_res, then the bytes):
 * each result is copied out as it is taken, so a result costs a malloc
 * just before its caller frees the one before (no heap of live copies),
 * and next is where the next one's bytes start. */
struct block {
  mp__list link;
  size_t start, count, taken;
  size_t cap;     /* bytes after the header, for statuses and outputs */
  mp_status *st;
  char *outs;
  const char *next;
};

/* Items [start, start + count) of a job, with a worker or awaiting one. */
typedef struct chunk {
  mp__list link;  /* a worker's queue, the retry list or the free list */
  job *j;
  size_t start;
  int deaths;     /* workers lost running it with no item to blame */
  char *pack;     /* JOB_BYTES: its items' lengths then bytes (owned) */
  size_t pack_len;
  mp__task t;     /* what the transport sees; t.id 0: not yet sent */
} chunk;

enum worker_state {
  W_EMPTY,    /* no worker */
  W_RUNNING,
  W_RETIRING, /* told to exit once idle */
  W_KILLED,   /* killed by the core; its loss not yet reported */
};

typedef struct core_worker {
  enum worker_state state;
  mp__list q;       /* chunks it holds, in the order it runs them */
  int nq;
  int tasks_sent;   /* for maxtasksperchild */
  int64_t born_ns;  /* its initializer's deadline counts from here */
  /* Why the core killed it (W_KILLED): MP_ETIMEDOUT, MP_ECLOSED; with the
   * task and item it was running; init: in its initializer. */
  int kill_code;
  uint64_t kill_task;
  uint32_t kill_item;
  int kill_init;
} core_worker;

/* What the pool is in: each state implies the ones before it (a terminated
 * pool is closed too), and it only ever moves forward. */
enum pool_state {
  POOL_RUNNING,    /* takes new jobs */
  POOL_CLOSED,     /* close: no new jobs; queued ones still run */
  POOL_TERMINATED, /* terminate or a broken initializer: nothing runs */
};

/* Whether the slot holds a process, live or killed and not yet reported
 * lost. */
static inline int mp__worker_has_process(const core_worker *cw) {
  return cw->state != W_EMPTY;
}

/* Whether its process is one the core has not killed: it may still send. */
static inline int mp__worker_is_working(const core_worker *cw) {
  return cw->state == W_RUNNING || cw->state == W_RETIRING;
}

/* Whether it is given new chunks. */
static inline int mp__worker_takes_work(const core_worker *cw) {
  return cw->state == W_RUNNING;
}

struct mp_pool {
  int nproc;
  core_worker *w;
  const mp__tp_ops *tp_ops;
  void *tp;
  mp_pool_opts opts;
  size_t max_res;
  enum pool_state state; /* changed only by mp__pool_set_state */
  int init_failures;   /* workers in a row lost in the initializer */
  mp_status init_fail; /* how the last one was lost */
  uint64_t next_id, next_ctx;
  int ntimed;          /* incomplete jobs with a timeout of their own */
  mp__list jobs;       /* incomplete jobs, oldest first */
  mp__list retry;      /* chunks taken back from lost workers */
  mp__list free_chunks;
  int nfree_chunks;
  mp__list cb_queue, prog_queue;
  int in_callbacks;
};

/* Whether the pool takes new jobs (neither closed nor terminated). */
static inline int mp__pool_accepts_work(const mp_pool *p) {
  return p->state == POOL_RUNNING;
}

/* Whether close or terminate has run: no new jobs. */
static inline int mp__pool_is_closed(const mp_pool *p) {
  return p->state >= POOL_CLOSED;
}

/* Whether terminate has run: no worker is started again. */
static inline int mp__pool_is_terminated(const mp_pool *p) {
  return p->state == POOL_TERMINATED;
}

/* The one place the pool's state changes: forward only, or staying put. */
static inline void mp__pool_set_state(mp_pool *p, enum pool_state to) {
  assert(to >= p->state);
  p->state = to;
}

/* How deep the scheduler fills each worker's queue (sched.c); a job's
 * window of items out at once derives from it (submit.c). */
enum {
  MP__WINDOW = 2,       /* chunks in flight per worker */
  MP__DEEP_WINDOW = 128, /* the same, for tiny map chunks */
  MP__SMALL_CHUNK = 4,  /* items: what counts as a tiny chunk */
};

/* ---- submit.c: making jobs ---- */

/* A job with no items yet, its lists empty, one reference (the caller's). */
job *mp__job_new(mp_pool *p, enum job_kind kind, enum job_sink sink);
/* MP_EINVAL or MP_ECLOSED for a map's arguments (an explicit chunksize
 * too large for one message included), else 0. With a by_reference
 * transport, f is made a reference into *ref (MP_EINVAL when it cannot
 * be: see mp__fnref_make). */
int mp__map_args_ok(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                    size_t in_size, size_t out_size, const mp_map_opts *mo,
                    mp__fnref *ref);
/* The same for variable-length items (in may be NULL for a source). */
int mp__bytes_args_ok(mp_pool *p, mp_apply_fn f, const mp_bytes *in,
                      size_t n, const mp_map_opts *mo, mp__fnref *ref);
/* A job of n items (so far) with a call's options (context, timeout,
 * status, progress), not yet linked: set its inputs, then mp__job_start. */
job *mp__job_new_items(mp_pool *p, enum job_kind kind, enum job_sink sink,
                       size_t n, const mp_map_opts *mo, const mp__fnref *ref);
/* Its chunking and window, then into the pool's list. */
void mp__job_start(mp_pool *p, job *j, const mp_map_opts *mo);
/* A map job over in, not yet started (mp__job_start); NULL when out of
 * memory. */
job *mp__job_new_map(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                     size_t in_size, size_t out_size, const mp_map_opts *mo,
                     enum job_sink sink, const mp__fnref *ref);

/* ---- job.c: jobs and their outcomes ---- */

void mp__job_unref(job *j);
/* Into the pool's list of jobs (the pool's reference). */
void mp__job_link(mp_pool *p, job *j);
/* The job may be complete: if so, leave the pool's list, queue callbacks. */
void mp__job_check_done(job *j);
/* Outcomes for map items [start, start + count): codes holds the task
 * functions' int32 returns, unaligned (NULL: all fail with code, detail),
 * outs their outputs (NULL: none). */
void mp__job_deliver(job *j, size_t start, size_t count, const char *codes,
                     const char *outs, int code, int detail);
/* The same, each item's outcome given whole: st holds count mp__item_st,
 * unaligned (for transports with item_status). */
void mp__job_deliver_st(job *j, size_t start, size_t count, const char *st,
                        const char *outs);
/* The apply's outcome, its result bytes copied. */
void mp__apply_deliver(job *j, int code, int detail, const char *data,
                       size_t len);
/* Count items done and queue a progress report for the end of the round. */
void mp__job_progress(job *j, size_t count);
/* Items never handed out fail with code, detail. */
void mp__job_fail_rest(job *j, int code, int detail);
/* Whether the job can hand out a chunk now. */
int mp__job_has_work(const job *j);
/* A chunk record for items [start, start + count) of j (recycled). */
chunk *mp__chunk_new(mp_pool *p, job *j, size_t start, size_t count,
                     int deaths);
void mp__chunk_free(mp_pool *p, chunk *c);
/* Fail items [start, start + count) of c's job with code, detail. */
void mp__chunk_fail(chunk *c, size_t start, size_t count, int code,
                    int detail);
/* Put items [start, start + count) of j on the retry list; from is the
 * chunk that held them (a bytes job's item bytes are copied from it). */
void mp__requeue(mp_pool *p, const chunk *from, size_t start, size_t count,
                 int deaths);
/* A bytes-job chunk of the items [first, first + count) of from (NULL: of
 * the job's array), its pack built. NULL when out of memory. */
chunk *mp__bytes_chunk_sub(mp_pool *p, job *j, const chunk *from,
                           size_t first, size_t count, int deaths);
/* A chunk of up to cnt items pulled from j's source (growing j->n); NULL
 * when the source had none (it ended or failed: j->src_end says) or no
 * memory. */
chunk *mp__source_chunk(mp_pool *p, job *j, size_t cnt);
/* Outcomes for items [start, start + count) of a bytes job from a result
 * payload of len bytes already validated (mp__bytes_res_check). */
void mp__job_deliver_bytes(job *j, size_t start, size_t count,
                           const char *payload, size_t len);
/* The result of item k of bytes block b, its status st: a malloc'd copy
 * into *out ({NULL, 0} when empty or failed). Items are taken in order:
 * k is b->taken. Returns st's code, or -ENOMEM (no copy could be had). */
int mp__block_take_bytes(block *b, size_t k, mp_bytes *out);
/* Every item of j's block b is taken: it leaves j's list (kept as j's
 * spare, or freed). */
void mp__block_done(job *j, block *b);
/* Release the chunk records kept for reuse. */
void mp__chunks_release(mp_pool *p);

/* ---- sched.c: who runs what, and what a lost worker costs ---- */

int mp__pool_has_work(const mp_pool *p);
/* Hand chunks to workers through the transport. Returns 1 when it ended
 * a job for lack of memory (no worker held anything to bring a round in
 * which to try again): its waiter is to be told now, not after a sleep. */
int mp__sched_feed(mp_pool *p);
/* Tell idle workers to exit when no more work can come. */
void mp__sched_retire_idle(mp_pool *p);
/* The earliest deadline of a running item or initializer; with kill_now,
 * workers past theirs are killed. */
int64_t mp__sched_timeouts(mp_pool *p, int kill_now);
/* Kill worker w now, for code (MP_ETIMEDOUT, MP_ECLOSED). */
void mp__sched_kill(mp_pool *p, int w, int code, uint64_t task,
                    uint32_t item, int drain);
/* The handle of map job j is freed: nothing may read its input again. */
void mp__sched_detach_input(mp_pool *p, job *j);

/* ---- loop.c: lifetime and the loop ---- */

/* Make a pool whose workers the transport ops reaches (arg is handed to
 * its create). The public mp_pool_create uses the fork transport. */
int mp__pool_create_with(mp_pool **out, const mp_pool_opts *opts,
                         const mp__tp_ops *ops, void *arg);
/* One round. Returns 0 or -errno (the transport's wait failed). */
int mp__pool_step(mp_pool *p, int64_t deadline);
/* Rounds until done(arg) or the deadline; at least one. Returns 0,
 * MP_ETIMEDOUT, or -errno when the wait keeps failing. */
int mp__pool_drive(mp_pool *p, int (*done)(void *), void *arg,
                   int64_t deadline);
void mp__pool_shutdown(mp_pool *p, int code, int detail);
/*
 * Wait on a pool together with other fds (mp_wait): the first half of a
 * round (work handed out, idle workers retired), then the fds the round's
 * wait would poll into out[0..max), and in *due the latest time a round
 * must run even if none fires (0: now; a transport without pollfds gets
 * MP__POOL_SLICE_NS from now). Returns the number of fds, which may exceed
 * max (call again with room). After polling them, mp__pool_step(p, 0)
 * completes the round.
 */
#define MP__POOL_SLICE_NS ((int64_t)10 * 1000000)
int mp__pool_pollfds(mp_pool *p, struct pollfd *out, int max, int64_t *due);

/* The transport's two entry points. mp__core_result: the result payload of
 * id, the oldest task worker w holds. Returns 0, or MP_EPROTO when it is
 * not a valid answer to that task (the transport then kills w and reports
 * it lost with MP__LOST_PROTO). */
int mp__core_result(mp_pool *p, int w, uint64_t id, const void *payload,
                    size_t len);
void mp__core_lost(mp_pool *p, int w, const mp__loss *loss);
/* The whole of task id, the oldest worker w holds, failed in the worker
 * before it ran (MP_ENOFUNC: its function cannot be resolved there): every
 * item fails with code, detail. Returns 0, or MP_EPROTO as mp__core_result. */
int mp__core_failed(mp_pool *p, int w, uint64_t id, int code, int detail);

#endif /* MPOOL_POOL_INTERNAL_H */
