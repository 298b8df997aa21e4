#!/bin/sh
# Install libmpool from a build tree into a scratch prefix, then build and
# run a consumer against it twice: with find_package(mpool CONFIG) and with
# pkg-config. Usage: check.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -eu
build=$1 src=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
want="libmpool 0.1.0: 1 8 27 64 125"

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/mpool.h"
for h in common error process start pool ipc listener wait; do
  test -f "$prefix/include/mpool/$h.h"
done
ls "$prefix"/lib*/libmpool.so.0 >/dev/null
ls "$prefix"/lib*/libmpool.a >/dev/null

echo "== find_package(mpool CONFIG)"
cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$work/cm" >/dev/null
out=$("$work/cm/consumer")
echo "$out"
test "$out" = "$want"
out=$("$work/cm/consumer_static")
test "$out" = "$want"
# The fork server is the program itself, taken over before main by the
# library's constructor: it must be there in a static link too.
for prog in consumer consumer_static; do
  out=$(MPOOL_START_METHOD=forkserver "$work/cm/$prog")
  test "$out" = "$want"
done

echo "== pkg-config mpool"
libdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/mpool.pc)")
export PKG_CONFIG_PATH=$libdir
test "$(pkg-config --modversion mpool)" = "0.1.0"
# shellcheck disable=SC2046
"$cc" -o "$work/pc" "$src/tests/consumer/main.c" -DMPOOL_EXPECTED_VERSION='"0.1.0"' \
  $(pkg-config --cflags mpool) $(pkg-config --libs mpool) \
  -Wl,-rpath,"$(pkg-config --variable=libdir mpool)"
out=$("$work/pc")
echo "$out"
test "$out" = "$want"
# Static, as pkg-config --static describes it.
"$cc" -o "$work/pcs" "$src/tests/consumer/main.c" -DMPOOL_EXPECTED_VERSION='"0.1.0"' \
  $(pkg-config --cflags mpool) "$(pkg-config --variable=libdir mpool)/libmpool.a" \
  $(pkg-config --libs-only-other --static mpool) -lrt
out=$("$work/pcs")
test "$out" = "$want"
out=$(MPOOL_START_METHOD=forkserver "$work/pcs")
test "$out" = "$want"
echo "consumer: ok"
