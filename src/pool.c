/* pool.c: the parent's side of a pool: workers, scheduling, results. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
  WINDOW = 2,                   /* chunks in flight per worker */
  CHUNK_BYTES = 256 * 1024,     /* bound on a map chunk's input or output */
  ITER_CHUNK_BYTES = 64 * 1024, /* tighter bound for iterators: flat memory */
  PIPE_BYTES = 1024 * 1024,     /* pipe capacity asked of the OS */
  RX_MIN = 64 * 1024,
  SPLICE_MIN = 64 * 1024,       /* input bodies spliced, not copied */
  INIT_FAILURES_MAX = 3,        /* workers in a row lost in the initializer */
  DEEP_WINDOW = 32,             /* in flight per worker, for tiny chunks */
  CHUNK_DEATHS_MAX = 3,         /* workers lost on one chunk, no item blamed */
  SMALL_CHUNK = 4,              /* items: what counts as a tiny chunk */
};
#define MAX_ELEM ((size_t)1 << 30)
#define DEFAULT_MAX_RESULT ((size_t)256 << 20)
#define MAX_RESULT_CAP (((size_t)2 << 30) - 4096)

enum { JOB_MAP, JOB_APPLY };
enum { SINK_ARRAY, SINK_ORDERED, SINK_UNORDERED };

typedef struct chunk chunk;
typedef struct block block;

/* A job: one map, imap or apply. Doubles as the mp_result handle. */
struct mp_result {
  int kind, sink;
  int blocking;   /* a map whose caller waits inside mp_pool_map */
  int refs;       /* the caller's handle + the pool while incomplete */
  mp_pool *pool;  /* NULL once the pool is gone */
  struct mp_result *prev, *next; /* the pool's list of incomplete jobs */
  int pending;    /* in the pool's queue of jobs with items to hand out */
  int complete;   /* every item has an outcome */
  int detached;   /* the handle was freed: drop results */
  int cb_queued;
  struct mp_result *cb_next;
  int prog_queued; /* a progress report waits to be made */
  struct mp_result *prog_next;
  size_t inflight; /* chunks alive: with workers or awaiting a retry */

  /* map */
  mp_map_fn mfn;
  const char *in;
  char *out;
  size_t n, in_size, out_size, chunksize;
  size_t next_item;  /* next index to hand out */
  size_t done;       /* items with an outcome */
  mp_status *status;
  size_t first_fail_idx;
  mp_status first_fail; /* the lowest-indexed failure; code 0: none */
  mp_progress_fn progress;
  void *progress_arg;

  /* iterators: result blocks waiting for mp_iter_next */
  block *blocks, *blocks_tail;
  size_t window;     /* items handed out and not yet returned, at most */
  size_t returned;   /* items returned by mp_iter_next */
  size_t next_ordered;
  /* Items from tail_from on, never handed out, all fail alike (terminate,
   * out of memory): their outcomes are made up as they are asked for, so
   * failing a million items costs no memory. */
  int has_tail;
  size_t tail_from, tail_next;
  mp_status tail_st;

  /* apply */
  mp_apply_fn afn;
  char *arg;
  size_t arg_len;
  char *res;
  size_t res_len;

  mp_result_cb cb, ecb;
  void *cb_arg;
};
typedef struct mp_result job;

struct mp_iter {
  job *j;
};

struct block {
  block *next;
  size_t start, count, taken;
  mp_status *st;
  char *outs;
};

struct chunk {
  chunk *next;
  job *j;
  uint64_t id;
  size_t start;
  uint32_t count;
  int deaths; /* workers lost running it with no item to blame */
  char *copy; /* its input, owned: its job was freed while it was half sent */
};

typedef struct worker {
  pid_t pid;       /* 0: no process in this slot */
  int pidfd;       /* signals go through it (-1: none, see mp__child_signal) */
  int64_t born_ns; /* when forked: its initializer's deadline counts from it */
  int task_fd;     /* write end, non-blocking */
  int task_rd;     /* the parent's copy of the read end: see pool_spawn */
  int res_fd;      /* read end, non-blocking */
  chunk *q, *q_tail;  /* assigned, in the order the worker runs them */
  chunk *tx;       /* first chunk not yet fully written */
  int nq;
  int tasks_sent;
  int64_t tx_off;  /* bytes of tx already written */
  mp__frame_hdr tx_hdr;
  union {
    mp__map_task map;
    mp__apply_task apply;
  } tx_meta;
  char *rbuf;
  size_t rcap, rlen;
  int kill_code;       /* why we killed it: MP_ETIMEDOUT, MP_EPROTO,
                        * MP_ECLOSED (terminate); 0: it died by itself */
  uint64_t kill_task;
  uint32_t kill_item;
  int kill_init;       /* MP_ETIMEDOUT in its initializer */
  int dead;            /* EOF seen or killed: to be reaped */
} worker;

struct mp_pool {
  int nproc;
  worker *w;
  mp__slot *slots;
  size_t slots_len;
  mp_pool_opts opts;
  size_t max_res;
  int closed, terminated;
  int init_failures; /* workers in a row lost in the initializer */
  mp_status init_fail; /* how the last one was lost */
  uint64_t next_id;
  unsigned spawned;
  job *jobs;            /* incomplete jobs, oldest first */
  job *jobs_tail;
  chunk *retry;         /* chunks taken back from dead workers */
  job *cb_head, *cb_tail;
  job *prog_head, *prog_tail; /* jobs with a progress report to make */
  int in_callbacks;
  struct pollfd *pfd;      /* the poll set: 2 per worker */
  int *pfd_map;            /* what each entry is: see pool_step */
};

/* ---------------------------------------------------------------------- */
/* jobs                                                                   */
/* ---------------------------------------------------------------------- */

static void job_unref(job *j) {
  if (--j->refs > 0)
    return;
  for (block *b = j->blocks; b;) {
    block *n = b->next;
    free(b);
    b = n;
  }
  free(j->arg);
  free(j->res);
  free(j);
}

static void job_link(mp_pool *p, job *j) {
  j->pool = p;
  j->refs++;
  j->prev = p->jobs_tail;
  if (p->jobs_tail)
    p->jobs_tail->next = j;
  else
    p->jobs = j;
  p->jobs_tail = j;
  j->pending = j->kind == JOB_APPLY || j->n > 0;
}

static void job_unlink(mp_pool *p, job *j) {
  if (j->prev)
    j->prev->next = j->next;
  else
    p->jobs = j->next;
  if (j->next)
    j->next->prev = j->prev;
  else
    p->jobs_tail = j->prev;
  j->prev = j->next = NULL;
}

/* The job may be complete: if so, leave the pool's list and queue its
 * callback. */
