#!/usr/bin/env python3
"""Envoy load benchmark: measures Envoy CPU time per request for each variant of
envoy-config/bench/variants.yaml, interleaved and repeated, and writes one JSON line per run.

Normally started by `bash envoy-config/bench/run.sh [--quick]`, which installs what is needed,
builds the filters, mints the tokens (mint.py) and calls report.py afterwards.

Per variant and round:
  1. render the bootstrap (bootstrap.yaml + the variant's filters) and start Envoy
     (`--concurrency 1`, pinned to CPU 0); check a valid and a token-less request;
  2. pre-touch (only variants with a token cache): every pool token once;
  3. warm up with wrk on another sample of the workload;
  4. measure: read Envoy's utime+stime from /proc/<pid>/stat, run wrk (closed loop, --conns
     connections, --duration seconds, pinned to CPU 1), read it again;
     CPU µs/request = CPU time delta / requests Envoy completed (admin stats delta);
  5. latency: wrk paced at about --rate requests/s (fixed connections, fixed pause between a
     response and the next request), p50/p99 from wrk;
  6. RSS from /proc/<pid>/status, stop Envoy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import string
import subprocess
import sys
import time
from pathlib import Path

import yaml

import procs

REPO = Path(__file__).resolve().parents[2]
CFG_DIR = REPO / "envoy-config" / "bench"
LUA = Path(__file__).resolve().parent / "load.lua"
ENVOY_CPU = 0
LOAD_CPU = 1
STAT_REGEX = r"^http\.bench\.(downstream_rq_(completed|[1-5]xx)|jwt_authn\.)|meshguard|^wasm\."
COLD_WARM_TOKENS = 500  # the last lines of a cold file: warm-up only, never measured


def substitute(text: str, values: dict) -> str:
    return string.Template(text).substitute(values)


class Renderer:
    """Builds each variant's bootstrap from the templates in envoy-config/bench/."""

    def __init__(self, work: Path, wasm_dir: Path, jwt_cache_size: int):
        manifest = json.loads((work / "manifest.json").read_text())
        jwks = (work / "jwks.json").read_text().strip()
        self.values = {
            "JWKS_JSON_STR": json.dumps(jwks),
            "ISSUER": manifest["params"]["issuer"],
            "AUDIENCE": manifest["params"]["audience"],
            "JWT_CACHE_SIZE": str(jwt_cache_size),
        }
        # safe_substitute: the wasm template's own ${NAME}/${WASM} are filled per filter later.
        text = string.Template((CFG_DIR / "filters.yaml").read_text()).safe_substitute(self.values)
        self.filters = yaml.safe_load(text)
        if "${" in yaml.safe_dump(self.filters["native"]):
            raise ValueError("filters.yaml: unknown placeholder in a native filter")
        self.wasm_dir = wasm_dir

    def wasm_path(self, name: str) -> Path:
        return self.wasm_dir / f"meshguard_{name}.wasm"

    def missing(self, variant: dict) -> list[str]:
        """The .wasm files a variant needs that are not built."""
        out = []
        for f in variant["filters"]:
            if f.startswith("wasm."):
                name = f[len("wasm.") :].split(":")[0]
                if not self.wasm_path(name).exists():
                    out.append(str(self.wasm_path(name)))
        return out

    def http_filter(self, spec: str) -> dict:
        kind, _, rest = spec.partition(".")
        if kind == "native":
            return copy.deepcopy(self.filters["native"][rest])
        if kind != "wasm":
            raise ValueError(f"unknown filter {spec}")
        name, _, config_name = rest.partition(":")
        config_text = (CFG_DIR / "plugins" / f"{config_name or name}.json.tmpl").read_text()
        plugin_config = substitute(config_text, self.values).strip()
        entry = yaml.safe_load(substitute(
            yaml.safe_dump(self.filters["wasm_template"]),
            {"NAME": name, "WASM": str(self.wasm_path(name))},
        ))
        entry["typed_config"]["config"]["configuration"]["value"] = plugin_config
        return entry

    def bootstrap(self, variant: dict, upstream_port: int) -> str:
        boot = yaml.safe_load(substitute((CFG_DIR / "bootstrap.yaml").read_text(), {"UPSTREAM_PORT": str(upstream_port)}))
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        router = hcm["http_filters"]
        hcm["http_filters"] = [self.http_filter(f) for f in variant["filters"]] + router
        return yaml.safe_dump(boot, sort_keys=False)


