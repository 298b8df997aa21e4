/*
 * tp_fork.c: the pipes transport. Each worker has its own task pipe
 * (parent to worker) and result pipe (worker to parent), all close-on-exec
 * and registered so other children drop them. One poll() both feeds tasks
 * and drains results, so a large task and a large result never deadlock
 * each other. EOF on a worker's result pipe is how its death is seen; its
 * status comes from its spawner, what it was running from a slot of memory
 * shared with it (worker.c writes it before each item). Signals go through
 * pidfds, never to a pid the kernel may have given to another process.
 *
 * Where the workers come from is a spawner's business (spawner.h): the fork
 * start method forks them from the caller (spawn_fork.c, and tasks cross
 * as pointers); the forkserver method has a server process fork them
 * (tp_forkserver.c, and tasks cross as portable references).
 *
 * The shm transport is this one with the frames' bytes in a shared-memory
 * channel per worker (shmchan.h) instead of the pipes. The pipes stay: EOF
 * on the result pipe still says a worker died, the result pipe brings the
 * parent wake-up bytes when it sleeps in poll(), and the task pipe carries
 * the large inputs that go by reference (vmsplice), each announced in the
 * ring by an MP__FR_DIVERT frame. A wait looks at the rings first, spins
 * on them while that pays (see shm_spin), and only then sleeps in the
 * same poll() as the pipes transport.
 */
#include "pool/pool_internal.h"
#include "shmchan.h"
#include "spawner.h"

#include <sched.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
  PIPE_BYTES = 1024 * 1024, /* pipe capacity asked of the OS */
  RX_MIN = 64 * 1024,
  SPLICE_MIN = 64 * 1024,   /* input bodies spliced, not copied */
};

typedef struct fw {
  pid_t pid;       /* 0: no process in this slot */
  int pidfd;       /* signals go through it (-1: none, see mp__child_signal) */
  int task_fd;     /* write end, non-blocking */
  int task_rd;     /* the parent's copy of the read end: see fork_start */
  int res_fd;      /* read end, non-blocking */
  mp__list tasks;  /* sent or being sent, oldest first: each awaits its
                    * result, in this order */
  mp__task *tx;    /* the first not yet wholly written, NULL: none */
  uint64_t ctx_sent; /* the context id its queued tasks leave it with */
  char *rbuf;
  size_t rcap, rlen;
  int dead;        /* EOF seen, or killed: to be buried */
  int drain;       /* killed; what it sent before still counts */
  int why;         /* MP__LOST_PROTO or MP__LOST_NOMEM, as detected */
  uint64_t why_task; /* what it ran when that was detected */
  uint32_t why_item;
  mp__chan chan;   /* shm: the slot's channel (chan.map NULL: none), kept
                    * for the next worker of the slot: a replacement
                    * then maps pages that exist, and the parent neither
                    * makes nor unmaps any */
  int chan_fd;     /* its memfd, for the next worker */
  unsigned careful; /* tasks still to send one at a time, each after the
                     * last one's result (see fw_sendable) */
  int announced;   /* shm: our sleep is announced to it */
  unsigned wakes_owed; /* shm: announcements it took (each owes one wake-up
                        * byte), less wake-up bytes read from it: see
                        * MP__CHAN_JUNK */
} fw;

typedef struct tp_fork {
  mp_pool *core;
  int nproc;
  const mp_pool_opts *opts;
  size_t max_res;
  unsigned spawned;
  const mp__spawn_ops *sp_ops;
  void *sp;           /* the spawner */
  fw *w;
  mp__slot *slots;    /* shared with the workers: what each one runs */
  struct pollfd *pfd; /* the poll set: 2 per worker */
  int *pfd_map;       /* what each entry is: 2 * worker (+ 1: task pipe) */
  int shm;            /* the bytes go through channels (shmchan.h) */
  int64_t polled_ns;  /* shm: when the pipes were last polled */
  int64_t restated_ns; /* shm: when the heads were last stored again */
  mp__spin spin;      /* shm: the parent's spin budget */
} tp_fork;

/* An empty slot: no process, no fds but its channel's. */
static void fw_clear(fw *w) {
  mp__chan chan = w->chan;
  int chan_fd = w->chan_fd;
  memset(w, 0, sizeof *w);
  w->task_fd = w->task_rd = w->res_fd = w->pidfd = -1;
  mp__list_init(&w->tasks);
  w->chan = chan;
  w->chan_fd = chan_fd;
}

enum { CAREFUL_MAX = 256 }; /* see fw_sendable */

/*
 * Whether w's next task may be written now. After a worker is lost for a
 * protocol error (bytes on its result pipe, say), every worker gets its
 * next tasks one at a time, as many as the lost one held items: those are
 * the suspects the core sends again alone (see its proto_blame), and a
 * worker with one task at a time answers for that task alone, under either
 * transport, instead of holding results back to send them together, which
 * would make them suspects together again.
 */
static int fw_sendable(const fw *w) {
  return w->tx && (!w->careful || mp__list_first((mp__list *)&w->tasks) ==
                                      &w->tx->tp_link);
}

static void fw_close_fds(fw *w) {
  mp__fd_drop(&w->task_fd);
  mp__fd_drop(&w->task_rd);
  mp__fd_drop(&w->res_fd);
  mp__fd_drop(&w->pidfd);
}

static mp__task *task_of(mp__list *n) {
  return MP__ENTRY(n, mp__task, tp_link);
}

/* The task after t in w's list, or NULL. */
static mp__task *fw_next(fw *w, mp__task *t) {
  return t->tp_link.next == &w->tasks ? NULL : task_of(t->tp_link.next);
}

