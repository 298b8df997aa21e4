/* worker.c: the child's loop. Read a task frame, run it, write the result.
 * Frames come and go over the pipes, or over a shared-memory channel
 * (shmchan.h) when the pool's transport is shm. */
#include "internal.h"
#include "buf.h"
#include "shmchan.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Buffered reader over the task pipe: one read() usually brings a whole
 * frame, often several. */
typedef struct rx {
  int fd;
  mp__chan *chan;  /* the shm transport's channel; NULL: the pipe */
  pid_t parent;
  char *buf;
  size_t cap, start, end;
} rx;

/* Bytes into buf from the channel: what is there, else wait for some.
 * Returns the count, or -1 when the parent is gone. */
static ssize_t chan_read(mp__chan *c, pid_t parent, char *buf, size_t cap) {
  for (;;) {
    ssize_t got = mp__chan_get(c, buf, cap);
    if (got > 0) {
      mp__chan_wake_room(c);
      return got;
    }
    if (got < 0 || mp__chan_wait(c, MP__SLEEP_DATA, parent) < 0)
      return -1;
  }
}

/* Write all of iov[0..n) into the channel, waiting for room as the parent
 * reads. Returns 0 or -1 (the parent is gone). */
static int chan_write(mp__chan *c, pid_t parent, struct iovec *iov, int n) {
  int first = 0;
  while (first < n) {
    ssize_t put = mp__chan_put(c, iov + first, n - first);
    if (put < 0)
      return -1;
    if (put > 0)
      mp__chan_wake_data(c);
    size_t left = (size_t)put;
    while (first < n && left >= iov[first].iov_len)
      left -= iov[first++].iov_len;
    if (first < n) {
      iov[first].iov_base = (char *)iov[first].iov_base + left;
      iov[first].iov_len -= left;
      if (iov[first].iov_len && mp__chan_wait(c, MP__SLEEP_ROOM, parent) < 0)
        return -1;
    }
  }
  return 0;
}

/* Make at least n bytes available from r->buf + r->start. Returns 0, or -1
 * at EOF / error (the parent is gone or closed the pipe: time to exit). */
static int rx_need(rx *r, size_t n) {
  if (r->end - r->start >= n)
    return 0;
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  if (n > r->cap) {
    size_t cap = r->cap;
    while (cap < n)
      cap *= 2;
    char *b = realloc(r->buf, cap);
    if (!b)
      return -1;
    r->buf = b;
    r->cap = cap;
  }
  while (r->end < n) {
    ssize_t got =
        r->chan ? chan_read(r->chan, r->parent, r->buf + r->end, r->cap - r->end)
                : mp__read_some(r->fd, r->buf + r->end, r->cap - r->end);
    if (got <= 0)
      return -1;
    r->end += (size_t)got;
  }
  return 0;
}

/* The worker's state between frames. */
typedef struct wk {
  const mp__worker_cfg *cfg;
  mp__chan *chan;     /* results go here (shm), else to cfg->res_fd */
  pid_t parent;
  int timed;          /* the task being run records each item's start */
  char *out;          /* a map chunk's outputs and codes */
  size_t out_cap;
  mp_buf keep;        /* an apply's result buffer, kept for the next */
  char *ctx;          /* the last context the parent sent, and its id */
  size_t ctx_len, ctx_cap;
  uint64_t ctx_id;
  /* Results not yet written: a run of tiny tasks answers in one write. */
  char *held;
  size_t held_len, held_cap;
  uint64_t last_id;   /* the task whose result was sent or held last */
  /* shm: what the result pipe held at the last look, and the wake-up
   * bytes written by then (see pipe_clean). */
  int pipe_seen;
  unsigned wakes_seen;
} wk;

/* The context of the task now running (see mp_context). */
static const char *cur_ctx;
static size_t cur_ctx_len;

const void *mp_context(size_t *len) {
  if (len)
    *len = cur_ctx ? cur_ctx_len : 0;
  return cur_ctx;
}

/* Make the context with id the current one (0 or not sent: none). */
static void ctx_enter(const wk *k, uint64_t id) {
  int have = id && id == k->ctx_id;
  cur_ctx = have ? (k->ctx ? k->ctx : "") : NULL;
  cur_ctx_len = have ? k->ctx_len : 0;
}

