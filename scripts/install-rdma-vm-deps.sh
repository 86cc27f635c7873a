#!/bin/sh
# Installs what tests/rdma_vm/vm-run needs to boot a Soft-RoCE VM (qemu TCG, Debian's kernel with
# rdma_rxe as a module, rdma-core userspace and perftest). Idempotent; run as root on Debian 12.
# See /work/shared/notes/rdma-vm.md for why a VM is needed at all.
set -eu

PACKAGES="qemu-system-x86 linux-image-amd64 rdma-core ibverbs-providers ibverbs-utils \
libibverbs-dev perftest busybox-static cpio kmod iproute2"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-rdma-vm-deps: must run as root" >&2
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
  echo "install-rdma-vm-deps: all packages already installed ($(echo $PACKAGES | wc -w) packages)"
  exit 0
fi

if ! { apt-get update && apt-get install -y --no-install-recommends $PACKAGES; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-rdma-vm-deps: apt-get failed (log above)" >&2
  exit 1
fi
echo "install-rdma-vm-deps: installed" $missing
