/* sync.c: mp_lock, mp_rlock, mp_sem, mp_event, and the robust-mutex helpers
 * the other IPC objects build on. Each object lives in one shared anonymous
 * mapping, so a forked child uses its parent's object through the handle it
 * inherited; the handle itself is a small private struct. */
#include "ipc_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- robust mutexes ---- */

int mp__ipc_mutex_init(pthread_mutex_t *m, int recursive) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (rc)
    return -rc;
  rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!rc)
    rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (!rc)
    rc = pthread_mutexattr_settype(&a, recursive ? PTHREAD_MUTEX_RECURSIVE
                                                 : PTHREAD_MUTEX_ERRORCHECK);
  if (!rc)
    rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return -rc;
}

int mp__ipc_map_locked(void **out, size_t len) {
  int rc = mp__ipc_map(out, len);
  if (rc == 0 && (rc = mp__ipc_mutex_init(*out, 0)) < 0)
    mp__ipc_unmap(*out, len);
  return rc;
}

int mp__ipc_mutex_lock(pthread_mutex_t *m, int64_t deadline) {
  /* The free lock first: no clock read on the fast path. */
  int rc = pthread_mutex_trylock(m);
  while (rc == EBUSY) {
    int64_t now = mp__now_ns();
    if (now >= deadline) {
      rc = ETIMEDOUT;
      break;
    }
    int64_t until = deadline - now > MP__WAIT_SLICE_NS
                        ? now + MP__WAIT_SLICE_NS
                        : deadline;
    struct timespec ts = mp__ns_timespec(until);
    rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
    if (rc == ETIMEDOUT && until != deadline)
      rc = EBUSY; /* a slice over: try again (see sys/futex.h) */
  }
  switch (rc) {
  case 0:
    return 0;
  case EOWNERDEAD:
    /* The holder died inside its critical section. We hold the lock now;
     * mark it usable again and let the caller judge the data. */
    pthread_mutex_consistent(m);
    return MP_EOWNERDEAD;
  case ETIMEDOUT:
    return MP_ETIMEDOUT;
  default:
    return -rc;
  }
}

int mp__ipc_mutex_unlock(pthread_mutex_t *m) {
  return -pthread_mutex_unlock(m);
}

/*
 * A robust mutex's futex word has the format the kernel's robust-futex ABI
 * fixes (Documentation/locking/robust-futex-ABI.rst): the holder's thread
 * id in FUTEX_TID_MASK, plus FUTEX_WAITERS, plus FUTEX_OWNER_DIED, which
 * the kernel sets (clearing the id) when the holder dies. glibc keeps that
 * word in __data.__lock. Reading it is a plain load: no lock taken, so a
 * look at another's mutex can neither delay its holder nor consume the
 * EOWNERDEAD its next acquirer is owed.
 */
static uint32_t mutex_word(pthread_mutex_t *m) {
  return (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_SEQ_CST);
}

int mp__ipc_mutex_held(pthread_mutex_t *m) {
  uint32_t w = mutex_word(m);
  if (w & FUTEX_TID_MASK)
    return MP__HELD_LIVE;
  return (w & FUTEX_OWNER_DIED) ? MP__HELD_DEAD : MP__HELD_NONE;
}

int mp__ipc_mutex_mine(pthread_mutex_t *m) {
  uint32_t tid = mutex_word(m) & FUTEX_TID_MASK;
  return tid != 0 && tid == (uint32_t)gettid();
}

/* ---- mp_lock ---- */

struct mp_lock {
  pthread_mutex_t *mu; /* in the shared mapping */
};

int mp_lock_create(mp_lock **out) {
  if (!out)
    return MP_EINVAL;
  mp_lock *l = malloc(sizeof *l);
  if (!l)
    return -ENOMEM;
  void *m;
  int rc = mp__ipc_map_locked(&m, sizeof *l->mu);
  if (rc < 0) {
    free(l);
    return rc;
  }
  l->mu = m;
  *out = l;
  return 0;
}

int mp_lock_acquire(mp_lock *l, double timeout) {
  if (!l)
    return MP_EINVAL;
  return mp__ipc_mutex_lock(l->mu, mp__deadline(timeout));
}

int mp_lock_release(mp_lock *l) {
  if (!l)
    return MP_EINVAL;
  return mp__ipc_mutex_unlock(l->mu);
}

int mp_lock_locked(const mp_lock *l) {
  if (!l)
    return MP_EINVAL;
  return mp__ipc_mutex_held(l->mu) == MP__HELD_LIVE;
}

pthread_mutex_t *mp__lock_mutex(mp_lock *l) { return l->mu; }

void mp_lock_free(mp_lock *l) {
  if (!l)
    return;
  /* No pthread_mutex_destroy: other processes may still use their mapping,
   * and a glibc mutex owns nothing outside it. */
  mp__ipc_unmap(l->mu, sizeof *l->mu);
  free(l);
}

/* ---- mp_rlock ---- */

/* glibc's robust recursive mutex keeps the owner (a thread id, unique
 * across processes) and the count itself; the kernel's robust list hands
 * it on with EOWNERDEAD, the count reset to 1, when its owner dies. */
struct mp_rlock {
  pthread_mutex_t *mu; /* in the shared mapping */
};

int mp_rlock_create(mp_rlock **out) {
  if (!out)
    return MP_EINVAL;
  mp_rlock *r = malloc(sizeof *r);
  if (!r)
    return -ENOMEM;
  void *m;
  int rc = mp__ipc_map(&m, sizeof *r->mu);
  if (rc == 0 && (rc = mp__ipc_mutex_init(m, 1)) < 0)
    mp__ipc_unmap(m, sizeof *r->mu);
  if (rc < 0) {
    free(r);
    return rc;
  }
  r->mu = m;
  *out = r;
  return 0;
}

