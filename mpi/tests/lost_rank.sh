#!/bin/sh
# lost_rank.sh stop|kill PROGRAM: a worker rank lost in the middle of a
# map while the job lives on. stop: SIGSTOP, which no launcher notices;
# kill: SIGKILL under Open MPI's mpirun --enable-recovery (MPICH 4.0's
# mpiexec ends the job even with -disable-auto-cleanup, and Open MPI
# ends it without the flag: skipped, 77). PROGRAM's case "lost" (1 s
# silent_timeout) checks that the map completes with every result right
# and prints "lost: ok"; rank 0 then exits 3, which ends the job. The
# launcher must exit within bounds, and no process may be left; a stopped
# rank is continued and killed at the end if the launcher left it.
set -u
mode=$1 prog=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_opal_signal=
flags=""
if [ "$mode" = kill ]; then
  if ! "$MPIEXEC" --version 2>&1 | grep -q "Open MPI\|OpenRTE"; then
    echo "lost_rank: this launcher ends the job when a rank is killed: skipped"
    exit 77
  fi
  flags=--enable-recovery
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$(date +%s.%N)
timeout -k 5 "${MPI_TEST_TIMEOUT:-60}" "$MPIEXEC" $flags -n 3 "$prog" lost >"$out" 2>&1 &
job=$!
pid="" ready=""
for _ in $(seq 300); do
  pid=$(sed -n 's/^worker-pid \([0-9]*\)$/\1/p' "$out" | head -n1)
  ready=$(grep -c '^under-way$' "$out")
  [ -n "$pid" ] && [ "$ready" -gt 0 ] && break
  sleep 0.1
done
if [ -z "$pid" ] || [ "$ready" -eq 0 ]; then
  echo "lost_rank: the map did not start"; cat "$out"; kill "$job"; exit 1
fi
if [ "$mode" = stop ]; then kill -STOP "$pid"; else kill -KILL "$pid"; fi
wait "$job"
rc=$?
t1=$(date +%s.%N)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "lost_rank ($mode): launcher exited $rc, $took s after it started"
fail=0
grep -q '^lost: ok$' "$out" || { echo "lost_rank: rank 0's checks failed"; fail=1; }
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] ||
  { echo "lost_rank: the job hung (killed by timeout)"; fail=1; }
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || { echo "lost_rank: took too long"; fail=1; }
sleep 0.3
case $(ps -o stat= -p "$pid" 2>/dev/null) in
T*)
  echo "lost_rank: the launcher left the stopped rank; continued and killed"
  kill -CONT "$pid"; kill -KILL "$pid"; sleep 0.3 ;;
esac
left=$(pgrep -f "^$prog( |\$)" || true)
if [ -n "$left" ]; then
  echo "lost_rank: processes left behind:"; ps -o pid,ppid,stat,args -p $(echo $left | tr ' ' ,)
  kill -CONT $left; kill -KILL $left; fail=1
fi
grep -v '^worker-pid\|^under-way$' "$out" | head -n 40
exit "$fail"