static void job_check_done(job *j) {
  mp_pool *p = j->pool;
  if (j->complete || !p)
    return;
  size_t total = j->kind == JOB_APPLY ? 1 : j->n;
  int finished = j->done == total || (j->detached && j->next_item >= total);
  if (!finished || j->inflight)
    return;
  j->complete = 1;
  j->pending = 0;
  j->pool = NULL;
  job_unlink(p, j);
  if (!j->detached && (j->cb || j->ecb)) {
    j->cb_queued = 1;
    j->cb_next = NULL;
    if (p->cb_tail)
      p->cb_tail->cb_next = j;
    else
      p->cb_head = j;
    p->cb_tail = j;
    return; /* the queue holds the pool's reference until it runs */
  }
  job_unref(j);
}

static void job_note_fail(job *j, size_t idx, int code, int detail) {
  if (!j->first_fail.code || idx < j->first_fail_idx) {
    j->first_fail_idx = idx;
    j->first_fail = (mp_status){code, detail};
  }
}

static block *block_new(job *j, size_t start, size_t count) {
  size_t sz = sizeof(block) + count * sizeof(mp_status) + count * j->out_size;
  block *b = malloc(sz);
  if (!b)
    return NULL;
  b->next = NULL;
  b->start = start;
  b->count = count;
  b->taken = 0;
  b->st = (mp_status *)(void *)(b + 1);
  b->outs = (char *)(b->st + count);
  if (j->blocks_tail)
    j->blocks_tail->next = b;
  else
    j->blocks = b;
  j->blocks_tail = b;
  return b;
}

static void job_deliver(job *j, size_t start, size_t count,
                        const char *codes, const char *outs, int code,
                        int detail);

/* Items never handed out, [next_item, n), fail with code/detail: for an
 * iterator as a tail made up on demand, for a map into its arrays. */
static void job_fail_rest(job *j, int code, int detail) {
  if (j->next_item >= j->n)
    return;
  size_t from = j->next_item, count = j->n - from;
  j->next_item = j->n;
  j->pending = 0;
  if (j->sink == SINK_ARRAY || j->detached) {
    job_deliver(j, from, count, NULL, NULL, code, detail);
    return;
  }
  j->has_tail = 1;
  j->tail_from = j->tail_next = from;
  j->tail_st = (mp_status){code, detail};
  job_note_fail(j, from, code, detail);
  j->done += count;
}

/* Count items done. The progress callback is not called from here, in the
 * middle of reading a frame or burying a worker, but queued for the end of
 * the round, when the pool's state is whole and the callback may call the
 * library (even terminate). One report per round carries the latest count. */
static void job_progress(job *j, size_t count) {
  j->done += count;
  mp_pool *p = j->pool;
  if (!j->progress || j->detached || j->prog_queued || !p)
    return;
  j->prog_queued = 1;
  j->prog_next = NULL;
  j->refs++;
  if (p->prog_tail)
    p->prog_tail->prog_next = j;
  else
    p->prog_head = j;
  p->prog_tail = j;
}

/* Outcomes for items [start, start + count) of a map job: codes holds the
 * task functions' int32 returns, unaligned (NULL: all fail with code and
 * detail), outs their outputs. */
static void job_deliver(job *j, size_t start, size_t count,
                        const char *codes, const char *outs, int code,
                        int detail) {
  if (j->detached)
    return;
  mp_status *st = j->status ? j->status + start : NULL;
  char *dst = j->out ? j->out + start * j->out_size : NULL;
  if (j->sink != SINK_ARRAY) {
    block *b = block_new(j, start, count);
    if (!b) {
      /* Out of memory: these items are lost (each is reported as -ENOMEM
       * when reached) and no more input goes out. */
      j->done += count;
      job_fail_rest(j, -ENOMEM, 0);
      return;
    }
    st = b->st;
    dst = b->outs;
  }
  if (dst && outs)
    memcpy(dst, outs, count * j->out_size);
  for (size_t i = 0; i < count && (codes || code || st); i++) {
    int c = code, d = detail;
    if (codes) {
      int32_t rc;
      memcpy(&rc, codes + i * sizeof rc, sizeof rc);
      c = rc ? MP_ETASK : 0;
      d = rc;
    }
    if (st) {
      st[i].code = c;
      st[i].detail = d;
    }
    if (c)
      job_note_fail(j, start + i, c, d);
  }
  job_progress(j, count);
}

static void apply_deliver(job *j, int code, int detail, const char *data,
                          size_t len) {
  if (code == 0 && len && !j->detached) {
    j->res = malloc(len);
    if (!j->res) {
      code = -ENOMEM;
    } else {
      memcpy(j->res, data, len);
      j->res_len = len;
    }
  }
  if (code)
    job_note_fail(j, 0, code, detail);
  j->done = 1;
}

/* Fail the items [start, start + count) of chunk c with code, detail. */
static void chunk_fail_range(chunk *c, size_t start, size_t count, int code,
                             int detail) {
  job *j = c->j;
  if (count == 0)
    return;
  if (j->kind == JOB_APPLY)
    apply_deliver(j, code, detail, NULL, 0);
  else
    job_deliver(j, start, count, NULL, NULL, code, detail);
}

static void chunk_free(chunk *c) {
  job *j = c->j;
  j->inflight--;
  free(c->copy);
  free(c);
  job_check_done(j);
}

/* A chunk of job j's items [start, start + count), counted in flight until
 * chunk_free. NULL when out of memory. */
static chunk *chunk_new(job *j, size_t start, size_t count, int deaths) {
  chunk *c = malloc(sizeof *c);
  if (!c)
    return NULL;
  *c = (chunk){.j = j, .start = start, .count = (uint32_t)count,
               .deaths = deaths};
  j->inflight++;
  return c;
}

/* Put the items [start, start + count) of job j on the retry list, for
 * another worker; deaths: workers already lost on them. */
static void pool_requeue(mp_pool *p, job *j, size_t start, size_t count,
                         int deaths) {
  if (count == 0 || j->detached)
    return;
  chunk *c = chunk_new(j, start, count, deaths);
  if (!c) {
    job_deliver(j, start, count, NULL, NULL, -ENOMEM, 0);
    return;
  }
  c->next = p->retry;
  p->retry = c;
}

/* ---------------------------------------------------------------------- */
/* workers                                                                */
/* ---------------------------------------------------------------------- */

/* An empty slot: no process, no fds. */
static void worker_clear(worker *w) {
  memset(w, 0, sizeof *w);
  w->task_fd = w->task_rd = w->res_fd = w->pidfd = -1;
}

static void worker_close_fds(worker *w) {
  mp__fd_drop(&w->task_fd);
  mp__fd_drop(&w->task_rd);
  mp__fd_drop(&w->res_fd);
  mp__fd_drop(&w->pidfd);
}

