//! API keys as an identity source (Kong `key-auth` is the anchor): a provider with `api_keys`
//! instead of JWT keys takes a key from its header / query parameter / cookie locations and maps
//! it to a consumer.
//!
//! **Digests only.** The config holds SHA-256 digests of the keys (64 hex characters or 43
//! base64url characters, inline or from an environment variable), never the keys: a leaked
//! config does not leak a key. A consumer lists several digests for rotation (add the new one,
//! move clients, remove the old one).
//!
//! **Comparison.** A request's key is hashed once, then compared with *every* configured digest
//! (as four 64-bit words) with [`subtle::ConstantTimeEq`], and the owner selected with `conditional_assign`: no early
//! exit, no branch on the data, so the time does not depend on which digest matched or how many
//! leading bytes agreed. (Even a leak on digest bytes would not help an attacker: they choose a
//! key, not its digest, and SHA-256 preimage resistance means learning digest prefixes gives no
//! way to build a key with a chosen digest. The constant-time scan is defence in depth.) The cost
//! is one SHA-256 plus one 32-byte comparison per configured digest.
//!
//! **Identity.** A match is handed off exactly like a verified JWT (outcome `verified`, provider,
//! subject, issuer = the provider's `issuer` when set, payload `{"sub": …, "iss": …, <attributes>}`),
//! so authz (`request_principals`, `when` on claims) and ratelimit (claim descriptors such as
//! `plan`) work unchanged. The identity is built once at configure time as a
//! [`VerifiedToken`] without expiry, `jti` or `kid`; its `algorithm` field has no meaning for an
//! API key (it is set to `HS256` and read by nothing).

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::config::RawProvider;
use super::reason;
use super::requirements::Verdict;
use super::secret::{self, Environment, RawEnvRef};
use crate::config::ConfigErrors;
use crate::jwt::{Algorithm, VerifiedToken};

/// Default longest key accepted, in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 256;
/// Claim names an attribute may not use (the registered JWT claims; `sub`/`iss` come from the
/// consumer and the provider).
const RESERVED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// `api_keys` of a provider.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    /// The consumers and their key digests.
    pub consumers: Vec<RawConsumer>,
    /// Longest key accepted, in bytes (default 256, at most 4096); longer → 401 `too_large`.
    #[serde(default)]
    pub max_key_bytes: Option<usize>,
}

/// One consumer (Kong: a consumer with key-auth credentials).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    /// The identity handed off as `sub` (e.g. `billing-service`).
    pub subject: String,
    /// Extra claims of the identity (e.g. `{"plan": "gold", "groups": ["ops"]}`), visible to
    /// authz `when` conditions, ratelimit claim descriptors and `claim_to_headers`. Registered
    /// claim names (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`) are refused.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// SHA-256 digests of this consumer's keys (`printf %s "$KEY" | sha256sum`): 64 hex
    /// characters, or 43 base64url characters (padding optional), or
    /// `{"environment_variable": "NAME"}` holding either form. Several = rotation.
    pub key_digests: Vec<RawDigest>,
}

/// A key digest, inline or by environment variable.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawDigest {
    /// Hex or base64url text.
    Inline(String),
    /// Read at configure time from this variable.
    Env(RawEnvRef),
}

/// The compiled key table of one provider.
#[derive(Clone)]
pub struct ApiKeys {
    /// Digests as four big-endian 64-bit words.
    digests: Vec<[u64; 4]>,
    /// Consumer index (into `consumers`) of each digest.
    owners: Vec<u32>,
    consumers: Vec<Rc<VerifiedToken>>,
    /// Longest key accepted.
    pub max_key_bytes: usize,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("consumers", &self.consumers.len())
            .field("digests", &self.digests.len())
            .field("max_key_bytes", &self.max_key_bytes)
            .finish()
    }
}

/// What a presented key amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyVerdict {
    /// The key belongs to this consumer.
    Consumer(Rc<VerifiedToken>),
    /// No configured digest matches.
    Unknown,
    /// Longer than `max_key_bytes` (not hashed).
    TooLarge,
}

impl ApiKeys {
    /// Looks a presented key up in constant time over the table (see the module doc).
    pub fn lookup(&self, key: &[u8]) -> KeyVerdict {
        if key.len() > self.max_key_bytes {
            return KeyVerdict::TooLarge;
        }
        let digest = words(&Sha256::digest(key).into());
        // 0 = no match; otherwise consumer index + 1.
        let mut found = 0u32;
        for (d, owner) in self.digests.iter().zip(&self.owners) {
            // Four 64-bit constant-time comparisons (not 32 byte-wise ones), combined without
            // branching.
            let eq = d[0].ct_eq(&digest[0])
                & d[1].ct_eq(&digest[1])
                & d[2].ct_eq(&digest[2])
                & d[3].ct_eq(&digest[3]);
            found.conditional_assign(&owner.saturating_add(1), eq);
        }
        match found
            .checked_sub(1)
            .and_then(|i| self.consumers.get(i as usize))
        {
            Some(c) => KeyVerdict::Consumer(Rc::clone(c)),
            None => KeyVerdict::Unknown,
        }
    }

