/* cond.c: mp_cond, Python's Condition, between processes over an mp_lock.
 *
 * Not a pthread condition variable (see ipc_internal.h for why): a table
 * of waiter slots in one shared mapping. A waiter takes a free slot, with
 * the lock held: it locks the slot's robust mutex (its "I am alive" flag
 * for as long as it waits), takes a ticket (its place in line) and sets
 * the slot's futex word to WAITING; then it releases the lock and sleeps
 * on that word. notify, with the lock held, sets the words of the
 * longest-waiting living waiters to NOTIFIED and wakes each. Every slot
 * field is written with the lock held, except the word's last change
 * (the wakeup), so the table is the lock's to keep consistent.
 *
 * Death. A waiter killed while it waits leaves its slot WAITING with its
 * mutex marked dead by the kernel: notify reads that (without taking the
 * mutex) and passes over it, and the slot is reused by the next waiter
 * that finds its mutex free to take. A notifier killed between its store
 * and its wakeup leaves the waiter to see the store at its next slice.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#define COND_SLOTS 256

enum { SLOT_FREE, SLOT_WAITING, SLOT_NOTIFIED };

typedef struct cond_slot {
  pthread_mutex_t live;   /* held by the waiter while it waits */
  _Atomic uint32_t word;  /* SLOT_*; the futex word the waiter sleeps on */
  uint64_t ticket;        /* its place in line: lower waited longer */
} cond_slot;

typedef struct cond_shared {
  uint64_t next_ticket; /* under the lock */
  uint32_t hwm;         /* slots [0, hwm) have been used; under the lock */
  cond_slot slot[COND_SLOTS];
} cond_shared;

struct mp_cond {
  cond_shared *sh;
  mp_lock *lock;
  int own_lock; /* the condition made lock and frees it */
};

int mp_cond_create(mp_cond **out, mp_lock *lock) {
  if (!out)
    return MP_EINVAL;
  mp_cond *c = malloc(sizeof *c);
  if (!c)
    return -ENOMEM;
  c->own_lock = lock == NULL;
  c->lock = lock;
  void *m = NULL;
  int rc = c->own_lock ? mp_lock_create(&c->lock) : 0;
  if (rc == 0)
    rc = mp__ipc_map(&m, sizeof *c->sh);
  for (int i = 0; rc == 0 && i < COND_SLOTS; i++)
    rc = mp__ipc_mutex_init(&((cond_shared *)m)->slot[i].live, 0);
  if (rc < 0) {
    mp__ipc_unmap(m, sizeof *c->sh);
    if (c->own_lock)
      mp_lock_free(c->lock);
    free(c);
    return rc;
  }
  c->sh = m;
  *out = c;
  return 0;
}

int mp_cond_acquire(mp_cond *c, double timeout) {
  return c ? mp_lock_acquire(c->lock, timeout) : MP_EINVAL;
}

int mp_cond_release(mp_cond *c) {
  return c ? mp_lock_release(c->lock) : MP_EINVAL;
}

static int cond_holding(mp_cond *c) {
  return mp__ipc_mutex_mine(mp__lock_mutex(c->lock));
}

/* With the lock held: a slot whose mutex this thread now holds, or NULL.
 * A slot is free when its mutex can be taken: its waiter has left, or
 * died (the mutex says so once, to whoever takes it next: us). */
static cond_slot *cond_claim(cond_shared *sh) {
  for (uint32_t i = 0; i < COND_SLOTS; i++) {
    cond_slot *s = &sh->slot[i];
    int rc = pthread_mutex_trylock(&s->live);
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(&s->live);
      rc = 0;
    }
    if (rc != 0)
      continue; /* EBUSY: a living waiter's */
    if (i >= sh->hwm)
      sh->hwm = i + 1;
    return s;
  }
  return NULL;
}

