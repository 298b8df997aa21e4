/*
 * mpi.c: start-up and shutdown of the MPI job (mp_mpi_init,
 * mp_mpi_finalize), and the helpers every file uses to move messages and
 * to poll without burning a core.
 *
 * Start-up. Every worker rank sends HELLO; rank 0 checks that each runs
 * the same build (versions, and the executable's entry point as a portable
 * reference: build-id and offset) and answers every rank with WELCOME,
 * carrying the verdict, so every rank returns the same error.
 */
#include "mpi_internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

mpi_state mpi__st;
const mp__ext *mpi__ext;

enum {
  /* After anything happened, poll without sleeping: first flat out (an
   * answer within it costs no context switch: a round trip stays within
   * a few microseconds of a local one), then yielding the CPU to whatever
   * else is runnable. The whole window outlasts the longest nap, so two
   * ranks that fell asleep are back in step after one slow round trip. */
  HOT_NS = 100 * 1000,
  SPIN_NS = 2 * 1000 * 1000,
  NAP_MIN_NS = 20 * 1000,
  NAP_MAX_NS = 1000 * 1000, /* idle ranks wake about 1000 times a second */
};

int64_t mpi__deadline(double seconds) {
  if (seconds < 0 || seconds > 1e9)
    return INT64_MAX;
  return mp__now_ns() + mp__sec_to_ns(seconds);
}

void mpi__backoff_reset(mpi_backoff *b) {
  b->since = mp__now_ns();
  b->nap_ns = NAP_MIN_NS;
}

int mpi__backoff_idle(const mpi_backoff *b) {
  return mp__now_ns() - b->since >= SPIN_NS;
}

void mpi__backoff(mpi_backoff *b, int64_t deadline) {
  int64_t now = mp__now_ns();
  if (now - b->since < SPIN_NS) {
    if (now - b->since >= HOT_NS)
      sched_yield();
    return;
  }
  int64_t left = deadline - now;
  if (left <= 0)
    return;
  long nap = b->nap_ns < left ? b->nap_ns : (long)left;
  struct timespec ts = {0, nap};
  nanosleep(&ts, NULL);
  if (b->nap_ns < NAP_MAX_NS)
    b->nap_ns = b->nap_ns * 2 > NAP_MAX_NS ? NAP_MAX_NS : b->nap_ns * 2;
}

void *mpi__msg_alloc(size_t len) {
  mpi_out *o = malloc(sizeof *o + len);
  return o ? (void *)(o + 1) : NULL;
}

int mpi__send(mpi_outbox *box, void *msg, size_t len, int dst, int tag) {
  mpi_out *o = (mpi_out *)msg - 1;
  if (len > INT_MAX) {
    free(o);
    return -EMSGSIZE;
  }
  if (MPI_Isend(msg, (int)len, MPI_BYTE, dst, tag, mpi__st.comm, &o->req) !=
      MPI_SUCCESS) {
    free(o);
    return MP_MPI_EMPI;
  }
  o->next = box->head;
  box->head = o;
  box->n++;
  return 0;
}

int mpi__send_hdr(mpi_outbox *o, int dst, int tag, uint32_t type, uint64_t gen,
                  uint64_t id, int32_t code, int32_t detail) {
  msg_hdr *h = mpi__msg_alloc(sizeof *h);
  if (!h)
    return -ENOMEM;
  *h = (msg_hdr){MPI__MAGIC, type, gen, id, code, detail};
  return mpi__send(o, h, sizeof *h, dst, tag);
}

