#!/usr/bin/python3
"""Turns unipool-bench output into bench/results/report.md and a throughput plot.

usage: report.py RESULTS_TXT REPORT_MD PLOT_PNG
       report.py --tls TLS_RESULTS_TXT TLS_MD REPORT_MD
           (bench/run.sh --tls: writes the TLS section and puts it in REPORT_MD in
           place of the previous one, leaving the rest of REPORT_MD as it is)

Ratios, not absolute times, are the result: unipool / Redis and
unipool / memcpy per page size, measured in the same run on the same machine.
Every file is in bench/results/ (bench/RESULTS.md lists them): the analysis
(why a target is met or missed, analysis.md) is included as written, and so
are the sections kept from their own runs.
"""
import os
import platform
import subprocess
import sys


def parse(path):
    rows, meta = [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                meta[key.strip()] = value.strip()
                continue
            words = line.split()
            row = {"kind": words[0]}
            for w in words[1:]:
                k, _, v = w.partition("=")
                row[k] = v
            rows.append(row)
    return rows, meta


def size_name(n):
    n = int(n)
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / (1 << 20):.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    kernel = platform.release()
    return f"{os.cpu_count()} cores ({cpu}), {mem}, Linux {kernel}"


class Table:
    def __init__(self, rows):
        self.rows = rows

    def get(self, kind, op, size, batch, threads, transport=None):
        for r in self.rows:
            if (r["kind"] == kind and r.get("op") == op and r.get("size") == str(size)
                    and r.get("batch") == str(batch) and r.get("threads") == str(threads)
                    and (transport is None or r.get("transport") == transport)):
                return r
        return None

    def gbps(self, *args, **kw):
        r = self.get(*args, **kw)
        return float(r["GBps"]) if r else None


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(r, goal):
    if r is None:
        return None
    return "met" if r >= goal else f"missed: {r / goal * 100:.0f}% of the target"


def put_targets(t, rows):
    """Issue 13's put targets: table rows (the reasons for misses are in analysis.md)."""
    lines = []
    for size in (4 << 10, 64 << 10, 256 << 10):
        for transport, goal in (("shm", 1.5), ("tcp", 1.0)):
            u = t.gbps("unipool", "put", size, 1, 1, transport)
            rd = t.gbps("redis", "put", size, 1, 1)
            r = ratio(u, rd)
            if r is not None:
                lines.append(f"| single put {size_name(size)}, 1 thread, {transport} >= {goal}x "
                             f"Redis SET | {r:.2f}x | {verdict(r, goal)} |")
    for transport in ("shm", "tcp"):
        r = ratio(t.gbps("unipool", "put", 4 << 10, 128, 1, transport),
                  t.gbps("redis", "put", 4 << 10, 128, 1))
        if r is not None:
            lines.append(f"| batch of 128 x 4 KiB puts, {transport} >= 2x Redis pipelined SET | "
                         f"{r:.2f}x | {verdict(r, 2.0)} |")
    g = t.gbps("unipool", "put", 256 << 10, 128, 1, "shm")
    if g is not None:
        lines.append(f"| batch of 128 x 256 KiB puts over shm >= 5 GB/s | {g:.2f} GB/s | "
                     f"{verdict(g, 5.0)} |")
    for transport in ("shm", "tcp"):
        one = t.get("unipool-always", "put", 64 << 10, 1, 1, transport)
        eight = t.get("unipool-always", "put", 64 << 10, 1, 8, transport)
        if one and eight:
            r = float(eight["ops"]) / float(one["ops"])
            lines.append(f"| 8 threads of single 64 KiB puts, --sync=always, {transport}: >= 4x "
                         f"one thread | {r:.2f}x ({float(eight['ops']):.0f} vs "
                         f"{float(one['ops']):.0f} puts/s) | {verdict(r, 4.0)} |")
    kv = [r for r in rows if r["kind"] == "kvcache"]
    for r in kv:
        if r["system"] == "redis":
            continue
        redis = next((x for x in kv if x["model"] == r["model"] and x["layout"] == r["layout"]
                      and x["system"] == "redis"), None)
        if redis is None:
            continue
        x = float(redis["put_ms"]) / float(r["put_ms"])
        lines.append(f"| KV-cache prefix put ({r['prefix_tokens']} tokens) >= 2x faster than "
                     f"Redis, {r['model']} {r['layout']}, {r['system']} | {x:.2f}x | "
                     f"{verdict(x, 2.0)} |")
    return lines


def tls_section(raw, out_md):
    """TLS against plain TCP, from alternating runs: the best of each per cell."""
    rows, meta = parse(raw)
    best = {}
    for r in rows:
        if r["kind"] not in ("unipool-plain", "unipool-tls"):
            continue
        key = (r["kind"], r["op"], int(r["size"]), int(r["batch"]))
        if key not in best or float(r["GBps"]) > float(best[key]["GBps"]):
            best[key] = r
    md = ["## TLS cost: TCP with and without TLS 1.3\n",
          f"`bench/run.sh --tls` (commit {meta.get('commit', '?')}, {meta.get('started', '?')}, "
          f"{machine()}): one node on loopback, one client thread over TCP, plain and with "
          "TLS 1.3 on every connection (OpenSSL, AES-GCM; the handshake happens once per "
          "pooled connection, outside the timings). Runs alternate plain, TLS, plain, TLS; the "
          "best of each is kept. Gets verify every page's checksum in both. Shared memory and "
          "RDMA do not use TLS and cost the same with it.\n",
          "| op | page | batch | plain GB/s | TLS GB/s | TLS / plain | plain p50 us | TLS p50 us |",
          "|---|---|---|---|---|---|---|---|"]
    cells = sorted({k[1:] for k in best}, key=lambda c: (c[0] != "put", c[1], c[2]))
    for op, size, batch in cells:
        plain, tls = best.get(("unipool-plain", op, size, batch)), best.get(
            ("unipool-tls", op, size, batch))
        if plain is None or tls is None:
            continue
        p, s = float(plain["GBps"]), float(tls["GBps"])
        md.append(f"| {op} | {size_name(size)} | {batch} | {p:.2f} | {s:.2f} | "
                  f"{fmt(ratio(s, p))} | {float(plain['p50_us']):.0f} | "
                  f"{float(tls['p50_us']):.0f} |")
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    return "\n".join(md) + "\n"


def splice_section(results_md, section):
    """Replaces the section with the same heading in results_md, or adds it
    before "## Every measurement"."""
    with open(results_md) as f:
        text = f.read()
    heading = section.split("\n", 1)[0]
    start = text.find(heading + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        end = len(text) if end < 0 else end + 1
    else:
        start = end = text.find("## Every measurement")
        if start < 0:
            start = end = len(text)
    with open(results_md, "w") as f:
        f.write(text[:start] + section + "\n" + text[end:].lstrip("\n"))


def main():
    if sys.argv[1] == "--tls":
        raw, out_md, results_md = sys.argv[2:5]
        splice_section(results_md, tls_section(raw, out_md))
        return
    raw, out_md, out_png = sys.argv[1:4]
    rows, meta = parse(raw)
    t = Table(rows)
    sweep = [r for r in rows if r["kind"] in ("unipool", "redis", "memcpy")]
    sizes = sorted({int(r["size"]) for r in sweep})
    transports = sorted({r["transport"] for r in sweep if r["kind"] == "unipool"})
    redis_version = next((r.get("version") for r in rows if r["kind"] == "peer"), "?")
    md = []
    md.append("# unipool-bench results\n")
    md.append("Generated by `bench/run.sh` (which runs `build/bin/unipool-bench` three times and "
              "`bench/report.py`); do not edit by hand. Its files, all included or drawn below:\n")
    md.append("- [results.txt](results.txt): the raw lines of this run; "
              "[throughput.png](throughput.png): its plot")
    md.append("- [analysis.md](analysis.md): why the targets are met or missed (written by hand)")
    md.append("- sections kept from their own last runs: "
              "[python.md](python.md) (`bench/python_bench.py --write`), "
              "[tensor.md](tensor.md) (`unipool-bench --model`), "
              "[tls.md](tls.md) (`bench/run.sh --tls`, raw lines in "
              "[tls-results.txt](tls-results.txt)), "
              "[cluster_key.md](cluster_key.md) (`unipool-bench --cluster-key`, "
              "by hand), [mesh.md](mesh.md) (`mesh_test`'s two cables against "
              "one, by hand)\n")
    md.append("![unipool vs Redis vs memcpy](throughput.png)\n")
    md.append(f"- Command: `{meta.get('command', 'bench/run.sh').strip()}` (from the repository root)")
    md.append(f"- Machine: {machine()}")
    md.append(f"- Run: {meta.get('started', '?')}, commit {meta.get('commit', '?')}, "
              f"{meta.get('seconds', '?')} s")
    md.append(f"- Peers: Redis {redis_version} (Debian's redis-server, loopback, no RDB/AOF), "
              "driven by a pipelined RESP client that writes values from and reads them into the "
              "caller's buffers (Redis's best case); memcpy of the same pages into the same "
              "buffers (the ceiling of the same-host path).")
    md.append("- unipool: one directory at its default durability (`--sync=everysec`: every commit "
              "in RocksDB's log before the reply, the log fsync'ed every 100 ms; Redis runs "
              "without persistence) "
              "and one node on this machine; `shm` = same-host shared memory, `tcp` = loopback "
              "TCP; gets verify every page's XXH3 checksum. Gets are of pages read once before "
              "by the same client (locations cached, as for a hot prefix); the cold case is in "
              "the single-vs-batch and KV-cache tables.")
    md.append("- GB/s = 1e9 bytes/s. Latency = one call (a batch); p99 over few calls (large "
              "pages) is close to the maximum.\n")

    # ------------------------------------------------------------ targets
    md.append("## Targets (2-core machine; measured, not asserted)\n")
    md.append("| target | measured | result |")
    md.append("|---|---|---|")

    def target_shm():
        lines = []
        for size in sizes:
            if size < 256 << 10:
                continue
            for batch in (1, 16):
                shm = t.gbps("unipool", "get", size, batch, 1, "shm")
                mem = t.gbps("memcpy", "copy", size, batch, 1)
                r = ratio(shm, mem)
                if r is None:
                    continue
                lines.append((size, batch, r))
        return lines

    for size, batch, r in target_shm():
        ok = r >= 0.8
        md.append(f"| same-host get within 80% of memcpy, {size_name(size)} x{batch} | "
                  f"{r * 100:.0f}% | {'met' if ok else f'missed by {80 - r * 100:.0f} points'} |")
    for size in (256 << 10, 2 << 20):
        for op in ("get", "put"):
            for batch in (1, 16):
                u = t.gbps("unipool", op, size, batch, 1, "tcp")
                rd = t.gbps("redis", op, size, batch, 1)
                r = ratio(u, rd)
                if r is None:
                    continue
                ok = r >= 2.0
                md.append(f"| TCP {op} >= 2x Redis, {size_name(size)} x{batch} | {r:.2f}x | "
                          f"{'met' if ok else f'missed: {r / 2 * 100:.0f}% of the target'} |")
    md.extend(put_targets(t, rows))
    for r in rows:
        if r["kind"] == "single-vs-batch" and r.get("system") == "unipool-tcp":
            s = float(r["speedup"])
            md.append(f"| 128 x 64 KiB: one BatchGet >= 5x faster than 128 Gets, TCP, "
                      f"{r['cache']} locations | {s:.1f}x | "
                      f"{'met' if s >= 5 else f'missed: {s / 5 * 100:.0f}% of the target'} |")
    md.append("")

    # ------------------------------------------------------------ ratios
    for batch in (1, 16, 128):
        md.append(f"## Ratios per page size: batch {batch}, 1 client thread\n")
        md.append("| page | shm get GB/s | memcpy GB/s | shm / memcpy | tcp get | Redis get | "
                  "tcp / Redis get | tcp put | Redis put | tcp / Redis put | shm put |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|")
        any_row = False
        for size in sizes:
            shm = t.gbps("unipool", "get", size, batch, 1, "shm")
            mem = t.gbps("memcpy", "copy", size, batch, 1)
            tg = t.gbps("unipool", "get", size, batch, 1, "tcp")
            rg = t.gbps("redis", "get", size, batch, 1)
            tp = t.gbps("unipool", "put", size, batch, 1, "tcp")
            rp = t.gbps("redis", "put", size, batch, 1)
            sp = t.gbps("unipool", "put", size, batch, 1, "shm")
            if all(v is None for v in (shm, mem, tg, rg)):
                continue
            any_row = True
            md.append(f"| {size_name(size)} | {fmt(shm)} | {fmt(mem)} | {fmt(ratio(shm, mem))} | "
                      f"{fmt(tg)} | {fmt(rg)} | {fmt(ratio(tg, rg))} | {fmt(tp)} | {fmt(rp)} | "
                      f"{fmt(ratio(tp, rp))} | {fmt(sp)} |")
        if not any_row:
            md.pop()
            md.pop()
            md.pop()
        md.append("")

    # ------------------------------------------------------------ kvcache
    kv = [r for r in rows if r["kind"] == "kvcache"]
    if kv:
        md.append("## KV-cache prefix hit (engine A stores a prefix, engine B finds and loads it)\n")
        md.append(f"Prefix of {kv[0]['prefix_tokens']} tokens, BF16 KV, 4 KiB per token per "
                  "layer; engine B is a fresh client (exists, then gets of 128 pages per call "
                  "into its KV memory). `hit ms` is what a prefix hit costs the engine.\n")
        md.append("| model | layout | page | pages | system | put ms | hit ms | hit GB/s | "
                  "hit vs Redis |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for r in kv:
            redis = next((x for x in kv if x["model"] == r["model"] and x["layout"] == r["layout"]
                          and x["system"] == "redis"), None)
            vs = "" if redis is None or r["system"] == "redis" else \
                f"{float(redis['hit_ms']) / float(r['hit_ms']):.2f}x faster"
            md.append(f"| {r['model']} | {r['layout']} | {size_name(r['page'])} | {r['pages']} | "
                      f"{r['system']} | {float(r['put_ms']):.1f} | {float(r['hit_ms']):.1f} | "
                      f"{float(r['hit_GBps']):.2f} | {vs} |")
        md.append("")

    svb = [r for r in rows if r["kind"] == "single-vs-batch"]
    if svb:
        md.append("## 128 pages of 64 KiB: 128 single gets against one batch\n")
        md.append("| system | locations | 128 gets ms | 1 batch ms | batch speedup |")
        md.append("|---|---|---|---|---|")
        for r in svb:
            md.append(f"| {r['system']} | {r['cache']} | {float(r['single_ms']):.2f} | "
                      f"{float(r['batch_ms']):.2f} | {float(r['speedup']):.1f}x |")
        md.append("")

    # ------------------------------------------------------------ analysis
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    analysis = os.path.join(results, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            md.append(f.read().rstrip() + "\n")

    # Sections kept from their own last runs: bench/python_bench.py's figures
    # (Python package against the C++ SDK) and `unipool-bench --model`'s
    # (the tensor store), each too slow or too large for bench/run.sh,
    # bench/run.sh --tls's (TLS against plain TCP), and `unipool-bench
    # --cluster-key`'s (a pool with a key against one without), and the
    # Soft-RoCE mesh's two cables against one (tests/rdma_vm, mesh_test).
    for section in ("python.md", "tensor.md", "tls.md", "cluster_key.md", "mesh.md"):
        path = os.path.join(results, section)
        if os.path.exists(path):
            with open(path) as f:
                md.append(f.read().rstrip() + "\n")

    # ------------------------------------------------------------ full sweep
    md.append("## Every measurement\n")
    md.append("| system | transport | op | page | batch | threads | GB/s | ops/s | p50 us | "
              "p99 us | calls |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sweep:
        md.append(f"| {r['kind']} | {r['transport']} | {r['op']} | {size_name(r['size'])} | "
                  f"{r['batch']} | {r['threads']} | {float(r['GBps']):.3f} | "
                  f"{float(r['ops']):.0f} | {float(r['p50_us']):.0f} | "
                  f"{float(r['p99_us']):.0f} | {r['calls']} |")
    skipped = [r for r in rows if r["kind"] == "skip"]
    if skipped:
        md.append("")
        md.append("Not run (one call would move more than 256 MiB): " + ", ".join(
            sorted({f"{size_name(r['size'])} x{r['batch']}" for r in skipped})) + ".")
    md.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(md))

    # ------------------------------------------------------------ plot
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, batch in zip(axes, (1, 16)):
        series = [("memcpy", "copy", None, "memcpy (ceiling)", "k--")]
        for tr in transports:
            series.append(("unipool", "get", tr, f"unipool {tr} get", "-o"))
            series.append(("unipool", "put", tr, f"unipool {tr} put", ":o"))
        series += [("redis", "get", None, "Redis get", "-s"), ("redis", "put", None, "Redis put", ":s")]
        for kind, op, tr, label, style in series:
            xs, ys = [], []
            for size in sizes:
                v = t.gbps(kind, op, size, batch, 1, tr)
                if v is not None:
                    xs.append(size)
                    ys.append(v)
            if xs:
                ax.plot(xs, ys, style, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes)
        ax.set_xticklabels([size_name(s).replace(" ", "") for s in sizes], rotation=30)
        ax.set_xlabel("page size")
        ax.set_title(f"batch {batch}, 1 client thread")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("GB/s")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"unipool vs Redis vs memcpy, same machine, same run ({meta.get('started', '')})")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)


if __name__ == "__main__":
    main()