/* An MP__FR_CTX frame: keep its bytes for the tasks that name its id. */
static int ctx_store(wk *k, uint64_t id, const char *p, uint32_t len) {
  if (len > k->ctx_cap) {
    char *c = realloc(k->ctx, len);
    if (!c)
      return -1;
    k->ctx = c;
    k->ctx_cap = len;
  }
  if (len)
    memcpy(k->ctx, p, len);
  k->ctx_len = len;
  k->ctx_id = id;
  return 0;
}

static void slot_enter(const wk *k, uint64_t id, uint32_t item) {
  /* start_ns before item, item before task_id, each published with
   * release: a reader that sees an item (acquire) sees its start time. */
  if (k->timed)
    atomic_store_explicit(&k->cfg->slot->start_ns, mp__now_ns(),
                          memory_order_relaxed);
  atomic_store_explicit(&k->cfg->slot->item, item, memory_order_release);
  atomic_store_explicit(&k->cfg->slot->task_id, id, memory_order_release);
}

static const char zeros[MP__ALIGN];

/*
 * shm: before results reach the ring, whether the result pipe holds no
 * more than the wake-up bytes this worker wrote (the parent drains them,
 * so fewer is fine). More came from a task whose result is among these:
 * then the slot names the last of them (its last item is still there),
 * and MP__CHAN_JUNK, which no wake-up is, follows the junk, so the parent
 * fails what the slot names and sends the others again alone (the
 * suspects: see the core's proto_blame), even when the junk were all
 * bytes of the wake-up's value. One look per write to the ring, not per
 * task: a run of tiny tasks costs one system call per batch (the parent
 * sends the suspects one at a time to the worker that replaces this one,
 * so a culprit is then found alone: tp_fork.c). Returns 1 if clean, else
 * 0.
 */
static int pipe_clean(wk *k) {
  int n = mp__pipe_pending(k->cfg->res_fd);
  if (n < 0)
    return 1; /* the task closed it: its end of file tells the parent */
  unsigned wrote = k->chan->wakes - k->wakes_seen;
  k->wakes_seen = k->chan->wakes;
  if ((unsigned)n > (unsigned)k->pipe_seen + wrote) {
    static const char junk = MP__CHAN_JUNK;
    atomic_store_explicit(&k->cfg->slot->task_id, k->last_id,
                          memory_order_release);
    (void)mp__write_full(k->cfg->res_fd, &junk, 1);
    return 0;
  }
  k->pipe_seen = n;
  return 1;
}

/*
 * After a task's last item: flush what it printed, then say no item runs.
 * Flushed now, while the slot still names the last item: a worker may be
 * killed later (terminate, a timeout) and its output must not die in its
 * buffers, it reaches the terminal before the parent learns the result, and
 * a flush that kills the worker (SIGPIPE on a closed stdout) is charged to
 * that item, not to nothing. Only when stdout or stderr holds something:
 * a task that printed nothing costs no walk of every stream.
 */
static void task_done(const wk *k) {
  cur_ctx = NULL;
  if (__fpending(stdout) || __fpending(stderr))
    fflush(NULL);
  atomic_store_explicit(&k->cfg->slot->task_id, 0, memory_order_release);
}

/* Write iov[0..n) to the parent whole. Returns 0 or -1 (it is gone). */
static int out_writev(wk *k, struct iovec *iov, int n) {
  if (k->chan)
    return chan_write(k->chan, k->parent, iov, n);
  return mp__writev_full(k->cfg->res_fd, iov, n) < 0 ? -1 : 0;
}

/* Write what is held. Returns 0 or -1 (the parent is gone, or a task
 * wrote to the result pipe: see pipe_clean). */
static int held_flush(wk *k) {
  if (!k->held_len)
    return 0;
  if (k->chan && !pipe_clean(k))
    return -1;
  struct iovec iov = {k->held, k->held_len};
  k->held_len = 0;
  return out_writev(k, &iov, 1);
}

/* Results held at most: past this they are written. */
#define HOLD_MAX 65536
/* A task that took longer than this answers at once. */
#define HOLD_TASK_NS 20000

