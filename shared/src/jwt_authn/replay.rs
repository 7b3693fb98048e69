//! `jti` replay detection (NIST SP 800-204 MS-SS-08): per provider, a token's `jti` is admitted
//! once within its lifetime, across every worker of the proxy.
//!
//! **Where.** Proxy shared data (one namespace per VM id, shared by all workers). A provider with
//! `jti_replay` owns `buckets` entries `meshguard.jwt_authn.jti.<provider>.<buckets>.<i>`, all
//! created empty at configure time ([`prepare`]) so every later write is a compare-and-swap (the
//! ABI writes to an absent key unconditionally, which could lose a racing insert).
//!
//! **Bounded.** A bucket holds at most [`PER_BUCKET`] records of 24 bytes (16-byte fingerprint =
//! SHA-256 of `iss`, `jti` truncated; 8-byte expiry). `max_entries` (default 16384) is rounded up
//! to whole buckets, so shared data holds at most `buckets × 192` bytes per provider and never
//! grows. A record expires at the token's `exp` + the provider's clock skew (the last moment the
//! token itself is accepted) and its place is reused from then on.
//!
//! **Full.** When a token's bucket holds [`PER_BUCKET`] live records, the token is refused
//! (`replay_cache_full`, fail closed: admitting it would allow an unchecked replay) and counted;
//! raise `max_entries` or lower token lifetimes. A failed hostcall, a corrupt bucket or more CAS
//! conflicts than `max_cas_retries` also fail closed (`replay_check_failed`).
//!
//! **Exactly once.** Check-and-insert is one read (value + CAS token), then a conditional write;
//! a conflicting write by another worker makes the loop read again, so of two workers racing on
//! one `jti` exactly one writes the record and the other then finds it.

use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::reason;
use crate::config::ConfigErrors;
use crate::jwt::VerifiedToken;

/// Records per bucket.
pub const PER_BUCKET: usize = 8;
const RECORD: usize = 24;
/// Default `max_entries`.
pub const DEFAULT_MAX_ENTRIES: u32 = 16_384;
/// Default `max_cas_retries`.
pub const DEFAULT_CAS_RETRIES: u32 = 16;

/// `jti_replay` of a provider.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJtiReplay {
    /// Refuse tokens without a string `jti` (`missing_jti`; default true). With false, such
    /// tokens pass unchecked.
    #[serde(default)]
    pub required: Option<bool>,
    /// Tokens remembered at once across all workers (default 16384, 8..=4194304), rounded up
    /// to buckets of 8. Shared memory used: ≈ 24 bytes per entry.
    #[serde(default)]
    pub max_entries: Option<u32>,
    /// Re-reads after a conflicting write by another worker before failing closed (default 16).
    #[serde(default)]
    pub max_cas_retries: Option<u32>,
}

/// Compiled `jti_replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySettings {
    /// Tokens without `jti` are refused.
    pub required: bool,
    /// Number of buckets.
    pub buckets: u32,
    /// Shared-data key prefix (`…<buckets>.`).
    pub key_prefix: String,
    /// Conflicts tolerated per check.
    pub max_cas_retries: u32,
    /// Seconds added to `exp` (the provider's clock skew).
    pub grace_seconds: i64,
}

impl ReplaySettings {
    /// Compiles `raw` for provider `name` at `path`.
    pub(crate) fn compile(
        raw: &RawJtiReplay,
        name: &str,
        grace_seconds: u64,
        path: &str,
        errs: &mut ConfigErrors,
    ) -> ReplaySettings {
        let max = raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
        if !(8..=4_194_304).contains(&max) {
            errs.push(format!("{path}.max_entries"), "must be 8..=4194304");
        }
        let retries = raw.max_cas_retries.unwrap_or(DEFAULT_CAS_RETRIES);
        if retries > 1000 {
            errs.push(format!("{path}.max_cas_retries"), "at most 1000");
        }
        let buckets = max.div_ceil(PER_BUCKET as u32).max(1);
        ReplaySettings {
            required: raw.required.unwrap_or(true),
            buckets,
            key_prefix: format!("meshguard.jwt_authn.jti.{name}.{buckets}."),
            max_cas_retries: retries,
            grace_seconds: i64::try_from(grace_seconds).unwrap_or(0),
        }
    }

    /// Shared-data key of bucket `i`.
    pub fn bucket_key(&self, i: u32) -> String {
        format!("{}{i}", self.key_prefix)
    }
}

/// A failure of the shared-data store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A hostcall failed (the name of the operation).
    #[error("shared data {0} failed")]
    Store(&'static str),
    /// A bucket is absent (not prepared at configure time).
    #[error("replay bucket {0} is missing")]
    Missing(String),
    /// A bucket does not hold whole records.
    #[error("replay bucket {0} is corrupt")]
    Corrupt(String),
}

