#!/bin/sh
# The pool's core (src/pool/) reaches processes only through a transport: its
# object files call no fork, waitpid, pipe, poll, kill or syscall, nor the
# library's wrappers of them (src/sys/, process.c). Arguments:
# every object file of the library; those of src/pool/ are checked.
set -eu
checked=0
for o in "$@"; do
  case $o in */pool/*) ;; *) continue ;; esac
  checked=$((checked + 1))
  bad=$(nm -u "$o" | awk '{print $2}' |
    grep -E '^(fork|vfork|clone|waitpid|waitid|wait|pipe2?|poll|ppoll|select|kill|syscall|read|write|writev|close)$|^mp__(fork|waitpid|child_|pidfd|pipe|poll|read_|write|vmsplice|fd_|close|set_nonblock|futex|await_armed|die_with_parent)' || true)
  if [ -n "$bad" ]; then
    echo "$o calls what only a transport may: $bad"
    exit 1
  fi
done
test "$checked" -ge 5
echo "core: $checked objects call no process or fd function"
