/*
 * mpi_internal.h: what the files of libmpool_mpi share: the library's
 * state, the messages ranks exchange, and the helpers that move them.
 *
 * Messages. Each is one MPI message on the library's own communicator (a
 * duplicate of MPI_COMM_WORLD): a 32-byte header (msg_hdr), then a body.
 * Rank 0 sends on TAG_DOWN, worker ranks answer on TAG_UP; between two
 * ranks MPI keeps the order of messages on one tag, which is what makes a
 * rank's results arrive in the order its tasks were sent.
 *
 *   HELLO    rank -> 0  at start: versions, the executable's reference, pid
 *   WELCOME  0 -> rank  code 0: serve; else the error every rank returns
 *   OPEN     0 -> rank  make the local pool of generation gen (options,
 *                       initializer reference, initarg bytes)
 *   OPENED   rank -> 0  code: how that went; detail: its workers
 *   TASK     0 -> rank  task id: kind, sizes, function reference, input
 *   RESULT   rank -> 0  task id: a payload as codec.c defines it, with
 *                       item statuses (mp__item_st) for maps
 *   TERM     0 -> rank  terminate the local pool of generation gen now
 *   CLOSE    0 -> rank  close and join it once its tasks are answered
 *   DONE     rank -> 0  generation gen is gone: nothing more comes of it
 *   STOP     0 -> rank  end the pool if any, acknowledge, stop serving;
 *                       code MP_MPI_ELOST: a rank was lost, leave MPI
 *   STOPPED  rank -> 0
 *   ALIVE    rank -> 0  a heartbeat: sent while the rank holds tasks and
 *                       has sent nothing else for beat_ms (OPEN)
 *
 * A generation numbers each local pool rank 0 asks a rank for; messages of
 * a generation that is no longer current are dropped on both sides, so a
 * terminated pool's late results never reach a new one.
 *
 * A rank that owes rank 0 an answer and stays silent past silent_timeout
 * is lost for good (mpi_state.lost): rank 0 sends it nothing more, drops
 * whatever it still sends, and leaves it out of later pools.
 */
#ifndef MPOOL_MPI_INTERNAL_H
#define MPOOL_MPI_INTERNAL_H

#include "ext.h"
#include "mpool_mpi.h"
#include "sys/clock.h"

#include <mpi.h>
#include <stdint.h>

#define MPI__MAGIC 0x4d504d49u /* "MPMI" */
enum { MPI__PROTO = 2 };
enum { TAG_DOWN = 0x4d50, TAG_UP = 0x4d51 };

enum msg_type {
  M_HELLO = 1,
  M_WELCOME,
  M_OPEN,
  M_OPENED,
  M_TASK,
  M_RESULT,
  M_TERM,
  M_CLOSE,
  M_DONE,
  M_STOP,
  M_STOPPED,
  M_ALIVE,
};

typedef struct msg_hdr {
  uint32_t magic;
  uint32_t type;
  uint64_t gen; /* the local pool's generation (OPEN..DONE) */
  uint64_t id;  /* task id (TASK, RESULT) */
  int32_t code; /* WELCOME, OPENED, DONE */
  int32_t detail;
} msg_hdr;
_Static_assert(sizeof(msg_hdr) == 32, "msg_hdr is 32 bytes");

typedef struct msg_hello {
  uint32_t proto; /* MPI__PROTO */
  int32_t exe_rc; /* 0, or why the executable has no reference */
  int64_t pid;
  char version[16]; /* libmpool's */
  mp__fnref exe;    /* the executable's entry point */
} msg_hello;

typedef struct msg_open {
  int32_t processes;
  int32_t maxtasks;
  double task_timeout;
  uint64_t max_res;
  uint64_t initarg_len; /* bytes after this body */
  uint32_t has_init;
  uint32_t beat_ms; /* heartbeat period while busy; 0: none */
  mp__fnref init;
} msg_open;

