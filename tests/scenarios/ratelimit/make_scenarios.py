#!/usr/bin/env python3
"""Writes the ratelimit scenarios (run by the harness and by the real-Envoy runner).

Usage: python3 tests/scenarios/ratelimit/make_scenarios.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def metric(decision, rule):
    return f"meshguard_ratelimit_requests_total_decision=.={decision};.;_rule=.={rule};.;"


def bucket(n, interval="1h"):
    return {"token_bucket": {"max_tokens": n, "tokens_per_fill": n, "fill_interval": interval}}


def write(name, description, config, requests):
    doc = {
        "name": f"ratelimit/{name}",
        "description": description,
        "filters": [{"name": "ratelimit", "config": config}],
        "requests": requests,
    }
    with open(os.path.join(HERE, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


write(
    "per_key_token_bucket",
    "3 requests per hour per API key, shared by every worker; headers on allowed and limited "
    "responses; requests without the key share one counter.",
    {
        "rules": [{"name": "per_key", "descriptors": [{"request_header": "x-api-key"}],
                   "limits": [bucket(3)], "max_keys": 100}],
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "headers_on_allowed": True,
    },
    [
        {"name": "key a within its limit", "method": "GET", "path": "/items",
         "headers": {"x-api-key": "a"}, "repeat": 3,
         "expect": {"status": 200, "forwarded": True,
                    "response_headers": {"ratelimit-policy": "\"per_key\";q=3;w=3600",
                                         "x-ratelimit-limit": "3, 3;w=3600"},
                    "metrics": {metric("allowed", "per_key"): 1},
                    "filter_state": {"meshguard.ratelimit.decision": "allow",
                                     "meshguard.ratelimit.rule": "per_key"}}},
        {"name": "key a over its limit", "method": "GET", "path": "/items",
         "headers": {"x-api-key": "a"},
         "expect": {"status": 429, "forwarded": False, "body_contains": "rate limited",
                    "response_headers": {"ratelimit-policy": "\"per_key\";q=3;w=3600",
                                         "x-ratelimit-remaining": "0"},
                    "metrics": {metric("limited", "per_key"): 1},
                    "filter_state": {"meshguard.ratelimit.decision": "limited",
                                     "meshguard.ratelimit.remaining": "0"}}},
        {"name": "key b has its own bucket", "method": "GET", "path": "/items",
         "headers": {"x-api-key": "b"},
         "expect": {"status": 200, "forwarded": True,
                    "response_headers": {"x-ratelimit-remaining": "2"}}},
        {"name": "no key: one shared counter", "method": "GET", "path": "/items", "repeat": 3,
         "expect": {"status": 200}},
        {"name": "no key: over", "method": "GET", "path": "/items",
         "expect": {"status": 429, "forwarded": False}},
    ],
)

write(
    "failed_logins",
    "Credential stuffing: only 401 answers to POST /login count, per client address; once over, "
    "even a correct password is refused before reaching the app.",
    {
        "rules": [{"name": "login_failures", "match": {"path": "/login", "methods": ["POST"]},
                   "descriptors": ["remote_address"],
                   "limits": [{"sliding_window": {"requests": 3, "window": "15m"}}],
                   "count_on_response_statuses": [401]}],
    },
    [
        {"name": "successful logins are not counted", "method": "POST", "path": "/login",
         "body": "user=a&password=right", "repeat": 4, "response": {"status": 200},
         "expect": {"status": 200, "forwarded": True,
                    "metrics": {"meshguard_ratelimit_responses_counted_total": 0}}},
        {"name": "failed logins are counted", "method": "POST", "path": "/login",
         "body": "user=a&password=wrong", "repeat": 3, "response": {"status": 401},
         "expect": {"status": 401, "forwarded": True,
                    "metrics": {"meshguard_ratelimit_responses_counted_total": 1}}},
        {"name": "then even a good password is refused", "method": "POST", "path": "/login",
         "body": "user=a&password=right", "response": {"status": 200},
         "expect": {"status": 429, "forwarded": False,
                    "metrics": {metric("limited", "login_failures"): 1}}},
        {"name": "other paths are not limited", "method": "GET", "path": "/login",
         "expect": {"status": 200, "forwarded": True}},
    ],
)

write(
    "mtls_principal_and_shadow",
    "Per-workload limit keyed on the mTLS principal (SPIFFE id), next to a shadow rule that only "
    "records.",
    {
        "rules": [
            {"name": "per_workload", "descriptors": ["mtls_principal"], "limits": [bucket(2)],
             "missing_descriptor": "skip"},
            {"name": "global_shadow", "limits": [bucket(1)], "shadow_mode": True},
        ],
    },
    [
        {"name": "first call of web", "method": "GET", "path": "/orders",
         "peer": {"spiffe_id": "spiffe://cluster.local/ns/shop/sa/web"},
         "expect": {"status": 200, "filter_state": {"meshguard.ratelimit.decision": "allow"}}},
        {"name": "second call of web: the shadow rule is over, nothing blocks", "method": "GET",
         "path": "/orders", "peer": {"spiffe_id": "spiffe://cluster.local/ns/shop/sa/web"},
         "expect": {"status": 200, "forwarded": True,
                    "metrics": {metric("shadow_limited", "global_shadow"): 1},
                    "filter_state": {"meshguard.ratelimit.decision": "shadow_limited",
                                     "meshguard.ratelimit.rule": "global_shadow"}}},
        {"name": "third call of web is limited", "method": "GET", "path": "/orders",
         "peer": {"spiffe_id": "spiffe://cluster.local/ns/shop/sa/web"},
         "expect": {"status": 429, "forwarded": False,
                    "filter_state": {"meshguard.ratelimit.rule": "per_workload"}}},
        {"name": "another workload has its own limit", "method": "GET", "path": "/orders",
         "peer": {"spiffe_id": "spiffe://cluster.local/ns/shop/sa/batch"},
         "expect": {"status": 200, "forwarded": True}},
    ],
)
