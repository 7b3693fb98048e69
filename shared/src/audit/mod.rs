//! The audit filter's logic: request and trace identity, audit headers to the upstream, and one
//! structured audit record per request.
//!
//! The filter runs last in the chain (jwt-authn → authz → ratelimit → audit):
//! - for an admitted request, [`plan::request_plan`] keeps or generates the request id
//!   ([`request_id`]), keeps, derives (from [`b3`]) or starts the W3C trace ([`trace`]), and sets
//!   the audit headers from the earlier filters' hand-off ([`upstream`]) after removing every
//!   incoming copy;
//! - for every request, including those an earlier filter denied with a local reply,
//!   [`plan::log_plan`] decides allow/deny ([`stages`]), whether a record is written
//!   ([`sampling`]) and builds it ([`record`], with [`redact`]).
//!
//! Metric names are in [`metrics`]; the config in [`config`].

pub mod b3;
pub mod config;
pub mod metrics;
pub mod plan;
pub mod props;
pub mod record;
pub mod redact;
pub mod request_id;
pub mod sampling;
pub mod stages;
pub mod trace;
pub mod traceparent;
pub mod tracestate;
pub mod upstream;

pub use config::AuditConfig;

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}
