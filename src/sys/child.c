/* sys/child.c: a child's end and its signals: its exit, waitpid, exit
 * codes, pidfd signalling, and the parent-death signal's arming
 * (sys/child.h). */
#include "../internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a start waits for its child to arm the parent-death signal: a
 * bound for a child stopped or starved at birth, not a timing. */
#define FORK_ARM_NS (10 * (int64_t)1000000000)

/*
 * The parent-death signal follows the *thread* that forked, and the kernel
 * sends it only if it is armed when that thread exits: a child that arms
 * it after its forking thread exited is watching whichever thread it was
 * handed to, and getppid() cannot tell (it names the process, which lives
 * on). So the forking thread does not leave mp__fork before the child has
 * armed it: the child says so on a pipe, and the parent waits for that
 * (or the child's end) up to FORK_ARM_NS. A child that does neither in
 * that time is killed and reaped, and the fork fails with -EAGAIN. Returns
 * 0 or -EAGAIN. (A daemon exec'd by mp__exec_process waits the same way.)
 */
int mp__await_armed(pid_t pid, int rd) {
  struct pollfd p = {.fd = rd, .events = POLLIN};
  /* A byte (armed) or EOF (gone): either is final. A second, short look
   * for a pair stopped and resumed together (job control) as time ran. */
  if (mp__poll(&p, 1, mp__now_ns() + FORK_ARM_NS) > 0 ||
      mp__poll(&p, 1, mp__now_ns() + FORK_ARM_NS / 10) > 0)
    return 0;
  (void)kill(pid, SIGKILL); /* our child, not yet reaped: the pid is its */
  int ws;
  (void)mp__waitpid(pid, &ws, 0);
  return -EAGAIN;
}

void mp__die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The parent may have died before the signal was armed: die as the
   * signal would have made us. */
  if (getppid() != parent)
    raise(SIGKILL);
}

_Noreturn void mp__child_exit(int code) {
  fflush(NULL);
  _exit(code);
}

pid_t mp__waitpid(pid_t pid, int *status, int flags) {
  for (;;) {
    pid_t r = waitpid(pid, status, flags);
    if (r >= 0)
      return r;
    if (errno != EINTR)
      return -errno;
  }
}

int mp__exitcode(int wstatus) {
  if (WIFEXITED(wstatus))
    return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus))
    return -WTERMSIG(wstatus);
  return -SIGKILL;
}

int mp__pidfd_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
    return 0;
  return errno == ESRCH ? 0 : -errno;
#else
  (void)pidfd;
  (void)sig;
  return -ENOSYS;
#endif
}

int mp__child_signal(pid_t pid, int pidfd, int sig) {
  if (pidfd >= 0) {
    int rc = mp__pidfd_signal(pidfd, sig);
    if (rc != -ENOSYS)
      return rc;
  }
  /* No pidfd: signal only a child that waitid says is still ours, not yet
   * reaped (a zombie keeps its pid). ECHILD: reaped, by us or by the kernel
   * (SIGCHLD ignored), and the pid may be another process's by now. */
  siginfo_t si;
  si.si_pid = 0;
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
    return errno == ECHILD ? 0 : -errno;
  if (si.si_pid == pid)
    return 0; /* exited, not yet reaped: nothing to signal */
  if (kill(pid, sig) < 0 && errno != ESRCH)
    return -errno;
  return 0;
}

int mp__child_pidfd(pid_t pid) {
  int fd = mp__pidfd_reg(pid);
  if (fd < 0)
    return -1;
  /* Between fork and pidfd_open a child reaped by the kernel (SIGCHLD
   * ignored) can have left its pid to another process: a pidfd that is not
   * for a child of ours is no use. */
  siginfo_t si;
  if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
      errno == ECHILD)
    mp__fd_drop(&fd);
  return fd;
}
