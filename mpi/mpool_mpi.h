/*
 * mpool_mpi.h: the same pool over the ranks of an MPI job (libmpool_mpi).
 *
 * Rank 0 runs the program; every other rank serves it, running the items
 * it is sent in a local pool of its own (mpool.h), so a task that crashes,
 * exits or overruns its timeout fails that item alone, with the codes a
 * local pool gives, and the rank lives on. The pool rank 0 creates is an
 * ordinary mp_pool: map, apply, the async calls, imap, callbacks, close,
 * join, terminate and free behave as on one machine.
 *
 *   int main(int argc, char **argv) {
 *     int rc = mp_mpi_init(&argc, &argv, NULL);   every rank, first thing
 *     if (rc == MP_MPI_WORKER)
 *       return 0;                                 a worker rank, done
 *     if (rc < 0)
 *       ...mp_mpi_strerror(rc)...                 e.g. started without mpirun
 *     mp_pool *pool;
 *     mp_mpi_pool_create(&pool, NULL, NULL);      workers: ranks 1..N-1
 *     mp_pool_map(pool, f, in, n, ...);           as with a local pool
 *     mp_pool_close(pool); mp_pool_join(pool); mp_pool_free(pool);
 *     return mp_mpi_finalize() < 0;
 *   }
 *
 *   $ mpirun -n 4 ./program                       rank 0 + 3 worker ranks
 *
 * Order of calls: mp_mpi_init on every rank; on rank 0 then any number of
 * pools one after another (create ... free), then mp_mpi_finalize. Worker
 * ranks serve from mp_mpi_init until rank 0 calls mp_mpi_finalize.
 *
 * What carries over from a local pool, and what does not
 *   - Functions cross as portable references (mpool.h, "Functions cross as
 *     references"): every rank must run the same build of the program,
 *     which mp_mpi_init checks (the executable's build-id) before any task
 *     runs. A function in a library only rank 0 loaded fails its items with
 *     MP_ENOFUNC; the rest of the map runs.
 *   - Worker ranks are separate programs started by the launcher, not forks
 *     of rank 0: they see the program's globals as they were at start-up,
 *     never what rank 0 set later. Pass what a task needs in its input, or
 *     through the initializer's argument, which crosses as bytes.
 *   - IPC objects (queues, locks, shared memory) are local to a node: a
 *     task on another rank cannot reach rank 0's.
 *   - Callbacks and progress reports run on rank 0, inside library calls.
 *   - opts->processes counts the workers of each rank's local pool (0: the
 *     CPUs that rank may use); mp_pool_processes() gives the worker ranks,
 *     mp_pool_worker_pids() their process ids (each on its own node).
 *     task_timeout, maxtasksperchild, the initializer and max_result_bytes
 *     apply inside each rank's pool, with the same codes.
 *   - Not yet over MPI: items of their own lengths (mp_pool_map_bytes and
 *     the bytes and source iterators), a call's context and a call's own
 *     task_timeout (mp_map_opts, mp_async_opts). Those calls return
 *     MP_EINVAL on an MPI pool rather than run without what they asked
 *     for.
 *   - Losing a whole rank (its node fails, it is killed): Open MPI's mpirun
 *     and MPICH's mpiexec both end the whole job, non-zero, within seconds.
 *     Where the job lives on (a rank that hangs or is stopped, a node cut
 *     off; Open MPI's mpirun --enable-recovery after a rank dies; MPICH
 *     4.0's -disable-auto-cleanup does not keep it), a rank that owes rank
 *     0 an answer and has said nothing for silent_timeout is lost: its
 *     chunks run again on the other ranks, rank 0 never writes to it again
 *     and drops whatever it sends later, and mp_mpi_finalize returns
 *     MP_MPI_ELOST. A rank is not silent while its tasks run, however long:
 *     it sends a heartbeat every quarter of silent_timeout while it holds
 *     work (a 32-byte message, none while results flow, none when idle).
 *     The items are charged as a worker lost between items is locally:
 *     none fails for it, but a chunk at the head of three ranks that went
 *     silent fails with MP_ECRASHED (detail 0: no status), so an item that
 *     hangs whole nodes does not take every rank. When every rank is lost,
 *     items left fail with -EHOSTDOWN.
 *
 * The library never exits the caller's process. If the application
 * initialized MPI itself before mp_mpi_init, the library neither
 * initializes nor finalizes it, and works on a duplicate of
 * MPI_COMM_WORLD; otherwise mp_mpi_init initializes MPI and
 * mp_mpi_finalize (or MP_MPI_WORKER's return) finalizes it.
 * Idle worker ranks do not burn a core: after each message they poll for
 * 2 ms, then nap in steps growing to 1 ms.
 * Calls are made from the thread that called mp_mpi_init.
 */
#ifndef MPOOL_MPI_H
#define MPOOL_MPI_H

#include <mpool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mp_mpi_init's return on a worker rank once rank 0 has finalized: this
 * rank has served and MPI is finalized (if the library initialized it);
 * return from main. */
#define MP_MPI_WORKER 1

