//! The ratelimit filter, compiled to wasm, in the harness: exact limits across 2 and 4 worker
//! VMs under random interleavings, bounded shared data under a flood of unique keys, counting
//! on response statuses, claim-chosen limits, headers, shadow mode, config errors.
//!
//! The harness runs each callback to completion, so two workers' get/set pairs never overlap
//! here: CAS conflicts between workers are exercised on the same core code natively (see
//! `shared/src/limiter/tests.rs`, `interleaved_workers_never_admit_more_than_the_limit`). Here
//! the streams of different workers interleave at every phase boundary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ratelimit/race.rs"]
mod race;
#[path = "ratelimit/scenarios.rs"]
mod scenarios;

use std::collections::BTreeSet;
use std::time::Duration;

use meshguard_core::handoff;
use meshguard_harness::{
    properties, Clock, HarnessError, Host, HostEvent, HttpResponse, Request, Status,
};
use meshguard_wasm_artifacts::RATELIMIT;
use serde_json::{json, Value};

const VM_ID: &str = "rl";

fn host(config: Value, workers: usize) -> Host {
    Host::builder(RATELIMIT)
        .vm_id(VM_ID)
        .plugin_config_json(config)
        .workers(workers)
        .clock(Clock::fixed_unix(1_700_000_000))
        .property(
            &["source", "address"],
            properties::string("192.0.2.10:40000"),
        )
        .build()
        .unwrap()
}

fn bucket(max: u64, interval: &str) -> Value {
    json!({"token_bucket": {"max_tokens": max, "tokens_per_fill": max, "fill_interval": interval}})
}

fn per_key(limit: u64, max_keys: u32) -> Value {
    json!({"rules": [{"name": "per_key", "descriptors": [{"request_header": "x-api-key"}],
        "limits": [bucket(limit, "1h")], "max_keys": max_keys}],
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03"})
}

fn requests_metric(decision: &str, rule: &str) -> String {
    format!("meshguard_ratelimit_requests_total_decision=.={decision};.;_rule=.={rule};.;")
}

/// xorshift64*: seeded, reproducible interleavings.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn two_and_four_workers_never_admit_more_than_the_limit() {
    for workers in [2usize, 4] {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ workers as u64);
            let limit = 3 + rng.below(10);
            let attempts = 5 + rng.below(30);
            let host = host(per_key(limit, 64), workers);
            // Open streams on random workers; advance a random open stream one phase at a time
            // (request headers, then response headers, then finish) in random order.
            let mut open = Vec::new();
            let mut started = 0;
            let mut admitted = 0;
            let mut limited = 0;
            while started < attempts || !open.is_empty() {
                let start_new = started < attempts && (open.is_empty() || rng.below(2) == 0);
                if start_new {
                    let w = rng.below(workers as u64) as usize;
                    open.push((host.stream_on(w).unwrap(), 0u8));
                    started += 1;
                    continue;
                }
                let at = rng.below(open.len() as u64) as usize;
                let (s, phase) = &mut open[at];
                match phase {
                    0 => {
                        let step = s
                            .request_headers(
                                [
                                    (":method", "GET"),
                                    (":path", "/"),
                                    (":authority", "api"),
                                    ("x-api-key", "shared-key"),
                                ],
                                true,
                            )
                            .unwrap();
                        if let Some(reply) = step.local_reply {
                            assert_eq!(reply.status, 429);
                            limited += 1;
                            *phase = 2;
                        } else {
                            admitted += 1;
                            *phase = 1;
                        }
                    }
                    1 => {
                        s.response_headers([(":status", "200")], true).unwrap();
                        *phase = 2;
                    }
                    _ => {
                        let (mut s, _) = open.swap_remove(at);
                        s.finish().unwrap();
                    }
                }
            }
            let want = limit.min(attempts);
            assert_eq!(
                admitted, want,
                "{workers} workers, seed {seed}: limit {limit}, {attempts} attempts"
            );
            assert_eq!(limited, attempts - want);
            assert_eq!(
                host.counter(&requests_metric("allowed", "per_key")),
                want as i64
            );
            assert_eq!(
                host.counter(&requests_metric("limited", "per_key")),
                (attempts - want) as i64
            );
            assert!(host.traps().is_empty(), "{:?}", host.traps());
        }
    }
}

#[test]
fn refills_are_shared_by_every_worker() {
    let host = host(
        json!({"rules": [{"name": "g", "limits": [bucket(4, "1s")]}]}),
        4,
    );
    let mut statuses = Vec::new();
    for round in 0..3 {
        for i in 0..6 {
            let out = host
                .send(Request::get("/").on_worker((i + round) % 4))
                .unwrap();
            statuses.push(out.status);
        }
        host.advance(Duration::from_secs(1)).unwrap();
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        12,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6);
}

