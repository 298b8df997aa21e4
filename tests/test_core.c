/* test_core.c: the pool's policy (blame, requeue, ordering, broken pools,
 * timeouts, protocol errors) driven deterministically through a fake
 * in-process transport: no process, no crash, no timing. The real-crash
 * tests (test_faults, test_reliability) check the same rules end to end. */
#include "fixture.h"
#include "pool/pool_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake transport ---- */

enum act {
  RUN,         /* run the whole task and answer */
  SKIP,        /* not this round */
  LOSE,        /* crash (SIGSEGV) at item *at */
  LOSE_UNTOLD, /* die between items: no task known */
  PROTO,       /* item *at (or an earlier one) wrote junk, seen now */
  BADID,       /* answer under another task's id */
  HANG,        /* never answer; running() says since 10 s */
};

typedef struct fake fake;
/* What worker w does with task t, which it is about to run: an act, and
 * for LOSE and PROTO the item of t it gets to (*at). */
typedef enum act (*script_fn)(fake *f, int w, const mp__task *t,
                              uint32_t *at);

typedef struct fake_worker {
  int alive, ready, killed, retiring;
  mp__list q; /* tasks sent, oldest first */
  int hanging;
  uint64_t hang_task;
  int64_t hang_since;
} fake_worker;

struct fake {
  mp_pool *core;
  int nproc;
  fake_worker w[4];
  script_fn script;
  int init_deaths;  /* workers still to die in their initializer */
  int starts, bad_results, rounds;
  int refs_ok, refs_bad; /* references resolved to the task's function */
  int item_status;       /* answer with whole statuses (item_status ops) */
};

static fake F;

static int fk_create(const mp__tp_cfg *cfg, void *arg, void **tp) {
  fake *f = arg;
  f->core = cfg->core;
  f->nproc = cfg->nproc;
  *tp = f;
  return 0;
}

static int fk_start(void *tp, int w) {
  fake *f = tp;
  fake_worker *fw = &f->w[w];
  memset(fw, 0, sizeof *fw);
  mp__list_init(&fw->q);
  fw->alive = 1;
  fw->ready = f->init_deaths <= 0;
  f->starts++;
  return 0;
}

static int fk_send(void *tp, int w, mp__task *t) {
  fake *f = tp;
  if (t->ref) {
    mp__fn fn;
    if (mp__fnref_resolve(t->ref, &fn) == 0 && fn == t->fn)
      f->refs_ok++;
    else
      f->refs_bad++;
  }
  mp__list_push(&f->w[w].q, &t->tp_link);
  return 0;
}

static int fk_cancel(void *tp, int w, uint64_t id) {
  fake *f = tp;
  MP__LIST_EACH(n, nx, &f->w[w].q) {
    if (MP__ENTRY(n, mp__task, tp_link)->id == id) {
      mp__list_remove(n);
      return 1;
    }
  }
  return 0;
}

static void fk_kill(void *tp, int w, int drain) {
  (void)drain;
  ((fake *)tp)->w[w].killed = 1;
}

static void fk_retire(void *tp, int w) { ((fake *)tp)->w[w].retiring = 1; }

static void fk_lost(fake *f, int w, mp__loss loss) {
  fake_worker *fw = &f->w[w];
  loss.init_done = fw->ready;
  memset(fw, 0, sizeof *fw);
  mp__list_init(&fw->q);
  mp__core_lost(f->core, w, &loss);
}

/* Run items [0, upto) of map task t in process; the payload of a whole
 * run into buf (outputs, then codes if any is non-zero). Returns its
 * length. */
static size_t fk_run(const mp__task *t, uint32_t upto, char *buf) {
  mp_map_fn fn = (mp_map_fn)t->fn;
  char *codes = buf + (size_t)t->count * t->out_size;
  int32_t any = 0;
  for (uint32_t i = 0; i < upto; i++) {
    int32_t rc = fn(t->in + (size_t)i * t->in_size, buf + (size_t)i * t->out_size);
    memcpy(codes + i * sizeof rc, &rc, sizeof rc);
    any |= rc;
  }
  return (size_t)t->count * t->out_size + (any ? t->count * sizeof(int32_t) : 0);
}