/*
 * Send one result frame (header, the payload's parts, padding). A result
 * may be held, to go out with the next ones in one write, when the task
 * was tiny (took under HOLD_TASK_NS), another task is already here to run
 * (more is true), and little is held: a run of tiny tasks then costs one
 * write per batch, not per task, while a result never waits behind work
 * the worker has not yet received, nor behind more than one task.
 * Returns 0 or -1 (the parent is gone, or a task wrote to the result
 * pipe).
 */
static int send_result(wk *k, unsigned type, uint64_t id,
                       const struct iovec *parts, int nparts, int64_t took,
                       int more) {
  size_t len = 0;
  for (int i = 0; i < nparts; i++)
    len += parts[i].iov_len;
  assert(len <= MP__FRAME_MAX);
  mp__frame_hdr h;
  mp__frame_init(&h, type, id, (uint32_t)len);
  size_t framed = sizeof h + mp__padded((uint32_t)len);
  k->last_id = id;
  if (more && took < HOLD_TASK_NS && k->held_len + framed <= HOLD_MAX) {
    if (k->held_len + framed > k->held_cap) {
      char *b = realloc(k->held, HOLD_MAX);
      if (!b)
        goto direct;
      k->held = b;
      k->held_cap = HOLD_MAX;
    }
    char *w = k->held + k->held_len;
    memcpy(w, &h, sizeof h);
    w += sizeof h;
    for (int i = 0; i < nparts; i++) {
      memcpy(w, parts[i].iov_base, parts[i].iov_len);
      w += parts[i].iov_len;
    }
    memset(w, 0, framed - sizeof h - len);
    k->held_len += framed;
    return 0;
  }
direct:
  if (k->chan && !pipe_clean(k))
    return -1;
  struct iovec iov[6];
  int n = 0;
  if (k->held_len)
    iov[n++] = (struct iovec){k->held, k->held_len};
  iov[n++] = (struct iovec){&h, sizeof h};
  for (int i = 0; i < nparts; i++)
    iov[n++] = parts[i];
  iov[n++] = (struct iovec){(void *)zeros, framed - sizeof h - len};
  k->held_len = 0;
  return out_writev(k, iov, n);
}

/* Room for n bytes in k->out. */
static int out_room(wk *k, size_t n) {
  if (n <= k->out_cap)
    return 0;
  char *o = realloc(k->out, n);
  if (!o)
    return -1;
  k->out = o;
  k->out_cap = n;
  return 0;
}

/* Run a map chunk; returns 0 or -1 when the result could not be sent. */
static int run_map(wk *k, uint64_t id, const char *p, uint32_t len,
                   int more) {
  mp__map_task t;
  if (mp__map_task_check(p, len, &t) < 0)
    return -1;
  size_t res_len = (size_t)t.count * (sizeof(int32_t) + t.out_size);
  if (out_room(k, res_len) < 0)
    return -1;
  mp_map_fn fn = (mp_map_fn)(uintptr_t)t.fn;
  const char *in = p + sizeof t;
  char *outs = k->out;
  char *codes = k->out + (size_t)t.count * t.out_size;
  int32_t any = 0;
  int64_t t0 = mp__now_ns();
  k->timed = k->cfg->timed || (t.flags & MP__TF_TIMED);
  ctx_enter(k, t.ctx);
  for (uint32_t i = 0; i < t.count; i++) {
    slot_enter(k, id, i);
    int32_t rc = fn(in + (size_t)i * t.in_size, outs + (size_t)i * t.out_size);
    memcpy(codes + (size_t)i * sizeof rc, &rc, sizeof rc);
    any |= rc;
  }
  task_done(k);
  /* When every item succeeded the codes are left off: the length says so. */
  if (!any)
    res_len = (size_t)t.count * t.out_size;
  struct iovec part = {k->out, res_len};
  return send_result(k, MP__FR_MAP_RES, id, &part, 1, mp__now_ns() - t0, more);
}

/* A result buffer of at most this many bytes is kept for the next task. */
#define KEEP_RESULT_BUF 65536

/* The outcome of a task function that wrote through b and returned rc. */
static void outcome(const mp_buf *b, int rc, int32_t *code, int32_t *detail) {
  *code = 0;
  *detail = 0;
  if (b->err) {
    *code = b->err;
  } else if (rc != 0) {
    *code = MP_ETASK;
    *detail = rc;
  }
}

