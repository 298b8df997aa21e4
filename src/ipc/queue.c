/* queue.c: mp_queue, a bounded many-producer many-consumer message queue
 * between a process and the children it forks afterwards.
 *
 * One shared anonymous mapping holds a header and maxsize fixed slots of
 * (8 + max_msg) bytes each, used as a ring. A robust process-shared mutex
 * guards it; producers and consumers sleep on futex words (see
 * ipc_internal.h for why not condition variables).
 *
 * Crash safety: every operation commits with one store to rd or wr, after
 * its slot has been written or read, so a process killed before it leaves
 * the ring as if the operation had not happened. Its lock is robust: the
 * next process to take it gets EOWNERDEAD, marks it consistent and carries
 * on, as the ring is consistent by construction.
 *
 * A put killed after its commit has put its message: nothing is lost. A get
 * killed after its commit takes its message to the grave, so get commits as
 * late as it can: after the copy-out and after the wakeup it owes producers
 * (see queue_get_commit); from its commit to its return it makes no system
 * call but the one that hands the lock on when another process sleeps on it.
 * And a killed process may owe the others a wakeup it never made: every
 * sleeper re-checks at least every MP__WAIT_SLICE_NS (sys/futex.h).
 *
 * JoinableQueue: unfinished = wr - discarded - ndone, all monotonic, so a
 * put's one commit (wr) also counts its task, task_done is one atomic
 * step on ndone, and shutdown(immediate) commits with its state before
 * it discards. Join waiters sleep on join_seq, bumped when unfinished
 * reaches 0 and at shutdown.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct queue_shared {
  pthread_mutex_t mu;
  _Atomic uint64_t rd;       /* messages taken; written under mu */
  _Atomic uint64_t wr;       /* messages put; written under mu */
  _Atomic uint32_t put_seq;  /* futex word consumers sleep on */
  _Atomic uint32_t get_seq;  /* futex word producers sleep on */
  _Atomic uint32_t nget_wait;
  _Atomic uint32_t nput_wait;
  _Atomic uint64_t ndone;     /* task_done calls */
  _Atomic uint64_t discarded; /* messages dropped by shutdown(1) */
  _Atomic uint32_t join_seq;  /* futex word joiners sleep on */
  _Atomic uint32_t njoin_wait;
  _Atomic uint32_t shut; /* QUEUE_OPEN, QUEUE_SHUT or QUEUE_SHUT_NOW; under mu */
} queue_shared;

enum { QUEUE_OPEN, QUEUE_SHUT, QUEUE_SHUT_NOW };

/* A slot: the length, then the bytes. */
typedef struct queue_slot {
  uint64_t len;
  unsigned char data[];
} queue_slot;

#define QUEUE_HDR 128
_Static_assert(sizeof(queue_shared) <= QUEUE_HDR, "header must fit");

/* The handle is private to each process (a forked child gets a copy), so the
 * geometry that bounds every access never comes from shared memory. */
struct mp_queue {
  queue_shared *sh;
  unsigned char *slots;
  size_t map_len;
  size_t slot_size;
  size_t max_msg;
  uint64_t nslots;
};

int mp_queue_create(mp_queue **out, size_t maxsize, size_t max_msg) {
  if (!out || maxsize == 0 || maxsize > INT_MAX || max_msg > INT_MAX)
    return MP_EINVAL;
  size_t slot = sizeof(queue_slot) + ((max_msg + 7) & ~(size_t)7);
  if (maxsize > (SIZE_MAX - QUEUE_HDR) / slot)
    return MP_EINVAL;
  mp_queue *q = malloc(sizeof *q);
  if (!q)
    return -ENOMEM;
  q->slot_size = slot;
  q->max_msg = max_msg;
  q->nslots = maxsize;
  q->map_len = QUEUE_HDR + maxsize * slot;
  void *m;
  int rc = mp__ipc_map_locked(&m, q->map_len); /* the mutex is sh->mu */
  if (rc < 0) {
    free(q);
    return rc;
  }
  q->sh = m;
  q->slots = (unsigned char *)m + QUEUE_HDR;
  *out = q;
  return 0;
}

static queue_slot *queue_slot_at(const mp_queue *q, uint64_t i) {
  return (queue_slot *)(q->slots + (i % q->nslots) * q->slot_size);
}

/* Lock the ring. A dead previous holder is not the caller's business: the
 * ring is consistent whatever point it died at (see the top). */
static int queue_lock(mp_queue *q, int64_t deadline) {
  int rc = mp__ipc_mutex_lock(&q->sh->mu, deadline);
  return rc == MP_EOWNERDEAD ? 0 : rc;
}

/*
 * A waiter giving up (its deadline passed) may have been the one a wakeup
 * was meant for: hand it on to another sleeper, or a message (or a free
 * slot) could wait unseen until the next operation. A spare wakeup is
 * harmless; everyone re-checks under the lock.
 */
