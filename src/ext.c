/* ext.c: the table of core entry points for transport libraries (ext.h). */
#include "ext.h"

static const mp__ext ext_table = {
    .version = MP__EXT_VERSION,
    .size = sizeof(mp__ext),
    .lib_version = MP__VERSION_STRING,
    .pool_create_with = mp__pool_create_with,
    .core_result = mp__core_result,
    .core_lost = mp__core_lost,
    .fnref_make = mp__fnref_make,
    .fnref_check = mp__fnref_check,
    .fnref_resolve = mp__fnref_resolve,
};

const mp__ext *mp__ext_get(void) { return &ext_table; }
