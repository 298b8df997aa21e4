/*
 * fnref.c: portable function references (GNU build-id + offset).
 *
 * make walks the loaded modules (dl_iterate_phdr) for the one with an
 * executable PT_LOAD segment that holds the address, and reads that
 * module's build-id from its PT_NOTE segments. resolve walks them for the
 * module with the reference's build-id and checks that the offset lies in
 * one of its executable segments. Both walks are cached, since make runs
 * on every submit.
 *
 * The caches are small tables read without a lock. Each slot is a seqlock
 * over atomic words (its sequence is odd while a writer changes it; a
 * reader that sees the sequence move discards what it read and takes the
 * slow path), so a reader never waits and never uses a torn entry. A writer
 * takes a try-lock and skips caching when another writer holds it: no
 * caller ever blocks on another, and a fork that copies a held lock into
 * its child costs that child its cache fills, never a deadlock.
 *
 * dlclose: a table records the loader's count of unloaded modules
 * (dlpi_subs) its entries were computed under. Every call first reads the
 * current count (one step of dl_iterate_phdr, which stops at the first
 * module); a table whose count differs is not read, and its next writer
 * empties it. So an entry of a module unloaded since is never used, and a
 * module loaded at the same address afterwards is walked afresh.
 */
#include "internal.h"

#include <assert.h>
#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

/* A record is a reference and a pointer, as words; a table has
 * FNREF_SLOTS of them (a power of two), and a key may sit in the
 * FNREF_PROBE slots from its hash on. */
#define FNREF_REF_WORDS (sizeof(mp__fnref) / sizeof(uint64_t))
#define FNREF_WORDS (FNREF_REF_WORDS + 1)
#define FNREF_SLOTS 64u
#define FNREF_PROBE 4u

_Static_assert(sizeof(mp__fnref) % sizeof(uint64_t) == 0,
               "a reference is whole words");
_Static_assert(offsetof(mp__fnref, id_len) == 8 &&
                   offsetof(mp__fnref, build_id) == 16,
               "mp__fnref has no implicit padding");

typedef struct fnref_slot {
  _Atomic uint32_t seq; /* odd while a writer changes w */
  _Atomic uint64_t w[FNREF_WORDS];
} fnref_slot;

/* A table of records whose first key_words words are the key; all-zero
 * words are an empty slot (no valid key is zero: make never caches NULL,
 * and a valid reference has id_len >= 1). */
typedef struct fnref_cache {
  atomic_flag writing;             /* the writers' try-lock */
  _Atomic unsigned long long subs; /* the entries hold for this count */
  unsigned key_words;
  unsigned evict; /* round robin within a probe window; under writing */
  fnref_slot slot[FNREF_SLOTS];
} fnref_cache;

/* make: the pointer, then its reference. resolve: the reference, then the
 * pointer it names here. */
static fnref_cache make_cache = {.writing = ATOMIC_FLAG_INIT, .key_words = 1};
static fnref_cache resolve_cache = {.writing = ATOMIC_FLAG_INIT,
                                    .key_words = FNREF_REF_WORDS};

static uint32_t fnref_hash(const uint64_t *w, unsigned n) {
  uint64_t h = 0;
  for (unsigned i = 0; i < n; i++)
    h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull;
  return (uint32_t)(h >> 32);
}

/* rec holds a key; on a hit, the rest of the record is filled in. */
static int fnref_cache_get(fnref_cache *c, unsigned long long subs, uint32_t h,
                           uint64_t rec[FNREF_WORDS]) {
  if (atomic_load_explicit(&c->subs, memory_order_acquire) != subs)
    return 0;
  for (unsigned i = 0; i < FNREF_PROBE; i++) {
    fnref_slot *s = &c->slot[(h + i) & (FNREF_SLOTS - 1)];
    uint64_t w[FNREF_WORDS];
    uint32_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (q & 1)
      continue;
    for (unsigned k = 0; k < FNREF_WORDS; k++)
      w[k] = atomic_load_explicit(&s->w[k], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != q)
      continue;
    if (memcmp(w, rec, c->key_words * sizeof *w) == 0) {
      memcpy(rec, w, sizeof w);
      return 1;
    }
  }
  return 0;
}

/* Caller holds c->writing. */
static void fnref_slot_write(fnref_slot *s, const uint64_t rec[FNREF_WORDS]) {
  uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  for (unsigned k = 0; k < FNREF_WORDS; k++)
    atomic_store_explicit(&s->w[k], rec[k], memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 2, memory_order_release);
}

