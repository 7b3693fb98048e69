#!/usr/bin/env python3
"""Writes the audit scenario files next to this script (run by the harness and replayed in a real
Envoy by tests/e2e.rs).

Tokens and the inline JWKS are copied from ../jwt_authn/valid_token.json (ES256, issuer
https://idp.example.com, audience api, exp in 2100): alice's token from its first request, bob's
from its second. Run: python3 make_scenarios.py

Only outcomes that hold on both hosts are expected: the record itself carries timestamps and
generated ids, so it is checked through the metrics here and in detail by tests/audit.rs.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
source = json.loads((HERE.parent / "jwt_authn" / "valid_token.json").read_text())
provider = source["filters"][0]["config"]["providers"]["idp"]
ALICE = source["requests"][0]["headers"]["authorization"]
BOB = dict(source["requests"][1]["headers"])["authorization"]
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
AUDIT_HEADERS = [
    "x-meshguard-subject", "x-meshguard-issuer", "x-meshguard-peer",
    "x-meshguard-authz-decision", "x-meshguard-authz-policy", "x-meshguard-ratelimit",
]


def requests_metric(decision, status_class):
    return (f"meshguard_audit_requests_total_decision=.={decision};.;"
            f"_status_class=.={status_class};.;")


EMITTED = "meshguard_audit_records_total_outcome=.=emitted;.;"


def spoofed():
    return [[h, "spoofed"] for h in AUDIT_HEADERS]


def write(name, scenario):
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(scenario, indent=2) + "\n")
    print(f"wrote {path.name}")


write("ids_and_headers", {
    "name": "audit/ids_and_headers",
    "description": "The audit filter alone: request id and trace context kept or generated, "
                   "B3 understood, spoofed audit headers removed, request id echoed.",
    "filters": [{"name": "audit", "config": {}}],
    "requests": [
        {
            "name": "valid ids propagated unchanged, spoofed audit headers removed",
            "path": "/orders?page=2",
            "headers": [["x-request-id", "scenario-rid-1"], ["traceparent", TP],
                        ["tracestate", "rojo=00f067aa0ba902b7"]] + spoofed(),
            "expect": {
                "status": 200, "forwarded": True,
                "upstream_headers": {"x-request-id": "scenario-rid-1", "traceparent": TP,
                                     "tracestate": "rojo=00f067aa0ba902b7"},
                "upstream_headers_absent": AUDIT_HEADERS,
                "response_headers": {"x-request-id": "scenario-rid-1"},
                "metrics": {requests_metric("allow", "2xx"): 1, EMITTED: 1},
            },
        },
        {
            "name": "no trace context: a new trace is started",
            "path": "/",
            "headers": [["tracestate", "orphan=1"]],
            "expect": {
                "status": 200, "forwarded": True,
                "upstream_headers_present": ["x-request-id", "traceparent"],
                "upstream_headers_absent": ["tracestate"],
            },
        },
        {
            "name": "malformed traceparent: replaced, tracestate dropped",
            "path": "/",
            "headers": [["traceparent", TP.upper()], ["tracestate", "rojo=1"]],
            "expect": {
                "status": 200,
                "upstream_headers_present": ["traceparent"],
                "upstream_headers_absent": ["tracestate"],
            },
        },
        {
            "name": "B3 single header gives the traceparent",
            "path": "/",
            "headers": [["b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"]],
            "expect": {
                "status": 200,
                "upstream_headers": {
                    "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
                    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
                },
            },
        },
        {
            "name": "upstream error is an allowed 5xx",
            "path": "/fail",
            "headers": [["x-request-id", "scenario-rid-5xx"]],
            "response": {"status": 503},
            "expect": {
                "status": 503, "forwarded": True,
                "response_headers": {"x-request-id": "scenario-rid-5xx"},
                "metrics": {requests_metric("allow", "5xx"): 1, EMITTED: 1},
            },
        },
    ],
})

write("full_chain", {
    "name": "audit/full_chain",
    "description": "jwt-authn -> authz -> ratelimit -> audit: one record per request (allowed, "
                   "401, 403, 429, upstream 503), audit headers from the hand-off only.",
    "filters": [
        {"name": "jwt_authn", "config": {
            "providers": {"idp": {
                "issuer": provider["issuer"],
                "audiences": provider["audiences"],
                "local_jwks": provider["local_jwks"],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        }},
        {"name": "authz", "config": {"policies": [{
            "name": "orders",
            "action": "ALLOW",
            "rules": [{"name": "read", "to": [{"operation": {
                "methods": ["GET"], "paths": ["/orders", "/orders/{*}"]}}]}],
        }]}},
        {"name": "ratelimit", "config": {"rules": [{
            "name": "per-subject",
            "descriptors": [{"jwt_claim": "sub"}],
            "limits": [{"token_bucket": {"max_tokens": 2, "tokens_per_fill": 2,
                                         "fill_interval": "1h"}}],
        }]}},
        {"name": "audit", "config": {}},
    ],
    "requests": [
        {
            "name": "allowed: audit headers from filter state, spoofed copies removed",
            "path": "/orders",
            "headers": [["authorization", ALICE], ["x-request-id", "chain-rid-1"]] + spoofed(),
            "expect": {
                "status": 200, "forwarded": True,
                "upstream_headers": {
                    "x-meshguard-subject": "alice",
                    "x-meshguard-issuer": "https://idp.example.com",
                    "x-meshguard-authz-decision": "allow",
                    "x-meshguard-authz-policy": "orders",
                    "x-meshguard-ratelimit": "allow; remaining=1",
                },
                "upstream_headers_absent": ["x-meshguard-peer"],
                "response_headers": {"x-request-id": "chain-rid-1"},
                "metrics": {requests_metric("allow", "2xx"): 1, EMITTED: 1},
            },
        },
        {
            "name": "401 from jwt-authn is recorded",
            "path": "/orders",
            "expect": {"status": 401, "forwarded": False,
                       "metrics": {requests_metric("deny", "4xx"): 1, EMITTED: 1}},
        },
        {
            "name": "403 from authz is recorded",
            "path": "/admin",
            "headers": [["authorization", BOB]],
            "expect": {"status": 403, "forwarded": False,
                       "metrics": {requests_metric("deny", "4xx"): 1, EMITTED: 1}},
        },
        {
            "name": "429 from ratelimit is recorded",
            "path": "/orders/1",
            "headers": [["authorization", BOB]],
            "repeat": 3,
            "expect_last": {"status": 429, "forwarded": False,
                            "metrics": {requests_metric("deny", "4xx"): 1, EMITTED: 1}},
        },
        {
            "name": "upstream 503 after every filter admitted it",
            "path": "/orders/2",
            "headers": [["authorization", ALICE]],
            "response": {"status": 503},
            "expect": {"status": 503, "forwarded": True,
                       "metrics": {requests_metric("allow", "5xx"): 1, EMITTED: 1}},
        },
    ],
})
