//! meshguard-tool: the operator-facing side of the meshguard filters.
//!
//! - [`validate`]: checks a filter config (a JSON file, an Istio `WasmPlugin` manifest or an
//!   Envoy bootstrap) with exactly the parser the filter's `on_configure` runs.
//! - [`schema`]: generates the JSON Schema of each filter's config from its Rust types.
//! - [`oci`]: packages a filter as an OCI image layout Istio's `WasmPlugin` can pull.
//! - [`bootstrap`]: renders the Envoy bootstraps that load the filters (the committed ones under
//!   `envoy-config/envoy/`, the e2e tests' and the demo's).
//! - [`wasmplugin`]: the JSON Schema of Istio's `WasmPlugin` spec, to check manifests offline.
//! - [`examples`]: the example plugin configs and the example bootstraps made from them.
//! - [`demo`]: the demo upstream, JWKS server, signing keys and token minter.
//!
//! The `meshguard` binary is a thin CLI over these modules.

// Unit tests may unwrap: a panic there is a failed test. Non-test code stays denied.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bootstrap;
pub mod demo;
pub mod examples;
pub mod filters;
pub mod oci;
pub mod schema;
pub mod validate;
pub mod wasmplugin;
