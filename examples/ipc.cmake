# The IPC examples; included by examples/CMakeLists.txt. Each is run by
# ctest and its output checked.
add_executable(shared_counter shared_counter.c)
target_link_libraries(shared_counter PRIVATE mpool::mpool)
add_test(NAME example_shared_counter COMMAND shared_counter)
set_tests_properties(example_shared_counter PROPERTIES
  PASS_REGULAR_EXPRESSION "final count: 40000" TIMEOUT 60)

add_executable(producer_consumer producer_consumer.c)
target_link_libraries(producer_consumer PRIVATE mpool::mpool)
add_test(NAME example_producer_consumer COMMAND producer_consumer)
set_tests_properties(example_producer_consumer PROPERTIES
  PASS_REGULAR_EXPRESSION "sum: 500500" TIMEOUT 60)
