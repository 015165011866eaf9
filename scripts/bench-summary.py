#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench.sh (OUT_DIR/*.jsonl) into the
markdown tables of docs/benchmarks.md: each figure as the median of the runs
with their range (min-max), and the ratios against the baselines.
Standard library only. Usage: bench-summary.py OUT_DIR"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])


def lines(name):
    path = out / name
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def fmt(values, digits=0, unit=""):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    f = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return f.format(m) + unit
    return f"{f.format(m)}{unit} ({f.format(min(values))}–{f.format(max(values))})"


def scenario(label):
    return label.split("/")[0]


loadgen = lines("loadgen.jsonl")
by = defaultdict(list)  # (scenario, phase) -> [record]
for rec in loadgen:
    by[(scenario(rec["label"]), rec["phase"])].append(rec)


def op(rec, name, field):
    return rec["ops"].get(name, {}).get(field)


def server_ms_per_call(rec, name):
    ok = op(rec, name, "ok") or 0
    s = rec.get("server") or {}
    return 1000 * s["cpu_s"] / ok if ok and s else None


def loadgen_cores(rec):
    return (rec.get("loadgen") or {}).get("cores")


print(f"# Benchmark results ({out.name})\n")
machine = out / "machine.txt"
if machine.exists():
    print("```\n" + machine.read_text().strip() + "\n```\n")
for c in lines("certs.jsonl"):
    print(f"`envparity certs` for {c['certs']} agents: {c['seconds']:.1f} s\n")

