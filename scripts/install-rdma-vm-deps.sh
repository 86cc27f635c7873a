#!/bin/sh
# Installs what tests/rdma_vm/vm-run needs to boot a Soft-RoCE VM (qemu TCG, Debian's kernel with
# rdma_rxe as a module, rdma-core userspace and perftest). Idempotent; Debian 12.
# See ../shared/notes/rdma-vm.md for why a VM is needed at all.
set -eu
exec "$(dirname "$0")/apt-ensure.sh" install-rdma-vm-deps \
  qemu-system-x86 linux-image-amd64 rdma-core ibverbs-providers ibverbs-utils \
  libibverbs-dev perftest busybox-static cpio kmod iproute2
