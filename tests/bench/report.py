#!/usr/bin/env python3
"""Markdown report of an Envoy load-benchmark run (tests/bench/bench.py results, one JSON per line).

Every number is a median over the rounds, with [min–max] where it matters. Ratios and
differences are taken per round against the reference variant of the same round (so slow drift of
the machine cancels out), then the median over rounds is shown. The reference variants are `router` (router only) and `native_chain` (native jwt_authn
with its cache + rbac + local_ratelimit).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

ROUTER = "router"
NATIVE = "native_chain"
PASSTHROUGH = "wasm_passthrough"
COLD = (
    ("RS256", "wasm_cold_rs256", "native_cold_rs256", 100),
    ("ES256", "wasm_cold_es256", "native_cold_es256", 100),
    ("EdDSA", "wasm_cold_eddsa", "native_cold_eddsa", 60),
)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def spread(xs, digits=1):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(statistics.median(xs), digits)} [{fmt(min(xs), digits)}–{fmt(max(xs), digits)}]"


def ratio(a, b):
    return None if a is None or not b else a / b


def load(path: Path):
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by = OrderedDict()
    for r in runs:
        by.setdefault(r["variant"], []).append(r)
    return runs, by


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def envoy_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.strip().split("version:")[-1].strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def paired(runs, ref_runs, op):
    """op(run, ref run of the same round) for every round both have, as a list."""
    ref = {r["round"]: r["cpu_us_per_req"] for r in ref_runs}
    return [op(r["cpu_us_per_req"], ref[r["round"]]) for r in runs if ref.get(r["round"])]


def main_table(by, lines):
    ok = {v: [r for r in rs if r.get("ok")] for v, rs in by.items()}
    router, native = ok.get(ROUTER, []), ok.get(NATIVE, [])
    lines.append("| variant | Envoy CPU µs/req median [min–max] | × router | × native chain | µs over router "
                 "| req/s | Envoy CPU busy | p50 / p99 ms at ~500 req/s | non-2xx % | other load (cores) | calib ms |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for v, rs in ok.items():
        if not rs:
            continue
        us = [r["cpu_us_per_req"] for r in rs]
        lat = [r["latency"] for r in rs if r.get("latency")]
        if lat:
            p50 = med(x["us"]["p50"] for x in lat) / 1000
            p99 = med(x["us"]["p99"] for x in lat) / 1000
            rate = med(x["achieved_rps"] for x in lat)
            lat_s = f"{p50:.3f} / {p99:.3f} ({rate:.0f}/s)"
        else:
            lat_s = "–"
        total = [sum(r["status"].values()) for r in rs]
        bad = [sum(c for k, c in r["status"].items() if k != "2xx") for r in rs]
        non2xx = 100.0 * sum(bad) / sum(total) if sum(total) else None
        fivexx = sum(r["status"].get("5xx", 0) for r in rs)
        flag = " ⚠5xx" if fivexx else ""
        lines.append(
            f"| {v} | **{spread(us)}** | {fmt(med(paired(rs, router, lambda a, b: a / b)), 2)} "
            f"| {fmt(med(paired(rs, native, lambda a, b: a / b)), 2)} "
            f"| {fmt(med(paired(rs, router, lambda a, b: a - b)))} | {fmt(med(r['rps'] for r in rs), 0)} "
            f"| {fmt(med(r['envoy_cpu_share'] for r in rs) * 100, 0)} % | {lat_s} "
            f"| {fmt(non2xx, 2)}{flag} "
            f"| {fmt(med(r['other_load_cores'] for r in rs), 2)} | {fmt(med(r.get('calib_ms') for r in rs), 0)} |"
        )


def cold_table(by, lines):
    def runs(v):
        return [r for r in by.get(v, []) if r.get("ok")]

    passthrough, router = runs(PASSTHROUGH), runs(ROUTER)
    lines.append("| alg | wasm jwt-authn, new token every request: µs/req | − wasm passthrough = **µs per cold token** | target | "
                 "native jwt_authn, new token: µs/req | − router = native µs per token | wasm / native per token |")
    lines.append("|---|---|---|---|---|---|---|")
    for alg, wv, nv, target in COLD:
        w, n = runs(wv), runs(nv)
        wt = med(paired(w, passthrough, lambda a, b: a - b))
        nt = med(paired(n, router, lambda a, b: a - b))
        verdict = "" if wt is None else (" (met)" if wt <= target else " (not met)")
        lines.append(f"| {alg} | {spread([r['cpu_us_per_req'] for r in w])} | **{fmt(wt)}**{verdict} "
                     f"| ≤ {target} | {spread([r['cpu_us_per_req'] for r in n])} | {fmt(nt)} "
                     f"| {fmt(ratio(wt, nt), 1)} |")


def cached_table(by, lines):
    def runs(v):
        return [r for r in by.get(v, []) if r.get("ok")]

    router, passthrough = runs(ROUTER), runs(PASSTHROUGH)
    lines.append("| filter | µs/req, valid pool tokens only, all cached | − router | − wasm passthrough |")
    lines.append("|---|---|---|---|")
    for v, label in (("native_jwt_authn_hits", "native jwt_authn (jwt_cache_config)"), ("wasm_jwt_authn_hits", "wasm jwt-authn")):
        rs = runs(v)
        over_router = med(paired(rs, router, lambda a, b: a - b))
        over_pt = med(paired(rs, passthrough, lambda a, b: a - b)) if v.startswith("wasm") else None
        lines.append(f"| {label} | {spread([r['cpu_us_per_req'] for r in rs])} | {fmt(over_router)} | {fmt(over_pt)} |")


def summary(by, lines):
    """Issue 8's goals against this run."""
    def runs(v):
        return [r for r in by.get(v, []) if r.get("ok")]

    native, router, passthrough = runs(NATIVE), runs(ROUTER), runs(PASSTHROUGH)
    chain = runs("wasm_chain")
    x = med(paired(chain, native, lambda a, b: a / b))
    if x is not None:
        lines.append(f"- Full wasm chain vs native chain (jwt_authn with cache + rbac + local_ratelimit), same workload: "
                     f"**{x:.2f}×** the native chain's Envoy CPU per request (goal ≤ 1.00×: {'met' if x <= 1.0 else 'not met'}); "
                     f"{fmt(med(paired(chain, router, lambda a, b: a / b)), 2)}× router only.")
    cold = []
    for alg, wv, _nv, target in COLD:
        wt = med(paired(runs(wv), passthrough, lambda a, b: a - b))
        if wt is not None:
            cold.append(f"{alg} {wt:.0f} µs (goal ≤ {target}: {'met' if wt <= target else 'not met'})")
    if cold:
        lines.append("- Cold verification in Envoy's V8, per never-seen token: " + "; ".join(cold) + ".")
    hit = med(paired(runs("wasm_jwt_authn_hits"), passthrough, lambda a, b: a - b))
    nhit = med(paired(runs("native_jwt_authn_hits"), router, lambda a, b: a - b))
    if hit is not None:
        lines.append(f"- Cached path: a cache hit in the wasm jwt-authn costs {hit:.1f} µs/req over an empty wasm filter; "
                     f"native jwt_authn with its cache costs {fmt(nhit)} µs/req over router only.")
    everything = [r for rs in by.values() for r in rs if r.get("ok")]
    if everything:
        lines.append(f"- Machine during the run: Envoy's CPU {fmt(med(r['envoy_cpu_share'] for r in everything) * 100, 0)} % busy "
                     f"(median; 100 % = saturated); other users' load {fmt(med(r['other_load_cores'] for r in everything), 2)} cores of "
                     f"{platform_cpus()}. Under other load, Envoy is not saturated and every request costs more CPU "
                     "(fewer requests per event-loop wake-up, cold caches), so absolute µs are inflated; compare variants "
                     "by their ratios within the run.")


