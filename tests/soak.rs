//! Soak: many requests through the deployed chain (jwt-authn → authz → ratelimit → audit, the
//! example configs plus one rate-limit rule keyed on a per-request `x-client-id`, so every
//! request brings a new rate-limit key), 2 workers, mixed traffic: valid readers, valid tokens
//! without the role (403), expired, bad signature, other issuer, garbage, no token. Every
//! `sample_every` requests the guest linear memory of every VM and the size of shared data
//! (keys, bytes) are sampled; both must plateau (the second half of the run may not exceed the
//! first half's maximum by more than a small slack) and every request must get the status its
//! kind calls for (never a 5xx, never a pass-through of a bad token).
//!
//! - `cargo test -p meshguard-tests --test soak` — the short variant (20,000 requests), part of
//!   the normal suite.
//! - `cargo test --release -p meshguard-tests --test soak -- --ignored` — 1,000,000 requests
//!   (`MESHGUARD_SOAK_REQUESTS` overrides the count).
//!
//! Both write the curve to `target/soak/soak-<requests>.csv` and a summary to
//! `target/soak/soak-<requests>.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "faults/support.rs"]
#[allow(dead_code)]
mod support;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jwt_simple::prelude::{
    Claims, Duration as JwtDuration, ECDSAP256KeyPairLike, ES256KeyPair, UnixTimeStamp,
};
use meshguard_harness::{Host, Request};
use serde_json::json;

use support::*;

/// What a request carries, and the status it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    NoRole,
    Expired,
    BadSignature,
    OtherIssuer,
    Garbage,
    Missing,
}

const KINDS: [Kind; 7] = [
    Kind::Valid,
    Kind::NoRole,
    Kind::Expired,
    Kind::BadSignature,
    Kind::OtherIssuer,
    Kind::Garbage,
    Kind::Missing,
];

/// Kind of request `i` (per 20: 11 valid, 2 no role, 1 expired, 1 bad signature, 1 other
/// issuer, 2 garbage, 2 missing).
fn kind(i: usize) -> Kind {
    match i % 20 {
        0..=10 => Kind::Valid,
        11 | 12 => Kind::NoRole,
        13 => Kind::Expired,
        14 => Kind::BadSignature,
        15 => Kind::OtherIssuer,
        16 | 17 => Kind::Garbage,
        _ => Kind::Missing,
    }
}

struct Pools {
    valid: Vec<String>,
    no_role: Vec<String>,
    expired: Vec<String>,
    bad_signature: Vec<String>,
    other_issuer: Vec<String>,
    garbage: Vec<String>,
}

fn sign_with(key: &ES256KeyPair, iss: &str, sub: &str, iat: u64, exp: u64) -> String {
    let mut claims = Claims::with_custom_claims(
        json!({}).as_object().cloned().unwrap(),
        JwtDuration::from_secs(1),
    )
    .with_issuer(iss)
    .with_subject(sub)
    .with_audience(AUD);
    claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
    claims.expires_at = Some(UnixTimeStamp::from_secs(exp));
    key.sign(claims).unwrap()
}