int mpi__outbox_progress(mpi_outbox *box) {
  int any = 0;
  for (mpi_out **pp = &box->head; *pp;) {
    mpi_out *o = *pp;
    int done = 0;
    if (MPI_Test(&o->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      done = 0;
    if (done) {
      *pp = o->next;
      box->n--;
      free(o);
      any = 1;
    } else {
      pp = &o->next;
    }
  }
  return any;
}

void mpi__outbox_drain(mpi_outbox *box, int64_t deadline) {
  mpi_backoff b;
  mpi__backoff_reset(&b);
  while (box->head && mp__now_ns() < deadline) {
    if (mpi__outbox_progress(box))
      mpi__backoff_reset(&b);
    else
      mpi__backoff(&b, deadline);
  }
  while (box->head) {
    mpi_out *o = box->head;
    box->head = o->next;
    MPI_Request_free(&o->req); /* MPI may still read it: leaked */
  }
  box->n = 0;
}

int mpi__recv(int src, int tag, char **buf, size_t *len, int *from) {
  int flag = 0;
  MPI_Status st;
  if (MPI_Iprobe(src, tag, mpi__st.comm, &flag, &st) != MPI_SUCCESS)
    return MP_MPI_EMPI;
  if (!flag)
    return 0;
  int n = 0;
  if (MPI_Get_count(&st, MPI_BYTE, &n) != MPI_SUCCESS || n < 0)
    return MP_MPI_EMPI;
  /* At least a header's room, so that a short message reads as invalid. */
  char *m = malloc((size_t)n < sizeof(msg_hdr) ? sizeof(msg_hdr) : (size_t)n);
  if (!m)
    return -ENOMEM;
  if (MPI_Recv(m, n, MPI_BYTE, st.MPI_SOURCE, tag, mpi__st.comm,
               MPI_STATUS_IGNORE) != MPI_SUCCESS) {
    free(m);
    return MP_MPI_EMPI;
  }
  msg_hdr h;
  memcpy(&h, m, sizeof h);
  if ((size_t)n < sizeof h || h.magic != MPI__MAGIC) {
    free(m);
    return MP_EPROTO;
  }
  *buf = m;
  *len = (size_t)n;
  *from = st.MPI_SOURCE;
  return 1;
}

/* ---- start-up ---- */

static void mpi_teardown(void) {
  if (mpi__st.comm != MPI_COMM_NULL)
    MPI_Comm_free(&mpi__st.comm);
  if (mpi__st.owned)
    MPI_Finalize();
  free(mpi__st.pids);
  free(mpi__st.lost);
  mpi__st = (mpi_state){.comm = MPI_COMM_NULL};
}

static void mpi_hello_make(msg_hello *h) {
  memset(h, 0, sizeof *h);
  h->proto = MPI__PROTO;
  h->pid = (int64_t)getpid();
  strncpy(h->version, mpi__ext->lib_version, sizeof h->version - 1);
  mp__fn entry = (mp__fn)(uintptr_t)getauxval(AT_ENTRY);
  h->exe_rc = mpi__ext->fnref_make(entry, &h->exe);
}

/* Rank 0: every rank's HELLO, checked against ours. Returns the verdict:
 * 0, MP_MPI_EBUILD, MP_EINVAL (no build-id here), MP_ETIMEDOUT, or an
 * error receiving; *said[r] is set for each rank that said hello. */
static int mpi_gather_hellos(char *said) {
  msg_hello mine;
  mpi_hello_make(&mine);
  int verdict = mine.exe_rc < 0 ? MP_EINVAL : 0;
  int64_t deadline = mpi__deadline(mpi__st.start_timeout);
  int left = mpi__st.size - 1;
  mpi_backoff b;
  mpi__backoff_reset(&b);
  while (left > 0) {
    char *m;
    size_t len;
    int from;
    int rc = mpi__recv(MPI_ANY_SOURCE, TAG_UP, &m, &len, &from);
    if (rc < 0 && rc != MP_EPROTO)
      return rc;
    if (rc == 0) {
      if (mp__now_ns() >= deadline)
        return MP_ETIMEDOUT;
      mpi__backoff(&b, deadline);
      continue;
    }
    mpi__backoff_reset(&b);
    msg_hdr h;
    msg_hello hi;
    if (rc == MP_EPROTO)
      continue;
    memcpy(&h, m, sizeof h);
    if (h.type != M_HELLO || len != sizeof h + sizeof hi || said[from]) {
      free(m);
      verdict = verdict ? verdict : MP_MPI_EBUILD;
      continue;
    }
    memcpy(&hi, m + sizeof h, sizeof hi);
    free(m);
    said[from] = 1;
    left--;
    mpi__st.pids[from] = hi.pid;
    if (hi.proto != MPI__PROTO ||
        memcmp(hi.version, mine.version, sizeof hi.version) != 0 ||
        hi.exe_rc != mine.exe_rc ||
        memcmp(&hi.exe, &mine.exe, sizeof hi.exe) != 0)
      verdict = verdict ? verdict : MP_MPI_EBUILD;
  }
  return verdict;
}

/* A worker rank: say hello, and wait for the verdict. */
static int mpi_say_hello(void) {
  mpi_outbox box = {0};
  msg_hdr *h = mpi__msg_alloc(sizeof *h + sizeof(msg_hello));
  if (!h)
    return -ENOMEM;
  *h = (msg_hdr){.magic = MPI__MAGIC, .type = M_HELLO};
  msg_hello hi;
  mpi_hello_make(&hi);
  memcpy(h + 1, &hi, sizeof hi);
  int rc = mpi__send(&box, h, sizeof *h + sizeof hi, 0, TAG_UP);
  if (rc < 0)
    return rc;
  /* No deadline: rank 0 decides; if it dies, the launcher ends the job. */
  mpi_backoff b;
  mpi__backoff_reset(&b);
  for (;;) {
    char *m;
    size_t len;
    int from;
    mpi__outbox_progress(&box);
    rc = mpi__recv(0, TAG_DOWN, &m, &len, &from);
    if (rc < 0 && rc != MP_EPROTO)
      break;
    if (rc == 1) {
      msg_hdr w;
      memcpy(&w, m, sizeof w);
      free(m);
      if (w.type == M_WELCOME) {
        rc = w.code;
        break;
      }
    }
    mpi__backoff(&b, INT64_MAX);
  }
  mpi__outbox_drain(&box, INT64_MAX);
  return rc;
}

int mp_mpi_init(int *argc, char ***argv, const mp_mpi_opts *opts) {
  if (mpi__st.inited)
    return MP_ESTATE;
  mpi__ext = mp__ext_get();
  if (opts && (!(opts->start_timeout >= 0) || !(opts->stop_timeout >= 0) ||
               !(opts->silent_timeout >= 0)))
    return MP_EINVAL;
  if (mpi__ext->version != MP__EXT_VERSION || mpi__ext->size != sizeof(mp__ext))
    return MP_MPI_EBUILD;
  mpi__st = (mpi_state){.comm = MPI_COMM_NULL};
  int flag = 0;
  if (MPI_Initialized(&flag) != MPI_SUCCESS)
    return MP_MPI_EMPI;
  if (!flag) {
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
      return MP_MPI_EMPI;
    mpi__st.owned = 1;
  }
  int rc = MP_MPI_EMPI;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &mpi__st.comm) != MPI_SUCCESS) {
    mpi__st.comm = MPI_COMM_NULL;
    goto error;
  }
  MPI_Comm_set_errhandler(mpi__st.comm, MPI_ERRORS_RETURN);
  if (MPI_Comm_rank(mpi__st.comm, &mpi__st.rank) != MPI_SUCCESS ||
      MPI_Comm_size(mpi__st.comm, &mpi__st.size) != MPI_SUCCESS)
    goto error;
  mpi__st.stop_timeout =
      opts && opts->stop_timeout > 0 ? opts->stop_timeout : 10;
  mpi__st.start_timeout =
      opts && opts->start_timeout > 0 ? opts->start_timeout : 60;
  double silent = opts && opts->silent_timeout > 0 ? opts->silent_timeout : 60;
  mpi__st.silent_ns = silent > 1e9 ? 0 : mp__sec_to_ns(silent);
  if (mpi__st.size < 2) {
    rc = MP_MPI_ENOWORKERS;
    goto error;
  }
  if (mpi__st.rank != 0) {
    rc = mpi_say_hello();
    if (rc < 0)
      goto error;
    mpi__st.inited = 1;
    rc = mpi__serve();
    if (rc == MP_MPI_ELOST)
      goto unfinalized;
    mpi_teardown();
    return rc < 0 ? rc : MP_MPI_WORKER;
  }
  mpi__st.pids = calloc((size_t)mpi__st.size, sizeof *mpi__st.pids);
  mpi__st.lost = calloc((size_t)mpi__st.size, 1);
  char *said = calloc((size_t)mpi__st.size, 1);
  if (!mpi__st.pids || !mpi__st.lost || !said) {
    free(said);
    rc = -ENOMEM;
    goto unfinalized;
  }
  mpi__st.pids[0] = getpid();
  rc = mpi_gather_hellos(said);
  mpi_outbox box = {0};
  for (int r = 1; r < mpi__st.size; r++)
    if (said[r])
      mpi__send_hdr(&box, r, TAG_DOWN, M_WELCOME, 0, 0, rc, 0);
  free(said);
  mpi__outbox_drain(&box, mpi__deadline(mpi__st.stop_timeout));
  if (rc == MP_ETIMEDOUT)
    goto unfinalized;
  if (rc < 0)
    goto error;
  mpi__st.inited = 1;
  return 0;
error:
  mpi_teardown();
  return rc;
unfinalized:
  /* Some rank is not (or never was) listening: MPI_Finalize would wait
   * for it. The program's non-zero exit ends the job. */
  MPI_Comm_free(&mpi__st.comm);
  free(mpi__st.pids);
  free(mpi__st.lost);
  mpi__st = (mpi_state){.comm = MPI_COMM_NULL};
  return rc;
}

