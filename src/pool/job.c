/* job.c: jobs and their outcomes: references, the pool's list of jobs,
 * delivery of each item's outcome to the job's sink, and chunk records. */
#include "pool_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Chunk records a pool keeps for reuse: a chunksize-1 map would otherwise
 * cost a malloc and a free per item. */
enum { CHUNKS_KEPT = 1024 };

void mp__job_unref(job *j) {
  if (--j->refs > 0)
    return;
  MP__LIST_EACH(n, nx, &j->blocks)
    free(MP__ENTRY(n, block, link));
  free(j->arg);
  free(j->res);
  free(j);
}

void mp__job_link(mp_pool *p, job *j) {
  j->pool = p;
  j->refs++;
  j->state = j->n > 0 ? JOB_QUEUED : JOB_DRAINING;
  mp__list_push(&p->jobs, &j->link);
}

void mp__job_check_done(job *j) {
  mp_pool *p = j->pool;
  if (!p || j->inflight)
    return;
  if (j->state != JOB_DETACHED && j->done < j->n)
    return;
  j->pool = NULL;
  mp__list_remove(&j->link);
  if (j->state == JOB_DETACHED) {
    mp__job_unref(j);
    return;
  }
  j->state = JOB_COMPLETE;
  if (j->cb || j->ecb) {
    /* The queue holds the pool's reference until the callback runs. */
    mp__list_push(&p->cb_queue, &j->cb_link);
    return;
  }
  mp__job_unref(j);
}

static void job_fail_items(job *j, size_t start, size_t count, int code,
                           int detail);

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
  b->start = start;
  b->count = count;
  b->taken = 0;
  b->st = (mp_status *)(void *)(b + 1);
  b->outs = (char *)(b->st + count);
  mp__list_push(&j->blocks, &b->link);
  return b;
}

void mp__job_fail_rest(job *j, int code, int detail) {
  if (j->next_item >= j->n)
    return;
  size_t from = j->next_item, count = j->n - from;
  j->next_item = j->n;
  if (j->state == JOB_QUEUED)
    j->state = JOB_DRAINING;
  if (j->kind == JOB_APPLY || j->sink == SINK_ARRAY ||
      j->state == JOB_DETACHED) {
    job_fail_items(j, from, count, code, detail);
    return;
  }
  /* An iterator's failed tail is made up as it is read. */
  j->has_tail = 1;
  j->tail_from = j->tail_next = from;
  j->tail_st = (mp_status){code, detail};
  job_note_fail(j, from, code, detail);
  j->done += count;
}

/* Count items done. The progress callback is not called from here, in the
 * middle of reading a result or settling a lost worker, but queued for the
 * end of the round, when the pool's state is whole and the callback may
 * call the library (even terminate). One report per round carries the
 * latest count. */
static void job_progress(job *j, size_t count) {
  j->done += count;
  mp_pool *p = j->pool;
  if (!j->progress || j->state == JOB_DETACHED || !p ||
      mp__list_linked(&j->prog_link))
    return;
  j->refs++;
  mp__list_push(&p->prog_queue, &j->prog_link);
}

/* Outcomes for items [start, start + count): codes holds either the task
 * functions' int32 returns (full 0) or whole mp__item_st (full 1). */
static void job_deliver(job *j, size_t start, size_t count, const char *codes,
                        int full, const char *outs, int code, int detail) {
  if (j->state == JOB_DETACHED)
    return;
  mp_status *st = j->status ? j->status + start : NULL;
  char *dst = j->out ? j->out + start * j->out_size : NULL;
  if (j->sink != SINK_ARRAY) {
    block *b = block_new(j, start, count);
    if (!b) {
      /* Out of memory: these items are lost (each is reported as -ENOMEM
       * when reached) and no more input goes out. */
      j->done += count;
      mp__job_fail_rest(j, -ENOMEM, 0);
      return;
    }
    st = b->st;
    dst = b->outs;
  }
  if (dst && outs)
    memcpy(dst, outs, count * j->out_size);
  for (size_t i = 0; i < count && (codes || code || st); i++) {
    int c = code, d = detail;
    if (codes && full) {
      mp__item_st s;
      memcpy(&s, codes + i * sizeof s, sizeof s);
      c = s.code;
      d = s.detail;
    } else if (codes) {
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

void mp__job_deliver(job *j, size_t start, size_t count, const char *codes,
                     const char *outs, int code, int detail) {
  job_deliver(j, start, count, codes, 0, outs, code, detail);
}

void mp__job_deliver_st(job *j, size_t start, size_t count, const char *st,
                        const char *outs) {
  job_deliver(j, start, count, st, 1, outs, 0, 0);
}

void mp__apply_deliver(job *j, int code, int detail, const char *data,
                       size_t len) {
  if (code == 0 && len && j->state != JOB_DETACHED) {
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

int mp__job_has_work(const job *j) {
  if (j->state != JOB_QUEUED || j->next_item >= j->n)
    return 0;
  /* An iterator hands out input only as its items are taken, unless the
   * pool is closed: join must then be able to finish it unconsumed. */
  if (j->sink != SINK_ARRAY && !j->pool->closed &&
      j->next_item - j->returned >= j->window)
    return 0;
  return 1;
}

/* Items [start, start + count) of j fail with code, detail. */
static void job_fail_items(job *j, size_t start, size_t count, int code,
                           int detail) {
  if (count == 0)
    return;
  if (j->kind == JOB_APPLY)
    mp__apply_deliver(j, code, detail, NULL, 0);
  else
    mp__job_deliver(j, start, count, NULL, NULL, code, detail);
}

void mp__chunk_fail(chunk *c, size_t start, size_t count, int code,
                    int detail) {
  job_fail_items(c->j, start, count, code, detail);
}

chunk *mp__chunk_new(mp_pool *p, job *j, size_t start, size_t count,
                     int deaths) {
  chunk *c;
  mp__list *n = mp__list_first(&p->free_chunks);
  if (n) {
    mp__list_remove(n);
    p->nfree_chunks--;
    c = MP__ENTRY(n, chunk, link);
  } else if (!(c = malloc(sizeof *c))) {
    return NULL;
  }
  memset(c, 0, sizeof *c);
  mp__list_init(&c->link);
  mp__list_init(&c->t.tp_link);
  c->j = j;
  c->start = start;
  c->deaths = deaths;
  c->t.count = (uint32_t)count;
  j->inflight++;
  return c;
}

void mp__chunk_free(mp_pool *p, chunk *c) {
  job *j = c->j;
  j->inflight--;
  free(c->t.tp_copy);
  if (p->nfree_chunks < CHUNKS_KEPT) {
    mp__list_push(&p->free_chunks, &c->link);
    p->nfree_chunks++;
  } else {
    free(c);
  }
  mp__job_check_done(j);
}

void mp__chunks_release(mp_pool *p) {
  MP__LIST_EACH(n, nx, &p->free_chunks)
    free(MP__ENTRY(n, chunk, link));
  mp__list_init(&p->free_chunks);
  p->nfree_chunks = 0;
}

void mp__requeue(mp_pool *p, job *j, size_t start, size_t count, int deaths) {
  if (count == 0 || j->state == JOB_DETACHED)
    return;
  chunk *c = mp__chunk_new(p, j, start, count, deaths);
  if (!c) {
    job_fail_items(j, start, count, -ENOMEM, 0);
    return;
  }
  mp__list_push(&p->retry, &c->link);
}
