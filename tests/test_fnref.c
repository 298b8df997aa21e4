/* test_fnref.c: portable function references, made and resolved in this
 * process and in a copy of this program exec'd afresh (at another load
 * address, as a fork server's workers or MPI ranks are). */
#include "fixture.h"
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* argv[1] that puts this program in resolve mode (see child_main). */
#define CHILD_MODE "--fnref-resolve"
#define ANSWER 4242
#define WORD "portable"

/* A static function of this executable, and data beside it. */
static int fnref_answer(void) { return ANSWER; }
static volatile int fnref_data = 7;

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

typedef void (*qsort_fn)(void *, size_t, size_t,
                         int (*)(const void *, const void *));
typedef size_t (*strlen_fn)(const char *);
typedef const char *(*strerror_fn)(int);

static mp__fnref ref_of(mp__fn fn) {
  mp__fnref r;
  assert_int_equal(mp__fnref_make(fn, &r), 0);
  assert_int_equal(mp__fnref_check(&r), 0);
  return r;
}

/* make, make again (a cache hit: the same bytes), resolve to fn, twice. */
static mp__fnref round_trip(mp__fn fn) {
  mp__fnref r = ref_of(fn), again = ref_of(fn);
  assert_memory_equal(&r, &again, sizeof r);
  for (int i = 0; i < 2; i++) {
    mp__fn back = NULL;
    assert_int_equal(mp__fnref_resolve(&r, &back), 0);
    assert_true(back == fn);
  }
  return r;
}

static mp__fn resolved(const mp__fnref *r) {
  mp__fn fn = NULL;
  assert_int_equal(mp__fnref_resolve(r, &fn), 0);
  return fn;
}

/* ---- in this process ---- */

static void test_round_trip_executable(void **state) {
  (void)state;
  mp__fnref r = round_trip((mp__fn)fnref_answer);
  assert_in_range(r.id_len, 16, MP__BUILD_ID_MAX); /* ld's default: SHA-1, 20 */
  assert_int_equal(((int (*)(void))resolved(&r))(), ANSWER);
  /* Any address in the code will do, not only a function's entry. */
  mp__fnref mid = round_trip((mp__fn)((uintptr_t)fnref_answer + 1));
  assert_memory_equal(mid.build_id, r.build_id, MP__BUILD_ID_MAX);
  assert_true(mid.offset == r.offset + 1);
}

static void test_round_trip_shared_library(void **state) {
  (void)state;
  mp__fnref exe = ref_of((mp__fn)fnref_answer);
  mp__fnref libc = round_trip((mp__fn)qsort);
  mp__fnref cm = round_trip((mp__fn)cmocka_set_test_filter);
  assert_memory_not_equal(libc.build_id, exe.build_id, MP__BUILD_ID_MAX);
  assert_memory_not_equal(cm.build_id, exe.build_id, MP__BUILD_ID_MAX);
  assert_memory_not_equal(cm.build_id, libc.build_id, MP__BUILD_ID_MAX);
  int v[] = {3, 1, 2};
  ((qsort_fn)resolved(&libc))(v, 3, sizeof *v, cmp_int);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[2], 3);
}

/* This test links the static libmpool: its code is the executable's. */
static void test_round_trip_libmpool(void **state) {
  (void)state;
  mp__fnref exe = ref_of((mp__fn)fnref_answer);
  mp__fnref lib = round_trip((mp__fn)mp_strerror);
  assert_memory_equal(lib.build_id, exe.build_id, MP__BUILD_ID_MAX);
  assert_string_equal(((strerror_fn)resolved(&lib))(MP_ENOFUNC),
                      mp_strerror(MP_ENOFUNC));
  round_trip((mp__fn)mp__fnref_make);
}

static void assert_refused(const void *p) {
  mp__fnref r;
  memset(&r, 0xab, sizeof r);
  assert_int_equal(mp__fnref_make((mp__fn)(uintptr_t)p, &r), MP_EINVAL);
  for (size_t i = 0; i < sizeof r; i++) /* *out unchanged */
    assert_int_equal(((unsigned char *)&r)[i], 0xab);
}

static void test_make_refuses_non_code(void **state) {
  (void)state;
  int local = 0;
  char *heap = malloc(64);
  assert_non_null(heap);
  assert_refused(NULL);
  assert_refused(heap);
  assert_refused((const void *)&fnref_data);
  assert_refused(&local);
  assert_refused(WORD); /* read-only data */
  free(heap);
  /* Executable memory in no module: what a JIT makes. */
  long page = sysconf(_SC_PAGESIZE);
  void *jit = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (jit == MAP_FAILED)
    skip(); /* W+X refused here (SELinux execmem, PaX) */
  assert_refused(jit);
  assert_refused((char *)jit + 16);
  munmap(jit, (size_t)page);
}

