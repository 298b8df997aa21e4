# Script checks: exported symbols, headers that compile alone, and a
# consumer of an installed copy.
find_program(MPOOL_SH sh REQUIRED)
add_test(NAME check_symbols
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_SOURCE_DIR}/check_symbols.sh $<TARGET_FILE:mpool>)
add_test(NAME consumer_install
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_SOURCE_DIR}/consumer/check.sh
          ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${CMAKE_C_COMPILER})
set_tests_properties(check_symbols PROPERTIES LABELS script TIMEOUT 300)
# The pool's core calls no process or fd function: only transports do.
add_test(NAME check_core
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_SOURCE_DIR}/check_core.sh
          $<TARGET_OBJECTS:mpool_objs>
  COMMAND_EXPAND_LISTS)
set_tests_properties(check_core PROPERTIES LABELS script TIMEOUT 60)
# An installed sanitizer build needs instrumented consumers: not that run.
set_tests_properties(consumer_install PROPERTIES LABELS "script;nosan" TIMEOUT 300)
# libmpool.so has no MPI symbol and needs no MPI library, whether or not
# libmpool_mpi is built beside it.
add_test(NAME check_no_mpi
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_SOURCE_DIR}/check_no_mpi.sh $<TARGET_FILE:mpool>)
set_tests_properties(check_no_mpi PROPERTIES LABELS "script;mpi" TIMEOUT 60)
# Each public header compiles alone, warnings as errors.
list(TRANSFORM MPOOL_PART_HEADERS REPLACE "^include/" "" OUTPUT_VARIABLE parts)
add_test(NAME check_headers
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_SOURCE_DIR}/check_headers.sh
          ${CMAKE_C_COMPILER} ${PROJECT_SOURCE_DIR}/include mpool.h ${parts})
set_tests_properties(check_headers PROPERTIES LABELS script TIMEOUT 60)
