//! Counters in proxy shared data: slots, probing, and the get → compute → set(cas) loop.
//!
//! **Bounded by design.** Shared data is never freed, so a rule owns a fixed set of entries,
//! all created (as [`EMPTY_SLOT`]) at configure time by [`prepare`]:
//! `meshguard.rl.<rule>.<slot>` for `slot` in `0..max_keys`, plus
//! `meshguard.rl.<rule>.missing.<tier>` per tier when `missing_descriptor` is `shared`, plus the
//! proxy-wide salt `meshguard.rl.salt`. Requests only ever overwrite these entries, so a flood of
//! unique keys cannot add a single entry: the total is `1 + Σ rules (max_keys + tiers)`.
//!
//! **Slots.** A key's hash picks a home slot; the key may live in the home slot or one of the
//! next [`PROBES`] − 1 (open addressing). Looking a key up reads those slots in order and stops
//! at the key's own record (same fingerprint and tier) or at a never-used slot (a key is always
//! placed in the first free slot of its sequence and slots are never emptied, so it cannot be
//! further on). A new key takes the first slot that is never used, unreadable, or *idle*: a
//! record whose limits are all back to full (bucket refilled, window empty) is worth nothing
//! and is reclaimed. When all probed slots hold other active keys, the new key **shares the
//! home slot's counters** (stricter, never looser: both keys draw from one bucket) and the
//! collision is reported, so operators can raise `max_keys`.
//!
//! **Exactness across workers.** Every update reads the slot with its CAS token and writes
//! conditionally; a conflicting write makes the loop re-read and recompute, at most
//! `max_cas_retries` times. Creating every entry at configure time matters here: the ABI's
//! write to an absent key is unconditional (CAS 0), so two workers creating one key at once
//! could lose an update. Envoy configures the canary VM before any worker VM serves traffic,
//! so the entries exist before the first request.

use super::algorithm::{Limit, LimitState, Quota};
use super::config::{MissingDescriptor, RateLimitConfig, Rule};
use super::descriptor::KeyHash;
use super::record::{decode, Record, Slot, EMPTY_SLOT};
use super::LimiterError;

/// Slots probed per key.
pub const PROBES: u32 = 4;
/// Shared-data key of the proxy-wide salt of the key hash.
pub const SALT_KEY: &str = "meshguard.rl.salt";
/// Length of the salt.
pub const SALT_LEN: usize = 16;

/// A shared-data store with compare-and-swap (the proxy's, or a fake in tests).
pub trait SharedStore {
    /// The value and CAS token of `key`; `None` when absent.
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, LimiterError>;
    /// Writes `value` if the entry's CAS token is still `cas` (`None`: unconditionally).
    /// `Ok(false)` when another writer got there first.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, LimiterError>;
}

/// Shared-data key of a slot.
pub fn slot_key(rule: &str, slot: u32) -> String {
    format!("meshguard.rl.{rule}.{slot}")
}

/// Shared-data key of the counter of requests lacking a descriptor value, per tier.
pub fn missing_key(rule: &str, tier: u8) -> String {
    format!("meshguard.rl.{rule}.missing.{tier}")
}

/// Which counter of a rule a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Tier of limits (0 = default).
    pub tier: u8,
    /// The key.
    pub key: CounterKey,
}

/// A hashed descriptor, or the shared counter of requests lacking one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKey {
    /// A descriptor's slot sequence and fingerprint.
    Hashed(KeyHash),
    /// The rule's shared counter for requests without a descriptor value.
    Missing,
}

/// What to do with the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Would a request pass? Reads only (rules counting responses, at request time).
    Check,
    /// Admit and count one request if every limit has room.
    Consume,
    /// Count one response whatever the room left (saturating).
    CountResponse,
}

