#!/bin/sh
# check_example.sh SPEC PROGRAM [ARG...]: run PROGRAM twice, its stdout first
# to a pipe and then to a regular file, and check both outputs against SPEC.
# The file run catches buffered output printed twice (a fork without a flush)
# or lost (a child that dies without one). Exits 0 when both runs exit 0 and
# match; else prints what differs and the output, and exits 1.
#
# SPEC holds one entry per line:
#   = TEXT   the next line is exactly TEXT
#   ~ ERE    the next line matches the extended regex ERE, anchored at both
#            ends: for values that vary from run to run (times, pids, CPUs).
#            No {m,n} intervals: mawk, Debian's awk, does not know them.
#   {        the entries up to the next } are lines printed by concurrent
#   }        processes: they come next, in any order (each line is matched
#            to an exact entry first, then to the first free regex entry)
#   # ...    a comment; blank lines are ignored too
# Outside braces, lines come in the order of their entries. The output may
# hold no line that SPEC does not account for.
set -u
if [ $# -lt 2 ]; then
  echo "usage: sh check_example.sh SPEC PROGRAM [ARG...]" >&2
  exit 2
fi
spec=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_example.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

# sh has no pipefail: the exit status leaves the pipeline through a file.
{ "$@"; echo $? > "$tmp/rc.pipe"; } | cat > "$tmp/out.pipe"
"$@" > "$tmp/out.file"
echo $? > "$tmp/rc.file"

awk_prog='
function fail(msg) { print how ": " msg; bad = 1; exit 1 }
function matches(line, k) {
  return kind[k] == "=" ? line == text[k] : line ~ ("^(" text[k] ")$")
}
FILENAME == ARGV[1] {
  if ($0 ~ /^[ \t]*(#|$)/) next
  if ($0 == "{") { if (open) fail("spec: nested {"); open = 1; ++nsteps; next }
  if ($0 == "}") { if (!open) fail("spec: } without {"); open = 0; next }
  k = substr($0, 1, 1)
  if ((k != "=" && k != "~") || (length($0) > 1 && substr($0, 2, 1) != " "))
    fail("spec line " FNR ": starts with neither \"= \" nor \"~ \"")
  ++n; kind[n] = k; text[n] = substr($0, 3)
  if (!open) ++nsteps
  if (!size[nsteps]) first[nsteps] = n
  size[nsteps]++
  next
}
{ out[++nout] = $0 }
END {
  if (bad) exit 1
  if (open) fail("spec: { without }")
  pos = 1
  for (s = 1; s <= nsteps; s++) {
    lo = first[s]; hi = lo + size[s] - 1
    for (k = lo; k <= hi; k++) used[k] = 0
    for (i = 0; i < size[s]; i++) {
      if (pos > nout) {
        missing = ""
        for (k = lo; k <= hi; k++)
          if (!used[k]) missing = missing "\n  " kind[k] " " text[k]
        fail("output ends early; still expected:" missing)
      }
      hit = 0
      for (k = lo; k <= hi && !hit; k++)
        if (!used[k] && kind[k] == "=" && matches(out[pos], k)) hit = k
      for (k = lo; k <= hi && !hit; k++)
        if (!used[k] && kind[k] == "~" && matches(out[pos], k)) hit = k
      if (!hit) {
        got = "line " pos " is \"" out[pos] "\""
        if (size[s] == 1)
          fail(got ", expected " kind[lo] " " text[lo])
        fail(got ": in the group that starts with " kind[lo] " " text[lo] \
             ", no entry left matches it")
      }
      used[hit] = 1
      pos++
    }
  }
  if (pos <= nout) fail("unexpected line " pos ": \"" out[pos] "\"")
  print how ": ok, " nout " lines"
}'

status=0
for how in pipe file; do
  rc=$(cat "$tmp/rc.$how")
  ok=1
  if [ "$rc" != 0 ]; then
    echo "$how: $1 exited with status $rc"
    ok=0
  fi
  awk -v how="$how" "$awk_prog" "$spec" "$tmp/out.$how" || ok=0
  if [ $ok = 0 ]; then
    echo "--- output (stdout to a $how):"
    cat "$tmp/out.$how"
    echo "---"
    status=1
  fi
done
exit $status
