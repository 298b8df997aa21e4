/* job.c: jobs and their outcomes: references, the pool's list of jobs,
 * delivery of each item's outcome to the job's sink, and chunk records. */
#include "pool_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Chunk records a pool keeps for reuse: a chunksize-1 map would otherwise
 * cost a malloc and a free per item. */
enum { CHUNKS_KEPT = 1024 };
/* The largest result block an iterator keeps for reuse, bytes: a block of
 * 4096 items is about 128 KiB, which malloc would map and unmap (and the
 * kernel zero) once per chunk. */
enum { SPARE_MAX = 1024 * 1024 };

void mp__job_unref(job *j) {
  assert(j->refs > 0);
  if (--j->refs > 0)
    return;
  MP__LIST_EACH(n, nx, &j->blocks) /* a bytes block owns no copies */
    free(MP__ENTRY(n, block, link));
  free(j->spare);
  mp__buf_free(j->src_item);
  free(j->ctx);
  free(j->arg);
  free(j->res);
  free(j);
}

void mp__job_link(mp_pool *p, job *j) {
  assert(!j->pool && j->state == JOB_QUEUED && j->refs > 0);
  j->pool = p;
  j->refs++;
  if (j->timeout_ns)
    p->ntimed++;
  j->state = j->n > 0 || j->src ? JOB_QUEUED : JOB_DRAINING;
  mp__list_push(&p->jobs, &j->link);
}

