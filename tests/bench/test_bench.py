#!/usr/bin/env python3
"""Unit tests of the benchmark's own logic (no Envoy, no load):

    target/bench/venv/bin/python -m unittest discover -s tests/bench -p 'test_*.py'

They check that every variant renders to a bootstrap whose wasm plugin configs are valid JSON,
that the Zipf workload has the promised shape, and the report's paired arithmetic.
"""

from __future__ import annotations

import collections
import json
import random
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402

import bench  # noqa: E402
import mint  # noqa: E402
import report  # noqa: E402


def fake_work(tmp: Path) -> Path:
    """A work directory with a manifest and a JWKS, as mint.py writes them (no tokens)."""
    work = tmp / "work"
    mint.make_keys(work / "keys")
    keys = {alg: mint.load_private(work / "keys" / name) for alg, name in mint.KEY_FILES.items()}
    (work / "jwks.json").write_text(json.dumps({"keys": [mint.jwk_of(a, k) for a, k in keys.items()]}))
    (work / "manifest.json").write_text(json.dumps({"params": {"issuer": mint.ISSUER, "audience": mint.AUDIENCE}}))
    return work


class RenderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.work = fake_work(Path(cls.tmp.name))
        cls.renderer = bench.Renderer(cls.work, Path(cls.tmp.name) / "wasm", 1234)
        cls.variants = yaml.safe_load((bench.CFG_DIR / "variants.yaml").read_text())["variants"]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_variant_renders_with_router_last(self):
        names = set()
        for v in self.variants:
            self.assertNotIn(v["name"], names, "variant names are unique")
            names.add(v["name"])
            boot = yaml.safe_load(self.renderer.bootstrap(v, 4321))
            hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            filters = hcm["http_filters"]
            self.assertEqual(len(filters), len(v["filters"]) + 1, v["name"])
            self.assertEqual(filters[-1]["name"], "envoy.filters.http.router")
            port = boot["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            self.assertEqual(port["endpoint"]["address"]["socket_address"]["port_value"], 4321)
            self.assertIn(v["workload"], ("pool", "pool_valid", "cold_rs256", "cold_es256", "cold_eddsa"))

    def test_wasm_plugin_configs_are_json_with_the_bench_jwks(self):
        jwks = json.loads((self.work / "jwks.json").read_text())
        seen = 0
        for v in self.variants:
            for f in v["filters"]:
                if not f.startswith("wasm."):
                    continue
                entry = self.renderer.http_filter(f)
                cfg = entry["typed_config"]["config"]
                self.assertEqual(cfg["failure_policy"], "FAIL_CLOSED")
                self.assertEqual(cfg["vm_config"]["runtime"], "envoy.wasm.runtime.v8")
                plugin = json.loads(cfg["configuration"]["value"])
                seen += 1
                jwt = plugin.get("jwt_authn", plugin) if f.startswith("wasm.fused") else plugin
                if f.startswith(("wasm.jwt_authn", "wasm.fused")):
                    inline = jwt["providers"]["bench"]["local_jwks"]["inline_string"]
                    self.assertEqual(json.loads(inline), jwks)
                    self.assertEqual(jwt["cache"]["max_entries"], 1234)
        self.assertGreater(seen, 5)

    def test_native_jwt_cache_size_and_jwks(self):
        native = self.renderer.filters["native"]
        provider = native["jwt_authn_cache"]["typed_config"]["providers"]["bench"]
        self.assertEqual(provider["jwt_cache_config"]["jwt_cache_size"], 1234)
        self.assertNotIn("jwt_cache_config", native["jwt_authn"]["typed_config"]["providers"]["bench"])
        self.assertEqual(len(json.loads(provider["local_jwks"]["inline_string"])["keys"]), 3)

    def test_limits_never_trigger(self):
        bucket = self.renderer.filters["native"]["local_ratelimit"]["typed_config"]["token_bucket"]
        self.assertGreaterEqual(bucket["tokens_per_fill"], 10**8)
        for name in ("ratelimit", "ratelimit_alone"):
            cfg = json.loads((bench.CFG_DIR / "plugins" / f"{name}.json.tmpl").read_text())
            for rule in cfg["rules"]:
                for limit in rule["limits"]:
                    self.assertGreaterEqual(limit["token_bucket"]["tokens_per_fill"], 10**8)


class WorkloadTest(unittest.TestCase):
    def test_zipf_sequence_shape(self):
        n_valid, n_invalid = 1000, 50
        seq = mint.zipf_sequence(random.Random(7), n_valid, n_invalid, 1.0, 0.05, 200_000)
        self.assertTrue(all(0 <= i < n_valid + n_invalid for i in seq))
        invalid = sum(1 for i in seq if i >= n_valid) / len(seq)
        self.assertAlmostEqual(invalid, 0.05, delta=0.005)
        counts = collections.Counter(i for i in seq if i < n_valid)
        harmonic = sum(1.0 / r for r in range(1, n_valid + 1))
        top_share = counts.most_common(1)[0][1] / sum(counts.values())
        self.assertAlmostEqual(top_share, 1.0 / harmonic, delta=0.01)
        self.assertGreater(len(counts), 900, "the tail is reached, not one repeated token")

    def test_seq_stats_counts_first_sightings(self):
        stats = mint.seq_stats([0, 0, 1] + [5] * 9_997, 3)
        self.assertEqual(stats["10000"]["distinct_valid"], 2)
        self.assertEqual(stats["10000"]["first_seen_share"], 0.0002)


class ReportTest(unittest.TestCase):
    def test_paired_uses_the_same_round(self):
        runs = [{"round": 0, "cpu_us_per_req": 30.0}, {"round": 1, "cpu_us_per_req": 60.0}, {"round": 2, "cpu_us_per_req": 9.0}]
        ref = [{"round": 0, "cpu_us_per_req": 10.0}, {"round": 1, "cpu_us_per_req": 20.0}]
        self.assertEqual(report.paired(runs, ref, lambda a, b: a / b), [3.0, 3.0])
        self.assertEqual(report.med(report.paired(runs, ref, lambda a, b: a - b)), 30.0)

    def test_spread_and_fmt(self):
        self.assertEqual(report.spread([3.0, 1.0, 2.0]), "2.0 [1.0–3.0]")
        self.assertEqual(report.spread([]), "–")
        self.assertEqual(report.fmt(None), "–")
        self.assertIsNone(report.ratio(1.0, 0))


if __name__ == "__main__":
    unittest.main()