static int pipes_create(const mp__tp_cfg *cfg, const mp__spawn_ops *sp_ops,
                        int shm, void **out) {
  tp_fork *f = calloc(1, sizeof *f);
  if (!f)
    return -ENOMEM;
  f->shm = shm;
  mp__spin_init(&f->spin);
  f->core = cfg->core;
  f->nproc = cfg->nproc;
  f->opts = cfg->opts;
  f->max_res = cfg->max_res;
  f->sp_ops = sp_ops;
  f->w = calloc((size_t)f->nproc, sizeof *f->w);
  f->pfd = calloc(2 * (size_t)f->nproc, sizeof *f->pfd);
  f->pfd_map = calloc(2 * (size_t)f->nproc, sizeof *f->pfd_map);
  int err = -ENOMEM;
  if (f->w && f->pfd && f->pfd_map)
    err = sp_ops->create(cfg, &f->sp, &f->slots);
  if (err < 0) {
    free(f->w);
    free(f->pfd);
    free(f->pfd_map);
    free(f);
    return err;
  }
  for (int i = 0; i < f->nproc; i++) {
    f->w[i].chan_fd = -1;
    fw_clear(&f->w[i]);
  }
  *out = f;
  return 0;
}

static int fork_create(const mp__tp_cfg *cfg, void *arg, void **out) {
  (void)arg;
  return pipes_create(cfg, &mp__spawn_fork, 0, out);
}

static int server_create(const mp__tp_cfg *cfg, void *arg, void **out) {
  (void)arg;
  return pipes_create(cfg, &mp__spawn_server, 0, out);
}

static int fork_shm_create(const mp__tp_cfg *cfg, void *arg, void **out) {
  (void)arg;
  return pipes_create(cfg, &mp__spawn_fork, 1, out);
}

static int server_shm_create(const mp__tp_cfg *cfg, void *arg, void **out) {
  (void)arg;
  return pipes_create(cfg, &mp__spawn_server, 1, out);
}

