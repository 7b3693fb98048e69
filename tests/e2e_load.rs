//! Load in a real Envoy 1.40 (issue 9): two workers on loopback, the full chain (jwt_authn →
//! authz → ratelimit → audit), a known mix of valid, forbidden, rate-limited and invalid
//! requests from several client threads. Every request's outcome is checked: zero 5xx and zero
//! transport errors, every invalid token rejected, every valid one admitted, each rate-limited
//! identity admitted exactly `min(sent, limit)` times across both workers, one audit record per
//! request (access log and log sink), nothing else reaching the upstream.
//!
//! Bounded by default (at most `MESHGUARD_LOAD_REQUESTS` = 20000 requests or
//! `MESHGUARD_LOAD_SECONDS` = 45 s; about 10 s on an idle 2-core machine). A longer run:
//! `MESHGUARD_LOAD_SECONDS=600 MESHGUARD_LOAD_REQUESTS=0 cargo test -p meshguard-tests --test e2e
//! load:: -- --nocapture` (the summary is also written to `target/e2e-load.txt`).

use std::time::{Duration, Instant};

use jwt_simple::prelude::{Claims, Clock, ECDSAP256KeyPairLike, ES256KeyPair};
use meshguard_tool::demo::keys::{jwks, SigningKey};
use serde_json::{json, Map, Value};

use crate::envoy::chain::{plugin, serial, start_chain, AUD, ISS};
use crate::envoy::faults::{stat_sum, vm_failures};
use crate::envoy::load::{check, run, Drive, Kind, Shot};
use crate::envoy::process::{envoy_binary, repo_root};

/// Requests each rate-limited identity may make (the bucket never refills during a run).
const LIMIT: usize = 25;
const LIMITED_IDS: usize = 4;
const POOL: usize = 50;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Minter {
    pair: ES256KeyPair,
}

impl Minter {
    fn token(&self, iss: &str, aud: &str, sub: &str, extra: Value, exp_offset: i64) -> String {
        let extra: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
        let mut claims =
            Claims::with_custom_claims(extra, jwt_simple::prelude::Duration::from_secs(3600))
                .with_issuer(iss)
                .with_subject(sub)
                .with_audience(aud);
        if exp_offset < 0 {
            let now = Clock::now_since_epoch().as_secs();
            let t = |s: u64| Some(jwt_simple::prelude::Duration::from_secs(s));
            claims.issued_at = t(now - 7200);
            claims.invalid_before = t(now - 7200);
            claims.expires_at = t(now.saturating_sub(exp_offset.unsigned_abs()));
        }
        self.pair.sign(claims).unwrap()
    }
}

/// The mix: per 20 requests, 9 valid (pool of 50 users), 1 forbidden, 3 rate-limited (4
/// identities), and one each of the 7 invalid kinds.
fn mix(minter: &Minter, forger: &Minter) -> Vec<Shot> {
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let shot = |kind, path: &str, authorization| Shot {
        kind,
        path: path.to_string(),
        authorization,
    };
    let valid: Vec<String> = (0..POOL)
        .map(|i| minter.token(ISS, AUD, &format!("user{i}"), json!({"role": "reader"}), 0))
        .collect();
    let limited: Vec<String> = (0..LIMITED_IDS)
        .map(|i| {
            minter.token(
                ISS,
                AUD,
                &format!("limited{i}"),
                json!({"role": "reader"}),
                0,
            )
        })
        .collect();
    let forbidden = minter.token(ISS, AUD, "mallory", json!({"role": "blocked"}), 0);
    let expired = minter.token(ISS, AUD, "old", json!({"role": "reader"}), -3600);
    let forged = forger.token(ISS, AUD, "eve", json!({"role": "reader"}), 0);
    let mut tampered = valid[0].clone().into_bytes();
    let sig_mid = tampered.len() - 40;
    tampered[sig_mid] = if tampered[sig_mid] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    let wrong_iss = minter.token("https://evil.e2e.test", AUD, "eve", json!({}), 0);
    let wrong_aud = minter.token(ISS, "other", "eve", json!({}), 0);

    let mut out = Vec::new();
    let mut v = 0usize;
    let mut l = 0usize;
    for round in 0..POOL {
        for _ in 0..9 {
            out.push(shot(
                Kind::Valid,
                &format!("/api/items/{round}"),
                bearer(&valid[v % POOL]),
            ));
            v += 1;
        }
        out.push(shot(Kind::Forbidden, "/api/items", bearer(&forbidden)));
        for _ in 0..3 {
            let id = l % LIMITED_IDS;
            out.push(shot(Kind::Limited(id), "/limited/x", bearer(&limited[id])));
            l += 1;
        }
        out.push(shot(Kind::Expired, "/api/a", bearer(&expired)));
        out.push(shot(Kind::Forged, "/api/a", bearer(&forged)));
        out.push(shot(Kind::Tampered, "/api/a", bearer(&tampered)));
        out.push(shot(Kind::Garbage, "/api/a", bearer("not.a.jwt")));
        out.push(shot(Kind::WrongIssuer, "/api/a", bearer(&wrong_iss)));
        out.push(shot(Kind::WrongAudience, "/api/a", bearer(&wrong_aud)));
        out.push(shot(Kind::NoToken, "/limited/x", None));
    }
    out
}

