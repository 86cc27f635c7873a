#!/bin/sh
# apt-ensure.sh WHO PACKAGE...: installs whichever of the Debian packages are
# missing (apt-get update first), quietly; on failure prints apt's last lines.
# Idempotent. Uses sudo when not root. WHO names the caller in messages.
set -eu
who=$1
shift

missing=$(for p in "$@"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)
if [ -z "$missing" ]; then
  echo "$who: all $# packages already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086  # $missing is a word list on purpose.
if ! { $SUDO apt-get update && \
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         $missing; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "$who: apt-get failed (log above)" >&2
  exit 1
fi
echo "$who: installed" $missing
