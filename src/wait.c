/* wait.c: mp_wait, Python's multiprocessing.connection.wait(): one poll()
 * over pipe ends, listeners, processes and pool results.
 *
 * A pipe end or a listener is ready when its socket is readable; a
 * process when its pidfd is. A pool result becomes ready only when its
 * pool's loop runs, so each distinct pool takes part in the poll as
 * mp__pool_pollfds describes it: the fds its transport's wait would poll
 * and the time by which it needs a round anyway (a task timeout, a dead
 * worker to report). After the poll every such pool runs one round that
 * does not block (mp__pool_step(p, 0)), which completes what arrived.
 * Level-triggered poll() and a round after every wakeup: nothing that
 * happened before or during the poll is missed. Slices only where the
 * kernel offers no fd: a process without a pidfd (100 ms, as join), a
 * transport without pollfds (MP__POOL_SLICE_NS).
 */
#include "ipc/ipc_internal.h"
#include "pool/pool_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

#define WAIT_PROC_SLICE_NS ((int64_t)100 * 1000000)

/* The pool of entry i when it is a pending result whose pool no earlier
 * entry has; else NULL. */
static mp_pool *wait_new_pool(const mp_waitable *w, size_t i) {
  if (w[i].kind != MP_WAIT_RESULT)
    return NULL;
  const mp_result *r = w[i].obj;
  if (r->state == JOB_COMPLETE || !r->pool)
    return NULL;
  for (size_t k = 0; k < i; k++) {
    if (w[k].kind != MP_WAIT_RESULT)
      continue;
    const mp_result *o = w[k].obj;
    if (o->state != JOB_COMPLETE && o->pool == r->pool)
      return NULL;
  }
  return r->pool;
}

/* Whether entry i is ready now, without waiting (a process is reaped when
 * it has ended). */
static int wait_ready_now(mp_waitable *e) {
  switch (e->kind) {
  case MP_WAIT_PROCESS:
    return !mp_process_is_alive(e->obj);
  case MP_WAIT_RESULT: {
    const mp_result *r = e->obj;
    return r->state == JOB_COMPLETE || !r->pool;
  }
  default:
    return 0;
  }
}

/* The socket of a pipe end or listener entry. */
static int wait_sock(const mp_waitable *e) {
  return e->kind == MP_WAIT_PIPE ? mp__pipe_fd(e->obj)
                                 : mp__listener_fd(e->obj);
}

/* Room for need entries in *fds. Returns 0 or -ENOMEM. */
static int wait_room(struct pollfd **fds, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : 16;
  while (c < need)
    c *= 2;
  struct pollfd *nf = realloc(*fds, c * sizeof *nf);
  if (!nf)
    return -ENOMEM;
  *fds = nf;
  *cap = c;
  return 0;
}

/* One pass: poll until something may be ready or the deadline, then mark.
 * Returns the number ready, or a negative code. */
static int wait_pass(mp_waitable *w, size_t n, int64_t deadline,
                     struct pollfd **fds, size_t *cap, int *slot) {
  size_t nf = 0;
  int64_t wake = deadline;
  int rc;
  for (size_t i = 0; i < n; i++) {
    mp_waitable *e = &w[i];
    slot[i] = -1;
    if (wait_ready_now(e)) {
      wake = 0; /* poll only to collect the others */
      continue;
    }
    int fd = -1;
    if (e->kind == MP_WAIT_PIPE || e->kind == MP_WAIT_LISTENER)
      fd = wait_sock(e);
    else if (e->kind == MP_WAIT_PROCESS) {
      fd = mp__process_fd(e->obj);
      if (!mp__process_has_pidfd(e->obj)) {
        int64_t s = mp__now_ns() + WAIT_PROC_SLICE_NS;
        wake = s < wake ? s : wake;
      }
    } else {
      mp_pool *p = wait_new_pool(w, i);
      if (!p)
        continue;
      for (;;) {
        int k = mp__pool_pollfds(p, *fds + nf, (int)(*cap - nf), &wake);
        if (k < 0)
          return k;
        if ((size_t)k <= *cap - nf) {
          nf += (size_t)k;
          break;
        }
        if ((rc = wait_room(fds, cap, nf + (size_t)k)) < 0)
          return rc;
      }
      continue;
    }
    if (fd < 0)
      continue;
    if ((rc = wait_room(fds, cap, nf + 1)) < 0)
      return rc;
    (*fds)[nf] = (struct pollfd){.fd = fd, .events = POLLIN};
    slot[i] = (int)nf++;
  }
  rc = mp__poll(*fds, (unsigned)nf, wake);
  if (rc < 0)
    return rc;
  /* Every pool runs its round, whether or not one of its fds fired: its
   * deadline may be what woke us. */
  for (size_t i = 0; i < n; i++) {
    mp_pool *p = wait_new_pool(w, i);
    if (p && (rc = mp__pool_step(p, 0)) < 0)
      return rc;
  }
  int ready = 0;
  for (size_t i = 0; i < n; i++) {
    mp_waitable *e = &w[i];
    if (e->kind == MP_WAIT_PIPE || e->kind == MP_WAIT_LISTENER)
      e->ready = slot[i] >= 0 && (*fds)[slot[i]].revents != 0;
    else
      e->ready = wait_ready_now(e);
    ready += e->ready;
  }
  return ready;
}

int mp_wait(mp_waitable *w, size_t n, double timeout) {
  if (!w || n == 0 || n > INT_MAX / 4)
    return MP_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!w[i].obj || w[i].kind < MP_WAIT_PIPE || w[i].kind > MP_WAIT_LISTENER)
      return MP_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    if (w[i].kind == MP_WAIT_PROCESS && mp_process_pid(w[i].obj) == 0)
      return MP_ESTATE;
    w[i].ready = 0;
  }
  int *slot = malloc(n * sizeof *slot);
  if (!slot)
    return -ENOMEM;
  struct pollfd *fds = NULL;
  size_t cap = 0;
  if (wait_room(&fds, &cap, n + 16) < 0) {
    free(slot);
    return -ENOMEM;
  }
  int64_t deadline = mp__deadline(timeout);
  int rc;
  for (;;) {
    rc = wait_pass(w, n, deadline, &fds, &cap, slot);
    if (rc != 0 || mp__now_ns() >= deadline)
      break;
  }
  free(fds);
  free(slot);
  return rc;
}
