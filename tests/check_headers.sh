#!/bin/sh
# Each public header compiles alone: a program of one include line (given
# twice, so its include guard is tried too) builds with every warning an
# error. The part headers named are all that include/mpool/ holds, so the
# install list misses none, and mpool.h includes each of them.
# Usage: check_headers.sh C_COMPILER INCLUDE_DIR HEADER...
# (HEADER relative to INCLUDE_DIR: mpool.h, mpool/pool.h, ...)
set -eu
cc=$1 inc=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/check_headers.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
for h in "$inc"/mpool/*.h; do
  h=mpool/${h##*/}
  case " $* " in
    *" $h "*) ;;
    *) echo "headers: $h is in $inc but not in the list"; fail=1 ;;
  esac
done
for h in "$@"; do
  case $h in
    mpool/*) grep -q "^#include \"$h\"$" "$inc/mpool.h" ||
               { echo "headers: mpool.h does not include $h"; fail=1; } ;;
  esac
done
n=0
for h in "$@"; do
  n=$((n + 1))
  printf '#include <%s>\n#include <%s>\n' "$h" "$h" > "$work/h$n.c"
  if ! "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
       -I"$inc" "$work/h$n.c" > "$work/log" 2>&1; then
    echo "headers: $h does not compile alone:"; cat "$work/log"; fail=1
  fi
done
[ "$fail" -eq 0 ] || exit 1
echo "headers: $n compile alone"
