//! The failed-verdict cache of one worker: refusals that cannot change while the provider's keys
//! and the config stay the same, so a repeated invalid token costs a digest and a lookup instead
//! of a signature verification (the validator checks the signature before it reads any claim,
//! so an expired or wrong-audience token pays the full verify too).
//!
//! Bounded (LRU, `cache.max_failed_entries`), keyed like the verified cache by (provider,
//! SHA-256 of the whole token), and separate from it: a flood of junk tokens evicts only other
//! junk, never a verified token.
//!
//! What is cached is what [`crate::jwt::validate_explained`] calls stable ([`Stability`]):
//! - for good: malformed / too large / forbidden header / unsupported or disallowed algorithm /
//!   wrong `typ` (token and config only), `bad_signature` and `no_matching_key` (for the key
//!   generation they were checked under), `bad_claim`, `missing_exp`, `expired`;
//! - until `exp` + skew (then the token is `expired` instead): `bad_issuer`, `bad_audience`,
//!   `lifetime_too_long`, `missing_jti`, and `claims_too_deep`.
//!
//! Never cached: `unknown_kid` (the key may be published), `not_yet_valid` and
//! `issued_in_future` (they become valid), `keys_unavailable`, the replay reasons, an issuer
//! mismatch seen without crypto (every valid token of another provider would take an entry),
//! and anything about the request rather than the token (missing, duplicate headers).
//!
//! An entry is served only under the key generation it was made with (a JWKS change voids every
//! entry of the provider, so a token signed with a newly published key is verified again) and
//! only while `now` ≥ the time it was made (a clock stepped back voids it, as in the verified
//! cache).

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::jwt::Stability;

/// Default `cache.max_failed_entries`.
pub const DEFAULT_MAX_FAILED_ENTRIES: usize = 1_000;

/// Bounded cache of stable refusals.
#[derive(Debug)]
pub struct FailedCache {
    entries: Option<LruCache<(usize, [u8; 32]), Entry>>,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    reason: &'static str,
    key_generation: u64,
    /// When the refusal was made: not served to a clock earlier than this.
    failed_at: i64,
    /// Served only while `now` is before this (`None`: no end).
    until: Option<i64>,
}

impl FailedCache {
    /// A cache of at most `max_entries` refusals (0 = disabled: every lookup misses, nothing
    /// stored).
    pub fn new(max_entries: usize) -> Self {
        FailedCache {
            entries: NonZeroUsize::new(max_entries).map(LruCache::new),
            hits: 0,
            misses: 0,
        }
    }

    /// The cached reason for `digest` of `provider`, valid at `now` under `key_generation`.
    pub fn get(
        &mut self,
        provider: usize,
        digest: &[u8; 32],
        key_generation: u64,
        now: i64,
    ) -> Option<&'static str> {
        let Some(entries) = self.entries.as_mut() else {
            self.misses += 1;
            return None;
        };
        let key = (provider, *digest);
        let found = match entries.get(&key) {
            Some(e)
                if e.key_generation == key_generation
                    && now >= e.failed_at
                    && e.until.is_none_or(|u| now < u) =>
            {
                Some(e.reason)
            }
            Some(_) => {
                entries.pop(&key);
                None
            }
            None => None,
        };
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Remembers that `digest` of `provider` was refused for `reason` at `now` under
    /// `key_generation`, if `stability` says the refusal holds (ignored when transient, when
    /// its end has passed, or when disabled).
    pub fn put(
        &mut self,
        provider: usize,
        digest: [u8; 32],
        reason: &'static str,
        stability: Stability,
        key_generation: u64,
        now: i64,
    ) {
        let Some(entries) = self.entries.as_mut() else {
            return;
        };
        let until = match stability {
            Stability::Permanent => None,
            Stability::Until(t) if now < t => Some(t),
            Stability::Until(_) | Stability::Transient => return,
        };
        entries.put(
            (provider, digest),
            Entry {
                reason,
                key_generation,
                failed_at: now,
                until,
            },
        );
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that were not.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const NOW: i64 = 1_700_000_000;

    #[wasm_bindgen_test(unsupported = test)]
    fn permanent_refusal_hits_until_keys_change() {
        let mut c = FailedCache::new(10);
        c.put(0, [1; 32], "bad_signature", Stability::Permanent, 7, NOW);
        assert_eq!(c.get(0, &[1; 32], 7, NOW), Some("bad_signature"));
        assert_eq!(
            c.get(0, &[1; 32], 7, NOW + 86_400 * 365),
            Some("bad_signature")
        );
        assert_eq!(c.get(1, &[1; 32], 7, NOW), None, "other provider");
        assert_eq!(c.get(0, &[2; 32], 7, NOW), None, "other token");
        assert_eq!(c.get(0, &[1; 32], 8, NOW), None, "new key generation");
        assert!(c.is_empty(), "an entry of an older generation is dropped");
        assert_eq!(c.get(0, &[1; 32], 7, NOW), None, "and not served again");
        assert_eq!((c.hits(), c.misses()), (2, 4));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn until_refusal_ends_at_its_bound() {
        let mut c = FailedCache::new(10);
        c.put(
            0,
            [1; 32],
            "bad_audience",
            Stability::Until(NOW + 100),
            1,
            NOW,
        );
        assert_eq!(c.get(0, &[1; 32], 1, NOW + 99), Some("bad_audience"));
        assert_eq!(c.get(0, &[1; 32], 1, NOW + 100), None, "exp + skew reached");
        assert!(c.is_empty());
        c.put(0, [2; 32], "bad_audience", Stability::Until(NOW), 1, NOW);
        assert!(c.is_empty(), "a bound already passed is not stored");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn transient_refusals_are_not_stored() {
        let mut c = FailedCache::new(10);
        c.put(0, [1; 32], "not_yet_valid", Stability::Transient, 1, NOW);
        assert!(c.is_empty());
        assert_eq!(c.get(0, &[1; 32], 1, NOW), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn clock_stepped_back_voids_an_entry() {
        let mut c = FailedCache::new(10);
        c.put(0, [1; 32], "expired", Stability::Permanent, 1, NOW);
        assert_eq!(c.get(0, &[1; 32], 1, NOW + 1), Some("expired"));
        assert_eq!(c.get(0, &[1; 32], 1, NOW - 1), None, "clock went back");
        assert!(c.is_empty(), "dropped");
        assert_eq!(c.get(0, &[1; 32], 1, NOW + 1), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bounded_lru() {
        let mut c = FailedCache::new(2);
        c.put(0, [1; 32], "malformed", Stability::Permanent, 1, NOW);
        c.put(0, [2; 32], "malformed", Stability::Permanent, 1, NOW);
        assert_eq!(c.get(0, &[1; 32], 1, NOW), Some("malformed"));
        c.put(0, [3; 32], "malformed", Stability::Permanent, 1, NOW);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get(0, &[2; 32], 1, NOW),
            None,
            "least recently used evicted"
        );
        assert_eq!(c.get(0, &[1; 32], 1, NOW), Some("malformed"));
        assert_eq!(c.get(0, &[3; 32], 1, NOW), Some("malformed"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn disabled() {
        let mut c = FailedCache::new(0);
        c.put(0, [1; 32], "bad_signature", Stability::Permanent, 1, NOW);
        assert_eq!(c.get(0, &[1; 32], 1, NOW), None);
        assert_eq!((c.len(), c.misses()), (0, 1));
    }
}
