//! Fuzzes the authz evaluator against a simple reference evaluator.
//!
//! Random policies (ALLOW/DENY, rules with `to.operation` methods / not_methods / paths /
//! not_paths and `when` claim equality) are generated from `arbitrary`, rendered to the JSON
//! config, compiled by `Authorizer::parse` (what `on_configure` runs) and evaluated for a random
//! request. The reference below implements Istio's semantics directly on the generated values:
//! any matching DENY policy denies; else with no ALLOW policy the request is allowed; else it is
//! allowed iff an ALLOW policy matches. A rule matches when every `to` (any of its operations)
//! and every `when` condition matches; an operation matches when each non-empty field matches
//! (`methods`/`paths`: any value; `not_*`: none). Paths match the `:path` without its query.
//!
//! Only the subset above is compared; the rest of the language (principals, namespaces, IPs,
//! ports, hosts, headers, scopes, dry-run, AUDIT) is exercised for panics by `config_authz`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshguard_core::config::FilterConfig;
use meshguard_core::policy::{Authorizer, Jwt, Outcome, Request};
use serde_json::{json, Value};

const METHODS: [&str; 4] = ["GET", "POST", "DELETE", "PATCH"];
const PATHS: [&str; 8] = ["/a", "/a/b", "/a?q=1", "/b", "/", "/c/a", "/a/", "/ab"];
/// Path patterns and how the reference matches them.
const PATTERNS: [(&str, Pat); 7] = [
    ("/a", Pat::Exact("/a")),
    ("/a/*", Pat::Prefix("/a/")),
    ("*", Pat::Any),
    ("/b", Pat::Exact("/b")),
    ("*/a", Pat::Suffix("/a")),
    ("/a/{**}", Pat::Prefix("/a/")),
    ("/{*}", Pat::OneSegment),
];
const ROLES: [&str; 2] = ["admin", "reader"];

#[derive(Clone, Copy)]
enum Pat {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Any,
    OneSegment,
}

impl Pat {
    fn matches(self, path: &str) -> bool {
        match self {
            Pat::Exact(p) => path == p,
            Pat::Prefix(p) => path.starts_with(p),
            Pat::Suffix(p) => path.ends_with(p),
            Pat::Any => !path.is_empty(),
            Pat::OneSegment => path
                .strip_prefix('/')
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    policies: Vec<PolicyIn>,
    method: u8,
    path: u8,
    /// 0: no token; 1: token without `role`; 2/3: role admin/reader; 4: `role: 1`.
    token: u8,
}

#[derive(Debug, Arbitrary)]
struct PolicyIn {
    deny: bool,
    rules: Vec<RuleIn>,
}

#[derive(Debug, Arbitrary)]
struct RuleIn {
    to: Vec<OpIn>,
    when: Vec<u8>,
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
    (to.is_empty() || to.iter().any(|op| op_matches(op, req)))
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
                let when: Vec<Value> = take(&r.when, 2)
                    .iter()
                    .map(|&i| json!({ "claim": "role", "equals": pick(&ROLES, i) }))
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
    let headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
    ];
    let mut request = Request::from_headers(&headers);
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
        "evaluator {:?} vs reference allow={expected_allow} for {method} {path} token={}\n{config}",
        decision.outcome, input.token
    );
    assert_eq!(decision.enforced.allowed, got_allow);
    if !got_allow {
        let _ = authorizer.deny_reply(&decision.enforced);
    }
});
