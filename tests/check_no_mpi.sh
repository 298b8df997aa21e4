#!/bin/sh
# The core library stays MPI-free (issue 14): libmpool.so neither defines
# nor needs an MPI symbol (MPI_*, PMPI_*, Open MPI's ompi_/opal_, MPICH's
# MPIR_/MPID_/MPL_) and links no MPI library. libmpool_mpi is where MPI is.
# Usage: check_no_mpi.sh LIBMPOOL_SO
set -eu
lib=$1
bad=$(nm -D "$lib" | awk '{print $NF}' |
  grep -E '^(P?MPI_|MPIX_|ompi_|opal_|orte_|pmix_|MPIR_|MPID_|MPL_|MPII_)' || true)
if [ -n "$bad" ]; then
  echo "libmpool.so has MPI symbols:"; echo "$bad"; exit 1
fi
needed=$(readelf -d "$lib" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
if printf '%s\n' "$needed" | grep -Eq 'mpi|mpich|open-rte|open-pal'; then
  echo "libmpool.so links an MPI library:"; echo "$needed"; exit 1
fi
echo "no MPI in $(basename "$lib"): ok ($(echo $needed))"
