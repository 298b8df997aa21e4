/*
 * rank.c: a worker rank serving rank 0. It holds at most one local pool (of
 * the generation rank 0 last opened) and runs each task it is sent as an
 * asynchronous map or apply on it, so that a task that crashes, exits or
 * overruns fails in a worker of that pool, with that pool's codes, and
 * this rank lives on. Results go back in the order the tasks came, as the
 * core expects. One loop polls MPI for messages, the local pool for
 * finished tasks and the sends in flight; with nothing to do it naps.
 * While it holds tasks it is never silent for long: rank 0 takes a rank
 * that owes it answers and says nothing as lost (tp_mpi.c), so when no
 * result has gone for beat_ns it sends ALIVE.
 */
#include "mpi_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct rtask {
  struct rtask *next;
  uint64_t id;
  uint32_t kind, count, out_size;
  mp_result *res; /* NULL: its outcome is known already (fail) */
  int fail;       /* the code every item gets when res is NULL */
  char *msg;      /* the TASK message: its input */
  char *reply;    /* map: the RESULT being filled (outputs first) */
  size_t reply_len;
  mp_status *st; /* map: the items' statuses */
} rtask;

typedef struct rank {
  mpi_outbox out;
  uint64_t gen;  /* of the local pool; 0: none */
  mp_pool *pool; /* NULL with gen set: making it failed (open_err) */
  int open_err;
  int closing;   /* CLOSE came: DONE once every task is answered */
  void *initarg; /* the initializer's copy of its argument */
  rtask *head, **tail;
  int64_t beat_ns; /* heartbeat period while holding tasks; 0: none */
  int64_t said;    /* when this rank last sent rank 0 word of its tasks */
} rank;

static void rtask_free(rtask *t) {
  mp_result_free(t->res);
  free(t->msg);
  if (t->reply)
    free((mpi_out *)(void *)t->reply - 1);
  free(t->st);
  free(t);
}

/* Drop the local pool and every task: nothing more is sent for them. */
static void rank_end_pool(rank *r, int terminate) {
  if (r->pool) {
    if (terminate) {
      mp_pool_terminate(r->pool);
    } else {
      mp_pool_close(r->pool);
      mp_pool_join(r->pool);
    }
  }
  for (rtask *t = r->head, *nx; t; t = nx) {
    nx = t->next;
    rtask_free(t);
  }
  r->head = NULL;
  r->tail = &r->head;
  mp_pool_free(r->pool);
  r->pool = NULL;
  free(r->initarg);
  r->initarg = NULL;
  r->gen = 0;
  r->closing = 0;
}

/* The local pool cannot go on in a way the core can be told item by item
 * (no memory for an answer, a task that is not valid): end it and tell
 * rank 0, which takes this worker as lost and opens a new pool. */
static void rank_lost(rank *r, int code) {
  uint64_t gen = r->gen;
  rank_end_pool(r, 1);
  mpi__send_hdr(&r->out, 0, TAG_UP, M_DONE, gen, 0, code, 0);
}

static void rank_open(rank *r, const msg_hdr *h, const char *m, size_t len) {
  rank_end_pool(r, 1);
  r->gen = h->gen;
  msg_open o;
  int rc = 0;
  if (len < sizeof *h + sizeof o) {
    rc = MP_EPROTO;
    goto done;
  }
  memcpy(&o, m + sizeof *h, sizeof o);
  if (o.initarg_len != len - sizeof *h - sizeof o) {
    rc = MP_EPROTO;
    goto done;
  }
  r->beat_ns = (int64_t)o.beat_ms * 1000000;
  mp_pool_opts po = {.processes = o.processes,
                     .maxtasksperchild = o.maxtasks,
                     .task_timeout = o.task_timeout,
                     .max_result_bytes = (size_t)o.max_res};
  if (o.has_init) {
    mp__fn fn;
    if ((rc = mpi__ext->fnref_resolve(&o.init, &fn)) < 0)
      goto done;
    po.initializer = (void (*)(void *))fn;
    if (o.initarg_len) {
      if (!(r->initarg = malloc(o.initarg_len))) {
        rc = -ENOMEM;
        goto done;
      }
      memcpy(r->initarg, m + sizeof *h + sizeof o, o.initarg_len);
      po.initarg = r->initarg;
    }
  }
  rc = mp_pool_create(&r->pool, &po);
done:
  r->open_err = rc;
  mpi__send_hdr(&r->out, 0, TAG_UP, M_OPENED, h->gen, 0, rc,
                rc == 0 ? mp_pool_processes(r->pool) : 0);
}