def first_line(path: Path) -> str:
    with open(path) as f:
        return f.readline().strip()


def smoke(envoy: procs.Envoy, token: str) -> dict:
    url = f"http://127.0.0.1:{envoy.port}/bench"
    valid, _ = procs.http_get(url, {"Authorization": f"Bearer {token}"})
    missing, _ = procs.http_get(url)
    return {"valid": valid, "missing": missing}


def measure(envoy: procs.Envoy, upstream: procs.Envoy, url: str, args, env: dict, out: Path) -> dict:
    """One measured wrk run with CPU accounting around it."""
    before = envoy.counters(STAT_REGEX)
    e0, u0, m0 = procs.cpu_ticks(envoy.pid), procs.cpu_ticks(upstream.pid), procs.machine_busy_ticks()
    t0 = time.monotonic()
    wrk = procs.run_wrk(url, args.duration, args.conns, env, out, LOAD_CPU, LUA)
    wall = time.monotonic() - t0
    e1, u1, m1 = procs.cpu_ticks(envoy.pid), procs.cpu_ticks(upstream.pid), procs.machine_busy_ticks()
    after = envoy.counters(STAT_REGEX)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    completed = delta.get("http.bench.downstream_rq_completed", 0)
    envoy_s = (e1 - e0) / procs.CLK_TCK
    upstream_s = (u1 - u0) / procs.CLK_TCK
    machine_s = (m1 - m0) / procs.CLK_TCK
    return {
        "requests": completed,
        "wrk_requests": wrk.summary["requests"],
        "ran_out": wrk.summary["ran_out"],
        "wall_s": round(wall, 3),
        "rps": round(completed / wall, 1) if wall > 0 else 0,
        "envoy_cpu_s": envoy_s,
        "envoy_cpu_share": round(envoy_s / wall, 3) if wall > 0 else 0,
        "cpu_us_per_req": round(envoy_s * 1e6 / completed, 2) if completed else None,
        "upstream_cpu_s": upstream_s,
        "wrk_cpu_s": round(wrk.cpu_s, 3),
        # Busy CPU of the machine not spent by this Envoy, the upstream or wrk (other users).
        "other_load_cores": round(max(0.0, machine_s - envoy_s - upstream_s - wrk.cpu_s) / wall, 2) if wall > 0 else 0,
        "status": {k.rsplit("_", 1)[-1]: v for k, v in delta.items() if k.startswith("http.bench.downstream_rq_") and k.endswith("xx")},
        "counters": {k: v for k, v in delta.items() if not k.startswith("http.bench.downstream_rq_")},
        "wrk_errors": wrk.summary["errors"],
    }


