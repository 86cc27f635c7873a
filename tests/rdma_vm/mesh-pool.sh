#!/bin/bash
# mesh-pool.sh: a unipool pool spread over a mesh (tests/rdma_vm/mesh-run), and a test program
# run on its first machine as the pool's client.
#
#   tests/rdma_vm/mesh-pool.sh [mesh-run options] -- TEST [ARGS...]
#
#   tests/rdma_vm/mesh-pool.sh -- build-mesh/bin/mesh_test --gtest_filter='FullMesh.*'
#   tests/rdma_vm/mesh-pool.sh --cables a-b,a-b -- build-mesh/bin/mesh_test --gtest_filter='TwoCables.*'
#
# On the host it boots the mesh with the management Ethernet (mesh-run --ethernet; default
# cables a-b,a-c,b-c) and a shared --out directory, and runs itself on every machine. There:
#   - the driver (a, the first machine) runs the directory: --listen 0.0.0.0:7300, RocksDB in its
#     private /tmp, --node-timeout $UNIPOOL_MESH_NODE_TIMEOUT (default 15s: generous, so that a
#     VM starved by a busy host is not taken for a lost node);
#   - every machine runs a node named after it: unipool-node --name m, RDMA "auto" with no
#     --rdma-devices (every port), --listen 0.0.0.0:7301, --insecure (the mesh is a private
#     network with no cluster key), --pool-size $UNIPOOL_MESH_POOL_SIZE (default 128MiB). It
#     reaches the directory over the Ethernet (UNIPOOL_MESH_DIRECTORY_VIA=cables: over the
#     cables to the driver first, then the Ethernet) and advertises "<its addresses on the
#     cables to the driver>:7301,<its Ethernet address>:7301" (the driver's node: all its cable
#     addresses, then Ethernet), as on a Mac cluster: with a cable pulled, TCP to the node still
#     works over the Ethernet;
#   - the driver then runs TEST ARGS... with UNIPOOL_MESH_DIRECTORY=127.0.0.1:7300 and exits
#     with its status. The others keep their node until the driver is done.
# Binaries: unipool-node and unipool-directory from $UNIPOOL_MESH_BIN_DIR, default TEST's own
# directory (every binary of a build tree is in its bin/). Every server's log is written to the
# --out directory and printed (prefixed "[m] log NAME: ") when TEST fails or a node exits early,
# or always with UNIPOOL_MESH_SHOW_LOGS=1.
# The test may ask another machine to change a cable's address (readdress, below) through
# $UNIPOOL_MESH_OUT/requests.
# Exit status: TEST's; 77 when mesh-run cannot boot VMs here; 125 harness failure (see mesh-run).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

