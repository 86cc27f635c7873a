#!/bin/sh
# Quick start, part 2: set up, build, and run every test: unit tests,
# integration tests with real processes on loopback, and the RDMA tests
# inside a Soft-RoCE VM (see tests/rdma_vm/README.md).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/install-rdma-vm-deps.sh
scripts/install-test-deps.sh
cd build
exec ctest --output-on-failure -j2 "$@"