/* Start task t on the local pool; on failure every item gets the code. */
static void rank_task_start(rank *r, rtask *t, const msg_task *mt,
                            const char *in, size_t in_len) {
  if (t->kind == MP__TASK_MAP) {
    t->reply_len = sizeof(msg_hdr) +
                   (size_t)t->count * (t->out_size + sizeof(mp__item_st));
    t->reply = mpi__msg_alloc(t->reply_len);
    t->st = calloc(t->count, sizeof *t->st);
    if (!t->reply || !t->st) {
      t->fail = -ENOMEM;
      return;
    }
  }
  if (!r->pool) {
    t->fail = r->open_err ? r->open_err : MP_ECLOSED;
    return;
  }
  mp__fn fn;
  int rc = mpi__ext->fnref_resolve(&mt->fn, &fn);
  if (rc < 0) {
    t->fail = rc; /* MP_ENOFUNC: a library only rank 0 loaded */
    return;
  }
  if (t->kind == MP__TASK_MAP) {
    mp_map_async_opts o = {.map = {.status = t->st}};
    rc =
        mp_pool_map_async(r->pool, (mp_map_fn)fn, in, t->count, mt->in_size,
                          t->reply + sizeof(msg_hdr), t->out_size, &o, &t->res);
  } else {
    rc = mp_pool_apply_async(r->pool, (mp_apply_fn)fn, in, in_len, NULL,
                             &t->res);
  }
  if (rc < 0) {
    t->res = NULL;
    t->fail = rc;
  }
}

static void rank_task(rank *r, const msg_hdr *h, char *m, size_t len) {
  msg_task mt;
  if (h->gen != r->gen || len < sizeof *h + sizeof mt) {
    free(m); /* of a pool that is gone */
    return;
  }
  memcpy(&mt, m + sizeof *h, sizeof mt);
  size_t in_len = len - sizeof *h - sizeof mt;
  if ((mt.kind == MP__TASK_MAP &&
       (mt.count == 0 || mt.in_size == 0 || mt.out_size == 0 ||
        (uint64_t)mt.count * mt.in_size != in_len)) ||
      (mt.kind != MP__TASK_MAP && mt.kind != MP__TASK_APPLY)) {
    free(m);
    rank_lost(r, MP_EPROTO);
    return;
  }
  rtask *t = calloc(1, sizeof *t);
  if (!t) {
    free(m);
    rank_lost(r, -ENOMEM);
    return;
  }
  t->id = h->id;
  t->kind = mt.kind;
  t->msg = m;
  t->count = mt.count;
  t->out_size = mt.out_size;
  if (!t->fail)
    rank_task_start(r, t, &mt, m + sizeof *h + sizeof mt, in_len);
  if (!r->head)
    r->said = mp__now_ns(); /* busy from now: the first beat is due later */
  *r->tail = t;
  r->tail = &t->next;
}

/* Send the result of t, which is complete. */
static int rank_reply(rank *r, rtask *t) {
  char *msg;
  size_t len;
  if (t->kind == MP__TASK_MAP && t->reply) {
    char *sts = t->reply + sizeof(msg_hdr) + (size_t)t->count * t->out_size;
    for (uint32_t i = 0; i < t->count; i++) {
      mp__item_st s = t->res ? (mp__item_st){t->st[i].code, t->st[i].detail}
                             : (mp__item_st){t->fail, 0};
      memcpy(sts + (size_t)i * sizeof s, &s, sizeof s);
    }
    msg = t->reply;
    len = t->reply_len;
    t->reply = NULL;
  } else if (t->kind == MP__TASK_MAP) {
    return -ENOMEM; /* no room for its answer */
  } else {
    const void *data = NULL;
    size_t dlen = 0;
    mp_status s = {t->fail, 0};
    if (t->res)
      mp_result_get(t->res, 0, &data, &dlen, &s);
    if (s.code)
      dlen = 0;
    len = sizeof(msg_hdr) + sizeof(mp__apply_res) + dlen;
    if (!(msg = mpi__msg_alloc(len)))
      return -ENOMEM;
    mp__apply_res ar = {s.code, s.detail, 0};
    memcpy(msg + sizeof(msg_hdr), &ar, sizeof ar);
    if (dlen)
      memcpy(msg + sizeof(msg_hdr) + sizeof ar, data, dlen);
  }
  msg_hdr h = {MPI__MAGIC, M_RESULT, r->gen, t->id, 0, 0};
  memcpy(msg, &h, sizeof h);
  return mpi__send(&r->out, msg, len, 0, TAG_UP);
}