static int fork_start(void *tp, int idx) {
  tp_fork *f = tp;
  fw *w = &f->w[idx];
  int tfd[2], rfd[2] = {-1, -1};
  int rc = mp__pipe_reg(tfd);
  if (rc < 0)
    return rc;
  if ((rc = mp__pipe_reg(rfd)) < 0 || (rc = mp__set_nonblock(tfd[1])) < 0 ||
      (rc = mp__set_nonblock(rfd[0])) < 0)
    goto error;
  if (f->shm && !w->chan.map) {
    if ((rc = w->chan_fd = mp__chan_create()) < 0 ||
        (rc = mp__chan_open(&w->chan, w->chan_fd, 1, -1)) < 0) {
      mp__fd_drop(&w->chan_fd);
      goto error;
    }
  } else if (f->shm) {
    /* The slot's last worker is buried: nobody else maps it. */
    mp__chan_reset(&w->chan);
  }
  mp__pipe_grow(tfd[1], PIPE_BYTES);
  /* Under shm the result pipe carries wake-up bytes only. */
  if (!f->shm)
    mp__pipe_grow(rfd[0], PIPE_BYTES);

  mp__slot *slot = &f->slots[idx];
  atomic_store(&slot->task_id, 0);
  atomic_store(&slot->ready, 0);
  char name[32];
  snprintf(name, sizeof name, "PoolWorker-%u", ++f->spawned);
  pid_t pid;
  int pidfd;
  if ((rc = f->sp_ops->spawn(f->sp, idx, name, tfd[0], rfd[1], w->chan_fd,
                             &pid, &pidfd)) < 0)
    goto error;
  /* The parent keeps its copy of the task pipe's read end: a pipe with a
   * reader never raises SIGPIPE, so a worker that dies while the parent
   * writes to it costs a full pipe at worst, and no signal (and no signal
   * mask juggling around every write). Death shows as EOF on results. */
  mp__fd_drop(&rfd[1]);
  unsigned careful = w->careful;
  fw_clear(w);
  w->careful = careful;
  w->pid = pid;
  w->pidfd = pidfd;
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

/* Where a task's headers sit in its tp_head: the context frame's header,
 * then its own frame header, then its payload header (by reference: the
 * function's reference, then the payload header, its fn 0: codec.c). */
enum { HEAD_CTX = 0, HEAD_FRAME = 16, HEAD_META = 32 };
_Static_assert(sizeof(mp__frame_hdr) == 16, "frame header is 16 bytes");
_Static_assert(HEAD_META + sizeof(mp__fnref) + sizeof(mp__map_task) <=
                       sizeof(((mp__task *)0)->tp_head) &&
                   HEAD_META + sizeof(mp__fnref) + sizeof(mp__bytes_task) <=
                       sizeof(((mp__task *)0)->tp_head),
               "payload headers fit tp_head");

static size_t meta_len(const mp__task *t) {
  return (t->ref ? sizeof(mp__fnref) : 0) +
         (t->kind == MP__TASK_MAP     ? sizeof(mp__map_task)
          : t->kind == MP__TASK_BYTES ? sizeof(mp__bytes_task)
                                      : sizeof(mp__apply_task));
}

/* Whether t's whole frame fits its tp_head, its input copied there at
 * send: a tiny task (a chunksize-1 map's) then costs one iovec, not four,
 * and a writev carries four times as many of them. */
static int task_inline(const mp__task *t) {
  return t->in_len < sizeof t->tp_head &&
         HEAD_META + mp__padded((uint32_t)(meta_len(t) + t->in_len)) <=
             sizeof t->tp_head;
}

/* t's headers, in its tp_head (a tiny task's input too: task_inline);
 * whether its call's context goes first. */
static void tx_prepare(fw *w, mp__task *t) {
  /* The core refused at submit what a frame cannot carry. */
  assert(t->ctx_len <= MP__FRAME_MAX &&
         meta_len(t) + t->in_len <= MP__FRAME_MAX);
  unsigned char *hd = t->tp_head;
  t->tp_ctx = t->ctx_id && t->ctx_id != w->ctx_sent;
  if (t->tp_ctx)
    mp__frame_init((mp__frame_hdr *)(void *)(hd + HEAD_CTX), MP__FR_CTX,
                   t->ctx_id, (uint32_t)t->ctx_len);
  w->ctx_sent = t->ctx_id ? t->ctx_id : w->ctx_sent;
  /* By reference the function's reference goes first and fn is 0. */
  uint64_t fn = t->ref ? 0 : (uint64_t)(uintptr_t)t->fn;
  unsigned char *meta = hd + HEAD_META;
  if (t->ref) {
    memcpy(meta, t->ref, sizeof *t->ref);
    meta += sizeof *t->ref;
  }
  unsigned type;
  if (t->kind == MP__TASK_MAP) {
    mp__map_task m = {.fn = fn, .in_size = t->in_size,
                      .out_size = t->out_size, .count = t->count,
                      .flags = t->flags, .ctx = t->ctx_id};
    memcpy(meta, &m, sizeof m);
    type = t->ref ? MP__FR_MAP_REF : MP__FR_MAP;
  } else if (t->kind == MP__TASK_BYTES) {
    mp__bytes_task b = {.fn = fn, .count = t->count, .flags = t->flags,
                        .ctx = t->ctx_id};
    memcpy(meta, &b, sizeof b);
    type = t->ref ? MP__FR_BYTES_REF : MP__FR_BYTES;
  } else {
    mp__apply_task a = {.fn = fn, .ctx = t->ctx_id};
    memcpy(meta, &a, sizeof a);
    type = t->ref ? MP__FR_APPLY_REF : MP__FR_APPLY;
  }
  uint32_t len = (uint32_t)(meta_len(t) + t->in_len);
  mp__frame_init((mp__frame_hdr *)(void *)(hd + HEAD_FRAME), type, t->id,
                 len);
  if (task_inline(t)) { /* its input, and the frame's padding, after it */
    unsigned char *in = hd + HEAD_META + meta_len(t);
    if (t->in_len)
      memcpy(in, t->in, t->in_len);
    memset(in + t->in_len, 0, mp__padded(len) - len);
  }
}

static const char zeros[MP__ALIGN];

/* The parts of t's bytes on the pipe into iov (at most 6); returns how
 * many, and their total into *total. */
static int task_iov(mp__task *t, struct iovec *iov, size_t *total) {
  int n = 0;
  if (t->tp_ctx) {
    uint32_t l = (uint32_t)t->ctx_len;
    iov[n++] = (struct iovec){t->tp_head + HEAD_CTX, sizeof(mp__frame_hdr)};
    iov[n++] = (struct iovec){(void *)t->ctx, t->ctx_len};
    iov[n++] = (struct iovec){(void *)zeros, mp__padded(l) - l};
  }
  uint32_t len = (uint32_t)(meta_len(t) + t->in_len);
  if (task_inline(t)) {
    iov[n++] = (struct iovec){t->tp_head + HEAD_FRAME,
                              sizeof(mp__frame_hdr) + mp__padded(len)};
  } else { /* the frame's header and its payload's are contiguous */
    iov[n++] = (struct iovec){t->tp_head + HEAD_FRAME,
                              sizeof(mp__frame_hdr) + meta_len(t)};
    iov[n++] = (struct iovec){(void *)t->in, t->in_len};
    iov[n++] = (struct iovec){(void *)zeros, mp__padded(len) - len};
  }
  *total = 0;
  for (int i = 0; i < n; i++)
    *total += iov[i].iov_len;
  return n;
}

/* The bytes of t's frames. */
static size_t task_total(mp__task *t) {
  struct iovec iov[7];
  size_t total;
  (void)task_iov(t, iov, &total);
  return total;
}

/* Drop the first off bytes of iov[0..n): returns the first entry left. */
static int iov_skip(struct iovec *iov, int n, size_t off) {
  int first = 0;
  while (first < n && off >= iov[first].iov_len) {
    off -= iov[first].iov_len;
    first++;
  }
  if (first < n) {
    iov[first].iov_base = (char *)iov[first].iov_base + off;
    iov[first].iov_len -= off;
  }
  return first;
}

enum { IOV_BATCH = 64 }; /* iovec entries in one writev */

/* Whether t's input goes by reference: see fw_write. */
static int task_spliced(const mp__task *t) {
  return t->by_ref && !t->tp_copy && t->in_len >= SPLICE_MIN;
}

/*
 * Write as much of w's pending tasks as the pipe takes: many queued tasks
 * go in one writev, so a run of tiny ones costs one system call, not one
 * each. A large input that stays unchanged until its result is in (a
 * blocking map's) goes by reference: the pipe takes references to its
 * pages (vmsplice) instead of a copy; every such page has been read, or its
 * pipe closed with its dead worker, before the caller may touch it again.
 */
/* Write what the pipe takes of t, from where it stopped: the headers
 * copied, the body by reference. Returns as mp__writev_some. */
static ssize_t write_spliced(fw *w, mp__task *t) {
  struct iovec iov[7];
  size_t total;
  int k = task_iov(t, iov, &total);
  size_t body = total - iov[k - 1].iov_len - iov[k - 2].iov_len;
  if (t->tp_off < body) { /* the headers, copied */
    int f = iov_skip(iov, k - 2, t->tp_off);
    return mp__writev_some(w->task_fd, iov + f, k - 2 - f);
  }
  int f = iov_skip(iov, k, t->tp_off);
  if (t->tp_off < body + t->in_len)
    return mp__vmsplice_some(w->task_fd, iov + f, 1);
  return mp__writev_some(w->task_fd, iov + f, k - f);
}

/* Gather w's pending tasks from t on: t from where it stopped, then the
 * next ones whole, up to one that goes by reference. Returns the count of
 * entries in iov[0..IOV_BATCH). */
static int gather(fw *w, mp__task *t, struct iovec *iov) {
  int n = 0;
  for (mp__task *u = t; u && n + 7 <= IOV_BATCH; u = fw_next(w, u)) {
    if (u != t && (task_spliced(u) || w->careful))
      break;
    size_t total;
    int k = task_iov(u, iov + n, &total);
    int f = u == t ? iov_skip(iov + n, k, u->tp_off) : 0;
    memmove(iov + n, iov + n + f, (size_t)(k - f) * sizeof *iov);
    n += k - f;
  }
  return n;
}

/* Spread wrote bytes over w's pending tasks, oldest first. */
static void tx_advance(fw *w, size_t left) {
  while (w->tx) {
    size_t total = task_total(w->tx);
    size_t rest = total - w->tx->tp_off;
    if (left < rest) {
      w->tx->tp_off += left;
      break;
    }
    w->tx->tp_off = total;
    left -= rest;
    w->tx = fw_next(w, w->tx);
  }
}

static void fw_fail(tp_fork *f, int idx, int why);

/*
 * shm: put w's pending tasks into its ring, as much as there is room for.
 * A task that goes by reference (task_spliced) goes on the task pipe as
 * under pipes, announced first in the ring by an MP__FR_DIVERT frame that
 * says how many bytes follow on the pipe; the worker reads them there when
 * it reaches the announcement, so the order of tasks holds. A task half
 * sent stays on the channel it began on (cancel may have copied it).
 */
static void fw_write_shm(tp_fork *f, int idx) {
  fw *w = &f->w[idx];
  int put_any = 0;
  while (fw_sendable(w) && !w->dead) {
    mp__task *t = w->tx;
    ssize_t wrote;
    if (!t->tp_divert && t->tp_off == 0 && task_spliced(t) &&
        w->task_fd >= 0) {
      uint64_t len = task_total(t);
      mp__frame_hdr h;
      mp__frame_init(&h, MP__FR_DIVERT, t->id, sizeof len);
      char frame[sizeof h + MP__ALIGN] = {0}; /* padded as every frame */
      memcpy(frame, &h, sizeof h);
      memcpy(frame + sizeof h, &len, sizeof len);
      struct iovec iov = {frame, sizeof frame};
      /* All or nothing: a frame this small fits whole or waits. */
      ssize_t room = mp__chan_room(&w->chan);
      if (room < 0) {
        fw_fail(f, idx, MP__LOST_PROTO);
        return;
      }
      if ((size_t)room < sizeof frame)
        break;
      (void)mp__chan_put(&w->chan, &iov, 1);
      t->tp_divert = 1;
      put_any = 1;
    }
    if (t->tp_divert) {
      if (w->task_fd < 0)
        break;
      if (task_spliced(t)) {
        wrote = write_spliced(w, t);
      } else { /* its input copied by cancel: the rest by copy */
        struct iovec iov[7];
        size_t total;
        int k = task_iov(t, iov, &total);
        int s0 = iov_skip(iov, k, t->tp_off);
        wrote = mp__writev_some(w->task_fd, iov + s0, k - s0);
      }
      if (wrote == -EAGAIN)
        break;
      if (wrote < 0) {
        w->tx = NULL; /* as fw_write: its EOF settles the rest */
        break;
      }
    } else {
      struct iovec iov[IOV_BATCH];
      int n = gather(w, t, iov);
      wrote = mp__chan_put(&w->chan, iov, n);
      if (wrote < 0) {
        fw_fail(f, idx, MP__LOST_PROTO);
        return;
      }
      if (wrote == 0)
        break;
      put_any = 1;
    }
    tx_advance(w, (size_t)wrote);
  }
  if (put_any)
    mp__chan_wake_data(&w->chan);
}

static void fw_write(fw *w) {
  while (fw_sendable(w) && !w->dead && w->task_fd >= 0) {
    struct iovec iov[IOV_BATCH];
    ssize_t wrote;
    mp__task *t = w->tx;
    if (task_spliced(t))
      wrote = write_spliced(w, t);
    else
      wrote = mp__writev_some(w->task_fd, iov, gather(w, t, iov));
    if (wrote == -EAGAIN)
      return;
    if (wrote < 0) {
      /* Cannot happen on a pipe we also read; its EOF on results will
       * settle the worker's tasks. */
      w->tx = NULL;
      return;
    }
    tx_advance(w, (size_t)wrote);
  }
}

static int fork_send(void *tp, int idx, mp__task *t) {
  tp_fork *f = tp;
  fw *w = &f->w[idx];
  t->tp_off = 0;
  t->tp_divert = 0;
  tx_prepare(w, t);
  mp__list_push(&w->tasks, &t->tp_link);
  if (!w->tx)
    w->tx = t; /* written by the next wait, with whatever else is queued */
  return 0;
}

static int fork_cancel(void *tp, int idx, uint64_t id) {
  tp_fork *f = tp;
  fw *w = &f->w[idx];
  if (w->dead)
    return 0; /* nothing is written to it again */
  int unsent = 0;
  MP__LIST_EACH(n, nx, &w->tasks) {
    mp__task *t = task_of(n);
    if (t == w->tx)
      unsent = 1;
    if (t->id != id)
      continue;
    if (!unsent)
      return 0; /* wholly written: its bytes are in the pipe */
    if (t == w->tx && (t->tp_off > 0 || t->tp_divert)) {
      /* Half written (or announced on the channel): the worker waits for
       * the rest of the frame. */
      char *copy = malloc(t->in_len ? t->in_len : 1);
      if (!copy)
        return -ENOMEM;
      memcpy(copy, t->in, t->in_len);
      t->tp_copy = copy;
      t->in = copy;
      return 0;
    }
    mp__task *next = fw_next(w, t);
    if (t == w->tx)
      w->tx = next;
    mp__list_remove(n);
    /* Its context may have been the one the tasks after it rely on. */
    for (mp__task *u = next; u; u = fw_next(w, u))
      if (u->ctx_id && !u->tp_ctx && u->tp_off == 0) {
        u->tp_ctx = 1;
        mp__frame_init((mp__frame_hdr *)(void *)(u->tp_head + HEAD_CTX),
                       MP__FR_CTX, u->ctx_id, (uint32_t)u->ctx_len);
      }
    w->ctx_sent = 0;
    return 1;
  }
  return 0;
}

/* Kill w once. Signalled through its pidfd where there is one. */
static void fw_kill(tp_fork *f, fw *w, int drain) {
  if (w->dead)
    return;
  f->sp_ops->signal(f->sp, w->pid, w->pidfd, SIGKILL);
  w->dead = 1;
  w->drain = drain;
}

static void fork_kill(void *tp, int idx, int drain) {
  tp_fork *f = tp;
  fw_kill(f, &f->w[idx], drain);
}

static void fork_retire(void *tp, int idx) {
  tp_fork *f = tp;
  fw *w = &f->w[idx];
  if (w->dead || w->task_fd < 0)
    return;
  /* A STOP frame, then the pipe closed: a child the application forked
   * without exec may hold the task pipe open, so EOF alone might never
   * come. The worker holds no task, so its pipe is empty and the frame
   * fits. */
  mp__frame_hdr stop;
  mp__frame_init(&stop, MP__FR_STOP, 0, 0);
  struct iovec iov = {&stop, sizeof stop};
  if (w->chan.map) {
    /* The worker sleeps on its futex, not on the pipe: the frame goes in
     * the ring (empty too), and it is woken. */
    if (mp__chan_put(&w->chan, &iov, 1) <= 0) {
      fw_kill(f, w, 0); /* it scribbled on its ring: end it */
      return;
    }
    mp__chan_wake_data(&w->chan);
  } else {
    (void)mp__writev_some(w->task_fd, &iov, 1);
  }
  mp__fd_drop(&w->task_fd);
}

static int fork_running(void *tp, int idx, uint64_t *task, uint32_t *item,
                        int64_t *since) {
  tp_fork *f = tp;
  const mp__slot *s = &f->slots[idx];
  uint64_t t1 = atomic_load_explicit(&s->task_id, memory_order_acquire);
  uint32_t i1 = atomic_load_explicit(&s->item, memory_order_acquire);
  *since = atomic_load_explicit(&s->start_ns, memory_order_relaxed);
  uint64_t t2 = atomic_load_explicit(&s->task_id, memory_order_acquire);
  uint32_t i2 = atomic_load_explicit(&s->item, memory_order_acquire);
  if (!t1 || t1 != t2 || i1 != i2)
    return 0;
  *task = t1;
  *item = i1;
  return 1;
}

static int fork_ready(void *tp, int idx) {
  tp_fork *f = tp;
  return (int)atomic_load_explicit(&f->slots[idx].ready, memory_order_acquire);
}

/* A worker known to be gone (its death seen, or its pidfd readable: it
 * exited and waits to be buried) shows as 0: its pid may not be its own
 * much longer. */
static long fork_ident(void *tp, int idx) {
  tp_fork *f = tp;
  fw *w = &f->w[idx];
  if (w->dead)
    return 0;
  if (w->pidfd >= 0) {
    struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0)
      return 0;
  } else if (f->sp_ops == &mp__spawn_fork) {
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        si.si_pid == w->pid)
      return 0;
  }
  return w->pid;
}

