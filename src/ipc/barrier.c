/* barrier.c: mp_barrier, Python's Barrier, between processes.
 *
 * One shared mapping: a robust mutex (mu), the state word, and a table of
 * party slots. The state word is the futex every waiter sleeps on:
 * generation << 1 | broken. A round ends with one store to it: the next
 * generation (released), or the broken bit. The broken bit stays until
 * reset, which marks the slots of the parties still waiting RESET (so
 * they know they were not released) and then starts the next generation.
 *
 * A party arrives with mu held: it takes a free slot, whose robust mutex
 * (live) it holds until it leaves, then stores its generation and, last,
 * SLOT_WAITING: that store is its arrival. The parties waiting in the
 * current generation are the slots WAITING with its number; nothing else
 * counts them, so a party killed half-way through arriving has arrived or
 * has not, and there is no count to repair. Whoever takes mu after a dead
 * holder has nothing to mend either: every change is one store.
 *
 * Death: a party killed while it waits (or runs the action) leaves its
 * slot WAITING with its live mutex marked dead by the kernel. Every
 * waiter looks at the slots of its generation in each slice of its wait
 * (reading the mutexes' words, not taking them) and every arrival looks
 * before it counts itself in; a dead one breaks the barrier. Slots are
 * reused once their mutex can be taken: their party left, or died.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#define BARRIER_MAX 1024

enum { SLOT_FREE, SLOT_WAITING, SLOT_RESET };

typedef struct barrier_slot {
  pthread_mutex_t live;  /* held by its party from arrival to leaving */
  _Atomic uint32_t st;   /* SLOT_*; written under mu, or by its party */
  _Atomic uint32_t gen;  /* the generation it arrived in */
} barrier_slot;

typedef struct barrier_shared {
  pthread_mutex_t mu;
  _Atomic uint32_t state; /* futex word: generation << 1 | broken */
  barrier_slot slot[];
} barrier_shared;

/* Private to each process: limits never come from shared memory. */
struct mp_barrier {
  barrier_shared *sh;
  size_t map_len;
  uint32_t parties;
  uint32_t nslots;
  mp_barrier_opts opts;
};

int mp_barrier_create(mp_barrier **out, unsigned parties,
                      const mp_barrier_opts *opts) {
  if (!out || parties == 0 || parties > BARRIER_MAX ||
      (opts && !(opts->timeout >= 0)))
    return MP_EINVAL;
  mp_barrier *b = malloc(sizeof *b);
  if (!b)
    return -ENOMEM;
  b->parties = parties;
  /* The current round's parties, and those of earlier rounds still on
   * their way out; more are waited for (barrier_arrive). */
  b->nslots = 2 * parties + 2;
  b->opts = opts ? *opts : (mp_barrier_opts){0};
  b->map_len = sizeof *b->sh + b->nslots * sizeof b->sh->slot[0];
  void *m;
  int rc = mp__ipc_map_locked(&m, b->map_len); /* the mutex is sh->mu */
  for (uint32_t i = 0; rc == 0 && i < b->nslots; i++)
    if ((rc = mp__ipc_mutex_init(&((barrier_shared *)m)->slot[i].live, 0)) < 0)
      mp__ipc_unmap(m, b->map_len);
  if (rc < 0) {
    free(b);
    return rc;
  }
  b->sh = m;
  *out = b;
  return 0;
}

/* mu, for as long as it takes. A dead previous holder left nothing half
 * done (see the top): EOWNERDEAD is as good as 0. */
static void barrier_lock(mp_barrier *b) {
  (void)mp__ipc_mutex_lock(&b->sh->mu, INT64_MAX);
}

static void barrier_unlock_wake(mp_barrier *b) {
  mp__ipc_mutex_unlock(&b->sh->mu);
  mp__futex_wake(&b->sh->state, INT32_MAX);
}

/* The parties waiting in generation gen: how many are alive; *dead set
 * when one is not (its slot WAITING, its mutex not held by a living
 * thread). Exact with mu held and the state unchanged; a hint without. */
static uint32_t barrier_scan(const mp_barrier *b, uint32_t gen, int *dead) {
  uint32_t n = 0;
  *dead = 0;
  for (uint32_t i = 0; i < b->nslots; i++) {
    barrier_slot *s = &b->sh->slot[i];
    if (atomic_load(&s->st) != SLOT_WAITING || atomic_load(&s->gen) != gen)
      continue;
    if (mp__ipc_mutex_held(&s->live) == MP__HELD_LIVE)
      n++;
    else
      *dead = 1;
  }
  return n;
}

/* With mu held, in generation gen: a slot whose live mutex this thread
 * now holds, or NULL when all are in use. */
static barrier_slot *barrier_claim(mp_barrier *b, uint32_t gen) {
  for (uint32_t i = 0; i < b->nslots; i++) {
    barrier_slot *s = &b->sh->slot[i];
    if (atomic_load(&s->st) == SLOT_WAITING && atomic_load(&s->gen) == gen)
      continue; /* a party of this round (a dead one breaks it first) */
    int rc = pthread_mutex_trylock(&s->live);
    if (rc == EOWNERDEAD) { /* its party died after its round: reuse */
      pthread_mutex_consistent(&s->live);
      rc = 0;
    }
    if (rc == 0)
      return s;
  }
  return NULL;
}

