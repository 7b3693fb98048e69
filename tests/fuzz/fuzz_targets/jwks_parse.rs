//! Fuzzes JWKS parsing (`KeySet::from_jwks_json`), the input an attacker controls when a JWKS
//! endpoint is compromised or spoofed: any bytes give a key set or a `KeyError`, never a panic.
//! A parsed set is then used once to verify a fixed token, so parsed keys are exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard_core::jwt::{validate, KeySet, ValidationSettings};

// A syntactically valid RS256 token (header {"alg":"RS256","kid":"rsa-rs256"}); its signature
// is garbage, so it must never verify against fuzzed keys unless they are the right key.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS1yczI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl";

fuzz_target!(|data: &[u8]| {
    match KeySet::from_jwks_json(data) {
        Ok(set) => {
            let kids = set.kids();
            assert!(kids.len() <= set.len());
            for kid in kids {
                assert!(set.contains_kid(kid));
            }
            let _ = set.skipped();
            let settings = ValidationSettings {
                require_exp: false,
                ..ValidationSettings::default()
            };
            assert!(validate(TOKEN, &settings, &set, 1_700_000_000).is_err());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
