/* sched.c: who runs what, and what a lost worker costs. Chunks are cut and
 * handed to workers here; results and losses reported by the transport are
 * settled here: the item a lost worker was running fails, the rest of what
 * it held runs again. */
#include "pool_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

enum { CHUNK_DEATHS_MAX = 3 }; /* workers lost on one chunk, none blamed */

int mp__pool_has_work(const mp_pool *p) {
  if (!mp__list_empty(&p->retry))
    return 1;
  MP__LIST_EACH(n, nx, &p->jobs)
    if (mp__job_has_work(MP__ENTRY(n, job, link)))
      return 1;
  return 0;
}

/* The first job that can hand out a chunk now, or NULL. */
static job *sched_next_job(const mp_pool *p) {
  MP__LIST_EACH(n, nx, &p->jobs) {
    job *j = MP__ENTRY(n, job, link);
    if (mp__job_has_work(j))
      return j;
  }
  return NULL;
}

/* Items the next chunk of j takes: the explicit chunksize, or a guided
 * share of what is left (a quarter of a worker's share: chunks shrink as
 * the input runs out, so the last ones are small and the end balances),
 * within the job's bound and, for an iterator, its window. */
static size_t job_next_count(const mp_pool *p, const job *j) {
  size_t cs = j->chunksize;
  if (!cs && j->src) {
    cs = j->cs_max; /* nothing is known of what is left */
  } else if (!cs) {
    size_t left = j->n - j->next_item;
    size_t div = (size_t)p->nproc * 4;
    cs = left / div + (left % div != 0);
    if (cs > j->cs_max)
      cs = j->cs_max;
    if (!cs)
      cs = 1;
  }
  if (!j->src && cs > j->n - j->next_item)
    cs = j->n - j->next_item;
  if (j->sink != SINK_ARRAY && !mp__pool_is_closed(p) &&
      cs > j->window - (j->next_item - j->returned))
    cs = j->window - (j->next_item - j->returned);
  return cs;
}

/* How many of the next cnt items of bytes job j's array fit its byte
 * bound (at least one). A chunksize given is honoured as far as one frame
 * can carry it: its items up to MP__ARG_MAX bytes, lengths included. */
static size_t bytes_fit(const job *j, size_t cnt) {
  size_t bound = j->chunksize ? MP__ARG_MAX : j->byte_bound;
  size_t bytes = 0, k = 0;
  while (k < cnt) {
    bytes += mp__pad8(j->bin[j->next_item + k].len) +
             (j->chunksize ? sizeof(uint32_t) : 0);
    if (k && bytes > bound)
      break;
    k++;
  }
  return k;
}

/* Whether some worker holds a chunk: its result, or its loss, brings
 * another round. */
static int sched_any_held(const mp_pool *p) {
  for (int i = 0; i < p->nproc; i++)
    if (p->w[i].nq)
      return 1;
  return 0;
}

/* The next chunk to send: retries first, then jobs in submission order.
 * Sets *ended when it ended a job for lack of memory. */
static chunk *sched_next_chunk(mp_pool *p, int *ended) {
  mp__list *n;
  while ((n = mp__list_first(&p->retry))) {
    chunk *c = MP__ENTRY(n, chunk, link);
    mp__list_remove(n);
    if (c->j->state != JOB_DETACHED)
      return c;
    mp__chunk_free(p, c);
  }
  for (;;) {
    job *j = sched_next_job(p);
    if (!j)
      return NULL;
    /* Only a queued job hands out items; it may drain below, no further. */
    assert(j->state == JOB_QUEUED);
    size_t cnt = job_next_count(p, j);
    chunk *c;
    if (j->src) {
      c = mp__source_chunk(p, j, cnt);
    } else if (j->kind == JOB_BYTES) {
      cnt = bytes_fit(j, cnt);
      c = mp__bytes_chunk_sub(p, j, NULL, j->next_item, cnt, 0);
      if (c)
        j->next_item += cnt;
    } else {
      c = mp__chunk_new(p, j, j->next_item, cnt, 0);
      if (c)
        j->next_item += cnt;
    }
    if (j->src ? j->src_end != 0 : j->next_item >= j->n)
      j->state = JOB_DRAINING;
    if (c)
      return c;
    if (!j->src || !j->src_end) {
      /* Out of memory. While a worker holds a chunk, its result brings
       * another round (and frees a chunk, kept for reuse): try again then.
       * With none held no round would come, and the caller would wait
       * forever beside idle workers: what is left fails with -ENOMEM. */
      if (sched_any_held(p))
        return NULL;
      if (j->src) {
        j->src_end = -ENOMEM;
        j->state = JOB_DRAINING;
      } else {
        mp__job_fail_rest(j, -ENOMEM, 0);
      }
      *ended = 1;
    }
    mp__job_check_done(j); /* the source ended with nothing more */
  }
}