/* The outcome a pool on the far side gives item value v (item_status
 * transports): a few items fail in ways only such a pool reports. */
static mp__item_st fk_item_st(int v) {
  switch (v) {
  case 3: return (mp__item_st){MP_ECRASHED, -SIGSEGV};
  case 5: return (mp__item_st){MP_ENOFUNC, 0};
  case 7: return (mp__item_st){MP_ETIMEDOUT, 0};
  case 9: return (mp__item_st){MP_ETASK, 42};
  default: return (mp__item_st){0, 0};
  }
}

/* Run map task t whole; its payload with statuses into buf. */
static size_t fk_run_st(const mp__task *t, char *buf) {
  size_t len = fk_run(t, t->count, buf);
  (void)len;
  char *st = buf + (size_t)t->count * t->out_size;
  for (uint32_t k = 0; k < t->count; k++) {
    mp__item_st s = fk_item_st(*(const int *)(const void *)(t->in + (size_t)k * t->in_size));
    memcpy(st + k * sizeof s, &s, sizeof s);
  }
  return (size_t)t->count * (t->out_size + sizeof(mp__item_st));
}

static int fk_wait(void *tp, int64_t deadline) {
  (void)deadline;
  fake *f = tp;
  f->rounds++;
  for (int w = 0; w < f->nproc; w++) {
    fake_worker *fw = &f->w[w];
    if (!fw->alive)
      continue;
    if (fw->killed) {
      fk_lost(f, w, (mp__loss){MP__LOST_EXIT, -SIGKILL, 1, 0, 0, 0});
      continue;
    }
    if (!fw->ready) { /* dies in its initializer, status 1 */
      f->init_deaths--;
      fk_lost(f, w, (mp__loss){MP__LOST_EXIT, 1, 1, 0, 0, 0});
      continue;
    }
    mp__list *n = mp__list_first(&fw->q);
    if (!n) {
      if (fw->retiring)
        fk_lost(f, w, (mp__loss){MP__LOST_EXIT, 0, 1, 0, 0, 0});
      continue;
    }
    mp__task *t = MP__ENTRY(n, mp__task, tp_link);
    if (fw->hanging)
      continue;
    uint32_t at = 0;
    enum act a = t->kind == MP__TASK_MAP ? f->script(f, w, t, &at) : RUN;
    char buf[4096];
    switch (a) {
    case RUN: {
      size_t len;
      if (t->kind == MP__TASK_MAP && f->item_status) {
        len = fk_run_st(t, buf);
      } else if (t->kind == MP__TASK_MAP) {
        len = fk_run(t, t->count, buf);
      } else if (f->item_status) {
        mp__apply_res res = {MP_ETIMEDOUT, 0, 0};
        memcpy(buf, &res, sizeof res);
        len = sizeof res;
      } else {
        mp__apply_res res = {0, 0, 0};
        memcpy(buf, &res, sizeof res);
        len = sizeof res;
      }
      mp__list_remove(n);
      if (mp__core_result(f->core, w, t->id, buf, len) < 0)
        fail_msg("the core refused a valid result");
      break;
    }
    case SKIP:
      break;
    case LOSE:
      fk_run(t, at, buf);
      fk_lost(f, w, (mp__loss){MP__LOST_EXIT, -SIGSEGV, 1, t->id, at, 0});
      break;
    case LOSE_UNTOLD:
      fk_lost(f, w, (mp__loss){MP__LOST_EXIT, 0, 1, 0, 0, 0});
      break;
    case PROTO:
      fk_run(t, at + 1, buf);
      fk_lost(f, w, (mp__loss){MP__LOST_PROTO, 0, 0, t->id, at, 0});
      break;
    case BADID: {
      size_t len = fk_run(t, t->count, buf);
      mp__list_remove(n);
      if (mp__core_result(f->core, w, t->id + 1000, buf, len) == MP_EPROTO)
        f->bad_results++;
      fk_lost(f, w, (mp__loss){MP__LOST_PROTO, 0, 0, 0, 0, 0});
      break;
    }
    case HANG:
      fw->hanging = 1;
      fw->hang_task = t->id;
      fw->hang_since = mp__now_ns() - (int64_t)10e9;
      break;
    }
  }
  return 0;
}