/* Keep b's buffer for the next task unless it grew large. */
static void keep_buf(wk *k, mp_buf *b) {
  if (b->cap <= KEEP_RESULT_BUF) {
    k->keep.data = b->data;
    k->keep.cap = b->cap;
  } else {
    free(b->data);
    k->keep.data = NULL;
    k->keep.cap = 0;
  }
}

static int run_apply(wk *k, uint64_t id, const char *p, uint32_t len,
                     int more) {
  mp__apply_task t;
  if (len < sizeof t)
    return -1;
  memcpy(&t, p, sizeof t);
  mp_apply_fn fn = (mp_apply_fn)(uintptr_t)t.fn;
  mp_buf b = {.data = k->keep.data, .cap = k->keep.cap,
              .max = k->cfg->max_res};
  mp__apply_res res = {0, 0, 0};
  /* An apply is timed always: one clock read beside a round trip. */
  k->timed = 1;
  ctx_enter(k, t.ctx);
  int64_t t0 = mp__now_ns();
  slot_enter(k, id, 0);
  int rc = fn(p + sizeof t, len - sizeof t, &b);
  task_done(k);
  outcome(&b, rc, &res.code, &res.detail);
  struct iovec parts[2] = {{&res, sizeof res},
                           {b.data ? b.data + sizeof(mp__apply_res) : NULL,
                            res.code ? 0 : b.len}};
  int w = send_result(k, MP__FR_APPLY_RES, id, parts, 2, mp__now_ns() - t0,
                      more);
  keep_buf(k, &b);
  return w;
}

/* Run a chunk of variable-length items: each item's result goes through
 * its own mp_buf into one reply. Returns 0 or -1. */
static int run_bytes(wk *k, uint64_t id, const char *p, uint32_t len,
                     int more) {
  mp__bytes_task t;
  const uint32_t *lens;
  const char *data;
  if (mp__bytes_task_check(p, len, &t, &lens, &data) < 0)
    return -1;
  mp_apply_fn fn = (mp_apply_fn)(uintptr_t)t.fn;
  size_t head = (size_t)t.count * sizeof(mp__item_res), used = head;
  if (out_room(k, head + 4096) < 0)
    return -1;
  int64_t t0 = mp__now_ns();
  k->timed = k->cfg->timed || (t.flags & MP__TF_TIMED);
  ctx_enter(k, t.ctx);
  for (uint32_t i = 0; i < t.count; i++) {
    uint32_t l;
    memcpy(&l, &lens[i], sizeof l);
    mp_buf b = {.data = k->keep.data, .cap = k->keep.cap,
                .max = k->cfg->max_res};
    slot_enter(k, id, i);
    int rc = fn(data, l, &b);
    data += mp__pad8(l);
    mp__item_res r = {0, 0, 0, 0};
    outcome(&b, rc, &r.code, &r.detail);
    if (!r.code) {
      r.len = (uint32_t)b.len;
      if (used + mp__pad8(b.len) > MP__FRAME_MAX) { /* past one frame */
        r = (mp__item_res){-EMSGSIZE, 0, 0, 0};
      } else if (out_room(k, used + mp__pad8(b.len)) < 0) {
        r = (mp__item_res){-ENOMEM, 0, 0, 0};
      } else {
        if (b.len)
          memcpy(k->out + used, b.data + sizeof(mp__apply_res), b.len);
        memset(k->out + used + b.len, 0, mp__pad8(b.len) - b.len);
        used += mp__pad8(b.len);
      }
    }
    memcpy(k->out + (size_t)i * sizeof r, &r, sizeof r);
    keep_buf(k, &b);
  }
  task_done(k);
  struct iovec part = {k->out, used};
  return send_result(k, MP__FR_BYTES_RES, id, &part, 1, mp__now_ns() - t0,
                     more);
}

/*
 * A task sent by reference (MP__FR_MAP_REF, MP__FR_APPLY_REF,
 * MP__FR_BYTES_REF): resolve its function in this process, write the
 * pointer into the task's own header (its fn field, the first of each
 * header, sent as 0) and run it as a task sent by pointer. A reference no
 * module here holds fails the whole task with MP_ENOFUNC. Returns 0, or -1
 * (malformed bytes, or the parent is gone).
 */
