/* shmchan.c: the shared-memory channel (see shmchan.h). */
#include "shmchan.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The shared page. Each index sits on a cache line of its own, so the
 * producer's stores and the consumer's do not fight for one line. */
typedef struct chan_page {
  _Alignas(64) _Atomic uint64_t task_tail; /* parent -> worker */
  _Alignas(64) _Atomic uint64_t task_head;
  _Alignas(64) _Atomic uint64_t res_tail;  /* worker -> parent */
  _Alignas(64) _Atomic uint64_t res_head;
  _Alignas(64) _Atomic uint32_t worker_sleep; /* the worker's futex word */
  _Atomic int32_t worker_cpu;
  _Alignas(64) _Atomic uint32_t parent_sleep;
  _Atomic int32_t parent_cpu;
} chan_page;

enum {
  PAGE = 4096,
  CHAN_BYTES = PAGE + 2 * MP__RING_BYTES,
  RING_MASK = MP__RING_BYTES - 1,
};
_Static_assert(sizeof(chan_page) <= PAGE, "the shared page fits a page");
_Static_assert((MP__RING_BYTES & RING_MASK) == 0, "ring size: a power of two");

/* Spin budgets, ns: a spin that found nothing halves the budget down to
 * SPIN_MIN (so the pair keeps probing whether spinning pays again); one
 * that succeeded after t raises it to cover 2t. SPIN_MAX bounds what one
 * wait may burn: about what a wake-up across CPUs costs here. */
enum { SPIN_MIN = 2000, SPIN_START = 20000, SPIN_MAX = 50000 };

static int memfd_size(int fd) {
  return ftruncate(fd, CHAN_BYTES) < 0 ? -errno : 0;
}

int mp__chan_create(void) {
  int fd = mp__memfd_reg("mpool-chan");
  if (fd < 0)
    return fd;
  int rc = memfd_size(fd);
  if (rc < 0) {
    mp__fd_drop(&fd);
    return rc;
  }
  return fd;
}

int mp__cpus_usable(void) {
  /* The machine's CPUs, not this process's affinity: a spinner pinned to
   * one CPU still gains when its peer runs on another (whether the peer
   * shares its CPU is checked wait by wait). Read once (sysconf opens a
   * file: not on every worker start). */
  static _Atomic int cached;
  int n = atomic_load_explicit(&cached, memory_order_relaxed);
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
    atomic_store_explicit(&cached, n, memory_order_relaxed);
  }
  return n;
}

int mp__chan_open(mp__chan *c, int fd, int parent, int wake_fd) {
  memset(c, 0, sizeof *c);
  void *m = mmap(NULL, CHAN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED)
    return -errno;
  /* Not inherited: no other child of this process (another pool's worker,
   * a task's own fork) can scribble on it or keep it alive. */
  (void)madvise(m, CHAN_BYTES, MADV_DONTFORK);
  chan_page *pg = m;
  char *task = (char *)m + PAGE, *res = task + MP__RING_BYTES;
  c->map = m;
  c->parent = parent;
  c->wake_fd = wake_fd;
  mp__spin_init(&c->spin);
  if (parent) {
    c->tx = task;
    c->rx = res;
    c->tx_tail = &pg->task_tail;
    c->tx_head = &pg->task_head;
    c->rx_tail = &pg->res_tail;
    c->rx_head = &pg->res_head;
    c->my_sleep = &pg->parent_sleep;
    c->peer_sleep = &pg->worker_sleep;
    c->my_cpu = &pg->parent_cpu;
    c->peer_cpu = &pg->worker_cpu;
    atomic_store(&pg->worker_cpu, -1);
    atomic_store(&pg->parent_cpu, -1);
  } else {
    c->tx = res;
    c->rx = task;
    c->tx_tail = &pg->res_tail;
    c->tx_head = &pg->res_head;
    c->rx_tail = &pg->task_tail;
    c->rx_head = &pg->task_head;
    c->my_sleep = &pg->worker_sleep;
    c->peer_sleep = &pg->parent_sleep;
    c->my_cpu = &pg->worker_cpu;
    c->peer_cpu = &pg->parent_cpu;
  }
  /* A fresh memfd is zeros: both rings empty, nobody asleep. The private
   * indices start where the shared ones are (a worker opens the page the
   * parent made, before anything was written). */
  c->tx_pos = c->tx_seen = atomic_load(c->tx_tail);
  c->rx_pos = atomic_load(c->rx_head);
  return 0;
}

