/* fnref_module.c: a module test_fnref dlopens and dlcloses, built twice:
 * with a GNU build-id, and without one (-Wl,--build-id=none). */
__attribute__((visibility("default"))) int fnref_module_fn(void);
int fnref_module_fn(void) { return 77; }