/* Seconds, in ns, one item of j may run; <= 0: no limit. */
static int64_t job_limit(const mp_pool *p, const job *j) {
  if (j->timeout_ns)
    return j->timeout_ns;
  return p->opts.task_timeout > 0 ? mp__sec_to_ns(p->opts.task_timeout) : 0;
}

/* Fill in what the transport sees of chunk c. */
static void task_prepare(mp_pool *p, chunk *c) {
  job *j = c->j;
  mp__task *t = &c->t;
  t->id = ++p->next_id;
  t->tp_off = 0;
  t->ref = p->tp_ops->by_reference ? &j->ref : NULL;
  t->flags = job_limit(p, j) > 0 ? MP__TF_TIMED : 0;
  t->ctx = j->ctx;
  t->ctx_len = j->ctx_len;
  t->ctx_id = j->ctx_id;
  t->by_ref = 0;
  if (j->kind == JOB_MAP) {
    t->kind = MP__TASK_MAP;
    t->fn = (void (*)(void))j->mfn;
    t->in = j->in + c->start * j->in_size;
    t->in_len = t->count * j->in_size;
    t->in_size = (uint32_t)j->in_size;
    t->out_size = (uint32_t)j->out_size;
    /* The caller waits in mp_pool_map until every chunk's result is in,
     * and may not write to its input meanwhile (mpool.h). */
    t->by_ref = j->blocking;
  } else if (j->kind == JOB_BYTES) {
    t->kind = MP__TASK_BYTES;
    t->fn = (void (*)(void))j->afn;
    t->in = c->pack;
    t->in_len = c->pack_len;
  } else {
    t->kind = MP__TASK_APPLY;
    t->fn = (void (*)(void))j->afn;
    t->in = j->arg;
    t->in_len = j->arg_len;
  }
}

static int worker_can_take(const mp_pool *p, const core_worker *cw,
                           int level) {
  return mp__worker_takes_work(cw) && cw->nq < level &&
         (!p->opts.maxtasksperchild ||
          cw->tasks_sent < p->opts.maxtasksperchild);
}

static int worker_assign(mp_pool *p, int w, int *ended) {
  chunk *c = sched_next_chunk(p, ended);
  if (!c)
    return 0;
  task_prepare(p, c);
  if (p->tp_ops->send(p->tp, w, &c->t) < 0) {
    /* The transport could not queue it (no memory): it waits, first. */
    c->t.id = 0;
    mp__list_push_front(&p->retry, &c->link);
    return 0;
  }
  core_worker *cw = &p->w[w];
  assert(mp__worker_takes_work(cw) && cw->nq < MP__DEEP_WINDOW);
  mp__list_push(&cw->q, &c->link);
  cw->nq++;
  assert((size_t)cw->nq == mp__list_len(&cw->q));
  cw->tasks_sent++;
  return 1;
}

/* Whether the chunk sched_next_chunk would hand out next is a map chunk of
 * at most MP__SMALL_CHUNK items, from a map with plenty left: near its end the
 * shallow window is used again, so that no worker holds a backlog of items
 * while another sits idle. */
static int sched_next_is_small(const mp_pool *p) {
  if (!mp__list_empty(&p->retry))
    return 0;
  const job *j = sched_next_job(p);
  return j && j->kind == JOB_MAP && j->chunksize &&
         j->chunksize <= MP__SMALL_CHUNK &&
         (j->n - j->next_item) / j->chunksize >
             (size_t)p->nproc * MP__DEEP_WINDOW;
}

/*
 * Idle workers are served first, one chunk each, so no task waits behind
 * another while a worker sits idle; only then does each worker get a second
 * chunk, which keeps it busy while the parent collects its previous result.
 * Tiny map chunks (chunksize 1, say) go deeper, up to MP__DEEP_WINDOW per
 * worker: each costs a round trip, and a deep queue lets the worker run
 * them back to back while the parent collects their results in batches. A
 * slow item can hold up to MP__DEEP_WINDOW - 1 others queued behind it on its
 * worker; the map's last chunks go out shallow, so its end is balanced.
 */
