/* internal.h: private structs and mp__ helpers shared by the sources. */
#ifndef MPOOL_INTERNAL_H
#define MPOOL_INTERNAL_H

#include "mpool.h"

#include <stdint.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/uio.h>

#define MP__STR2(x) #x
#define MP__STR(x) MP__STR2(x)
#define MP__VERSION_STRING                                                     \
  MP__STR(MP_VERSION_MAJOR) "." MP__STR(MP_VERSION_MINOR) "." MP__STR(         \
      MP_VERSION_PATCH)

/* ---- the system under everything (src/sys/) ---- */

#include "sys/clock.h"
#include "sys/fdio.h"
#include "sys/futex.h"
#include "sys/fdreg.h"
#include "sys/child.h"

/* ---- forking (process.c) ---- */

typedef struct mp__fork_req {
  const int *keep; /* registered fds the child keeps */
  int nkeep;
  int die_with_parent; /* arm the parent-death signal (SIGKILL) */
  const char *name;    /* the child's mp_current_process_name() */
} mp__fork_req;

/*
 * fork() with the hygiene every child needs: stdio flushed before, signals
 * blocked across it, registered fds not in keep closed in the child, the
 * parent-death signal armed (and the race re-checked) when asked: then the
 * forking thread returns only once the child has armed it (it follows that
 * thread), and a child that has not within 10 s is killed and reaped
 * (-EAGAIN). Returns the pid in the parent, 0 in the child, -errno on
 * failure.
 */
pid_t mp__fork(const mp__fork_req *req);

/* For mp_wait: while p runs, its pidfd (readable once it has exited), else
 * its status pipe (hangs up when it exits, or execs, or later when a
 * grandchild holds it), else -1; -1 too once it has ended. Only a pidfd
 * tells exactly: without one, poll p again in slices. */
int mp__process_fd(const mp_process *p);
/* Whether p's fd from mp__process_fd is its pidfd. */
int mp__process_has_pidfd(const mp_process *p);

/* In a process child (forked, or the image started afresh): name its
 * ident, report through status_fd (-1: none), run target(arg), exit. */
_Noreturn void mp__process_child(mp_target_fn target, void *arg,
                                 const char *ident, int status_fd);

/* ---- tp_forkserver.c: start methods ---- */

/* An mp_process started by forkserver: the program's image, exec'd. */
typedef struct mp__proc_spec {
  mp_target_fn target; /* crosses as a portable reference */
  void *arg;
  size_t arg_len;      /* bytes at arg copied; 0: arg crosses as a value */
  int daemon;          /* armed with the parent-death signal */
  const char *name, *ident;
  int status_fd;       /* the status pipe's write end, or -1 */
} mp__proc_spec;
/* Start it. Returns its pid (a child of the caller), MP_EINVAL when the
 * target cannot be made a reference, or -errno. */
pid_t mp__exec_process(const mp__proc_spec *spec);

/* The method asked for (0: the process-wide default) as MP_START_FORK or
 * MP_START_FORKSERVER, or MP_EINVAL for an unknown one. */
int mp__start_method(int asked);

/* ---- ipc/shm.c: memory shared with the children forked after it ---- */

/*
 * A zeroed MAP_SHARED | MAP_ANONYMOUS mapping of len bytes: forked children
 * share it with their parent. Returns 0 and sets *out, or -errno.
 */
int mp__ipc_map(void **out, size_t len);
/* munmap, ignoring NULL. */
void mp__ipc_unmap(void *p, size_t len);

/*
 * Pipe stream framing (wire.c): what only a byte stream needs.
 * Frames: a 16-byte header, then len payload bytes.
 *   magic_type: MP__FRAME_MAGIC | type
 *   len:        payload bytes
 *   id:         task id
 */
