//! `run FILE`: one warm-up pass, then one timed pass per algorithm and mode.

use std::hint::black_box;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use meshguard_core::config::FilterConfig;
use meshguard_core::jwt::{validate, Algorithm, KeySet, ValidationSettings};
use meshguard_core::jwt_authn::cache::Caches;
use meshguard_core::jwt_authn::decide::ProviderKeys;
use meshguard_core::jwt_authn::{decide, Decision, JwtAuthnConfig, KeySource, KeyView};
use serde_json::{json, Value};

const ALGS: [(&str, Algorithm); 4] = [
    ("RS256", Algorithm::RS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
    // The reference for everything but the signature (HMAC takes a few µs).
    ("HS256", Algorithm::HS256),
];
const WARMUP: usize = 100;

struct Static<'a>(&'a KeySet);

impl KeyView for Static<'_> {
    fn keys(&self, _: usize) -> ProviderKeys<'_> {
        ProviderKeys::Ready {
            keys: self.0,
            generation: 1,
            may_refetch: false,
        }
    }
}

struct Bench<'a> {
    cfg: &'a JwtAuthnConfig,
    settings: &'a ValidationSettings,
    keys: &'a KeySet,
    now: i64,
}

impl Bench<'_> {
    /// The filter's call on a cache miss: every token is new to a fresh cache.
    fn decide(&self, tokens: &[String]) -> usize {
        let mut cache = Caches::new(
            self.cfg.cache_max_entries,
            self.cfg.cache_max_failed_entries,
        );
        let view = Static(self.keys);
        let mut ok = 0;
        for t in tokens {
            let headers = vec![
                (":method".to_string(), b"GET".to_vec()),
                (":path".to_string(), b"/".to_vec()),
                (
                    "authorization".to_string(),
                    format!("Bearer {t}").into_bytes(),
                ),
            ];
            if let Decision::Allow(outcome, allow) =
                decide(self.cfg, &headers, &view, &mut cache, self.now)
            {
                ok += usize::from(outcome.as_str() == "verified");
                black_box((outcome.handoff(self.cfg), allow));
            }
        }
        ok
    }

    fn validate(&self, tokens: &[String]) -> usize {
        tokens
            .iter()
            .filter(|t| black_box(validate(t, self.settings, self.keys, self.now)).is_ok())
            .count()
    }

    fn signature(&self, alg: Algorithm, split: &[Split]) -> usize {
        split
            .iter()
            .filter(|(input, sig, kid)| {
                self.keys
                    .verify(kid.as_deref(), alg, input.as_bytes(), sig)
                    .is_ok()
            })
            .count()
    }
}

/// (signing input, signature, kid) of one token.
type Split = (String, Vec<u8>, Option<String>);

/// A named check of one split token.
type Check<'a> = (&'static str, &'a dyn Fn(&Split) -> bool);

/// Each token, split.
fn split(tokens: &[String]) -> Result<Vec<Split>, String> {
    tokens
        .iter()
        .map(|t| {
            let (input, sig) = t.rsplit_once('.').ok_or("token without '.'")?;
            let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
            let header = input.split('.').next().unwrap_or_default();
            let header: Value = URL_SAFE_NO_PAD
                .decode(header)
                .ok()
                .and_then(|h| serde_json::from_slice(&h).ok())
                .unwrap_or_default();
            let kid = header["kid"].as_str().map(str::to_owned);
            Ok((input.to_string(), sig, kid))
        })
        .collect()
}

