//! `coldbench`: the cost of one never-seen JWT (verified-token cache miss) in meshguard-core,
//! per algorithm, built for wasm32-wasip1 and run under Node's V8 (`run.mjs`), natively too.
//!
//! `coldbench mint FILE N` (native only) writes a JWKS and N distinct valid tokens per algorithm
//! (RS256 2048, ES256, EdDSA, and HS256 as the reference for the work besides the signature; the
//! claims of the Envoy benchmark's `tests/bench/mint.py`).
//! `coldbench run FILE [ALG ...]` times, for each algorithm (or the ones named), one pass over
//! every token in three modes:
//! - `decide`: what the jwt-authn filter runs per request on a cache miss, from the headers to
//!   the filter-state values (token extraction, SHA-256 digest, cache lookup, unverified `iss`
//!   peek, `validate`, claim depth, cache insert, hand-off values);
//! - `validate`: `jwt::validate` alone (parse, base64, signature, payload JSON, claims);
//! - `signature`: `KeySet::verify` alone on the pre-split signing input and signature;
//! - for EdDSA also `crate:*`: ed25519-dalek (`verify_strict`, `verify`) and ring called directly.
//!
//! Output: one line `RESULT <alg> <mode> <µs per token>` per pass, after a warm-up pass.

use std::process::ExitCode;

#[cfg(not(target_arch = "wasm32"))]
mod mint;
mod run;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        #[cfg(not(target_arch = "wasm32"))]
        Some("mint") => mint::mint(&args[1..]),
        Some("run") => run::run(&args[1..]),
        _ => Err("usage: coldbench mint FILE N | coldbench run FILE [ALG ...]".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coldbench: {e}");
            ExitCode::FAILURE
        }
    }
}