#define MP__FRAME_MAGIC 0x4d500000u
#define MP__FRAME_MAGIC_MASK 0xffff0000u
enum {
  MP__FR_MAP = 1,        /* parent -> worker: map chunk */
  MP__FR_APPLY = 2,      /* parent -> worker: apply task */
  MP__FR_STOP = 3,       /* parent -> worker: exit */
  MP__FR_MAP_RES = 4,    /* worker -> parent: map chunk results */
  MP__FR_APPLY_RES = 5,  /* worker -> parent: apply result */
  MP__FR_CTX = 6,        /* parent -> worker: a call's context; id: its id */
  MP__FR_BYTES = 7,      /* parent -> worker: chunk of variable-length items */
  MP__FR_BYTES_RES = 8,  /* worker -> parent: their results */
  /* Transports whose workers are not forked copies (by_reference): */
  MP__FR_MAP_REF = 9,    /* parent -> worker: mp__fnref, then a map task */
  MP__FR_APPLY_REF = 10, /* parent -> worker: mp__fnref, then an apply task */
  MP__FR_TASK_FAIL = 11, /* worker -> parent: the whole task failed (an
                          * mp__apply_res header, no body): MP_ENOFUNC */
  MP__FR_BYTES_REF = 12, /* parent -> worker: mp__fnref, then a bytes task */
  MP__FR_DIVERT = 13,    /* parent -> worker (shm): the next frames, a
                          * uint64 of bytes, come on the task pipe */
  MP__FR_LAST = MP__FR_DIVERT,
};

/* Every frame is padded to a multiple of MP__ALIGN bytes on the wire, and
 * payload headers (codec.c) are MP__ALIGN-sized, so a task's input elements (and an
 * apply argument) sit at 16-byte-aligned addresses in the worker's buffer. */
#define MP__ALIGN 16u
static inline uint32_t mp__padded(uint32_t len) {
  return (len + (MP__ALIGN - 1)) & ~(MP__ALIGN - 1);
}

/* The largest payload a frame carries: its length is 32 bits, and so is
 * that length padded to MP__ALIGN. A transport asserts that each frame it
 * sends is within it; the core refuses at submit what would not be. */
#define MP__FRAME_MAX ((size_t)UINT32_MAX + 1 - MP__ALIGN)
/* The most bytes of one apply argument, one call's context or one apply
 * result (2 GiB - 4 KiB), and of one map element, bytes item or explicit
 * map chunk's input or output (1 GiB): with their headers, far within a
 * frame. */
#define MP__ARG_MAX (((size_t)2 << 30) - 4096)
#define MP__ELEM_MAX ((size_t)1 << 30)
_Static_assert(MP__ARG_MAX + 4096 <= MP__FRAME_MAX &&
                   MP__ELEM_MAX < MP__ARG_MAX,
               "arguments and contexts fit a frame with their headers");

typedef struct mp__frame_hdr {
  uint32_t magic_type;
  uint32_t len;
  uint64_t id;
} mp__frame_hdr;

/* Build a header. */
void mp__frame_init(mp__frame_hdr *h, unsigned type, uint64_t id,
                    uint32_t len);
/*
 * Validate a header read from another process: magic, known type, payload
 * within max_len. Returns the type, or MP_EPROTO.
 */
int mp__frame_check(const mp__frame_hdr *h, uint32_t max_len);
/*
 * Find the next frame at the start of buf (len bytes received so far).
 * Returns 1 with *h and *frame_len (header + padded payload) when a whole,
 * valid frame is there; 0 when more bytes are needed (*frame_len is then
 * the size the frame will have once its header is in, else 0); MP_EPROTO
 * when the bytes cannot be a frame of at most max_len payload bytes.
 */
int mp__frame_next(const void *buf, size_t len, uint32_t max_len,
                   mp__frame_hdr *h, size_t *frame_len);
/* ---- codec.c: task and result payloads, whatever transport moves them ---- */

/* Task flags. */
enum {
  MP__TF_TIMED = 1, /* record each item's start: the call has a timeout */
};

