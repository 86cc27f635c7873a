#!/bin/bash
# Runs inside each VM of a mesh (tests/rdma_vm/mesh-run), chrooted into the host's read-only
# root, as /run/unipool-vm/inner.sh (mesh-run copies it into the job directory, which all the
# mesh's VMs share read-write; vm-init starts it). The kernel command line names the machine
# (unipool.mesh=NAME). It:
#   1. names each cable NIC after its cable (found by the MAC mesh-run gave it), puts the
#      cable's address on it and an rxe device on top, and waits for every port to be ACTIVE
#      with its IPv4-mapped GID at index 1; with mesh-run --ethernet, also names the management
#      NIC eth_lan and gives it its address (no rxe device there);
#   2. marks itself ready and waits until every machine is (so no command starts before all
#      cables work), printing UNIPOOL_VM_READY_<nonce> and then UNIPOOL_VM_START_<nonce>;
#   3. runs the machine's command. The driver's status ends the mesh: it writes the job's
#      "stop" file, which the other machines poll; they then kill their command's process group
#      (TERM, then KILL after 1 s). A command that ends early leaves its machine up until then.
#   4. prints the exit marker UNIPOOL_VM_EXIT_<nonce>=<status>; vm-init powers the VM off.
# Job directory: nonce, driver, count (machines), env (NUL-separated), cwd, out; stop and ready/
# are written by the VMs; m/NAME/{cables,env,argv,ethernet} per machine (argv absent: nothing to
# run; ethernet absent: no management network).
set -u
job=/run/unipool-vm
nonce=$(<"$job/nonce")
driver=$(<"$job/driver")
me=
for word in $(</proc/cmdline); do
  [[ $word == unipool.mesh=* ]] && me=${word#*=}
done
mine=$job/m/$me
# The command's stderr goes to the second serial port, which mesh-run relays to its stderr.
err=/dev/ttyS1
[[ -w $err ]] || err=/dev/console

report() {
  echo "UNIPOOL_VM_EXIT_${nonce}=$1"
  exit 0
}
setup_fail() {
  echo "mesh-run (in $me): $*" >"$err"
  dmesg | tail -n 20 >"$err"
  : >"$job/stop" # the other machines stop waiting for this one
  report 125
}
[[ -n $me && -d $mine ]] || setup_fail "no machine named on the kernel command line, or no m/$me"

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo "$me" >/proc/sys/kernel/hostname

# A pause without exec (every exec costs ~0.5 s under TCG with the root on 9p): read with a
# timeout from a FIFO nobody writes to. fd 8 is closed for the command.
if ! mkfifo /run/mesh-tick || ! exec 8<>/run/mesh-tick; then
  setup_fail "mkfifo /run/mesh-tick failed"
fi
pause() { read -r -t "$1" -u 8 || true; }

# --- Cables: one `ip -batch` and one `rdma -b` for all of them ------------------------------
# m/NAME/cables: one line per cable end: MAC NETDEV RXE ADDRESS/PREFIX GID(sysfs form).
declare -A by_mac
for d in /sys/class/net/*; do
  by_mac[$(<"$d/address")]=${d##*/}
done
ipcmds=$'link set lo up\n' rdmacmds= rxes=() gids=()
while read -r mac netdev rxe addr gid; do
  [[ -n ${by_mac[$mac]:-} ]] || setup_fail "no NIC with MAC $mac (cable $netdev)"
  ipcmds+="link set dev ${by_mac[$mac]} name $netdev"$'\n'
  ipcmds+="addr add $addr dev $netdev"$'\n'
  ipcmds+="link set $netdev up"$'\n'
  rdmacmds+="link add $rxe type rxe netdev $netdev"$'\n'
  rxes+=("$rxe") gids+=("$gid")
