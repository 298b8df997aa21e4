/*
 * tp_mpi.c: rank 0's side of the MPI transport, and mp_mpi_pool_create.
 *
 * Each worker rank is one worker slot of the core. Starting a slot opens
 * a local pool of a new generation on its rank; tasks go as one message
 * each (input copied, so a cancelled task never reads the caller's input
 * again); results come back in the order tasks were sent, each item with
 * its whole outcome as the rank's local pool reported it (item_status), so
 * a crash or timeout fails one item and the core has nothing to blame: a
 * slot is lost only when rank 0 ends it (retire: CLOSE, then DONE; kill:
 * TERM), its rank gives up on the pool (an unsolicited DONE), or its rank
 * goes silent. Timeouts, maxtasksperchild and the initializer live in the
 * ranks' local pools. The core's wait() is a poll of MPI: Iprobe and
 * Test, with the adaptive naps of mpi.c until the deadline.
 *
 * Silence. A slot owes an answer while tasks sent to it have no result
 * yet, or while it retires (DONE due). Any message from its rank counts
 * as word from it; a busy rank sends ALIVE every quarter of the limit. A
 * slot that owes and has not been heard from for silent_ns, judged only
 * once everything waiting has been read, is lost for good: the core is
 * told it ended with no status and nothing known about what it ran (so
 * its chunks run again, the head one charged a death), its rank is marked
 * in mpi__st.lost, and from then on its messages are dropped unread and
 * its slot never starts again (-EHOSTDOWN). Time rank 0 spends outside
 * wait() is not counted: a rank cannot answer a rank 0 that is not
 * listening, and its heartbeats of that time may not all have landed.
 */
#include "mpi_internal.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

enum slot_state {
  S_EMPTY, /* no local pool on its rank (or one being ended) */
  S_RUNNING,
  S_RETIRING, /* CLOSE sent: DONE ends it */
  S_DEAD,     /* its rank went silent: never written to or heard again */
};

typedef struct slot {
  enum slot_state state;
  uint64_t gen; /* the current generation, while not S_EMPTY */
  int ending;   /* TERM or CLOSE sent, DONE not yet back */
  int opened;   /* OPENED came back (code in open_rc) */
  int open_rc, open_procs;
  int lost; /* a loss to report in wait() */
  mp__loss loss;
  int rank;      /* its MPI rank */
  int inflight;  /* tasks sent to this generation, not yet answered */
  int64_t heard; /* when it last said something (or began to owe) */
} slot;

typedef struct tp_mpi {
  mp_pool *core;
  int nproc;         /* worker ranks, those not lost before the pool */
  int *slot_of;      /* each rank's slot, -1 for none (rank 0, lost) */
  int64_t listened;  /* when wait() last read MPI (0: not yet) */
  mp_pool_opts user; /* as the caller gave them: for the local pools */
  size_t initarg_size;
  slot *s;
  mpi_outbox out;
} tp_mpi;

typedef struct tp_arg {
  const mp_pool_opts *user;
  size_t initarg_size;
  mp__fnref init;
} tp_arg;

static int mpi_create(const mp__tp_cfg *cfg, void *arg, void **out) {
  const tp_arg *a = arg;
  tp_mpi *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->core = cfg->core;
  t->nproc = cfg->nproc;
  t->user = *a->user;
  t->initarg_size = a->initarg_size;
  t->s = calloc((size_t)t->nproc, sizeof *t->s);
  t->slot_of = malloc((size_t)mpi__st.size * sizeof *t->slot_of);
  if (!t->s || !t->slot_of) {
    free(t->s);
    free(t->slot_of);
    free(t);
    return -ENOMEM;
  }
  int w = 0;
  for (int r = 0; r < mpi__st.size; r++) {
    t->slot_of[r] = r > 0 && !mpi__st.lost[r] && w < t->nproc ? w : -1;
    if (t->slot_of[r] >= 0)
      t->s[w++].rank = r;
  }
  assert(w == t->nproc);
  *out = t;
  return 0;
}

