//! The compact byte form of one slot in shared data.
//!
//! ```text
//! version u8 = 1 | used u8 (0 = never used, 1 = used) | tier u8 | fingerprint u64 LE | n u8
//! then n limit states:
//!   token bucket:   0x01 | tokens u32 LE | last_fill_ms u64 LE                (13 bytes)
//!   sliding window: 0x02 | head u64 LE | 11 × count u32 LE                     (53 bytes)
//! ```
//!
//! A slot is created "never used" at configure time ([`EMPTY_SLOT`]) and is afterwards only ever
//! overwritten, never deleted (the ABI has no delete, and shared data is never freed).

use super::algorithm::{LimitState, WINDOW_COUNTERS};

const VERSION: u8 = 1;
const TOKEN_BUCKET: u8 = 1;
const SLIDING_WINDOW: u8 = 2;

/// The value of a slot that no key has used yet.
pub const EMPTY_SLOT: &[u8] = &[VERSION, 0];

/// The state of one key: which key (by fingerprint), which tier of limits, one state per limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Fingerprint of the descriptor (independent bits of the hash that chose the slot).
    pub fingerprint: u64,
    /// Index of the tier whose limits `states` follow (0 = the rule's default `limits`).
    pub tier: u8,
    /// One state per limit of that tier, in order.
    pub states: Vec<LimitState>,
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Created at configure time, never used since.
    Empty,
    /// The state of some key.
    Used(Record),
    /// Not a record this version understands (another version, corrupted): free to overwrite.
    Invalid,
}

impl Record {
    /// The byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.states.len() * 53);
        out.extend_from_slice(&[VERSION, 1, self.tier]);
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.push(u8::try_from(self.states.len()).unwrap_or(u8::MAX));
        for state in &self.states {
            match state {
                LimitState::TokenBucket {
                    tokens,
                    last_fill_ms,
                } => {
                    out.push(TOKEN_BUCKET);
                    out.extend_from_slice(&tokens.to_le_bytes());
                    out.extend_from_slice(&last_fill_ms.to_le_bytes());
                }
                LimitState::SlidingWindow { head, counts } => {
                    out.push(SLIDING_WINDOW);
                    out.extend_from_slice(&head.to_le_bytes());
                    for c in counts {
                        out.extend_from_slice(&c.to_le_bytes());
                    }
                }
            }
        }
        out
    }
}

/// Decodes a slot value; anything malformed is [`Slot::Invalid`].
pub fn decode(bytes: &[u8]) -> Slot {
    let mut r = Reader(bytes);
    match (r.u8(), r.u8()) {
        (Some(VERSION), Some(0)) if r.0.is_empty() => return Slot::Empty,
        (Some(VERSION), Some(1)) => {}
        _ => return Slot::Invalid,
    }
    decode_used(&mut r).map_or(Slot::Invalid, Slot::Used)
}

fn decode_used(r: &mut Reader<'_>) -> Option<Record> {
    let tier = r.u8()?;
    let fingerprint = r.u64()?;
    let n = r.u8()?;
    let mut states = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let state = match r.u8()? {
            TOKEN_BUCKET => LimitState::TokenBucket {
                tokens: r.u32()?,
                last_fill_ms: r.u64()?,
            },
            SLIDING_WINDOW => {
                let head = r.u64()?;
                let mut counts = [0u32; WINDOW_COUNTERS];
                for c in counts.iter_mut() {
                    *c = r.u32()?;
                }
                LimitState::SlidingWindow { head, counts }
            }
            _ => return None,
        };
        states.push(state);
    }
    r.0.is_empty().then_some(Record {
        fingerprint,
        tier,
        states,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sample() -> Record {
        let mut counts = [0; WINDOW_COUNTERS];
        counts[3] = 7;
        counts[10] = u32::MAX;
        Record {
            fingerprint: 0xdead_beef_0123_4567,
            tier: 2,
            states: vec![
                LimitState::TokenBucket {
                    tokens: 42,
                    last_fill_ms: 1_700_000_000_123,
                },
                LimitState::SlidingWindow { head: 99, counts },
            ],
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn round_trips_and_is_compact() {
        let r = sample();
        let bytes = r.encode();
        assert_eq!(bytes.len(), 12 + 13 + 53);
        assert_eq!(decode(&bytes), Slot::Used(r));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn empty_and_garbage() {
        assert_eq!(decode(EMPTY_SLOT), Slot::Empty);
        assert_eq!(decode(&[]), Slot::Invalid);
        assert_eq!(decode(&[9, 1, 0]), Slot::Invalid);
        let mut bytes = sample().encode();
        bytes.push(0);
        assert_eq!(decode(&bytes), Slot::Invalid, "trailing byte");
        bytes.truncate(bytes.len() - 2);
        assert_eq!(decode(&bytes), Slot::Invalid, "truncated");
        let mut bytes = sample().encode();
        bytes[12] = 7;
        assert_eq!(decode(&bytes), Slot::Invalid, "unknown limit kind");
    }
}
