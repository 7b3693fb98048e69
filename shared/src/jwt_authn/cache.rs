//! The verified-token cache of one worker: bounded (LRU), keyed by (provider, SHA-256 of the whole
//! token), each entry valid until the token's `exp` and only for the key set it was verified with.
//!
//! Only verified tokens are cached; tokens without `exp` are not cached. An entry is dropped when
//! `now ≥ exp` (never served past `exp`, even within clock skew: such a token is validated again)
//! or when the provider's keys changed (a removed key stops working at once).
//!
//! Refusals have their own cache ([`super::failed_cache`]); [`Caches`] holds both.

use std::num::NonZeroUsize;
use std::rc::Rc;

use lru::LruCache;

use crate::jwt::VerifiedToken;

use super::failed_cache::FailedCache;

/// The two per-worker caches [`super::decide()`] consults: verified tokens, and refusals that
/// cannot change ([`FailedCache`]). Two separate LRUs, so invalid tokens never evict a verified
/// one.
#[derive(Debug)]
pub struct Caches {
    /// Verified tokens (`cache.max_entries`).
    pub verified: VerifiedCache,
    /// Stable refusals (`cache.max_failed_entries`).
    pub failed: FailedCache,
}

impl Caches {
    /// Caches of at most `max_entries` verified tokens and `max_failed_entries` refusals (0
    /// disables either).
    pub fn new(max_entries: usize, max_failed_entries: usize) -> Self {
        Caches {
            verified: VerifiedCache::new(max_entries),
            failed: FailedCache::new(max_failed_entries),
        }
    }
}

/// Bounded cache of verified tokens.
#[derive(Debug)]
pub struct VerifiedCache {
    entries: Option<LruCache<(usize, [u8; 32]), Entry>>,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    token: Rc<VerifiedToken>,
    expires_at: i64,
    key_generation: u64,
    /// When it was verified: a clock that went back before this time (NTP step) makes the entry
    /// unusable, so `nbf`/`iat` are checked again rather than served from before they held.
    verified_at: i64,
}

/// Result of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A valid entry.
    Hit(Rc<VerifiedToken>),
    /// No valid entry.
    Miss,
}

impl VerifiedCache {
    /// A cache of at most `max_entries` tokens (0 = disabled: every lookup misses, nothing stored).
    pub fn new(max_entries: usize) -> Self {
        VerifiedCache {
            entries: NonZeroUsize::new(max_entries).map(LruCache::new),
            hits: 0,
            misses: 0,
        }
    }

    /// Looks up `digest` for `provider`, valid at `now` under `key_generation`.
    pub fn get(
        &mut self,
        provider: usize,
        digest: &[u8; 32],
        key_generation: u64,
        now: i64,
    ) -> Lookup {
        let Some(entries) = self.entries.as_mut() else {
            self.misses += 1;
            return Lookup::Miss;
        };
        let key = (provider, *digest);
        let valid = match entries.get(&key) {
            Some(e)
                if now < e.expires_at
                    && now >= e.verified_at
                    && e.key_generation == key_generation =>
            {
                Some(Rc::clone(&e.token))
            }
            Some(_) => {
                entries.pop(&key);
                None
            }
            None => None,
        };
        match valid {
            Some(t) => {
                self.hits += 1;
                Lookup::Hit(t)
            }
            None => {
                self.misses += 1;
                Lookup::Miss
            }
        }
    }

    /// Stores a verified token (ignored without `exp`, when already expired, or when disabled).
    pub fn put(
        &mut self,
        provider: usize,
        digest: [u8; 32],
        token: Rc<VerifiedToken>,
        key_generation: u64,
        now: i64,
    ) {
        let (Some(entries), Some(exp)) = (self.entries.as_mut(), token.expires_at) else {
            return;
        };
        if now >= exp {
            return;
        }
        entries.put(
            (provider, digest),
            Entry {
                token,
                expires_at: exp,
                key_generation,
                verified_at: now,
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

    /// Lookups that found a valid entry.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that did not.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::jwt::Algorithm;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn token(exp: Option<i64>) -> Rc<VerifiedToken> {
        Rc::new(VerifiedToken {
            issuer: None,
            subject: Some("alice".into()),
            audiences: vec![],
            expires_at: exp,
            jti: None,
            kid: None,
            algorithm: Algorithm::ES256,
            claims: serde_json::Map::new(),
            payload_json: "{}".into(),
        })
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hit_until_exp_then_miss() {
        let mut c = VerifiedCache::new(10);
        c.put(0, [1; 32], token(Some(1000)), 1, 900);
        assert!(matches!(c.get(0, &[1; 32], 1, 999), Lookup::Hit(_)));
        assert_eq!(c.get(0, &[1; 32], 1, 1000), Lookup::Miss);
        assert!(c.is_empty(), "expired entry dropped");
        assert_eq!((c.hits(), c.misses()), (1, 1));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keyed_by_provider_and_key_generation() {
        let mut c = VerifiedCache::new(10);
        c.put(0, [1; 32], token(Some(1000)), 1, 0);
        assert_eq!(c.get(1, &[1; 32], 1, 0), Lookup::Miss);
        assert_eq!(c.get(0, &[2; 32], 1, 0), Lookup::Miss);
        assert_eq!(c.get(0, &[1; 32], 2, 0), Lookup::Miss, "keys changed");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bounded_lru_and_no_exp_not_cached() {
        let mut c = VerifiedCache::new(2);
        c.put(0, [1; 32], token(Some(1000)), 1, 0);
        c.put(0, [2; 32], token(Some(1000)), 1, 0);
        assert!(matches!(c.get(0, &[1; 32], 1, 0), Lookup::Hit(_)));
        c.put(0, [3; 32], token(Some(1000)), 1, 0);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get(0, &[2; 32], 1, 0),
            Lookup::Miss,
            "least recently used evicted"
        );
        c.put(0, [4; 32], token(None), 1, 0);
        assert_eq!(c.get(0, &[4; 32], 1, 0), Lookup::Miss);
        c.put(0, [5; 32], token(Some(10)), 1, 10);
        assert_eq!(
            c.get(0, &[5; 32], 1, 0),
            Lookup::Miss,
            "already expired not stored"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn disabled() {
        let mut c = VerifiedCache::new(0);
        c.put(0, [1; 32], token(Some(1000)), 1, 0);
        assert_eq!(c.get(0, &[1; 32], 1, 0), Lookup::Miss);
        assert_eq!(c.misses(), 1);
    }
}
