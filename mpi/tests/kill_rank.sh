#!/bin/sh
# kill_rank.sh PROGRAM: a whole worker rank lost (SIGKILL) in the middle
# of a map ends the job: the launcher exits non-zero within seconds, never
# hangs, and leaves no process behind.
set -u
prog=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_opal_signal=
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout -k 5 60 "$MPIEXEC" -n 3 "$prog" victim >"$out" 2>&1 &
job=$!
pid=""
for _ in $(seq 100); do
  pid=$(sed -n 's/^worker-pid \([0-9]*\)$/\1/p' "$out" | head -n1)
  [ -n "$pid" ] && break
  sleep 0.1
done
if [ -z "$pid" ]; then
  echo "kill_rank: no worker pid printed"; cat "$out"; kill "$job"; exit 1
fi
sleep 0.5 # the map is under way
t0=$(date +%s.%N)
kill -KILL "$pid"
wait "$job"
rc=$?
t1=$(date +%s.%N)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "kill_rank: launcher exited $rc, $took s after the kill"
fail=0
[ "$rc" -ne 0 ] || { echo "kill_rank: the job exited 0"; fail=1; }
[ "$rc" -ne 124 ] || { echo "kill_rank: the job hung (killed by timeout)"; fail=1; }
awk -v t="$took" 'BEGIN { exit !(t < 15) }' || { echo "kill_rank: took too long"; fail=1; }
sleep 0.3
left=$(pgrep -f "^$prog( |\$)" || true)
if [ -n "$left" ]; then
  echo "kill_rank: processes left behind:"; ps -o pid,ppid,args -p $(echo $left | tr ' ' ,)
  kill -KILL $left; fail=1
fi
[ "$fail" -eq 0 ] || cat "$out"
exit "$fail"