static int run_by_ref(wk *k, uint64_t id, int type, char *p, uint32_t len,
                      int more) {
  mp__fnref ref;
  uint64_t fn_field;
  size_t hdr = type == MP__FR_MAP_REF     ? sizeof(mp__map_task)
               : type == MP__FR_BYTES_REF ? sizeof(mp__bytes_task)
                                          : sizeof(mp__apply_task);
  if (len < sizeof ref + hdr)
    return -1;
  memcpy(&ref, p, sizeof ref);
  memcpy(&fn_field, p + sizeof ref, sizeof fn_field);
  mp__fn fn;
  int rc = fn_field ? MP_EPROTO : mp__fnref_resolve(&ref, &fn);
  if (rc == MP_ENOFUNC) {
    mp__apply_res res = {MP_ENOFUNC, 0, 0};
    struct iovec part = {&res, sizeof res};
    return send_result(k, MP__FR_TASK_FAIL, id, &part, 1, 0, more);
  }
  if (rc < 0)
    return -1;
  char *task = p + sizeof ref;
  fn_field = (uint64_t)(uintptr_t)fn;
  memcpy(task, &fn_field, sizeof fn_field);
  len -= (uint32_t)sizeof ref;
  return type == MP__FR_MAP_REF     ? run_map(k, id, task, len, more)
         : type == MP__FR_BYTES_REF ? run_bytes(k, id, task, len, more)
                                    : run_apply(k, id, task, len, more);
}

static int current_res_fd = -1, current_task_fd = -1;
static wk *current_wk;

int mp__worker_res_fd(void) { return current_res_fd; }

mp__chan *mp__worker_chan(void) { return current_wk ? current_wk->chan : NULL; }

int mp__worker_inject(const void *p, size_t n) {
  if (!current_wk)
    return -1;
  struct iovec iov = {(void *)p, n};
  return out_writev(current_wk, &iov, 1);
}

/*
 * In a child forked by a task (fork() without exec): the worker's pipes are
 * the library's, not the child's. Were it to keep them, a worker that dies
 * would show no EOF to the parent until that child exits too. close() is
 * safe here, in a fork handler. (The channel's mapping is not inherited.)
 */
static void worker_forked_child(void) {
  close(current_task_fd);
  close(current_res_fd);
  /* Not the grandchild's: a fork of its own must not close them again
   * (the numbers may be reused by then), nor may it write to them. */
  current_task_fd = current_res_fd = -1;
  current_wk = NULL;
}

/* Run one frame. Returns 0, or -1 on failure. */
static int run_frame(wk *k, int type, const mp__frame_hdr *h, char *payload,
                     int more) {
  switch (type) {
  case MP__FR_MAP:
    return run_map(k, h->id, payload, h->len, more);
  case MP__FR_APPLY:
    return run_apply(k, h->id, payload, h->len, more);
  case MP__FR_BYTES:
    return run_bytes(k, h->id, payload, h->len, more);
  case MP__FR_CTX:
    return ctx_store(k, h->id, payload, h->len);
  case MP__FR_MAP_REF:
  case MP__FR_APPLY_REF:
  case MP__FR_BYTES_REF:
    return run_by_ref(k, h->id, type, payload, h->len, more);
  default:
    return -1;
  }
}

/*
 * An MP__FR_DIVERT frame (shm transport): the next frames, len bytes in
 * all (the frames of one task: its context, then itself), come on the task
 * pipe, their input sent by reference. Read them into *buf and run them;
 * more: frames wait after them. Returns the tasks run, or -1.
 */
