//! Remote JWKS across workers racing at the same fake time: one dispatch per provider on a cold
//! start and on a refresh, one coalesced refetch for an unknown `kid`, and rotated keys learnt on
//! the request path from shared data. `Host::race` (and ticks due at the same instant) makes
//! every worker read shared data before any of them writes, which is what two Envoy worker
//! threads ticking together can do; a filter that writes its lease without a CAS fetches twice.

use std::time::Duration;

use meshguard_harness::{Action, Host, HttpCall, Request, Upstream};
use serde_json::{json, Value};

use super::remote::{jwks, request};
use super::{bearer, builder, fx, require_idp};

/// Two remote providers (different JWKS URLs, so two shared records); `idp2` shares idp's keys
/// document but has its own issuer so no token of the fixtures verifies under it.
fn two_providers() -> Value {
    let remote = |uri: &str, cluster: &str| {
        json!({
            "http_uri": {"uri": uri, "cluster": cluster, "timeout": "2s"},
            "cache_duration": "10m",
            "max_stale": "1h",
            "cold_start_timeout": "3s"
        })
    };
    json!({
        "providers": {
            "idp": {
                "issuer": fx()["issuer"],
                "audiences": ["api"],
                "remote_jwks": remote("https://idp.example.com/jwks", "idp")
            },
            "idp2": {
                "issuer": "https://other.example.com",
                "remote_jwks": remote("https://other.example.com/jwks", "idp2")
            }
        },
        "rules": require_idp()
    })
}

fn host(workers: usize, upstream: Upstream) -> Host {
    builder(two_providers())
        .workers(workers)
        .upstream("idp", upstream.clone())
        .upstream("idp2", upstream)
        .build()
        .unwrap()
}

fn calls_to(calls: &[HttpCall], cluster: &str) -> usize {
    calls.iter().filter(|c| c.upstream == cluster).count()
}

fn send_on(host: &Host, worker: usize, token: &str) -> u16 {
    host.send(
        Request::get("/")
            .header("authorization", bearer(token))
            .on_worker(worker),
    )
    .unwrap()
    .status
}

