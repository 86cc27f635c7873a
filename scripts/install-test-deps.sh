#!/bin/sh
# Installs what the test suite needs beyond the build dependencies: Debian's
# chromium, which the dashboard test drives headless, and the Prometheus
# Python client, whose parser checks /metrics. Idempotent; run as root on
# Debian 12 (scripts/test.sh calls it).
set -eu

PACKAGES="chromium fonts-dejavu-core python3-prometheus-client"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: must run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# shellcheck disable=SC2086  # PACKAGES is a word list on purpose.
missing=$(for p in $PACKAGES; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)

if [ -z "$missing" ]; then
  echo "install-test-deps: all packages already installed"
  exit 0
fi

if ! { apt-get update && apt-get install -y --no-install-recommends $PACKAGES; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-test-deps: apt-get failed (log above)" >&2
  exit 1
fi
echo "install-test-deps: installed" $missing