void mp__chan_reset(mp__chan *c) {
  chan_page *pg = c->map;
  memset(pg, 0, sizeof *pg);
  atomic_store(&pg->worker_cpu, -1);
  atomic_store(&pg->parent_cpu, -1);
  c->tx_pos = c->tx_seen = c->rx_pos = 0;
  c->woke = 0;
}

void mp__chan_close(mp__chan *c) {
  if (c->map)
    munmap(c->map, CHAN_BYTES);
  memset(c, 0, sizeof *c);
}

/* The peer's head, validated: between the last one seen and our tail. */
static int tx_head_check(mp__chan *c) {
  uint64_t h = atomic_load_explicit(c->tx_head, memory_order_acquire);
  if (h - c->tx_seen > c->tx_pos - c->tx_seen)
    return MP_EPROTO;
  c->tx_seen = h;
  return 0;
}

ssize_t mp__chan_room(mp__chan *c) {
  if (tx_head_check(c) < 0)
    return MP_EPROTO;
  return (ssize_t)(MP__RING_BYTES - (size_t)(c->tx_pos - c->tx_seen));
}

ssize_t mp__chan_put(mp__chan *c, const struct iovec *iov, int n) {
  ssize_t r = mp__chan_room(c);
  if (r < 0)
    return r;
  size_t room = (size_t)r;
  size_t put = 0;
  uint64_t pos = c->tx_pos;
  for (int i = 0; i < n && put < room; i++) {
    const char *src = iov[i].iov_base;
    size_t len = iov[i].iov_len;
    if (len > room - put)
      len = room - put;
    if (!len)
      continue;
    size_t off = (size_t)(pos & RING_MASK);
    size_t first = len < MP__RING_BYTES - off ? len : MP__RING_BYTES - off;
    memcpy(c->tx + off, src, first);
    memcpy(c->tx, src + first, len - first);
    pos += len;
    put += len;
  }
  if (put) {
    c->tx_pos = pos;
    atomic_store_explicit(c->tx_tail, pos, memory_order_release);
  }
  return (ssize_t)put;
}

ssize_t mp__chan_get(mp__chan *c, void *buf, size_t cap) {
  uint64_t t = atomic_load_explicit(c->rx_tail, memory_order_acquire);
  uint64_t avail = t - c->rx_pos;
  if (avail > MP__RING_BYTES)
    return MP_EPROTO;
  size_t len = avail < cap ? (size_t)avail : cap;
  if (!len)
    return 0;
  size_t off = (size_t)(c->rx_pos & RING_MASK);
  size_t first = len < MP__RING_BYTES - off ? len : MP__RING_BYTES - off;
  memcpy(buf, c->rx + off, first);
  memcpy((char *)buf + first, c->rx, len - first);
  c->rx_pos += len;
  atomic_store_explicit(c->rx_head, c->rx_pos, memory_order_release);
  return (ssize_t)len;
}

void mp__chan_restate(mp__chan *c) {
  if (atomic_load_explicit(c->rx_head, memory_order_relaxed) != c->rx_pos)
    atomic_store_explicit(c->rx_head, c->rx_pos, memory_order_release);
  mp__chan_wake_room(c);
}

int mp__chan_readable(const mp__chan *c) {
  return atomic_load_explicit(c->rx_tail, memory_order_acquire) != c->rx_pos;
}

int mp__chan_writable(const mp__chan *c) {
  uint64_t h = atomic_load_explicit(c->tx_head, memory_order_acquire);
  return MP__RING_BYTES - (c->tx_pos - h) >= MP__CHAN_MIN_ROOM;
}

/* Wake the peer if it sleeps waiting for any of what (an announcement is
 * taken by one waker only, so a sleeper gets one wake-up per sleep). */
static void wake(mp__chan *c, uint32_t what) {
  /* Pairs with the sleeper's fence between its announcement and its last
   * look: either it sees our bytes, or we see its announcement. */
  atomic_thread_fence(memory_order_seq_cst);
  uint32_t s = atomic_load_explicit(c->peer_sleep, memory_order_relaxed);
  if (!(s & what))
    return;
  if (!atomic_compare_exchange_strong(c->peer_sleep, &s, 0))
    return; /* it woke, or another waker took it */
  c->woke = 1;
  if (c->parent) {
    mp__futex_wake(c->peer_sleep, 1);
  } else {
    static const char byte = MP__CHAN_WAKE;
    /* The pipe holds at most one byte per sleep: it never fills. */
    ssize_t r;
    while ((r = write(c->wake_fd, &byte, 1)) < 0 && errno == EINTR)
      ;
    c->wakes += r == 1;
  }
}

