#!/bin/bash
# perftest-baseline.sh: what bandwidth do perftest's own RDMA READ and WRITE reach on this VM's
# Soft-RoCE device? That is the ceiling the project's verbs path is compared with in the same
# VM run (absolute numbers under TCG mean nothing). Runs INSIDE the VM:
#
#   tests/rdma_vm/vm-run -- tests/rdma_vm/perftest-baseline.sh
#
# Server and client both use rxe0 (the client connects to 192.0.2.1; rxe loops the packets
# back). Prints one line per measurement, the client's average bandwidth in perftest's MB/s
# (2^20 bytes per second):
#   perftest op=read size=65536 MBps=67.1
# for op=read and op=write (RC) and op=write_uc (UC; perftest refuses READ over UC), at 64 KiB
# and 2 MiB. A measurement that fails or reads 0 MB/s is retried twice; exits 1 if any still
# failed (its line then says FAILED, followed by the perftest logs).
# Takes about 30-60 s under TCG.
set -u

# shellcheck source=vm-common.sh
. "$(dirname "$0")/vm-common.sh"
port=18600
# Iterations per size: ~33 MB and ~84 MB moved, 1-5 s each at TCG speeds.
declare -A iters=([65536]=500 [2097152]=40)

# run_once TOOL CONNECTION SIZE: one server/client pair; sets bw (empty if none), crc, src.
run_once() {
  local tool=$1 conn=$2 size=$3 i spid
  bw= crc=0 src=0
  port=$((port + 1))
  local args=(-d "$dev" -x "$gid_index" -c "$conn" -s "$size" -n "${iters[$size]}" -p "$port" -F)
  timeout -k 5 120 "$tool" "${args[@]}" >"$tmp/server.log" 2>&1 &
  spid=$!
  for ((i = 0; i < 400; i++)); do
    listening "$port" && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  timeout -k 5 120 "$tool" "${args[@]}" "$server_ip" >"$tmp/client.log" 2>&1 || crc=$?
  wait "$spid" || src=$?
  # The result row: "#bytes #iterations BW-peak BW-average MsgRate".
  local bytes n peak avg
  while read -r bytes n peak avg _; do
    [[ $bytes == "$size" && $avg =~ ^[0-9]*\.?[0-9]+$ ]] && bw=$avg
  done <"$tmp/client.log"
}

# measure OP TOOL CONNECTION SIZE: prints the measurement's line. Up to 3 attempts: under TCG
# perftest's cycles-per-second calibration (a linear fit of rdtsc against gettimeofday) now and
# then fails and the run reports 0.00 MB/s although every transfer completed.
measure() {
  local op=$1 attempt
  for attempt in 1 2 3; do
    run_once "$2" "$3" "$4"
    if ((crc == 0 && src == 0)) && [[ $bw =~ [1-9] ]]; then
      echo "perftest op=$op size=$4 MBps=$bw"
      return
    fi
    echo "perftest-baseline: op=$op size=$4 attempt $attempt: client status $crc," \
      "server status $src, MB/s '${bw}'" >&2
    grep -h -iE 'r\^2|correlation|error|fail' "$tmp/client.log" "$tmp/server.log" >&2
  done
  echo "perftest op=$op size=$4 FAILED (client status $crc, server status $src)"
  sed 's/^/  client: /' "$tmp/client.log"
  sed 's/^/  server: /' "$tmp/server.log"
  failed=1
}

failed=0
for size in 65536 2097152; do
  measure read ib_read_bw RC "$size"
  measure write ib_write_bw RC "$size"
  measure write_uc ib_write_bw UC "$size"
done
exit "$failed"
