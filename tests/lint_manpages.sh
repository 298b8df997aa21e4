#!/bin/sh
# Every page of the manual renders without a warning, checked by both
# formatters that exist: mandoc -T lint -W warning, and groff through
# man --warnings the way lintian runs it. Exits 77 (ctest: skipped) when
# neither mandoc nor man with groff is installed.
# Usage: lint_manpages.sh MAN_SOURCE_DIR
set -eu
src=$1
ran=0 fail=0
if command -v mandoc >/dev/null; then
  ran=1
  out=$(mandoc -T lint -W warning "$src"/*.[1-9] 2>&1) || fail=1
  if [ -n "$out" ]; then echo "$out"; fail=1; fi
  echo "mandoc -T lint: $(ls "$src"/*.[1-9] | wc -l) pages"
fi
if command -v man >/dev/null && command -v groff >/dev/null; then
  ran=1
  for page in "$src"/*.[1-9]; do
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
          man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) || fail=1
    if [ -n "$out" ]; then echo "$(basename "$page"): $out"; fail=1; fi
  done
  echo "man --warnings: $(ls "$src"/*.[1-9] | wc -l) pages"
fi
if [ "$ran" -eq 0 ]; then
  echo "neither mandoc nor man with groff is installed: skipped"
  exit 77
fi
exit "$fail"