def platform_cpus() -> int:
    return os.cpu_count() or 0


def perf_table(by, lines) -> bool:
    rows = []
    for v, rs in by.items():
        rs = [r for r in rs if r.get("ok") and r.get("perf_dso")]
        if not rs:
            continue
        us = med(r["cpu_us_per_req"] for r in rs)
        shares = {k: med(r["perf_dso"][k] for r in rs) for k in ("envoy", "wasm_jit", "kernel", "other")}
        rows.append(f"| {v} | " + " | ".join(f"{shares[k]:.0f} % ({us * shares[k] / 100:.0f})" for k in shares) + " |")
    if not rows:
        return False
    lines.append("| variant | Envoy's own code incl. V8 runtime and hostcalls | wasm code (V8 JIT) | kernel | other (libc, vdso) |")
    lines.append("|---|---|---|---|---|")
    lines.extend(rows)
    return True


def memory_table(by, lines):
    lines.append("| variant | start to /ready ms | RSS MiB idle | RSS MiB after the runs |")
    lines.append("|---|---|---|---|")
    for v, rs in by.items():
        rs = [r for r in rs if r.get("ok")]
        if rs:
            lines.append(f"| {v} | {fmt(med(r['startup_ms'] for r in rs), 0)} | {fmt(med(r['rss_idle_kib'] for r in rs) / 1024)} "
                         f"| {fmt(med(r['rss_after_kib'] for r in rs) / 1024)} |")