/* A reference read from another process is validated before use. */
static void test_check_malformed(void **state) {
  (void)state;
  mp__fnref good = ref_of((mp__fn)fnref_answer), r;
  mp__fn fn = (mp__fn)fnref_answer;
  const uint8_t bad_len[] = {0, MP__BUILD_ID_MAX + 1, 255};
  for (size_t i = 0; i < sizeof bad_len; i++) {
    r = good;
    r.id_len = bad_len[i];
    assert_int_equal(mp__fnref_check(&r), MP_EPROTO);
    assert_int_equal(mp__fnref_resolve(&r, &fn), MP_EPROTO);
  }
  for (size_t i = 0; i < sizeof r.pad; i++) {
    r = good;
    r.pad[i] = 1;
    assert_int_equal(mp__fnref_resolve(&r, &fn), MP_EPROTO);
  }
  r = good; /* bytes after the build-id */
  r.build_id[good.id_len] = 1;
  assert_int_equal(mp__fnref_resolve(&r, &fn), MP_EPROTO);
  r = good; /* a shorter id is a different id, not a prefix match */
  r.build_id[--r.id_len] = 0;
  assert_int_equal(mp__fnref_check(&r), 0);
  assert_int_equal(mp__fnref_resolve(&r, &fn), MP_ENOFUNC);
  assert_true(fn == (mp__fn)fnref_answer); /* unchanged on failure */
}

/* The references the cross-process tests send, tampered ones included. */
typedef struct refs {
  mp__fnref answer, strlen_, strerror_, cmocka, tampered, data, huge, top,
      short_id;
} refs;

static refs make_refs(void) {
  refs s;
  s.answer = ref_of((mp__fn)fnref_answer);
  s.strlen_ = ref_of((mp__fn)strlen);
  s.strerror_ = ref_of((mp__fn)mp_strerror);
  s.cmocka = ref_of((mp__fn)_cmocka_run_group_tests);
  s.tampered = s.answer;
  s.tampered.build_id[0] ^= 1;
  s.data = s.answer; /* the same module, a data symbol */
  s.data.offset += (uintptr_t)&fnref_data - (uintptr_t)fnref_answer;
  s.huge = s.answer;
  s.huge.offset = 1ull << 62;
  s.top = s.answer;
  s.top.offset = UINT64_MAX;
  s.short_id = s.answer;
  s.short_id.id_len = 0;
  return s;
}

static void test_resolve_refuses_here(void **state) {
  (void)state;
  refs s = make_refs();
  mp__fn fn = NULL;
  assert_int_equal(mp__fnref_resolve(&s.tampered, &fn), MP_ENOFUNC);
  assert_int_equal(mp__fnref_resolve(&s.data, &fn), MP_ENOFUNC);
  assert_int_equal(mp__fnref_resolve(&s.huge, &fn), MP_ENOFUNC);
  assert_int_equal(mp__fnref_resolve(&s.top, &fn), MP_ENOFUNC);
  assert_null(fn);
}

/* fnref_module's function, from the build at path; *h its handle. */
static mp__fn module_fn(const char *path, void **h) {
  *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(*h);
  mp__fn fn = (mp__fn)(uintptr_t)dlsym(*h, "fnref_module_fn");
  assert_non_null(fn);
  assert_int_equal(((int (*)(void))fn)(), 77);
  return fn;
}

/* A module linked with -Wl,--build-id=none cannot be referenced. */
static void test_make_refuses_no_build_id(void **state) {
  (void)state;
  void *h;
  mp__fn fn = module_fn(FNREF_MODULE_NOID, &h);
  assert_refused((const void *)(uintptr_t)fn);
  dlclose(h);
}

/* After dlclose, no cached entry of the module is used again. */
static void test_dlclose_drops_cached(void **state) {
  (void)state;
  void *h;
  mp__fn fn = module_fn(FNREF_MODULE, &h);
  mp__fnref r = round_trip(fn); /* now in both caches */
  dlclose(h);
  if ((h = dlopen(FNREF_MODULE, RTLD_NOW | RTLD_NOLOAD))) {
    dlclose(h);
    fail_msg("dlclose did not unload " FNREF_MODULE);
  }
  mp__fn back = NULL;
  assert_int_equal(mp__fnref_resolve(&r, &back), MP_ENOFUNC);
  assert_int_equal(mp__fnref_make(fn, &r), MP_EINVAL);
  /* Loaded again (at whatever address): found afresh. */
  mp__fnref again = round_trip(module_fn(FNREF_MODULE, &h));
  assert_memory_equal(&again, &r, sizeof r);
  dlclose(h);
}

