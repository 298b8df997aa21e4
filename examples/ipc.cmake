# The IPC examples; included by examples/CMakeLists.txt, so they are part of
# run_examples. Each is run by ctest and its output checked.
mpool_example(shared_counter)
add_test(NAME example_shared_counter COMMAND shared_counter)
set_tests_properties(example_shared_counter PROPERTIES
  PASS_REGULAR_EXPRESSION "final count: 40000" LABELS example TIMEOUT 60)

mpool_example(producer_consumer)
add_test(NAME example_producer_consumer COMMAND producer_consumer)
set_tests_properties(example_producer_consumer PROPERTIES
  PASS_REGULAR_EXPRESSION "sum: 500500" LABELS example TIMEOUT 60)

# JoinableQueue and Barrier: output checked by tests/check_example.sh
# against tests/examples/<name>.expected (tests/examples.cmake).
mpool_example(joinable_worklist)
mpool_example(barrier_phases)
