/* nofunc_module.c: a library only rank 0 loads (dlopen), so no worker
 * rank can resolve its function: its items fail with MP_ENOFUNC. */
#include <stdint.h>

int module_cube(const void *in, void *out);
__attribute__((visibility("default"))) int module_cube(const void *in,
                                                       void *out) {
  int64_t v = *(const int64_t *)in;
  *(int64_t *)out = v * v * v;
  return 0;
}
