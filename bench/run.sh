#!/bin/sh
# Regenerates bench/results/report.md, its raw lines and its plot (the files
# bench/RESULTS.md lists):
# unipool (shm, tcp, and verbs RC when this machine has an RDMA device)
# against Redis and memcpy, same sizes, same client threads, same run. A few
# minutes on a 2-core machine. Installs its Debian packages (redis-server,
# python3-matplotlib) and builds unipool-bench first.
#   bench/run.sh            the full run
#   bench/run.sh --quick    a few sizes only (a minute; for trying changes)
#   bench/run.sh --puts     issue 13's put targets only: 4 KiB to 256 KiB,
#                           single and 128-page batches, the KV-cache mode and
#                           the 8-thread --sync=always run (small pool, quick
#                           start on a loaded machine)
#   bench/run.sh --tls      what TLS costs: TCP puts and gets with plain TCP and
#                           with TLS 1.3, alternately, twice each
#                           (bench/results/tls.md, a section of report.md; the
#                           other figures are kept)
#   bench/run.sh --same-host  issue 23's same-host targets against memcpy of
#                           the same bytes in the same run: puts into fresh and
#                           steady space, batch gets with 1 and 2 copy threads,
#                           GetPrefix, views, and the KV-cache prefix hit and
#                           views per layout (unipool-samehost-bench;
#                           bench/results/same-host.md; the others are kept)
set -eu
cd "$(dirname "$0")/.."

scripts/apt-ensure.sh bench redis-server python3-matplotlib
# Debian's redis-server package starts a system instance; the benchmark
# starts its own on a free port and leaves that one alone.

if [ ! -f build/build.ninja ]; then
  scripts/setup.sh
else
  cmake --build build --target unipool-bench unipool-samehost-bench unipool-directory unipool-node
fi

sizes=4KiB,64KiB,256KiB,2MiB,8MiB,32MiB,80MiB
total=192MiB
if [ "${1:-}" = "--quick" ]; then sizes=64KiB,256KiB,2MiB; total=64MiB; fi

out=bench/results
mkdir -p $out
raw=$out/results.txt
bench=build/bin/unipool-bench
start=$(date +%s)
if [ "${1:-}" = "--same-host" ]; then
  md=$out/same-host.md
  {
    echo "## Same host against memcpy (issue 23)"
    echo
    echo "\`bench/run.sh --same-host\`, started $(date -u +%Y-%m-%dT%H:%M:%SZ), commit" \
      "$(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, shmem THP" \
      "\`$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null || echo none)\`."
    echo "Every ratio is against a memcpy of the same bytes measured in the same round;"
    echo "median of the rounds and, in brackets, their spread."
    echo
    build/bin/unipool-samehost-bench --rounds 3 | grep -v '^samehost op='
    echo
    echo "Seconds: $(( $(date +%s) - start ))"
  } > "$md.tmp"
  mv "$md.tmp" "$md"
  echo "bench: wrote $md ($(( $(date +%s) - start )) s)"
  exit 0
fi
if [ "${1:-}" = "--tls" ]; then
  {
    echo "# command: bench/run.sh --tls"
    echo "# started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    for mode in plain tls plain tls; do
      flag=""
      if [ "$mode" = tls ]; then flag=--tls; fi
      $bench $flag --transport tcp --sizes 4KiB,64KiB,2MiB,32MiB --batches 1,16 --threads 1 \
        --total 64MiB | sed "s/^unipool op=/unipool-$mode op=/"
    done
    echo "# seconds: $(( $(date +%s) - start ))"
  } > $out/tls-results.txt.tmp
  mv $out/tls-results.txt.tmp $out/tls-results.txt
  /usr/bin/python3 bench/report.py --tls $out/tls-results.txt $out/tls.md $out/report.md
  echo "bench: wrote $out/tls.md and $out/report.md ($(( $(date +%s) - start )) s)"
  exit 0
fi
{
  echo "# command: bench/run.sh $*"
  echo "# started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  # Without huge pages a client's first write into each slab page faults
  # (docs/same-host.md, huge pages): cold puts over shm depend on this setting.
  echo "# shmem_thp: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null || echo none)"
  if [ "${1:-}" = "--puts" ]; then
    $bench --transport all --sizes 4KiB,64KiB,256KiB --batches 1,128 --threads 1 --total 64MiB \
      --peers redis,memcpy
  else
    $bench --transport all --sizes "$sizes" --batches 1,16,128 --threads 1,2 --total "$total" \
      --peers redis,memcpy
  fi
  $bench --kvcache --transport all --peers redis
  # Group commit: one thread against eight, single 64 KiB puts, with the
  # directory at --sync=always (rows relabelled unipool-always).
  $bench --directory_sync=always --transport all --sizes 64KiB --batches 1 --threads 1,8 \
    --total 64MiB | sed 's/^unipool op=/unipool-always op=/'
  if [ "${1:-}" != "--puts" ]; then $bench --single-vs-batch --transport all --peers redis; fi
  echo "# seconds: $(( $(date +%s) - start ))"
} > "$raw.tmp"
mv "$raw.tmp" "$raw"
# Debian's python3 (with python3-matplotlib), not whatever python3 is first in PATH.
/usr/bin/python3 bench/report.py "$raw" $out/report.md $out/throughput.png
echo "bench: wrote $out/report.md and $out/throughput.png ($(( $(date +%s) - start )) s)"
