# The notebook examples (examples/), each run by ctest and its output checked
# by check_example.sh against examples/<program>.expected: once with stdout to
# a pipe, once to a regular file.
if(NOT MPOOL_BUILD_EXAMPLES)
  return()
endif()

find_program(MPOOL_SH sh REQUIRED)
set(MPOOL_EXAMPLE_CHECKER ${CMAKE_CURRENT_LIST_DIR}/check_example.sh)
set(MPOOL_EXAMPLE_SPECS ${CMAKE_CURRENT_LIST_DIR}/examples)

# mpool_example_test(<test> <program> [LABELS l...]): run the example
# target <program> and check it against examples/<program>.expected.
function(mpool_example_test test program)
  cmake_parse_arguments(T "" "" "LABELS" ${ARGN})
  add_test(NAME ${test}
    COMMAND ${MPOOL_SH} ${MPOOL_EXAMPLE_CHECKER}
            ${MPOOL_EXAMPLE_SPECS}/${program}.expected
            $<TARGET_FILE:${program}>)
  set_tests_properties(${test} PROPERTIES TIMEOUT 60
    LABELS "example;${T_LABELS}")
endfunction()

mpool_example_test(example_q1 q1_why)
mpool_example_test(example_q2_memory q2_memory)
mpool_example_test(example_q2_crash q2_crash)
mpool_example_test(example_q2_cpu q2_cpu)
mpool_example_test(example_q3 q3_create_process)
mpool_example_test(example_q3_square_cube q3_square_cube)
mpool_example_test(example_q4 q4_pool_map)
mpool_example_test(example_q5 q5_pool_workers)
mpool_example_test(example_q5_worker_pids q5_worker_pids)
mpool_example_test(example_q5_close_join q5_close_join)
mpool_example_test(example_q6 q6_four_processes)
mpool_example_test(example_joinable_worklist joinable_worklist)
mpool_example_test(example_barrier_phases barrier_phases)

# The data examples, against wc and a serial awk filter.
add_test(NAME example_data
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_LIST_DIR}/check_data_examples.sh
          $<TARGET_FILE:pwc> $<TARGET_FILE:stream_filter> ${PROJECT_SOURCE_DIR})
set_tests_properties(example_data PROPERTIES TIMEOUT 120 LABELS example)

# The checker itself: it must accept concurrent lines in any order, and
# catch a duplicated line, a fixed line out of place and a failing status.
# The fake programs are sh's printf of the lines @p1@ .. @p4@ and @end@
# ("\\n" in CMake is the \n printf reads).
function(mpool_checker_test test)
  cmake_parse_arguments(T "WILL_FAIL" "" "" ${ARGN})
  set(spec ${MPOOL_EXAMPLE_SPECS}/q6_four_processes.expected)
  set(p1 "Process 1: 1\\n")
  set(p2 "Process 2: 2\\n")
  set(p3 "Process 3: 3\\n")
  set(p4 "Process 4: 4\\n")
  set(end "All processes finished\\n")
  string(CONFIGURE "${T_UNPARSED_ARGUMENTS}" script @ONLY)
  add_test(NAME ${test} COMMAND ${MPOOL_SH} ${MPOOL_EXAMPLE_CHECKER} ${spec}
           ${MPOOL_SH} -c "${script}")
  set_tests_properties(${test} PROPERTIES TIMEOUT 30 LABELS example
    WILL_FAIL ${T_WILL_FAIL})
endfunction()
mpool_checker_test(example_checker_any_order
  "printf '@p3@@p1@@p4@@p2@@end@'")
mpool_checker_test(example_checker_duplicate WILL_FAIL
  "printf '@p1@@p1@@p2@@p3@@p4@@end@'")
mpool_checker_test(example_checker_order WILL_FAIL
  "printf '@p1@@p2@@end@@p3@@p4@'")
mpool_checker_test(example_checker_status WILL_FAIL
  "printf '@p1@@p2@@p3@@p4@@end@'; exit 3")