static void barrier_leave(barrier_slot *s) {
  atomic_store(&s->st, SLOT_FREE);
  pthread_mutex_unlock(&s->live);
}

/* With mu held: break the round, if the state is still s. */
static void barrier_break_if(mp_barrier *b, uint32_t s) {
  if (!(s & 1))
    atomic_compare_exchange_strong(&b->sh->state, &s, s | 1);
}

int mp_barrier_wait(mp_barrier *b, double timeout) {
  if (!b)
    return MP_EINVAL;
  if (timeout < 0 && b->opts.timeout > 0)
    timeout = b->opts.timeout;
  int64_t deadline = mp__deadline(timeout);
  barrier_shared *sh = b->sh;
  barrier_slot *slot;
  uint32_t s, gen, index;
  for (;;) {
    barrier_lock(b);
    s = atomic_load(&sh->state);
    gen = s >> 1;
    int dead;
    index = barrier_scan(b, gen, &dead);
    if (dead) /* a party died waiting: count no dead party in */
      barrier_break_if(b, s);
    if (dead || (s & 1)) {
      barrier_unlock_wake(b);
      return MP_EBROKEN;
    }
    if ((slot = barrier_claim(b, gen)) != NULL)
      break;
    /* Every slot taken by parties on their way out of earlier rounds:
     * rare; look again in a slice. */
    mp__ipc_mutex_unlock(&sh->mu);
    if (mp__futex_wait(&sh->state, s, deadline) == MP_ETIMEDOUT) {
      barrier_lock(b);
      barrier_break_if(b, s);
      barrier_unlock_wake(b);
      return MP_ETIMEDOUT;
    }
  }
  atomic_store(&slot->gen, gen);
  atomic_store(&slot->st, SLOT_WAITING); /* arrived */

  if (index + 1 >= b->parties) { /* the last: run the action, release */
    int rc = (int)index;
    if (b->opts.action && b->opts.action(b->opts.arg) != 0) {
      barrier_break_if(b, s);
      rc = MP_ETASK;
    } else {
      atomic_store(&sh->state, (gen + 1) << 1); /* released */
    }
    barrier_leave(slot);
    barrier_unlock_wake(b);
    return rc;
  }
  mp__ipc_mutex_unlock(&sh->mu);

  int rc;
  for (;;) {
    uint32_t now = atomic_load(&sh->state);
    if (now >> 1 != gen) { /* released, or reset (which marked us) */
      rc = atomic_load(&slot->st) == SLOT_RESET ? MP_EBROKEN : (int)index;
      break;
    }
    if (now & 1) {
      rc = MP_EBROKEN;
      break;
    }
    int dead, timed_out = 0;
    barrier_scan(b, gen, &dead);
    if (!dead)
      timed_out = mp__futex_wait(&sh->state, now, deadline) == MP_ETIMEDOUT;
    if (dead || timed_out) {
      /* Decide with mu held: the round may have ended meanwhile. */
      barrier_lock(b);
      int still = atomic_load(&sh->state) == now;
      if (still && dead)
        barrier_scan(b, gen, &dead);
      if (still && (dead || timed_out))
        barrier_break_if(b, now);
      barrier_unlock_wake(b);
      if (still && timed_out && !dead) {
        rc = MP_ETIMEDOUT;
        break;
      }
    }
  }
  barrier_leave(slot);
  return rc;
}

int mp_barrier_abort(mp_barrier *b) {
  if (!b)
    return MP_EINVAL;
  barrier_lock(b);
  barrier_break_if(b, atomic_load(&b->sh->state));
  barrier_unlock_wake(b);
  return 0;
}

int mp_barrier_reset(mp_barrier *b) {
  if (!b)
    return MP_EINVAL;
  barrier_lock(b);
  uint32_t s = atomic_load(&b->sh->state), gen = s >> 1;
  /* Broken first: a reset killed half-way leaves the barrier broken, never
   * some waiters told "reset" and the others still waiting. */
  barrier_break_if(b, s);
  for (uint32_t i = 0; i < b->nslots; i++) {
    barrier_slot *sl = &b->sh->slot[i];
    if (atomic_load(&sl->st) == SLOT_WAITING && atomic_load(&sl->gen) == gen)
      atomic_store(&sl->st, SLOT_RESET);
  }
  atomic_store(&b->sh->state, (gen + 1) << 1);
  barrier_unlock_wake(b);
  return 0;
}

int mp_barrier_n_waiting(const mp_barrier *b) {
  if (!b)
    return MP_EINVAL;
  uint32_t s = atomic_load(&b->sh->state);
  if (s & 1)
    return 0;
  int dead;
  return (int)barrier_scan(b, s >> 1, &dead);
}

int mp_barrier_broken(const mp_barrier *b) {
  if (!b)
    return MP_EINVAL;
  return (int)(atomic_load(&b->sh->state) & 1);
}

int mp_barrier_parties(const mp_barrier *b) {
  return b ? (int)b->parties : MP_EINVAL;
}

void mp_barrier_free(mp_barrier *b) {
  if (!b)
    return;
  mp__ipc_unmap(b->sh, b->map_len);
  free(b);
}
