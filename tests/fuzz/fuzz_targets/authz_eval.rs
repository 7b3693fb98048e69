//! Fuzzes the authz evaluator against a simple reference evaluator.
//!
//! Random policies (ALLOW/DENY, rules with `to.operation` methods / not_methods / paths /
//! not_paths, `from.source` principals / namespaces / ip_blocks and their `not_*`, and `when`
//! claim equality and `request.headers[x-team]` values / not_values) are generated from
//! `arbitrary`, rendered to the JSON
//! config, compiled by `Authorizer::parse` (what `on_configure` runs) and evaluated for a random
//! request. The reference below implements Istio's semantics directly on the generated values:
//! any matching DENY policy denies; else with no ALLOW policy the request is allowed; else it is
//! allowed iff an ALLOW policy matches. A rule matches when every `to` (any of its operations)
//! and every `when` condition matches; an operation matches when each non-empty field matches
//! (`methods`/`paths`: any value; `not_*`: none). Paths match the `:path` without its query.
//!
//! Sources: principals match the peer's SPIFFE id with `spiffe://` in front of every pattern
//! but `*` (present); the namespace is `<ns>` of `spiffe://<td>/ns/<ns>/…`; IP blocks are CIDRs
//! (a bare address = one host) on `source.address` of the same family; an absent attribute
//! matches no value and is excluded by no `not_` value. Headers: repeated lines are joined with
//! `,`; `*` = present (even empty), `x*` = prefix.
//!
//! Only the subset above is compared; the rest of the language (request principals, ports,
//! hosts, scopes, dry-run, AUDIT) is exercised for panics by `config_authz`.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshguard_core::config::FilterConfig;
use meshguard_core::policy::{Authorizer, Jwt, Outcome, Request};
use serde_json::{json, Value};

#[path = "authz_eval_ref.rs"]
mod reference;
use reference::*;

#[derive(Debug, Arbitrary)]
struct Input {
    policies: Vec<PolicyIn>,
    method: u8,
    path: u8,
    /// 0: no token; 1: token without `role`; 2/3: role admin/reader; 4: `role: 1`.
    token: u8,
    peer: u8,
    ip: u8,
    team: u8,
}

#[derive(Debug, Arbitrary)]
struct PolicyIn {
    deny: bool,
    rules: Vec<RuleIn>,
}

#[derive(Debug, Arbitrary)]
struct RuleIn {
    to: Vec<OpIn>,
    from: Vec<SourceIn>,
    when: Vec<u8>,
    headers: Vec<HeaderIn>,
}

#[derive(Debug, Arbitrary)]
struct SourceIn {
    principals: Vec<u8>,
    not_principals: Vec<u8>,
    namespaces: Vec<u8>,
    not_namespaces: Vec<u8>,
    ip_blocks: Vec<u8>,
    not_ip_blocks: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct HeaderIn {
    values: Vec<u8>,
    not_values: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct OpIn {
    methods: Vec<u8>,
    not_methods: Vec<u8>,
    paths: Vec<u8>,
    not_paths: Vec<u8>,
}

fn pick<T: Copy>(items: &[T], i: u8) -> T {
    items[usize::from(i) % items.len()]
}

fn take<'a, T>(v: &'a [T], n: usize) -> &'a [T] {
    &v[..v.len().min(n)]
}

struct Req<'a> {
    method: &'a str,
    url_path: &'a str,
    role: Option<Value>,
    has_token: bool,
    peer: Option<&'a str>,
    ip: Option<IpAddr>,
    /// `x-team` lines joined with `,`, if any.
    team: Option<String>,
}

