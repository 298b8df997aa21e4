# The IPC tests (src/ipc/): one file per source. Included by CMakeLists.txt.
mpool_test(test_ipc_pipe INTERNAL TIMEOUT 60)
mpool_test(test_ipc_queue TIMEOUT 60)
mpool_test(test_ipc_sync TIMEOUT 60)
mpool_test(test_ipc_cond TIMEOUT 60)
mpool_test(test_ipc_barrier TIMEOUT 60)
mpool_test(test_ipc_value TIMEOUT 60)
mpool_test(test_ipc_shm TIMEOUT 60)
mpool_test(test_ipc_listener INTERNAL TIMEOUT 60)
# 4 producers x 4 consumers x 250,000 messages, from the same binary: about
# 1 s, so it runs in every ctest run (under the wrapper too).
add_test(NAME test_ipc_queue_stress
         COMMAND ${MPOOL_TEST_WRAPPER} $<TARGET_FILE:test_ipc_queue> stress)
if(MPOOL_TEST_WRAPPER)
  set_tests_properties(test_ipc_queue_stress PROPERTIES TIMEOUT 600)
else()
  set_tests_properties(test_ipc_queue_stress PROPERTIES TIMEOUT 120)
endif()