/// Ed25519 through the crates directly (key parsed once): is our wrapper or `verify_strict` what
/// costs, and would ring be faster?
fn eddsa_crates(jwks: &Value, split: &[Split]) -> Result<Vec<(&'static str, f64)>, String> {
    let x = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["crv"] == "Ed25519"))
        .and_then(|k| k["x"].as_str())
        .ok_or("no Ed25519 key")?;
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(x)
        .ok()
        .and_then(|x| x.try_into().ok())
        .ok_or("bad Ed25519 key")?;
    let dalek = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|e| e.to_string())?;
    let ring = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x);
    let sig = |s: &[u8]| ed25519_dalek::Signature::from_slice(s).ok();
    let checks: [Check<'_>; 3] = [
        ("crate:dalek_verify_strict", &|(i, s, _)| {
            sig(s).is_some_and(|s| dalek.verify_strict(i.as_bytes(), &s).is_ok())
        }),
        ("crate:dalek_verify", &|(i, s, _)| {
            use ed25519_dalek::Verifier;
            sig(s).is_some_and(|s| dalek.verify(i.as_bytes(), &s).is_ok())
        }),
        ("crate:ring", &|(i, s, _)| {
            ring.verify(i.as_bytes(), s).is_ok()
        }),
    ];
    for (_, check) in checks {
        split.iter().take(WARMUP).for_each(|t| {
            black_box(check(t));
        });
    }
    // Interleaved in chunks of 50 tokens, so that load from elsewhere hits all three alike.
    let mut total = [0.0f64; 3];
    let mut ok = [0usize; 3];
    for chunk in split.chunks(50) {
        for (i, (_, check)) in checks.iter().enumerate() {
            let start = Instant::now();
            let n = chunk.iter().filter(|t| check(t)).count();
            if let (Some(t), Some(k)) = (total.get_mut(i), ok.get_mut(i)) {
                *t += start.elapsed().as_secs_f64();
                *k += n;
            }
        }
    }
    let mut out = Vec::new();
    for (i, (name, _)) in checks.iter().enumerate() {
        if ok.get(i) != Some(&split.len()) {
            return Err(format!("{name}: not every token verified"));
        }
        let t = total.get(i).copied().unwrap_or_default();
        out.push((*name, t * 1e6 / split.len().max(1) as f64));
    }
    Ok(out)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let file = args.first().ok_or("usage: coldbench run FILE [ALG ...]")?;
    let only = args.get(1..).unwrap_or_default();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let now = doc["now"].as_i64().ok_or("no now")?;
    let config = json!({
        "providers": {"bench": {
            "issuer": doc["issuer"],
            "audiences": [doc["audience"]],
            "local_jwks": {"inline_string": doc["jwks"].to_string()},
            // HS256 is off by default for a JWKS provider; on here for the reference tokens.
            "allowed_algorithms": ["RS256", "ES256", "EdDSA", "HS256"],
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        "cache": {"max_entries": 10_000},
    });
    let cfg = JwtAuthnConfig::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())?;
    let provider = cfg.providers.first().ok_or("no provider")?;
    let KeySource::Static(keys) = &provider.keys else {
        return Err("keys are not static".into());
    };
    let bench = Bench {
        cfg: &cfg,
        settings: &provider.settings,
        keys,
        now,
    };
    let mut passes = Vec::new();
    for (name, alg) in ALGS {
        if !only.is_empty() && !only.iter().any(|a| a == name) {
            continue;
        }
        let Some(tokens) = doc["tokens"][name].as_array() else {
            continue; // minted before this algorithm was added
        };
        let tokens: Vec<String> = tokens
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let split = split(&tokens)?;
        let warm = tokens.len().min(WARMUP);
        bench.decide(tokens.get(..warm).unwrap_or_default());
        bench.validate(tokens.get(..warm).unwrap_or_default());
        bench.signature(alg, split.get(..warm).unwrap_or_default());
        passes.push((name, alg, tokens, split));
    }
    for (name, alg, tokens, split) in &passes {
        let modes: [(&str, &dyn Fn() -> usize); 3] = [
            ("decide", &|| bench.decide(tokens)),
            ("validate", &|| bench.validate(tokens)),
            ("signature", &|| bench.signature(*alg, split)),
        ];
        for (mode, pass) in modes {
            let start = Instant::now();
            let ok = pass();
            let us = start.elapsed().as_secs_f64() * 1e6 / tokens.len().max(1) as f64;
            if ok != tokens.len() {
                return Err(format!(
                    "{name} {mode}: {ok} of {} tokens verified",
                    tokens.len()
                ));
            }
            println!("RESULT {name} {mode} {us:.1}");
        }
        if *alg == Algorithm::EdDSA {
            for (mode, us) in eddsa_crates(&doc["jwks"], split)? {
                println!("RESULT {name} {mode} {us:.1}");
            }
        }
    }
    Ok(())
}