int mp_mpi_finalize(void) {
  if (!mpi__st.inited || mpi__st.rank != 0 || mpi__st.pool_live)
    return MP_ESTATE;
  mpi_outbox box = {0};
  int rc = 0, left = 0, lost = 0;
  char *stopped = calloc((size_t)mpi__st.size, 1);
  if (!stopped)
    return -ENOMEM;
  for (int r = 1; r < mpi__st.size; r++)
    lost |= mpi__st.lost[r];
  for (int r = 1; r < mpi__st.size; r++) {
    if (mpi__st.lost[r])
      continue; /* never written to again; what it sends is dropped */
    /* With a rank lost, the others must not finalize MPI either: that
     * would wait for it (for ever where the launcher keeps the job). */
    if (mpi__send_hdr(&box, r, TAG_DOWN, M_STOP, 0, 0, lost ? MP_MPI_ELOST : 0,
                      0) < 0)
      rc = MP_MPI_EMPI;
    left++;
  }
  int64_t deadline = mpi__deadline(mpi__st.stop_timeout);
  mpi_backoff b;
  mpi__backoff_reset(&b);
  while (left > 0 && rc == 0) {
    char *m;
    size_t len;
    int from, got;
    mpi__outbox_progress(&box);
    got = mpi__recv(MPI_ANY_SOURCE, TAG_UP, &m, &len, &from);
    if (got < 0 && got != MP_EPROTO) {
      rc = got;
      break;
    }
    if (got == 1) {
      msg_hdr h;
      memcpy(&h, m, sizeof h);
      free(m);
      if (h.type == M_STOPPED && !stopped[from] && !mpi__st.lost[from]) {
        stopped[from] = 1;
        left--;
      }
      mpi__backoff_reset(&b);
      continue; /* late results of a freed pool are dropped */
    }
    if (mp__now_ns() >= deadline)
      rc = MP_ETIMEDOUT;
    else
      mpi__backoff(&b, deadline);
  }
  free(stopped);
  mpi__outbox_drain(&box, deadline);
  if (rc == 0 && lost)
    rc = MP_MPI_ELOST;
  if (rc < 0) {
    /* Some rank is not listening: MPI_Finalize would wait for it. */
    mpi__st.inited = 0;
    return rc;
  }
  mpi_teardown();
  return 0;
}

const char *mp_mpi_strerror(int code) {
  switch (code) {
  case MP_MPI_WORKER:
    return "worker rank: served until rank 0 finalized";
  case MP_MPI_ENOWORKERS:
    return "no worker ranks: the MPI world has one rank (start the program "
           "with mpirun/mpiexec -n 2 or more)";
  case MP_MPI_EBUILD:
    return "the MPI ranks run different builds of the program or library";
  case MP_MPI_EMPI:
    return "an MPI call failed";
  case MP_MPI_ELOST:
    return "a worker rank was lost: silent past silent_timeout";
  default:
    return mp_strerror(code);
  }
}
