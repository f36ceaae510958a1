#!/usr/bin/env bash
# Builds the C++ host example (main.cpp, over ksn-plugin/include/ksn_usage_task.hpp) with
# c++ -std=c++17 -Wall -Wextra -Werror and runs it on the release library:
# target/release/libksn_plugin.so under the repository root, or the file KSN_PLUGIN_LIB
# names. When the default library is missing it is built first (cargo build --release -p
# ksn-plugin); a missing KSN_PLUGIN_LIB is an error. Exits 0 when the story holds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ -n "${KSN_PLUGIN_LIB:-}" ]; then
  lib="$KSN_PLUGIN_LIB"
  if [ ! -f "$lib" ]; then
    echo "run.sh: KSN_PLUGIN_LIB=$lib: no such file" >&2
    exit 2
  fi
else
  lib="$root/target/release/libksn_plugin.so"
  if [ ! -f "$lib" ]; then
    echo "run.sh: $lib is missing; building it (cargo build --release -p ksn-plugin)" >&2
    cargo build --release -p ksn-plugin --manifest-path "$root/Cargo.toml" \
      --target-dir "$root/target"
  fi
fi

out="$root/target/cpp-host"
mkdir -p "$out"
c++ -std=c++17 -Wall -Wextra -Werror -Wpedantic -O2 -pthread -I "$root/ksn-plugin/include" \
  "$here/main.cpp" -o "$out/cpp-host" -ldl
"$out/cpp-host" "$lib"