/// Shared data with compare-and-swap (the proxy's, or a fake in tests).
pub trait JtiStore {
    /// Value and CAS token of `key`; `None` when absent.
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ReplayError>;
    /// Writes `value` if the CAS token is still `cas` (`None`: unconditionally); `Ok(false)` when
    /// another writer came first.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, ReplayError>;
}

/// An in-process [`JtiStore`] with the proxy's CAS semantics, for tests and benchmarks (it is
/// not shared between processes or VMs).
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: std::collections::HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl MemoryStore {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The value stored under `key`, if any.
    pub fn value(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(|(v, _)| v.as_slice())
    }

    /// Every stored value.
    pub fn values(&self) -> impl Iterator<Item = &[u8]> {
        self.data.values().map(|(v, _)| v.as_slice())
    }
}

impl JtiStore for MemoryStore {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ReplayError> {
        Ok(self.data.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, ReplayError> {
        if let (Some(c), Some((_, cur))) = (cas, self.data.get(key)) {
            if c != *cur {
                return Ok(false);
            }
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.data
            .insert(key.to_string(), (value.to_vec(), self.last_cas));
        Ok(true)
    }
}

/// Creates every absent bucket of `s` (empty). Run at configure time.
pub fn prepare(store: &mut dyn JtiStore, s: &ReplaySettings) -> Result<(), ReplayError> {
    for i in 0..s.buckets {
        let key = s.bucket_key(i);
        if store.get(&key)?.is_none() {
            store.set(&key, &[], None)?;
        }
    }
    Ok(())
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// First use: recorded.
    Fresh,
    /// Already used within its lifetime.
    Replayed,
    /// The bucket is full of live records: refused.
    Full,
    /// The store failed or stayed contended: refused.
    Failed,
}

/// A check's verdict and the CAS conflicts met on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayCheck {
    /// The verdict.
    pub verdict: ReplayVerdict,
    /// Conflicting writes by other workers (each caused a re-read).
    pub conflicts: u32,
}

/// Fingerprint and bucket of (`iss`, `jti`).
pub fn locate(s: &ReplaySettings, issuer: &str, jti: &str) -> ([u8; 16], u32) {
    let mut h = Sha256::new();
    h.update(b"meshguard.jti\0");
    h.update((issuer.len() as u64).to_be_bytes());
    h.update(issuer.as_bytes());
    h.update(jti.as_bytes());
    let d: [u8; 32] = h.finalize().into();
    let mut fp = [0u8; 16];
    fp.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    let mut b = [0u8; 8];
    b.copy_from_slice(d.get(16..24).unwrap_or(&[0; 8]));
    let bucket = u64::from_be_bytes(b) % u64::from(s.buckets.max(1));
    (fp, bucket as u32)
}

fn decode(bytes: &[u8]) -> Option<Vec<([u8; 16], i64)>> {
    if !bytes.len().is_multiple_of(RECORD) || bytes.len() > RECORD * PER_BUCKET {
        return None;
    }
    bytes
        .chunks_exact(RECORD)
        .map(|r| {
            let fp: [u8; 16] = r.get(..16)?.try_into().ok()?;
            let exp: [u8; 8] = r.get(16..)?.try_into().ok()?;
            Some((fp, i64::from_be_bytes(exp)))
        })
        .collect()
}

fn encode(records: &[([u8; 16], i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * RECORD);
    for (fp, exp) in records {
        out.extend_from_slice(fp);
        out.extend_from_slice(&exp.to_be_bytes());
    }
    out
}

/// Admits (`iss`, `jti`) of a token expiring at `exp` once: records it, or finds it recorded.
pub fn check(
    store: &mut dyn JtiStore,
    s: &ReplaySettings,
    issuer: &str,
    jti: &str,
    exp: i64,
    now: i64,
) -> ReplayCheck {
    let (fp, bucket) = locate(s, issuer, jti);
    let key = s.bucket_key(bucket);
    let until = exp.saturating_add(s.grace_seconds);
    let mut conflicts = 0;
    let done = |verdict, conflicts| ReplayCheck { verdict, conflicts };
    loop {
        let (value, cas) = match store.get(&key) {
            Ok(Some(v)) => v,
            Ok(None) | Err(_) => return done(ReplayVerdict::Failed, conflicts),
        };
        let Some(mut records) = decode(&value) else {
            return done(ReplayVerdict::Failed, conflicts);
        };
        records.retain(|(_, e)| *e > now);
        if records.iter().any(|(f, _)| *f == fp) {
            return done(ReplayVerdict::Replayed, conflicts);
        }
        if records.len() >= PER_BUCKET {
            return done(ReplayVerdict::Full, conflicts);
        }
        records.push((fp, until));
        match store.set(&key, &encode(&records), Some(cas)) {
            Ok(true) => return done(ReplayVerdict::Fresh, conflicts),
            Ok(false) if conflicts < s.max_cas_retries => conflicts += 1,
            Ok(false) | Err(_) => return done(ReplayVerdict::Failed, conflicts),
        }
    }
}

/// Replay checks as [`super::decide::decide_with`] asks for them.
pub trait ReplayGuard {
    /// Checks the verified `token` of provider `p`, whose `jti_replay` is `s`, at `now`;
    /// `Err(reason)` refuses it.
    fn check(
        &mut self,
        p: usize,
        s: &ReplaySettings,
        token: &VerifiedToken,
        now: i64,
    ) -> Result<(), &'static str>;
}

/// The `jti`s one request has consumed: (provider, `iss`, `jti`). Kept by the filter per stream
/// while the request is paused, and dropped when its stream ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumed(Vec<(usize, String, String)>);

impl Consumed {
    /// True when the request consumed none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of `jti`s consumed.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The [`ReplayGuard`] of one request that may be decided more than once: a `requires_all`
/// request whose first provider's token was admitted (its `jti` recorded) and which then paused
/// for another provider's keys is decided again when they arrive, and must not be refused as a
/// replay of itself. A `jti` this request already consumed (`consumed`) is admitted again
/// without asking `guard`; any other goes to `guard` and, once admitted, joins `consumed`. The
/// token is validated again before each check (expiry included), and `consumed` belongs to one
/// request only, so another request with the same `jti` is still refused.
pub struct RequestGuard<'a> {
    /// The worker's guard (shared data).
    pub guard: &'a mut dyn ReplayGuard,
    /// What this request consumed in earlier decisions.
    pub consumed: &'a mut Consumed,
}

impl ReplayGuard for RequestGuard<'_> {
    fn check(
        &mut self,
        p: usize,
        s: &ReplaySettings,
        token: &VerifiedToken,
        now: i64,
    ) -> Result<(), &'static str> {
        let issuer = token.issuer.as_deref().unwrap_or("");
        if let Some(jti) = token.jti.as_deref() {
            let mine = |(q, i, j): &(usize, String, String)| *q == p && i == issuer && j == jti;
            if self.consumed.0.iter().any(mine) {
                return Ok(());
            }
        }
        self.guard.check(p, s, token, now)?;
        if let Some(jti) = &token.jti {
            self.consumed.0.push((p, issuer.to_string(), jti.clone()));
        }
        Ok(())
    }
}

/// For callers without shared data: every token of a provider with `jti_replay` is refused
/// (`replay_check_failed`), never admitted unchecked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplayStore;

impl ReplayGuard for NoReplayStore {
    fn check(
        &mut self,
        _: usize,
        _: &ReplaySettings,
        _: &VerifiedToken,
        _: i64,
    ) -> Result<(), &'static str> {
        Err(reason::REPLAY_FAILED)
    }
}

