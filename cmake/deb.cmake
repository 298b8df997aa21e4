# Debian packages, one per install component, built by CPack:
#
#   libmpool0     (component lib) libmpool.so.0 and libmpool.so.0.x.y, named
#                 for the SONAME; its shlibs file and the ldconfig trigger;
#   libmpool-dev  (component dev) mpool.h and its parts (mpool/*.h),
#                 libmpool.a, the libmpool.so link, the CMake package,
#                 mpool.pc, the manual; the examples.
#
# Build them with the preset: `cmake --workflow --preset deb` (configures
# build-deb/ with CMAKE_INSTALL_PREFIX=/usr, where GNUInstallDirs gives the
# multiarch lib/<triplet>, builds, runs cpack -G DEB); the .deb files land
# in build-deb/packages/. .ci/deb installs, uses, lints and removes them.
#
# When libmpool_mpi is built (MPI found), the MPI transport gets its own
# pair the same way: components mpi and mpi-dev, packages libmpool-mpi0
# (libmpool_mpi.so.0; depending on libmpool0 and on the MPI runtime it was
# built with, through shlibdeps) and libmpool-mpi-dev (mpool_mpi.h,
# libmpool_mpi.a, its CMake targets and pkg-config file, mp_mpi(3)).

set(MPOOL_DEB_MAINTAINER "libmpool maintainers <maintainers@libmpool.invalid>"
  CACHE STRING "Maintainer field of the Debian packages: Name <address>")
set(MPOOL_DEB_REVISION 1 CACHE STRING "Debian revision of the packages")
set(MPOOL_DEB_VERSION ${PROJECT_VERSION}-${MPOOL_DEB_REVISION})
set(deb_lib libmpool${PROJECT_VERSION_MAJOR})
set(deb_dev libmpool-dev)
set(deb_gen ${PROJECT_BINARY_DIR}/deb)

# /usr/share/doc/<package>/: copyright in Debian's machine-readable format
# (from LICENSE) and changelog.Debian.gz, gzipped without a time stamp. The
# changelog's date honours SOURCE_DATE_EPOCH. These are the packages' own
# files: EXCLUDE_FROM_ALL keeps them out of a plain `cmake --install`.
file(READ ${PROJECT_SOURCE_DIR}/LICENSE license)
if(NOT license MATCHES "Copyright \\(c\\) ([^\n]+)\n\n(.*)$")
  message(FATAL_ERROR "LICENSE: no 'Copyright (c) ...' line followed by the text")
endif()
set(MPOOL_COPYRIGHT "${CMAKE_MATCH_1}")
string(STRIP "${CMAKE_MATCH_2}" text)
string(REPLACE "\n\n" "\n.\n" text "${text}")
string(REPLACE "\n" "\n " MPOOL_LICENSE_TEXT " ${text}")
string(TIMESTAMP MPOOL_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(cmake/deb/copyright.in ${deb_gen}/copyright @ONLY)
configure_file(cmake/deb/changelog.in ${deb_gen}/changelog.Debian @ONLY)
execute_process(COMMAND ${MPOOL_GZIP} -9nf ${deb_gen}/changelog.Debian
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip changelog.Debian: ${rc}")
endif()
set(deb_components lib dev)
if(MPOOL_HAVE_MPI)
  set(deb_mpi libmpool-mpi${PROJECT_VERSION_MAJOR})
  set(deb_mpi-dev libmpool-mpi-dev)
  list(APPEND deb_components mpi mpi-dev)
endif()
foreach(c IN LISTS deb_components)
  install(FILES ${deb_gen}/copyright ${deb_gen}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${deb_${c}}
    COMPONENT ${c} EXCLUDE_FROM_ALL)
endforeach()
install(DIRECTORY examples/
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${deb_dev}/examples
  COMPONENT dev EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*.c")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libmpool)
set(CPACK_PACKAGE_VENDOR "The libmpool authors")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${deb_components})
# Empty: CPack would put the project's summary above each package's own.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MPOOL_DEB_REVISION})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MPOOL_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends: from dpkg-shlibdeps (libc6 (>= ...)); and a shlibs file for the
# packages linked against libmpool.so.0.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME ${deb_lib})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# ldconfig runs through dpkg's trigger, as Debian wants. (CPack also
# writes postinst and postrm scripts that call ldconfig themselves.)
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)
set(CPACK_DEBIAN_LIB_DESCRIPTION "process pools for C in the shape of Python's multiprocessing
libmpool gives C programs single child processes and pools of worker
processes that map a function over an array or apply it to a buffer, with
asynchronous results and ordered or unordered iterators, plus pipes,
queues, locks, semaphores, events and shared memory between processes.
A task that crashes or runs past its timeout fails alone while every other
result arrives, and workers never outlive their parent.

This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${deb_dev})
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${deb_lib} (= ${MPOOL_DEB_VERSION})")
set(CPACK_DEBIAN_DEV_DESCRIPTION "process pools for C in the shape of Python's multiprocessing (development files)
libmpool gives C programs single child processes and pools of worker
processes that map a function over an array or apply it to a buffer, with
asynchronous results and ordered or unordered iterators, plus pipes,
queues, locks, semaphores, events and shared memory between processes.

This package contains the header, the static library, the CMake package
and pkg-config file, the manual pages (libmpool(7) and one page per
function) and the examples.")

if(MPOOL_HAVE_MPI)
  # libmpool_mpi.so.0 needs libmpool.so.0, which the build tree has but no
  # installed package yet: shlibdeps finds it there, through the shlibs
  # file of libmpool0 that CPack writes beside it.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})
  set(CPACK_DEBIAN_MPI_PACKAGE_NAME ${deb_mpi})
  set(CPACK_DEBIAN_MPI_PACKAGE_SECTION libs)
  set(CPACK_DEBIAN_MPI_PACKAGE_DEPENDS "${deb_lib} (= ${MPOOL_DEB_VERSION})")
  set(CPACK_DEBIAN_MPI_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)
  set(CPACK_DEBIAN_MPI_DESCRIPTION "process pools for C over the ranks of an MPI job
libmpool_mpi runs libmpool's pools over the ranks of an MPI job (Open MPI
or MPICH): rank 0 maps and applies with the ordinary pool calls, every
other rank runs its items in a local pool, so a task that crashes or runs
past its timeout fails alone, with the codes of a local pool.

This package contains the shared library.")
  set(CPACK_DEBIAN_MPI-DEV_PACKAGE_NAME ${deb_mpi-dev})
  set(CPACK_DEBIAN_MPI-DEV_PACKAGE_SECTION libdevel)
  set(CPACK_DEBIAN_MPI-DEV_PACKAGE_DEPENDS
    "${deb_mpi} (= ${MPOOL_DEB_VERSION}), ${deb_dev} (= ${MPOOL_DEB_VERSION})")
  set(CPACK_DEBIAN_MPI-DEV_DESCRIPTION "process pools for C over the ranks of an MPI job (development files)
libmpool_mpi runs libmpool's pools over the ranks of an MPI job (Open MPI
or MPICH): rank 0 maps and applies with the ordinary pool calls, every
other rank runs its items in a local pool, so a task that crashes or runs
past its timeout fails alone, with the codes of a local pool.

This package contains the header, the static library, the CMake targets,
the pkg-config file and the manual page mp_mpi(3).")
endif()

include(CPack)
