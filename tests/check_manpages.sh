#!/bin/sh
# The manual against the headers: every function they export (an
# MP_EXPORT declaration) is named in the NAME section of exactly one
# section 3 page, whose SYNOPSIS gives its prototype exactly as the header
# does; no page names a function the header lacks; the built tree has a
# page under every function's name (the page itself or a .so link to a page
# that exists); every .Xr to a page of the project resolves; every error
# code of the header is in mp_error(3).
# HEADER may be several, separated by colons (mpool.h:mpool_mpi.h): the
# pages then document the functions of them all.
# Usage: check_manpages.sh HEADER[:HEADER...] MAN_SOURCE_DIR MAN_BUILT_TREE
set -eu
header=$1 src=$2 tree=$3
headers=$(printf '%s' "$header" | tr ':' ' ')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One prototype per line, "name<TAB>prototype", spaces collapsed and none
# after a '*', so "const char * f" and "const char *f" compare equal.
norm='{ gsub(/[ \t]+/, " "); gsub(/\* /, "*"); sub(/^ /, ""); sub(/ $/, "") }'
awk '
  /^MP_EXPORT / { p = 1; s = "" }
  p { s = s " " $0 }
  p && /;/ {
    p = 0
    sub(/^ MP_EXPORT /, "", s); sub(/;.*/, "", s)
    gsub(/[ \t]+/, " ", s); gsub(/\* /, "*", s); gsub(/\( /, "(", s)
    name = s; sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
    print name "\t" s
  }' $headers | sort >"$work/header"
test -s "$work/header" || { echo "no MP_EXPORT declaration in $headers"; exit 1; }

# From each page: "page<TAB>name" for NAME's .Nm lines (names.txt), and
# "page<TAB>name<TAB>prototype" for SYNOPSIS's .Ft/.Fo/.Fa/.Fc (synopsis.txt).
for page in "$src"/*.3; do
  awk -v page="$(basename "$page")" -v names="$work/names" \
      -v syn="$work/synopsis" '
    function unq(s) { sub(/^"/, "", s); sub(/"$/, "", s); return s }
    /^\.Sh / { sec = substr($0, 5); next }
    sec == "NAME" && /^\.Nm / { print page "\t" $2 >> names }
    sec == "SYNOPSIS" && /^\.Ft / { ft = unq(substr($0, 5)) }
    sec == "SYNOPSIS" && /^\.Fo / { fn = $2; args = "" }
    sec == "SYNOPSIS" && /^\.Fa / && fn != "" {
      a = unq(substr($0, 5)); args = args == "" ? a : args ", " a }
    sec == "SYNOPSIS" && /^\.Fc/ && fn != "" {
      s = ft " " fn "(" args ")"
      gsub(/[ \t]+/, " ", s); gsub(/\* /, "*", s)
      print page "\t" fn "\t" s >> syn; fn = ""
    }' "$page"
done
touch "$work/names" "$work/synopsis"

fail=0
bad() { echo "man: $*"; fail=1; }
n=0
while IFS='	' read -r name proto; do
  n=$((n + 1))
  pages=$(awk -F '\t' -v n="$name" '$2 == n { print $1 }' "$work/names")
  case $(printf '%s\n' "$pages" | grep -c .) in
    0) bad "$name: no page names it in its NAME section"; continue ;;
    1) ;;
    *) bad "$name: named by several pages:" $pages; continue ;;
  esac
  got=$(awk -F '\t' -v p="$pages" -v n="$name" '$1 == p && $2 == n { print $3 }' \
        "$work/synopsis")
  if [ -z "$got" ]; then
    bad "$name: $pages has no .Fo $name in its SYNOPSIS"
  elif [ "$got" != "$proto" ]; then
    bad "$name: $pages says   $got"
    echo "     mpool.h says $proto"
  fi
  f=$tree/man3/$name.3.gz
  if [ ! -f "$f" ]; then
    bad "$name: no $f in the built tree"
  else
    to=$(gzip -dc "$f" | sed -n 's|^\.so \(man[1-9]/.*\)|\1|p')
    [ -z "$to" ] || [ -f "$tree/$to.gz" ] || bad "$name: $f points at a missing $to"
  fi
done <"$work/header"

# Names and prototypes the header does not have.
cut -f1 "$work/header" >"$work/declared"
cut -f2 "$work/names" | sort -u | grep -vxFf "$work/declared" |
  while read -r name; do echo "man: $name: named in a page, declared in no header"; done |
  tee "$work/extra"
cut -f2 "$work/synopsis" | sort -u | grep -vxFf "$work/declared" |
  while read -r name; do echo "man: $name: in a SYNOPSIS, declared in no header"; done |
  tee -a "$work/extra"
[ ! -s "$work/extra" ] || fail=1

# Cross references to the project's own pages.
for page in "$src"/*.[1-9]; do
  sed -n 's/^\.Xr \(mp_[a-z_0-9]*\|libmpool\) \([1-9]\).*/\1 \2/p' "$page" |
    while read -r name section; do
      [ -f "$tree/man$section/$name.$section.gz" ] ||
        echo "man: $(basename "$page"): .Xr $name $section: no such page"
    done
done | tee "$work/xr"
[ ! -s "$work/xr" ] || fail=1

# Every error code, under its C name, in mp_error(3).
codes=$(sed -n 's/^ *XX(\([A-Z]*\),.*/MP_\1/p' $headers)
[ -n "$codes" ] || bad "no MP_ERRNO_MAP entries found in $header"
for code in $codes MP_EINVAL; do
  grep -q "^\.\(It \)\{0,1\}Dv $code\b" "$src/mp_error.3" || bad "mp_error.3 does not describe $code"
done
test -f "$src/libmpool.7" || bad "no libmpool.7"

[ "$fail" -eq 0 ] || exit 1
echo "man: $n functions of $(for h in $headers; do basename "$h"; done | tr '\n' ' ')each with its page and prototype: ok"
