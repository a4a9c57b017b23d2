#!/bin/sh
# Compiles the tc-eBPF datapath: plugins/srv6/bpf/*.c → dist/bpf/*.o.
# Needs clang (with the BPF target), and the headers of libbpf-dev and linux-libc-dev.
# The published package ships the objects, so a node needs no compiler.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../../dist/bpf"
mkdir -p "$out"
command -v clang >/dev/null 2>&1 || { echo "build-bpf: clang is not installed (apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for src in "$here"/*.c; do
  name=$(basename "$src" .c)
  clang -O2 -g -Wall -Werror -target bpf -I"/usr/include/$multiarch" -c "$src" -o "$out/$name.o"
done
