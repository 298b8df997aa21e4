/*
 * mpool/common.h: what every part shares: the export macro (MP_EXPORT) and
 * the library's version.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_COMMON_H
#define MPOOL_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPOOL_STATIC) || !defined(__GNUC__)
#define MP_EXPORT
#else
#define MP_EXPORT __attribute__((visibility("default")))
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0

/* "0.1.0": the version of the library actually linked. */
MP_EXPORT const char *mp_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_COMMON_H */