int mp__sched_feed(mp_pool *p) {
  int ended = 0;
  /* Levels no worker is below give nothing: start at the lowest queue. */
  int low = MP__DEEP_WINDOW;
  for (int i = 0; i < p->nproc; i++)
    if (mp__worker_takes_work(&p->w[i]) && p->w[i].nq < low)
      low = p->w[i].nq;
  for (int level = low + 1; level <= MP__DEEP_WINDOW; level++) {
    int gave = 1;
    while (gave) {
      gave = 0;
      for (int i = 0; i < p->nproc; i++) {
        if (level > MP__WINDOW && !sched_next_is_small(p))
          break;
        if (worker_can_take(p, &p->w[i], level))
          gave |= worker_assign(p, i, &ended);
      }
    }
    if (!mp__pool_has_work(p) || (level >= MP__WINDOW && !sched_next_is_small(p)))
      break;
  }
  return ended;
}

void mp__sched_retire_idle(mp_pool *p) {
  if (!mp__pool_is_closed(p) || mp__pool_has_work(p))
    return;
  for (int i = 0; i < p->nproc; i++) {
    core_worker *cw = &p->w[i];
    if (mp__worker_takes_work(cw) && !cw->nq) {
      p->tp_ops->retire(p->tp, i);
      cw->state = W_RETIRING;
    }
  }
}

void mp__sched_kill(mp_pool *p, int w, int code, uint64_t task,
                    uint32_t item, int drain) {
  core_worker *cw = &p->w[w];
  if (!mp__worker_is_working(cw))
    return;
  cw->state = W_KILLED;
  cw->kill_code = code;
  cw->kill_task = task;
  cw->kill_item = item;
  cw->kill_init = 0;
  p->tp_ops->kill(p->tp, w, drain);
}

/* The item limit of the task worker cw runs (task 0: its oldest). */
static int64_t running_limit(const mp_pool *p, const core_worker *cw,
                             uint64_t task) {
  MP__LIST_EACH(n, nx, &cw->q) {
    const chunk *c = MP__ENTRY(n, chunk, link);
    if (!task || c->t.id == task)
      return job_limit(p, c->j);
  }
  return 0;
}

int64_t mp__sched_timeouts(mp_pool *p, int kill_now) {
  int64_t soonest = INT64_MAX;
  if (p->opts.task_timeout <= 0 && !p->ntimed)
    return soonest;
  int64_t init_limit =
      p->opts.task_timeout > 0 ? mp__sec_to_ns(p->opts.task_timeout) : 0;
  int64_t now = mp__now_ns();
  for (int i = 0; i < p->nproc; i++) {
    core_worker *cw = &p->w[i];
    if (!mp__worker_is_working(cw))
      continue;
    uint64_t task;
    uint32_t item;
    int64_t due, limit;
    if (!p->tp_ops->ready(p->tp, i)) {
      /* An initializer is bounded as a task is. Without a bound of its
       * own, the work it holds has one from the moment it starts: look
       * again by then, as nothing else would wake us. */
      if (init_limit) {
        due = cw->born_ns + init_limit;
        if (due <= now && kill_now) {
          mp__sched_kill(p, i, MP_ETIMEDOUT, 0, 0, 1);
          cw->kill_init = 1;
          continue;
        }
      } else if (cw->nq && (limit = running_limit(p, cw, 0)) > 0) {
        due = now + limit;
      } else {
        continue;
      }
    } else if (!cw->nq) {
      continue;
    } else if (p->tp_ops->running(p->tp, i, &task, &item, &due)) {
      if ((limit = running_limit(p, cw, task)) <= 0)
        continue;
      due += limit;
      if (due <= now && kill_now) {
        mp__sched_kill(p, i, MP_ETIMEDOUT, task, item, 1);
        continue;
      }
    } else {
      /* A worker that holds work but shows no item yet (it is reading its
       * task, or moving on) starts one at the earliest now: look again by
       * now + limit at the latest, since nothing else would wake us. */
      if ((limit = running_limit(p, cw, 0)) <= 0)
        continue;
      due = now + limit;
    }
    if (due < soonest)
      soonest = due;
  }
  return soonest;
}

/*
 * Job j's handle is being freed: from now on nothing may read the caller's
 * input. Its chunks that no worker has begun to receive leave their queues
 * unsent; one half sent keeps its place, its transport having copied what
 * was left of it, or, when it could not, its worker is replaced.
 */
