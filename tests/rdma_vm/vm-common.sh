# vm-common.sh: sourced by the scripts that run inside the Soft-RoCE VM.
# Sets dev, server_ip and gid_index from vm-run's environment, and a scratch
# directory $tmp removed on exit.

dev=${UNIPOOL_RDMA_DEVICE:-rxe0}
server_ip=${UNIPOOL_RDMA_IP:-192.0.2.1}
gid_index=${UNIPOOL_RDMA_GID_INDEX:-1}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# True once something listens on TCP port $1, IPv4 or IPv6 (read from /proc: no exec, which is
# slow in the VM).
listening() {
  local hex sl local_addr rem st table
  printf -v hex '%04X' "$1"
  for table in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $table ]] || continue
    while read -r sl local_addr rem st _; do
      [[ $local_addr == *":$hex" && $st == 0A ]] && return 0
    done <"$table"
  done
  return 1
}

# pause SECONDS: sleep without an exec (each costs ~0.5 s in the VM when the host is busy): a
# read with a timeout on a FIFO nobody writes to. A subshell inherits its parent's FIFO, or
# makes its own (named after its pid, so that subshells never race for one name).
pause() {
  if [[ -z ${pause_fd:-} ]]; then
    mkfifo "$tmp/pause.$BASHPID" && exec {pause_fd}<>"$tmp/pause.$BASHPID" || pause_fd=
  fi
  if [[ -n $pause_fd ]]; then
    read -r -t "$1" -u "$pause_fd" || true
  else
    sleep "$1"
  fi
}
