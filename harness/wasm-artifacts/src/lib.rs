//! Paths of the compiled filter `.wasm` files.
//!
//! The build script of this crate runs `cargo build --release --target wasm32-wasip1` for every
//! filter under `filters/` (into `target/wasm-artifacts`), so depending on this crate is enough
//! for `cargo test` to build what the tests load. A filter that does not compile fails the build
//! with the inner cargo's error output.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
