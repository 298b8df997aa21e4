/*
 * shmchan.h: the shared-memory channel between a pool and one worker: two
 * byte rings (tasks one way, results the other) in a memfd both map, and
 * the rules by which each side waits for the other.
 *
 * The rings carry the same frames the pipes carry (wire.c): the channel
 * replaces the bytes of the pipes, not their meaning. The pipes stay, for
 * what memory cannot do: the result pipe's EOF is still how a worker's
 * death is seen, and it carries a wake-up byte to a parent asleep in
 * poll(); the task pipe carries the frames of large inputs sent by
 * reference (vmsplice), announced by an MP__FR_DIVERT frame in the ring.
 *
 * Waiting. A side that finds nothing to read (or no room to write) spins
 * only while it pays: its peer is on a CPU (not asleep), another CPU than
 * its own, and the spin budget, which adapts to how long recent waits
 * took, has not run out; else it announces that it sleeps (a word in the
 * shared page), checks once more, and sleeps: the worker on a futex, the
 * parent in poll() on the result pipes. A side that publishes bytes (or
 * frees room) its peer waits for wakes it only if the peer announced it
 * sleeps, at most once per sleep: a busy pair makes no system call.
 * Neither sleep is unbounded while the sleeper waits for its peer (the
 * worker's futex lasts a second; the parent's poll() 100 ms while a worker
 * holds work: tp_fork.c), since the peer may store over the sleep word: a
 * wake-up lost so costs latency, never a hang.
 *
 * Trust. The parent never trusts what a worker can write: it keeps its own
 * indices privately, validates the worker's (a head between the last one
 * seen and the parent's tail; a tail at most a ring ahead of the parent's
 * head) and copies bytes out before it parses them, so a worker that
 * scribbles on its page is a protocol error, not a read out of bounds. An
 * older value stored over the parent's own head is no error anyone can
 * see (the worker would only wait for room): the parent stores its head
 * again every 100 ms while the worker holds work (mp__chan_restate).
 */
#ifndef MPOOL_SHMCHAN_H
#define MPOOL_SHMCHAN_H

#include "internal.h"

#include <stddef.h>
#include <sys/types.h>

enum {
  MP__RING_BYTES = 512 * 1024, /* each direction; a power of two */
  MP__CHAN_WAKE = 0x57,        /* the wake-up byte on the result pipe */
};
/* The result pipe carries nothing else: at most one wake-up byte per sleep
 * the parent announced. A worker that finds more there, before it writes
 * results to the ring, than it wrote (worker.c: pipe_clean) writes
 * MP__CHAN_JUNK, which is no wake-up, and ends, its slot naming the last
 * of those results' tasks: any other byte, or more wake-ups than sleeps,
 * is a protocol error of what the slot names when it comes. */
enum { MP__CHAN_JUNK = 0 };

/* What a sleeper waits for (its word in the shared page; 0: awake).
 * GONE: the worker is exiting (nothing more will come from it; a
 * spinning parent stops at once rather than at the end of its budget). */
enum { MP__SLEEP_DATA = 1, MP__SLEEP_ROOM = 2, MP__SLEEP_GONE = 4 };

/* A spin budget, which adapts to how long recent waits took (see
 * mp__spin_learn): the worker keeps one in its channel, the parent one for
 * all its workers. */
typedef struct mp__spin {
  int64_t ns;  /* the current budget */
  int ncpu;    /* CPUs online, when made */
} mp__spin;

/* One side's view of a channel. The indices it owns are kept here,
 * privately; the shared page only receives them. */
typedef struct mp__chan {
  void *map;       /* the mapping: the shared page, then the two rings */
  char *tx, *rx;   /* the ring this side writes, and the one it reads */
  _Atomic uint64_t *tx_tail, *tx_head, *rx_tail, *rx_head;
  uint64_t tx_pos;  /* bytes this side has written */
  uint64_t tx_seen; /* the peer's head, as last validated */
  uint64_t rx_pos;  /* bytes this side has read */
  _Atomic uint32_t *my_sleep, *peer_sleep;
  _Atomic int32_t *my_cpu, *peer_cpu;
  int parent;       /* this is the parent's side */
  int wake_fd;      /* the worker's: the result pipe, to wake the parent */
  mp__spin spin;    /* the worker's budget (the parent keeps its own) */
  int woke;         /* this side woke its sleeping peer since it last
                     * waited */
  unsigned wakes;   /* the worker's: wake-up bytes it wrote, ever */
} mp__chan;