/// Counts of replay checks (for metrics), by result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// First uses recorded.
    pub fresh: u64,
    /// Replays refused.
    pub replayed: u64,
    /// Refused: bucket full.
    pub full: u64,
    /// Refused: store failure or contention.
    pub failed: u64,
    /// Tokens without `jti` let through unchecked (`required: false`).
    pub skipped: u64,
    /// CAS conflicts met.
    pub conflicts: u64,
}

/// A [`ReplayGuard`] over a [`JtiStore`].
#[derive(Debug, Default)]
pub struct StoreGuard<S> {
    /// The store.
    pub store: S,
    /// What the checks found.
    pub stats: ReplayStats,
}

impl<S: JtiStore> ReplayGuard for StoreGuard<S> {
    fn check(
        &mut self,
        _p: usize,
        s: &ReplaySettings,
        token: &VerifiedToken,
        now: i64,
    ) -> Result<(), &'static str> {
        let Some(jti) = token.jti.as_deref() else {
            // `required` tokens without `jti` were refused by validation (`missing_jti`).
            if s.required {
                self.stats.failed += 1;
                return Err(reason::REPLAY_FAILED);
            }
            self.stats.skipped += 1;
            return Ok(());
        };
        // `jti_replay` requires `require_expiration`, so verified tokens have `exp`.
        let Some(exp) = token.expires_at else {
            self.stats.failed += 1;
            return Err(reason::REPLAY_FAILED);
        };
        let issuer = token.issuer.as_deref().unwrap_or("");
        let r = check(&mut self.store, s, issuer, jti, exp, now);
        self.stats.conflicts += u64::from(r.conflicts);
        match r.verdict {
            ReplayVerdict::Fresh => {
                self.stats.fresh += 1;
                Ok(())
            }
            ReplayVerdict::Replayed => {
                self.stats.replayed += 1;
                Err(reason::REPLAYED)
            }
            ReplayVerdict::Full => {
                self.stats.full += 1;
                Err(reason::REPLAY_FULL)
            }
            ReplayVerdict::Failed => {
                self.stats.failed += 1;
                Err(reason::REPLAY_FAILED)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "replay_tests.rs"]
mod tests;