/// The fields of a source, each capped at 3 values: (name, values, pattern table index).
fn source_fields(src: &SourceIn) -> [(&'static str, &[u8]); 6] {
    [
        ("principals", take(&src.principals, 3)),
        ("not_principals", take(&src.not_principals, 3)),
        ("namespaces", take(&src.namespaces, 3)),
        ("not_namespaces", take(&src.not_namespaces, 3)),
        ("ip_blocks", take(&src.ip_blocks, 3)),
        ("not_ip_blocks", take(&src.not_ip_blocks, 3)),
    ]
}

fn source_is_empty(src: &SourceIn) -> bool {
    source_fields(src).iter().all(|(_, v)| v.is_empty())
}

fn source_json(src: &SourceIn) -> Value {
    let mut o = serde_json::Map::new();
    for (name, v) in source_fields(src) {
        if v.is_empty() {
            continue;
        }
        let values: Vec<&str> = v
            .iter()
            .map(|&i| match name {
                "principals" | "not_principals" => pick(&PRINCIPALS, i).0,
                "namespaces" | "not_namespaces" => pick(&NAMESPACES, i).0,
                _ => pick(&IP_BLOCKS, i).0,
            })
            .collect();
        o.insert(name.to_owned(), json!(values));
    }
    json!({ "source": o })
}

fn source_matches(src: &SourceIn, req: &Req<'_>) -> bool {
    let principal = |i: &u8| req.peer.is_some_and(|p| pick(&PRINCIPALS, *i).1.matches(p));
    let ns = req.peer.and_then(namespace_of);
    let namespace = |i: &u8| ns.is_some_and(|n| pick(&NAMESPACES, *i).1.matches(n));
    let ip = |i: &u8| {
        let (_, net, len) = pick(&IP_BLOCKS, *i);
        req.ip.is_some_and(|ip| in_block(ip, (net, len)))
    };
    let [(_, ps), (_, nps), (_, ns_), (_, nns), (_, ips), (_, nips)] = source_fields(src);
    (ps.is_empty() || ps.iter().any(principal))
        && !nps.iter().any(principal)
        && (ns_.is_empty() || ns_.iter().any(namespace))
        && !nns.iter().any(namespace)
        && (ips.is_empty() || ips.iter().any(ip))
        && !nips.iter().any(ip)
}

fn header_json(h: &HeaderIn) -> Option<Value> {
    let vals = |v: &[u8]| -> Vec<&str> {
        take(v, 3)
            .iter()
            .map(|&i| pick(&TEAM_PATTERNS, i).0)
            .collect()
    };
    let (values, not_values) = (vals(&h.values), vals(&h.not_values));
    if values.is_empty() && not_values.is_empty() {
        return None;
    }
    let mut o = serde_json::Map::new();
    o.insert("key".into(), json!("request.headers[x-team]"));
    if !values.is_empty() {
        o.insert("values".into(), json!(values));
    }
    if !not_values.is_empty() {
        o.insert("not_values".into(), json!(not_values));
    }
    Some(Value::Object(o))
}

fn header_matches(h: &HeaderIn, req: &Req<'_>) -> bool {
    let hit = |i: &u8| {
        req.team.as_deref().is_some_and(|t| {
            pick(&TEAM_PATTERNS, *i).1.matches(t) || pick(&TEAM_PATTERNS, *i).0 == "*"
        })
    };
    let (values, not_values) = (take(&h.values, 3), take(&h.not_values, 3));
    if values.is_empty() && not_values.is_empty() {
        return true; // not rendered
    }
    (values.is_empty() || values.iter().any(hit)) && !not_values.iter().any(hit)
}

fn op_json(op: &OpIn) -> Value {
    let m =
        |v: &[u8]| -> Vec<&str> { take(v, 3).iter().map(|&i| pick(&METHODS[..3], i)).collect() };
    let p = |v: &[u8]| -> Vec<&str> { take(v, 3).iter().map(|&i| pick(&PATTERNS, i).0).collect() };
    let mut o = serde_json::Map::new();
    for (name, value) in [
        ("methods", m(&op.methods)),
        ("not_methods", m(&op.not_methods)),
        ("paths", p(&op.paths)),
        ("not_paths", p(&op.not_paths)),
    ] {
        if !value.is_empty() {
            o.insert(name.to_owned(), json!(value));
        }
    }
    json!({ "operation": o })
}

fn op_matches(op: &OpIn, req: &Req<'_>) -> bool {
    let method = |i: &u8| pick(&METHODS[..3], *i) == req.method;
    let path = |i: &u8| pick(&PATTERNS, *i).1.matches(req.url_path);
    let (ms, nms, ps, nps) = (
        take(&op.methods, 3),
        take(&op.not_methods, 3),
        take(&op.paths, 3),
        take(&op.not_paths, 3),
    );
    (ms.is_empty() || ms.iter().any(method))
        && !nms.iter().any(method)
        && (ps.is_empty() || ps.iter().any(path))
        && !nps.iter().any(path)
}

fn rule_matches(rule: &RuleIn, req: &Req<'_>) -> bool {
    let to = take(&rule.to, 2);
    let when = take(&rule.when, 2);
    let from: Vec<&SourceIn> = take(&rule.from, 2)
        .iter()
        .filter(|s| !source_is_empty(s))
        .collect();
    (to.is_empty() || to.iter().any(|op| op_matches(op, req)))
        && (from.is_empty() || from.iter().any(|s| source_matches(s, req)))
        && take(&rule.headers, 2)
            .iter()
            .all(|h| header_matches(h, req))
        && when
            .iter()
            .all(|&r| req.has_token && req.role.as_ref() == Some(&Value::from(pick(&ROLES, r))))
}

fuzz_target!(|input: Input| {
    let policies = take(&input.policies, 4);
    // No policies at all is refused by design (`allow_all` / `deny_all` must be explicit).
    if policies.is_empty() {
        return;
    }
    let mut json_policies = Vec::new();
    for (pi, p) in policies.iter().enumerate() {
        let rules = take(&p.rules, 3);
        if rules.is_empty() {
            return;
        }
        let rules: Vec<Value> = rules
            .iter()
            .enumerate()
            .map(|(ri, r)| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), json!(format!("r{ri}")));
                let to: Vec<Value> = take(&r.to, 2).iter().map(op_json).collect();
                if !to.is_empty() {
                    o.insert("to".into(), json!(to));
                }
                let from: Vec<Value> = take(&r.from, 2)
                    .iter()
                    .filter(|s| !source_is_empty(s))
                    .map(source_json)
                    .collect();
                if !from.is_empty() {
                    o.insert("from".into(), json!(from));
                }
                let when: Vec<Value> = take(&r.when, 2)
                    .iter()
                    .map(|&i| json!({ "claim": "role", "equals": pick(&ROLES, i) }))
                    .chain(take(&r.headers, 2).iter().filter_map(header_json))
                    .collect();
                if !when.is_empty() {
                    o.insert("when".into(), json!(when));
                }
                Value::Object(o)
            })
            .collect();
        json_policies.push(json!({
            "name": format!("p{pi}"),
            "action": if p.deny { "DENY" } else { "ALLOW" },
            "rules": rules,
        }));
    }
    let config = json!({ "policies": json_policies }).to_string();
    let authorizer = match Authorizer::parse(config.as_bytes()) {
        Ok(a) => a,
        // The generator only writes valid configs (an operation with no field is the one shape
        // the compiler may refuse); anything else refused is a finding.
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("operation"),
                "valid config refused: {msg}\n{config}"
            );
            return;
        }
    };

    let method = pick(&METHODS, input.method);
    let path = pick(&PATHS, input.path);
    let payload = match input.token % 5 {
        0 | 1 => json!({}),
        2 => json!({ "role": "admin" }),
        3 => json!({ "role": "reader" }),
        _ => json!({ "role": 1 }),
    };
    let has_token = input.token % 5 != 0;
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
    ];
    let team_lines = pick(&TEAMS, input.team);
    for line in team_lines {
        headers.push(("x-team".into(), line.as_bytes().to_vec()));
    }
    let peer = pick(&PEERS, input.peer);
    let ip = pick(&IPS, input.ip).and_then(|s| s.parse::<IpAddr>().ok());
    let mut request = Request::from_headers(&headers);
    request.peer_identity = peer;
    request.source_ip = ip;
    if has_token {
        request.jwt = Some(Jwt {
            issuer: None,
            subject: None,
            payload: &payload,
        });
    }
    let decision = authorizer.evaluate(&request);

    let req = Req {
        method,
        url_path: path.split('?').next().unwrap_or(path),
        role: payload.get("role").cloned(),
        has_token,
        peer,
        ip,
        team: (!team_lines.is_empty()).then(|| team_lines.join(",")),
    };
    let matched = |deny: bool| {
        policies
            .iter()
            .filter(|p| p.deny == deny)
            .any(|p| take(&p.rules, 3).iter().any(|r| rule_matches(r, &req)))
    };
    let expected_allow = if matched(true) {
        false
    } else if policies.iter().all(|p| p.deny) {
        true
    } else {
        matched(false)
    };
    let got_allow = decision.outcome == Outcome::Allow;
    assert_eq!(
        got_allow, expected_allow,
        "evaluator {:?} vs reference allow={expected_allow} for {method} {path} token={} \
         peer={peer:?} ip={ip:?} x-team={team_lines:?}\n{config}",
        decision.outcome, input.token
    );
    assert_eq!(decision.enforced.allowed, got_allow);
    if !got_allow {
        let _ = authorizer.deny_reply(&decision.enforced);
    }
});