typedef struct msg_task {
  uint32_t kind; /* MP__TASK_MAP or MP__TASK_APPLY */
  uint32_t in_size, out_size, count;
  mp__fnref fn;
} msg_task;
/* Inputs after header and task body stay 16-byte aligned in the buffer. */
_Static_assert((sizeof(msg_hdr) + sizeof(msg_task)) % 16 == 0, "aligned");

/* ---- the library's state (mpi.c) ---- */

typedef struct mpi_state {
  int inited; /* mp_mpi_init succeeded */
  int owned;  /* we called MPI_Init: we call MPI_Finalize */
  int rank, size;
  MPI_Comm comm;
  double start_timeout, stop_timeout;
  int64_t silent_ns; /* rank 0: silent_timeout; 0: never */
  int64_t *pids;     /* rank 0: each rank's pid, from its HELLO */
  char *lost;        /* rank 0: 1 for each rank lost to silent_timeout */
  int pool_live;     /* rank 0: a pool exists */
  uint64_t gen;      /* rank 0: the last generation given out */
} mpi_state;

extern mpi_state mpi__st;
extern const mp__ext *mpi__ext;

/* ---- helpers (mpi.c) ---- */

/* The clock is the core's (sys/clock.h: mp__now_ns). A deadline for a
 * start or stop timeout in seconds: INT64_MAX (none) when negative or past
 * 1e9 s. mp_mpi_init refuses a NaN or negative timeout (MP_EINVAL) and
 * turns 0 into the default, so only a positive one reaches here. */
int64_t mpi__deadline(double seconds);

/* Polling without burning a core: a short spin (200 us, yielding), then
 * naps that grow to about 1 ms. reset after anything happened. */
typedef struct mpi_backoff {
  int64_t since; /* the last time something happened */
  long nap_ns;
} mpi_backoff;
void mpi__backoff_reset(mpi_backoff *b);
/* 1 once the spin is over: the next mpi__backoff naps. */
int mpi__backoff_idle(const mpi_backoff *b);
/* Spin once or nap, never past deadline. */
void mpi__backoff(mpi_backoff *b, int64_t deadline);

/* Sends in flight: each buffer is freed once MPI is done with it. */
typedef struct mpi_out {
  struct mpi_out *next;
  MPI_Request req;
  /* the message follows */
} mpi_out;
typedef struct mpi_outbox {
  mpi_out *head;
  int n;
} mpi_outbox;
/* A buffer for a message of len bytes (header included), or NULL. */
void *mpi__msg_alloc(size_t len);
/* Send msg (from mpi__msg_alloc, which it takes over) of len bytes to
 * rank dst on tag; never blocks. Returns 0 or MP_MPI_EMPI (msg freed). */
int mpi__send(mpi_outbox *o, void *msg, size_t len, int dst, int tag);
/* Send a bare header. */
int mpi__send_hdr(mpi_outbox *o, int dst, int tag, uint32_t type, uint64_t gen,
                  uint64_t id, int32_t code, int32_t detail);
/* Free what MPI has sent. Returns 1 when something completed. */
int mpi__outbox_progress(mpi_outbox *o);
/* Wait until every send is done or the deadline; what is left is handed
 * to MPI (MPI_Request_free) and its buffer leaked. */
void mpi__outbox_drain(mpi_outbox *o, int64_t deadline);
/* A message waiting from src (MPI_ANY_SOURCE) on tag: 1 with it received
 * into *buf (malloc'd, *len bytes, *from its rank), 0 when none, or
 * MP_MPI_EMPI / -ENOMEM. The header is validated (magic, size). */
int mpi__recv(int src, int tag, char **buf, size_t *len, int *from);

/* ---- the worker rank's side (rank.c) ---- */

/* Serve rank 0 until STOP. Returns 0, MP_MPI_ELOST (STOP said a rank was
 * lost: MPI must not be finalized) or MP_MPI_EMPI. */
int mpi__serve(void);

/* ---- rank 0's transport (tp_mpi.c) ---- */
extern const mp__tp_ops mpi__tp_ops;

#endif /* MPOOL_MPI_INTERNAL_H */