/* w broke the protocol (why: MP__LOST_PROTO) or its result cannot be
 * received (MP__LOST_NOMEM): kill it, noting what it runs now. */
static void fw_fail(tp_fork *f, int idx, int why) {
  fw *w = &f->w[idx];
  int64_t since;
  if (!fork_running(f, idx, &w->why_task, &w->why_item, &since)) {
    /* Nothing runs: what it ran is among the tasks it was sent, never one
     * still waiting here to be written. Name the last one sent (the
     * suspects are those up to it), or none. */
    w->why_task = 0;
    for (mp__list *n = w->tasks.next; n != &w->tasks; n = n->next) {
      mp__task *t = task_of(n);
      if (t == w->tx)
        break;
      w->why_task = t->id;
      w->why_item = t->count ? t->count - 1 : 0;
    }
  }
  w->why = why;
  fw_kill(f, w, 0);
}

/* A header from w must answer the oldest task it holds, wholly sent, with
 * the right type and (for a map) the exact length. Checked as soon as the
 * header is in, so a worker that sends a bogus header and stops is caught
 * at once. Returns 0 or MP_EPROTO. */
static int fw_check_hdr(fw *w, const mp__frame_hdr *h) {
  mp__list *n = mp__list_first(&w->tasks);
  const mp__task *t = n ? task_of(n) : NULL;
  if (!t || t == w->tx || h->id != t->id)
    return MP_EPROTO;
  int type = (int)(h->magic_type & ~MP__FRAME_MAGIC_MASK);
  if (type == MP__FR_TASK_FAIL)
    return t->ref && h->len == sizeof(mp__apply_res) ? 0 : MP_EPROTO;
  if (t->kind == MP__TASK_MAP)
    return type == MP__FR_MAP_RES &&
                   mp__map_res_check(h->len, t->count, t->out_size) >= 0
               ? 0
               : MP_EPROTO;
  if (t->kind == MP__TASK_BYTES)
    return type == MP__FR_BYTES_RES ? 0 : MP_EPROTO;
  return type == MP__FR_APPLY_RES ? 0 : MP_EPROTO;
}