/* Wait with the lock held, until deadline. See mp_cond_wait. */
static int cond_wait_until(mp_cond *c, int64_t deadline) {
  if (!cond_holding(c))
    return -EPERM;
  cond_shared *sh = c->sh;
  cond_slot *s = cond_claim(sh);
  if (!s)
    return -EAGAIN;
  s->ticket = sh->next_ticket++;
  atomic_store(&s->word, SLOT_WAITING);
  pthread_mutex_t *lk = mp__lock_mutex(c->lock);
  mp__ipc_mutex_unlock(lk);
  /* A notify between the unlock and the sleep has changed the word: the
   * futex returns at once. */
  while (atomic_load(&s->word) == SLOT_WAITING)
    if (mp__futex_wait(&s->word, SLOT_WAITING, deadline) == MP_ETIMEDOUT)
      break;
  int lrc = mp__ipc_mutex_lock(lk, INT64_MAX);
  /* Under the lock again: a notify that came after our timeout but before
   * we got the lock still counts (Python would lose it). */
  int notified = atomic_load(&s->word) == SLOT_NOTIFIED;
  atomic_store(&s->word, SLOT_FREE);
  pthread_mutex_unlock(&s->live);
  if (lrc == MP_EOWNERDEAD)
    return MP_EOWNERDEAD;
  if (lrc < 0) /* not a deadline, not EDEADLK: only a broken mutex */
    return lrc;
  return notified ? 0 : MP_ETIMEDOUT;
}

int mp_cond_wait(mp_cond *c, double timeout) {
  if (!c)
    return MP_EINVAL;
  return cond_wait_until(c, mp__deadline(timeout));
}

int mp_cond_wait_for(mp_cond *c, int (*pred)(void *arg), void *arg,
                     double timeout) {
  if (!c || !pred)
    return MP_EINVAL;
  if (!cond_holding(c))
    return -EPERM;
  int64_t deadline = mp__deadline(timeout);
  while (!pred(arg)) {
    int rc = cond_wait_until(c, deadline);
    if (rc == MP_ETIMEDOUT)
      return pred(arg) ? 0 : MP_ETIMEDOUT;
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Is the waiter of slot s (WAITING) alive? Its mutex says: held by a
 * thread that lives, or marked dead. A slot WAITING whose mutex is free
 * cannot be (the waiter locks before it sets WAITING and leaves after it
 * clears it, with the lock held): treated as dead. */
static int cond_alive(cond_slot *s) {
  return mp__ipc_mutex_held(&s->live) == MP__HELD_LIVE;
}

static void cond_signal(cond_slot *s) {
  atomic_store(&s->word, SLOT_NOTIFIED);
  mp__futex_wake(&s->word, 1);
}

int mp_cond_notify(mp_cond *c, int n) {
  if (!c || n < 0)
    return MP_EINVAL;
  if (!cond_holding(c))
    return -EPERM;
  cond_shared *sh = c->sh;
  int woken = 0;
  while (woken < n) {
    cond_slot *first = NULL;
    for (uint32_t i = 0; i < sh->hwm && i < COND_SLOTS; i++) {
      cond_slot *s = &sh->slot[i];
      if (atomic_load(&s->word) != SLOT_WAITING || !cond_alive(s))
        continue;
      if (!first || s->ticket < first->ticket)
        first = s;
    }
    if (!first)
      break;
    cond_signal(first);
    woken++;
  }
  return woken;
}

int mp_cond_notify_all(mp_cond *c) {
  if (!c)
    return MP_EINVAL;
  if (!cond_holding(c))
    return -EPERM;
  cond_shared *sh = c->sh;
  int woken = 0;
  for (uint32_t i = 0; i < sh->hwm && i < COND_SLOTS; i++) {
    cond_slot *s = &sh->slot[i];
    if (atomic_load(&s->word) == SLOT_WAITING && cond_alive(s)) {
      cond_signal(s);
      woken++;
    }
  }
  return woken;
}

void mp_cond_free(mp_cond *c) {
  if (!c)
    return;
  mp__ipc_unmap(c->sh, sizeof *c->sh);
  if (c->own_lock)
    mp_lock_free(c->lock);
  free(c);
}
