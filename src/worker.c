/* worker.c: the child's loop. Read a task frame, run it, write the result. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mp_buf {
  char *data;   /* room for an mp__apply_res header, then the result */
  size_t len;   /* result bytes after the header */
  size_t cap;   /* bytes allocated after the header */
  size_t max;   /* the pool's cap on len */
  int err;      /* first failure: -ENOMEM or -EMSGSIZE */
};

void *mp_buf_grow(mp_buf *b, size_t n) {
  if (!b)
    return NULL;
  if (b->err)
    return NULL;
  if (n > b->max - b->len) {
    b->err = -EMSGSIZE;
    return NULL;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap = cap > b->max / 2 ? b->max : cap * 2;
    char *d = realloc(b->data, sizeof(mp__apply_res) + cap);
    if (!d) {
      b->err = -ENOMEM;
      return NULL;
    }
    b->data = d;
    b->cap = cap;
  }
  void *p = b->data + sizeof(mp__apply_res) + b->len;
  b->len += n;
  return p;
}

int mp_buf_append(mp_buf *b, const void *data, size_t n) {
  if (!b || (!data && n))
    return MP_EINVAL;
  void *p = mp_buf_grow(b, n);
  if (!p)
    return n ? b->err : 0;
  if (n)
    memcpy(p, data, n);
  return 0;
}

/* Buffered reader over the task pipe: one read() usually brings a whole
 * frame, often several. */
typedef struct rx {
  int fd;
  char *buf;
  size_t cap, start, end;
} rx;

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
    ssize_t got = mp__read_some(r->fd, r->buf + r->end, r->cap - r->end);
    if (got <= 0)
      return -1;
    r->end += (size_t)got;
  }
  return 0;
}

static void slot_enter(const mp__worker_cfg *cfg, uint64_t id, uint32_t item) {
  /* start_ns before item, item before task_id, each published with
   * release: a reader that sees an item (acquire) sees its start time. */
  if (cfg->timed)
    atomic_store_explicit(&cfg->slot->start_ns, mp__now_ns(),
                          memory_order_relaxed);
  atomic_store_explicit(&cfg->slot->item, item, memory_order_release);
  atomic_store_explicit(&cfg->slot->task_id, id, memory_order_release);
}

static const char zeros[MP__ALIGN];

/*
 * After a task's last item: flush what it printed, then say no item runs.
 * Flushed now, while the slot still names the last item: a worker may be
 * killed later (terminate, a timeout) and its output must not die in its
 * buffers, it reaches the terminal before the parent learns the result, and
 * a flush that kills the worker (SIGPIPE on a closed stdout) is charged to
 * that item, not to nothing.
 */
static void task_done(const mp__worker_cfg *cfg) {
  fflush(NULL);
  atomic_store_explicit(&cfg->slot->task_id, 0, memory_order_release);
}

/* Write one result frame, padded. Returns 0 or -1 (the parent is gone). */
static int send_frame(const mp__worker_cfg *cfg, unsigned type, uint64_t id,
                      const void *payload, size_t len) {
  mp__frame_hdr h;
  mp__frame_init(&h, type, id, (uint32_t)len);
  struct iovec iov[3] = {{&h, sizeof h},
                         {(void *)payload, len},
                         {(void *)zeros, mp__padded((uint32_t)len) - len}};
  return mp__writev_full(cfg->res_fd, iov, 3) < 0 ? -1 : 0;
}

/* Run a map chunk; returns 0 or -1 when the result could not be sent. */
static int run_map(const mp__worker_cfg *cfg, uint64_t id, const char *p,
                   uint32_t len, char **out, size_t *out_cap) {
  mp__map_task t;
  if (mp__map_task_check(p, len, &t) < 0)
    return -1;
  size_t res_len = (size_t)t.count * (sizeof(int32_t) + t.out_size);
  if (res_len > *out_cap) {
    char *o = realloc(*out, res_len);
    if (!o)
      return -1;
    *out = o;
    *out_cap = res_len;
  }
  mp_map_fn fn = (mp_map_fn)(uintptr_t)t.fn;
  const char *in = p + sizeof t;
  char *outs = *out;
  char *codes = *out + (size_t)t.count * t.out_size;
  int32_t any = 0;
  for (uint32_t i = 0; i < t.count; i++) {
    slot_enter(cfg, id, i);
    int32_t rc = fn(in + (size_t)i * t.in_size, outs + (size_t)i * t.out_size);
    memcpy(codes + (size_t)i * sizeof rc, &rc, sizeof rc);
    any |= rc;
  }
  task_done(cfg);
  /* When every item succeeded the codes are left off: the length says so. */
  if (!any)
    res_len = (size_t)t.count * t.out_size;
  return send_frame(cfg, MP__FR_MAP_RES, id, *out, res_len);
}

/* A result buffer of at most this many bytes is kept for the next task. */
#define KEEP_RESULT_BUF 65536

