#!/bin/sh
# Installs what the test suite needs beyond the build dependencies: Debian's
# chromium, which the dashboard test drives headless, and the Prometheus
# Python client, whose parser checks /metrics. Idempotent; Debian 12
# (scripts/test.sh calls it). clang-format checks the code style (format_check);
# clang with libc++ compiles every source as Apple's toolchain would (libcxx_check).
# The Python package's tests (python/tests) use Debian's numpy, pytest and
# torch (CPU; OpenBLAS so the model test's matmuls are not reference BLAS),
# and pip with setuptools and wheel to install the built package offline.
# numpy also writes the safetensors models of tests/tensor.
# etcd-server: tests/ha start a 1-member etcd on loopback (leader election).
set -eu
exec "$(dirname "$0")/apt-ensure.sh" install-test-deps \
  chromium fonts-dejavu-core python3-prometheus-client clang-format clang libc++-dev \
  libc++abi-dev python3-numpy python3-pytest python3-torch libopenblas0-pthread \
  python3-pip python3-setuptools python3-wheel etcd-server
