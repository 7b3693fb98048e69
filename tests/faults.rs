//! Fault injection on the deployed chain (jwt-authn → authz → ratelimit → audit with the
//! example configs) in the harness: a broken JWKS endpoint at cold start and at refresh, clock
//! jumps, shared-data contention across 4 workers, trapping VMs and the memory limit, refused
//! config pushes, and bad input. Every request is checked for "no 5xx from a filter's decision,
//! no pass-through of an unverified request" (`support::guard`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "faults/support.rs"]
mod support;

#[path = "faults/bad_input.rs"]
mod bad_input;
#[path = "faults/clock.rs"]
mod clock;
#[path = "faults/config_push.rs"]
mod config_push;
#[path = "faults/contention.rs"]
mod contention;
#[path = "faults/jwks.rs"]
mod jwks;
#[path = "faults/vm.rs"]
mod vm;