static int pool_spawn(mp_pool *p, int idx) {
  worker *w = &p->w[idx];
  int tfd[2], rfd[2] = {-1, -1};
  int rc = mp__pipe_reg(tfd);
  if (rc < 0)
    return rc;
  if ((rc = mp__pipe_reg(rfd)) < 0 || (rc = mp__set_nonblock(tfd[1])) < 0 ||
      (rc = mp__set_nonblock(rfd[0])) < 0)
    goto error;
  mp__pipe_grow(tfd[1], PIPE_BYTES);
  mp__pipe_grow(rfd[0], PIPE_BYTES);

  mp__slot *slot = &p->slots[idx];
  atomic_store(&slot->task_id, 0);
  atomic_store(&slot->ready, 0);
  char name[32];
  snprintf(name, sizeof name, "PoolWorker-%u", ++p->spawned);
  int keep[2] = {tfd[0], rfd[1]};
  mp__fork_req req = {.keep = keep, .nkeep = 2, .die_with_parent = 1,
                      .name = name};
  pid_t parent = getpid();
  pid_t pid = mp__fork(&req);
  if (pid == 0) {
    mp__worker_cfg cfg = {
        .task_fd = tfd[0],
        .res_fd = rfd[1],
        .slot = slot,
        .parent = parent,
        .initializer = p->opts.initializer,
        .initarg = p->opts.initarg,
        .maxtasks = p->opts.maxtasksperchild,
        .timed = p->opts.task_timeout > 0,
        .max_res = (uint32_t)p->max_res,
        .max_task = UINT32_MAX,
    };
    mp__worker_main(&cfg);
  }
  if (pid < 0) {
    rc = pid;
    goto error;
  }
  /* The parent keeps its copy of the task pipe's read end: a pipe with a
   * reader never raises SIGPIPE, so a worker that dies while the parent
   * writes to it costs a full pipe at worst, and no signal (and no signal
   * mask juggling around every write). Death shows as EOF on results. */
  mp__fd_drop(&rfd[1]);
  worker_clear(w);
  w->pid = pid;
  w->pidfd = mp__child_pidfd(pid);
  w->born_ns = p->opts.task_timeout > 0 ? mp__now_ns() : 0;
  w->task_fd = tfd[1];
  w->task_rd = tfd[0];
  w->res_fd = rfd[0];
  return 0;

error:
  for (int i = 0; i < 2; i++) {
    mp__fd_drop(&tfd[i]);
    mp__fd_drop(&rfd[i]);
  }
  return rc;
}

/* Kill w (once): code says why, for pool_bury; task and item, the item it
 * was running when it was judged (0, 0 if none). */
static void worker_kill(worker *w, int code, uint64_t task, uint32_t item) {
  if (w->dead)
    return;
  (void)mp__child_signal(w->pid, w->pidfd, SIGKILL);
  w->kill_code = code;
  w->kill_task = task;
  w->kill_item = item;
  w->dead = 1;
}

/* What worker slot s runs now, read consistently: 1 with its task id, item
 * and start time, or 0 when it runs none or moves on as we look. */
static int slot_running(const mp__slot *s, uint64_t *task, uint32_t *item,
                        int64_t *start) {
  uint64_t t1 = atomic_load_explicit(&s->task_id, memory_order_acquire);
  uint32_t i1 = atomic_load_explicit(&s->item, memory_order_acquire);
  *start = atomic_load_explicit(&s->start_ns, memory_order_relaxed);
  uint64_t t2 = atomic_load_explicit(&s->task_id, memory_order_acquire);
  uint32_t i2 = atomic_load_explicit(&s->item, memory_order_acquire);
  if (!t1 || t1 != t2 || i1 != i2)
    return 0;
  *task = t1;
  *item = i1;
  return 1;
}

static void worker_read(mp_pool *p, int idx);

/*
 * Chunk c, at the head of its worker's queue, was running when the worker
 * sent bytes that are not a frame: one of its items wrote to the worker's
 * pipes. Only items up to the one running when the bytes were read (item,
 * or the whole chunk if the worker had left it) can have written them; the
 * items after it are sent again as they are. One suspect alone is the
 * culprit and fails with MP_EPROTO; several are each sent again alone, so
 * the culprit is found on its own and the others deliver, as around a
 * crash.
 */
static void chunk_proto_blame(mp_pool *p, const worker *w, chunk *c) {
  job *j = c->j;
  size_t last = c->count - 1;
  if (w->kill_task && w->kill_task == c->id && w->kill_item < c->count)
    last = w->kill_item;
  if (last == 0) {
    chunk_fail_range(c, c->start, 1, MP_EPROTO, 0);
  } else {
    for (size_t i = 0; i <= last; i++)
      pool_requeue(p, j, c->start + i, 1, 0);
  }
  pool_requeue(p, j, c->start + last + 1, c->count - last - 1, 0);
}

/* A worker is gone (EOF) or killed: reap it and settle what it held. */
static void pool_bury(mp_pool *p, int idx) {
  worker *w = &p->w[idx];
  mp__slot *slot = &p->slots[idx];
  /* Results it sent before it died, or before we killed it for a timeout,
   * still count. */
  if ((w->kill_code == 0 || w->kill_code == MP_ETIMEDOUT) && w->res_fd >= 0)
    worker_read(p, idx);
  /* EOF can also come from a live worker whose task closed its fds or
   * exec'd: it is useless now. A worker already dead keeps its own status;
   * one reaped by the kernel (SIGCHLD ignored) is not signalled. */
  (void)mp__child_signal(w->pid, w->pidfd, SIGKILL);
  int ws, exitcode = 0;
  pid_t r = mp__waitpid(w->pid, &ws, 0);
  if (r == w->pid)
    exitcode = mp__exitcode(ws);
  /* Judged overdue, but it ended by other means before our SIGKILL
   * landed: that is how it ended. */
  if (w->kill_code == MP_ETIMEDOUT && r == w->pid && exitcode != -SIGKILL)
    w->kill_code = w->kill_init = 0;
  if (w->kill_init) {
    p->init_failures++;
    p->init_fail = (mp_status){MP_ETIMEDOUT, 0};
  } else if (!w->kill_code) {
    if (!atomic_load_explicit(&slot->ready, memory_order_acquire)) {
      p->init_failures++;
      p->init_fail = (mp_status){MP_ECRASHED, exitcode};
    } else {
      p->init_failures = 0;
    }
  }
  worker_close_fds(w);
  uint64_t running = atomic_load_explicit(&slot->task_id, memory_order_acquire);
  uint32_t item = atomic_load_explicit(&slot->item, memory_order_relaxed);

  for (chunk *c = w->q; c;) {
    chunk *next = c->next;
    job *j = c->j;
    size_t bad = SIZE_MAX;  /* item index within the chunk that fails */
    int code = MP_ECRASHED, detail = exitcode;
    if (w->kill_code == MP_EPROTO && c == w->q) {
      chunk_proto_blame(p, w, c);
    } else {
      if (w->kill_code == MP_ETIMEDOUT && !w->kill_init &&
          c->id == w->kill_task) {
        bad = w->kill_item;
        code = MP_ETIMEDOUT;
        detail = 0;
      } else if (running && c->id == running && !w->kill_code) {
        bad = item;
      }
      if (bad < c->count) {
        chunk_fail_range(c, c->start + bad, 1, code, detail);
        pool_requeue(p, j, c->start, bad, 0);
        pool_requeue(p, j, c->start + bad + 1, c->count - bad - 1, 0);
      } else if (c == w->q && !w->kill_code &&
                 c->deaths + 1 >= CHUNK_DEATHS_MAX) {
        /* Its workers keep dying between its items (in the flush after
         * them, say): resending it would fork forever. */
        chunk_fail_range(c, c->start, c->count, MP_ECRASHED, exitcode);
      } else {
        pool_requeue(p, j, c->start, c->count,
                     c == w->q && !w->kill_code ? c->deaths + 1 : c->deaths);
      }
    }
    chunk_free(c);
    c = next;
  }
  free(w->rbuf);
  worker_clear(w);
}

