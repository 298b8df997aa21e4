/* test_ipc_shm.c: mp_shm, anonymous and named shared memory: sharing across
 * fork and by name, mode 0600, O_EXCL, removal by its owner only. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static mp_shm *g_shm;
static char g_name[64];

/* A name no other run of this test uses. */
static const char *fresh_name(void) {
  static int n;
  snprintf(g_name, sizeof g_name, "/mpool-test-%ld-%d", (long)getpid(), ++n);
  return g_name;
}

/* Whether the name exists, and its mode and size when it does. */
static int name_stat(const char *name, struct stat *st) {
  int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = fstat(fd, st) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

static int fill_pattern(void *arg) {
  (void)arg;
  unsigned char *p = mp_shm_ptr(g_shm);
  for (size_t i = 0; i < mp_shm_size(g_shm); i++)
    p[i] = (unsigned char)(i % 251);
  return 0;
}

static void test_shm_anonymous(void **state) {
  (void)state;
  size_t n = 3 * 4096 + 5;
  assert_int_equal(mp_shm_create(&g_shm, NULL, n), 0);
  assert_int_equal(mp_shm_size(g_shm), n);
  assert_null(mp_shm_name(g_shm));
  unsigned char *p = mp_shm_ptr(g_shm);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(p[i], 0);
  assert_int_equal(mpt_finish(mpt_start(fill_pattern, NULL)), 0);
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i % 251))
      fail_msg("byte %zu not written by the child", i);
  mp_shm_free(g_shm);
  mp_shm_free(NULL);
}

static void test_shm_named(void **state) {
  (void)state;
  const char *name = fresh_name();
  mp_shm *owner = NULL, *other = NULL;
  /* The mode must not depend on the umask: one that strips the owner's
   * write bit still gives 0600. */
  mode_t old = umask(0277);
  int rc = mp_shm_create(&owner, name, 10000);
  umask(old);
  assert_int_equal(rc, 0);
  assert_string_equal(mp_shm_name(owner), name);
  assert_int_equal(mp_shm_size(owner), 10000);

  struct stat st;
  assert_int_equal(name_stat(name, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, 10000);
  assert_int_equal(st.st_uid, getuid());

  mp_shm *dup = NULL;
  assert_int_equal(mp_shm_create(&dup, name, 10), -EEXIST);
  assert_null(dup);

  assert_int_equal(mp_shm_attach(&other, name), 0);
  assert_int_equal(mp_shm_size(other), 10000);
  assert_ptr_not_equal(mp_shm_ptr(other), mp_shm_ptr(owner));
  memcpy(mp_shm_ptr(owner), "shared!", 8);
  assert_string_equal(mp_shm_ptr(other), "shared!");
  mp_shm_free(other); /* an attacher's free keeps the name */
  assert_int_equal(name_stat(name, &st), 0);

  assert_int_equal(mp_shm_attach(&other, name), 0);
  mp_shm_free(owner); /* the owner's free removes it */
  assert_int_equal(name_stat(name, &st), -ENOENT);
  assert_int_equal(mp_shm_attach(&owner, name), -ENOENT);
  /* Still mapped where it was attached. */
  assert_string_equal(mp_shm_ptr(other), "shared!");
  mp_shm_free(other);
}

/* A process that knows only the name: attach, write, detach. */
static int attach_and_write(void *arg) {
  const char *name = arg;
  mp_shm *s;
  if (mp_shm_attach(&s, name) != 0)
    return 1;
  memcpy(mp_shm_ptr(s), "from child", 11);
  mp_shm_free(s);
  return 0;
}

/* A child freeing its inherited copy of the owner's handle. */
static int free_inherited(void *arg) {
  (void)arg;
  mp_shm_free(g_shm);
  return 0;
}

static void test_shm_named_across_processes(void **state) {
  (void)state;
  const char *name = fresh_name();
  assert_int_equal(mp_shm_create(&g_shm, name, 64), 0);
  assert_int_equal(mpt_finish(mpt_start(attach_and_write, (void *)name)), 0);
  assert_string_equal(mp_shm_ptr(g_shm), "from child");
  assert_int_equal(mpt_finish(mpt_start(free_inherited, NULL)), 0);
  struct stat st;
  assert_int_equal(name_stat(name, &st), 0); /* not the child's to remove */
  mp_shm_free(g_shm);
  assert_int_equal(name_stat(name, &st), -ENOENT);
}

static void test_shm_errors(void **state) {
  (void)state;
  mp_shm *s = NULL;
  char long_name[NAME_MAX + 3];
  long_name[0] = '/';
  memset(long_name + 1, 'a', NAME_MAX + 1);
  long_name[NAME_MAX + 2] = 0;
  assert_int_equal(mp_shm_create(NULL, NULL, 1), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, NULL, 0), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, "/mpool-x", 0), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, "no-slash", 8), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, "/a/b", 8), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, "/", 8), MP_EINVAL);
  assert_int_equal(mp_shm_create(&s, long_name, 8), MP_EINVAL);
  int rc = mp_shm_create(&s, NULL, SIZE_MAX);
  assert_true(rc == -ENOMEM || rc == -EINVAL); /* EINVAL: valgrind's mmap */
  assert_int_equal(mp_shm_attach(NULL, "/x"), MP_EINVAL);
  assert_int_equal(mp_shm_attach(&s, NULL), MP_EINVAL);
  assert_int_equal(mp_shm_attach(&s, "bad"), MP_EINVAL);
  assert_int_equal(mp_shm_attach(&s, fresh_name()), -ENOENT);
  assert_null(s);
  assert_null(mp_shm_ptr(NULL));
  assert_int_equal(mp_shm_size(NULL), 0);
  assert_null(mp_shm_name(NULL));

  /* A segment of size 0 (its creator not done yet) is not attached. */
  const char *name = fresh_name();
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(mp_shm_attach(&s, name), MP_ESTATE);
  assert_null(s);
  close(fd);
  shm_unlink(name);
}