#[test]
fn load_mixed_traffic_full_chain_two_workers() {
    if envoy_binary().is_none() {
        return;
    }
    let _one = serial();
    let key = SigningKey::generate("load");
    let minter = Minter {
        pair: ES256KeyPair::from_jwk(&key.to_private_jwk())
            .unwrap()
            .with_key_id("load"),
    };
    let forger = Minter {
        pair: ES256KeyPair::generate().with_key_id("load"),
    };
    let jwt = json!({
        "providers": {"load": {
            "issuer": ISS, "audiences": [AUD],
            "local_jwks": {"inline_string": jwks(&[&key])}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "load"}}]
    });
    let authz = json!({"policies": [
        {"name": "blocked", "action": "DENY", "rules": [
            {"name": "role", "when": [{"claim": "role", "equals": "blocked"}]}]},
        {"name": "users", "action": "ALLOW", "rules": [
            {"name": "verified", "from": [{"source": {"request_principals": [format!("{ISS}/*")]}}]}]}
    ]});
    let ratelimit = json!({"rules": [
        {"name": "users", "match": {"prefix": "/api/"}, "descriptors": [{"jwt_claim": "sub"}],
         "limits": [{"token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1, "fill_interval": "1s"}}]},
        {"name": "limited", "match": {"prefix": "/limited/"}, "descriptors": [{"jwt_claim": "sub"}],
         "limits": [{"token_bucket": {"max_tokens": LIMIT, "tokens_per_fill": LIMIT, "fill_interval": "24h"}}]}
    ]});
    let audit =
        json!({"record": "all", "sample_rate": 1.0, "log_level": "info", "filter_state": true});
    let chain = start_chain(
        vec![
            plugin("jwt_authn", jwt),
            plugin("authz", authz),
            plugin("ratelimit", ratelimit),
            plugin("audit", audit),
        ],
        Vec::new(),
        &[],
    );
    let shots = mix(&minter, &forger);
    let drive = Drive {
        threads: 6,
        max_requests: env_num("MESHGUARD_LOAD_REQUESTS", 20000) as usize,
        duration: Duration::from_secs(env_num("MESHGUARD_LOAD_SECONDS", 45)),
        per_connection: 20,
    };
    let started = Instant::now();
    let outcomes = run(chain.envoy.listener("http"), &shots, drive);
    let elapsed = started.elapsed();
    let verdict = check(&outcomes, LIMIT);
    let n = verdict.sent;
    let admitted = verdict.by_status.get(&200).copied().unwrap_or(0);

    // Audit: one record per request in the access log (filter state) and in the log sink.
    let log = chain.envoy.wait_access_log(n);
    let with_record = log
        .iter()
        .filter(|e| {
            e["audit_record"]
                .as_str()
                .is_some_and(|r| r.starts_with('{'))
        })
        .count();
    let envoy_log = std::fs::read_to_string(&chain.envoy.log).unwrap_or_default();
    let sink_lines = envoy_log
        .lines()
        .filter(|l| l.contains("meshguard_audit") && l.contains("\"request_id\""))
        .count();
    let mut audit_status = std::collections::BTreeMap::<u16, usize>::new();
    for e in &log {
        if let Some(s) = e["status"].as_u64() {
            *audit_status.entry(s as u16).or_default() += 1;
        }
    }
    let upstream = chain.app.take_received().len();
    let workers: Vec<i64> = ["worker_0", "worker_1"]
        .iter()
        .map(|w| {
            stat_sum(
                &chain.envoy,
                &[&format!("listener.http.{w}.downstream_cx_total")],
            )
        })
        .collect();
    let audit_counted = stat_sum(&chain.envoy, &["meshguard_audit_requests_total"]);
    let vm = vm_failures(&chain.envoy);

    let mut summary = verdict.summary(elapsed);
    summary.push_str(&format!(
        "access-log entries {} (with audit record {with_record}), audit log-sink lines \
         {sink_lines}, meshguard_audit_requests_total {audit_counted}, upstream received \
         {upstream}, connections per worker {workers:?}, VM failures {}\n",
        log.len(),
        vm.len()
    ));
    println!("{summary}");
    let _ = std::fs::write(repo_root().join("target/e2e-load.txt"), &summary);

    assert!(n >= 500, "too few requests sent: {summary}");
    assert!(verdict.violations.is_empty(), "{summary}");
    for (id, (sent, _)) in &verdict.limited {
        assert!(*sent > LIMIT, "identity {id} not oversubscribed: {summary}");
    }
    assert_eq!(log.len(), n, "one access-log entry per request: {summary}");
    assert_eq!(with_record, n, "one audit record per request: {summary}");
    assert_eq!(sink_lines, n, "one audit log line per request: {summary}");
    assert_eq!(audit_counted, n as i64, "{summary}");
    assert_eq!(
        audit_status, verdict.by_status,
        "access log vs client statuses"
    );
    assert_eq!(
        upstream, admitted,
        "only admitted requests reach the upstream"
    );
    assert!(
        workers.iter().all(|c| *c > 0),
        "a worker got no connection: {summary}"
    );
    assert!(vm.is_empty(), "{vm:#?}");
}