if [[ -z ${UNIPOOL_MESH_MACHINE:-} ]]; then
  # On the host.
  opts=()
  while (($#)) && [[ $1 != -- ]]; do
    opts+=("$1")
    shift
  done
  (($# >= 2)) || {
    echo "usage: $0 [mesh-run options] -- TEST [ARGS...]" >&2
    exit 2
  }
  shift
  test_bin=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
  shift
  export UNIPOOL_MESH_BIN_DIR=${UNIPOOL_MESH_BIN_DIR:-$(dirname "$test_bin")}
  for b in unipool-node unipool-directory; do
    [[ -x $UNIPOOL_MESH_BIN_DIR/$b ]] || {
      echo "mesh-pool: $UNIPOOL_MESH_BIN_DIR/$b not built" >&2
      exit 2
    }
  done
  out=$(mktemp -d /tmp/unipool-mesh-pool.XXXXXX)
  trap 'rm -rf "$out"' EXIT
  self=$here/mesh-pool.sh
  # Every machine named on a cable gets the script (a machine without a command would have no
  # node); the driver's command carries the test.
  spec=a-b,a-c,b-c
  for ((i = 0; i < ${#opts[@]}; i++)); do
    [[ ${opts[i]} == --cables ]] && spec=${opts[i + 1]:-}
  done
  mapfile -t machines < <(tr ',-' '\n' <<<"$spec" | grep -x '[a-z]' | sort -u)
  cmds=(-- "${machines[0]}:" "$self" "$test_bin" "$@")
  for m in "${machines[@]:1}"; do
    cmds+=(-- "$m:" "$self")
  done
  "$here/mesh-run" --ethernet "${opts[@]}" --out "$out" "${cmds[@]}"
  exit $?
fi

# --- On a machine of the mesh ----------------------------------------------------------------------
# shellcheck source=vm-common.sh
. "$here/vm-common.sh"
me=$UNIPOOL_MESH_MACHINE
driver=$UNIPOOL_MESH_DRIVER
out=${UNIPOOL_MESH_OUT:?mesh-pool needs mesh-run --out}
bin=${UNIPOOL_MESH_BIN_DIR:?}
logs=$out/logs
mkdir -p "$logs"
eth=${UNIPOOL_MESH_ETH_IP:-}

show_logs() {
  local f
  for f in "$logs"/*.log; do
    [[ -e $f ]] || continue
    echo "----- ${f##*/} -----"
    sed "s/^/log ${f##*/}: /" "$f"
  done
}

# This machine's addresses on the cables to the driver (on the driver: on every cable), in
# SPEC order, then its Ethernet address: the node's --advertise list.
read -ra my_ips <<<"$UNIPOOL_MESH_IPS"
read -ra my_peers <<<"$UNIPOOL_MESH_PEERS"
advertise=
for i in "${!my_ips[@]}"; do
  [[ $me == "$driver" || ${my_peers[i]} == "$driver" ]] && advertise+=",${my_ips[i]}:7301"
done
[[ -n $eth ]] && advertise+=",$eth:7301"
advertise=${advertise#,}

if [[ $me == "$driver" ]]; then
  directory=127.0.0.1:7300
  "$bin/unipool-directory" --listen 0.0.0.0:7300 --insecure --db /tmp/mesh-directory-db \
    --node-timeout "${UNIPOOL_MESH_NODE_TIMEOUT:-15s}" \
    >"$logs/directory.log" 2>&1 &
else
  # The directory over the Ethernet (the control plane); without it, or with
  # UNIPOOL_MESH_DIRECTORY_VIA=cables, over the cables to the driver first, tried in order.
  eth_var=UNIPOOL_MESH_ETH_$driver peer_var=UNIPOOL_MESH_PEER_$driver
  directory=
  if [[ -z ${!eth_var:-} || ${UNIPOOL_MESH_DIRECTORY_VIA:-ethernet} == cables ]]; then
    for ip in ${!peer_var}; do directory+=",$ip:7300"; done
  fi
  [[ -n ${!eth_var:-} ]] && directory+=",${!eth_var}:7300"
  directory=${directory#,}
fi

"$bin/unipool-node" --directory "$directory" --listen 0.0.0.0:7301 --insecure --advertise "$advertise" \
  --name "$me" --pool-size "${UNIPOOL_MESH_POOL_SIZE:-128MiB}" --state-dir /tmp/mesh-node-state \
  >"$logs/node-$me.log" 2>&1 &
node=$!

# readdress NETDEV OLD/PREFIX NEW/PREFIX: the link's address replaced, as a replugged
# Thunderbolt cable may come back with another link-local IPv4 (so another GID). The old one
# goes first, so the new GID takes its slot in the GID table.
readdress() {
  ip addr del "$2" dev "$1" && ip addr add "$3" dev "$1"
}

if [[ $me != "$driver" ]]; then
  # Until mesh-run ends the mesh (TERM to this process group), this machine serves the test's
  # requests: a file $out/requests/<machine>.<id>.req holding "readdress NETDEV OLD NEW", answered
  # in <same>.done ("ok" or the error). A node that exits early is reported with its log.
  mkdir -p "$out/requests"
  while kill -0 "$node" 2>/dev/null; do
    for req in "$out/requests/$me".*.req; do
      [[ -s $req ]] || continue
      read -r verb args <"$req"
      answer=
      rm -f "$req"
      if [[ $verb == readdress ]] && answer=$(readdress $args 2>&1); then
        echo ok >"${req%.req}.done"
      else
        echo "failed: $verb $args: ${answer:-unknown request}" >"${req%.req}.done"
      fi
    done
    pause 0.1
  done
  wait "$node"
  rc=$?
  echo "mesh-pool: node $me exited with status $rc before the test ended:"
  sed "s/^/log node-$me.log: /" "$logs/node-$me.log"
  exit 1
fi

UNIPOOL_MESH_DIRECTORY=$directory "$@"
rc=$?
if ((rc != 0 && rc != 77)) || [[ ${UNIPOOL_MESH_SHOW_LOGS:-0} == 1 ]]; then
  show_logs
fi
exit "$rc"