/* Largest frame w may send for the oldest task it holds. */
static uint32_t fw_rx_max(const tp_fork *f, fw *w) {
  mp__list *n = mp__list_first(&w->tasks);
  if (!n)
    return 0;
  const mp__task *t = task_of(n);
  if (t->kind == MP__TASK_APPLY)
    return (uint32_t)(sizeof(mp__apply_res) + f->max_res);
  if (t->kind == MP__TASK_BYTES) {
    uint64_t max = (uint64_t)t->count *
                   (sizeof(mp__item_res) + mp__pad8(f->max_res));
    return max > MP__FRAME_MAX ? (uint32_t)MP__FRAME_MAX : (uint32_t)max;
  }
  size_t max = (size_t)t->count * (sizeof(int32_t) + t->out_size);
  /* A task sent by reference may come back as a task failure. */
  if (t->ref && max < sizeof(mp__apply_res))
    max = sizeof(mp__apply_res);
  return (uint32_t)max;
}

/* Hand every complete frame buffered from w to the core. Returns 0, or -1
 * when w broke the protocol or memory ran out (it is then killed). */
static int fw_parse(tp_fork *f, int idx) {
  fw *w = &f->w[idx];
  size_t off = 0;
  int rc = 0;
  for (;;) {
    mp__frame_hdr h;
    size_t need;
    int r = mp__frame_next(w->rbuf + off, w->rlen - off, fw_rx_max(f, w), &h,
                           &need);
    if (r < 0 || (need && fw_check_hdr(w, &h) < 0)) {
      rc = MP__LOST_PROTO;
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
          rc = MP__LOST_NOMEM;
          break;
        }
        w->rbuf = nb;
        w->rcap = need;
      }
      break;
    }
    /* The task leaves our list first: the core frees it. */
    mp__list_remove(mp__list_first(&w->tasks));
    if (w->careful)
      w->careful--;
    const char *payload = w->rbuf + off + sizeof h;
    int code;
    if ((h.magic_type & ~MP__FRAME_MAGIC_MASK) == MP__FR_TASK_FAIL
            ? mp__task_fail_check(payload, h.len, &code) < 0 ||
                  mp__core_failed(f->core, idx, h.id, code, 0) < 0
            : mp__core_result(f->core, idx, h.id, payload, h.len) < 0) {
      rc = MP__LOST_PROTO;
      break;
    }
    off += need;
  }
  if (off) {
    memmove(w->rbuf, w->rbuf + off, w->rlen - off);
    w->rlen -= off;
  }
  if (rc) {
    fw_fail(f, idx, rc);
    return -1;
  }
  return 0;
}