static int fnref_slot_empty(fnref_slot *s) {
  for (unsigned k = 0; k < FNREF_WORDS; k++)
    if (atomic_load_explicit(&s->w[k], memory_order_relaxed))
      return 0;
  return 1;
}

/* Cache rec, computed while subs modules had been unloaded. Skipped when
 * another writer is busy, or when rec is older than the table. */
static void fnref_cache_put(fnref_cache *c, unsigned long long subs, uint32_t h,
                            const uint64_t rec[FNREF_WORDS]) {
  static const uint64_t zero[FNREF_WORDS];
  if (atomic_flag_test_and_set_explicit(&c->writing, memory_order_acquire))
    return;
  unsigned long long have =
      atomic_load_explicit(&c->subs, memory_order_relaxed);
  if (subs > have) {
    /* Empty the slots first, then publish the count: a reader that sees
     * the new count finds no entry of the old one. */
    for (unsigned i = 0; i < FNREF_SLOTS; i++)
      if (!fnref_slot_empty(&c->slot[i]))
        fnref_slot_write(&c->slot[i], zero);
    atomic_store_explicit(&c->subs, subs, memory_order_release);
  }
  if (subs >= have) {
    fnref_slot *to = NULL;
    for (unsigned i = 0; i < FNREF_PROBE && !to; i++) {
      fnref_slot *s = &c->slot[(h + i) & (FNREF_SLOTS - 1)];
      int same = 1;
      for (unsigned k = 0; k < c->key_words; k++)
        same &= atomic_load_explicit(&s->w[k], memory_order_relaxed) == rec[k];
      if (same)
        goto out; /* another writer cached it first */
      if (fnref_slot_empty(s))
        to = s;
    }
    if (!to)
      to = &c->slot[(h + c->evict++ % FNREF_PROBE) & (FNREF_SLOTS - 1)];
    fnref_slot_write(to, rec);
  }
out:
  atomic_flag_clear_explicit(&c->writing, memory_order_release);
}

/* ---- the loaded modules ---- */

static unsigned long long fnref_info_subs(const struct dl_phdr_info *info,
                                          size_t size) {
  return size >= offsetof(struct dl_phdr_info, dlpi_subs) +
                     sizeof info->dlpi_subs
             ? info->dlpi_subs
             : 0;
}

static int fnref_subs_cb(struct dl_phdr_info *info, size_t size, void *data) {
  *(unsigned long long *)data = fnref_info_subs(info, size);
  return 1; /* the count is the same in every module's info */
}

/* The number of modules unloaded so far in this process. */
static unsigned long long fnref_subs_now(void) {
  unsigned long long subs = 0;
  dl_iterate_phdr(fnref_subs_cb, &subs);
  return subs;
}

/* 1 when off (from the module's base) lies in a PT_LOAD segment with all
 * of flags, and so do len bytes from it. */
static int fnref_in_load(const struct dl_phdr_info *info, ElfW(Addr) off,
                         ElfW(Addr) len, ElfW(Word) flags) {
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & flags) == flags &&
        off >= ph->p_vaddr && off - ph->p_vaddr < ph->p_memsz &&
        len <= ph->p_memsz - (off - ph->p_vaddr))
      return 1;
  }
  return 0;
}

static size_t fnref_align(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* The module's GNU build-id, copied into id (zeroed after it). Returns its
 * length; 0 when it has none, or one longer than MP__BUILD_ID_MAX. Only
 * notes that lie in a readable loaded segment are read. */
static unsigned fnref_build_id(const struct dl_phdr_info *info,
                               uint8_t id[MP__BUILD_ID_MAX]) {
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE ||
        !fnref_in_load(info, ph->p_vaddr, ph->p_memsz, PF_R))
      continue;
    size_t align = ph->p_align == 8 ? 8 : 4;
    const unsigned char *p =
        (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
    size_t left = ph->p_memsz;
    ElfW(Nhdr) n;
    while (left >= sizeof n) {
      memcpy(&n, p, sizeof n);
      left -= sizeof n;
      if (n.n_namesz > left || n.n_descsz > left)
        break;
      size_t name = fnref_align(n.n_namesz, align);
      size_t desc = fnref_align(n.n_descsz, align);
      if (name > left || desc > left - name)
        break;
      if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 &&
          memcmp(p + sizeof n, "GNU", 4) == 0) {
        if (n.n_descsz == 0 || n.n_descsz > MP__BUILD_ID_MAX)
          return 0;
        memset(id, 0, MP__BUILD_ID_MAX);
        memcpy(id, p + sizeof n + name, n.n_descsz);
        return n.n_descsz;
      }
      p += sizeof n + name + desc;
      left -= name + desc;
    }
  }
  return 0;
}

