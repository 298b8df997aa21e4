# cmake -DSRC=dir -DOUT=dir -DPAGES=a.3,b.7 -DGZIP=gzip -P manpages.cmake
# Writes OUT/man<section>/<page>.gz for each page, and for every other name
# on a `.Nm name` line of the page's NAME section a page <name>.<section>.gz
# holding `.so man<section>/<page>`. OUT is rebuilt from nothing, so a name
# taken out of a page leaves no stale link behind.
file(REMOVE_RECURSE "${OUT}")
string(REPLACE "," ";" PAGES "${PAGES}")

# gzip -n: no name or time stamp inside, the same bytes on every build.
function(gz from to)
  execute_process(COMMAND "${GZIP}" -9nc INPUT_FILE "${from}"
    OUTPUT_FILE "${to}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${from}: ${rc}")
  endif()
endfunction()

foreach(page IN LISTS PAGES)
  if(NOT page MATCHES "^(.+)\\.([1-9])$")
    message(FATAL_ERROR "${page}: not a page name with a section")
  endif()
  set(section ${CMAKE_MATCH_2})
  set(dir "${OUT}/man${section}")
  file(MAKE_DIRECTORY "${dir}")
  gz("${SRC}/${page}" "${dir}/${page}.gz")
  # Only the .Sh and .Nm lines: other lines may hold [ or ; that a CMake
  # list would not keep apart.
  file(STRINGS "${SRC}/${page}" lines REGEX "^\\.(Sh|Nm) ")
  set(in_name FALSE)
  foreach(line IN LISTS lines)
    if(line MATCHES "^\\.Sh ")
      set(in_name FALSE)
      if(line STREQUAL ".Sh NAME")
        set(in_name TRUE)
      endif()
    elseif(in_name AND line MATCHES "^\\.Nm ([A-Za-z0-9_]+)")
      set(name "${CMAKE_MATCH_1}.${section}")
      if(NOT name STREQUAL page)
        file(WRITE "${dir}/${name}" ".so man${section}/${page}\n")
        gz("${dir}/${name}" "${dir}/${name}.gz")
        file(REMOVE "${dir}/${name}")
      endif()
    endif()
  endforeach()
endforeach()
