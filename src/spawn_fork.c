/*
 * spawn_fork.c: the fork spawner (spawner.h): workers forked from the
 * caller, which run the worker loop on the pipe ends (and channel) the
 * transport made, and signals and statuses straight from the kernel.
 */
#include "spawner.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct spawn_fork {
  const mp_pool_opts *opts;
  size_t max_res;
  mp__slot *slots;
  size_t slots_len;
} spawn_fork;

static int sf_create(const mp__tp_cfg *cfg, void **out, mp__slot **slots) {
  spawn_fork *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->opts = cfg->opts;
  s->max_res = cfg->max_res;
  s->slots_len = (size_t)cfg->nproc * sizeof(mp__slot);
  void *m = NULL;
  int err = mp__ipc_map(&m, s->slots_len);
  if (err < 0) {
    free(s);
    return err;
  }
  s->slots = m;
  *slots = m;
  *out = s;
  return 0;
}

static int sf_spawn(void *sp, int idx, const char *name, int task_rd,
                    int res_wr, int chan_fd, pid_t *pid_out, int *pidfd) {
  spawn_fork *s = sp;
  int keep[3] = {task_rd, res_wr, chan_fd};
  mp__fork_req req = {.keep = keep, .nkeep = chan_fd >= 0 ? 3 : 2,
                      .die_with_parent = 1, .name = name};
  pid_t parent = getpid();
  pid_t pid = mp__fork(&req);
  if (pid == 0) {
    mp__worker_cfg cfg = {
        .task_fd = task_rd,
        .res_fd = res_wr,
        .chan_fd = chan_fd,
        .slot = &s->slots[idx],
        .parent = parent,
        .initializer = s->opts->initializer,
        .initarg = s->opts->initarg,
        .maxtasks = s->opts->maxtasksperchild,
        .timed = s->opts->task_timeout > 0,
        .max_res = (uint32_t)s->max_res,
        .max_task = UINT32_MAX,
    };
    mp__worker_main(&cfg);
  }
  if (pid < 0)
    return pid;
  *pid_out = pid;
  *pidfd = mp__child_pidfd(pid);
  return 0;
}

static void sf_signal(void *sp, pid_t pid, int pidfd, int sig) {
  (void)sp;
  (void)mp__child_signal(pid, pidfd, sig);
}

static int sf_reap(void *sp, pid_t pid, int *code) {
  (void)sp;
  int ws;
  if (mp__waitpid(pid, &ws, 0) != pid)
    return 0;
  *code = mp__exitcode(ws);
  return 1;
}

static void sf_destroy(void *sp) {
  spawn_fork *s = sp;
  mp__ipc_unmap(s->slots, s->slots_len);
  free(s);
}

const mp__spawn_ops mp__spawn_fork = {
    .create = sf_create,
    .spawn = sf_spawn,
    .signal = sf_signal,
    .reap = sf_reap,
    .destroy = sf_destroy,
};
