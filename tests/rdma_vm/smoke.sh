#!/bin/bash
# smoke.sh: does the VM's Soft-RoCE device carry real RC traffic? Runs INSIDE the VM:
#
#   tests/rdma_vm/vm-run -- tests/rdma_vm/smoke.sh
#
# Checks that ibv_devinfo shows rxe0 with an ACTIVE port, then runs rdma-core's
# ibv_rc_pingpong with server and client on rxe0 (GID index 1, the IPv4-mapped GID; the client
# connects to 192.0.2.1) for 1000 round trips of 4 KiB. Exits 0 only if all of that succeeded.
set -u

# shellcheck source=vm-common.sh
. "$(dirname "$0")/vm-common.sh"
port=18515

if ! ibv_devinfo -d "$dev" >"$tmp/devinfo" 2>&1; then
  cat "$tmp/devinfo"
  echo "smoke: FAIL: ibv_devinfo -d $dev failed"
  exit 1
fi
cat "$tmp/devinfo"
if ! grep -q 'state:[[:space:]]*PORT_ACTIVE' "$tmp/devinfo"; then
  echo "smoke: FAIL: $dev has no PORT_ACTIVE port"
  exit 1
fi
echo "smoke: ok: ibv_devinfo shows $dev with PORT_ACTIVE"

args=(-d "$dev" -g "$gid_index" -s 4096 -n 1000 -p "$port")
timeout -k 5 120 ibv_rc_pingpong "${args[@]}" >"$tmp/server.log" 2>&1 &
spid=$!
for ((i = 0; i < 400; i++)); do
  listening "$port" && break
  kill -0 "$spid" 2>/dev/null || break
  sleep 0.05
done
crc=0 src=0
timeout -k 5 120 ibv_rc_pingpong "${args[@]}" "$server_ip" >"$tmp/client.log" 2>&1 || crc=$?
wait "$spid" || src=$?
sed 's/^/server: /' "$tmp/server.log"
sed 's/^/client: /' "$tmp/client.log"
if ((crc != 0 || src != 0)); then
  echo "smoke: FAIL: ibv_rc_pingpong client status $crc, server status $src"
  exit 1
fi
echo "smoke: ok: ibv_rc_pingpong RC 1000 x 4096 B between two QPs on $dev"