def sizes(wasm_dir: Path, lines):
    files = sorted(wasm_dir.glob("*.wasm")) if wasm_dir.exists() else []
    lines.append("| module | bytes | gzip -9 bytes |")
    lines.append("|---|---|---|")
    for f in files:
        data = f.read_bytes()
        lines.append(f"| {f.name} | {len(data):,} | {len(gzip.compress(data, 9)):,} |")
    if not files:
        lines.append("| (none built) | | |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--wasm-dir", required=True)
    ap.add_argument("--envoy", default="envoy")
    ap.add_argument("--command", default="bash envoy-config/bench/run.sh")
    ap.add_argument("--git", default="unknown")
    a = ap.parse_args()
    runs, by = load(Path(a.results))
    meta = json.loads(Path(a.meta).read_text())
    args = meta["args"]
    manifest = json.loads((Path(a.work) / "manifest.json").read_text())
    p = manifest["params"]
    L = []
    L.append("## meshguard load benchmark (real Envoy)")
    L.append("")
    L.append(f"`{a.command}` — {time.strftime('%Y-%m-%d %H:%M')} — commit {a.git}")
    L.append("")
    L.append(f"- Envoy `{envoy_version(a.envoy)}`, `--concurrency 1`, pinned to CPU 0; HTTP/1.1 on 127.0.0.1. "
             f"Load: `{wrk_version()}` (1 thread, {args['conns']} connections, closed loop) and the upstream "
             "(a second Envoy answering 200 with `direct_response`) share CPU 1.")
    L.append(f"- Machine: {cpu_model()}, {platform.system()} {platform.release()}; other users' load during each "
             "run is in the last column (busy cores not spent by the two Envoys or wrk).")
    L.append(f"- {args['rounds']} round(s), variants interleaved (order rotated each round); per run: "
             f"start, smoke check, cache pre-touch (variants with a token cache: each pool token once), "
             f"{args['warm']} s warm-up, **{args['duration']} s measured**, {args['latency_duration']} s latency run.")
    L.append(f"- Workload: {p['pool']:,} distinct valid RS256 tokens (2048-bit), reuse Zipf(s={p['zipf_s']}), "
             f"plus {p['invalid_share'] * 100:.0f} % of requests with one of {p['invalid']} invalid tokens "
             f"({', '.join(f'{k} {v}' for k, v in manifest['invalid_kinds'].items())}); never one repeated token. "
             f"Verified-token caches: native `jwt_cache_size` and wasm `cache.max_entries` = {args['jwt_cache_size']:,}.")
    L.append("- **Envoy CPU µs/req** = (utime+stime of the Envoy process from /proc/<pid>/stat after − before) ÷ "
             "requests Envoy completed in that window (admin `downstream_rq_completed`). Clock ticks are 10 ms, "
             "so each run's CPU time is known to ±10 ms.")
    L.append("- × router / × native chain / µs over router: per round against the reference variant of the same "
             "round, median over rounds. *calib ms*: CPU time of a fixed SHA-256 workload on CPU 0 right before the "
             "measurement; the hypervisor does not report steal time, so a higher value means the machine was slower "
             "(or stolen from) at that moment and the µs/req of that run are inflated alike.")
    L.append(f"- Latency: wrk with {args['latency_conns']} connections, each pausing after every response so that the "
             f"total is about {args['rate']} req/s (wrk2-style constant-rate scheduling is not in Debian); the pause is "
             "not part of the latency; median of the rounds' p50 / p99.")
    L.append("")
    L.append("### Summary")
    L.append("")
    summary(by, L)
    L.append("")
    L.append("### CPU per request")
    L.append("")
    main_table(by, L)
    L.append("")
    L.append("### Cached path (every request a cache hit)")
    L.append("")
    cached_table(by, L)
    L.append("")
    L.append("For the wasm filter, the figure after subtracting the passthrough is the filter's own work on a hit: "
             "finding and hashing the token, the cache lookup, and publishing claims and filter state.")
    L.append("")
    L.append("### Cold verification (every request carries a distinct, never-seen valid token)")
    L.append("")
    cold_table(by, L)
    L.append("")
    L.append("The per-token figure is the whole jwt-authn stage with a cache miss (base64, JSON, claims, signature, "
             "SHA-256 digest and cache insert, filter state) minus an empty wasm filter; the signature check is most of it. "
             "Cold runs send each token once and stop when the list runs out "
             f"(at most {args['cold_tokens']:,} tokens per run).")
    L.append("")
    perf_lines = []
    if perf_table(by, perf_lines):
        L.append("### Where Envoy's CPU goes (perf, cpu-clock samples; in brackets µs/req)")
        L.append("")
        L.extend(perf_lines)
        L.append("")
        L.append("From `--perf`: a separate closed-loop run of each variant under `perf record -e cpu-clock -p <envoy>`, "
                 "split by binary. The Envoy binary is stripped, and V8 is linked into it, so V8's runtime and the "
                 "wasm↔host call transitions count as Envoy's own code.")
        L.append("")
    L.append("### Start-up and memory")
    L.append("")
    memory_table(by, L)
    L.append("")
    L.append("RSS after the runs includes the verified-token caches (10,000 pool tokens after the pre-touch; "
             "cold runs fill them with every token sent).")
    L.append("")
    L.append("### .wasm sizes (release, built by this run)")
    L.append("")
    sizes(Path(a.wasm_dir), L)
    failed = [r for r in runs if not r.get("ok")]
    if meta.get("skipped") or failed:
        L.append("")
        L.append("### Not measured")
        L.append("")
        for v, why in meta.get("skipped", {}).items():
            L.append(f"- {v}: {why}")
        for r in failed:
            L.append(f"- {r['variant']} round {r['round']}: {r.get('error', '?').splitlines()[0][:300]}")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
