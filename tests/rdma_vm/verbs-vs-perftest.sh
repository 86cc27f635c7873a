#!/bin/bash
# verbs-vs-perftest.sh BENCH: how close does unipool's own verbs path come to
# perftest on the same Soft-RoCE device, in the same VM run? Runs INSIDE the VM:
#
#   tests/rdma_vm/vm-run -- tests/rdma_vm/verbs-vs-perftest.sh build/bin/unipool-bench
#
# Measures perftest's ib_read_bw / ib_write_bw (RC) and ib_write_bw -c UC at
# 64 KiB and 2 MiB (perftest-baseline.sh), then unipool get and put at the same
# sizes in RC and in forced UC mode (unipool-bench: batches of 16, every byte
# checked), and prints each pair with its ratio. A benchmark, not a test of
# speed: it fails only when a figure is missing (something did not run).
set -u
bench=${1:?usage: verbs-vs-perftest.sh path/to/unipool-bench}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$here/perftest-baseline.sh" | tee "$tmp/perftest" || true
# --prefault=false: faulting a whole slab in at node start takes minutes in
# this emulated 2 GiB VM on a loaded host; the measured pages fault in the
# same way for every row. --lease=60s: the timed get rounds must use the
# locations the untimed round cached; at the bench's usual 2 s lease, UC's
# slower rounds in this VM outlasted it and every call looked its keys up
# again (32 directory requests for 32 calls). --peers checksum: what one
# checksum pass over the same pages costs on this core (UC adds one to every
# get and put), and memcpy: one copy pass (staging, for unregistered buffers).
for mode in rc uc; do
  peers=
  [[ $mode == uc ]] && peers=--peers=checksum,memcpy
  "$bench" --transport "$mode" --sizes 64KiB,2MiB --batch 16 --total 32MiB \
    --node-flags=--prefault=false --lease=60s $peers \
    2>"$tmp/bench-$mode.err" | tee "$tmp/bench-$mode"
done

figure() {  # figure FILE PATTERN... -> the MBps value of the matching line
  local file=$1
  shift
  local line
  line=$(grep -F "$1" "$file" | grep -F "${2:-}" | head -n 1)
  [[ $line =~ MBps=([0-9.]+) ]] && echo "${BASH_REMATCH[1]}"
}

status=0
echo
echo "unipool verbs path vs perftest on the same device (MB/s, ratio = unipool / perftest):"
printf '  %-28s %10s %10s %8s\n' "measurement" "perftest" "unipool" "ratio"
row() {  # row LABEL PERFTEST_OP SIZE MODE UNIPOOL_OP
  local label=$1 pop=$2 size=$3 mode=$4 uop=$5 p u
  p=$(figure "$tmp/perftest" "op=$pop " "size=$size ")
  u=$(figure "$tmp/bench-$mode" "op=$uop " "size=$size ")
  if [[ -z $p || -z $u ]]; then
    printf '  %-28s %10s %10s %8s\n' "$label" "${p:-MISSING}" "${u:-MISSING}" "-"
    status=1
    return
  fi
  printf '  %-28s %10s %10s %8s\n' "$label" "$p" "$u" "$(awk -v u="$u" -v p="$p" 'BEGIN{printf "%.2f", u/p}')"
}
for size in 65536 2097152; do
  row "RC get  (READ)  $size" read "$size" rc get
  row "RC put  (WRITE) $size" write "$size" rc put
  row "UC get  (WRITE) $size" write_uc "$size" uc get
  row "UC put  (WRITE) $size" write_uc "$size" uc put
done
echo
echo "directory requests during the timed gets (0: every location came from the cache):"
for mode in rc uc; do
  grep -F 'op=get ' "$tmp/bench-$mode" | sed -E 's/.*size=([0-9]+).*directory_requests=([0-9]+).*/  '"$mode"' size=\1: \2/'
done
grep -h '^checksum op=hash' "$tmp"/bench-uc | sed -E 's/^checksum op=hash size=([0-9]+).* MBps=([0-9.]+).*/checksum pass (one core) size=\1: \2 MB\/s/'
grep -h '^memcpy op=copy' "$tmp"/bench-uc | sed -E 's/^memcpy op=copy size=([0-9]+).* MBps=([0-9.]+).*/memcpy pass (one core) size=\1: \2 MB\/s/'
if [[ $status -ne 0 ]]; then
  echo "verbs-vs-perftest: some figures are missing; logs:" >&2
  cat "$tmp"/bench-*.err >&2
fi
exit $status