/* ---- threads: the caches under concurrent fills and evictions ---- */

#define NKEYS 200 /* over the 64 slots of a table: every thread evicts */

typedef struct hammer {
  mp__fn fn[NKEYS];
  mp__fnref ref[NKEYS];
  int iters;
  atomic_int wrong;
} hammer;

static void *hammer_thread(void *arg) {
  hammer *hm = arg;
  unsigned x = (unsigned)(uintptr_t)&x | 1u;
  for (int i = 0; i < hm->iters; i++) {
    x = x * 1103515245u + 12345u;
    unsigned k = (x >> 8) % NKEYS;
    mp__fnref r;
    mp__fn fn = NULL;
    if (mp__fnref_make(hm->fn[k], &r) != 0 ||
        memcmp(&r, &hm->ref[k], sizeof r) != 0)
      atomic_fetch_add(&hm->wrong, 1);
    if (mp__fnref_resolve(&hm->ref[k], &fn) != 0 || fn != hm->fn[k])
      atomic_fetch_add(&hm->wrong, 1);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  hammer *hm = calloc(1, sizeof *hm);
  assert_non_null(hm);
  for (int k = 0; k < NKEYS; k++) { /* code of the executable and of libc */
    uintptr_t base = k % 2 ? (uintptr_t)fnref_answer : (uintptr_t)qsort;
    hm->fn[k] = (mp__fn)(base + (uintptr_t)k * 3);
    hm->ref[k] = ref_of(hm->fn[k]);
  }
  hm->iters = mpt_under_tool() ? 2000 : 50000;
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, hm), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&hm->wrong), 0);
  free(hm);
}

/* ---- cost: printed, not asserted (timing belongs in bench/) ---- */

static double ns_per(double t0, long n) { return (mpt_now() - t0) * 1e9 / n; }

static void test_cost(void **state) {
  (void)state;
  long hits = mpt_under_tool() ? 20000 : 2000000, misses = 1024;
  mp__fnref r = ref_of((mp__fn)fnref_answer), out;
  mp__fn fn;
  volatile int sink = 0;
  double t0 = mpt_now();
  for (long i = 0; i < hits; i++)
    sink += mp__fnref_make((mp__fn)fnref_answer, &out);
  double make_hit = ns_per(t0, hits);
  t0 = mpt_now();
  for (long i = 0; i < hits; i++)
    sink += mp__fnref_resolve(&r, &fn);
  double resolve_hit = ns_per(t0, hits);
  /* Misses: addresses and offsets never asked for before, in the
   * executable (the first module walked) and in libc (further on). */
  double make_miss[2], resolve_miss[2];
  for (int m = 0; m < 2; m++) {
    uintptr_t base = (m ? (uintptr_t)qsort : (uintptr_t)fnref_answer) + 4096;
    t0 = mpt_now();
    for (long i = 0; i < misses; i++)
      sink += mp__fnref_make((mp__fn)(base + (uintptr_t)i), &out);
    make_miss[m] = ns_per(t0, misses);
    r = ref_of((mp__fn)base);
    mp__fnref q = r;
    t0 = mpt_now();
    for (long i = 0; i < misses; i++) {
      q.offset = r.offset - 1 - (uint64_t)i;
      sink += mp__fnref_resolve(&q, &fn);
    }
    resolve_miss[m] = ns_per(t0, misses);
  }
  assert_int_equal(sink, 0);
  print_message("fnref cost%s: make hit %.1f ns, miss %.0f ns (executable) "
                "%.0f ns (libc); resolve hit %.1f ns, miss %.0f ns "
                "(executable) %.0f ns (libc)\n",
                mpt_under_tool() ? " (under a tool: not representative)" : "",
                make_hit, make_miss[0], make_miss[1], resolve_hit,
                resolve_miss[0], resolve_miss[1]);
}

/* ---- across processes: a copy of this program, exec'd ---- */

static void hex(const mp__fnref *r, char op, char out[2 + 2 * sizeof *r + 1]) {
  const unsigned char *b = (const unsigned char *)r;
  out[0] = op;
  out[1] = ':';
  for (size_t i = 0; i < sizeof *r; i++)
    snprintf(out + 2 + 2 * i, 3, "%02x", b[i]);
}

static int unhex(const char *s, mp__fnref *r) {
  unsigned char *b = (unsigned char *)r;
  if (strlen(s) != 2 * sizeof *r)
    return -1;
  for (size_t i = 0; i < sizeof *r; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1)
      return -1;
    b[i] = (unsigned char)v;
  }
  return 0;
}