int mp_rlock_acquire(mp_rlock *r, double timeout) {
  if (!r)
    return MP_EINVAL;
  return mp__ipc_mutex_lock(r->mu, mp__deadline(timeout));
}

int mp_rlock_release(mp_rlock *r) {
  if (!r)
    return MP_EINVAL;
  return mp__ipc_mutex_unlock(r->mu);
}

int mp_rlock_locked(const mp_rlock *r) {
  if (!r)
    return MP_EINVAL;
  return mp__ipc_mutex_held(r->mu) == MP__HELD_LIVE;
}

void mp_rlock_free(mp_rlock *r) {
  if (!r)
    return;
  mp__ipc_unmap(r->mu, sizeof *r->mu);
  free(r);
}

/* ---- mp_sem ---- */

typedef struct sem_shared {
  _Atomic uint32_t value; /* the futex word */
  _Atomic uint32_t nwait; /* sleepers, so release skips the syscall */
} sem_shared;

struct mp_sem {
  sem_shared *s;
  uint32_t bound; /* private copy: never trust shared memory for limits */
};

#define SEM_MAX ((uint32_t)INT_MAX)

int mp_sem_create(mp_sem **out, unsigned value, unsigned bound) {
  if (!out || value > SEM_MAX || bound > SEM_MAX || (bound && value > bound))
    return MP_EINVAL;
  mp_sem *s = malloc(sizeof *s);
  if (!s)
    return -ENOMEM;
  void *m;
  int rc = mp__ipc_map(&m, sizeof *s->s);
  if (rc < 0) {
    free(s);
    return rc;
  }
  s->s = m;
  s->bound = bound;
  atomic_init(&s->s->value, value);
  *out = s;
  return 0;
}

/* Take one unit if there is one: 1, else 0. */
static int sem_try(sem_shared *s) {
  uint32_t v = atomic_load(&s->value);
  while (v > 0)
    if (atomic_compare_exchange_weak(&s->value, &v, v - 1))
      return 1;
  return 0;
}

int mp_sem_acquire(mp_sem *sem, double timeout) {
  if (!sem)
    return MP_EINVAL;
  sem_shared *s = sem->s;
  int64_t deadline = mp__deadline(timeout);
  for (;;) {
    if (sem_try(s))
      return 0;
    /* nwait is raised before the value is re-checked in the kernel, and a
     * releaser raises the value before reading nwait: one of us sees the
     * other (both seq_cst), so no wakeup is lost. */
    atomic_fetch_add(&s->nwait, 1);
    int rc = mp__futex_wait(&s->value, 0, deadline);
    atomic_fetch_sub(&s->nwait, 1);
    if (rc == MP_ETIMEDOUT) /* a last try: it may have risen meanwhile */
      return sem_try(s) ? 0 : MP_ETIMEDOUT;
  }
}

int mp_sem_release(mp_sem *sem) {
  if (!sem)
    return MP_EINVAL;
  sem_shared *s = sem->s;
  uint32_t limit = sem->bound ? sem->bound : SEM_MAX;
  uint32_t v = atomic_load(&s->value);
  do {
    if (v >= limit)
      return sem->bound ? MP_ESTATE : -EOVERFLOW;
  } while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
  if (atomic_load(&s->nwait) > 0)
    mp__futex_wake(&s->value, 1);
  return 0;
}

int mp_sem_value(const mp_sem *sem) {
  if (!sem)
    return MP_EINVAL;
  return (int)atomic_load(&sem->s->value);
}

void mp_sem_free(mp_sem *sem) {
  if (!sem)
    return;
  mp__ipc_unmap(sem->s, sizeof *sem->s);
  free(sem);
}

/* ---- mp_event ---- */

typedef struct event_shared {
  _Atomic uint32_t flag; /* the futex word: 0 clear, 1 set */
  _Atomic uint32_t nwait;
} event_shared;

struct mp_event {
  event_shared *e;
};

int mp_event_create(mp_event **out) {
  if (!out)
    return MP_EINVAL;
  mp_event *ev = malloc(sizeof *ev);
  if (!ev)
    return -ENOMEM;
  void *m;
  int rc = mp__ipc_map(&m, sizeof *ev->e);
  if (rc < 0) {
    free(ev);
    return rc;
  }
  ev->e = m;
  *out = ev;
  return 0;
}

int mp_event_set(mp_event *ev) {
  if (!ev)
    return MP_EINVAL;
  atomic_store(&ev->e->flag, 1);
  if (atomic_load(&ev->e->nwait) > 0)
    mp__futex_wake(&ev->e->flag, INT32_MAX);
  return 0;
}

int mp_event_clear(mp_event *ev) {
  if (!ev)
    return MP_EINVAL;
  atomic_store(&ev->e->flag, 0);
  return 0;
}

int mp_event_is_set(const mp_event *ev) {
  if (!ev)
    return MP_EINVAL;
  return atomic_load(&ev->e->flag) != 0;
}

int mp_event_wait(mp_event *ev, double timeout) {
  if (!ev)
    return MP_EINVAL;
  event_shared *e = ev->e;
  int64_t deadline = mp__deadline(timeout);
  while (!atomic_load(&e->flag)) {
    atomic_fetch_add(&e->nwait, 1);
    int rc = mp__futex_wait(&e->flag, 0, deadline);
    atomic_fetch_sub(&e->nwait, 1);
    if (rc == MP_ETIMEDOUT)
      return atomic_load(&e->flag) ? 0 : MP_ETIMEDOUT;
  }
  return 0;
}

void mp_event_free(mp_event *ev) {
  if (!ev)
    return;
  mp__ipc_unmap(ev->e, sizeof *ev->e);
  free(ev);
}