done <"$mine/cables"
# The management Ethernet (mesh-run --ethernet): MAC NETDEV ADDRESS/PREFIX. Its frames loop
# back to the sender too (a multicast segment), so no IPv6 link-local (its duplicate address
# detection would see itself).
if [[ -s $mine/ethernet ]]; then
  read -r mac netdev addr <"$mine/ethernet"
  [[ -n ${by_mac[$mac]:-} ]] || setup_fail "no NIC with MAC $mac (the Ethernet, $netdev)"
  ipcmds+="link set dev ${by_mac[$mac]} name $netdev"$'\n'
  ipcmds+="link set dev $netdev addrgenmode none"$'\n'
  ipcmds+="addr add $addr dev $netdev"$'\n'
  ipcmds+="link set $netdev up"$'\n'
fi
ip -batch - <<<"$ipcmds" || setup_fail "network setup of the cables failed"
if ((${#rxes[@]})); then
  rdma -b - <<<"$rdmacmds" || setup_fail "rdma link add of the cables' rxe devices failed"
fi

# Ports turn ACTIVE and the IPv4-mapped GID (index 1) appears asynchronously.
for i in "${!rxes[@]}"; do
  port=/sys/class/infiniband/${rxes[i]}/ports/1
  for ((t = 0; t < 100; t++)); do
    [[ $(<"$port/state") == *ACTIVE* && $(<"$port/gids/1") == "${gids[i]}" ]] && break
    pause 0.05
  done
  [[ $(<"$port/state") == *ACTIVE* ]] || setup_fail "${rxes[i]} port not ACTIVE: $(<"$port/state")"
  [[ $(<"$port/gids/1") == "${gids[i]}" ]] ||
    setup_fail "${rxes[i]} GID index 1 is $(<"$port/gids/1"), not ${gids[i]}"
done

ulimit -l unlimited || setup_fail "ulimit -l unlimited failed"

# --- Everyone ready? -----------------------------------------------------------------------------
: >"$job/ready/$me" || setup_fail "cannot write $job/ready/$me"
echo "UNIPOOL_VM_READY_${nonce}"
count=$(<"$job/count")
shopt -s nullglob
while :; do
  ready=("$job"/ready/*)
  ((${#ready[@]} >= count)) && break
  if [[ -e $job/stop ]]; then
    echo "mesh-run (in $me): gave up: another machine failed before its command started" >"$err"
    report 125
  fi
  pause 0.05
done

# The caller's environment, then the mesh's facts for this machine (m/NAME/env) on top.
for file in "$job/env" "$mine/env"; do
  while IFS= read -r -d '' kv; do
    case ${kv%%=*} in
      PWD | OLDPWD | SHLVL | _ | BASH_* | TMPDIR) ;;
      *) export "$kv" 2>/dev/null ;;
    esac
  done <"$file"
done
export UNIPOOL_IN_VM=1

argv=()
[[ -e $mine/argv ]] && mapfile -d '' argv <"$mine/argv"
cwd=$(<"$job/cwd")
cd "$cwd" 2>/dev/null || setup_fail "cannot cd to $cwd inside the VM"

echo "UNIPOOL_VM_START_${nonce}"
if [[ $me == "$driver" ]]; then
  "${argv[@]}" </dev/null 2>"$err" 8<&-
  status=$?
  : >"$job/stop"
  report "$status"
fi

# Not the driver: run until the driver is done. Job control puts the command in its own
# process group, so that it and whatever it started can be killed together.
status=
if ((${#argv[@]})); then
  set -m
  "${argv[@]}" </dev/null 2>"$err" 8<&- &
  pid=$!
  set +m
fi
while [[ ! -e $job/stop ]]; do
  if [[ -n ${pid:-} && -z $status ]] && ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    status=$?
    ((status == 0)) || echo "mesh-run (in $me): the command exited with status $status;" \
      "the machine stays up until $driver's command ends" >"$err"
  fi
  pause 0.1
done
if [[ -n ${pid:-} ]]; then
  kill -TERM -- -"$pid" 2>/dev/null
  for ((t = 0; t < 10; t++)); do
    kill -0 -- -"$pid" 2>/dev/null || break
    pause 0.1
  done
  kill -KILL -- -"$pid" 2>/dev/null
  if [[ -z $status ]]; then
    wait "$pid" 2>/dev/null
    status=$?
  fi
fi
report "${status:-0}"