/*
 * Resolve mode: each argument is OP:HEX, a reference as bytes. For each,
 * print the resolve's code and, on success, what calling it gave:
 *   a  int (*)(void), fnref_answer;   l  strlen(WORD);
 *   e  mp_strerror(MP_ENOFUNC);       r  resolve only.
 */
static int child_main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    mp__fnref r;
    mp__fn fn = NULL;
    if (strlen(argv[i]) < 2 || argv[i][1] != ':' || unhex(argv[i] + 2, &r))
      return 2;
    int rc = mp__fnref_resolve(&r, &fn);
    if (rc != 0 || argv[i][0] == 'r')
      printf("%d\n", rc);
    else if (argv[i][0] == 'a')
      printf("0 %d\n", ((int (*)(void))fn)());
    else if (argv[i][0] == 'l')
      printf("0 %zu\n", ((strlen_fn)fn)(WORD));
    else if (argv[i][0] == 'e')
      printf("0 %s\n", ((strerror_fn)fn)(MP_ENOFUNC));
    else
      return 2;
  }
  return fflush(stdout) == 0 ? 0 : 3;
}

#define NSENT 9

/* Exec prog in resolve mode on the references; returns its output, or
 * NULL when prog could not be exec'd (status 127). */
static char *run_child(const char *prog, const refs *s) {
  static char args[NSENT][2 + 2 * sizeof(mp__fnref) + 1];
  hex(&s->answer, 'a', args[0]);
  hex(&s->strlen_, 'l', args[1]);
  hex(&s->strerror_, 'e', args[2]);
  hex(&s->cmocka, 'r', args[3]);
  hex(&s->tampered, 'a', args[4]);
  hex(&s->data, 'a', args[5]);
  hex(&s->huge, 'a', args[6]);
  hex(&s->top, 'a', args[7]);
  hex(&s->short_id, 'a', args[8]);
  char *argv[NSENT + 3] = {(char *)prog, CHILD_MODE};
  for (int i = 0; i < NSENT; i++)
    argv[2 + i] = args[i];
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (dup2(p[1], STDOUT_FILENO) < 0)
      _exit(126);
    execv(prog, argv);
    _exit(127);
  }
  close(p[1]);
  char *out = mpt_read_all(p[0], NULL);
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 127) {
    free(out);
    return NULL;
  }
  assert_int_equal(WEXITSTATUS(st), 0);
  return out;
}

/* out: what run_child gave (freed here); NULL skips the test. */
static void expect_output(char *out) {
  if (!out)
    skip(); /* cannot exec there (a noexec TMPDIR) */
  char want[512];
  snprintf(want, sizeof want, "0 %d\n0 %zu\n0 %s\n0\n%d\n%d\n%d\n%d\n%d\n",
           ANSWER, strlen(WORD), mp_strerror(MP_ENOFUNC), MP_ENOFUNC,
           MP_ENOFUNC, MP_ENOFUNC, MP_ENOFUNC, MP_EPROTO);
  assert_string_equal(out, want);
  free(out);
}

/* Under valgrind, /proc/self/exe is valgrind's tool, not this program
 * (an exec'd child runs untraced, natively: --trace-children=no). */
static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload");
}

/* The program's own image, as a fork server would start it. */
static void test_exec_self(void **state) {
  (void)state;
  static char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  assert_true(n > 0);
  path[n] = 0;
  refs s = make_refs();
  expect_output(run_child(under_valgrind() ? path : "/proc/self/exe", &s));
}

/* A copy of the program under another name in another directory: the
 * reference names the build, not the file. */
static void test_exec_copy(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  char dir[PATH_MAX], copy[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/mpool-fnref-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
  snprintf(copy, sizeof copy, "%s/copy", dir);
  int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  assert_true(in >= 0 && out >= 0);
  char buf[65536];
  ssize_t got;
  while ((got = read(in, buf, sizeof buf)) > 0)
    assert_int_equal(write(out, buf, (size_t)got), got);
  assert_int_equal(got, 0);
  close(in);
  assert_int_equal(close(out), 0);
  refs s = make_refs();
  char *res = run_child(copy, &s);
  unlink(copy);
  rmdir(dir);
  expect_output(res);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], CHILD_MODE) == 0)
    return child_main(argc - 2, argv + 2);
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_round_trip_executable),
      MPT_TEST(test_round_trip_shared_library),
      MPT_TEST(test_round_trip_libmpool),
      MPT_TEST(test_make_refuses_non_code),
      MPT_TEST(test_make_refuses_no_build_id),
      MPT_TEST(test_check_malformed),
      MPT_TEST(test_resolve_refuses_here),
      MPT_TEST(test_dlclose_drops_cached),
      MPT_TEST(test_threads),
      MPT_TEST(test_cost),
      MPT_TEST(test_exec_self),
      MPT_TEST(test_exec_copy),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