/* Map task payload header; in_size * count input bytes follow. */
typedef struct mp__map_task {
  uint64_t fn;
  uint32_t in_size;
  uint32_t out_size;
  uint32_t count;
  uint32_t flags;   /* MP__TF_* */
  uint64_t ctx;     /* the call's context id (an MP__FR_CTX frame came
                     * first), 0: none */
} mp__map_task;

/* Apply task payload header; the argument bytes follow. */
typedef struct mp__apply_task {
  uint64_t fn;
  uint64_t ctx;
} mp__apply_task;

/*
 * A chunk of variable-length items: this header, then count uint32 lengths
 * (padded to 8 bytes), then each item's bytes, each padded to 8, so every
 * item starts 8-byte aligned in the worker's buffer.
 */
typedef struct mp__bytes_task {
  uint64_t fn;
  uint32_t count;
  uint32_t flags;
  uint64_t ctx;
  uint64_t reserved;
} mp__bytes_task;

/* Its result: count of these, then each item's result bytes padded to 8. */
typedef struct mp__item_res {
  int32_t code;   /* 0, MP_ETASK, -EMSGSIZE, -ENOMEM */
  int32_t detail; /* the task's return for MP_ETASK */
  uint32_t len;   /* result bytes (0 unless code is 0) */
  uint32_t pad;
} mp__item_res;

static inline size_t mp__pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Bytes of a bytes-task body (after the header) for count items whose
 * padded lengths add up to data. */
static inline size_t mp__bytes_body(size_t count, size_t data) {
  return mp__pad8(count * sizeof(uint32_t)) + data;
}

/*
 * Validate a bytes-task payload of len bytes (header included): count
 * non-zero, every length accounted for exactly. Copies out the header and
 * points *lens at the lengths, *data at the first item. Returns 0 or
 * MP_EPROTO.
 */
int mp__bytes_task_check(const void *payload, uint32_t len, mp__bytes_task *t,
                         const uint32_t **lens, const char **data);
/*
 * Validate a bytes result payload of len bytes for count items, each at
 * most max_res bytes. Returns 0 or MP_EPROTO.
 */
int mp__bytes_res_check(const void *payload, uint32_t len, uint32_t count,
                        uint32_t max_res);

/* Apply result payload header; the result bytes follow (none on failure). */
typedef struct mp__apply_res {
  int32_t code;   /* 0, MP_ETASK, -EMSGSIZE, -ENOMEM */
  int32_t detail; /* the task's return for MP_ETASK */
  uint64_t reserved;
} mp__apply_res;
/* A map result payload is count * out_size output bytes, then count int32
 * task returns (outputs first, so they are aligned as an array is); the
 * returns are left off when all of them are 0. */

/*
 * Validate a map result payload of len bytes for a chunk of count items
 * of out_size bytes each. Returns 1 when it carries the items' codes after
 * the outputs, 0 when it holds the outputs alone (every item succeeded),
 * MP_EPROTO otherwise.
 */
int mp__map_res_check(uint32_t len, uint32_t count, uint32_t out_size);
/* Validate a map task payload of len bytes and copy out its header.
 * Returns 0 or MP_EPROTO. */
int mp__map_task_check(const void *payload, uint32_t len, mp__map_task *t);
/* Validate an apply result payload. Returns 0 or MP_EPROTO. */
int mp__apply_res_check(const void *payload, uint32_t len, uint32_t max_res);

/* One item's whole outcome, as a pool on the far side of a transport
 * reported it (mp_status on the wire). */
typedef struct mp__item_st {
  int32_t code;
  int32_t detail;
} mp__item_st;
/*
 * Whether (code, detail) can be an item's outcome: 0 with detail 0,
 * MP_ETASK with a non-zero detail, MP_ECRASHED, MP_ETIMEDOUT, MP_EPROTO,
 * MP_ECLOSED, MP_ENOFUNC, or -errno. Returns 0 or MP_EPROTO.
 */
