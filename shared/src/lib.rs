//! meshguard-core: every decision the meshguard filters make, as plain Rust.
//!
//! The crates in `filters/` translate proxy-wasm callbacks into calls to this crate and apply the
//! results. Nothing here talks to a proxy: inputs (headers, properties, `now`) are passed in
//! explicitly and decisions are returned as values, so everything is unit-tested natively and,
//! through `wasm-bindgen-test`, compiled to wasm32.

pub mod audit;
pub mod config;
pub mod fused;
pub mod handoff;
pub mod headers;
pub mod identity;
pub mod jwt;
pub mod jwt_authn;
pub mod limiter;
pub mod policy;