static int run_apply(const mp__worker_cfg *cfg, uint64_t id, const char *p,
                     uint32_t len, mp_buf *keep) {
  mp__apply_task t;
  if (len < sizeof t)
    return -1;
  memcpy(&t, p, sizeof t);
  mp_apply_fn fn = (mp_apply_fn)(uintptr_t)t.fn;
  mp_buf b = {.data = keep->data, .cap = keep->cap, .max = cfg->max_res};
  mp__apply_res res = {0, 0, 0};
  slot_enter(cfg, id, 0);
  int rc = fn(p + sizeof t, len - sizeof t, &b);
  task_done(cfg);
  if (b.err) {
    res.code = b.err;
  } else if (rc != 0) {
    res.code = MP_ETASK;
    res.detail = rc;
  }
  size_t body = res.code ? 0 : b.len;
  mp__apply_res hdr_room;
  char *resp = b.data ? b.data : (char *)&hdr_room;
  memcpy(resp, &res, sizeof res);
  int w = send_frame(cfg, MP__FR_APPLY_RES, id, resp, sizeof res + body);
  if (b.cap <= KEEP_RESULT_BUF) {
    keep->data = b.data;
    keep->cap = b.cap;
  } else {
    free(b.data);
    keep->data = NULL;
    keep->cap = 0;
  }
  return w;
}

/*
 * A task sent by reference (MP__FR_MAP_REF, MP__FR_APPLY_REF): resolve its
 * function in this process, write the pointer into the task's own header
 * (its fn field, the first of both, sent as 0) and run it as a task sent by
 * pointer. A reference no module here holds fails the whole task with
 * MP_ENOFUNC. Returns 0, or -1 (malformed bytes, or the parent is gone).
 */
static int run_by_ref(const mp__worker_cfg *cfg, uint64_t id, int type,
                      char *p, uint32_t len, char **out, size_t *out_cap,
                      mp_buf *keep) {
  mp__fnref ref;
  uint64_t fn_field;
  size_t hdr = type == MP__FR_MAP_REF ? sizeof(mp__map_task)
                                      : sizeof(mp__apply_task);
  if (len < sizeof ref + hdr)
    return -1;
  memcpy(&ref, p, sizeof ref);
  memcpy(&fn_field, p + sizeof ref, sizeof fn_field);
  mp__fn fn;
  int rc = fn_field ? MP_EPROTO : mp__fnref_resolve(&ref, &fn);
  if (rc == MP_ENOFUNC) {
    mp__apply_res res = {MP_ENOFUNC, 0, 0};
    return send_frame(cfg, MP__FR_TASK_FAIL, id, &res, sizeof res);
  }
  if (rc < 0)
    return -1;
  char *task = p + sizeof ref;
  fn_field = (uint64_t)(uintptr_t)fn;
  memcpy(task, &fn_field, sizeof fn_field);
  len -= (uint32_t)sizeof ref;
  return type == MP__FR_MAP_REF ? run_map(cfg, id, task, len, out, out_cap)
                                : run_apply(cfg, id, task, len, keep);
}

static int current_res_fd = -1, current_task_fd = -1;

int mp__worker_res_fd(void) { return current_res_fd; }

/*
 * In a child forked by a task (fork() without exec): the worker's pipes are
 * the library's, not the child's. Were it to keep them, a worker that dies
 * would show no EOF to the parent until that child exits too. close() is
 * safe here, in a fork handler.
 */
static void worker_forked_child(void) {
  close(current_task_fd);
  close(current_res_fd);
  /* Not the grandchild's: a fork of its own must not close them again
   * (the numbers may be reused by then), nor may it write to them. */
  current_task_fd = current_res_fd = -1;
}

_Noreturn void mp__worker_main(const mp__worker_cfg *cfg) {
  current_res_fd = cfg->res_fd;
  current_task_fd = cfg->task_fd;
  pthread_atfork(NULL, NULL, worker_forked_child);
  if (cfg->initializer) {
    cfg->initializer(cfg->initarg);
    /* The kernel clears the parent-death signal when credentials change
     * (an initializer that drops privileges): arm it again. */
    mp__die_with_parent(cfg->parent);
  }
  atomic_store_explicit(&cfg->slot->ready, 1, memory_order_release);
  rx r = {.fd = cfg->task_fd, .cap = 65536};
  r.buf = malloc(r.cap);
  char *out = NULL;
  size_t out_cap = 0;
  mp_buf keep = {0};
  int done = 0;
  if (!r.buf)
    mp__child_exit(1);
  for (;;) {
    mp__frame_hdr h;
    if (rx_need(&r, sizeof h) < 0)
      break;
    memcpy(&h, r.buf + r.start, sizeof h);
    int type = mp__frame_check(&h, cfg->max_task);
    if (type < 0 || type == MP__FR_STOP)
      break;
    size_t framelen = sizeof h + mp__padded(h.len);
    if (rx_need(&r, framelen) < 0)
      break;
    char *payload = r.buf + r.start + sizeof h;
    int rc;
    if (type == MP__FR_MAP)
      rc = run_map(cfg, h.id, payload, h.len, &out, &out_cap);
    else if (type == MP__FR_APPLY)
      rc = run_apply(cfg, h.id, payload, h.len, &keep);
    else if (type == MP__FR_MAP_REF || type == MP__FR_APPLY_REF)
      rc = run_by_ref(cfg, h.id, type, payload, h.len, &out, &out_cap, &keep);
    else
      rc = -1;
    if (rc < 0)
      break;
    r.start += framelen;
    if (cfg->maxtasks && ++done >= cfg->maxtasks)
      break;
  }
  free(out);
  free(keep.data);
  free(r.buf);
  mp__child_exit(0);
}