fn cold_start_ticks_dispatch_once_per_provider(workers: usize) {
    let host = host(workers, Upstream::Manual);
    assert!(host.http_calls().is_empty());
    // Every worker's first tick is due at the same instant (they configured together).
    host.advance(Duration::from_millis(1_000)).unwrap();
    let calls = host.pending_http_calls();
    assert_eq!(calls_to(&calls, "idp"), 1, "{calls:?}");
    assert_eq!(calls_to(&calls, "idp2"), 1, "{calls:?}");
    for c in &calls {
        host.deliver_http_call(c.token, jwks("jwks_k1")).unwrap();
    }
    host.advance(Duration::from_secs(5)).unwrap();
    for w in 0..workers {
        assert_eq!(send_on(&host, w, "valid_k1"), 200, "worker {w}");
    }
    assert_eq!(host.http_calls().len(), 2, "no other fetch");
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn cold_start_on_2_workers_ticking_together_fetches_once_per_provider() {
    cold_start_ticks_dispatch_once_per_provider(2);
}

#[test]
fn cold_start_on_4_workers_ticking_together_fetches_once_per_provider() {
    cold_start_ticks_dispatch_once_per_provider(4);
}

#[test]
fn cold_start_requests_racing_on_4_workers_fetch_once() {
    let host = host(4, Upstream::Manual);
    let streams = host.race(|| {
        (0..4)
            .map(|w| request(&host, w, "valid_k1"))
            .collect::<Vec<_>>()
    });
    assert!(streams.iter().all(|s| s.action() == Action::Pause));
    let calls = host.pending_http_calls();
    assert_eq!(calls_to(&calls, "idp"), 1, "{calls:?}");
    host.deliver_http_call(calls[0].token, jwks("jwks_k1"))
        .unwrap();
    host.advance(Duration::from_millis(200)).unwrap();
    for s in &streams {
        assert!(s.is_resumed(), "{:?}", s.local_reply());
    }
    assert_eq!(calls_to(&host.http_calls(), "idp"), 1);
}

fn refresh_at_the_same_time_fetches_once(workers: usize) {
    let host = host(workers, Upstream::respond(jwks("jwks_k1")));
    host.advance(Duration::from_millis(1_000)).unwrap();
    assert_eq!(host.http_calls().len(), 2, "cold start: one per provider");
    for w in 0..workers {
        assert_eq!(send_on(&host, w, "valid_k1"), 200, "worker {w}");
    }
    // Refresh is due at 80 % of cache_duration (8 min): every worker's tick after that wants
    // it, and all of them read the record before any writes.
    host.advance(Duration::from_secs(8 * 60 - 5)).unwrap();
    assert_eq!(host.http_calls().len(), 2);
    host.race(|| host.advance(Duration::from_secs(10))).unwrap();
    let calls = host.http_calls();
    assert_eq!(calls_to(&calls, "idp"), 2, "{calls:?}");
    assert_eq!(calls_to(&calls, "idp2"), 2, "{calls:?}");
    for w in 0..workers {
        assert_eq!(send_on(&host, w, "valid_k1"), 200, "worker {w}");
    }
}

#[test]
fn refresh_on_2_workers_at_the_same_time_fetches_once_per_provider() {
    refresh_at_the_same_time_fetches_once(2);
}

#[test]
fn refresh_on_4_workers_at_the_same_time_fetches_once_per_provider() {
    refresh_at_the_same_time_fetches_once(4);
}

/// Loads k1 on every worker.
fn warmed(workers: usize) -> Host {
    let host = host(workers, Upstream::respond(jwks("jwks_k1")));
    for w in 0..workers {
        assert_eq!(send_on(&host, w, "valid_k1"), 200, "worker {w}");
    }
    assert_eq!(calls_to(&host.http_calls(), "idp"), 1);
    host
}

#[test]
fn unknown_kid_on_4_workers_at_once_is_one_coalesced_refetch() {
    let host = warmed(4);
    host.set_upstream("idp", Upstream::Manual);
    let streams = host.race(|| {
        (0..4)
            .map(|w| request(&host, w, "valid_k2"))
            .collect::<Vec<_>>()
    });
    assert!(
        streams.iter().all(|s| s.action() == Action::Pause),
        "all wait for the refetch"
    );
    let pending: Vec<_> = host
        .pending_http_calls()
        .into_iter()
        .filter(|c| c.upstream == "idp")
        .collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    host.deliver_http_call(pending[0].token, jwks("jwks_k1k2"))
        .unwrap();
    host.advance(Duration::from_millis(200)).unwrap();
    for (w, s) in streams.iter().enumerate() {
        assert!(s.is_resumed(), "worker {w}: {:?}", s.local_reply());
        assert_eq!(s.request_header("authorization"), None);
    }
    assert_eq!(calls_to(&host.http_calls(), "idp"), 2);
}

#[test]
fn rotated_keys_stored_by_another_worker_are_used_on_the_request_path() {
    let host = warmed(2);
    host.set_upstream("idp", Upstream::respond(jwks("jwks_k1k2")));
    // Worker 0 sees the new kid first: it refetches and stores the rotated keys.
    assert_eq!(send_on(&host, 0, "valid_k2"), 200);
    assert_eq!(calls_to(&host.http_calls(), "idp"), 2);
    // Worker 1, at the same fake time (no tick in between), has only k1 in memory. It reads the
    // shared record before asking for a refetch, finds k2 and lets the request through at once.
    let s = request(&host, 1, "valid_k2");
    assert_eq!(s.action(), Action::Continue, "{:?}", s.local_reply());
    assert!(s.local_reply().is_none());
    assert_eq!(calls_to(&host.http_calls(), "idp"), 2, "no second refetch");
    // And a kid nobody has is still refused at once on either worker (rate limit, no wait).
    let s = request(&host, 1, "unknown_kid");
    assert_eq!(s.local_reply().map(|r| r.status), Some(401));
    assert_eq!(calls_to(&host.http_calls(), "idp"), 2);
}