/* ---------------------------------------------------------------------- */
/* scheduling                                                             */
/* ---------------------------------------------------------------------- */

static int job_has_work(const job *j) {
  if (!j->pending)
    return 0;
  if (j->kind == JOB_APPLY)
    return 1;
  if (j->next_item >= j->n)
    return 0;
  /* An iterator hands out input only as its items are taken, unless the
   * pool is closed: join must then be able to finish it unconsumed. */
  if (j->sink != SINK_ARRAY && !j->pool->closed &&
      j->next_item - j->returned >= j->window)
    return 0;
  return 1;
}

/* The next chunk to send: retries first, then jobs in submission order. */
static chunk *pool_next_chunk(mp_pool *p) {
  while (p->retry) {
    chunk *c = p->retry;
    p->retry = c->next;
    if (!c->j->detached)
      return c;
    chunk_free(c);
  }
  for (job *j = p->jobs; j; j = j->next) {
    if (!job_has_work(j))
      continue;
    size_t total = j->kind == JOB_APPLY ? 1 : j->n;
    size_t cnt = j->kind == JOB_APPLY ? 1 : j->chunksize;
    if (cnt > total - j->next_item)
      cnt = total - j->next_item;
    if (j->sink != SINK_ARRAY && !p->closed &&
        cnt > j->window - (j->next_item - j->returned))
      cnt = j->window - (j->next_item - j->returned);
    chunk *c = chunk_new(j, j->next_item, cnt, 0);
    if (!c)
      return NULL;
    j->next_item += cnt;
    if (j->next_item >= total)
      j->pending = 0;
    return c;
  }
  return NULL;
}

static int pool_has_work(const mp_pool *p) {
  if (p->retry)
    return 1;
  for (const job *j = p->jobs; j; j = j->next)
    if (job_has_work(j))
      return 1;
  return 0;
}

static void tx_prepare(mp_pool *p, worker *w) {
  chunk *c = w->tx;
  job *j = c->j;
  c->id = ++p->next_id;
  uint32_t len;
  if (j->kind == JOB_MAP) {
    w->tx_meta.map = (mp__map_task){
        .fn = (uint64_t)(uintptr_t)j->mfn,
        .in_size = (uint32_t)j->in_size,
        .out_size = (uint32_t)j->out_size,
        .count = c->count,
    };
    len = (uint32_t)(sizeof(mp__map_task) + c->count * j->in_size);
    mp__frame_init(&w->tx_hdr, MP__FR_MAP, c->id, len);
  } else {
    w->tx_meta.apply = (mp__apply_task){.fn = (uint64_t)(uintptr_t)j->afn};
    len = (uint32_t)(sizeof(mp__apply_task) + j->arg_len);
    mp__frame_init(&w->tx_hdr, MP__FR_APPLY, c->id, len);
  }
  w->tx_off = 0;
}

/* Write as much of w's pending chunks as the pipe takes. */
static void worker_write(mp_pool *p, worker *w) {
  while (w->tx && !w->dead) {
    chunk *c = w->tx;
    job *j = c->j;
    static const char zeros[MP__ALIGN];
    struct iovec iov[4];
    size_t meta = j->kind == JOB_MAP ? sizeof(mp__map_task)
                                     : sizeof(mp__apply_task);
    iov[0] = (struct iovec){&w->tx_hdr, sizeof w->tx_hdr};
    iov[1] = (struct iovec){&w->tx_meta, meta};
    if (j->kind == JOB_MAP)
      iov[2] = (struct iovec){c->copy ? c->copy
                                      : (void *)(j->in + c->start * j->in_size),
                              c->count * j->in_size};
    else
      iov[2] = (struct iovec){j->arg, j->arg_len};
    iov[3] = (struct iovec){(void *)zeros,
                            mp__padded(w->tx_hdr.len) - w->tx_hdr.len};
    /* Skip what is already written. */
    size_t off = (size_t)w->tx_off;
    int first = 0;
    while (first < 4 && off >= iov[first].iov_len) {
      off -= iov[first].iov_len;
      first++;
    }
    if (first == 4) {
      w->tx = c->next;
      if (w->tx)
        tx_prepare(p, w);
      continue;
    }
    iov[first].iov_base = (char *)iov[first].iov_base + off;
    iov[first].iov_len -= off;
    ssize_t n;
    if (j->blocking && iov[2].iov_len >= SPLICE_MIN && first <= 2) {
      /* Large input of a blocking map: the pipe takes references to the
       * caller's pages instead of a copy. Safe because the caller waits in
       * mp_pool_map until every chunk's result is in, so every such page
       * has been read (or its pipe closed with its dead worker) before the
       * caller can touch the array again. Headers go first, copied. */
      if (first < 2)
        n = mp__writev_some(w->task_fd, iov + first, 2 - first);
      else
        n = mp__vmsplice_some(w->task_fd, &iov[2], 1);
    } else {
      n = mp__writev_some(w->task_fd, iov + first, 4 - first);
    }
    if (n == -EAGAIN)
      return;
    if (n < 0) {
      /* Cannot happen on a pipe we also read; its EOF on results will
       * settle the worker's chunks. */
      w->tx = NULL;
      return;
    }
    w->tx_off += n;
  }
}

static int worker_can_take(const mp_pool *p, const worker *w, int level) {
  return w->pid && !w->dead && w->task_fd >= 0 && w->nq < level &&
         (!p->opts.maxtasksperchild ||
          w->tasks_sent < p->opts.maxtasksperchild);
}

static int worker_assign(mp_pool *p, worker *w) {
  chunk *c = pool_next_chunk(p);
  if (!c)
    return 0;
  c->next = NULL;
  if (w->q_tail)
    w->q_tail->next = c;
  else
    w->q = c;
  w->q_tail = c;
  w->nq++;
  w->tasks_sent++;
  if (!w->tx) {
    w->tx = c;
    tx_prepare(p, w);
  }
  return 1;
}

/* Whether the chunk pool_next_chunk would hand out next is a map chunk of
 * at most SMALL_CHUNK items, from a map with plenty left: near its end the
 * shallow window is used again, so that no worker holds a backlog of items
 * while another sits idle. */
static int pool_next_is_small(const mp_pool *p) {
  if (p->retry)
    return 0;
  for (const job *j = p->jobs; j; j = j->next)
    if (job_has_work(j))
      return j->kind == JOB_MAP && j->chunksize <= SMALL_CHUNK &&
             (j->n - j->next_item) / j->chunksize >
                 (size_t)p->nproc * DEEP_WINDOW;
  return 0;
}

