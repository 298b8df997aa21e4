/*
 * q2_crash.c: Q2, processes vs threads, part two: crashes. The notebooks
 * claim that a crash in one process does not affect the others. Shown, not
 * stated: a child dies of SIGSEGV, and the parent carries on and reads its
 * exit code, -11 (-SIGSEGV), as Python's Process.exitcode reports it.
 *
 *   import ctypes, multiprocessing as mp
 *
 *   def crash():
 *       ctypes.string_at(0)                 # reads address 0: SIGSEGV
 *
 *   if __name__ == "__main__":
 *       p = mp.Process(target=crash); p.start(); p.join()
 *       print(p.exitcode)                             # -11
 *       print("parent: still running")
 *
 * (A thread that did the same would take the whole process down with it.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static int crash(void *arg) {
  signal(SIGSEGV, SIG_DFL); /* a test runner or sanitizer may catch it */
  /* A bad write: string literals live in read-only memory. (A store through
   * NULL faults too, but UBSan stops that one before it lands.) */
  volatile char *text = (volatile char *)"read-only";
  text[0] = 'R';
  return 0;
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    exit(1);
  }
}

int main(void) {
  mp_process *p;
  int code;
  check(mp_process_create(&p, crash, NULL, NULL), "mp_process_create");
  check(mp_process_start(p), "mp_process_start");
  check(mp_process_join(p, -1), "mp_process_join");
  check(mp_process_exitcode(p, &code), "mp_process_exitcode");
  mp_process_free(p);
  printf("child exitcode: %d\n", code);
  printf("parent: still running\n");
  return 0;
}