fn pools() -> Pools {
    // Valid for a year of fake time.
    let far = NOW + 365 * 86_400;
    let impostor = ES256KeyPair::generate().with_key_id("demo-1");
    Pools {
        valid: (0..300)
            .map(|i| {
                token_at(
                    &format!("reader{i}"),
                    json!({"roles": ["reader"]}),
                    NOW,
                    far,
                )
            })
            .collect(),
        no_role: (0..50)
            .map(|i| token_at(&format!("guest{i}"), json!({"roles": ["guest"]}), NOW, far))
            .collect(),
        expired: (0..50)
            .map(|i| {
                token_at(
                    &format!("old{i}"),
                    json!({"roles": ["reader"]}),
                    NOW - 7200,
                    NOW - 3600,
                )
            })
            .collect(),
        bad_signature: (0..50)
            .map(|i| sign_with(&impostor, ISS, &format!("forged{i}"), NOW, far))
            .collect(),
        other_issuer: (0..50)
            .map(|i| sign_with(key(), "https://evil.example", &format!("evil{i}"), NOW, far))
            .collect(),
        garbage: vec![
            "not-a-jwt".into(),
            "a.b.c".into(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into(),
            "x".repeat(9000),
            "....".into(),
        ],
    }
}

fn request(pools: &Pools, i: usize) -> (Kind, Request) {
    let k = kind(i);
    let pick = |pool: &Vec<String>| pool[(i / 20) % pool.len()].clone();
    let token = match k {
        Kind::Valid => Some(pick(&pools.valid)),
        Kind::NoRole => Some(pick(&pools.no_role)),
        Kind::Expired => Some(pick(&pools.expired)),
        Kind::BadSignature => Some(pick(&pools.bad_signature)),
        Kind::OtherIssuer => Some(pick(&pools.other_issuer)),
        Kind::Garbage => Some(pick(&pools.garbage)),
        Kind::Missing => None,
    };
    let mut req = Request::get("/api/orders").header("x-client-id", format!("client-{i}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    (k, req)
}

/// One sample of the curve.
struct Sample {
    requests: usize,
    elapsed: Duration,
    /// Max over workers of each filter's linear memory, bytes.
    memory: Vec<usize>,
    shared_keys: usize,
    shared_bytes: usize,
}

struct Report {
    samples: Vec<Sample>,
    statuses: std::collections::BTreeMap<(Kind, u16), usize>,
    elapsed: Duration,
}

fn chain() -> Host {
    let mut rl = example("ratelimit");
    rl["rules"].as_array_mut().unwrap().push(json!({
        "name": "per-client",
        "match": {"prefix": "/api/"},
        "descriptors": [{"request_header": "x-client-id"}],
        "limits": [{"token_bucket": {"max_tokens": 100, "tokens_per_fill": 100, "fill_interval": "1m"}}],
        "max_keys": 10000
    }));
    Chain {
        workers: 2,
        configs: vec![("ratelimit", rl)],
        quiet: true,
        ..Chain::default()
    }
    .build()
}

fn sample(host: &Host, requests: usize, started: Instant) -> Sample {
    let sizes = host.memory_sizes();
    let filters = sizes.first().map_or(0, Vec::len);
    let memory = (0..filters)
        .map(|f| sizes.iter().map(|w| w[f]).max().unwrap_or(0))
        .collect();
    let shared = host.shared_data_size();
    Sample {
        requests,
        elapsed: started.elapsed(),
        memory,
        shared_keys: shared.keys,
        shared_bytes: shared.bytes,
    }
}

fn run(total: usize, sample_every: usize) -> Report {
    let pools = pools();
    let host = chain();
    let started = Instant::now();
    let mut samples = vec![sample(&host, 0, started)];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..total {
        let (k, req) = request(&pools, i);
        let out = host.send(req).unwrap();
        assert!(!out.stuck, "request {i} ({k:?}) hanging");
        let want_ok = match k {
            Kind::Valid => out.status == 200 || out.status == 429,
            Kind::NoRole => out.status == 403,
            Kind::Garbage => out.status == 401 || out.status == 400,
            _ => out.status == 401,
        };
        assert!(
            want_ok,
            "request {i} ({k:?}): {} {:?} {:?}",
            out.status, out.local_reply, out.logs
        );
        assert_eq!(
            out.upstream_headers.is_some(),
            out.status == 200,
            "request {i} ({k:?}): forwarded iff admitted"
        );
        *statuses.entry((k, out.status)).or_insert(0) += 1;
        // 2 ms of fake time per request: ticks run, buckets refill, rate-limit slots go idle.
        if i % 50 == 49 {
            host.advance(Duration::from_millis(100)).unwrap();
        }
        if (i + 1) % sample_every == 0 {
            host.clear_logs();
            samples.push(sample(&host, i + 1, started));
        }
    }
    assert!(host.traps().is_empty(), "{:?}", host.traps());
    Report {
        samples,
        statuses,
        elapsed: started.elapsed(),
    }
}

const FILTERS: [&str; 4] = ["jwt_authn", "authz", "ratelimit", "audit"];

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("soak")
}

fn write(report: &Report, total: usize) -> PathBuf {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("requests,elapsed_ms");
    for f in FILTERS {
        let _ = write!(csv, ",{f}_memory_bytes");
    }
    csv.push_str(",shared_keys,shared_bytes\n");
    for s in &report.samples {
        let _ = write!(csv, "{},{}", s.requests, s.elapsed.as_millis());
        for m in &s.memory {
            let _ = write!(csv, ",{m}");
        }
        let _ = writeln!(csv, ",{},{}", s.shared_keys, s.shared_bytes);
    }
    std::fs::write(dir.join(format!("soak-{total}.csv")), csv).unwrap();
    let first = &report.samples[0];
    let last = report.samples.last().unwrap();
    let mid = &report.samples[report.samples.len() / 2];
    let mut md = format!(
        "# Soak: {total} requests\n\n{} s wall clock ({:.0} requests/s), 2 workers, mixed traffic.\n\n",
        report.elapsed.as_secs_f64().round(),
        total as f64 / report.elapsed.as_secs_f64()
    );
    md.push_str("| | start | half | end |\n|---|---|---|---|\n");
    for (f, name) in FILTERS.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {name} linear memory (KiB) | {} | {} | {} |",
            first.memory[f] / 1024,
            mid.memory[f] / 1024,
            last.memory[f] / 1024
        );
    }
    let _ = writeln!(
        md,
        "| shared data keys | {} | {} | {} |",
        first.shared_keys, mid.shared_keys, last.shared_keys
    );
    let _ = writeln!(
        md,
        "| shared data bytes | {} | {} | {} |\n",
        first.shared_bytes, mid.shared_bytes, last.shared_bytes
    );
    md.push_str("| kind | status | requests |\n|---|---|---|\n");
    for ((k, status), n) in &report.statuses {
        let _ = writeln!(md, "| {k:?} | {status} | {n} |");
    }
    let path = dir.join(format!("soak-{total}.md"));
    std::fs::write(&path, md).unwrap();
    path
}