void mp__sched_detach_input(mp_pool *p, job *j) {
  for (int i = 0; i < p->nproc; i++) {
    core_worker *cw = &p->w[i];
    MP__LIST_EACH(n, nx, &cw->q) {
      chunk *c = MP__ENTRY(n, chunk, link);
      if (c->j != j)
        continue;
      int rc = p->tp_ops->cancel(p->tp, i, c->t.id);
      if (rc == 1) {
        mp__list_remove(n);
        assert(cw->nq > 0 && cw->tasks_sent > 0);
        cw->nq--;
        cw->tasks_sent--;
        mp__chunk_free(p, c);
      } else if (rc < 0) {
        mp__sched_kill(p, i, MP_ECLOSED, 0, 0, 0);
      }
    }
  }
}

/* ---- the transport's two entry points ---- */

int mp__core_result(mp_pool *p, int w, uint64_t id, const void *payload,
                    size_t len) {
  core_worker *cw = &p->w[w];
  mp__list *n = mp__list_first(&cw->q);
  if (!n || len > UINT32_MAX)
    return MP_EPROTO;
  chunk *c = MP__ENTRY(n, chunk, link);
  job *j = c->j;
  if (c->t.id != id)
    return MP_EPROTO;
  if (p->tp_ops->item_status && j->kind == JOB_MAP) {
    if (mp__map_res_st_check(payload, (uint32_t)len, c->t.count,
                             (uint32_t)j->out_size) < 0)
      return MP_EPROTO;
    const char *outs = payload;
    mp__job_deliver_st(j, c->start, c->t.count,
                       outs + (size_t)c->t.count * j->out_size, outs);
  } else if (j->kind == JOB_MAP) {
    int codes = mp__map_res_check((uint32_t)len, c->t.count,
                                  (uint32_t)j->out_size);
    if (codes < 0)
      return MP_EPROTO;
    const char *outs = payload;
    mp__job_deliver(j, c->start, c->t.count,
                    codes ? outs + (size_t)c->t.count * j->out_size : NULL,
                    outs, 0, 0);
  } else if (j->kind == JOB_BYTES) {
    if (mp__bytes_res_check(payload, (uint32_t)len, c->t.count,
                            (uint32_t)p->max_res) < 0)
      return MP_EPROTO;
    mp__job_deliver_bytes(j, c->start, c->t.count, payload, len);
  } else {
    int bad = p->tp_ops->item_status
                  ? mp__apply_res_st_check(payload, (uint32_t)len,
                                           (uint32_t)p->max_res)
                  : mp__apply_res_check(payload, (uint32_t)len,
                                        (uint32_t)p->max_res);
    if (bad < 0)
      return MP_EPROTO;
    mp__apply_res res;
    memcpy(&res, payload, sizeof res);
    mp__apply_deliver(j, res.code, res.detail,
                      (const char *)payload + sizeof res, len - sizeof res);
  }
  mp__list_remove(n);
  assert(cw->nq > 0);
  cw->nq--;
  assert((size_t)cw->nq == mp__list_len(&cw->q));
  mp__chunk_free(p, c);
  return 0;
}

int mp__core_failed(mp_pool *p, int w, uint64_t id, int code, int detail) {
  core_worker *cw = &p->w[w];
  mp__list *n = mp__list_first(&cw->q);
  chunk *c = n ? MP__ENTRY(n, chunk, link) : NULL;
  if (!c || c->t.id != id)
    return MP_EPROTO;
  mp__chunk_fail(c, c->start, c->t.count, code, detail);
  mp__list_remove(n);
  assert(cw->nq > 0);
  cw->nq--;
  mp__chunk_free(p, c);
  return 0;
}

/*
 * Worker cw sent bytes that are not a frame: an item it ran wrote to its
 * pipes. Only items it had run by the time the bytes were read can have:
 * those of the chunks it holds up to the one it was running then (its
 * earlier ones finished, their results held back: worker.c), up to that
 * item; none of them if it was running nothing known, then all it holds.
 * One suspect alone is the culprit and fails with MP_EPROTO; several are
 * each sent again alone, so the culprit is found on its own and the others
 * deliver, as around a crash. Items after them are sent again as they are.
 */
static void proto_blame(mp_pool *p, core_worker *cw, const mp__loss *loss) {
  size_t suspects = 0;
  int found = 0;
  MP__LIST_EACH(n, nx, &cw->q) {
    const chunk *c = MP__ENTRY(n, chunk, link);
    if (loss->task && c->t.id == loss->task && loss->item < c->t.count) {
      suspects += loss->item + 1;
      found = 1;
      break;
    }
    suspects += c->t.count;
  }
  int past = 0;
  MP__LIST_EACH(n, nx, &cw->q) {
    chunk *c = MP__ENTRY(n, chunk, link);
    mp__list_remove(n);
    size_t upto = past ? 0 : c->t.count; /* suspects in c: [0, upto) */
    if (!past && found && c->t.id == loss->task) {
      upto = loss->item + 1;
      past = 1;
    }
    if (suspects == 1 && upto == 1) {
      mp__chunk_fail(c, c->start, 1, MP_EPROTO, 0);
    } else {
      for (size_t i = 0; i < upto; i++)
        mp__requeue(p, c, c->start + i, 1, 0);
    }
    mp__requeue(p, c, c->start + upto, c->t.count - upto, c->deaths);
    mp__chunk_free(p, c);
  }
}

