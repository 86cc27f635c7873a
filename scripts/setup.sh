#!/bin/sh
# Installs unipool's build dependencies (Debian 12 packages only) and builds
# everything into build/ with CMake and Ninja. Idempotent and incremental.
set -eu
cd "$(dirname "$0")/.."

scripts/apt-ensure.sh setup g++ cmake ninja-build pkg-config libabsl-dev libflatbuffers-dev \
  flatbuffers-compiler librocksdb-dev libgtest-dev libgmock-dev libxxhash-dev libibverbs-dev \
  libcpp-httplib-dev nlohmann-json3-dev libasio-dev libssl-dev \
  python3-dev pybind11-dev

if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "setup: building (ninja, $(nproc) jobs)"
cmake --build build
