# The manual (man/): each function of mpool.h (its part headers) has its
# page, with the header's prototype; and every page renders without
# warnings (skipped when no formatter is installed).
list(TRANSFORM MPOOL_PART_HEADERS PREPEND "${PROJECT_SOURCE_DIR}/"
  OUTPUT_VARIABLE man_headers)
list(APPEND man_headers ${PROJECT_SOURCE_DIR}/mpi/mpool_mpi.h)
string(REPLACE ";" ":" man_headers "${man_headers}")
add_test(NAME man_pages
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_LIST_DIR}/check_manpages.sh
          ${man_headers}
          ${PROJECT_SOURCE_DIR}/man
          ${MPOOL_MAN_TREE})
add_test(NAME man_lint
  COMMAND ${MPOOL_SH} ${CMAKE_CURRENT_LIST_DIR}/lint_manpages.sh
          ${PROJECT_SOURCE_DIR}/man)
set_tests_properties(man_pages man_lint PROPERTIES LABELS "script;nosan" TIMEOUT 120)
set_tests_properties(man_lint PROPERTIES SKIP_RETURN_CODE 77)
