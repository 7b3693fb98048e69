//! Clock jumps. Forward: past a token's `exp` (also for a cached verification), past the JWKS
//! TTL and staleness. Backward: before a token's `iat`/`nbf`, and under rate-limit windows —
//! no negative refill, no underflow, no extra admission.

use std::time::Duration;

use meshguard_harness::Upstream;
use serde_json::json;

use crate::support::*;

const EXPIRED: &str = "meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.=expired;.;";

#[test]
fn forward_past_exp_refuses_even_a_cached_verification() {
    let host = Chain::default().build();
    let tok = token_at("alice", json!({"roles": ["reader"]}), NOW, NOW + 600);
    admitted(&host.send(bearer(&tok)).unwrap(), "alice");
    admitted(&host.send(bearer(&tok)).unwrap(), "alice"); // from the verified-token cache
                                                          // The example's clock skew is 60 s (the default).
    host.clock().set_unix_secs(NOW + 600 + 61);
    let out = host.send(bearer(&tok)).unwrap();
    refused(&out, 401);
    assert_eq!(authn_reason(&out).as_deref(), Some("expired"));
    assert_eq!(host.counter(EXPIRED), 1);
    // A jump of years: still a clean 401, no overflow.
    host.clock().set_unix_secs(NOW + 100 * 365 * 86_400);
    refused(&host.send(bearer(&tok)).unwrap(), 401);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn forward_past_jwks_ttl_and_staleness_refetches_or_fails_closed() {
    let host = Chain::default().build();
    admitted(&host.send(bearer(&reader("alice"))).unwrap(), "alice");
    // Two hours later (past cache_duration 5m + max_stale 1h) with the endpoint up: the keys are
    // loaded again before the request is decided.
    let later = NOW + 2 * 3600;
    host.clock().set_unix_secs(later);
    let tok = token_at("bob", json!({"roles": ["reader"]}), later, later + 600);
    admitted(&host.send(bearer(&tok)).unwrap(), "bob");
    assert_eq!(host.counter(FETCH_OK), 2);
    // Two more hours, endpoint down: nothing to serve from; fail closed.
    host.set_upstream(JWKS_CLUSTER, Upstream::fail());
    let later = later + 2 * 3600;
    host.clock().set_unix_secs(later);
    let tok = token_at("carol", json!({"roles": ["reader"]}), later, later + 600);
    let out = host.send(bearer(&tok)).unwrap();
    refused(&out, 401);
    assert_eq!(authn_reason(&out).as_deref(), Some("keys_unavailable"));
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn backward_before_iat_and_nbf_refuses_the_token() {
    let host = Chain::default().build();
    let tok = token_at("alice", json!({"roles": ["reader"]}), NOW, NOW + 3600);
    admitted(&host.send(bearer(&tok)).unwrap(), "alice");
    // An hour back (NTP step): the token is not valid yet, even though it was verified before.
    host.clock().set_unix_secs(NOW - 3600);
    let out = host.send(bearer(&tok)).unwrap();
    refused(&out, 401);
    let reason = authn_reason(&out).unwrap_or_default();
    assert!(
        reason == "not_yet_valid" || reason == "issued_in_future",
        "{reason}"
    );
    // Keys fetched "in the future" still count as fresh: a token valid at the earlier time
    // passes, nothing underflows.
    let early = token_at("bob", json!({"roles": ["reader"]}), NOW - 3700, NOW + 3600);
    admitted(&host.send(bearer(&early)).unwrap(), "bob");
    // Back to 1970: a clean 401.
    host.clock().set_unix_secs(1);
    refused(&host.send(bearer(&tok)).unwrap(), 401);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

fn admitted_count(host: &meshguard_harness::Host, tok: &str, n: usize) -> usize {
    (0..n)
        .filter(|_| {
            let out = host.send(bearer(tok)).unwrap();
            guard(&out);
            assert!(out.status == 200 || out.status == 429, "{}", out.status);
            out.status == 200
        })
        .count()
}

#[test]
fn backward_jumps_never_refill_a_rate_limit() {
    // Example: per-user token bucket, 5 per minute.
    let host = Chain::default().build();
    let tok = token_at(
        "carol",
        json!({"roles": ["reader"]}),
        NOW - 7200,
        NOW + 3 * 86_400,
    );
    assert_eq!(admitted_count(&host, &tok, 8), 5);
    // Back 10 minutes, then back to 30 s after the start: no refill for time that "went back".
    host.clock().set_unix_secs(NOW - 600);
    assert_eq!(
        admitted_count(&host, &tok, 8),
        0,
        "extra admissions after a backward jump"
    );
    host.clock().set_unix_secs(NOW + 30);
    assert_eq!(admitted_count(&host, &tok, 8), 0);
    // A full interval after the last refill: exactly one bucket's worth again.
    host.clock().set_unix_secs(NOW + 61);
    assert_eq!(admitted_count(&host, &tok, 8), 5);
    // Forward a day: the bucket is full (5), not a day's worth of tokens.
    host.clock().set_unix_secs(NOW + 86_400);
    host.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(admitted_count(&host, &tok, 20), 5);
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}
