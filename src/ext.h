/*
 * ext.h: the core's entry points for transports built outside libmpool
 * (libmpool_mpi). They are reached through one table that mp__ext_get()
 * returns, the only symbol libmpool exports beyond its API (a function,
 * not the table itself: exported data would gain ASan's ODR indicator
 * symbols in sanitizer builds). A transport library links
 * against libmpool rather than carrying a copy of the core (two cores in
 * one process would keep two fd registries). Not API: the table's layout
 * follows this source tree, and a transport library checks version and
 * size and works only with the libmpool it was built with.
 */
#ifndef MPOOL_EXT_H
#define MPOOL_EXT_H

#include "pool/pool_internal.h"

enum { MP__EXT_VERSION = 1 };

typedef struct mp__ext {
  uint32_t version;        /* MP__EXT_VERSION */
  uint32_t size;           /* sizeof(mp__ext) */
  const char *lib_version; /* MP__VERSION_STRING */
  int (*pool_create_with)(mp_pool **out, const mp_pool_opts *opts,
                          const mp__tp_ops *ops, void *arg);
  int (*core_result)(mp_pool *p, int w, uint64_t id, const void *payload,
                     size_t len);
  void (*core_lost)(mp_pool *p, int w, const mp__loss *loss);
  int (*fnref_make)(mp__fn fn, mp__fnref *out);
  int (*fnref_check)(const mp__fnref *ref);
  int (*fnref_resolve)(const mp__fnref *ref, mp__fn *fn);
} mp__ext;

/* The table; static storage, never NULL. */
MP_EXPORT const mp__ext *mp__ext_get(void);

#endif /* MPOOL_EXT_H */