/*
 * Hand chunks to workers, then write. Idle workers are served first, one
 * chunk each, so no task waits behind another while a worker sits idle;
 * only then does each worker get a second chunk, which keeps it busy while
 * the parent collects its previous result. Tiny map chunks (chunksize 1,
 * say) go deeper, up to DEEP_WINDOW per worker: each costs a round trip,
 * and a deep queue lets the worker run them back to back while the parent
 * collects their results in batches. A slow item can hold up to
 * DEEP_WINDOW - 1 others queued behind it on its worker; the map's last
 * chunks go out shallow, so its end is balanced.
 */
static void pool_feed(mp_pool *p) {
  for (int level = 1; level <= DEEP_WINDOW; level++) {
    int gave = 1;
    while (gave) {
      gave = 0;
      for (int i = 0; i < p->nproc; i++) {
        if (level > WINDOW && !pool_next_is_small(p))
          break;
        if (worker_can_take(p, &p->w[i], level))
          gave |= worker_assign(p, &p->w[i]);
      }
    }
    if (!pool_has_work(p) || (level >= WINDOW && !pool_next_is_small(p)))
      break;
  }
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (w->tx && !w->dead && w->task_fd >= 0)
      worker_write(p, w);
  }
}

/* ---------------------------------------------------------------------- */
/* results                                                                */
/* ---------------------------------------------------------------------- */

/* A header from worker w must answer the task at the head of its queue,
 * already sent, with the right type and (for a map) the exact length. This
 * is checked as soon as the header is in, so a worker that sends a bogus
 * header and stops is caught at once. Returns 0 or MP_EPROTO. */
static int worker_check_hdr(const worker *w, const mp__frame_hdr *h) {
  const chunk *c = w->q;
  if (!c || c == w->tx || h->id != c->id)
    return MP_EPROTO;
  int type = (int)(h->magic_type & ~MP__FRAME_MAGIC_MASK);
  if (c->j->kind == JOB_MAP)
    return type == MP__FR_MAP_RES &&
                   mp__map_res_check(h->len, c->count,
                                     (uint32_t)c->j->out_size) >= 0
               ? 0
               : MP_EPROTO;
  return type == MP__FR_APPLY_RES ? 0 : MP_EPROTO;
}

/* One complete frame from worker w, its header checked. Returns 0 or
 * MP_EPROTO. */
static int worker_frame(mp_pool *p, worker *w, const mp__frame_hdr *h,
                        const char *payload) {
  chunk *c = w->q;
  job *j = c->j;
  if (j->kind == JOB_MAP) {
    int with_codes = mp__map_res_check(h->len, c->count,
                                       (uint32_t)j->out_size) == 1;
    job_deliver(j, c->start, c->count,
                with_codes ? payload + (size_t)c->count * j->out_size : NULL,
                payload, 0, 0);
  } else {
    if (mp__apply_res_check(payload, h->len, (uint32_t)p->max_res) < 0)
      return MP_EPROTO;
    mp__apply_res res;
    memcpy(&res, payload, sizeof res);
    apply_deliver(j, res.code, res.detail, payload + sizeof res,
                  h->len - sizeof res);
  }
  w->q = c->next;
  if (!w->q)
    w->q_tail = NULL;
  w->nq--;
  chunk_free(c);
  return 0;
}

/* Largest frame a worker may send for the chunk at the head of its queue. */
static uint32_t worker_rx_max(const mp_pool *p, const worker *w) {
  const chunk *c = w->q;
  if (!c)
    return 0;
  if (c->j->kind == JOB_APPLY)
    return (uint32_t)(sizeof(mp__apply_res) + p->max_res);
  return (uint32_t)((size_t)c->count * (sizeof(int32_t) + c->j->out_size));
}

/* Dispatch every complete frame buffered from w. Returns 0, or -1 when the
 * worker broke the protocol (it is then killed). */
static int worker_parse(mp_pool *p, worker *w) {
  size_t off = 0;
  int rc = 0;
  for (;;) {
    mp__frame_hdr h;
    size_t need;
    int r = mp__frame_next(w->rbuf + off, w->rlen - off, worker_rx_max(p, w),
                           &h, &need);
    if (r < 0 || (need && worker_check_hdr(w, &h) < 0)) {
      rc = -1;
      break;
    }
    if (r == 0) {
      if (need > w->rcap) {
        /* Grow to the validated size, keeping the unparsed bytes. */
        memmove(w->rbuf, w->rbuf + off, w->rlen - off);
        w->rlen -= off;
        off = 0;
        char *nb = realloc(w->rbuf, need);
        if (!nb) {
          rc = -1;
          break;
        }
        w->rbuf = nb;
        w->rcap = need;
      }
      break;
    }
    if (worker_frame(p, w, &h, w->rbuf + off + sizeof h) < 0) {
      rc = -1;
      break;
    }
    off += need;
  }
  if (off) {
    memmove(w->rbuf, w->rbuf + off, w->rlen - off);
    w->rlen -= off;
  }
  if (rc < 0) {
    /* The item running now, or an earlier one of its chunk, wrote them. */
    uint64_t task = 0;
    uint32_t item = 0;
    int64_t start;
    (void)slot_running(&p->slots[w - p->w], &task, &item, &start);
    worker_kill(w, MP_EPROTO, task, item);
  }
  return rc;
}

/* Drain worker w's result pipe. Marks it dead on EOF or a bad frame. */
static void worker_read(mp_pool *p, int idx) {
  worker *w = &p->w[idx];
  for (;;) {
    if (w->rcap - w->rlen < RX_MIN / 4) {
      size_t cap = w->rcap ? w->rcap * 2 : RX_MIN;
      char *nb = realloc(w->rbuf, cap);
      if (!nb) {
        worker_kill(w, MP_EPROTO, 0, 0);
        return;
      }
      w->rbuf = nb;
      w->rcap = cap;
    }
    size_t room = w->rcap - w->rlen;
    ssize_t n = mp__read_some(w->res_fd, w->rbuf + w->rlen, room);
    if (n == -EAGAIN)
      return;
    if (n <= 0) {
      /* EOF: the worker exited or died. A partial frame counts as nothing:
       * its chunk is settled by pool_bury. */
      w->dead = 1;
      return;
    }
    w->rlen += (size_t)n;
    if (worker_parse(p, w) < 0)
      return;
    if (w->rlen == 0 && w->rcap > 4 * (size_t)PIPE_BYTES) {
      /* A big result went through: do not keep its buffer. */
      free(w->rbuf);
      w->rbuf = NULL;
      w->rcap = 0;
    }
    if ((size_t)n < room)
      return; /* drained for now; poll says when there is more */
  }
}

/* ---------------------------------------------------------------------- */
/* the loop                                                               */
/* ---------------------------------------------------------------------- */

/* Every item not with a worker fails with code and detail: the retry list
 * and the items no job has handed out yet. */