int mp__status_check(int32_t code, int32_t detail);
/*
 * Validate a map result with statuses: count * out_size output bytes, then
 * count mp__item_st, each passing mp__status_check. Returns 0 or MP_EPROTO.
 */
int mp__map_res_st_check(const void *payload, uint32_t len, uint32_t count,
                         uint32_t out_size);
/* Validate an apply result whose code may be any outcome (mp__status_check);
 * result bytes only with code 0. Returns 0 or MP_EPROTO. */
int mp__apply_res_st_check(const void *payload, uint32_t len,
                           uint32_t max_res);
/*
 * A task sent by reference (MP__FR_MAP_REF, MP__FR_APPLY_REF,
 * MP__FR_BYTES_REF) is the mp__fnref of its function, then the payload of
 * the same task sent by pointer (whose fn field is then 0). The worker resolves the reference;
 * when it cannot, the whole task fails with MP_ENOFUNC in an
 * MP__FR_TASK_FAIL frame: an mp__apply_res header with that code, detail 0
 * and no body.
 */
/* Validate a task failure payload. Returns 0 and sets *code, or MP_EPROTO. */
int mp__task_fail_check(const void *payload, uint32_t len, int *code);

/* ---- fnref.c: portable function references ---- */

/*
 * A function as another process running the same build can find it: the
 * GNU build-id of the module (executable or shared library) that holds it,
 * and its offset from that module's load base. A process that was exec'd
 * rather than forked (a fork server, an MPI rank) loads the module at
 * another address; the reference still names the same code there.
 *
 * Fixed size, no pointers, every byte defined (make zeroes the padding and
 * the unused tail of build_id): it may be copied onto a wire as it is. The
 * offset is in host byte order: a build-id names one binary for one
 * architecture, so a reference can only resolve in a process of the same
 * byte order (any other finds no module with that build-id).
 */
#define MP__BUILD_ID_MAX 32
typedef struct mp__fnref {
  uint64_t offset; /* from the module's load base (dlpi_addr) */
  uint8_t id_len;  /* bytes of build_id used, 1..MP__BUILD_ID_MAX */
  uint8_t pad[7];  /* zero */
  uint8_t build_id[MP__BUILD_ID_MAX]; /* zero after id_len */
} mp__fnref;
_Static_assert(sizeof(mp__fnref) == 48, "mp__fnref is 48 bytes on the wire");

/* Any function, cast to this type and back (C allows the round trip). */
typedef void (*mp__fn)(void);

/*
 * The reference for fn, which may be any address in a module's code.
 * Returns 0 and fills *out; MP_EINVAL (*out unchanged) when fn is NULL or
 * lies in no loaded module's executable PT_LOAD segment (heap, stack, data,
 * anonymous PROT_EXEC memory such as JIT code), or its module has no GNU
 * build-id (linked with --build-id=none) or one longer than
 * MP__BUILD_ID_MAX bytes. Cached: a repeated fn costs a lookup, not a walk
 * of the loaded modules. Thread-safe; it never waits for another caller of
 * these functions, only, briefly, for the loader's lock (dl_iterate_phdr).
 */
int mp__fnref_make(mp__fn fn, mp__fnref *out);

/*
 * Validate a reference read from another process: id_len within
 * 1..MP__BUILD_ID_MAX, padding and the unused tail of build_id zero.
 * Returns 0 or MP_EPROTO. (Whether it names code here is resolve's job.)
 */
int mp__fnref_check(const mp__fnref *ref);