static int fk_running(void *tp, int w, uint64_t *task, uint32_t *item,
                      int64_t *since) {
  fake_worker *fw = &((fake *)tp)->w[w];
  if (!fw->hanging)
    return 0;
  *task = fw->hang_task;
  *item = 0;
  *since = fw->hang_since;
  return 1;
}

static int fk_ready(void *tp, int w) { return ((fake *)tp)->w[w].ready; }
static long fk_ident(void *tp, int w) { return ((fake *)tp)->w[w].alive ? 100 + w : 0; }
static void fk_destroy(void *tp) { (void)tp; }

static const mp__tp_ops fake_ops = {
    .create = fk_create, .start = fk_start, .send = fk_send,
    .cancel = fk_cancel, .kill = fk_kill, .retire = fk_retire,
    .wait = fk_wait, .running = fk_running, .ready = fk_ready,
    .ident = fk_ident, .destroy = fk_destroy,
};

/* The same transport, its functions crossing as references. */
static mp__tp_ops fake_ref_ops;

static mp_pool *fake_pool_with(const mp__tp_ops *ops, int nproc,
                               script_fn script, mp_pool_opts o,
                               int init_deaths) {
  memset(&F, 0, sizeof F);
  F.script = script;
  F.init_deaths = init_deaths;
  o.processes = nproc;
  mp_pool *p = NULL;
  assert_int_equal(mp__pool_create_with(&p, &o, ops, &F), 0);
  return p;
}

static mp_pool *fake_pool(int nproc, script_fn script, mp_pool_opts o,
                          int init_deaths) {
  return fake_pool_with(&fake_ops, nproc, script, o, init_deaths);
}

/* ---- the tasks and their bookkeeping ---- */

enum { N = 40 };
static int runs[N]; /* times each item ran */

static int twice(const void *in, void *out) {
  int v = *(const int *)in;
  runs[v]++;
  *(int *)out = 2 * v;
  return 0;
}

static int in[N];

static void setup_items(void) {
  for (int i = 0; i < N; i++) {
    in[i] = i;
    runs[i] = 0;
  }
}

/* The input index of item k of task t. */
static int item_value(const mp__task *t, uint32_t k) {
  return *(const int *)(const void *)(t->in + (size_t)k * t->in_size);
}

/* Map in[] on p with chunksize cs: every item but `bad` (-1: none) must
 * succeed with its output; bad must fail with code, detail. */
static void check_map(mp_pool *p, size_t cs, int bad, int code, int detail) {
  int out[N];
  mp_status st[N];
  memset(out, 0, sizeof out);
  int rc = mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                       &(mp_map_opts){.chunksize = cs, .status = st});
  for (int i = 0; i < N; i++) {
    if (i == bad)
      continue;
    if (st[i].code != 0 || out[i] != 2 * i)
      fail_msg("item %d: %s (%d), out %d", i, mp_err_name(st[i].code),
               st[i].detail, out[i]);
  }
  if (bad >= 0) {
    assert_int_equal(st[bad].code, code);
    assert_int_equal(st[bad].detail, detail);
  }
  assert_int_equal(rc, bad >= 0 ? code : 0);
}

/* ---- scripts ---- */

static int once;

/* The first time item 7 runs, its worker crashes there. */
static enum act lose_at_7(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w;
  for (uint32_t k = 0; k < t->count; k++)
    if (item_value(t, k) == 7 && !once++) {
      *at = k;
      return LOSE;
    }
  return RUN;
}

static void test_lost_at_item_k(void **state) {
  (void)state;
  setup_items();
  once = 0;
  mp_pool *p = fake_pool(2, lose_at_7, (mp_pool_opts){0}, 0);
  check_map(p, 5, 7, MP_ECRASHED, -SIGSEGV);
  /* Its chunk was [5, 10): 5 and 6 ran before the crash and again after,
   * 7 never ran, 8 and 9 ran once, elsewhere. */
  assert_int_equal(runs[5], 2);
  assert_int_equal(runs[6], 2);
  assert_int_equal(runs[7], 0);
  assert_int_equal(runs[8], 1);
  assert_int_equal(runs[9], 1);
  assert_int_equal(F.starts, 3); /* two, and one replacement */
  mpt_pool_done(p);
}

