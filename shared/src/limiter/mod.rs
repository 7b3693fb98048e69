//! Rate limiting: limit math, keys, bounded counters in shared data, decisions and headers.
//!
//! The filter's request path is: [`decision::evaluate`] (every matching rule, in order, until
//! one limits) → apply the result (local reply with [`headers::rate_limit_headers`], filter
//! state, metrics) → on the response, [`decision::count_response`] for rules that count only
//! some statuses. Counters live behind the [`store::SharedStore`] trait: the proxy's shared
//! data in the filter, [`memory::MemoryStore`] in tests and benchmarks.
//!
//! - [`algorithm`]: token bucket and sliding window, explicit clock.
//! - [`descriptor`]: where key values come from, client IP, claim paths, the salted key hash.
//! - [`store`]: slots (bounded state: see its doc), probing, the CAS retry loop.
//! - [`record`]: the compact byte form of a slot.
//! - [`raw`] / [`config`]: the JSON config and its validated form.

pub mod algorithm;
pub mod config;
pub mod decision;
pub mod descriptor;
pub mod headers;
pub mod memory;
pub mod raw;
pub mod record;
pub mod store;

#[cfg(test)]
mod tests;

pub use config::RateLimitConfig;
pub use decision::{count_response, evaluate, Decision, Evaluation};
pub use descriptor::RequestView;
pub use store::SharedStore;

/// A counter could not be read or updated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimiterError {
    /// The host refused a shared-data call (the message names the call and status).
    #[error("shared data: {0}")]
    Store(String),
    /// Other workers kept changing the counter: `retries` conditional writes in a row lost.
    #[error("rule {rule}: counter update lost {retries} compare-and-swap races in a row")]
    CasExhausted {
        /// The rule whose counter was contended.
        rule: String,
        /// Retries spent.
        retries: u32,
    },
}