/* Answer the finished tasks at the head of the queue. Returns 1 when one
 * was answered. */
static int rank_answer(rank *r) {
  int any = 0;
  while (r->head) {
    rtask *t = r->head;
    if (t->res && !mp_result_ready(t->res))
      break;
    if (rank_reply(r, t) < 0) {
      rank_lost(r, -ENOMEM);
      return 1;
    }
    r->head = t->next;
    if (!r->head)
      r->tail = &r->head;
    rtask_free(t);
    any = 1;
  }
  if (r->closing && !r->head) {
    uint64_t gen = r->gen;
    rank_end_pool(r, 0);
    mpi__send_hdr(&r->out, 0, TAG_UP, M_DONE, gen, 0, 0, 0);
    any = 1;
  }
  return any;
}

int mpi__serve(void) {
  rank r = {0};
  r.tail = &r.head;
  mpi_backoff b;
  mpi__backoff_reset(&b);
  int rc = 0, stop = 0, stop_code = 0;
  while (!stop) {
    int any = mpi__outbox_progress(&r.out);
    char *m;
    size_t len;
    int from;
    int got = mpi__recv(0, TAG_DOWN, &m, &len, &from);
    if (got < 0 && got != MP_EPROTO) {
      rc = got;
      break;
    }
    if (got == 1) {
      any = 1;
      msg_hdr h;
      memcpy(&h, m, sizeof h);
      switch (h.type) {
      case M_OPEN:
        rank_open(&r, &h, m, len);
        break;
      case M_TASK:
        rank_task(&r, &h, m, len);
        m = NULL; /* kept by the task */
        break;
      case M_TERM:
        if (h.gen == r.gen)
          rank_end_pool(&r, 1);
        mpi__send_hdr(&r.out, 0, TAG_UP, M_DONE, h.gen, 0, 0, 0);
        break;
      case M_CLOSE:
        if (h.gen == r.gen)
          r.closing = 1; /* DONE once its tasks are answered */
        else
          mpi__send_hdr(&r.out, 0, TAG_UP, M_DONE, h.gen, 0, 0, 0);
        break;
      case M_STOP:
        stop = 1;
        stop_code = h.code == MP_MPI_ELOST ? MP_MPI_ELOST : 0;
        break;
      default:
        break;
      }
      free(m);
    }
    int answered = (r.head || r.closing) && rank_answer(&r);
    any |= answered;
    if (r.head && r.beat_ns) {
      /* Busy: a result is word enough; else a heartbeat when one is due.
       * (A clock read per pass; the loop wakes each millisecond.) */
      int64_t now = mp__now_ns();
      if (answered)
        r.said = now;
      else if (now - r.said >= r.beat_ns) {
        mpi__send_hdr(&r.out, 0, TAG_UP, M_ALIVE, r.gen, 0, 0, 0);
        r.said = now;
      }
    }
    if (any)
      mpi__backoff_reset(&b);
    else if (r.head && r.head->res)
      /* Asleep in poll() on the local pool: the result wakes it at once;
       * a message from rank 0 waits a millisecond at most. */
      mp_result_wait(r.head->res, 0.001);
    else
      mpi__backoff(&b, INT64_MAX);
  }
  rank_end_pool(&r, 1);
  if (stop)
    mpi__send_hdr(&r.out, 0, TAG_UP, M_STOPPED, 0, 0, 0, 0);
  mpi__outbox_drain(&r.out, mpi__deadline(mpi__st.stop_timeout));
  return rc < 0 ? rc : stop_code;
}