/// The plateau check: over the second half, no value exceeds the first half's maximum by more
/// than `slack` (linear growth would double it).
fn assert_bounded(report: &Report) {
    let n = report.samples.len();
    let (first, second) = report.samples.split_at(n / 2);
    let max = |s: &[Sample], f: &dyn Fn(&Sample) -> usize| s.iter().map(f).max().unwrap_or(0);
    for (i, name) in FILTERS.iter().enumerate() {
        let a = max(first, &|s| s.memory[i]);
        let b = max(second, &|s| s.memory[i]);
        assert!(
            b <= a + (2 << 20),
            "{name}: memory grew from {a} to {b} bytes in the second half"
        );
    }
    let (a, b) = (
        max(first, &|s| s.shared_keys),
        max(second, &|s| s.shared_keys),
    );
    assert!(b <= a, "shared data keys grew from {a} to {b}");
    let (a, b) = (
        max(first, &|s| s.shared_bytes),
        max(second, &|s| s.shared_bytes),
    );
    assert!(
        b <= a + a / 20 + 65_536,
        "shared data bytes grew from {a} to {b}"
    );
}

fn soak(total: usize, sample_every: usize) {
    let report = run(total, sample_every);
    let path = write(&report, total);
    eprintln!("{}", std::fs::read_to_string(&path).unwrap());
    assert_bounded(&report);
    for k in KINDS {
        assert!(
            report.statuses.keys().any(|(kind, _)| *kind == k),
            "no {k:?} request sent"
        );
    }
    let admitted: usize = report
        .statuses
        .iter()
        .filter(|((_, s), _)| *s == 200)
        .map(|(_, n)| n)
        .sum();
    assert!(admitted > 0, "nothing admitted");
}

#[test]
fn soak_short_20k() {
    soak(20_000, 1_000);
}

#[test]
#[ignore = "1,000,000 requests: run with --release -- --ignored"]
fn soak_1m() {
    let total = std::env::var("MESHGUARD_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    soak(total, (total / 100).max(1));
}
