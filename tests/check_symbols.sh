#!/bin/sh
# The shared library exports mp_ names only; its SONAME is libmpool.so.0.
set -eu
lib=$1
names=$(nm -D --defined-only "$lib" | awk '{print $3}')
bad=$(printf '%s\n' "$names" | grep -v '^mp_' || true)
if [ -n "$bad" ]; then
  echo "exported names without the mp_ prefix:"; echo "$bad"; exit 1
fi
n=$(printf '%s\n' "$names" | grep -c '^mp_')
echo "$n mp_ symbols exported"
test "$n" -gt 30
readelf -d "$lib" | grep -q 'SONAME.*\[libmpool.so.0\]'
echo "symbols: ok"