static enum act run_all(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w, (void)t, (void)at;
  return RUN;
}

static void test_lost_in_initializer(void **state) {
  (void)state;
  setup_items();
  /* Twice in a row: replaced, and the map completes. */
  mp_pool *p = fake_pool(1, run_all, (mp_pool_opts){0}, 2);
  check_map(p, 0, -1, 0, 0);
  assert_int_equal(F.starts, 3);
  mpt_pool_done(p);
  /* Three times in a row: the pool is broken. */
  p = fake_pool(1, run_all, (mp_pool_opts){0}, 100);
  int out[N];
  mp_status st[N];
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.status = st}),
                   MP_ECRASHED);
  for (int i = 0; i < N; i++) {
    assert_int_equal(st[i].code, MP_ECRASHED);
    assert_int_equal(st[i].detail, 1);
  }
  assert_int_equal(F.starts, 3);
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out, NULL),
                   MP_ECLOSED);
  mp_pool_free(p);
}

static int deaths_left;

/* Workers die between items (no item running) deaths_left times. */
static enum act lose_untold(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w, (void)t, (void)at;
  return deaths_left-- > 0 ? LOSE_UNTOLD : RUN;
}

static void test_lost_with_no_task(void **state) {
  (void)state;
  setup_items();
  /* Two losses on one chunk with no item to blame: it runs again. */
  mp_pool *p = fake_pool(1, lose_untold, (mp_pool_opts){0}, 0);
  deaths_left = 2;
  check_map(p, N, -1, 0, 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(runs[i], 1);
  mpt_pool_done(p);
  /* Three: the chunk fails rather than forking forever. */
  setup_items();
  p = fake_pool(1, lose_untold, (mp_pool_opts){0}, 0);
  deaths_left = 3;
  int out[N];
  mp_status st[N];
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.chunksize = N, .status = st}),
                   MP_ECRASHED);
  for (int i = 0; i < N; i++)
    assert_int_equal(st[i].code, MP_ECRASHED);
  check_map(p, 0, -1, 0, 0);
  mpt_pool_done(p);
}

/* Item 12 hangs. */
static enum act hang_12(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w, (void)at;
  for (uint32_t k = 0; k < t->count; k++)
    if (item_value(t, k) == 12)
      return HANG;
  return RUN;
}

static void test_timeout(void **state) {
  (void)state;
  setup_items();
  /* chunksize 1: the hung item is alone in its task, so the running item
   * the fake reports (item 0 of the hung task) is it. */
  mp_pool *p = fake_pool(2, hang_12, (mp_pool_opts){.task_timeout = 1}, 0);
  check_map(p, 1, 12, MP_ETIMEDOUT, 0);
  assert_int_equal(runs[12], 0);
  mpt_pool_done(p);
}

/* Item 23 writes junk whenever it runs; the junk is seen while item
 * `seen_at` items later runs (the worker has moved on). */
static int seen_later;
static enum act junk_23(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w;
  for (uint32_t k = 0; k < t->count; k++)
    if (item_value(t, k) == 23) {
      *at = k + (uint32_t)seen_later < t->count ? k + (uint32_t)seen_later
                                                : t->count - 1;
      return PROTO;
    }
  return RUN;
}

static void test_protocol_error_blames_one(void **state) {
  (void)state;
  for (seen_later = 0; seen_later < 3; seen_later++) {
    setup_items();
    mp_pool *p = fake_pool(2, junk_23, (mp_pool_opts){0}, 0);
    check_map(p, 10, 23, MP_EPROTO, 0);
    /* The suspects ran alone; the innocent ones delivered. */
    for (int i = 24 + seen_later; i < 30; i++)
      assert_int_equal(runs[i], 1); /* after the bad bytes: once */
    mpt_pool_done(p);
  }
}

/* Every map task's result first comes back under a wrong id. */
static int bad_ids;
static enum act bad_id_once(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)f, (void)w, (void)t, (void)at;
  return bad_ids-- > 0 ? BADID : RUN;
}

