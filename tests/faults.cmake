# Faults: crashes, hangs, protocol violations, signals, exhaustion.
mpool_test(test_faults INTERNAL TIMEOUT 300)
# The stress run: 100,000 tasks, 1% crash, 1% time out.
add_test(NAME test_faults_stress COMMAND ${MPOOL_TEST_WRAPPER} $<TARGET_FILE:test_faults> stress)
set_tests_properties(test_faults_stress PROPERTIES LABELS slow TIMEOUT 300)