/* ---- the tracker: a named segment goes with its creator ---- */

/* Wait up to max_s seconds for name to be gone. Returns 1 if it is. */
static int gone_within(const char *name, double max_s) {
  struct stat st;
  double end = mpt_now() + max_s;
  for (;;) {
    if (name_stat(name, &st) == -ENOENT)
      return 1;
    if (mpt_now() > end)
      return 0;
    struct timespec tick = {0, 1000000}; /* pacing a poll, not a sync */
    nanosleep(&tick, NULL);
  }
}

static int g_ready[2];
static int g_untracked;

/* Child: create the segment (tracked unless g_untracked), write to it,
 * say so, then wait to be killed. */
static int create_and_wait(void *arg) {
  (void)arg;
  close(g_ready[0]);
  mp_shm *s;
  if (mp_shm_create_opts(&s, g_name, 4096,
                         &(mp_shm_opts){.untracked = g_untracked}) != 0)
    return 1;
  memcpy(mp_shm_ptr(s), "alive", 6);
  mpt_write(g_ready[1], "r", 1);
  for (;;)
    pause();
}

static void test_shm_creator_killed(void **state) {
  (void)state;
  for (g_untracked = 0; g_untracked < 2; g_untracked++) {
    fresh_name();
    assert_int_equal(pipe2(g_ready, O_CLOEXEC), 0);
    mp_process *p = mpt_start(create_and_wait, NULL);
    close(g_ready[1]);
    char c;
    mpt_read(g_ready[0], &c, 1);
    close(g_ready[0]);
    mp_shm *att;
    assert_int_equal(mp_shm_attach(&att, g_name), 0);
    assert_int_equal(mp_process_kill(p), 0);
    assert_int_equal(mpt_finish(p), -SIGKILL);
    if (!g_untracked) {
      assert_true(gone_within(g_name, 10));
    } else {
      struct stat st;
      assert_int_equal(name_stat(g_name, &st), 0); /* left, as asked */
      assert_int_equal(shm_unlink(g_name), 0);
    }
    /* Either way an attached process keeps its mapping. */
    assert_string_equal(mp_shm_ptr(att), "alive");
    mp_shm_free(att);
  }
}

/* The tracker holds no fd of the caller's: a pipe made before it still
 * sees EOF when its writer closes. And it is gone (reaped, its socket
 * closed) once the last tracked segment is freed: the fixture checks. */
static void test_shm_tracker_holds_nothing(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  mp_shm *a, *b;
  assert_int_equal(mp_shm_create(&a, fresh_name(), 100), 0);
  char n2[64];
  snprintf(n2, sizeof n2, "%s", g_name);
  assert_int_equal(mp_shm_create(&b, fresh_name(), 100), 0);
  close(fds[1]);
  char c;
  assert_int_equal(read(fds[0], &c, 1), 0); /* EOF: nobody else holds it */
  close(fds[0]);
  mp_shm_free(a);
  struct stat st;
  assert_int_equal(name_stat(n2, &st), -ENOENT); /* freed: removed */
  assert_int_equal(name_stat(g_name, &st), 0);   /* still tracked */
  mp_shm_free(b);
  assert_int_equal(name_stat(g_name, &st), -ENOENT);
}