void mp__chan_wake_data(mp__chan *c) {
  wake(c, MP__SLEEP_DATA | MP__SLEEP_ROOM);
}

void mp__chan_wake_room(mp__chan *c) { wake(c, MP__SLEEP_ROOM); }

int mp__chan_peer_asleep(const mp__chan *c) {
  return atomic_load_explicit(c->peer_sleep, memory_order_relaxed) != 0;
}

int mp__chan_peer_cpu(const mp__chan *c) {
  return atomic_load_explicit(c->peer_cpu, memory_order_relaxed);
}

void mp__chan_set_cpu(mp__chan *c, int cpu) {
  if (atomic_load_explicit(c->my_cpu, memory_order_relaxed) != cpu)
    atomic_store_explicit(c->my_cpu, cpu, memory_order_relaxed);
}

uint32_t mp__chan_sleep_begin(mp__chan *c, uint32_t what) {
  uint32_t was = atomic_exchange_explicit(c->my_sleep, what,
                                          memory_order_relaxed);
  atomic_thread_fence(memory_order_seq_cst);
  return was;
}

void mp__chan_gone(mp__chan *c) {
  atomic_store_explicit(c->my_sleep, MP__SLEEP_GONE, memory_order_release);
}

void mp__chan_sleep_end(mp__chan *c) {
  atomic_store_explicit(c->my_sleep, 0, memory_order_relaxed);
}

uint32_t mp__chan_sleep_take(mp__chan *c) {
  return atomic_exchange_explicit(c->my_sleep, 0, memory_order_relaxed);
}

void mp__spin_init(mp__spin *s) {
  s->ns = SPIN_START;
  s->ncpu = mp__cpus_usable();
}

int64_t mp__spin_budget(const mp__spin *s) {
  return s->ncpu > 1 ? s->ns : 0;
}

void mp__spin_learn(mp__spin *s, int64_t took) {
  if (took < 0) {
    s->ns = s->ns / 2 > SPIN_MIN ? s->ns / 2 : SPIN_MIN;
    return;
  }
  int64_t want = 2 * took + SPIN_MIN;
  if (want > s->ns)
    s->ns = want < SPIN_MAX ? want : SPIN_MAX;
}

static int ready(const mp__chan *c, int what) {
  return what == MP__SLEEP_DATA ? mp__chan_readable(c) : mp__chan_writable(c);
}

int mp__chan_wait(mp__chan *c, int what, pid_t parent) {
  if (ready(c, what))
    return 0;
  int cpu = sched_getcpu();
  mp__chan_set_cpu(c, cpu);
  /* Spin only while it pays: the parent runs on another CPU (on ours it
   * could not answer while we spin). Even a parent asleep now counts: a
   * worker waits for a task mostly right after a result, which wakes the
   * parent, whose answer a spin catches; and a worker that sleeps here
   * would make the parent's own spin fail (it would wait for our wake-up),
   * so neither would ever spin again. The budget ends spins that do not
   * pay: a parent that is truly idle costs at most SPIN_MIN a wait. */
  int64_t budget = mp__spin_budget(&c->spin);
  /* A parent we just woke answers after its wake-up, not at once: wait
   * for it as long as a wake-up takes, once, or the pair stays in the
   * regime where each side sleeps because the other did. */
  if (budget > 0 && c->woke)
    budget = SPIN_MAX;
  c->woke = 0;
  if (budget > 0 && mp__chan_peer_cpu(c) != cpu) {
    int64_t t0 = mp__now_ns(), took = -1;
    for (unsigned i = 1;; i++) {
      mp__cpu_relax();
      if (ready(c, what)) {
        took = mp__now_ns() - t0;
        break;
      }
      if (i % 64 == 0 && mp__now_ns() - t0 > budget)
        break;
    }
    mp__spin_learn(&c->spin, took);
    if (took >= 0)
      return 0;
  }
  mp__chan_sleep_begin(c, (uint32_t)what);
  if (ready(c, what)) {
    mp__chan_sleep_end(c);
    return 0;
  }
  /* A bounded sleep: a worker whose parent died without the parent-death
   * signal (a task changed credentials) still notices, within a second. */
  struct timespec ts = {1, 0};
  long r = mp__futex(c->my_sleep, FUTEX_WAIT, (uint32_t)what, &ts, 0);
  int err = r < 0 ? errno : 0;
  mp__chan_sleep_end(c);
  if (err == ETIMEDOUT && getppid() != parent)
    return -1;
  return 0;
}