void mp__job_check_done(job *j) {
  mp_pool *p = j->pool;
  if (!p || j->inflight)
    return;
  if (j->state != JOB_DETACHED &&
      (j->done < j->n || (j->src && !j->src_end)))
    return;
  j->pool = NULL;
  mp__list_remove(&j->link);
  if (j->timeout_ns) {
    assert(p->ntimed > 0);
    p->ntimed--;
  }
  if (j->state == JOB_DETACHED) {
    mp__job_unref(j);
    return;
  }
  assert(j->state == JOB_QUEUED || j->state == JOB_DRAINING);
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

/* A block for count items, with room for outs bytes of outputs. */
static block *block_new(job *j, size_t start, size_t count, size_t outs) {
  size_t need = count * sizeof(mp_status) + outs;
  block *b = j->spare;
  if (b && b->cap >= need) {
    j->spare = NULL;
  } else if ((b = malloc(sizeof(block) + need))) {
    b->cap = need;
  } else {
    return NULL;
  }
  b->start = start;
  b->count = count;
  b->taken = 0;
  b->st = (mp_status *)(void *)(b + 1);
  b->outs = (char *)(b->st + count);
  b->next = NULL;
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
void mp__job_progress(job *j, size_t count) {
  j->done += count;
  mp_pool *p = j->pool;
  if (!j->progress || j->state == JOB_DETACHED || !p ||
      mp__list_linked(&j->prog_link))
    return;
  assert(j->refs > 0);
  j->refs++;
  mp__list_push(&p->prog_queue, &j->prog_link);
}

void mp__block_done(job *j, block *b) {
  mp__list_remove(&b->link);
  if (b->cap > SPARE_MAX || (j->spare && j->spare->cap >= b->cap)) {
    free(b);
    return;
  }
  free(j->spare);
  j->spare = b;
}

/* Where the outcomes of items [start, start + count) of j go: its arrays
 * (either may be NULL) or, for an iterator, a new block with room for outs
 * bytes of outputs, into *bp. Returns 0, or -1 when the job takes no
 * outcome (detached) or a block could not be had. */
static int job_sink(job *j, size_t start, size_t count, size_t outs,
                    mp_status **st, char **dst, block **bp) {
  if (j->state == JOB_DETACHED)
    return -1;
  *st = j->status ? j->status + start : NULL;
  *dst = j->out ? j->out + start * j->out_size : NULL;
  if (j->kind == JOB_BYTES)
    *dst = j->bout ? (char *)(j->bout + start) : NULL;
  if (j->sink != SINK_ARRAY) {
    block *b = block_new(j, start, count, outs);
    if (!b) {
      /* Out of memory: these items are lost (each is reported as -ENOMEM
       * when reached) and no more input goes out. */
      j->done += count;
      mp__job_fail_rest(j, -ENOMEM, 0);
      return -1;
    }
    *st = b->st;
    *dst = b->outs;
    *bp = b;
  }
  return 0;
}

/* Outcomes for items [start, start + count): codes holds either the task
 * functions' int32 returns (full 0) or whole mp__item_st (full 1). */
static void job_deliver(job *j, size_t start, size_t count, const char *codes,
                        int full, const char *outs, int code, int detail) {
  mp_status *st;
  char *dst;
  block *b;
  if (job_sink(j, start, count, count * j->out_size, &st, &dst, &b) < 0)
    return;
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
  mp__job_progress(j, count);
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
  if (j->state != JOB_QUEUED || (j->src ? j->src_end : j->next_item >= j->n))
    return 0;
  /* An iterator hands out input only as its items are taken, unless the
   * pool is closed: join must then be able to finish it unconsumed. */
  if (j->sink != SINK_ARRAY && !mp__pool_is_closed(j->pool) &&
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
    assert(p->nfree_chunks > 0);
    p->nfree_chunks--;
    c = MP__ENTRY(n, chunk, link);
  } else if (!(c = malloc(sizeof *c))) {
    return NULL;
  }
  /* tp_head, the last field, is the transport's to fill at send. */
  memset(c, 0, offsetof(chunk, t.tp_head));
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
  /* The caller took it off every list: it is the core's alone. */
  assert(!mp__list_linked(&c->link) && j->inflight > 0);
  j->inflight--;
  free(c->t.tp_copy);
  free(c->pack);
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

void mp__requeue(mp_pool *p, const chunk *from, size_t start, size_t count,
                 int deaths) {
  job *j = from->j;
  if (count == 0 || j->state == JOB_DETACHED)
    return;
  chunk *c = j->kind == JOB_BYTES
                 ? mp__bytes_chunk_sub(p, j, from, start - from->start, count,
                                       deaths)
                 : mp__chunk_new(p, j, start, count, deaths);
  if (!c) {
    job_fail_items(j, start, count, -ENOMEM, 0);
    return;
  }
  mp__list_push(&p->retry, &c->link);
}

/* ---- variable-length items ---- */

/* Where item k of a pack of count items starts, and its length. */
static const char *pack_item(const char *pack, size_t count, size_t k,
                             uint32_t *len) {
  const char *data = pack + mp__pad8(count * sizeof(uint32_t));
  uint32_t l;
  for (size_t i = 0; i < k; i++) {
    memcpy(&l, pack + i * sizeof l, sizeof l);
    data += mp__pad8(l);
  }
  memcpy(len, pack + k * sizeof *len, sizeof *len);
  return data;
}

chunk *mp__bytes_chunk_sub(mp_pool *p, job *j, const chunk *from,
                           size_t first, size_t count, int deaths) {
  size_t data = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t l;
    if (from)
      (void)pack_item(from->pack, from->t.count, first + i, &l);
    else
      l = (uint32_t)j->bin[first + i].len;
    data += mp__pad8(l);
  }
  size_t len = mp__bytes_body(count, data);
  char *pack = calloc(1, len);
  if (!pack)
    return NULL;
  char *w = pack + mp__pad8(count * sizeof(uint32_t));
  for (size_t i = 0; i < count; i++) {
    uint32_t l;
    const char *src;
    if (from) {
      src = pack_item(from->pack, from->t.count, first + i, &l);
    } else {
      src = j->bin[first + i].data;
      l = (uint32_t)j->bin[first + i].len;
    }
    memcpy(pack + i * sizeof l, &l, sizeof l);
    if (l)
      memcpy(w, src, l);
    w += mp__pad8(l);
  }
  chunk *c = mp__chunk_new(p, j, from ? from->start + first : first, count,
                           deaths);
  if (!c) {
    free(pack);
    return NULL;
  }
  c->pack = pack;
  c->pack_len = len;
  return c;
}

void mp__job_deliver_bytes(job *j, size_t start, size_t count,
                           const char *payload, size_t len) {
  mp_status *st;
  char *to;
  block *b = NULL;
  /* An iterator keeps the payload whole, its results copied out as they
   * are taken (mp__block_take_bytes); map_bytes copies each into out. */
  if (job_sink(j, start, count, j->sink == SINK_ARRAY ? 0 : len, &st, &to,
               &b) < 0)
    return;
  if (b) {
    memcpy(b->outs, payload, len);
    b->next = b->outs + count * sizeof(mp__item_res);
  }
  mp_bytes *dst = (mp_bytes *)(void *)to;
  const char *data = payload + count * sizeof(mp__item_res);
  for (size_t i = 0; i < count; i++) {
    mp__item_res r;
    memcpy(&r, payload + i * sizeof r, sizeof r);
    int c = r.code, d = r.detail;
    if (!c && r.len && !b) {
      void *copy = malloc(r.len);
      if (copy) {
        memcpy(copy, data, r.len);
        dst[i] = (mp_bytes){copy, r.len};
      } else {
        c = -ENOMEM;
        d = 0;
      }
    }
    data += mp__pad8(r.len);
    if (st)
      st[i] = (mp_status){c, d};
    if (c)
      job_note_fail(j, start + i, c, d);
  }
  mp__job_progress(j, count);
}

chunk *mp__source_chunk(mp_pool *p, job *j, size_t cnt) {
  size_t head = mp__pad8(cnt * sizeof(uint32_t)), used = head, k = 0;
  /* Room for as many bytes as the last chunk took: no realloc chain. */
  size_t cap = head + (j->pack_hint > 4096 ? j->pack_hint : 4096);
  char *pack = malloc(cap);
  if (!pack)
    return NULL;
  while (k < cnt && used - head < j->byte_bound) {
    mp__buf_reset(j->src_item);
    int rc = j->src(j->src_arg, j->src_item);
    size_t len;
    int err;
    const char *item = mp__buf_bytes(j->src_item, &len, &err);
    if (rc <= 0 || err) {
      j->src_end = rc < 0 ? rc : err ? err : 1;
      break;
    }
    if (used + mp__pad8(len) > cap) {
      size_t ncap = cap * 2 > used + mp__pad8(len) ? cap * 2
                                                   : used + mp__pad8(len);
      char *np = realloc(pack, ncap);
      if (!np) { /* this item is lost: say so where the stream ends */
        j->src_end = -ENOMEM;
        break;
      }
      pack = np;
      cap = ncap;
    }
    uint32_t l = (uint32_t)len;
    memcpy(pack + k * sizeof l, &l, sizeof l);
    if (len)
      memcpy(pack + used, item, len);
    memset(pack + used + len, 0, mp__pad8(len) - len);
    used += mp__pad8(len);
    k++;
  }
  chunk *c = NULL;
  if (k) {
    size_t lens = mp__pad8(k * sizeof(uint32_t));
    memset(pack + k * sizeof(uint32_t), 0, lens - k * sizeof(uint32_t));
    memmove(pack + lens, pack + head, used - head);
    c = mp__chunk_new(p, j, j->n, k, 0);
  }
  if (!c) {
    free(pack);
    return NULL;
  }
  c->pack = pack;
  c->pack_len = used - head + mp__pad8(k * sizeof(uint32_t));
  j->pack_hint = used - head < j->byte_bound ? used - head : j->byte_bound;
  j->n += k;
  j->next_item += k;
  return c;
}


int mp__block_take_bytes(block *b, size_t k, mp_bytes *out) {
  mp__item_res r;
  memcpy(&r, b->outs + k * sizeof r, sizeof r);
  const char *data = b->next;
  b->next += mp__pad8(r.len);
  *out = (mp_bytes){NULL, 0};
  if (b->st[k].code || !r.len)
    return b->st[k].code;
  void *copy = malloc(r.len);
  if (!copy)
    return -ENOMEM;
  memcpy(copy, data, r.len);
  *out = (mp_bytes){copy, r.len};
  return 0;
}