    /// [`Self::lookup`] as a requirement verdict: `unknown_api_key` / `too_large` refusals.
    pub fn verdict(&self, key: &[u8]) -> (Verdict, Option<Rc<VerifiedToken>>) {
        match self.lookup(key) {
            KeyVerdict::Consumer(t) => (Verdict::Verified, Some(t)),
            KeyVerdict::Unknown => (Verdict::Failed(reason::UNKNOWN_API_KEY), None),
            KeyVerdict::TooLarge => (Verdict::Failed("too_large"), None),
        }
    }

    /// Number of consumers.
    pub fn consumers(&self) -> usize {
        self.consumers.len()
    }
}

/// A digest as four 64-bit words.
fn words(d: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (w, chunk) in out.iter_mut().zip(d.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_be_bytes(b);
    }
    out
}

/// Parses a digest text: 64 hex characters, or base64url of 32 bytes (43 characters, `=`
/// padding optional).
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(t.as_bytes().chunks_exact(2)) {
            let s = std::str::from_utf8(pair).ok()?;
            *slot = u8::from_str_radix(s, 16).ok()?;
        }
        return Some(out);
    }
    let bytes = URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok()?;
    bytes.try_into().ok()
}

/// Compiles `api_keys` at `path` (`providers.<name>.api_keys`); `issuer` is the provider's.
pub(crate) fn compile(
    raw: &RawApiKeys,
    issuer: Option<&str>,
    env: &dyn Environment,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<ApiKeys> {
    let before = errs.0.len();
    let max_key_bytes = raw.max_key_bytes.unwrap_or(DEFAULT_MAX_KEY_BYTES);
    if !(1..=4096).contains(&max_key_bytes) {
        errs.push(format!("{path}.max_key_bytes"), "must be 1..=4096");
    }
    if raw.consumers.is_empty() {
        errs.push(format!("{path}.consumers"), "at least one consumer");
    }
    let mut seen: BTreeMap<[u8; 32], String> = BTreeMap::new();
    let (mut digests, mut owners, mut consumers) = (Vec::new(), Vec::new(), Vec::new());
    for (ci, c) in raw.consumers.iter().enumerate() {
        let cpath = format!("{path}.consumers[{ci}]");
        if c.subject.is_empty() {
            errs.push(format!("{cpath}.subject"), "must not be empty");
        }
        for name in c.attributes.keys() {
            if RESERVED.contains(&name.as_str()) || name.is_empty() {
                errs.push(
                    format!("{cpath}.attributes.{name}"),
                    "reserved claim name (iss, sub, aud, exp, nbf, iat, jti) or empty",
                );
            }
        }
        if c.key_digests.is_empty() {
            errs.push(format!("{cpath}.key_digests"), "at least one digest");
        }
        for (di, d) in c.key_digests.iter().enumerate() {
            let dpath = format!("{cpath}.key_digests[{di}]");
            let (parsed, what) = match d {
                RawDigest::Inline(text) => (parse_digest(text), "this".to_string()),
                RawDigest::Env(r) => match secret::read(env, r, &dpath, errs) {
                    Some(v) => (parse_digest(v.expose()), format!("the value of {}", v.name)),
                    None => continue,
                },
            };
            let Some(digest) = parsed else {
                errs.push(
                    &dpath,
                    format!(
                        "{what} is not a SHA-256 digest (64 hex characters or 43 base64url \
                         characters; store the digest of the key, never the key)"
                    ),
                );
                continue;
            };
            if let Some(other) = seen.insert(digest, dpath.clone()) {
                errs.push(&dpath, format!("same digest as {other}"));
            }
            digests.push(words(&digest));
            owners.push(u32::try_from(ci).unwrap_or(u32::MAX));
        }
        consumers.push(Rc::new(identity(c, issuer)));
    }
    if errs.0.len() != before {
        return None;
    }
    Some(ApiKeys {
        digests,
        owners,
        consumers,
        max_key_bytes,
    })
}

/// Fields that only mean something for JWTs, refused on an `api_keys` provider at `path`.
pub(crate) fn refuse_jwt_fields(p: &RawProvider, path: &str, errs: &mut ConfigErrors) {
    for (field, set) in [
        ("audiences", !p.audiences.is_empty()),
        ("allowed_algorithms", p.allowed_algorithms.is_some()),
        ("required_typ", p.required_typ.is_some()),
        ("max_lifetime_seconds", p.max_lifetime_seconds.is_some()),
        ("clock_skew_seconds", p.clock_skew_seconds.is_some()),
        ("require_expiration", p.require_expiration.is_some()),
        ("require_jti", p.require_jti),
        ("jti_replay", p.jti_replay.is_some()),
        ("max_token_bytes", p.max_token_bytes.is_some()),
    ] {
        if set {
            errs.push(
                format!("{path}.{field}"),
                "not used with `api_keys` (a JWT setting)",
            );
        }
    }
}

/// The consumer's identity in the shape of a verified token.
fn identity(c: &RawConsumer, issuer: Option<&str>) -> VerifiedToken {
    let mut claims = serde_json::Map::new();
    for (k, v) in &c.attributes {
        claims.insert(k.clone(), v.clone());
    }
    claims.insert("sub".into(), Value::String(c.subject.clone()));
    if let Some(iss) = issuer {
        claims.insert("iss".into(), Value::String(iss.to_string()));
    }
    let payload_json = Value::Object(claims.clone()).to_string();
    VerifiedToken {
        issuer: issuer.map(str::to_string),
        subject: Some(c.subject.clone()),
        audiences: Vec::new(),
        expires_at: None,
        jti: None,
        kid: None,
        algorithm: Algorithm::HS256,
        claims,
        payload_json,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn hex(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn b64(key: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_bytes()))
    }

    fn build(v: Value, env: &[(&str, &str)]) -> Result<ApiKeys, ConfigErrors> {
        let raw: RawApiKeys = serde_json::from_value(v).unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let mut errs = ConfigErrors::default();
        let out = compile(
            &raw,
            Some("api-keys"),
            &env,
            "providers.k.api_keys",
            &mut errs,
        );
        match out {
            Some(k) if errs.is_empty() => Ok(k),
            _ => Err(errs),
        }
    }

    fn subject(v: &KeyVerdict) -> Option<String> {
        match v {
            KeyVerdict::Consumer(t) => t.subject.clone(),
            _ => None,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keys_map_to_consumers_with_rotation_and_both_digest_forms() {
        let keys = build(
            json!({"consumers": [
                {"subject": "billing", "attributes": {"plan": "gold"},
                 "key_digests": [hex("old-key"), b64("new-key")]},
                {"subject": "reports", "key_digests": [{"environment_variable": "K"}]}
            ]}),
            &[("K", &hex("env-key").to_uppercase())],
        )
        .unwrap();
        assert_eq!(keys.consumers(), 2);
        assert_eq!(
            subject(&keys.lookup(b"old-key")).as_deref(),
            Some("billing")
        );
        assert_eq!(
            subject(&keys.lookup(b"new-key")).as_deref(),
            Some("billing")
        );
        assert_eq!(
            subject(&keys.lookup(b"env-key")).as_deref(),
            Some("reports")
        );
        assert_eq!(keys.lookup(b"other"), KeyVerdict::Unknown);
        assert_eq!(keys.lookup(b""), KeyVerdict::Unknown);
        assert_eq!(keys.lookup(&[b'a'; 257]), KeyVerdict::TooLarge);
        let KeyVerdict::Consumer(t) = keys.lookup(b"new-key") else {
            panic!()
        };
        assert_eq!(t.issuer.as_deref(), Some("api-keys"));
        let payload: Value = serde_json::from_str(&t.payload_json).unwrap();
        assert_eq!(
            payload,
            json!({"sub": "billing", "iss": "api-keys", "plan": "gold"})
        );
        assert_eq!(t.claims["plan"], "gold");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn debug_shows_no_digest() {
        let keys = build(
            json!({"consumers": [{"subject": "a", "key_digests": [hex("k")]}]}),
            &[],
        )
        .unwrap();
        let dbg = format!("{keys:?}");
        assert!(!dbg.contains(&hex("k")[..16]), "{dbg}");
        assert!(dbg.contains("digests: 1"), "{dbg}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn config_errors_name_the_field_and_never_the_value() {
        let e = build(
            json!({"consumers": [
                {"subject": "", "attributes": {"sub": "x"}, "key_digests": []},
                {"subject": "b", "key_digests": ["not-a-digest", hex("k"), hex("k"),
                    {"environment_variable": "MISSING"}, {"environment_variable": "BAD"}]}
            ], "max_key_bytes": 0}),
            &[("BAD", "s3cr3t-looking-value")],
        )
        .unwrap_err()
        .to_string();
        let p = "providers.k.api_keys";
        for want in [
            format!("{p}.max_key_bytes: must be 1..=4096"),
            format!("{p}.consumers[0].subject: must not be empty"),
            format!("{p}.consumers[0].attributes.sub: reserved"),
            format!("{p}.consumers[0].key_digests: at least one"),
            format!("{p}.consumers[1].key_digests[0]: this is not a SHA-256 digest"),
            format!("{p}.consumers[1].key_digests[2]: same digest as {p}.consumers[1].key_digests[1]"),
            format!("{p}.consumers[1].key_digests[3].environment_variable: environment variable MISSING is not set"),
            format!("{p}.consumers[1].key_digests[4]: the value of BAD is not a SHA-256 digest"),
        ] {
            assert!(e.contains(&want), "missing {want:?} in {e}");
        }
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn digest_forms() {
        let d = Sha256::digest(b"x");
        let want: [u8; 32] = d.into();
        assert_eq!(parse_digest(&hex("x")), Some(want));
        assert_eq!(parse_digest(&b64("x")), Some(want));
        assert_eq!(parse_digest(&format!("{}=", b64("x"))), Some(want));
        assert_eq!(parse_digest(&hex("x")[..62]), None);
        assert_eq!(parse_digest(&format!("{}zz", &hex("x")[..62])), None);
        assert_eq!(parse_digest("x"), None);
    }
}