/* The heartbeat period a busy rank keeps: a quarter of the limit. */
static uint32_t mpi_beat_ms(void) {
  int64_t ms = mpi__st.silent_ns / 4 / 1000000;
  if (!mpi__st.silent_ns)
    return 0;
  return ms < 1 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static int mpi_start(void *tp, int w) {
  tp_mpi *t = tp;
  slot *s = &t->s[w];
  if (s->state == S_DEAD)
    return -EHOSTDOWN;
  const mp_pool_opts *u = &t->user;
  size_t arglen = u->initializer ? t->initarg_size : 0;
  size_t len = sizeof(msg_hdr) + sizeof(msg_open) + arglen;
  char *m = mpi__msg_alloc(len);
  if (!m)
    return -ENOMEM;
  uint64_t gen = ++mpi__st.gen;
  msg_hdr h = {MPI__MAGIC, M_OPEN, gen, 0, 0, 0};
  msg_open o = {.processes = u->processes,
                .maxtasks = u->maxtasksperchild,
                .task_timeout = u->task_timeout,
                .max_res = u->max_result_bytes,
                .initarg_len = arglen,
                .has_init = u->initializer != NULL,
                .beat_ms = mpi_beat_ms()};
  if (u->initializer &&
      mpi__ext->fnref_make((mp__fn)u->initializer, &o.init) < 0) {
    free((mpi_out *)(void *)m - 1);
    return MP_EINVAL;
  }
  memcpy(m, &h, sizeof h);
  memcpy(m + sizeof h, &o, sizeof o);
  if (arglen)
    memcpy(m + sizeof h + sizeof o, u->initarg, arglen);
  int rc = mpi__send(&t->out, m, len, s->rank, TAG_DOWN);
  if (rc < 0)
    return rc;
  s->state = S_RUNNING;
  s->gen = gen;
  s->opened = s->lost = 0;
  s->inflight = 0;
  return 0;
}

static int mpi_send(void *tp, int w, mp__task *task) {
  tp_mpi *t = tp;
  if (!task->ref)
    return MP_EINVAL; /* by_reference: the core always makes one */
  size_t len = sizeof(msg_hdr) + sizeof(msg_task) + task->in_len;
  char *m = mpi__msg_alloc(len);
  if (!m)
    return -ENOMEM;
  msg_hdr h = {MPI__MAGIC, M_TASK, t->s[w].gen, task->id, 0, 0};
  msg_task mt = {.kind = (uint32_t)task->kind,
                 .in_size = task->in_size,
                 .out_size = task->out_size,
                 .count = task->count,
                 .fn = *task->ref};
  if (task->kind == MP__TASK_APPLY)
    mt.count = mt.in_size = mt.out_size = 0;
  memcpy(m, &h, sizeof h);
  memcpy(m + sizeof h, &mt, sizeof mt);
  if (task->in_len)
    memcpy(m + sizeof h + sizeof mt, task->in, task->in_len);
  slot *s = &t->s[w];
  int rc = mpi__send(&t->out, m, len, s->rank, TAG_DOWN);
  if (rc < 0)
    return rc;
  if (s->inflight++ == 0 && s->state == S_RUNNING)
    s->heard = mp__now_ns(); /* it owes from now */
  return 0;
}

/* The input was copied at send: the caller's is never read again. */
static int mpi_cancel(void *tp, int w, uint64_t id) {
  (void)tp, (void)w, (void)id;
  return 0;
}

/* Slot w's pool ends: its loss is reported at the next wait(). */
static void slot_lose(slot *s, int why, int detail) {
  s->state = S_EMPTY;
  s->inflight = 0;
  s->lost = 1;
  s->loss = (mp__loss){
      .why = why, .detail = detail, .status_known = 1, .init_done = 1};
}

static void mpi_kill(void *tp, int w, int drain) {
  (void)drain; /* results come whole or not at all: none is half read */
  tp_mpi *t = tp;
  slot *s = &t->s[w];
  if (s->state == S_EMPTY || s->state == S_DEAD)
    return;
  if (mpi__send_hdr(&t->out, s->rank, TAG_DOWN, M_TERM, s->gen, 0, 0, 0) == 0)
    s->ending++;
  slot_lose(s, MP__LOST_EXIT, -SIGKILL);
}

static void mpi_retire(void *tp, int w) {
  tp_mpi *t = tp;
  slot *s = &t->s[w];
  if (s->state != S_RUNNING)
    return;
  if (mpi__send_hdr(&t->out, s->rank, TAG_DOWN, M_CLOSE, s->gen, 0, 0, 0) < 0) {
    slot_lose(s, MP__LOST_EXIT, 0);
    return;
  }
  s->ending++;
  s->state = S_RETIRING;
  if (!s->inflight)
    s->heard = mp__now_ns(); /* it owes its DONE from now */
}

/* One message from rank `from`. Returns 1 when the core heard of it. */
static int mpi_handle(tp_mpi *t, int from, char *m, size_t len) {
  msg_hdr h;
  memcpy(&h, m, sizeof h);
  int w = from >= 0 && from < mpi__st.size ? t->slot_of[from] : -1;
  if (w < 0)
    return 0; /* rank 0, or a rank lost before this pool */
  slot *s = &t->s[w];
  if (s->state == S_DEAD)
    return 0; /* lost: its chunks went elsewhere */
  s->heard = mp__now_ns();
  switch (h.type) {
  case M_OPENED:
    if (h.gen == s->gen) {
      s->opened = 1;
      s->open_rc = h.code;
      s->open_procs = h.detail;
    }
    return 0;
  case M_DONE:
    if (h.gen == s->gen && s->state == S_RETIRING) {
      s->ending--;
      slot_lose(s, MP__LOST_EXIT, 0);
      return 1;
    }
    if (h.gen == s->gen && s->state == S_RUNNING) {
      /* The rank gave the pool up (no memory, bytes not valid). */
      slot_lose(s, h.code == MP_EPROTO ? MP__LOST_PROTO : MP__LOST_NOMEM, 0);
      return 1;
    }
    if (s->ending > 0)
      s->ending--; /* the answer to a TERM or CLOSE sent before */
    return 0;
  case M_RESULT:
    if (h.gen != s->gen || s->state == S_EMPTY)
      return 0; /* of a pool terminated since */
    if (s->inflight > 0)
      s->inflight--;
    if (mpi__ext->core_result(t->core, w, h.id, m + sizeof h, len - sizeof h) <
        0) {
      mpi_kill(t, w, 0);
      s->loss.why = MP__LOST_PROTO;
      s->loss.detail = 0;
    }
    return 1;
  default:
    return 0; /* STOPPED and HELLO belong to start-up and finalize */
  }
}

/* Report the losses waiting. Returns 1 when there was one. */
static int mpi_report(tp_mpi *t) {
  int any = 0;
  for (int w = 0; w < t->nproc; w++) {
    slot *s = &t->s[w];
    if (!s->lost)
      continue;
    s->lost = 0;
    mp__loss loss = s->loss;
    mpi__ext->core_lost(t->core, w, &loss);
    any = 1;
  }
  return any;
}

/* Receive what is there. Returns 1 when the core heard of something,
 * 0 when nothing came, or an error; *drained: nothing is left waiting. */
static int mpi_pump(tp_mpi *t, int *drained) {
  int heard = 0;
  *drained = 0;
  mpi__outbox_progress(&t->out);
  for (int k = 0; k < 4 * t->nproc + 4; k++) {
    char *m;
    size_t len;
    int from;
    int rc = mpi__recv(MPI_ANY_SOURCE, TAG_UP, &m, &len, &from);
    if (rc == MP_EPROTO)
      continue;
    if (rc < 0)
      return rc == -ENOMEM ? rc : -EIO;
    if (rc == 0) {
      *drained = 1;
      break;
    }
    heard |= mpi_handle(t, from, m, len);
    free(m);
  }
  return heard;
}

/* Slots that owe an answer and were silent past the limit are lost for
 * good. Call once everything waiting has been read. Returns 1 when one
 * was. */
static int mpi_judge(tp_mpi *t, int64_t now) {
  int any = 0;
  for (int w = 0; w < t->nproc && mpi__st.silent_ns; w++) {
    slot *s = &t->s[w];
    int owes =
        (s->state == S_RUNNING && s->inflight > 0) || s->state == S_RETIRING;
    if (!owes || now - s->heard < mpi__st.silent_ns)
      continue;
    /* Ended with no status, running nothing known: chunk_settle runs
     * every chunk again and charges the head one a death. */
    slot_lose(s, MP__LOST_EXIT, 0);
    s->loss.status_known = 0;
    s->state = S_DEAD;
    s->ending = 0; /* no DONE will be waited for */
    mpi__st.lost[s->rank] = 1;
    any = 1;
  }
  return any;
}

/* Rank 0 was away (not in wait()) since t->listened: past a heartbeat
 * period, that time is not held against the ranks (a gap of a few naps
 * is not away: crediting it would stop the clock). */
static void mpi_listen(tp_mpi *t, int64_t now) {
  int64_t away = t->listened ? now - t->listened : 0;
  if (away > mpi__st.silent_ns / 4)
    for (int w = 0; w < t->nproc; w++) {
      slot *s = &t->s[w];
      s->heard = s->heard + away < now ? s->heard + away : now;
    }
}

static int mpi_wait(void *tp, int64_t deadline) {
  tp_mpi *t = tp;
  if (mpi_report(t))
    return 0;
  mpi_backoff b;
  mpi__backoff_reset(&b);
  for (;;) {
    int drained;
    mpi_listen(t, mp__now_ns());
    int rc = mpi_pump(t, &drained);
    int64_t now = mp__now_ns();
    t->listened = now;
    if (rc < 0)
      return rc;
    if (drained && mpi__st.silent_ns)
      mpi_judge(t, now);
    if (mpi_report(t) || rc > 0)
      return 0;
    if (now >= deadline)
      return 0;
    mpi__backoff(&b, deadline);
  }
}

static int mpi_running(void *tp, int w, uint64_t *task, uint32_t *item,
                       int64_t *since) {
  (void)tp, (void)w, (void)task, (void)item, (void)since;
  return 0; /* timeouts are the local pools' */
}

static int mpi_ready(void *tp, int w) {
  (void)tp, (void)w;
  return 1;
}

static long mpi_ident(void *tp, int w) {
  tp_mpi *t = tp;
  slot *s = &t->s[w];
  return s->state != S_EMPTY && s->state != S_DEAD ? (long)mpi__st.pids[s->rank]
                                                   : 0;
}

/* End every rank's pool and wait (up to stop_timeout) until each says it
 * is gone, so no message of this pool is left to reach the next one. */
static void mpi_destroy(void *tp) {
  tp_mpi *t = tp;
  for (int w = 0; w < t->nproc; w++)
    mpi_kill(t, w, 0); /* not the empty and the dead */
  int64_t deadline = mpi__deadline(mpi__st.stop_timeout);
  mpi_backoff b;
  mpi__backoff_reset(&b);
  for (;;) {
    int ending = 0;
    for (int w = 0; w < t->nproc; w++)
      ending += t->s[w].ending > 0;
    if (!ending || mp__now_ns() >= deadline)
      break;
    int got = 0;
    mpi__outbox_progress(&t->out);
    char *m;
    size_t len;
    int from;
    int rc = mpi__recv(MPI_ANY_SOURCE, TAG_UP, &m, &len, &from);
    if (rc < 0 && rc != MP_EPROTO)
      break;
    if (rc == 1) {
      msg_hdr h;
      memcpy(&h, m, sizeof h);
      int w = from >= 0 && from < mpi__st.size ? t->slot_of[from] : -1;
      if (h.type == M_DONE && w >= 0 && t->s[w].ending > 0)
        t->s[w].ending--; /* (never for the dead: their ending is 0) */
      free(m);
      got = 1;
    }
    if (got)
      mpi__backoff_reset(&b);
    else
      mpi__backoff(&b, deadline);
  }
  mpi__outbox_drain(&t->out, deadline);
  free(t->s);
  free(t->slot_of);
  free(t);
  mpi__st.pool_live = 0;
}

const mp__tp_ops mpi__tp_ops = {
    .by_reference = 1,
    .item_status = 1,
    .fixed_calls_only = 1,
    .create = mpi_create,
    .start = mpi_start,
    .send = mpi_send,
    .cancel = mpi_cancel,
    .kill = mpi_kill,
    .retire = mpi_retire,
    .wait = mpi_wait,
    .running = mpi_running,
    .ready = mpi_ready,
    .ident = mpi_ident,
    .destroy = mpi_destroy,
};

/* ---- public ---- */

int mp_mpi_pool_create(mp_pool **out, const mp_pool_opts *opts,
                       const mp_mpi_pool_opts *mopts) {
  if (!mpi__st.inited || mpi__st.rank != 0 || mpi__st.pool_live)
    return MP_ESTATE;
  mp_pool_opts user = opts ? *opts : (mp_pool_opts){0};
  size_t initarg_size = mopts ? mopts->initarg_size : 0;
  if (!out || user.processes < 0 || user.maxtasksperchild < 0 ||
      !(user.task_timeout >= 0) ||
      (initarg_size && (!user.initarg || initarg_size > (size_t)1 << 30)))
    return MP_EINVAL;
  if (user.task_timeout > 1e9)
    user.task_timeout = 0;
  if (user.initializer) {
    mp__fnref ref;
    if (mpi__ext->fnref_make((mp__fn)user.initializer, &ref) < 0)
      return MP_EINVAL;
  }
  /* The core: one worker per rank not lost, no timeouts, no
   * maxtasksperchild and no initializer of its own: those are the local
   * pools'. */
  int live = 0;
  for (int r = 1; r < mpi__st.size; r++)
    live += !mpi__st.lost[r];
  if (!live)
    return MP_MPI_ENOWORKERS;
  mp_pool_opts core = {.processes = live,
                       .max_result_bytes = user.max_result_bytes};
  tp_arg arg = {.user = &user, .initarg_size = initarg_size};
  mp_pool *p = NULL;
  mpi__st.pool_live = 1;
  int rc = mpi__ext->pool_create_with(&p, &core, &mpi__tp_ops, &arg);
  if (rc < 0) {
    mpi__st.pool_live = 0; /* (freed by the core: destroy cleared it) */
    return rc;
  }
  /* Wait until every rank has made its local pool (or failed to). */
  tp_mpi *t = p->tp;
  int64_t deadline = mpi__deadline(mpi__st.start_timeout);
  mpi_backoff b;
  mpi__backoff_reset(&b);
  for (;;) {
    int left = 0;
    rc = 0;
    for (int w = 0; w < t->nproc; w++) {
      if (!t->s[w].opened)
        left++;
      else if (t->s[w].open_rc < 0 && !rc)
        rc = t->s[w].open_rc;
    }
    if (!left || mp__now_ns() >= deadline) {
      if (left && !rc)
        rc = MP_ETIMEDOUT;
      break;
    }
    int drained;
    int got = mpi_pump(t, &drained);
    if (got < 0) {
      rc = got;
      break;
    }
    mpi__backoff(&b, deadline);
  }
  if (rc < 0) {
    mp_pool_free(p);
    return rc;
  }
  *out = p;
  return 0;
}
