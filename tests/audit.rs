//! The audit filter, compiled to wasm32-wasip1, in the harness: request and trace ids, audit
//! headers, the audit record (allowed, denied by an earlier filter, upstream error), redaction,
//! sampling, metrics; and chained after jwt-authn, authz and ratelimit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "audit/support.rs"]
mod support;

#[path = "audit/chain.rs"]
mod chain;
#[path = "audit/headers.rs"]
mod headers;
#[path = "audit/ids.rs"]
mod ids;
#[path = "audit/record.rs"]
mod record;