def run_variant(variant: dict, rnd: int, renderer: Renderer, upstream: procs.Envoy, args, run_dir: Path) -> dict:
    name = variant["name"]
    work = Path(args.work)
    vdir = run_dir / f"{name}.r{rnd}"
    vdir.mkdir(parents=True, exist_ok=True)
    config = vdir / "envoy.yaml"
    config.write_text(renderer.bootstrap(variant, upstream.port))
    rec = {"variant": name, "title": variant["title"], "round": rnd, "ok": False}
    envoy = procs.Envoy(args.envoy, config, vdir, ENVOY_CPU, "envoy")
    try:
        envoy.start()
        rec["startup_ms"] = round(envoy.startup_ms, 1)
        rec["rss_idle_kib"] = procs.rss_kib(envoy.pid)
        url = f"http://127.0.0.1:{envoy.port}/bench"
        pool = str(work / "pool.txt")
        rec["smoke"] = smoke(envoy, first_line(work / "pool.txt"))
        if rec["smoke"] != variant["expect"]:
            raise RuntimeError(f"smoke check: got {rec['smoke']}, expected {variant['expect']}")
        if variant.get("pretouch"):
            t0 = time.monotonic()
            procs.run_wrk(url, args.pretouch_max, args.conns, {"MG_TOKENS": pool}, vdir / "pretouch.json", LOAD_CPU, LUA)
            rec["pretouch_s"] = round(time.monotonic() - t0, 1)
        workload = variant["workload"]
        if workload in ("pool", "pool_valid"):
            suffix = "_valid" if workload == "pool_valid" else ""
            warm_env = {"MG_TOKENS": pool, "MG_SEQ": str(work / f"seq_warm{suffix}.txt")}
            meas_env = {"MG_TOKENS": pool, "MG_SEQ": str(work / f"seq_measure{suffix}.txt")}
        else:
            cold = work / f"{workload}.txt"
            lines = cold.read_text().split()
            warm_file = vdir / "cold_warm.txt"
            warm_file.write_text("\n".join(lines[-COLD_WARM_TOKENS:]) + "\n")
            limit = min(args.cold_tokens, len(lines) - COLD_WARM_TOKENS)
            warm_env = {"MG_TOKENS": str(warm_file)}
            meas_env = {"MG_TOKENS": str(cold), "MG_LIMIT": str(limit)}
            rec["cold_tokens"] = limit
        procs.run_wrk(url, args.warm, args.conns, warm_env, vdir / "warm.json", LOAD_CPU, LUA)
        rec["calib_ms"] = procs.calibrate(ENVOY_CPU, sys.executable)
        rec.update(measure(envoy, upstream, url, args, meas_env, vdir / "measure.json"))
        if variant.get("latency") and args.latency_duration > 0:
            pace_ms = max(1, round(args.latency_conns * 1000 / args.rate))
            lat_env = dict(meas_env, MG_PACE_MS=str(pace_ms))
            lat = procs.run_wrk(url, args.latency_duration, args.latency_conns, lat_env, vdir / "latency.json", LOAD_CPU, LUA)
            rec["latency"] = {
                "target_rps": args.rate,
                "conns": args.latency_conns,
                "pace_ms": pace_ms,
                "achieved_rps": round(lat.summary["requests"] / (lat.summary["duration_us"] / 1e6), 1),
                "us": lat.summary["latency_us"],
            }
        if args.perf:
            # A separate closed-loop run under `perf record`, so the measured run is not disturbed.
            perf = procs.perf_start(envoy.pid, vdir / "perf.data")
            time.sleep(0.2)
            procs.run_wrk(url, max(2, args.duration // 2), args.conns, meas_env, vdir / "perf-load.json", LOAD_CPU, LUA)
            rec["perf_dso"] = procs.perf_stop(perf, vdir / "perf.data")
            (vdir / "perf.data").unlink(missing_ok=True)
        rec["rss_after_kib"] = procs.rss_kib(envoy.pid)
        if not envoy.alive():
            raise RuntimeError("Envoy died during the run")
        rec["ok"] = True
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        rec["error"] = str(err)[:3000]
        rec["envoy_log_tail"] = envoy.tail_log()
    finally:
        envoy.stop()
    return rec


def validate(variants: list[dict], renderer: Renderer, args, run_dir: Path) -> int:
    """`envoy --mode validate` on every rendered bootstrap (upstream port 1: never contacted)."""
    failed = 0
    for v in variants:
        config = run_dir / f"{v['name']}.yaml"
        config.write_text(renderer.bootstrap(v, 1))
        res = subprocess.run([args.envoy, "--mode", "validate", "-c", str(config), "-l", "error"],
                             capture_output=True, text=True, timeout=120)
        ok = res.returncode == 0
        failed += not ok
        print(f"bench: validate {v['name']:<22} {'OK' if ok else 'FAILED'}", file=sys.stderr)
        if not ok:
            print((res.stdout + res.stderr)[-2000:], file=sys.stderr)
    return 1 if failed else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", required=True, help="Envoy 1.40 binary")
    ap.add_argument("--work", default=str(REPO / "target/bench/work"), help="minted tokens (mint.py --out)")
    ap.add_argument("--wasm-dir", default=str(REPO / "target/wasm32-wasip1/release"))
    ap.add_argument("--out", default=str(REPO / "target/bench"), help="results directory")
    ap.add_argument("--quick", action="store_true", help="1 round, 2 s per measurement (smoke test)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds of each measured closed-loop run")
    ap.add_argument("--warm", type=int, help="seconds of warm-up")
    ap.add_argument("--latency-duration", type=int, help="seconds of the paced latency run (0 = skip)")
    ap.add_argument("--pretouch-max", type=int, default=60, help="upper bound (s) of the cache pre-touch")
    ap.add_argument("--conns", type=int, default=32, help="connections of the closed-loop runs")
    ap.add_argument("--rate", type=int, default=500, help="target request rate of the latency run")
    ap.add_argument("--latency-conns", type=int, default=16)
    ap.add_argument("--cold-tokens", type=int, help="distinct tokens per cold run (upper bound)")
    ap.add_argument("--jwt-cache-size", type=int, default=10_000)
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness of Envoy, upstream and wrk (default -10 when root; 0 = leave as is)")
    ap.add_argument("--validate-only", action="store_true",
                    help="render every variant's bootstrap and check it with `envoy --mode validate`, no load")
    ap.add_argument("--perf", action="store_true",
                    help="after the measurement, profile a second run with `perf record` (where Envoy's CPU goes)")
    ap.add_argument("--variants", default=str(CFG_DIR / "variants.yaml"), help="variants file")
    ap.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    args = ap.parse_args(argv)
    quick = {"rounds": 1, "duration": 2, "warm": 1, "latency_duration": 1, "cold_tokens": 4_000}
    full = {"rounds": 3, "duration": 10, "warm": 2, "latency_duration": 5, "cold_tokens": 29_500}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    procs.NICE = args.nice if os.geteuid() == 0 else 0
    variants = yaml.safe_load(Path(args.variants).read_text())["variants"]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {v["name"] for v in variants}
        if unknown:
            print(f"bench: unknown variants {sorted(unknown)}", file=sys.stderr)
            return 2
        variants = [v for v in variants if v["name"] in wanted]
    renderer = Renderer(Path(args.work), Path(args.wasm_dir), args.jwt_cache_size)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    run_dir = out / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    results = out / f"results-{stamp}.jsonl"
    meta = {"started": stamp, "args": vars(args), "skipped": {}}
    runnable = []
    for v in variants:
        missing = renderer.missing(v)
        if missing:
            meta["skipped"][v["name"]] = "not built: " + ", ".join(missing)
            print(f"bench: skipping {v['name']} (not built: {', '.join(missing)})", file=sys.stderr)
        else:
            runnable.append(v)
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    if args.validate_only:
        return validate(runnable, renderer, args, run_dir)

    up_cfg = run_dir / "upstream.yaml"
    up_cfg.write_text((CFG_DIR / "upstream.yaml").read_text())
    upstream = procs.Envoy(args.envoy, up_cfg, run_dir, LOAD_CPU, "upstream")
    upstream.start()
    try:
        with open(results, "w") as res:
            for rnd in range(args.rounds):
                shift = rnd % max(1, len(runnable))
                order = runnable[shift:] + runnable[:shift]
                for v in order:
                    t0 = time.monotonic()
                    rec = run_variant(v, rnd, renderer, upstream, args, run_dir)
                    res.write(json.dumps(rec) + "\n")
                    res.flush()
                    took = time.monotonic() - t0
                    if rec["ok"]:
                        print(f"bench: r{rnd} {v['name']:<22} {rec['cpu_us_per_req']:>9} µs/req  "
                              f"{rec['rps']:>9} req/s  cpu {rec['envoy_cpu_share']:.2f}  other {rec['other_load_cores']:.2f}  ({took:.0f}s)",
                              file=sys.stderr)
                    else:
                        print(f"bench: r{rnd} {v['name']:<22} FAILED: {rec['error'][:300]}", file=sys.stderr)
                if not upstream.alive():
                    print("bench: the upstream Envoy died", file=sys.stderr)
                    return 1
    finally:
        upstream.stop()
    (out / "results-latest.jsonl").write_text(results.read_text())
    (out / "meta-latest.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"bench: results in {results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