/*
 * The function ref names in this process. Returns 0 and sets *fn;
 * MP_EPROTO (fn unchanged) when ref fails mp__fnref_check; MP_ENOFUNC when
 * no loaded module has its build-id (a library only the sender loaded, a
 * different build) or offset is not in an executable PT_LOAD segment of
 * that module. Cached and thread-safe, as mp__fnref_make.
 *
 * Both caches are checked against the loader's count of unloaded modules
 * (dl_iterate_phdr's dlpi_subs) on every call: after a dlclose, no entry
 * cached before it is used. A module unloaded by another thread while a
 * call is under way, or while a pointer resolve returned is in use, is the
 * caller's race, as for any function pointer.
 */
int mp__fnref_resolve(const mp__fnref *ref, mp__fn *fn);

/* ---- sha256.c: SHA-256 and HMAC-SHA256, for the Listener's handshake ---- */

#define MP__SHA256_LEN 32
typedef struct mp__sha256 {
  uint32_t h[8];
  uint64_t len;        /* bytes hashed */
  unsigned char buf[64];
  size_t fill;         /* bytes in buf */
} mp__sha256;
void mp__sha256_init(mp__sha256 *c);
void mp__sha256_update(mp__sha256 *c, const void *data, size_t n);
/* The digest of everything updated; c must be initialised again to reuse. */
void mp__sha256_final(mp__sha256 *c, unsigned char out[MP__SHA256_LEN]);
/* HMAC-SHA256 of msg under key (any length). */
void mp__hmac_sha256(const void *key, size_t key_len, const void *msg,
                     size_t msg_len, unsigned char out[MP__SHA256_LEN]);
/* 1 when the n bytes are equal, in time independent of where they differ. */
int mp__mem_equal_ct(const void *a, const void *b, size_t n);

/* ---- worker.c: the child's side of a pool ---- */

/*
 * Written by a worker before each item, read by the parent to know which
 * item a dead or overdue worker was running. One per worker slot, in memory
 * shared between the parent and its workers.
 */
typedef struct mp__slot {
  _Atomic uint64_t task_id;  /* task (chunk) running, 0: none */
  _Atomic uint32_t item;     /* item index within it */
  _Atomic int64_t start_ns;  /* when that item started (if timeouts are on) */
  _Atomic uint32_t ready;    /* the initializer has returned */
} mp__slot;

typedef struct mp__worker_cfg {
  int task_fd;  /* read end */
  int res_fd;   /* write end */
  int chan_fd;  /* the shm transport's channel (shmchan.h), -1: none */
  mp__slot *slot;
  pid_t parent; /* the pool's process */
  void (*initializer)(void *);
  void *initarg;
  int maxtasks;       /* 0: unlimited */
  int timed;          /* record start_ns per item */
  uint32_t max_res;   /* apply result cap */
  uint32_t max_task;  /* task payload cap */
} mp__worker_cfg;

/* ---- buf.c: mp_buf ---- */

/* An mp_buf for the caller's side (a streaming source writes items into
 * one): at most max bytes. NULL when out of memory. */
mp_buf *mp__buf_new(size_t max);
/* Empty it (keeping its memory). */
void mp__buf_reset(mp_buf *b);
/* Its bytes (NULL when none were ever written), their count, and its first
 * failure (-ENOMEM, -EMSGSIZE; 0: none). */
const char *mp__buf_bytes(const mp_buf *b, size_t *len, int *err);
/* free(); NULL is a no-op. */
void mp__buf_free(mp_buf *b);

/* Run the worker loop; never returns. */
_Noreturn void mp__worker_main(const mp__worker_cfg *cfg);

/* In a worker: its result pipe, or -1 elsewhere. For the fault tests, which
 * make a task break the protocol; not part of the API. */
int mp__worker_res_fd(void);
/* In a worker: write raw bytes into its result stream, whichever carries it
 * (the result pipe, or the shm transport's ring), in order with its
 * results. For the same tests. Returns 0, or -1 (not in a worker; the
 * parent is gone). */
int mp__worker_inject(const void *p, size_t n);

/* Set the name mp_current_process_name() returns (child side). */
void mp__set_process_name(const char *name);

#endif /* MPOOL_INTERNAL_H */