/* What worker w's chunk c costs now that w is lost. head: c is the one it
 * was running; self: it ended by itself (not killed by us). */
static void chunk_settle(mp_pool *p, const core_worker *cw, chunk *c,
                         int head, int self, const mp__loss *loss) {
  size_t count = c->t.count;
  size_t bad = SIZE_MAX; /* item index within the chunk that fails */
  int code = MP_ECRASHED, detail = loss->detail;
  if (cw->kill_code == MP_ETIMEDOUT && !cw->kill_init &&
      c->t.id == cw->kill_task) {
    bad = cw->kill_item;
    code = MP_ETIMEDOUT;
    detail = 0;
  } else if (self && loss->task && c->t.id == loss->task) {
    bad = loss->item;
  }
  if (bad < count) {
    mp__chunk_fail(c, c->start + bad, 1, code, detail);
    mp__requeue(p, c, c->start, bad, 0);
    mp__requeue(p, c, c->start + bad + 1, count - bad - 1, 0);
  } else if (head && self && c->deaths + 1 >= CHUNK_DEATHS_MAX) {
    /* Its workers keep dying between its items (in the flush after them,
     * say): resending it would fork forever. */
    mp__chunk_fail(c, c->start, count, MP_ECRASHED, loss->detail);
  } else {
    mp__requeue(p, c, c->start, count,
                head && self ? c->deaths + 1 : c->deaths);
  }
}

void mp__core_lost(mp_pool *p, int w, const mp__loss *loss) {
  core_worker *cw = &p->w[w];
  assert(mp__worker_has_process(cw));
  if (cw->state != W_KILLED)
    cw->kill_code = cw->kill_init = 0;
  /* Judged overdue, but it ended by other means before our kill landed:
   * that is how it ended. */
  if (cw->kill_code == MP_ETIMEDOUT && loss->why == MP__LOST_EXIT &&
      loss->status_known && loss->detail != -SIGKILL)
    cw->kill_code = cw->kill_init = 0;
  int self = !cw->kill_code && loss->why == MP__LOST_EXIT;
  if (!cw->kill_code && loss->why == MP__LOST_PROTO)
    proto_blame(p, cw, loss); /* empties its queue */
  mp__list *oldest = mp__list_first(&cw->q);
  if (oldest && !cw->kill_code && loss->why == MP__LOST_NOMEM) {
    /* The result that could not be received is the oldest one's; the
     * others run again. */
    chunk *c = MP__ENTRY(oldest, chunk, link);
    mp__list_remove(oldest);
    mp__chunk_fail(c, c->start, c->t.count, -ENOMEM, 0);
    mp__chunk_free(p, c);
  }
  if (cw->kill_init) {
    p->init_failures++;
    p->init_fail = (mp_status){MP_ETIMEDOUT, 0};
  } else if (self && !loss->init_done) {
    p->init_failures++;
    p->init_fail = (mp_status){MP_ECRASHED, loss->detail};
  } else if (self) {
    p->init_failures = 0;
  }
  /* The chunk it was running: the one the loss names, else its oldest.
   * Chunks before it were finished, their results held back to go out
   * with the next ones (worker.c): they run again, blamed for nothing. */
  chunk *ran = NULL;
  MP__LIST_EACH(n, nx, &cw->q) {
    chunk *c = MP__ENTRY(n, chunk, link);
    if (!ran || (loss->task && c->t.id == loss->task))
      ran = c;
    if (loss->task && c->t.id == loss->task)
      break;
  }
  MP__LIST_EACH(n, nx, &cw->q) {
    chunk *c = MP__ENTRY(n, chunk, link);
    mp__list_remove(n);
    chunk_settle(p, cw, c, c == ran, self, loss);
    mp__chunk_free(p, c);
  }
  int64_t born = cw->born_ns;
  memset(cw, 0, sizeof *cw);
  mp__list_init(&cw->q);
  cw->state = W_EMPTY;
  cw->born_ns = born;
}