static void queue_pass_wake(_Atomic uint32_t *word, _Atomic uint32_t *nwait) {
  if (atomic_load(nwait) > 0)
    mp__futex_wake(word, 1);
}

/*
 * Called with the queue locked when there is nothing to do yet (full for a
 * producer, empty for a consumer): unlock and sleep on *word until the
 * other side bumps it, or the deadline. Registered in *nwait under the
 * lock, so a process that changes the queue after we unlock sees us and
 * wakes us; one that did so before we sleep has bumped *word and the futex
 * returns at once. Returns 0 with the lock held again, or an error
 * (MP_ETIMEDOUT, ...) without it.
 */
static int queue_wait(mp_queue *q, _Atomic uint32_t *word,
                      _Atomic uint32_t *nwait, int64_t deadline) {
  if (mp__now_ns() >= deadline) {
    mp__ipc_mutex_unlock(&q->sh->mu);
    return MP_ETIMEDOUT;
  }
  uint32_t seq = atomic_load(word);
  atomic_fetch_add(nwait, 1);
  mp__ipc_mutex_unlock(&q->sh->mu);
  int rc = mp__futex_wait(word, seq, deadline);
  atomic_fetch_sub(nwait, 1);
  if (rc == 0)
    rc = queue_lock(q, deadline);
  if (rc < 0)
    queue_pass_wake(word, nwait);
  return rc;
}

/* After put's commit, with the queue locked: bump put_seq, unlock, and
 * wake one consumer if one is registered in nget_wait (read under the
 * lock, see queue_wait). After the unlock, so the consumer woken does not
 * find the lock taken; a producer killed before the wakeup has put its
 * message all the same, and its consumer finds it within a slice. */
static void queue_put_unlock(mp_queue *q) {
  queue_shared *sh = q->sh;
  atomic_fetch_add(&sh->put_seq, 1);
  int wake = atomic_load(&sh->nget_wait) > 0;
  mp__ipc_mutex_unlock(&sh->mu);
  if (wake)
    mp__futex_wake(&sh->put_seq, 1);
}

int mp_queue_put(mp_queue *q, const void *msg, size_t len, double timeout) {
  if (!q || (!msg && len > 0))
    return MP_EINVAL;
  if (len > q->max_msg)
    return -EMSGSIZE;
  queue_shared *sh = q->sh;
  int64_t deadline = mp__deadline(timeout);
  int rc = queue_lock(q, deadline);
  if (rc < 0)
    return rc;
  for (;;) {
    if (atomic_load(&sh->shut) != QUEUE_OPEN) {
      mp__ipc_mutex_unlock(&sh->mu);
      return MP_ECLOSED;
    }
    uint64_t wr = atomic_load(&sh->wr);
    if (wr - atomic_load(&sh->rd) < q->nslots) {
      queue_slot *s = queue_slot_at(q, wr);
      s->len = len;
      if (len)
        memcpy(s->data, msg, len);
      atomic_store(&sh->wr, wr + 1); /* the commit */
      queue_put_unlock(q);
      return 0;
    }
    /* Full. */
    rc = queue_wait(q, &sh->get_seq, &sh->nput_wait, deadline);
    if (rc < 0)
      return rc;
  }
}

/*
 * The end of a get that takes the message at rd (copied out already, or
 * dropped): wake a sleeping producer, then commit, then unlock, all with
 * the queue locked. The wakeup comes first so that a consumer killed in it
 * (the one system call a get with a sleeping producer makes) dies before
 * its commit: the message stays for another consumer. It is not early: the
 * producer must take the lock to look, and sees the commit once it has it.
 */
static void queue_get_commit(mp_queue *q, uint64_t rd) {
  queue_shared *sh = q->sh;
  atomic_fetch_add(&sh->get_seq, 1);
  if (atomic_load(&sh->nput_wait) > 0)
    mp__futex_wake(&sh->get_seq, 1);
  atomic_store(&sh->rd, rd + 1); /* the commit */
  mp__ipc_mutex_unlock(&sh->mu);
}

int mp_queue_get(mp_queue *q, void *buf, size_t cap, double timeout) {
  if (!q || (!buf && cap > 0))
    return MP_EINVAL;
  queue_shared *sh = q->sh;
  int64_t deadline = mp__deadline(timeout);
  int rc = queue_lock(q, deadline);
  if (rc < 0)
    return rc;
  for (;;) {
    uint64_t rd = atomic_load(&sh->rd);
    uint32_t shut = atomic_load(&sh->shut);
    if (shut == QUEUE_SHUT_NOW ||
        (shut == QUEUE_SHUT && atomic_load(&sh->wr) == rd)) {
      mp__ipc_mutex_unlock(&sh->mu);
      return MP_ECLOSED;
    }
    if (atomic_load(&sh->wr) != rd) {
      queue_slot *s = queue_slot_at(q, rd);
      uint64_t len = s->len;
      if (len > cap && len <= q->max_msg) {
        mp__ipc_mutex_unlock(&sh->mu); /* left for a larger buffer */
        return -EMSGSIZE;
      }
      if (len > q->max_msg) {
        /* Scribbled over by some process: drop it rather than overrun. */
        rc = MP_EPROTO;
      } else {
        if (len)
          memcpy(buf, s->data, (size_t)len);
        rc = (int)len;
      }
      queue_get_commit(q, rd);
      return rc;
    }
    /* Empty. */
    rc = queue_wait(q, &sh->put_seq, &sh->nget_wait, deadline);
    if (rc < 0)
      return rc;
  }
}