static void pool_fail_queued(mp_pool *p, int code, int detail) {
  while (p->retry) {
    chunk *c = p->retry;
    p->retry = c->next;
    chunk_fail_range(c, c->start, c->count, code, detail);
    chunk_free(c);
  }
  job *next;
  for (job *j = p->jobs; j; j = next) {
    next = j->next;
    if (j->kind == JOB_APPLY) {
      if (!j->next_item)
        apply_deliver(j, code, detail, NULL, 0);
    } else {
      job_fail_rest(j, code, detail);
    }
    j->pending = 0;
    j->next_item = j->kind == JOB_APPLY ? 1 : j->n;
    job_check_done(j);
  }
}

/* Kill every worker now, reap it, and fail all outstanding work with code
 * and detail. The pool takes no work after this. */
static void pool_shutdown(mp_pool *p, int code, int detail) {
  p->closed = 1;
  p->terminated = 1;
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (w->pid && !w->dead)
      worker_kill(w, MP_ECLOSED, 0, 0);
  }
  /* Reap; whatever they held comes back to the retry list, then fails. */
  for (int i = 0; i < p->nproc; i++)
    if (p->w[i].pid)
      pool_bury(p, i);
  pool_fail_queued(p, code, detail);
}

static int pool_live_workers(const mp_pool *p) {
  int n = 0;
  for (int i = 0; i < p->nproc; i++)
    n += p->w[i].pid != 0;
  return n;
}

/*
 * When no more work can come, idle workers are told to stop: a STOP frame
 * (a child the application forked without exec may hold the task pipe open,
 * so EOF alone might never come), then the pipe is closed. Only once a
 * worker's queue is empty: then its pipe is empty and the frame fits.
 */
static void pool_retire_idle(mp_pool *p) {
  if (!p->closed || pool_has_work(p))
    return;
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (w->pid && !w->dead && !w->q && w->task_fd >= 0) {
      mp__frame_hdr stop;
      mp__frame_init(&stop, MP__FR_STOP, 0, 0);
      struct iovec iov = {&stop, sizeof stop};
      (void)mp__writev_some(w->task_fd, &iov, 1);
      mp__fd_drop(&w->task_fd);
    }
  }
}

/* The first job with a progress report to make, off its queue, or NULL.
 * The queue's reference is the caller's to drop. */
static job *pool_pop_progress(mp_pool *p) {
  job *j = p->prog_head;
  if (j) {
    p->prog_head = j->prog_next;
    if (!p->prog_head)
      p->prog_tail = NULL;
    j->prog_queued = 0;
  }
  return j;
}

/* The same for the queue of completion callbacks. */
static job *pool_pop_callback(mp_pool *p) {
  job *j = p->cb_head;
  if (j) {
    p->cb_head = j->cb_next;
    if (!p->cb_head)
      p->cb_tail = NULL;
    j->cb_queued = 0;
  }
  return j;
}

/* Progress reports, then completion callbacks, at the end of a round. A
 * nested round (a callback calling the library) only queues more. */
static void pool_run_callbacks(mp_pool *p) {
  if (p->in_callbacks)
    return;
  p->in_callbacks = 1;
  for (;;) {
    job *j;
    while ((j = pool_pop_progress(p))) {
      if (!j->detached)
        j->progress(j->done, j->n, j->progress_arg);
      job_unref(j);
    }
    if (!(j = pool_pop_callback(p)))
      break;
    if (!j->detached) {
      mp_result_cb cb = j->first_fail.code ? j->ecb : j->cb;
      if (cb)
        cb(j, j->cb_arg);
    }
    job_unref(j);
  }
  p->in_callbacks = 0;
}

/* Drop queued reports and callbacks unrun (the pool is going away). */
static void pool_drop_callbacks(mp_pool *p) {
  job *j;
  while ((j = pool_pop_progress(p)))
    job_unref(j);
  while ((j = pool_pop_callback(p)))
    job_unref(j);
}

/* Deadline of the earliest running item or initializer, for task_timeout;
 * with kill_now, workers past theirs are killed. Only after their result
 * pipes have been read: a worker that died on its own but whose EOF is not
 * read yet must not be taken for one that overran. */
static int64_t pool_check_timeouts(mp_pool *p, int kill_now) {
  int64_t soonest = INT64_MAX;
  if (p->opts.task_timeout <= 0)
    return soonest;
  int64_t limit = (int64_t)(p->opts.task_timeout * 1e9);
  int64_t now = mp__now_ns();
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (!w->pid || w->dead)
      continue;
    mp__slot *s = &p->slots[i];
    uint64_t task;
    uint32_t item;
    int64_t due;
    if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
      /* An initializer is bounded as a task is. */
      due = w->born_ns + limit;
      if (due <= now && kill_now) {
        worker_kill(w, MP_ETIMEDOUT, 0, 0);
        w->kill_init = 1;
        continue;
      }
    } else if (!w->q) {
      continue;
    } else if (slot_running(s, &task, &item, &due)) {
      due += limit;
      if (due <= now && kill_now) {
        worker_kill(w, MP_ETIMEDOUT, task, item);
        continue;
      }
    } else {
      /* A worker that holds work but shows no item yet (it is reading its
       * task, or moving on) starts one at the earliest now: look again by
       * now + limit at the latest, since nothing else would wake us. */
      due = now + limit;
    }
    if (due < soonest)
      soonest = due;
  }
  return soonest;
}

/*
 * One round: feed, wait for I/O until deadline (or sooner), read results,
 * settle dead workers, replace them. Returns 0 or -errno (poll failed).
 */
static int pool_step(mp_pool *p, int64_t deadline) {
  pool_feed(p);
  pool_retire_idle(p);

  /*
   * The wait: each worker's result pipe (EOF there is how a worker's death
   * is seen: see mp__worker_main for children its tasks fork) and its task
   * pipe while a task is being written. No timer unless a deadline is due:
   * the round trip of a tiny task is mostly this wait, and every fd or
   * timer added to it shows there.
   */
  struct pollfd *pfd = p->pfd;
  int *map = p->pfd_map;
  unsigned n = 0;
  int any_dead = 0;
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (!w->pid)
      continue;
    if (w->dead) {
      any_dead = 1;
      continue;
    }
    pfd[n] = (struct pollfd){.fd = w->res_fd, .events = POLLIN};
    map[n++] = 2 * i;
    if (w->tx && w->task_fd >= 0) {
      pfd[n] = (struct pollfd){.fd = w->task_fd, .events = POLLOUT};
      map[n++] = 2 * i + 1;
    }
  }
  int64_t due = pool_check_timeouts(p, 0);
  if (any_dead || ((p->cb_head || p->prog_head) && !p->in_callbacks))
    deadline = 0;
  else if (due < deadline)
    deadline = due;
  int rc = n ? mp__poll(pfd, n, deadline) : 0;
  for (unsigned k = 0; rc > 0 && k < n; k++) {
    if (!pfd[k].revents)
      continue;
    worker *w = &p->w[map[k] / 2];
    if (w->dead)
      continue;
    if (map[k] % 2 == 0)
      worker_read(p, map[k] / 2);
    else
      worker_write(p, w);
  }
  pool_check_timeouts(p, 1);

  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    if (!w->pid || !w->dead)
      continue;
    pool_bury(p, i);
    if (p->init_failures >= INIT_FAILURES_MAX && !p->terminated) {
      /* The initializer kills every worker: replacing them would loop
       * forever (as Python's Pool does). The pool is broken. */
      pool_shutdown(p, p->init_fail.code, p->init_fail.detail);
      break;
    }
    if (!p->terminated && (!p->closed || pool_has_work(p)))
      (void)pool_spawn(p, i); /* on failure: tried again below */
  }
  /* A slot left empty by a failed fork while work waits: try again. If no
   * worker at all can be had, queued work fails with fork's error rather
   * than waiting forever. */
  if (!p->terminated && pool_has_work(p)) {
    int err = 0;
    for (int i = 0; i < p->nproc; i++)
      if (!p->w[i].pid) {
        int r = pool_spawn(p, i);
        if (r < 0)
          err = r;
      }
    if (err && !pool_live_workers(p))
      pool_fail_queued(p, err, 0);
  }
  pool_run_callbacks(p);
  return rc < 0 ? rc : 0;
}

