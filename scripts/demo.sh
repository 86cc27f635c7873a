#!/bin/sh
# Quick start, part 1: set up, build, and run the demo on a local cluster
# (a directory and three pool nodes on loopback, started and stopped here).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/bin/unipool-demo "$@"