static void test_result_for_unknown_task(void **state) {
  (void)state;
  setup_items();
  bad_ids = 1;
  mp_pool *p = fake_pool(1, bad_id_once, (mp_pool_opts){0}, 0);
  /* The core refuses it; the worker is lost with nothing to blame alone,
   * so its items run again, one by one, and all deliver. */
  check_map(p, 8, -1, 0, 0);
  assert_int_equal(F.bad_results, 1);
  mpt_pool_done(p);
}

/* Worker 0 answers one round in three, worker 1 every round. */
static enum act w0_slow(fake *f, int w, const mp__task *t, uint32_t *at) {
  (void)t, (void)at;
  return w == 0 && f->rounds % 3 ? SKIP : RUN;
}

/* Ordering: imap returns items in input order whatever order the workers
 * answer in; imap_unordered in the order the answers came. */
static void test_iterator_order(void **state) {
  (void)state;
  for (int unordered = 0; unordered < 2; unordered++) {
    setup_items();
    mp_pool *p = fake_pool(2, w0_slow, (mp_pool_opts){0}, 0);
    mp_iter *it;
    mp_map_opts o = {.chunksize = 3};
    assert_int_equal((unordered ? mp_pool_imap_unordered : mp_pool_imap)(
                         p, twice, in, N, sizeof *in, sizeof(int), &o, &it),
                     0);
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
      int v;
      size_t idx;
      assert_int_equal(mp_iter_next(it, &v, &idx, NULL, -1), 0);
      assert_true(idx < N);
      assert_int_equal(v, 2 * (int)idx);
      seen[idx]++;
      if (!unordered)
        assert_int_equal((int)idx, i);
      else if (i == 0) /* worker 1's first chunk, [3, 6), answered first */
        assert_int_equal((int)idx, 3);
    }
    for (int i = 0; i < N; i++)
      assert_int_equal(seen[i], 1);
    int v;
    assert_int_equal(mp_iter_next(it, &v, NULL, NULL, -1), MP_EOF);
    mp_iter_free(it);
    mpt_pool_done(p);
  }
}

static int echo_apply(const void *arg, size_t len, mp_buf *res) {
  (void)arg, (void)len, (void)res;
  return 0;
}

/* A transport whose workers are not forked copies gets each task's function
 * as a reference, and the pool refuses at submit a function no process
 * could resolve: a pointer into the heap, data or the stack. */
static void test_functions_cross_as_references(void **state) {
  (void)state;
  setup_items();
  fake_ref_ops = fake_ops;
  fake_ref_ops.by_reference = 1;
  mp_pool *p = fake_pool_with(&fake_ref_ops, 2, run_all, (mp_pool_opts){0}, 0);
  check_map(p, 4, -1, 0, 0);
  assert_int_equal(F.refs_ok, N / 4);
  assert_int_equal(F.refs_bad, 0);
  void *r;
  size_t rlen;
  assert_int_equal(mp_pool_apply(p, echo_apply, NULL, 0, &r, &rlen, NULL), 0);
  assert_int_equal(F.refs_ok, N / 4 + 1);

  void *heap = malloc(64);
  static int data_word;
  void *bad[3] = {heap, &data_word, &rlen}; /* heap, data, stack */
  for (int k = 0; k < 3; k++) {
    mp_map_fn mf;
    mp_apply_fn af;
    memcpy(&mf, &bad[k], sizeof mf);
    memcpy(&af, &bad[k], sizeof af);
    int out[N];
    mp_result *res = NULL;
    mp_iter *it = NULL;
    assert_int_equal(mp_pool_map(p, mf, in, N, sizeof *in, out, sizeof *out, NULL),
                     MP_EINVAL);
    assert_int_equal(mp_pool_map_async(p, mf, in, N, sizeof *in, out, sizeof *out,
                                       NULL, &res), MP_EINVAL);
    assert_int_equal(mp_pool_imap(p, mf, in, N, sizeof *in, sizeof *out, NULL, &it),
                     MP_EINVAL);
    assert_int_equal(mp_pool_apply(p, af, NULL, 0, &r, &rlen, NULL), MP_EINVAL);
    assert_int_equal(mp_pool_apply_async(p, af, NULL, 0, NULL, &res), MP_EINVAL);
    assert_null(res);
    assert_null(it);
  }
  free(heap);
  assert_int_equal(F.refs_bad, 0);
  check_map(p, 0, -1, 0, 0); /* and it still maps */
  mpt_pool_done(p);
}

