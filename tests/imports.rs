//! Every filter `.wasm` the build produces imports only what Envoy provides: WASI preview 1
//! (`wasi_snapshot_preview1.*`) and the proxy-wasm ABI (`env.proxy_*`). Envoy refuses to load a
//! module with any other import. The known way to get one: ring's C code (ES256/ES384) compiled by
//! a C compiler that is not clang (e.g. `CC=gcc`) builds "successfully" and leaves
//! `env.ring_core_*` imports behind.

#![allow(clippy::panic)]

use wasmparser::{Parser, Payload};

fn allowed(module: &str, name: &str) -> bool {
    module == "wasi_snapshot_preview1" || (module == "env" && name.starts_with("proxy_"))
}

/// (module, name) of every import of the `.wasm` at `path`.
fn imports(path: &str) -> Vec<(String, String)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        if let Payload::ImportSection(section) = payload.unwrap_or_else(|e| panic!("{path}: {e}")) {
            for import in section.into_imports() {
                let import = import.unwrap_or_else(|e| panic!("{path}: {e}"));
                out.push((import.module.to_string(), import.name.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_filter_imports_only_wasi_and_proxy_abi() {
    assert!(meshguard_wasm_artifacts::ALL.len() >= 7);
    for (name, path) in meshguard_wasm_artifacts::ALL {
        let all = imports(path);
        assert!(
            all.iter().any(|(m, n)| allowed(m, n) && m == "env"),
            "{name}: no proxy-wasm import at all in {path}"
        );
        let refused: Vec<String> = all
            .iter()
            .filter(|(m, n)| !allowed(m, n))
            .map(|(m, n)| format!("{m}.{n}"))
            .collect();
        assert!(
            refused.is_empty(),
            "{name} ({path}) imports what Envoy does not provide: {refused:?} \
             (ring_core_* imports mean ring's C code was not built by clang for wasm32)"
        );
    }
}

#[test]
fn the_check_refuses_what_envoy_refuses() {
    assert!(allowed("wasi_snapshot_preview1", "fd_write"));
    assert!(allowed("env", "proxy_log"));
    assert!(!allowed("env", "ring_core_0_17_14__p256_point_mul"));
    assert!(!allowed(
        "wasi_ephemeral_crypto_signatures",
        "signature_verify"
    ));
    assert!(!allowed("proxy", "proxy_log"));
}
