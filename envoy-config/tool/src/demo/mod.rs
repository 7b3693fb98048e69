//! What the demo and the e2e tests put around Envoy: an upstream service that echoes what it
//! received, a JWKS server (with OIDC discovery, rotation and outage modes), ES256 signing keys
//! and a token minter.

pub mod http;
pub mod keys;
pub mod servers;
