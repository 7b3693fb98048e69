//! meshguard-core: every decision the meshguard filters make, as plain Rust.
//!
//! The crates in `filters/` translate proxy-wasm callbacks into calls to this crate and apply the
//! results. Nothing here talks to a proxy: inputs (headers, properties, `now`) are passed in
//! explicitly and decisions are returned as values, so everything is unit-tested natively and,
//! through `wasm-bindgen-test`, compiled to wasm32.

// `.cargo/config.toml` sets this cfg for wasm32 (32-bit bignum limbs: RSA ~1.5x faster in V8). A
// RUSTFLAGS variable silently replaces it; refuse to build the slow variant instead. (rustdoc
// never gets target rustflags: its runs only read the source.)
#[cfg(all(target_arch = "wasm32", not(cpubits = "32"), not(any(doc, doctest))))]
compile_error!(
    "build meshguard-core for wasm32 with `--cfg cpubits=\"32\"`: run cargo from inside the \
     repository (.cargo/config.toml sets it) and, if RUSTFLAGS is set, add the flag to it"
);

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