/* shm: read the wake-up bytes on w's result pipe. On EOF (the worker
 * ended) what it left in its ring is read first, then it is dead; any byte
 * but the wake-up byte, or more of them than the sleeps we announced to
 * it, is a protocol error of what it runs now (see MP__CHAN_JUNK). */
static void fw_read(tp_fork *f, int idx);
static void fw_read_wake(tp_fork *f, int idx) {
  fw *w = &f->w[idx];
  char b[64];
  ssize_t n = mp__read_some(w->res_fd, b, sizeof b);
  if (n == -EAGAIN)
    return;
  if (n <= 0) {
    fw_read(f, idx);
    w->dead = 1;
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (b[i] != (char)MP__CHAN_WAKE || !w->wakes_owed) {
      fw_fail(f, idx, MP__LOST_PROTO);
      return;
    }
    w->wakes_owed--;
  }
}

/* Drain w's results: its result pipe (pipes), its ring (shm). Marks it dead
 * on EOF, a bad frame or no memory. */
static void fw_read(tp_fork *f, int idx) {
  fw *w = &f->w[idx];
  int got_any = 0;
  for (;;) {
    if (w->rcap - w->rlen < RX_MIN / 4) {
      size_t cap = w->rcap ? w->rcap * 2 : RX_MIN;
      char *nb = realloc(w->rbuf, cap);
      if (!nb) {
        fw_fail(f, idx, MP__LOST_NOMEM);
        return;
      }
      w->rbuf = nb;
      w->rcap = cap;
    }
    size_t room = w->rcap - w->rlen;
    if (w->chan.map) {
      ssize_t n = mp__chan_get(&w->chan, w->rbuf + w->rlen, room);
      if (n < 0) {
        fw_fail(f, idx, MP__LOST_PROTO);
        return;
      }
      if (n == 0)
        break;
      got_any = 1;
      w->rlen += (size_t)n;
      if (fw_parse(f, idx) < 0)
        return;
      continue;
    }
    ssize_t n = mp__read_some(w->res_fd, w->rbuf + w->rlen, room);
    if (n == -EAGAIN)
      return;
    if (n <= 0) {
      /* EOF: the worker exited or died. A partial frame counts as nothing:
       * its task is settled when the worker is buried. */
      w->dead = 1;
      return;
    }
    w->rlen += (size_t)n;
    if (fw_parse(f, idx) < 0)
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
  /* shm: the ring drained. */
  if (w->rlen == 0 && w->rcap > 4 * (size_t)MP__RING_BYTES) {
    free(w->rbuf);
    w->rbuf = NULL;
    w->rcap = 0;
  }
  if (got_any)
    mp__chan_wake_room(&w->chan);
}

/* w is dead (EOF) or killed: reap it and report it lost. */
static void fw_bury(tp_fork *f, int idx) {
  fw *w = &f->w[idx];
  const mp__slot *slot = &f->slots[idx];
  /* Results it sent before we killed it for a timeout still count. */
  if (w->drain && !w->why && (w->res_fd >= 0 || w->chan.map))
    fw_read(f, idx);
  /* EOF can also come from a live worker whose task closed its fds or
   * exec'd: it is useless now. A worker already dead keeps its own status;
   * one reaped by the kernel (SIGCHLD ignored) is not signalled. */
  f->sp_ops->signal(f->sp, w->pid, w->pidfd, SIGKILL);
  mp__loss loss = {.why = w->why ? w->why : MP__LOST_EXIT};
  loss.status_known = f->sp_ops->reap(f->sp, w->pid, &loss.detail);
  loss.init_done = fork_ready(f, idx);
  if (w->why) {
    loss.task = w->why_task;
    loss.item = w->why_item;
  } else {
    loss.task = atomic_load_explicit(&slot->task_id, memory_order_acquire);
    loss.item = atomic_load_explicit(&slot->item, memory_order_relaxed);
  }
  /* A protocol breaker's suspects go one at a time, to any worker. */
  unsigned careful = 0;
  if (w->why == MP__LOST_PROTO)
    MP__LIST_EACH(n, nx, &w->tasks)
      careful += careful < CAREFUL_MAX ? task_of(n)->count : 0;
  careful = careful < CAREFUL_MAX ? careful : CAREFUL_MAX;
  fw_close_fds(w);
  free(w->rbuf);
  fw_clear(w); /* its tasks are the core's to settle */
  for (int i = 0; i < f->nproc; i++)
    if (f->w[i].careful < careful)
      f->w[i].careful = careful;
  mp__core_lost(f->core, idx, &loss);
}

static void fw_bury_dead(tp_fork *f) {
  for (int i = 0; i < f->nproc; i++)
    if (f->w[i].pid && f->w[i].dead)
      fw_bury(f, i);
}

/*
 * The fds a wait polls, into out[0..max) (map[k], when map is not NULL:
 * 2 * worker, + 1 for a task pipe): each worker's result pipe (its EOF is
 * how a death is seen; under shm it also brings wake-up bytes) and its task
 * pipe while a task goes there (under shm, only a diverted one). Returns
 * how many there are, which may exceed max. Lowers *due (when not NULL) to
 * 0 for a worker that needs a wait at once: dead and not yet buried, or
 * with something in its ring.
 */
static int shm_due(const fw *w);
static int fw_pollset(tp_fork *f, struct pollfd *out, int *map, int max,
                      int64_t *due) {
  int n = 0;
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    if (!w->pid)
      continue;
    if (due && (w->dead || (f->shm && shm_due(w))))
      *due = 0;
    if (n < max) {
      out[n] = (struct pollfd){.fd = w->res_fd, .events = POLLIN};
      if (map)
        map[n] = 2 * i;
    }
    n++;
    if (fw_sendable(w) && w->task_fd >= 0 && (!f->shm || w->tx->tp_divert)) {
      if (n < max) {
        out[n] = (struct pollfd){.fd = w->task_fd, .events = POLLOUT};
        if (map)
          map[n] = 2 * i + 1;
      }
      n++;
    }
  }
  return n;
}

