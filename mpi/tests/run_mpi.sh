#!/bin/sh
# run_mpi.sh NPROC PROGRAM ARGS...: run PROGRAM on NPROC ranks under the
# launcher in $MPIEXEC (bounded by timeout), then check that no process of
# PROGRAM is left. Open MPI's variables are set here: as root mpirun needs
# the first two, more ranks than cores needs oversubscribe, and an empty
# opal_signal keeps its crash handler from printing backtraces for crashes
# in forked workers. MPICH ignores them.
set -u
np=$1; shift
prog=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_opal_signal=
timeout -k 5 "${MPI_TEST_TIMEOUT:-60}" "$MPIEXEC" -n "$np" "$@"
rc=$?
sleep 0.2
left=$(pgrep -f "^$prog( |\$)" || true)
if [ -n "$left" ]; then
  echo "run_mpi: processes left behind:"; ps -o pid,ppid,args -p $(echo $left | tr ' ' ,)
  kill -KILL $left
  exit 1
fi
exit $rc
