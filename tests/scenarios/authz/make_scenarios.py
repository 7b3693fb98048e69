#!/usr/bin/env python3
"""Writes the authz scenario files (jwt-authn -> authz chains) next to this script.

Tokens and the inline JWKS are copied from ../jwt_authn/valid_token.json (ES256, issuer
https://idp.example.com, audience api, exp in 2100, so the scenarios do not depend on a clock):
alice's token from its first request, bob's from its second. Run: python3 make_scenarios.py
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
source = json.loads((HERE.parent / "jwt_authn" / "valid_token.json").read_text())
provider = source["filters"][0]["config"]["providers"]["idp"]
ALICE = source["requests"][0]["headers"]["authorization"]
BOB = dict(source["requests"][1]["headers"])["authorization"]
WEB = "spiffe://cluster.local/ns/shop/sa/web"


def metric(policy, decision):
    return f"meshguard_authz_requests_total_policy=.={policy};.;_decision=.={decision};.;"


def jwt_filter():
    return {
        "name": "jwt_authn",
        "config": {
            "providers": {"idp": {
                "issuer": provider["issuer"],
                "audiences": provider["audiences"],
                "local_jwks": provider["local_jwks"],
                "claim_to_headers": [{"header_name": "x-roles", "claim_name": "roles"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}],
        },
    }


def scenario(name, description, authz, requests):
    return {
        "name": f"authz/{name}",
        "description": description,
        "filters": [jwt_filter(), {"name": "authz", "config": authz}],
        "requests": requests,
    }


def state(decision, policy, rule=None):
    s = {"meshguard.authz.decision": decision, "meshguard.authz.policy": policy}
    if rule:
        s["meshguard.authz.rule"] = rule
    return s


ORDERS = {"policies": [
    {"name": "deny-dev", "action": "DENY",
     "rules": [{"name": "dev-namespace", "from": [{"source": {"namespaces": ["dev"]}}]}]},
    {"name": "orders", "action": "ALLOW", "rules": [{
        "name": "web-alice",
        "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"],
                             "request_principals": ["https://idp.example.com/alice"]}}],
        "to": [{"operation": {"methods": ["GET"], "paths": ["/orders", "/orders/{*}"]}}],
        "when": [{"key": "request.auth.claims[realm_access][roles]", "values": ["r1"]},
                 {"claim": "roles", "contains_all": ["admin", "dev"]},
                 {"claim": "tier", "equals": "gold"}]}]},
]}

DENIED = {"status": 403, "forwarded": False, "body_contains": '{"error":"forbidden"}',
          "response_headers": {"content-type": "application/json"}}

identity = scenario(
    "identity_and_claims",
    "mTLS principal + JWT request principal + Istio and typed claim conditions; DENY first; "
    "claim headers sent by the client are ignored.",
    ORDERS,
    [
        {"name": "workload and user allowed", "path": "/orders/42", "peer": {"spiffe_id": WEB},
         "headers": {"authorization": ALICE},
         "expect": {"status": 200, "forwarded": True, "upstream_headers": {"x-roles": "admin,dev"},
                    "metrics": {metric("orders", "allowed"): 1},
                    "filter_state": state("allow", "orders", "web-alice")}},
        {"name": "no mTLS peer", "path": "/orders/42", "headers": {"authorization": ALICE},
         "expect": {**DENIED, "metrics": {metric("_default", "denied"): 1},
                    "filter_state": state("deny", "_default")}},
        {"name": "another subject", "path": "/orders/42", "peer": {"spiffe_id": WEB},
         "headers": {"authorization": BOB}, "expect": DENIED},
        {"name": "no token, spoofed claim headers", "path": "/orders/42", "peer": {"spiffe_id": WEB},
         "headers": {"x-roles": "admin,dev", "x-jwt-claim-roles": "admin,dev",
                     "x-jwt-payload": '{"sub":"alice","roles":["admin","dev"],"tier":"gold"}'},
         "expect": DENIED},
        {"name": "dev namespace denied first", "path": "/orders/42",
         "peer": {"spiffe_id": "spiffe://cluster.local/ns/dev/sa/web"},
         "headers": {"authorization": ALICE},
         "expect": {**DENIED, "metrics": {metric("deny-dev", "denied"): 1},
                    "filter_state": state("deny", "deny-dev", "dev-namespace")}},
    ],
)

dry_run = scenario(
    "dry_run_and_audit",
    "A dry-run DENY policy records dry_run_deny without enforcing; an AUDIT policy only records.",
    {"policies": [
        {"name": "block-exports", "action": "DENY", "dry_run": True,
         "rules": [{"name": "exports", "to": [{"operation": {"paths": ["/export/{**}"]}}]}]},
        {"name": "audit-admins", "action": "AUDIT",
         "rules": [{"when": [{"claim": "roles", "contains_any": ["admin"]}]}]},
        {"name": "open", "rules": [{}]},
    ]},
    [
        {"name": "would be denied", "path": "/export/all.csv",
         "expect": {"status": 200, "forwarded": True,
                    "metrics": {metric("block-exports", "dry_run_denied"): 1},
                    "filter_state": state("dry_run_deny", "block-exports", "exports")}},
        {"name": "audited admin", "path": "/orders", "headers": {"authorization": ALICE},
         "expect": {"status": 200, "forwarded": True,
                    "metrics": {metric("open", "allowed"): 1, metric("audit-admins", "audited"): 1},
                    "filter_state": {**state("allow", "open", "rules[0]"),
                                     "meshguard.authz.audit": "audit-admins"}}},
    ],
)

responses = scenario(
    "deny_responses",
    "Per-rule deny responses (status, body, headers) and the configured default.",
    {"deny_response": {"body": {"error": "forbidden", "see": "https://docs.example.com/authz"}},
     "policies": [
         {"name": "hide-internal", "action": "DENY", "rules": [
             {"name": "internal", "to": [{"operation": {"paths": ["/internal/{**}"]}}],
              "deny_response": {"status": 404, "body": "no such page",
                                "headers": {"cache-control": "no-store"}}}]},
         {"name": "no-bob", "action": "DENY", "rules": [
             {"from": [{"source": {"request_principals": ["*/bob"]}}]}]},
     ]},
    [
        {"name": "hidden with a 404", "path": "/internal/metrics",
         "expect": {"status": 404, "forwarded": False, "body_contains": "no such page",
                    "response_headers": {"cache-control": "no-store",
                                         "content-type": "text/plain; charset=utf-8"}}},
        {"name": "default deny body", "path": "/a", "headers": {"authorization": BOB},
         "expect": {"status": 403, "forwarded": False,
                    "body_contains": '"see":"https://docs.example.com/authz"'}},
        {"name": "others pass", "path": "/a", "headers": {"authorization": ALICE},
         "expect": {"status": 200, "forwarded": True}},
    ],
)

for name, s in [("identity_and_claims", identity), ("dry_run_and_audit", dry_run),
                ("deny_responses", responses)]:
    (HERE / f"{name}.json").write_text(json.dumps(s, indent=2) + "\n")
