#!/bin/bash
# check-perftest.sh: the CTest body of rdma_vm_perftest. Boots the VM via vm-run, runs
# perftest-baseline.sh in it, and passes only if all six measurement lines
# (op = read, write, write_uc; size = 64 KiB, 2 MiB) were printed with a positive MB/s figure.
# Exits 77 (skip) when vm-run does, i.e. when the VM cannot run on this machine.
#   usage: check-perftest.sh [vm-run options]
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$here/vm-run" "$@" -- "$here/perftest-baseline.sh" | tee "$log"
rc=${PIPESTATUS[0]}
((rc == 77)) && exit 77

missing=0
for size in 65536 2097152; do
  for op in read write write_uc; do
    if ! grep -Eq "^perftest op=$op size=$size MBps=[0-9.]*[1-9][0-9.]*$" "$log"; then
      echo "check-perftest: FAIL: no positive 'perftest op=$op size=$size MBps=...' line"
      missing=1
    fi
  done
done
if ((rc != 0)); then
  echo "check-perftest: FAIL: vm-run exited with status $rc"
  exit 1
fi
exit "$missing"