typedef struct fnref_walk {
  uintptr_t addr;        /* make: the address sought */
  const mp__fnref *want; /* resolve: the reference sought */
  mp__fnref ref;         /* make: the answer */
  uintptr_t fn;          /* resolve: the answer */
  int rc;
  unsigned long long subs; /* unloads so far, as this walk saw them */
} fnref_walk;

static int fnref_make_cb(struct dl_phdr_info *info, size_t size, void *data) {
  fnref_walk *k = data;
  k->subs = fnref_info_subs(info, size);
  ElfW(Addr) off = (ElfW(Addr))k->addr - info->dlpi_addr;
  if (!fnref_in_load(info, off, 1, PF_X))
    return 0;
  unsigned n = fnref_build_id(info, k->ref.build_id);
  if (n) {
    k->ref.id_len = (uint8_t)n;
    k->ref.offset = off;
    k->rc = 0;
  }
  return 1; /* no other module holds it */
}

static int fnref_resolve_cb(struct dl_phdr_info *info, size_t size,
                            void *data) {
  fnref_walk *k = data;
  uint8_t id[MP__BUILD_ID_MAX];
  k->subs = fnref_info_subs(info, size);
  if (fnref_build_id(info, id) != k->want->id_len ||
      memcmp(id, k->want->build_id, k->want->id_len) != 0)
    return 0;
  uint64_t off = k->want->offset;
  if (off > (ElfW(Addr)) - 1 || !fnref_in_load(info, (ElfW(Addr))off, 1, PF_X))
    return 0; /* the same build may be loaded twice; look on */
  k->fn = info->dlpi_addr + (ElfW(Addr))off;
  k->rc = 0;
  return 1;
}

/* ---- the API ---- */

int mp__fnref_make(mp__fn fn, mp__fnref *out) {
  assert(out);
  uintptr_t addr = (uintptr_t)fn;
  if (!addr)
    return MP_EINVAL;
  uint64_t rec[FNREF_WORDS] = {addr};
  uint32_t h = fnref_hash(rec, 1);
  if (!fnref_cache_get(&make_cache, fnref_subs_now(), h, rec)) {
    fnref_walk k = {.addr = addr, .rc = MP_EINVAL};
    dl_iterate_phdr(fnref_make_cb, &k);
    if (k.rc)
      return k.rc;
    memcpy(rec + 1, &k.ref, sizeof k.ref);
    fnref_cache_put(&make_cache, k.subs, h, rec);
  }
  memcpy(out, rec + 1, sizeof *out);
  return 0;
}

int mp__fnref_check(const mp__fnref *ref) {
  assert(ref);
  if (ref->id_len == 0 || ref->id_len > MP__BUILD_ID_MAX)
    return MP_EPROTO;
  for (size_t i = 0; i < sizeof ref->pad; i++)
    if (ref->pad[i])
      return MP_EPROTO;
  for (size_t i = ref->id_len; i < MP__BUILD_ID_MAX; i++)
    if (ref->build_id[i])
      return MP_EPROTO;
  return 0;
}

int mp__fnref_resolve(const mp__fnref *ref, mp__fn *fn) {
  assert(ref && fn);
  int rc = mp__fnref_check(ref);
  if (rc)
    return rc;
  uint64_t rec[FNREF_WORDS] = {0};
  memcpy(rec, ref, sizeof *ref);
  uint32_t h = fnref_hash(rec, FNREF_REF_WORDS);
  if (!fnref_cache_get(&resolve_cache, fnref_subs_now(), h, rec)) {
    fnref_walk k = {.want = ref, .rc = MP_ENOFUNC};
    dl_iterate_phdr(fnref_resolve_cb, &k);
    if (k.rc)
      return k.rc;
    rec[FNREF_REF_WORDS] = k.fn;
    fnref_cache_put(&resolve_cache, k.subs, h, rec);
  }
  *fn = (mp__fn)(uintptr_t)rec[FNREF_REF_WORDS];
  return 0;
}
