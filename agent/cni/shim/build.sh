#!/bin/sh
# Compiles the CNI plugin executable: agent/cni/shim/lace-cni.c → dist/lace-cni.
# Needs a C compiler ($CC, else cc, else clang) and libc headers (libc6-dev).
# Linked statically where the static libc is installed, so the one file can be
# copied into any node's CNI bin dir and starts without the dynamic loader.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../../dist"
mkdir -p "$out"
cc=${CC:-}
if [ -z "$cc" ]; then
  for c in cc clang gcc; do
    if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
  done
fi
[ -n "$cc" ] || { echo "build-cni: no C compiler found (apt-get install clang, or set CC)" >&2; exit 1; }
flags="-O2 -Wall -Wextra -Werror -std=c11"
tmp="$out/.lace-cni.$$"
if ! "$cc" $flags -static -o "$tmp" "$here/lace-cni.c" 2>/dev/null; then
  "$cc" $flags -o "$tmp" "$here/lace-cni.c"
fi
strip "$tmp" 2>/dev/null || true
# Renamed into place: a runtime executing the old file keeps running it.
mv -f "$tmp" "$out/lace-cni"