/* Several creators, some killed at random, some freeing normally: every
 * name is gone in the end, each within a bound. */
enum { NCREATORS = 5 };
static char g_names[NCREATORS][64];
static int g_go[2];

static int create_two(void *arg) {
  int i = (int)(intptr_t)arg;
  close(g_ready[0]);
  mp_shm *s[2];
  char n[80];
  snprintf(n, sizeof n, "%.60s-b", g_names[i]);
  if (mp_shm_create(&s[0], g_names[i], 4096) != 0 ||
      mp_shm_create(&s[1], n, 4096) != 0)
    return 1;
  mpt_write(g_ready[1], "r", 1);
  /* Wait for the parent's word (EOF on g_go): then free normally, or be
   * killed before it comes. */
  close(g_go[1]);
  char c;
  ssize_t r;
  while ((r = read(g_go[0], &c, 1)) > 0 || (r < 0 && errno == EINTR))
    ;
  mp_shm_free(s[0]);
  mp_shm_free(s[1]);
  return 0;
}

static void test_shm_creators_killed_at_random(void **state) {
  (void)state;
  assert_int_equal(pipe2(g_ready, O_CLOEXEC), 0);
  assert_int_equal(pipe2(g_go, O_CLOEXEC), 0);
  mp_process *p[NCREATORS];
  for (int i = 0; i < NCREATORS; i++) {
    snprintf(g_names[i], sizeof g_names[i], "/mpool-test-%ld-r%d",
             (long)getpid(), i);
    p[i] = mpt_start(create_two, (void *)(intptr_t)i);
  }
  close(g_ready[1]);
  for (int i = 0; i < NCREATORS; i++) {
    char c;
    mpt_read(g_ready[0], &c, 1);
  }
  close(g_ready[0]);
  srand((unsigned)getpid());
  for (int i = 0; i < NCREATORS; i++)
    if (rand() % 2)
      mp_process_kill(p[i]);
  close(g_go[1]);
  close(g_go[0]);
  for (int i = 0; i < NCREATORS; i++) {
    int code = mpt_finish(p[i]);
    assert_true(code == 0 || code == -SIGKILL);
    char n[80];
    snprintf(n, sizeof n, "%.60s-b", g_names[i]);
    assert_true(gone_within(g_names[i], 10));
    assert_true(gone_within(n, 10));
  }
}

/* A tracker that does not go when told (stopped here) does not hold up
 * the free that lets it go: it is killed after a bound and reaped. The
 * child that owns it runs the free; it reports the tracker's pid, so a
 * hung run's tracker can be cleaned up. */
static int g_trk[2];

/* This process's only child, from the kernel's list; 0 if none. */
static pid_t only_child(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)gettid());
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1)
    pid = 0;
  fclose(f);
  return (pid_t)pid;
}

static int free_beside_stopped_tracker(void *arg) {
  (void)arg;
  mp_shm *s;
  if (mp_shm_create(&s, g_name, 4096) != 0)
    return 1;
  pid_t trk = only_child();
  mpt_write(g_trk[1], &trk, sizeof trk);
  if (trk <= 0 || kill(trk, SIGSTOP) < 0)
    return 2;
  siginfo_t si;
  if (waitid(P_PID, (id_t)trk, &si, WSTOPPED | WNOWAIT) < 0)
    return 3;
  mp_shm_free(s); /* the last tracked segment: the tracker must go */
  return kill(trk, 0) < 0 && errno == ESRCH ? 0 : 4;
}

static void test_shm_tracker_stopped(void **state) {
  (void)state;
  fresh_name();
  assert_int_equal(pipe2(g_trk, O_CLOEXEC), 0);
  mp_process *p = mpt_start(free_beside_stopped_tracker, NULL);
  close(g_trk[1]);
  pid_t trk = 0;
  mpt_read(g_trk[0], &trk, sizeof trk);
  close(g_trk[0]);
  int rc = mpt_finish_within(p, 10);
  if (rc != 0 && trk > 0)
    kill(trk, SIGKILL); /* a hung free left it stopped */
  assert_int_equal(rc, 0);
  struct stat st;
  assert_int_equal(name_stat(g_name, &st), -ENOENT);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_shm_anonymous),
      MPT_TEST(test_shm_named),
      MPT_TEST(test_shm_named_across_processes),
      MPT_TEST(test_shm_errors),
      MPT_TEST(test_shm_creator_killed),
      MPT_TEST(test_shm_tracker_holds_nothing),
      MPT_TEST(test_shm_creators_killed_at_random),
      MPT_TEST(test_shm_tracker_stopped),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
