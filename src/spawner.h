/*
 * spawner.h: where the pipes transport (tp_fork.c) gets its worker processes.
 * The transport owns the pipes, the frames, the poll loop and the burying;
 * a spawner only starts a worker on the pipe ends (and channel) it is
 * given, signals it, and learns its exit status. Two spawners: fork (spawn_fork.c), workers
 * forked from the caller; and the fork server (tp_forkserver.c), workers
 * forked by a server process exec'd from the program's own image.
 */
#ifndef MPOOL_SPAWNER_H
#define MPOOL_SPAWNER_H

#include "pool/pool_internal.h"

typedef struct mp__spawn_ops {
  /* Make the spawner for cfg's pool, with the memory of cfg->nproc slots
   * its workers share with the transport (zeroed). Returns 0 and sets *sp
   * and *slots, or -errno (nothing is left behind). */
  int (*create)(const mp__tp_cfg *cfg, void **sp, mp__slot **slots);
  /* Start worker idx, named name, on task_rd and res_wr (the child's pipe
   * ends: the caller closes its own copy of res_wr afterwards) and chan_fd
   * (its shared-memory channel, shmchan.h; -1: none). Returns 0 with *pid
   * and *pidfd (-1: none, signal through signal()), or -errno. */
  int (*spawn)(void *sp, int idx, const char *name, int task_rd, int res_wr,
               int chan_fd, pid_t *pid, int *pidfd);
  /* Send sig to pid, a worker of this spawner not yet reaped by reap(). */
  void (*signal)(void *sp, pid_t pid, int pidfd, int sig);
  /* Wait for pid, which has ended or been sent SIGKILL, to be gone.
   * Returns 1 with its exit code (mp__exitcode), 0 when the status cannot
   * be learned (SIGCHLD ignored; the server gone). */
  int (*reap)(void *sp, pid_t pid, int *code);
  /* Release the spawner; every worker is reaped already. */
  void (*destroy)(void *sp);
} mp__spawn_ops;

extern const mp__spawn_ops mp__spawn_fork;
extern const mp__spawn_ops mp__spawn_server;

#endif /* MPOOL_SPAWNER_H */
