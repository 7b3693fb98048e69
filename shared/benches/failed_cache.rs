//! A whole `decide` of a request whose RS256 token was seen before, natively: a verified token
//! (verified-cache hit), and invalid ones (bad signature, wrong audience) with the failed-verdict
//! cache off (`max_failed_entries: 0`: a signature verification every time) and on, for a
//! same-run ratio.
//!
//! `cargo bench -p meshguard-core --bench failed_cache`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use meshguard_core::config::FilterConfig;
use meshguard_core::jwt_authn::cache::Caches;
use meshguard_core::jwt_authn::decide::{decide, Decision, KeyView, ProviderKeys};
use meshguard_core::jwt_authn::{JwtAuthnConfig, KeySource};
use serde_json::{json, Value};

const FIXTURES: &str = include_str!("../../tests/fixtures/jwt/cases.json");

struct Static<'a>(&'a JwtAuthnConfig);

impl KeyView for Static<'_> {
    fn keys(&self, p: usize) -> ProviderKeys<'_> {
        match self.0.providers.get(p).map(|p| &p.keys) {
            Some(KeySource::Static(keys)) => ProviderKeys::Ready {
                keys,
                generation: 1,
                may_refetch: false,
            },
            _ => ProviderKeys::Unavailable,
        }
    }
}

fn config(f: &Value, audience: &str, max_failed: usize) -> JwtAuthnConfig {
    let doc = json!({
        "providers": {"p": {
            "issuer": f["base_settings"]["issuer"],
            "audiences": [audience],
            "local_jwks": {"inline_string": f["keysets"]["main"]["jwks"].to_string()}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
        "cache": {"max_entries": 100, "max_failed_entries": max_failed}
    });
    JwtAuthnConfig::parse(doc.to_string().as_bytes()).unwrap()
}

fn headers(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/".to_vec()),
        (
            "authorization".to_string(),
            format!("Bearer {token}").into_bytes(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let f: Value = serde_json::from_str(FIXTURES).unwrap();
    let now = f["now"].as_i64().unwrap();
    let valid = f["token_cases"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == "row00-rs256-rsa-rs256"))
        .and_then(|c| c["token"].as_str())
        .unwrap()
        .to_owned();
    // Flip one character in the middle of the signature.
    let sig_start = valid.rfind('.').unwrap() + 1;
    let mid = sig_start + (valid.len() - sig_start) / 2;
    let flipped = if &valid[mid..=mid] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &valid[..mid], &valid[mid + 1..]);
    let mut group = c.benchmark_group("decide_rs256_repeated");
    for (name, token, audience, want) in [
        ("valid", &valid, "api", None),
        ("bad_signature", &forged, "api", Some("bad_signature")),
        ("bad_audience", &valid, "other", Some("bad_audience")),
    ] {
        for max_failed in [0usize, 1000] {
            if want.is_none() && max_failed == 0 {
                continue;
            }
            let cfg = config(&f, audience, max_failed);
            let keys = Static(&cfg);
            let h = headers(token);
            let mut cache = Caches::new(cfg.cache_max_entries, cfg.cache_max_failed_entries);
            let label = match (want, max_failed) {
                (None, _) => format!("{name}/verified_cache"),
                (Some(_), 0) => format!("{name}/failed_cache_off"),
                (Some(_), _) => format!("{name}/failed_cache_on"),
            };
            group.bench_function(label, |b| {
                b.iter(|| {
                    let d = decide(&cfg, &h, &keys, &mut cache, now);
                    match (&d, want) {
                        (Decision::Allow(..), None) => {}
                        (Decision::Deny(o, ..), Some(r)) => {
                            assert_eq!(o, &meshguard_core::jwt_authn::Outcome::Failed(r))
                        }
                        _ => panic!("{d:?}"),
                    }
                    d
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