/* Drive the pool until done(arg) or the deadline. At least one round runs,
 * without blocking when the deadline has passed, so a timeout of 0 still
 * collects what has arrived. Returns 0 or MP_ETIMEDOUT. */
static int pool_drive(mp_pool *p, int (*done)(void *), void *arg,
                      int64_t deadline) {
  while (!done(arg)) {
    if (!pool_live_workers(p) && !pool_has_work(p) && p->jobs == NULL)
      break;
    pool_step(p, deadline);
    if (!done(arg) && mp__now_ns() >= deadline)
      return MP_ETIMEDOUT;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* public: lifetime                                                       */
/* ---------------------------------------------------------------------- */

int mp_pool_create(mp_pool **out, const mp_pool_opts *opts) {
  mp_pool_opts o = opts ? *opts : (mp_pool_opts){0};
  if (!out || o.processes < 0 || o.maxtasksperchild < 0 ||
      !(o.task_timeout >= 0) || o.max_result_bytes > MAX_RESULT_CAP)
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
  p->w = calloc((size_t)p->nproc, sizeof *p->w);
  p->pfd = calloc(2 * (size_t)p->nproc, sizeof *p->pfd);
  p->pfd_map = calloc(2 * (size_t)p->nproc, sizeof *p->pfd_map);
  p->slots_len = (size_t)p->nproc * sizeof(mp__slot);
  void *m = NULL;
  int err = mp__ipc_map(&m, p->slots_len);
  if (!p->w || !p->pfd || !p->pfd_map || err < 0) {
    if (!err)
      err = -ENOMEM;
    mp__ipc_unmap(m, p->slots_len);
    free(p->w);
    free(p->pfd);
    free(p->pfd_map);
    free(p);
    return err;
  }

  p->slots = m;
  for (int i = 0; i < p->nproc; i++)
    worker_clear(&p->w[i]);
  for (int i = 0; i < p->nproc; i++) {
    int rc = pool_spawn(p, i);
    if (rc < 0) {
      mp_pool_free(p);
      return rc;
    }
  }
  *out = p;
  return 0;
}

int mp_pool_processes(const mp_pool *pool) { return pool ? pool->nproc : 0; }

int mp_pool_worker_pids(const mp_pool *pool, pid_t *pids, int n) {
  if (!pool || (!pids && n > 0) || n < 0)
    return MP_EINVAL;
  int k = 0;
  for (int i = 0; i < pool->nproc && k < n; i++)
    pids[k++] = pool->w[i].pid;
  return k;
}

int mp_pool_close(mp_pool *pool) {
  if (!pool)
    return MP_EINVAL;
  if (pool->terminated)
    return MP_ESTATE;
  pool->closed = 1;
  pool_step(pool, 0);
  return 0;
}

int mp_pool_terminate(mp_pool *p) {
  if (!p)
    return MP_EINVAL;
  pool_shutdown(p, MP_ECLOSED, 0);
  pool_run_callbacks(p);
  return 0;
}

static int pool_idle(void *arg) {
  mp_pool *p = arg;
  return !p->jobs && !pool_live_workers(p);
}

int mp_pool_join(mp_pool *p) {
  if (!p)
    return MP_EINVAL;
  if (!p->closed)
    return MP_ESTATE;
  pool_drive(p, pool_idle, p, INT64_MAX);
  return 0;
}

void mp_pool_free(mp_pool *p) {
  if (!p)
    return;
  mp_pool_terminate(p);
  /* Reports and callbacks still queued (free called from a callback, which
   * the header forbids, or terminate's ran): their references go. */
  pool_drop_callbacks(p);
  mp__ipc_unmap(p->slots, p->slots_len);
  free(p->w);
  free(p->pfd);
  free(p->pfd_map);
  free(p);
}

/* ---------------------------------------------------------------------- */
/* public: map and apply                                                  */
/* ---------------------------------------------------------------------- */

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

static int map_args_ok(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                       size_t in_size, size_t out_size) {
  if (!p || !f || in_size == 0 || out_size == 0 || in_size > MAX_ELEM ||
      out_size > MAX_ELEM || (n && !in) || n > SIZE_MAX / 2 / in_size ||
      n > SIZE_MAX / 2 / out_size)
    return MP_EINVAL;
  if (p->closed)
    return MP_ECLOSED;
  return 0;
}

static job *job_new_map(mp_pool *p, mp_map_fn f, const void *in, size_t n,
                        size_t in_size, size_t out_size,
                        const mp_map_opts *mo, int sink) {
  job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->refs = 1;
  j->kind = JOB_MAP;
  j->sink = sink;
  j->mfn = f;
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
  int deep = j->chunksize <= SMALL_CHUNK ? DEEP_WINDOW : WINDOW;
  j->window = j->chunksize * (size_t)p->nproc * (size_t)(deep + 1);
  job_link(p, j);
  return j;
}

static int job_complete(void *arg) { return ((job *)arg)->complete; }

/* The outcome of a job waited for: 0 or its lowest-indexed failure (code
 * and detail into st, when given); MP_ECLOSED if it never completed. */
static int job_outcome(const job *j, mp_status *st) {
  mp_status o = j->complete ? j->first_fail : (mp_status){MP_ECLOSED, 0};
  if (st)
    *st = o;
  return o.code;
}

int mp_pool_map_async(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                      size_t in_size, void *out, size_t out_size,
                      const mp_map_async_opts *opts, mp_result **out_result) {
  int rc = map_args_ok(pool, f, in, n, in_size, out_size);
  if (rc < 0)
    return rc;
  if (!out_result || (n && !out))
    return MP_EINVAL;
  job *j = job_new_map(pool, f, in, n, in_size, out_size,
                       opts ? &opts->map : NULL, SINK_ARRAY);
  if (!j)
    return -ENOMEM;
  j->out = out;
  if (opts) {
    j->cb = opts->async.callback;
    j->ecb = opts->async.error_callback;
    j->cb_arg = opts->async.arg;
  }
  job_check_done(j); /* n == 0 */
  pool_step(pool, 0);
  *out_result = j;
  return 0;
}

int mp_pool_map(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                size_t in_size, void *out, size_t out_size,
                const mp_map_opts *opts) {
  int rc = map_args_ok(pool, f, in, n, in_size, out_size);
  if (rc < 0)
    return rc;
  if (n && !out)
    return MP_EINVAL;
  job *j = job_new_map(pool, f, in, n, in_size, out_size, opts, SINK_ARRAY);
  if (!j)
    return -ENOMEM;
  j->out = out;
  j->blocking = 1;
  job_check_done(j);
  pool_drive(pool, job_complete, j, INT64_MAX);
  rc = job_outcome(j, NULL);
  job_unref(j);
  return rc;
}

static int apply_submit(mp_pool *pool, mp_apply_fn f, const void *arg,
                        size_t len, job **out) {
  if (!pool || !f || (len && !arg) || len > MAX_RESULT_CAP)
    return MP_EINVAL;
  if (pool->closed)
    return MP_ECLOSED;
  job *j = calloc(1, sizeof *j);
  if (!j)
    return -ENOMEM;
  if (len) {
    j->arg = malloc(len);
    if (!j->arg) {
      free(j);
      return -ENOMEM;
    }
    memcpy(j->arg, arg, len);
  }
  j->refs = 1;
  j->kind = JOB_APPLY;
  j->afn = f;
  j->arg_len = len;
  job_link(pool, j);
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
  pool_drive(pool, job_complete, j, INT64_MAX);
  rc = job_outcome(j, status);
  *result = rc ? NULL : j->res;
  *result_len = rc ? 0 : j->res_len;
  if (!rc)
    j->res = NULL;
  job_unref(j);
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
  pool_step(pool, 0);
  *out = j;
  return 0;
}

/*
 * Job j's handle is being freed: from now on nothing may read the caller's
 * input. Its chunks that no worker has begun to receive leave their queues
 * unsent; one half written keeps its place, its input copied so the frame
 * can be finished (a worker waits for the rest of a frame it has begun), or,
 * with no memory for the copy, its worker is replaced.
 */
static void pool_detach_input(mp_pool *p, job *j) {
  for (int i = 0; i < p->nproc; i++) {
    worker *w = &p->w[i];
    chunk **link = &w->q, *prev = NULL;
    while (*link) {
      chunk *c = *link;
      int unsent = c == w->tx ? w->tx_off == 0 : c->id == 0;
      if (c->j != j || (!unsent && c != w->tx)) {
        prev = c;
        link = &c->next;
        continue;
      }
      if (!unsent) { /* the frame being written */
        size_t len = c->count * j->in_size;
        c->copy = malloc(len ? len : 1);
        if (c->copy)
          memcpy(c->copy, j->in + c->start * j->in_size, len);
        else
          worker_kill(w, MP_ECLOSED, 0, 0);
        prev = c;
        link = &c->next;
        continue;
      }
      *link = c->next;
      if (w->q_tail == c)
        w->q_tail = prev;
      if (w->tx == c) {
        w->tx = c->next;
        if (w->tx)
          tx_prepare(p, w);
      }
      w->nq--;
      w->tasks_sent--;
      chunk_free(c);
    }
  }
}

/* ---------------------------------------------------------------------- */
/* public: results                                                        */
/* ---------------------------------------------------------------------- */

int mp_result_wait(mp_result *r, double timeout) {
  if (!r)
    return MP_EINVAL;
  if (r->complete)
    return 0;
  return pool_drive(r->pool, job_complete, r, mp__deadline(timeout));
}

int mp_result_ready(mp_result *r) {
  if (!r)
    return 0;
  if (!r->complete)
    pool_step(r->pool, 0);
  return r->complete;
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
  if (!r->complete)
    return MP_ESTATE;
  return r->first_fail.code == 0;
}

void mp_result_free(mp_result *r) {
  if (!r)
    return;
  /* Complete, its callback queued but not yet run: it must not run now. */
  if (r->cb_queued || r->prog_queued)
    r->detached = 1;
  if (!r->complete && r->pool) {
    /* Items never handed out are dropped; those in flight are discarded
     * as they come back. */
    r->detached = 1;
    r->pending = 0;
    r->next_item = r->kind == JOB_APPLY ? 1 : r->n;
    if (r->kind == JOB_MAP)
      pool_detach_input(r->pool, r);
    job_check_done(r);
  }
  job_unref(r);
}

/* ---------------------------------------------------------------------- */
/* public: iterators                                                      */
/* ---------------------------------------------------------------------- */

static int iter_create(mp_pool *pool, mp_map_fn f, const void *in, size_t n,
                       size_t in_size, size_t out_size,
                       const mp_map_opts *opts, int sink, mp_iter **out) {
  int rc = map_args_ok(pool, f, in, n, in_size, out_size);
  if (rc < 0)
    return rc;
  if (!out)
    return MP_EINVAL;
  mp_iter *it = malloc(sizeof *it);
  if (!it)
    return -ENOMEM;
  mp_map_opts o = {.chunksize = opts ? opts->chunksize : 0};
  it->j = job_new_map(pool, f, in, n, in_size, out_size, &o, sink);
  if (!it->j) {
    free(it);
    return -ENOMEM;
  }
  job_check_done(it->j);
  pool_step(pool, 0);
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
static block *iter_find(job *j, block **prev_out) {
  block *prev = NULL;
  for (block *b = j->blocks; b; prev = b, b = b->next) {
    /* A block is freed once all its items are taken: b->taken < b->count. */
    if (j->sink == SINK_UNORDERED || j->next_ordered == b->start + b->taken) {
      *prev_out = prev;
      return b;
    }
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
  block *prev;
  return iter_find(j, &prev) != NULL || iter_at_tail(j) ||
         j->returned >= j->n || j->complete;
}

int mp_iter_next(mp_iter *it, void *out, size_t *index, mp_status *status,
                 double timeout) {
  if (!it || !out)
    return MP_EINVAL;
  job *j = it->j;
  if (j->returned >= j->n)
    return MP_EOF;
  block *prev = NULL, *b = iter_find(j, &prev);
  if (!b && !iter_at_tail(j) && !j->complete) {
    int rc = pool_drive(j->pool, iter_has_next, j, mp__deadline(timeout));
    if (rc < 0)
      return rc;
    b = iter_find(j, &prev);
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
      if (prev)
        prev->next = b->next;
      else
        j->blocks = b->next;
      if (j->blocks_tail == b)
        j->blocks_tail = prev;
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
  /* Room in the window: let more input out. */
  if (!j->complete && j->next_item < j->n)
    j->pending = 1;
  return st.code;
}

void mp_iter_free(mp_iter *it) {
  if (!it)
    return;
  mp_result_free(it->j);
  free(it);
}