/* ---- shm: the wait ---- */

/* A shm wait sleeps in poll() only when nothing is ready; while results
 * keep coming it still polls the pipes this often (ns), so a death (EOF)
 * is seen within about this long even by a parent that never sleeps. */
enum { SHM_POLL_EVERY = 1000000 };

/* While a worker holds work, the parent's poll() lasts at most this long
 * (ns) before it looks at the rings again. Its wake-up is the worker's to
 * send, decided by words the worker can write (its task may store over
 * the parent's sleep word): a wake-up lost so costs this much latency,
 * never a hang. An idle pool sleeps unbounded: nothing can be lost. */
#define SHM_LOOK_EVERY 100000000

static int fw_live(const fw *w) { return w->pid && !w->dead; }

/* w's task waits for room in its ring (not for its pipe). */
static int fw_wants_room(const fw *w) {
  return fw_sendable(w) && !w->tx->tp_divert;
}

/* Whether w has something for us: results, or room we wait for. */
static int shm_due(const fw *w) {
  return mp__chan_readable(&w->chan) ||
         (fw_wants_room(w) && mp__chan_writable(&w->chan));
}

/* Move what the rings hold now. Returns whether anything was due. */
static int shm_scan(tp_fork *f) {
  int any = 0;
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    if (!fw_live(w) || !shm_due(w))
      continue;
    any = 1;
    if (mp__chan_readable(&w->chan))
      fw_read(f, i);
    if (fw_live(w) && w->tx)
      fw_write_shm(f, i);
  }
  return any;
}

/*
 * Spin on the rings until something is due, while spinning pays: a worker
 * that holds tasks is awake on another CPU than ours (its answer comes
 * without a wake-up; on our CPU it could not run while we spin), the awake
 * workers leave a CPU free for us (else we would steal a worker's), and
 * the budget (which adapts: see mp__spin_learn) lasts. Returns whether
 * something became due (then moved).
 */
static int shm_spin(tp_fork *f, int cpu, int64_t deadline) {
  int64_t budget = mp__spin_budget(&f->spin);
  if (budget <= 0)
    return 0;
  int awake = 0, producer = 0;
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    if (!fw_live(w))
      continue;
    if (mp__chan_peer_asleep(&w->chan))
      continue;
    awake++;
    /* A worker that has not said where it runs (just forked: a child
     * starts on its parent's CPU) may be on ours. */
    int wcpu = mp__chan_peer_cpu(&w->chan);
    if (!mp__list_empty(&w->tasks) && wcpu >= 0 && wcpu != cpu)
      producer = 1;
  }
  if (!producer || awake >= f->spin.ncpu)
    return 0;
  int64_t t0 = mp__now_ns(), end = t0 + budget;
  if (end > deadline)
    end = deadline;
  for (unsigned k = 1;; k++) {
    mp__cpu_relax();
    int working = 0;
    for (int i = 0; i < f->nproc; i++) {
      fw *w = &f->w[i];
      if (!fw_live(w))
        continue;
      if (shm_due(w)) {
        mp__spin_learn(&f->spin, mp__now_ns() - t0);
        return shm_scan(f);
      }
      working |= !mp__list_empty(&w->tasks) && !mp__chan_peer_asleep(&w->chan);
    }
    /* Out of budget, or every worker that owes us something went to
     * sleep or is leaving (maxtasksperchild): its answer needs a poll. */
    if (!working || (k % 32 == 0 && mp__now_ns() >= end))
      break;
  }
  mp__spin_learn(&f->spin, -1);
  return 0;
}

/* was: what our sleep word held when we replaced it; while our sleep was
 * announced, 0 there means w took the announcement and owes one wake-up
 * byte. */
static void fw_took(fw *w, uint32_t was) {
  if (w->announced && was == 0 && w->wakes_owed < UINT_MAX)
    w->wakes_owed++;
}

/* Announce to every live worker that we sleep (and for what). */
static void shm_sleep_begin(tp_fork *f) {
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    if (!fw_live(w))
      continue;
    uint32_t was = mp__chan_sleep_begin(
        &w->chan, MP__SLEEP_DATA | (fw_wants_room(w) ? MP__SLEEP_ROOM : 0));
    fw_took(w, was);
    w->announced = 1;
  }
}

static void shm_sleep_end(tp_fork *f) {
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    if (!w->chan.map)
      continue;
    if (w->announced)
      fw_took(w, mp__chan_sleep_take(&w->chan));
    else
      mp__chan_sleep_end(&w->chan);
    w->announced = 0;
  }
}

/* deadline, lowered to SHM_LOOK_EVERY from now while a worker holds work
 * (see SHM_LOOK_EVERY). */
static int64_t shm_bound(const tp_fork *f, int64_t now, int64_t deadline) {
  if (deadline - now <= SHM_LOOK_EVERY)
    return deadline;
  for (int i = 0; i < f->nproc; i++)
    if (fw_live(&f->w[i]) && !mp__list_empty(&f->w[i].tasks))
      return now + SHM_LOOK_EVERY;
  return deadline;
}

/* Every SHM_LOOK_EVERY, store our head again in the ring of each worker
 * that holds work: one may have stored an older head over ours (no index
 * out of bounds, so no protocol error to see) and wait for room to write
 * its result, which our reading would never free: it would hold its work
 * forever. */
