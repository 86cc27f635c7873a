#!/usr/bin/python3
"""python_bench: does the Python package move pages as fast as the C++ SDK,
and does a prefix hit cost fewer round trips and less time with
get_prefix_into than with batch_exists + batch_get_into?

    PYTHONPATH=build/python UNIPOOL_BIN_DIR=build/bin /usr/bin/python3 bench/python_bench.py

Starts a local cluster (unipoolctl cluster up: 3 nodes), then:

1. batch_get_into throughput for 64 KiB, 256 KiB and 2 MiB pages (32 MiB per
   call), Python against the C++ SDK's BatchGet (build/bin/unipool-batch-get)
   on the same keys, cluster and options, over the same-host path (shm) and
   TCP. Each side: one untimed round, then the fastest of --rounds rounds;
   the two sides alternate, so load on the machine hits both. Target: Python
   at least 90% of C++.
2. A 2048-token prefix hit (128 vLLM blocks of 16 tokens, one 64 KiB page per
   block), from a client that has not seen those keys (each round reads a
   chain of its own): get_prefix_into against batch_exists followed by
   batch_get_into. Reports the directory round trips (the client's
   directory_requests counter) and the median latency.

Prints one line per measurement and the Markdown section; with --write also
records it in bench/results/python.md (which bench/report.py includes) and
bench/results/report.md.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))
import unipool  # noqa: E402
from cluster import LocalCluster, bin_dir  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


def python_rounds(client, keys, size, rounds, one_target=False):
    """A list of arrays, one per key, or (one_target) one 2-D array, a row per key."""
    targets = (np.empty((len(keys), size), dtype=np.uint8) if one_target
               else [np.empty(size, dtype=np.uint8) for _ in keys])
    best = float("inf")
    for r in range(rounds + 1):  # round 0 is untimed
        start = time.perf_counter()
        client.batch_get_into(keys, targets)
        seconds = time.perf_counter() - start
        if r > 0:
            best = min(best, seconds)
    return best


def cpp_rounds(directory, prefix, count, size, rounds, shm):
    out = subprocess.run([os.path.join(bin_dir(), "unipool-batch-get"), directory, prefix,
                          str(count), str(size), str(rounds), "1" if shm else "0"],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split("seconds=")[1].split()[0])


def throughput(cluster, args, rows):
    for transport, shm in (("shm", True), ("tcp", False)):
        with unipool.Client(cluster.directory, shm=shm, name="python-bench") as client:
            for size in (64 * KiB, 256 * KiB, 2 * MiB):
                count = args.call_bytes // size
                prefix = f"bench/{transport}/{size}/"
                keys = [f"{prefix}{i}" for i in range(count)]
                client.batch_put(keys, [np.full(size, i % 251, dtype=np.uint8)
                                        for i in range(count)], replace=True)
                py, py2d, cpp = float("inf"), float("inf"), float("inf")
                for _ in range(args.repeats):
                    py = min(py, python_rounds(client, keys, size, args.rounds))
                    py2d = min(py2d, python_rounds(client, keys, size, args.rounds, True))
                    cpp = min(cpp, cpp_rounds(cluster.directory, prefix, count, size,
                                              args.rounds, shm))
                py_mbps, cpp_mbps = count * size / py / MiB, count * size / cpp / MiB
                py2d_mbps = count * size / py2d / MiB
                print(f"python op=batch_get_into size={size} batch={count} transport={transport} "
                      f"MBps={py_mbps:.0f} MBps_2d={py2d_mbps:.0f} cpp_MBps={cpp_mbps:.0f} "
                      f"ratio={py_mbps / cpp_mbps:.2f}", flush=True)
                rows.append((transport, size, count, py_mbps, py2d_mbps, cpp_mbps))


def prefix_hit(cluster, args):
    blocks = args.prefix_tokens // 16
    page = 64 * KiB
    results = {"get_prefix_into": ([], []), "batch_exists+batch_get_into": ([], [])}
    with unipool.Client(cluster.directory, name="python-bench-writer") as writer:
        chains = {}
        for method in results:
            for r in range(args.prefix_rounds):
                keys = [f"prefix/{method}/{r}/{b}" for b in range(blocks)]
                writer.batch_put(keys, [np.full(page, b % 251, dtype=np.uint8)
                                        for b in range(blocks)], replace=True)
                chains[(method, r)] = keys
    targets = [np.empty(page, dtype=np.uint8) for _ in range(blocks)]
    with unipool.Client(cluster.directory, name="python-bench-engine") as engine:
        for r in range(args.prefix_rounds):
            for method, (latencies, trips) in results.items():
                keys = chains[(method, r)]
                before = engine.stats()["directory_requests"]
                start = time.perf_counter()
                if method == "get_prefix_into":
                    hit = engine.get_prefix_into(keys, targets)
                else:
                    present = engine.batch_exists(keys)
                    hit = present.index(False) if False in present else len(present)
                    engine.batch_get_into(keys[:hit], targets[:hit])
                latencies.append(time.perf_counter() - start)
                trips.append(engine.stats()["directory_requests"] - before)
                assert hit == blocks, (method, hit)
    rows = []
    for method, (latencies, trips) in results.items():
        ms = statistics.median(latencies) * 1e3
        print(f"python op=prefix_hit method={method} tokens={args.prefix_tokens} blocks={blocks} "
              f"page={page} directory_round_trips={statistics.median(trips):.0f} "
              f"median_ms={ms:.2f} min_ms={min(latencies) * 1e3:.2f}", flush=True)
        rows.append((method, statistics.median(trips), ms, min(latencies) * 1e3))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of Python and C++")
    parser.add_argument("--call-bytes", type=int, default=32 * MiB, help="bytes per batch call")
    parser.add_argument("--prefix-tokens", type=int, default=2048)
    parser.add_argument("--prefix-rounds", type=int, default=9)
    parser.add_argument("--write", action="store_true",
                        help="record the figures in bench/results/python.md and report.md")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    rows = []
    with LocalCluster(nodes=3, pool_size="1GiB") as cluster:
        throughput(cluster, args, rows)
        prefix_rows = prefix_hit(cluster, args)
    md = markdown(args, rows, prefix_rows)
    print("\n" + md)
    if args.write:
        write_results(md)


def markdown(args, rows, prefix_rows):
    md = ["## Python package against the C++ SDK (bench/python_bench.py)", "",
          f"Run {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: `PYTHONPATH=build/python "
          "UNIPOOL_BIN_DIR=build/bin /usr/bin/python3 bench/python_bench.py --write`; 3 nodes on "
          "this machine; fastest of the timed rounds, Python and C++ alternating on the same keys "
          "and options. Target: Python batch_get_into at least 90% of C++ BatchGet. Load average "
          f"at the start and end of the run: {args.load_before:.1f} / {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores (a shared machine: above the core count, single figures can be "
          "off by 2x either way; compare several runs).", "",
          "Python reads into a list of arrays (one per page) and into one 2-D array (a row per "
          "page: one buffer request per call instead of one per page).", "",
          "| transport | page | pages per call | Python list MB/s | Python 2-D MB/s | C++ MB/s | "
          "list / C++ | 2-D / C++ |",
          "|---|---|---|---|---|---|---|---|"]
    for transport, size, count, py, py2d, cpp in rows:
        md.append(f"| {transport} | {size // KiB} KiB | {count} | {py:.0f} | {py2d:.0f} | "
                  f"{cpp:.0f} | {py / cpp:.2f} | {py2d / cpp:.2f} |")
    md += ["", f"A {args.prefix_tokens}-token prefix hit ({args.prefix_tokens // 16} blocks of 16 "
           f"tokens, one 64 KiB page each) from a client that has not seen the keys, "
           f"{args.prefix_rounds} rounds each:", "",
           "| method | directory round trips | median ms | best ms |", "|---|---|---|---|"]
    for method, trips, ms, best in prefix_rows:
        md.append(f"| {method} | {trips:.0f} | {ms:.2f} | {best:.2f} |")
    return "\n".join(md) + "\n"


def write_results(md):
    """bench/results/python.md (report.py includes it when it regenerates report.md)
    and the same section in bench/results/report.md now, before its full sweep."""
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with open(os.path.join(results, "python.md"), "w") as f:
        f.write(md)
    path = os.path.join(results, "report.md")
    with open(path) as f:
        text = f.read()
    title = md.split("\n", 1)[0]
    if title in text:  # replace the previous run's section
        start = text.index(title)
        end = text.index("\n## ", start + len(title)) + 1
        text = text[:start] + text[end:]
    anchor = text.index("## Every measurement")
    with open(path, "w") as f:
        f.write(text[:anchor] + md + "\n" + text[anchor:])


if __name__ == "__main__":
    main()
