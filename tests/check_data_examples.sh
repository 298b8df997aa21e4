#!/bin/sh
# check_data_examples.sh PWC STREAM_FILTER SRCDIR: the data examples against
# the serial tools they stand in for. pwc over the sources of SRCDIR must
# count what wc counts; stream_filter over 200,000 lines must print what the
# same filter in awk prints, in order.
set -eu
pwc=$1 filter=$2 src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/data_examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
set -- "$src"/src/*.c "$src"/src/pool/*.c "$src"/include/mpool.h "$src"/README.md
"$pwc" "$@" > "$tmp/pwc"
wc "$@" | awk '{ $1 = $1; print }' > "$tmp/wc"
if ! cmp -s "$tmp/pwc" "$tmp/wc"; then
  echo "pwc and wc differ:"; diff "$tmp/pwc" "$tmp/wc" | head -20; exit 1
fi
# A missing file: its error reported, the others still counted.
if "$pwc" "$src/README.md" "$tmp/no-such-file" > "$tmp/pwc2" 2> "$tmp/err"; then
  echo "pwc: a missing file went unreported"; exit 1
fi
grep -q "no-such-file: task returned 2" "$tmp/err"
grep -q "README.md" "$tmp/pwc2"
seq 1 200000 | sed 's/$/ some text/' > "$tmp/in"
"$filter" < "$tmp/in" > "$tmp/out"
awk '{ r = ""; for (i = length($0); i > 0; i--) r = r substr($0, i, 1)
       print r "\t" length($0) }' "$tmp/in" > "$tmp/expected"
if ! cmp -s "$tmp/out" "$tmp/expected"; then
  echo "stream_filter and the serial filter differ:"
  diff "$tmp/out" "$tmp/expected" | head -20; exit 1
fi
"$filter" < /dev/null > "$tmp/empty"
test ! -s "$tmp/empty"
echo "data examples: ok ($(wc -l < "$tmp/out") lines filtered)"