/// Every distinct shared-data key the filter ever wrote (entries are never deleted).
fn written_keys(host: &Host) -> BTreeSet<String> {
    host.events()
        .into_iter()
        .filter_map(|e| match e {
            HostEvent::Hostcall {
                name: "proxy_set_shared_data",
                args,
                status: Status::Ok,
                ..
            } => args.split('"').nth(1).map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flood_of_unique_keys_keeps_shared_data_bounded() {
    let max_keys = 32;
    let host = host(per_key(5, max_keys), 2);
    let after_configure = written_keys(&host);
    // salt + max_keys slots + the shared counter of requests without the header.
    assert_eq!(
        after_configure.len(),
        1 + max_keys as usize + 1,
        "{after_configure:?}"
    );
    // With 1500 keys in 32 slots, most keys share an active slot: those draw from one bucket
    // (stricter, never looser), so part of the flood is limited.
    let mut limited = 0;
    for i in 0..1_500 {
        let out = host
            .send(Request::get("/").header("x-api-key", format!("k{i}")))
            .unwrap();
        assert!(out.status == 200 || out.status == 429, "{}", out.status);
        limited += usize::from(out.status == 429);
    }
    assert!(limited > 0 && limited < 1_500, "{limited}");
    let after_flood = written_keys(&host);
    assert_eq!(after_flood, after_configure, "no new shared-data key");
    for key in &after_flood {
        let (value, _) = host.shared_data(VM_ID, key).unwrap();
        assert!(value.len() <= 25, "{key}: {} bytes", value.len());
    }
    assert!(host.counter("meshguard_ratelimit_slot_collisions_total") > 1_000);
    // A key seen before the flood still has its own bucket afterwards or shares, never looser:
    // five requests of one key still leave the sixth limited.
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            host.send(Request::get("/").header("x-api-key", "steady"))
                .unwrap()
                .status
        })
        .collect();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

fn login_config() -> Value {
    json!({"rules": [{"name": "login_failures", "match": {"path": "/login", "methods": ["POST"]},
        "descriptors": ["remote_address"],
        "limits": [{"sliding_window": {"requests": 3, "window": "15m"}}],
        "count_on_response_statuses": [401]}]})
}

fn login(host: &Host, ip: &str, status: u16) -> u16 {
    host.send(
        Request::post("/login", "user=a&password=b")
            .property(&["source", "address"], properties::string(ip))
            .respond_with(HttpResponse::status(status)),
    )
    .unwrap()
    .status
}

#[test]
fn failed_logins_are_counted_on_response_status() {
    let host = host(login_config(), 2);
    for _ in 0..5 {
        assert_eq!(
            login(&host, "198.51.100.1:1000", 200),
            200,
            "successes are not counted"
        );
    }
    assert_eq!(login(&host, "198.51.100.1:1001", 401), 401);
    assert_eq!(login(&host, "198.51.100.1:1002", 401), 401);
    assert_eq!(login(&host, "198.51.100.1:1003", 401), 401);
    assert_eq!(
        login(&host, "198.51.100.1:1004", 200),
        429,
        "blocked once over, even a good password"
    );
    assert_eq!(
        login(&host, "198.51.100.2:1000", 401),
        401,
        "other clients unaffected"
    );
    assert_eq!(
        host.send(Request::get("/login")).unwrap().status,
        200,
        "GET does not match"
    );
    assert_eq!(
        host.counter("meshguard_ratelimit_responses_counted_total"),
        4
    );
    host.advance(Duration::from_secs(17 * 60)).unwrap();
    assert_eq!(
        login(&host, "198.51.100.1:1005", 401),
        401,
        "the window slid"
    );
}

#[test]
fn claim_chooses_the_limit() {
    let config = json!({"rules": [{"name": "plans", "descriptors": [{"jwt_claim": "sub"}],
        "limits": [bucket(2, "1m")],
        "limits_by_claim": {"claim": "plan", "tiers": {"gold": [bucket(6, "1m")], "free": [bucket(1, "1m")]}}}]});
    let host = host(config, 2);
    let admitted = |payload: Value| {
        (0..10)
            .filter(|_| {
                let out = host
                    .send(
                        Request::get("/")
                            .property(&[handoff::JWT_PAYLOAD], payload.to_string().into_bytes()),
                    )
                    .unwrap();
                out.status == 200
            })
            .count()
    };
    assert_eq!(admitted(json!({"sub": "g", "plan": "gold"})), 6);
    assert_eq!(admitted(json!({"sub": "f", "plan": "free"})), 1);
    assert_eq!(admitted(json!({"sub": "o", "plan": "other"})), 2);
    assert_eq!(admitted(json!({"sub": "n"})), 2);
}

#[test]
fn limited_reply_headers_status_body_and_filter_state() {
    let config = json!({"rules": [{"name": "api", "descriptors": [{"request_header": "x-api-key"}],
        "limits": [bucket(2, "1m"), {"sliding_window": {"requests": 100, "window": "1h"}}]}],
        "status": 429, "body": "{\"error\":\"slow down\"}",
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03", "headers_on_allowed": true});
    let host = host(config, 2);
    let send = || {
        host.send(Request::get("/").header("x-api-key", "k"))
            .unwrap()
    };
    let first = send();
    assert_eq!(first.status, 200);
    assert_eq!(
        first.response_header("ratelimit").as_deref(),
        Some("\"api.0\";r=1;t=60, \"api.1\";r=99;t=3880")
    );
    assert_eq!(
        first.response_header("ratelimit-policy").as_deref(),
        Some("\"api.0\";q=2;w=60, \"api.1\";q=100;w=3600")
    );
    assert_eq!(
        first.response_header("x-ratelimit-remaining").as_deref(),
        Some("1")
    );
    assert_eq!(first.response_header("retry-after"), None);
    assert_eq!(
        first
            .filter_state
            .get(&format!("wasm.{}", handoff::RATELIMIT_DECISION))
            .map(String::as_str),
        Some("allow")
    );
    assert_eq!(
        first
            .filter_state
            .get(&format!("wasm.{}", handoff::RATELIMIT_REMAINING))
            .map(String::as_str),
        Some("1")
    );
    send();
    host.advance(Duration::from_secs(20)).unwrap();
    let third = send();
    assert_eq!(third.status, 429);
    let reply = third.local_reply.as_ref().unwrap();
    assert_eq!(reply.body, br#"{"error":"slow down"}"#);
    assert_eq!(reply.headers.get("retry-after").as_deref(), Some("40"));
    assert_eq!(
        reply.headers.get("ratelimit").as_deref(),
        Some("\"api.0\";r=0;t=40, \"api.1\";r=98;t=3860")
    );
    assert_eq!(
        reply.headers.get("x-ratelimit-limit").as_deref(),
        Some("2, 2;w=60, 100;w=3600")
    );
    assert_eq!(
        reply.headers.get("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(
        reply.headers.get("x-ratelimit-reset").as_deref(),
        Some("40")
    );
    assert!(
        third.upstream_headers.is_none(),
        "never reached the upstream"
    );
    let state = |k: &str| third.filter_state.get(&format!("wasm.{k}")).cloned();
    assert_eq!(
        state(handoff::RATELIMIT_DECISION).as_deref(),
        Some("limited")
    );
    assert_eq!(state(handoff::RATELIMIT_RULE).as_deref(), Some("api"));
    assert_eq!(state(handoff::RATELIMIT_REMAINING).as_deref(), Some("0"));
}

#[test]
fn shadow_mode_counts_but_never_blocks() {
    let config = json!({"shadow_mode": true, "rules": [{"name": "s", "limits": [bucket(2, "1m")]}],
        "headers_on_allowed": true});
    let host = host(config, 2);
    let outs: Vec<_> = (0..5)
        .map(|_| host.send(Request::get("/")).unwrap())
        .collect();
    assert!(outs.iter().all(|o| o.status == 200));
    assert_eq!(
        outs[4]
            .filter_state
            .get(&format!("wasm.{}", handoff::RATELIMIT_DECISION))
            .map(String::as_str),
        Some("shadow_limited")
    );
    assert_eq!(
        outs[4].response_header("ratelimit"),
        None,
        "shadow rules are not shown to clients"
    );
    assert_eq!(host.counter(&requests_metric("allowed", "s")), 2);
    assert_eq!(host.counter(&requests_metric("shadow_limited", "s")), 3);
}

#[test]
fn bad_configs_are_refused_with_the_field_path() {
    let cases = [
        (
            json!({"rules": [{"name": "a", "limits": [bucket(0, "1m")]}]}),
            "rules[0].limits[0].token_bucket.max_tokens: 0 is out of range",
        ),
        (
            json!({"rules": [{"name": "a", "limits": [bucket(1, "5x")]}]}),
            "rules[0].limits[0].token_bucket.fill_interval: invalid duration \"5x\"",
        ),
        (
            json!({"rules": [{"name": "a", "limits": [bucket(1, "1m")], "descriptors": [{"cookie": "c"}]}]}),
            "rules[0].descriptors[0]: unknown variant `cookie`",
        ),
        (
            json!({"rules": [{"name": "a", "limits": [{"sliding_window": {"requests": -3, "window": "1m"}}]}]}),
            "rules[0].limits[0].sliding_window.requests: invalid value: integer `-3`",
        ),
    ];
    for (config, want) in cases {
        let err = Host::builder(RATELIMIT)
            .plugin_config_json(config)
            .build()
            .expect_err("refused");
        match err {
            HarnessError::ConfigureRejected { logs, .. } => {
                assert!(
                    logs.iter().any(|l| l.contains(want)),
                    "{want:?} not in {logs:?}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The scenario files under `tests/scenarios/ratelimit` (also replayed on Envoy by the e2e
/// suite) pass on the harness.
#[test]
fn scenarios_pass_on_the_harness() {
    assert_eq!(scenarios::run_area("ratelimit"), 3);
}