/// Result of one counter operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every limit had room (before this request was counted).
    pub admitted: bool,
    /// Where the key stands against each limit, after the operation.
    pub quotas: Vec<Quota>,
    /// Writes lost to another worker and redone.
    pub cas_retries: u32,
    /// The key had no slot of its own and shared another key's counters.
    pub collision: bool,
}

struct Located {
    key: String,
    cas: Option<u32>,
    fingerprint: u64,
    tier: u8,
    states: Option<Vec<LimitState>>,
    collision: bool,
}

fn shape_matches(limits: &[Limit], states: &[LimitState]) -> bool {
    limits.len() == states.len() && limits.iter().zip(states).all(|(l, s)| l.matches(s))
}

/// True when the record can be dropped without changing a decision.
fn reclaimable(rule: &Rule, record: &Record, now_ms: u64) -> bool {
    let Some(limits) = rule.tiers.get(usize::from(record.tier)) else {
        return true;
    };
    if !shape_matches(limits, &record.states) {
        return true;
    }
    limits.iter().zip(&record.states).all(|(l, s)| {
        let mut s = s.clone();
        l.advance(&mut s, now_ms);
        l.is_idle(&s)
    })
}

fn locate(
    store: &mut dyn SharedStore,
    rule: &Rule,
    counter: &Counter,
    limits: &[Limit],
    now_ms: u64,
) -> Result<Located, LimiterError> {
    let hash = match counter.key {
        CounterKey::Missing => {
            let key = missing_key(&rule.name, counter.tier);
            let (states, cas) = match store.get(&key)? {
                None => (None, None),
                Some((bytes, cas)) => match decode(&bytes) {
                    Slot::Used(r) if r.tier == counter.tier => (Some(r.states), Some(cas)),
                    _ => (None, Some(cas)),
                },
            };
            return Ok(Located {
                key,
                cas,
                fingerprint: 0,
                tier: counter.tier,
                states,
                collision: false,
            });
        }
        CounterKey::Hashed(hash) => hash,
    };
    let max_keys = rule.max_keys.max(1);
    let mut free: Option<(String, Option<u32>)> = None;
    let mut home: Option<(String, u32, Record)> = None;
    for i in 0..PROBES.min(max_keys) {
        let slot =
            u32::try_from((u64::from(hash.home) + u64::from(i)) % u64::from(max_keys)).unwrap_or(0);
        let key = slot_key(&rule.name, slot);
        let Some((bytes, cas)) = store.get(&key)? else {
            // Not created at configure time (should not happen): usable, and nothing lies beyond.
            free.get_or_insert((key, None));
            break;
        };
        match decode(&bytes) {
            Slot::Empty => {
                free.get_or_insert((key, Some(cas)));
                break;
            }
            Slot::Invalid => {
                free.get_or_insert((key, Some(cas)));
            }
            Slot::Used(record)
                if record.fingerprint == hash.fingerprint && record.tier == counter.tier =>
            {
                return Ok(Located {
                    key,
                    cas: Some(cas),
                    fingerprint: hash.fingerprint,
                    tier: counter.tier,
                    states: Some(record.states),
                    collision: false,
                });
            }
            Slot::Used(record) => {
                if free.is_none() && reclaimable(rule, &record, now_ms) {
                    free = Some((key.clone(), Some(cas)));
                }
                if i == 0 {
                    home = Some((key, cas, record));
                }
            }
        }
    }
    if let Some((key, cas)) = free {
        return Ok(Located {
            key,
            cas,
            fingerprint: hash.fingerprint,
            tier: counter.tier,
            states: None,
            collision: false,
        });
    }
    match home {
        // Share the occupant's counters when they are of the same shape.
        Some((key, cas, record)) if shape_matches(limits, &record.states) => Ok(Located {
            key,
            cas: Some(cas),
            fingerprint: record.fingerprint,
            tier: record.tier,
            states: Some(record.states),
            collision: true,
        }),
        // Otherwise take the home slot over.
        Some((key, cas, _)) => Ok(Located {
            key,
            cas: Some(cas),
            fingerprint: hash.fingerprint,
            tier: counter.tier,
            states: None,
            collision: true,
        }),
        None => Err(LimiterError::Store(format!(
            "rule {}: no slot to probe",
            rule.name
        ))),
    }
}