for tls in ("plain", "tls"):
    echo_key, agg_key = f"ingest-{tls}-echo", f"ingest-{tls}-aggregator"
    if not any(k[0] == agg_key for k in by):
        continue
    print(f"## Ingest, {'mutual TLS' if tls == 'tls' else 'plain text'}\n")
    print("| phase | echo calls/s | aggregator calls/s | ratio | aggregator p50 ms | p90 ms | p99 ms | max ms | server CPU ms/call | load generator cores | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase, name in (("register", "push"), ("heartbeat", "heartbeat"), ("snapshot", "push")):
        echo = by.get((echo_key, phase), [])
        agg = by.get((agg_key, phase), [])
        if not agg:
            continue
        ratios = []
        for e, a in zip(sorted(echo, key=lambda r: r["label"]), sorted(agg, key=lambda r: r["label"])):
            if op(e, name, "per_second"):
                ratios.append(op(a, name, "per_second") / op(e, name, "per_second"))
        errors = sum(op(a, name, "errors") or 0 for a in agg)
        print(
            f"| {phase} ({name}) | {fmt([op(r, name, 'per_second') for r in echo])} "
            f"| {fmt([op(r, name, 'per_second') for r in agg])} | {fmt(ratios, 2)} "
            f"| {fmt([op(r, name, 'p50_ms') for r in agg], 2)} | {fmt([op(r, name, 'p90_ms') for r in agg], 2)} "
            f"| {fmt([op(r, name, 'p99_ms') for r in agg], 2)} | {fmt([op(r, name, 'max_ms') for r in agg], 1)} "
            f"| {fmt([server_ms_per_call(r, name) for r in agg], 3)} | {fmt([loadgen_cores(r) for r in agg], 2)} | {errors} |"
        )
    deltas = by.get((f"ingest-{tls}-deltas", "snapshot"), [])
    if deltas:
        whole = by.get((agg_key, "snapshot"), [])
        print("\nOne changed container per snapshot, whole against as a delta (same aggregator build):\n")
        print("| sent as | calls/s | p50 ms | p99 ms | server CPU ms/call | request bytes | errors |")
        print("|---|---|---|---|---|---|---|")
        for kind, recs in (("whole snapshot", whole), ("delta", deltas)):
            print(
                f"| {kind} | {fmt([op(r, 'push', 'per_second') for r in recs])} "
                f"| {fmt([op(r, 'push', 'p50_ms') for r in recs], 2)} | {fmt([op(r, 'push', 'p99_ms') for r in recs], 2)} "
                f"| {fmt([server_ms_per_call(r, 'push') for r in recs], 3)} "
                f"| {fmt([op(r, 'push', 'mean_request_bytes') for r in recs])} "
                f"| {sum(op(r, 'push', 'errors') or 0 for r in recs)} |"
            )
    sizes = {op(r, 'push', 'mean_request_bytes') for r in by.get((agg_key, 'snapshot'), [])}
    print(f"\nSnapshot request size: {', '.join(str(s) for s in sorted(s for s in sizes if s))} bytes. "
          f"Load average during these runs: {', '.join(sorted({r['load_before'] for r in by.get((agg_key, 'heartbeat'), [])}))}\n")

scales = sorted({int(k[0].split("-")[1]) for k in by if k[0].startswith("scale-")})
cli = defaultdict(list)
for rec in lines("cli.jsonl"):
    if rec["exit"] in (0, 1):
        cli[(scenario(rec["label"]), rec["command"])].append(rec["ms"])
    else:
        cli[(scenario(rec["label"]), rec["command"] + "-failed")].append(rec["ms"])


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[max(1, -(-len(v) * p // 100)) - 1]


if scales:
    print("## Cost growth: 100 → 1,000 → 10,000 hosts × 50 containers (plain text)\n")
    print("| hosts | register all: s | snapshots/s | push p99 ms | server CPU ms/push | RSS after register MiB | steady: heartbeat p99 ms | push p99 ms | status p50 / p99 ms | diff p50 / p99 ms | CLI status p50 / p99 ms | CLI diff p50 / p99 ms | RSS peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in scales:
        key = f"scale-{n}"
        reg, snap, st = by.get((key, "register"), []), by.get((key, "snapshot"), []), by.get((key, "steady"), [])
        mib = lambda recs, f: fmt([(r.get("server") or {}).get(f, 0) / 1024 for r in recs])
        cs, cd = cli.get((key, "status"), []), cli.get((key, "diff"), [])
        failed = len(cli.get((key, "status-failed"), [])) + len(cli.get((key, "diff-failed"), []))
        print(
            f"| {n:,} | {fmt([r['seconds'] for r in reg], 1)} | {fmt([op(r, 'push', 'per_second') for r in snap])} "
            f"| {fmt([op(r, 'push', 'p99_ms') for r in snap], 1)} | {fmt([server_ms_per_call(r, 'push') for r in snap], 2)} "
            f"| {mib(reg, 'rss_kib')} | {fmt([op(r, 'heartbeat', 'p99_ms') for r in st], 1)} "
            f"| {fmt([op(r, 'push', 'p99_ms') for r in st], 1)} "
            f"| {fmt([op(r, 'status', 'p50_ms') for r in st], 1)} / {fmt([op(r, 'status', 'p99_ms') for r in st], 1)} "
            f"| {fmt([op(r, 'diff', 'p50_ms') for r in st], 1)} / {fmt([op(r, 'diff', 'p99_ms') for r in st], 1)} "
            f"| {fmt([pct(cs, 50)], 0)} / {fmt([pct(cs, 99)], 0)} | {fmt([pct(cd, 50)], 0)} / {fmt([pct(cd, 99)], 0)} "
            f"| {mib(st, 'hwm_kib')}{' (' + str(failed) + ' CLI calls failed)' if failed else ''} |"
        )
    errors = defaultdict(int)
    for (k, _), recs in by.items():
        if k.startswith("scale-"):
            for r in recs:
                for name, o in r["ops"].items():
                    for code, count in o.get("errors_by_code", {}).items():
                        errors[(k, name, code)] += count
    if errors:
        print("\nErrors: " + ", ".join(f"{k} {n} {c}: {v}" for (k, n, c), v in sorted(errors.items())))
    print()

def agent_table(file, title, start):
    """One row per container count of measure-agent.sh's JSON lines in FILE."""
    agent = lines(file)
    if not agent:
        return
    print(f"## {title}\n")
    print(f"| containers | agent RSS MiB | agent peak MiB | node_exporter RSS MiB | agent / node_exporter | agent idle millicores | {start} → aggregator p50 / p99 ms | {start} → webhook alert p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sorted({r["containers"] for r in agent}):
        recs = [r for r in agent if r["containers"] == n]
        a = [r["agent"] for r in recs]
        ne = [r["node_exporter"] for r in recs if r.get("node_exporter")]
        ratio = [r["agent"]["rss_kib_median"] / r["node_exporter"]["rss_kib_median"] for r in recs if r.get("node_exporter")]
        s = [r["run_to_state"] for r in recs if r.get("run_to_state")]
        al = [r["run_to_alert"] for r in recs if r.get("run_to_alert")]
        print(
            f"| {n} | {fmt([x['rss_kib_median'] / 1024 for x in a], 1)} | {fmt([x['hwm_kib'] / 1024 for x in a], 1)} "
            f"| {fmt([x['rss_kib_median'] / 1024 for x in ne], 1)} | {fmt(ratio, 2)} | {fmt([x['millicores'] for x in a], 2)} "
            f"| {fmt([x['p50_ms'] for x in s])} / {fmt([x['p99_ms'] for x in s])} "
            f"| {fmt([x['p50_ms'] for x in al])} / {fmt([x['p99_ms'] for x in al])} |"
        )
    print()


agent_table("agent.jsonl", "The agent on a real dockerd (idle), node_exporter beside it", "docker run")
agent_table("agent-containerd.jsonl", "The agent on a scratch containerd (CRI, idle), node_exporter beside it", "pod start")

web = [r for r in lines("web.jsonl") if "loads" in r]  # envparity-webbench's per-run summaries
if web:
    print("## The overview in headless Chromium, with ingest running (envparity-webbench)\n")
    print("Median of the runs (range); each run's statistics are the median and the slowest of its loads, not a p99.\n")
    print("| scenario | cache | loads | first contentful paint median ms | slowest ms | first byte median ms | slowest ms | transferred median bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted({scenario(r["label"]) for r in web}):
        for cache in ("cold", "warm"):
            recs = [r for r in web if scenario(r["label"]) == key and r["cache"] == cache]
            if recs:
                print(
                    f"| {key} | {cache} | {sum(r['loads'] for r in recs)} | {fmt([r['fcp_ms_median'] for r in recs], 1)} "
                    f"| {fmt([r['fcp_ms_max'] for r in recs], 1)} | {fmt([r['ttfb_ms_median'] for r in recs], 1)} "
                    f"| {fmt([r['ttfb_ms_max'] for r in recs], 1)} | {fmt([r['transferred_bytes_median'] for r in recs])} |"
                )
    print()

criterion = out / "criterion.txt"
if criterion.exists():
    print("## Parity engine (criterion)\n\n```")
    for l in criterion.read_text().splitlines():
        if l.startswith("evaluate/") or "time:" in l or "thrpt:" in l:
            print(l)
    print("```")
