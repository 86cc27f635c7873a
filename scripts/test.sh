#!/bin/sh
# Quick start, part 2: set up, build, and run every test.
#
# Linux: everything twice. build/ (the Linux platform layer): unit tests,
# integration tests with real processes on loopback, the clang++/libc++
# compile check, and the RDMA tests inside a Soft-RoCE VM (see
# tests/rdma_vm/README.md). Then build-posix/ (-DUNIPOOL_PLATFORM=posix, the
# macOS implementation built on Linux, 16 KiB allocation unit): the same
# suite without the VM, so the macOS code paths run on every test run.
# macOS: build/ is the POSIX build; every test but the VM and Linux-only ones.
# Arguments go to every ctest run (e.g. -R store).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh

if [ "$(uname)" = Darwin ]; then
  # No Soft-RoCE VM, no Debian chromium (dashboard), and the toolchain is
  # already clang/libc++.
  exec ctest --test-dir build --output-on-failure -j"$(sysctl -n hw.ncpu)" \
    -LE 'rdma_vm|toolchain' -E '^(dashboard_test|format_check)$' "$@"
fi

scripts/install-rdma-vm-deps.sh
scripts/install-test-deps.sh
status=0
ctest --test-dir build --output-on-failure -j2 "$@" || status=1

echo "test: the POSIX/macOS platform layer (build-posix/)"
if [ ! -f build-posix/build.ninja ] ||
    grep -q '^llama_DIR:PATH=.*NOTFOUND' build-posix/CMakeCache.txt; then
  cmake -S . -B build-posix -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DUNIPOOL_PLATFORM=posix >/dev/null
fi
cmake --build build-posix
# format_check and libcxx_check look at the sources, already checked above.
ctest --test-dir build-posix --output-on-failure -j2 -LE 'rdma_vm|toolchain' \
  -E '^format_check$' "$@" || status=1
exit $status