/// Runs `op` on the rule's counter at `now_ms`, retrying on CAS conflicts.
pub fn run(
    store: &mut dyn SharedStore,
    rule: &Rule,
    counter: &Counter,
    op: Op,
    now_ms: u64,
    max_cas_retries: u32,
) -> Result<Outcome, LimiterError> {
    let limits = rule
        .tiers
        .get(usize::from(counter.tier))
        .or_else(|| rule.tiers.first())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut retries = 0;
    loop {
        let found = locate(store, rule, counter, limits, now_ms)?;
        let mut states = match found.states {
            Some(s) if shape_matches(limits, &s) => s,
            _ => limits.iter().map(|l| l.fresh(now_ms)).collect(),
        };
        for (l, s) in limits.iter().zip(states.iter_mut()) {
            l.advance(s, now_ms);
        }
        let admitted = limits.iter().zip(&states).all(|(l, s)| l.available(s) > 0);
        let write = match op {
            Op::Check => false,
            Op::Consume => admitted,
            Op::CountResponse => true,
        };
        if write {
            for (l, s) in limits.iter().zip(states.iter_mut()) {
                l.consume(s);
            }
        }
        let quotas = limits
            .iter()
            .zip(&states)
            .map(|(l, s)| l.quota(s, now_ms))
            .collect();
        let outcome = Outcome {
            admitted,
            quotas,
            cas_retries: retries,
            collision: found.collision,
        };
        if !write {
            return Ok(outcome);
        }
        let record = Record {
            fingerprint: found.fingerprint,
            tier: found.tier,
            states,
        };
        if store.set(&found.key, &record.encode(), found.cas)? {
            return Ok(outcome);
        }
        if retries >= max_cas_retries {
            return Err(LimiterError::CasExhausted {
                rule: rule.name.clone(),
                retries,
            });
        }
        retries += 1;
    }
}

/// Every shared-data key a config uses, except the salt.
pub fn entry_keys(config: &RateLimitConfig) -> impl Iterator<Item = String> + '_ {
    config.rules.iter().flat_map(|rule| {
        let slots = (0..rule.max_keys).map(|slot| slot_key(&rule.name, slot));
        let tiers = if rule.missing == MissingDescriptor::Shared {
            rule.tiers.len()
        } else {
            0
        };
        let missing =
            (0..tiers).map(|t| missing_key(&rule.name, u8::try_from(t).unwrap_or(u8::MAX)));
        slots.chain(missing)
    })
}

/// Creates the config's entries that do not exist yet (as never-used slots); returns how many
/// were created. Run at configure time, before any request.
pub fn prepare(
    store: &mut dyn SharedStore,
    config: &RateLimitConfig,
) -> Result<usize, LimiterError> {
    let mut created = 0;
    for key in entry_keys(config) {
        if store.get(&key)?.is_none() {
            store.set(&key, EMPTY_SLOT, None)?;
            created += 1;
        }
    }
    Ok(created)
}

/// The proxy-wide salt: the stored one, or `fresh` stored now (the first VM to configure picks
/// it; every later VM reads it back).
pub fn ensure_salt(
    store: &mut dyn SharedStore,
    fresh: [u8; SALT_LEN],
) -> Result<Vec<u8>, LimiterError> {
    if let Some((salt, _)) = store.get(SALT_KEY)? {
        if salt.len() == SALT_LEN {
            return Ok(salt);
        }
    }
    store.set(SALT_KEY, &fresh, None)?;
    match store.get(SALT_KEY)? {
        Some((salt, _)) if salt.len() == SALT_LEN => Ok(salt),
        _ => Err(LimiterError::Store("the salt did not read back".to_owned())),
    }
}