/* ---- waiting on a pool together with other fds (mp_wait) ---- */

static int fk_pollfds(void *tp, struct pollfd *out, int max, int64_t *due) {
  (void)tp;
  (void)due;
  for (int i = 0; i < 3 && i < max; i++)
    out[i] = (struct pollfd){.fd = 100 + i, .events = POLLIN};
  return 3;
}

static int noop_apply(const void *arg, size_t len, mp_buf *res) {
  (void)arg, (void)len, (void)res;
  return 0;
}

static void test_pollfds_entry(void **state) {
  (void)state;
  /* A transport without pollfds: no fds, and a round due within a slice. */
  mp_pool *p = fake_pool(2, run_all, (mp_pool_opts){0}, 0);
  struct pollfd fds[4];
  int64_t due = INT64_MAX, t0 = mp__now_ns();
  assert_int_equal(mp__pool_pollfds(p, fds, 4, &due), 0);
  assert_true(due >= t0 && due <= mp__now_ns() + MP__POOL_SLICE_NS);
  /* Work handed out by the first half of the round, finished by a step. */
  mp_result *r;
  assert_int_equal(mp_pool_apply_async(p, noop_apply, NULL, 0, NULL, &r), 0);
  due = INT64_MAX;
  assert_int_equal(mp__pool_pollfds(p, fds, 4, &due), 0);
  assert_int_equal(mp__pool_step(p, 0), 0);
  assert_int_equal(mp_result_ready(r), 1);
  mp_result_free(r);
  mpt_pool_done(p);

  /* A transport with pollfds: its fds, counted past max; no deadline
   * when idle. */
  static mp__tp_ops ops;
  ops = fake_ops;
  ops.pollfds = fk_pollfds;
  p = fake_pool_with(&ops, 2, run_all, (mp_pool_opts){0}, 0);
  due = INT64_MAX;
  assert_int_equal(mp__pool_pollfds(p, fds, 2, &due), 3);
  assert_int_equal(fds[1].fd, 101);
  assert_true(due == INT64_MAX);
  mpt_pool_done(p);

  /* An item past its task_timeout: a round is due now. */
  setup_items();
  p = fake_pool(1, hang_12, (mp_pool_opts){.task_timeout = 1}, 0);
  int out[N];
  mp_result *m;
  assert_int_equal(mp_pool_map_async(p, twice, in + 12, 1, sizeof *in, out,
                                     sizeof *out, NULL, &m), 0);
  /* Submitting ran a round: the item hangs, started 10 s ago, and its
   * worker was killed; the round that reports it is due at once. */
  due = INT64_MAX;
  (void)mp__pool_pollfds(p, fds, 4, &due);
  assert_true(due <= mp__now_ns());
  mp_result_free(m);
  mpt_pool_done(p);
}

/* A transport whose workers run tasks in pools of their own (MPI ranks)
 * hands the core each item's whole outcome; the core delivers it exactly,
 * to arrays and iterators alike, and an apply's too. Outcomes no pool
 * gives are refused. */
