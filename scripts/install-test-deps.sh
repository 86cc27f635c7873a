#!/bin/sh
# Installs what the test suite needs beyond the build dependencies: Debian's
# chromium, which the dashboard test drives headless, and the Prometheus
# Python client, whose parser checks /metrics. Idempotent; Debian 12
# (scripts/test.sh calls it). clang-format checks the code style (format_check).
set -eu
exec "$(dirname "$0")/apt-ensure.sh" install-test-deps \
  chromium fonts-dejavu-core python3-prometheus-client clang-format