int mp_queue_size(const mp_queue *q) {
  if (!q)
    return MP_EINVAL;
  uint64_t rd = atomic_load(&q->sh->rd);
  uint64_t wr = atomic_load(&q->sh->wr);
  uint64_t n = wr - rd;
  /* Two loads without the lock: clamp a torn view. */
  return n > q->nslots ? (int)q->nslots : (int)n;
}

size_t mp_queue_max_msg(const mp_queue *q) { return q ? q->max_msg : 0; }

/* Tasks put and not yet done (or discarded). wr is read last: it only
 * grows, so a put racing with us can only make the answer larger. */
static uint64_t queue_unfinished(queue_shared *sh) {
  uint64_t done = atomic_load(&sh->ndone) + atomic_load(&sh->discarded);
  uint64_t wr = atomic_load(&sh->wr);
  return wr > done ? wr - done : 0;
}

static void queue_wake_joiners(queue_shared *sh) {
  atomic_fetch_add(&sh->join_seq, 1);
  if (atomic_load(&sh->njoin_wait) > 0)
    mp__futex_wake(&sh->join_seq, INT32_MAX);
}

int mp_queue_task_done(mp_queue *q) {
  if (!q)
    return MP_EINVAL;
  queue_shared *sh = q->sh;
  uint64_t done = atomic_load(&sh->ndone);
  for (;;) {
    uint64_t limit = atomic_load(&sh->wr) - atomic_load(&sh->discarded);
    if (done >= limit)
      return MP_ESTATE; /* more task_done than tasks */
    if (atomic_compare_exchange_weak(&sh->ndone, &done, done + 1))
      break;
  }
  if (queue_unfinished(sh) == 0)
    queue_wake_joiners(sh);
  return 0;
}

int mp_queue_join(mp_queue *q, double timeout) {
  if (!q)
    return MP_EINVAL;
  queue_shared *sh = q->sh;
  int64_t deadline = mp__deadline(timeout);
  for (;;) {
    /* The sequence first: a change after it wakes the futex below. */
    uint32_t seq = atomic_load(&sh->join_seq);
    if (atomic_load(&sh->shut) == QUEUE_SHUT_NOW)
      return MP_ECLOSED;
    if (queue_unfinished(sh) == 0)
      return 0;
    atomic_fetch_add(&sh->njoin_wait, 1);
    int rc = mp__futex_wait(&sh->join_seq, seq, deadline);
    atomic_fetch_sub(&sh->njoin_wait, 1);
    if (rc == MP_ETIMEDOUT) /* a last look */
      return atomic_load(&sh->shut) == QUEUE_SHUT_NOW ? MP_ECLOSED
             : queue_unfinished(sh) == 0             ? 0
                                                     : MP_ETIMEDOUT;
  }
}

int mp_queue_shutdown(mp_queue *q, int immediate) {
  if (!q)
    return MP_EINVAL;
  queue_shared *sh = q->sh;
  int rc = queue_lock(q, INT64_MAX); /* a dead holder is 0 here */
  if (rc < 0) /* a broken mutex (stray writes): nothing changed */
    return rc;
  uint32_t shut = atomic_load(&sh->shut);
  if (immediate && shut != QUEUE_SHUT_NOW) {
    /* The state commits first: from here every get fails, so the
     * messages are gone to everyone even before they are counted. */
    atomic_store(&sh->shut, QUEUE_SHUT_NOW);
    uint64_t rd = atomic_load(&sh->rd), wr = atomic_load(&sh->wr);
    atomic_fetch_add(&sh->discarded, wr - rd);
    atomic_store(&sh->rd, wr);
  } else if (shut == QUEUE_OPEN) {
    atomic_store(&sh->shut, QUEUE_SHUT);
  }
  /* Wake every sleeper of every kind: each re-checks under the lock (or,
   * a joiner, the counts) and sees the state. */
  atomic_fetch_add(&sh->put_seq, 1);
  atomic_fetch_add(&sh->get_seq, 1);
  mp__ipc_mutex_unlock(&sh->mu);
  mp__futex_wake(&sh->put_seq, INT32_MAX);
  mp__futex_wake(&sh->get_seq, INT32_MAX);
  queue_wake_joiners(sh);
  return 0;
}

int mp_queue_close(mp_queue *q) { return mp_queue_shutdown(q, 0); }

void mp_queue_free(mp_queue *q) {
  if (!q)
    return;
  mp__ipc_unmap(q->sh, q->map_len);
  free(q);
}
