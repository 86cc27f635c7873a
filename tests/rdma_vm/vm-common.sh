# vm-common.sh: sourced by the scripts that run inside the Soft-RoCE VM.
# Sets dev, server_ip and gid_index from vm-run's environment, and a scratch
# directory $tmp removed on exit.

dev=${UNIPOOL_RDMA_DEVICE:-rxe0}
server_ip=${UNIPOOL_RDMA_IP:-192.0.2.1}
gid_index=${UNIPOOL_RDMA_GID_INDEX:-1}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# True once something listens on TCP port $1 (read from /proc: no exec, which is slow in the VM).
listening() {
  local hex sl local_addr rem st
  printf -v hex '%04X' "$1"
  while read -r sl local_addr rem st _; do
    [[ $local_addr == *":$hex" && $st == 0A ]] && return 0
  done </proc/net/tcp
  return 1
}