static void test_item_statuses(void **state) {
  (void)state;
  setup_items();
  mp__tp_ops ops = fake_ops;
  ops.item_status = 1;
  mp_pool *p = fake_pool_with(&ops, 2, run_all, (mp_pool_opts){0}, 0);
  F.item_status = 1;
  int out[N];
  mp_status st[N];
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.chunksize = 4, .status = st}),
                   MP_ECRASHED);
  for (int i = 0; i < N; i++) {
    mp__item_st want = fk_item_st(i);
    assert_int_equal(st[i].code, want.code);
    assert_int_equal(st[i].detail, want.detail);
    if (!want.code)
      assert_int_equal(out[i], 2 * i);
  }
  mp_iter *it;
  assert_int_equal(mp_pool_imap(p, twice, in, N, sizeof *in, sizeof(int),
                                &(mp_map_opts){.chunksize = 3}, &it), 0);
  for (int i = 0; i < N; i++) {
    int v;
    mp_status s;
    assert_int_equal(mp_iter_next(it, &v, NULL, &s, -1), fk_item_st(i).code);
    assert_int_equal(s.detail, fk_item_st(i).detail);
  }
  mp_iter_free(it);
  void *r;
  size_t rlen;
  mp_status ast;
  assert_int_equal(mp_pool_apply(p, echo_apply, NULL, 0, &r, &rlen, &ast),
                   MP_ETIMEDOUT);
  assert_null(r);
  mpt_pool_done(p);

  /* What no pool reports. */
  assert_int_equal(mp__status_check(0, 1), MP_EPROTO);
  assert_int_equal(mp__status_check(MP_ETASK, 0), MP_EPROTO);
  assert_int_equal(mp__status_check(5, 0), MP_EPROTO);
  assert_int_equal(mp__status_check(-5000, 0), MP_EPROTO);
  assert_int_equal(mp__status_check(-ENOMEM, 0), 0);
  char buf[3 * (sizeof(int) + sizeof(mp__item_st))] = {0};
  uint32_t len = (uint32_t)sizeof buf;
  assert_int_equal(mp__map_res_st_check(buf, len, 3, sizeof(int)), 0);
  assert_int_equal(mp__map_res_st_check(buf, len - 1, 3, sizeof(int)), MP_EPROTO);
  mp__item_st bad = {MP_ETASK, 0};
  memcpy(buf + 3 * sizeof(int) + sizeof bad, &bad, sizeof bad);
  assert_int_equal(mp__map_res_st_check(buf, len, 3, sizeof(int)), MP_EPROTO);
  mp__apply_res ar = {MP_ECRASHED, -SIGKILL, 0};
  char abuf[sizeof ar + 4] = {0};
  memcpy(abuf, &ar, sizeof ar);
  assert_int_equal(mp__apply_res_st_check(abuf, sizeof ar, 16), 0);
  assert_int_equal(mp__apply_res_st_check(abuf, sizeof abuf, 16), MP_EPROTO);
  /* The fork transport's check still refuses such outcomes. */
  assert_int_equal(mp__apply_res_check(abuf, sizeof ar, 16), MP_EPROTO);
}

/* A transport that carries only fixed-size calls (MPI ranks): the calls it
 * cannot carry as asked are refused at submit, not run without their
 * context or timeout. */
static int bytes_echo(const void *arg, size_t len, mp_buf *res) {
  return mp_buf_append(res, arg, len);
}

static void test_fixed_calls_only(void **state) {
  (void)state;
  setup_items();
  mp__tp_ops ops = fake_ops;
  ops.fixed_calls_only = 1;
  mp_pool *p = fake_pool_with(&ops, 2, run_all, (mp_pool_opts){0}, 0);
  int k = 3, out[N];
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.context = &k, .context_len = sizeof k}),
                   MP_EINVAL);
  assert_int_equal(mp_pool_map(p, twice, in, N, sizeof *in, out, sizeof *out,
                               &(mp_map_opts){.task_timeout = 2}),
                   MP_EINVAL);
  mp_bytes b = {"x", 1}, r;
  assert_int_equal(mp_pool_map_bytes(p, bytes_echo, &b, 1, &r, NULL), MP_EINVAL);
  mp_iter *it = NULL;
  assert_int_equal(mp_pool_imap_bytes(p, bytes_echo, &b, 1, NULL, &it), MP_EINVAL);
  mp_result *res = NULL;
  assert_int_equal(mp_pool_apply_async(p, echo_apply, NULL, 0,
                                       &(mp_async_opts){.task_timeout = 1}, &res),
                   MP_EINVAL);
  assert_null(res);
  assert_null(it);
  check_map(p, 0, -1, 0, 0); /* plain calls go on */
  mpt_pool_done(p);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_lost_at_item_k),
      MPT_TEST(test_lost_in_initializer),
      MPT_TEST(test_lost_with_no_task),
      MPT_TEST(test_timeout),
      MPT_TEST(test_protocol_error_blames_one),
      MPT_TEST(test_result_for_unknown_task),
      MPT_TEST(test_iterator_order),
      MPT_TEST(test_functions_cross_as_references),
      MPT_TEST(test_pollfds_entry),
      MPT_TEST(test_item_statuses),
      MPT_TEST(test_fixed_calls_only),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
