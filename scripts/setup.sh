#!/bin/sh
# Installs unipool's build dependencies (Debian 12 packages only) and builds
# everything into build/ with CMake and Ninja. Idempotent and incremental.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="g++ cmake ninja-build pkg-config libabsl-dev libflatbuffers-dev flatbuffers-compiler \
librocksdb-dev libgtest-dev libgmock-dev libxxhash-dev libibverbs-dev libcpp-httplib-dev \
nlohmann-json3-dev"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# shellcheck disable=SC2086  # PACKAGES is a word list on purpose.
missing=$(for p in $PACKAGES; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)
if [ -n "$missing" ]; then
  echo "setup: installing" $missing
  log=$(mktemp)
  if ! { $SUDO apt-get update && \
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           $PACKAGES; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: apt-get failed (log above)" >&2
    exit 1
  fi
  rm -f "$log"
fi

if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "setup: building (ninja, $(nproc) jobs)"
cmake --build build