/* The codes of this library, below mpool.h's. */
enum {
  /* The world has one rank: no worker (started without mpirun/mpiexec, or
   * with -n 1); or, from mp_mpi_pool_create, every worker rank was lost. */
  MP_MPI_ENOWORKERS = -1101,
  /* Some rank runs another build of the program or of libmpool_mpi. */
  MP_MPI_EBUILD = -1102,
  /* An MPI call failed. */
  MP_MPI_EMPI = -1103,
  /* A worker rank was lost: silent past silent_timeout (mp_mpi_finalize). */
  MP_MPI_ELOST = -1104
};

/* Options of mp_mpi_init; NULL or { 0 } means defaults. */
typedef struct mp_mpi_opts {
  /* Seconds rank 0 waits for every worker rank to report at start-up,
   * and mp_mpi_pool_create for every rank to make its local pool; 0: 60. */
  double start_timeout;
  /* Seconds mp_mpi_finalize, and freeing a pool, wait for the worker
   * ranks to acknowledge; 0: 10. */
  double stop_timeout;
  /* Seconds a worker rank that owes rank 0 an answer (the result of a task
   * it was sent, or the end of its pool) may stay silent before rank 0
   * takes it as lost (see "Losing a whole rank" above); worker ranks send
   * a heartbeat every quarter of it while they hold work. Judged on rank
   * 0 inside the pool's calls: time rank 0 spends outside them is not
   * held against a rank. 0: 60; INFINITY (or over 1e9): never. Rank 0's
   * value is the one that counts. */
  double silent_timeout;
} mp_mpi_opts;

/*
 * Every rank calls this first, before other MPI calls of its own (it calls
 * MPI_Init unless MPI is initialized already). argc and argv are handed to
 * MPI_Init (either may be NULL). On rank 0 it returns 0 once every other
 * rank has reported and runs the same build. On a worker rank it serves
 * rank 0's pools and returns MP_MPI_WORKER after rank 0's mp_mpi_finalize.
 * Returns 0, MP_MPI_WORKER, or on every rank: MP_MPI_ENOWORKERS (a world
 * of one rank), MP_MPI_EBUILD (the ranks run different builds),
 * MP_MPI_EMPI, MP_ESTATE (called twice), -ENOMEM, MP_EINVAL (a timeout
 * negative or NaN, checked before anything else; the program has no
 * build-id: link with -Wl,--build-id); on rank 0 also MP_ETIMEDOUT
 * (a rank did not report within start_timeout: MPI is then left
 * initialized, and the program should exit non-zero, which ends the job);
 * on a worker rank also MP_MPI_ELOST in place of MP_MPI_WORKER when rank
 * 0 finalized after losing a rank (silent_timeout): this rank has served,
 * but MPI is left initialized, as finalizing would wait for the lost
 * rank; return from main. After the other errors MPI is finalized again
 * if this call initialized it.
 */
MP_EXPORT int mp_mpi_init(int *argc, char ***argv, const mp_mpi_opts *opts);

/* Options of mp_mpi_pool_create; NULL or { 0 } means defaults. */
typedef struct mp_mpi_pool_opts {
  /* Bytes at the pool's initarg sent to every rank; the initializer gets a
   * pointer to that rank's copy (aligned for any type). 0: it gets NULL. */
  size_t initarg_size;
} mp_mpi_pool_opts;

/*
 * On rank 0, after mp_mpi_init: a pool whose workers are the other ranks
 * (those not lost to silent_timeout),
 * each running its items in a local pool of opts->processes workers (see
 * above for what each option means here). Use it with the mp_pool_* calls
 * and release it with mp_pool_free, which waits (up to stop_timeout) until
 * every rank has ended its local pool. One such pool at a time.
 * Returns 0 and sets *out when every rank has made its local pool;
 * MP_EINVAL (bad options, an initializer that cannot be referenced);
 * MP_ESTATE (not rank 0 after mp_mpi_init, or a pool exists);
 * MP_MPI_ENOWORKERS (every worker rank was lost); the first error a rank
 * met making its pool (-EAGAIN, MP_ENOFUNC for an initializer it cannot
 * resolve...); MP_ETIMEDOUT (past start_timeout); -ENOMEM. On error
 * nothing is left.
 */
MP_EXPORT int mp_mpi_pool_create(mp_pool **out, const mp_pool_opts *opts,
                                 const mp_mpi_pool_opts *mopts);

/*
 * On rank 0, once its pools are freed: tell every worker rank to stop
 * (each ends its local pool, acknowledges, and returns MP_MPI_WORKER from
 * mp_mpi_init), then finalize MPI if mp_mpi_init initialized it.
 * Returns 0; MP_ESTATE (not rank 0 after mp_mpi_init, or a pool is still
 * there); MP_ETIMEDOUT when some rank did not acknowledge within
 * stop_timeout, MP_MPI_ELOST when a rank was lost (silent_timeout): the
 * other ranks are stopped, but MPI is not finalized, as that would wait
 * for the missing rank: exit non-zero, and the launcher ends the job;
 * MP_MPI_EMPI.
 */
MP_EXPORT int mp_mpi_finalize(void);

/* A static English message for any code of this header or of mpool.h. */
MP_EXPORT const char *mp_mpi_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_MPI_H */
