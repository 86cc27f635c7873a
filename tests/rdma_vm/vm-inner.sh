#!/bin/bash
# Runs inside the Soft-RoCE VM, chrooted into the host's read-only root, as
# /run/unipool-vm/inner.sh (vm-run copies it into the job directory; vm-init starts it).
# Sets up RoCE on a veth pair, then runs the job's command in the caller's working directory with
# the caller's environment, and prints the exit marker that vm-run parses:
#   UNIPOOL_VM_EXIT_<nonce>=<status>
# The job directory holds: argv and env (NUL-separated), cwd, nonce, out (may be empty).
set -u
job=/run/unipool-vm
nonce=$(<"$job/nonce")
# The command's stderr goes to the second serial port, which vm-run connects to its own stderr.
err=/dev/ttyS1
[[ -w $err ]] || err=/dev/console

report() {
  echo "UNIPOOL_VM_EXIT_${nonce}=$1"
  exit 0
}

setup_fail() {
  echo "vm-run (in VM): $*" >"$err"
  dmesg | tail -n 20 >"$err"
  report 125
}

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# One `ip -batch` and one `rdma`: every exec costs ~0.5 s under TCG with the root on 9p.
ip -batch - <<'IP' || setup_fail "network setup (lo, veth va/vb) failed"
link set lo up
link add va type veth peer name vb
addr add 192.0.2.1/24 dev va
link set va up
link set vb up
IP
rdma link add rxe0 type rxe netdev va || setup_fail "rdma link add rxe0 failed"

# The port turns ACTIVE and the IPv4-mapped GID (index 1) appears asynchronously.
port=/sys/class/infiniband/rxe0/ports/1
zero_gid=0000:0000:0000:0000:0000:0000:0000:0000
for ((i = 0; i < 100; i++)); do
  [[ $(<"$port/state") == *ACTIVE* && $(<"$port/gids/1") != "$zero_gid" ]] && break
  sleep 0.05
done
[[ $(<"$port/state") == *ACTIVE* ]] || setup_fail "rxe0 port not ACTIVE: $(<"$port/state")"
[[ $(<"$port/gids/1") != "$zero_gid" ]] || setup_fail "rxe0 has no IPv4 GID at index 1"

ulimit -l unlimited || setup_fail "ulimit -l unlimited failed"

# The caller's environment, then the VM's own facts on top.
while IFS= read -r -d '' kv; do
  case ${kv%%=*} in
    PWD | OLDPWD | SHLVL | _ | BASH_* | TMPDIR) ;;
    *) export "$kv" 2>/dev/null ;;
  esac
done <"$job/env"
export UNIPOOL_IN_VM=1
export UNIPOOL_RDMA_DEVICE=rxe0
export UNIPOOL_RDMA_IP=192.0.2.1
export UNIPOOL_RDMA_GID_INDEX=1

mapfile -d '' argv <"$job/argv"
cwd=$(<"$job/cwd")
cd "$cwd" 2>/dev/null || setup_fail "cannot cd to $cwd inside the VM"

echo "UNIPOOL_VM_START_${nonce}"
"${argv[@]}" </dev/null 2>"$err"
report $?