static void shm_restate(tp_fork *f) {
  int64_t now = f->polled_ns;
  if (now - f->restated_ns < SHM_LOOK_EVERY)
    return;
  f->restated_ns = now;
  for (int i = 0; i < f->nproc; i++)
    if (fw_live(&f->w[i]) && !mp__list_empty(&f->w[i].tasks))
      mp__chan_restate(&f->w[i].chan);
}

static int shm_wait(tp_fork *f, int64_t deadline) {
  fw_bury_dead(f);
  /* Where we run, for the workers' spin policy and ours. */
  int cpu = sched_getcpu();
  for (int i = 0; i < f->nproc; i++)
    if (f->w[i].chan.map)
      mp__chan_set_cpu(&f->w[i].chan, cpu);
  for (int i = 0; i < f->nproc; i++)
    if (fw_live(&f->w[i]) && f->w[i].tx)
      fw_write_shm(f, i);
  int got = shm_scan(f);
  int64_t now = mp__now_ns();
  if (!got && deadline > now)
    got = shm_spin(f, cpu, deadline);
  if (got) {
    if (now - f->polled_ns < SHM_POLL_EVERY) {
      fw_bury_dead(f);
      return 0;
    }
    deadline = 0; /* look at the pipes, without sleeping */
  }
  unsigned n = (unsigned)fw_pollset(f, f->pfd, f->pfd_map, 2 * f->nproc,
                                    NULL);
  if (deadline > now) {
    deadline = shm_bound(f, now, deadline);
    shm_sleep_begin(f);
    for (int i = 0; i < f->nproc; i++)
      if (fw_live(&f->w[i]) && shm_due(&f->w[i]))
        deadline = 0; /* it came as we announced: no sleep */
  }
  int rc = n ? mp__poll(f->pfd, n, deadline) : 0;
  f->polled_ns = mp__now_ns();
  shm_sleep_end(f);
  for (unsigned k = 0; rc > 0 && k < n; k++) {
    int i = f->pfd_map[k] / 2;
    if (!f->pfd[k].revents || !fw_live(&f->w[i]))
      continue;
    if (f->pfd_map[k] % 2 == 0)
      fw_read_wake(f, i);
    else
      fw_write_shm(f, i);
  }
  (void)shm_scan(f);
  shm_restate(f);
  fw_bury_dead(f);
  return rc < 0 ? rc : 0;
}

/*
 * The wait: each worker's result pipe (EOF there is how a worker's death is
 * seen: see mp__worker_main for children its tasks fork) and its task pipe
 * while a task is being written. No timer unless a deadline is due: the
 * round trip of a tiny task is mostly this wait, and every fd or timer
 * added to it shows there.
 */
static int fork_wait(void *tp, int64_t deadline) {
  tp_fork *f = tp;
  if (f->shm)
    return shm_wait(f, deadline);
  fw_bury_dead(f);
  /* What the core queued since the last wait goes now, each worker's in
   * one write: a deep queue of tiny tasks costs one system call. */
  for (int i = 0; i < f->nproc; i++)
    if (f->w[i].tx)
      fw_write(&f->w[i]);
  struct pollfd *pfd = f->pfd;
  int *map = f->pfd_map;
  unsigned n = (unsigned)fw_pollset(f, pfd, map, 2 * f->nproc, NULL);
  int rc = n ? mp__poll(pfd, n, deadline) : 0;
  for (unsigned k = 0; rc > 0 && k < n; k++) {
    if (!pfd[k].revents)
      continue;
    fw *w = &f->w[map[k] / 2];
    if (w->dead)
      continue;
    if (map[k] % 2 == 0)
      fw_read(f, map[k] / 2);
    else
      fw_write(w);
  }
  fw_bury_dead(f);
  return rc < 0 ? rc : 0;
}

/* The fds fork_wait would poll now. Under shm the sleep is announced
 * first, so that a result wakes the caller's poll (the wait(tp, 0) after
 * it takes the announcement back), and *due is bounded as a wait's sleep
 * is (shm_bound). */
static int fork_pollfds(void *tp, struct pollfd *out, int max,
                        int64_t *due) {
  tp_fork *f = tp;
  if (f->shm) {
    shm_sleep_begin(f);
    *due = shm_bound(f, mp__now_ns(), *due);
  }
  return fw_pollset(f, out, NULL, max, due);
}

static void fork_destroy(void *tp) {
  tp_fork *f = tp;
  for (int i = 0; i < f->nproc; i++) {
    fw *w = &f->w[i];
    mp__chan_close(&w->chan);
    mp__fd_drop(&w->chan_fd);
    if (!w->pid)
      continue;
    f->sp_ops->signal(f->sp, w->pid, w->pidfd, SIGKILL);
    int code;
    (void)f->sp_ops->reap(f->sp, w->pid, &code);
    fw_close_fds(w);
    free(w->rbuf);
  }
  f->sp_ops->destroy(f->sp);
  free(f->w);
  free(f->pfd);
  free(f->pfd_map);
  free(f);
}

/* The transport's operations, with the spawner its create picks and
 * whether functions cross as references (they must when the workers are
 * not forked copies of the caller). */
#define PIPES_OPS(create_fn, by_ref)                                           \
  {                                                                            \
    .by_reference = (by_ref), .create = (create_fn), .start = fork_start,      \
    .send = fork_send, .cancel = fork_cancel, .kill = fork_kill,               \
    .retire = fork_retire, .wait = fork_wait, .running = fork_running,         \
    .ready = fork_ready, .ident = fork_ident, .destroy = fork_destroy,         \
    .pollfds = fork_pollfds,                                                   \
  }

const mp__tp_ops mp__tp_fork = PIPES_OPS(fork_create, 0);
const mp__tp_ops mp__tp_forkserver = PIPES_OPS(server_create, 1);
const mp__tp_ops mp__tp_fork_shm = PIPES_OPS(fork_shm_create, 0);
const mp__tp_ops mp__tp_forkserver_shm = PIPES_OPS(server_shm_create, 1);
