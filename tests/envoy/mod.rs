//! Helpers of the real-Envoy end-to-end tests (`tests/e2e.rs`): the Envoy process, the test
//! client, certificates, and the scenario replay that compares Envoy with the harness.

pub mod certs;
pub mod chain;
pub mod client;
pub mod faults;
pub mod load;
pub mod process;
pub mod replay;
pub mod report;
