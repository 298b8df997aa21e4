# Faults: crashes, hangs, protocol violations, signals, exhaustion.
mpool_test(test_faults INTERNAL TIMEOUT 300)
# Defects fault injection from outside found, each with the test it failed.
mpool_test(test_reliability INTERNAL TIMEOUT 300 LIBS Threads::Threads)
# The stress run: 100,000 tasks, 1% crash, 1% time out.
add_test(NAME test_faults_stress COMMAND ${MPOOL_TEST_WRAPPER} $<TARGET_FILE:test_faults> stress)
set_tests_properties(test_faults_stress PROPERTIES LABELS slow TIMEOUT 300)
if(MPOOL_SANITIZE)
  # A sanitized worker that crashes or calls _exit first runs the sanitizer's
  # own exit work (a leak scan of its whole heap, a report), which can take
  # longer than the stress test's task_timeout: the item would then be
  # reported, correctly, as timed out. Let crashing workers die at once.
  set_tests_properties(test_faults_stress PROPERTIES ENVIRONMENT
    "ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_abort=0")
endif()