/* A new channel's memfd (registered, close-on-exec), sized. Returns the fd
 * or -errno. */
int mp__chan_create(void);
/* Map the channel of fd into c (fd stays open; the mapping is not
 * inherited by fork). parent: which side c is. wake_fd: the worker's result
 * pipe (the parent's side: -1). Returns 0 or -errno. */
int mp__chan_open(mp__chan *c, int fd, int parent, int wake_fd);
/* The parent's side, for a new worker on the same channel (the last one
 * is gone): both rings empty, nobody asleep, no CPU known. */
void mp__chan_reset(mp__chan *c);
/* Unmap; c is empty afterwards. An empty c (map NULL) is a no-op. */
void mp__chan_close(mp__chan *c);

/* Copy as much of iov[0..n) as the ring has room for, in order, and
 * publish it. Returns the bytes written (0: full), or MP_EPROTO when the
 * peer's head is not one it could have written. */
ssize_t mp__chan_put(mp__chan *c, const struct iovec *iov, int n);
/* Copy up to cap bytes out of the ring and free their room. Returns the
 * bytes read (0: empty), or MP_EPROTO when the peer's tail is not one it
 * could have written. */
ssize_t mp__chan_get(mp__chan *c, void *buf, size_t cap);
/* Store this side's head again (the bytes it has read: the peer may have
 * stored an older one over it, and then waits for room that reading will
 * never free) and wake the peer if it waits for room. */
void mp__chan_restate(mp__chan *c);
/* The room to write, validated as put does: bytes, or MP_EPROTO. */
ssize_t mp__chan_room(mp__chan *c);
/* Whether there are bytes to read / at least MP__CHAN_MIN_ROOM bytes of
 * room to write (a hint: get and put validate). */
int mp__chan_readable(const mp__chan *c);
int mp__chan_writable(const mp__chan *c);

/* After a put: wake the peer if it sleeps. After a get: wake it only if it
 * sleeps waiting for room. */
void mp__chan_wake_data(mp__chan *c);
void mp__chan_wake_room(mp__chan *c);

/* The worker's wait until there are bytes to read (what: MP__SLEEP_DATA)
 * or room to write (MP__SLEEP_ROOM): it spins while that pays, else
 * sleeps on its futex. Returns 0 when the caller should look again, -1
 * when the parent is gone. */
int mp__chan_wait(mp__chan *c, int what, pid_t parent);

/* The parent's sleep, around its poll(): announce (what: MP__SLEEP_DATA,
 * with MP__SLEEP_ROOM when it also waits for room to write), and take the
 * announcement back. begin returns what the word held before; take, as
 * end, returns what it held: 0 when the peer took the announcement, and
 * so owes (or sent) one wake-up byte. */
uint32_t mp__chan_sleep_begin(mp__chan *c, uint32_t what);
void mp__chan_sleep_end(mp__chan *c);
uint32_t mp__chan_sleep_take(mp__chan *c);
/* The worker, leaving: say so (MP__SLEEP_GONE), after its last bytes. */
void mp__chan_gone(mp__chan *c);
/* Whether the peer sleeps (or is gone), and on which CPU it last ran (-1:
 * unknown). */
int mp__chan_peer_asleep(const mp__chan *c);
int mp__chan_peer_cpu(const mp__chan *c);
/* Publish the CPU this side runs on. */
void mp__chan_set_cpu(mp__chan *c, int cpu);

/* The room put needs before a writer looks again (a DIVERT frame fits). */
enum { MP__CHAN_MIN_ROOM = 64 };

static inline void mp__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* The spin policy, shared by both sides. */
/* CPUs the machine has online (at least 1). */
int mp__cpus_usable(void);
/* A budget to start from. */
void mp__spin_init(mp__spin *s);
/* The budget for the next spin, ns (0: do not spin). */
int64_t mp__spin_budget(const mp__spin *s);
/* A spin found what it waited for after took ns (took < 0: it did not). */
void mp__spin_learn(mp__spin *s, int64_t took);

/* In a worker: its channel, NULL under the pipes transport (for tests:
 * they scribble on it to check the parent's validation). */
mp__chan *mp__worker_chan(void);

#endif /* MPOOL_SHMCHAN_H */
