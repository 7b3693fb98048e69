//! A configuration pushed with an error: the canary VM refuses it (`on_configure` false, the
//! error logged with its field path), the push fails — Envoy NACKs it — and the running VMs keep
//! serving the old configuration. A valid push replaces it for the next requests.

use meshguard_harness::{HarnessError, Host, Request};
use serde_json::{json, Value};

use crate::support::*;

fn refused_push(host: &Host, filter: usize, config: Value, needle: &str) {
    match host.reconfigure_json(filter, config) {
        Err(HarnessError::ConfigureRejected { worker, logs, .. }) => {
            assert_eq!(worker, None, "caught by the canary");
            assert!(
                logs.iter().any(|l| l.contains(needle)),
                "no {needle:?} in {logs:?}"
            );
        }
        other => panic!("push accepted or failed otherwise: {other:?}"),
    }
}

fn serving_the_example(host: &Host, n: &mut u32) {
    *n += 1;
    let sub = format!("user{n}");
    admitted(&host.send(bearer(&reader(&sub))).unwrap(), &sub);
    let nobody = token_at(&format!("nobody{n}"), json!({}), NOW, NOW + 600);
    refused(&host.send(bearer(&nobody)).unwrap(), 403);
    refused(&host.send(Request::get("/api/orders")).unwrap(), 401);
}

#[test]
fn bad_pushes_are_refused_and_the_old_config_keeps_serving() {
    let host = Chain {
        workers: 2,
        ..Chain::default()
    }
    .build();
    let mut n = 0;
    serving_the_example(&host, &mut n);
    // authz: a bad CIDR, and a policy set over the size bound.
    let mut authz = example("authz");
    authz["policies"][0]["rules"][3]["from"][0]["source"]["ip_blocks"] = json!(["10.0.0.0/33"]);
    refused_push(
        &host,
        index("authz", false),
        authz,
        "policies[0].rules[3].from[0].source",
    );
    let policies: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("p{i}"), "action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}))
        .collect();
    refused_push(
        &host,
        index("authz", false),
        json!({ "policies": policies }),
        "at most 256",
    );
    serving_the_example(&host, &mut n);
    // jwt_authn: an unknown field and a bad duration.
    let mut jwt = example("jwt_authn");
    jwt["providers"]["demo"]["remote_jwks"]["cache_duration"] = json!("5x");
    refused_push(
        &host,
        index("jwt_authn", false),
        jwt,
        "providers.demo.remote_jwks.cache_duration",
    );
    refused_push(
        &host,
        index("jwt_authn", false),
        json!({"providers": {}, "rules": [], "surprise": 1}),
        "surprise",
    );
    // ratelimit and audit: not JSON / wrong type.
    refused_push(
        &host,
        index("ratelimit", false),
        json!({"rules": 3}),
        "rules",
    );
    refused_push(
        &host,
        index("audit", false),
        json!({"sample_rate": "all"}),
        "sample_rate",
    );
    serving_the_example(&host, &mut n);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn a_good_push_replaces_the_config_and_a_later_bad_one_keeps_the_new_one() {
    let host = Chain::default().build();
    let mut n = 0;
    serving_the_example(&host, &mut n);
    let authz = index("authz", false);
    host.reconfigure_json(authz, json!({"deny_all": true}))
        .unwrap();
    refused(&host.send(bearer(&reader("alice"))).unwrap(), 403);
    refused_push(&host, authz, json!({"deny_all": "yes"}), "deny_all");
    refused(&host.send(bearer(&reader("bob"))).unwrap(), 403);
    // Back to the example: serving it again; the rate-limit state survived (shared data is the
    // process's, not the VM's).
    host.reconfigure_json(authz, example("authz")).unwrap();
    serving_the_example(&host, &mut n);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn reconfigure_keeps_rate_limit_counters() {
    let host = Chain::default().build();
    let tok = reader("carol");
    for _ in 0..5 {
        admitted(&host.send(bearer(&tok)).unwrap(), "carol");
    }
    host.reconfigure_json(index("ratelimit", false), example("ratelimit"))
        .unwrap();
    refused(&host.send(bearer(&tok)).unwrap(), 429);
}