static int run_diverted(wk *k, const char *payload, uint32_t plen,
                        char **buf, size_t *cap, int more) {
  uint64_t len;
  if (plen != sizeof len)
    return -1;
  memcpy(&len, payload, sizeof len);
  if (len < sizeof(mp__frame_hdr) || len > (uint64_t)SIZE_MAX / 2)
    return -1;
  if (len > *cap) {
    char *b = realloc(*buf, (size_t)len);
    if (!b)
      return -1;
    *buf = b;
    *cap = (size_t)len;
  }
  /* About to wait for the parent: nothing it waits for may be held. */
  if (held_flush(k) < 0 ||
      mp__read_full(k->cfg->task_fd, *buf, (size_t)len) != (ssize_t)len)
    return -1;
  int tasks = 0;
  size_t off = 0;
  while (off < len) {
    mp__frame_hdr h;
    size_t framelen;
    /* Whole and valid (mp__frame_next checks the header) or a failure. */
    if (mp__frame_next(*buf + off, (size_t)len - off, k->cfg->max_task, &h,
                       &framelen) != 1)
      return -1;
    int type = (int)(h.magic_type & ~MP__FRAME_MAGIC_MASK);
    if (type == MP__FR_DIVERT || type == MP__FR_STOP)
      return -1;
    int last = off + framelen >= len;
    if (run_frame(k, type, &h, *buf + off + sizeof h, more || !last) < 0)
      return -1;
    tasks += type != MP__FR_CTX;
    off += framelen;
  }
  if (*cap > 4 * 1024 * 1024) { /* do not keep a big input's buffer */
    free(*buf);
    *buf = NULL;
    *cap = 0;
  }
  return tasks;
}

_Noreturn void mp__worker_main(const mp__worker_cfg *cfg) {
  current_res_fd = cfg->res_fd;
  current_task_fd = cfg->task_fd;
  pthread_atfork(NULL, NULL, worker_forked_child);
  pid_t parent = getppid();
  mp__chan chan = {0};
  if (cfg->chan_fd >= 0) {
    int fd = cfg->chan_fd;
    int rc = mp__chan_open(&chan, fd, 0, cfg->res_fd);
    mp__fd_drop(&fd);
    if (rc < 0)
      mp__child_exit(1);
    mp__chan_set_cpu(&chan, sched_getcpu());
  }
  if (cfg->initializer) {
    cfg->initializer(cfg->initarg);
    /* The kernel clears the parent-death signal when credentials change
     * (an initializer that drops privileges): arm it again. */
    mp__die_with_parent(cfg->parent);
  }
  atomic_store_explicit(&cfg->slot->ready, 1, memory_order_release);
  rx r = {.fd = cfg->task_fd, .cap = 65536, .parent = parent,
          .chan = chan.map ? &chan : NULL};
  r.buf = malloc(r.cap);
  wk k = {.cfg = cfg, .chan = r.chan, .parent = parent};
  current_wk = &k;
  char *dbuf = NULL;
  size_t dcap = 0;
  int done = 0;
  if (!r.buf)
    mp__child_exit(1);
  for (;;) {
    mp__frame_hdr h;
    /* About to wait for the parent: nothing it waits for may be held. */
    if (r.end - r.start < sizeof h && held_flush(&k) < 0)
      break;
    if (rx_need(&r, sizeof h) < 0)
      break;
    memcpy(&h, r.buf + r.start, sizeof h);
    int type = mp__frame_check(&h, cfg->max_task);
    if (type < 0 || type == MP__FR_STOP)
      break;
    size_t framelen = sizeof h + mp__padded(h.len);
    if (framelen > r.end - r.start && held_flush(&k) < 0)
      break;
    if (rx_need(&r, framelen) < 0)
      break;
    char *payload = r.buf + r.start + sizeof h;
    /* Another whole frame already here after this one? */
    int more = r.end - r.start >= framelen + sizeof h ||
               (r.chan && mp__chan_readable(r.chan));
    int rc = type == MP__FR_DIVERT
                 ? run_diverted(&k, payload, h.len, &dbuf, &dcap, more)
                 : run_frame(&k, type, &h, payload, more);
    if (rc < 0)
      break;
    r.start += framelen;
    int tasks = type == MP__FR_DIVERT ? rc : type != MP__FR_CTX;
    if (tasks && cfg->maxtasks && (done += tasks) >= cfg->maxtasks)
      break;
  }
  (void)held_flush(&k);
  if (k.chan)
    mp__chan_gone(k.chan);
  current_wk = NULL;
  free(k.out);
  free(k.keep.data);
  free(k.ctx);
  free(k.held);
  free(r.buf);
  free(dbuf);
  mp__child_exit(0);
}
