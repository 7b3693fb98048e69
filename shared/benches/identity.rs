//! Costs of the issue-10 identity sources, natively:
//! - API-key lookup (one SHA-256 + a constant-time scan of every configured digest) for 1, 100
//!   and 1000 digests, hit and miss;
//! - a whole `decide` of an HS256 request, without and with `jti_replay` (in-memory store standing
//!   in for proxy shared data, fresh `jti` per iteration), for a same-run ratio.
//!
//! `cargo bench -p meshguard-core --bench identity`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jwt_simple::prelude::{HS256Key, MACLike};
use meshguard_core::config::FilterConfig;
use meshguard_core::jwt::token_digest;
use meshguard_core::jwt_authn::cache::Caches;
use meshguard_core::jwt_authn::decide::{decide_with, Decision, KeyView, ProviderKeys};
use meshguard_core::jwt_authn::replay::{prepare, MemoryStore, NoReplayStore, StoreGuard};
use meshguard_core::jwt_authn::{JwtAuthnConfig, KeySource};
use serde_json::{json, Value};

const SECRET: &[u8; 32] = b"bench-secret-0123456789abcdefghi";
const NOW: i64 = 1_700_000_000;

fn hex(key: &str) -> String {
    token_digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn api_config(n: usize) -> JwtAuthnConfig {
    let consumers: Vec<Value> = (0..n)
        .map(|i| json!({"subject": format!("c{i}"), "key_digests": [hex(&format!("key-{i}"))]}))
        .collect();
    let doc = json!({"providers": {"k": {"api_keys": {"consumers": consumers}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "k"}}]});
    JwtAuthnConfig::parse(doc.to_string().as_bytes()).unwrap()
}

fn hs_config(replay: bool) -> JwtAuthnConfig {
    let mut p = json!({"issuer": "https://hs", "hmac_secret": {"algorithm": "HS256",
        "inline_base64": STANDARD.encode(SECRET)}});
    if replay {
        p["jti_replay"] = json!({"max_entries": 1_048_576});
    }
    let doc = json!({"providers": {"hs": p},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "hs"}}]});
    JwtAuthnConfig::parse(doc.to_string().as_bytes()).unwrap()
}

fn hs256(jti: u64, exp: i64) -> String {
    let payload = json!({"iss": "https://hs", "sub": "alice", "exp": exp, "jti": jti.to_string()});
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let tag = HS256Key::from_bytes(SECRET).authentication_tag(signing.as_bytes());
    format!("{signing}.{}", URL_SAFE_NO_PAD.encode(tag))
}

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

fn api_keys(c: &mut Criterion) {
    for n in [1usize, 100, 1000] {
        let cfg = api_config(n);
        let table = cfg.providers[0].api_keys.as_ref().unwrap();
        let last = format!("key-{}", n - 1);
        c.bench_function(&format!("api_key_lookup/{n}_digests/hit_last"), |b| {
            b.iter(|| table.lookup(std::hint::black_box(last.as_bytes())))
        });
        c.bench_function(&format!("api_key_lookup/{n}_digests/miss"), |b| {
            b.iter(|| table.lookup(std::hint::black_box(b"not-a-key".as_slice())))
        });
    }
}

fn replay(c: &mut Criterion) {
    for with_replay in [false, true] {
        let cfg = hs_config(with_replay);
        let keys = Static(&cfg);
        let mut guard = StoreGuard::<MemoryStore>::default();
        if let Some(s) = cfg.providers[0].replay.as_ref() {
            prepare(&mut guard.store, s).unwrap();
        }
        // Each iteration: a fresh jti, made (and signed) outside the timed part; virtual time
        // advances 10 ms per request and tokens live 2 s, so the store holds a steady few
        // hundred live records (a busy proxy's steady state, not an ever-filling table).
        let mut i = 0u64;
        let name = if with_replay {
            "decide_hs256/jti_replay"
        } else {
            "decide_hs256/no_replay"
        };
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    i += 1;
                    let now = NOW + (i / 100) as i64;
                    let h = vec![
                        (":method".to_string(), b"GET".to_vec()),
                        (":path".to_string(), b"/".to_vec()),
                        (
                            "authorization".to_string(),
                            format!("Bearer {}", hs256(i, now + 2)).into_bytes(),
                        ),
                    ];
                    (h, now)
                },
                |(h, now)| {
                    let mut cache = Caches::new(0, 0);
                    let d = if with_replay {
                        decide_with(&cfg, &h, &keys, &mut cache, &mut guard, now)
                    } else {
                        decide_with(&cfg, &h, &keys, &mut cache, &mut NoReplayStore, now)
                    };
                    assert!(matches!(d, Decision::Allow(..)), "{d:?}");
                    d
                },
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, api_keys, replay);
criterion_main!(benches);
