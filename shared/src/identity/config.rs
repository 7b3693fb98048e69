//! The `claims_source` config object the authz, ratelimit and audit filters share, and its
//! compiled form.
//!
//! ```json
//! "claims_source": {"meshguard_jwt_authn": {}}
//! "claims_source": {"envoy_jwt_authn": {"providers": {
//!     "auth0": {"issuer": "https://acme.auth0.com/", "payload_in_metadata": "payload"}}}}
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::ConfigErrors;

/// Where the filter takes the verified JWT claims from. Default: the meshguard jwt-authn
/// hand-off. Both are explicit: nothing is guessed from what a request carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClaimsSourceRaw {
    /// The filter state our jwt-authn filter publishes (`meshguard.jwt_authn.*`).
    MeshguardJwtAuthn(MeshguardJwtAuthnRaw),
    /// The verified payload Envoy's native `envoy.filters.http.jwt_authn` (Istio
    /// RequestAuthentication) writes into dynamic metadata with `payload_in_metadata`.
    EnvoyJwtAuthn(EnvoyJwtAuthnRaw),
}

impl Default for ClaimsSourceRaw {
    fn default() -> Self {
        ClaimsSourceRaw::MeshguardJwtAuthn(MeshguardJwtAuthnRaw {})
    }
}

/// The meshguard jwt-authn hand-off (no options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshguardJwtAuthnRaw {}

/// Claims verified by Envoy's native jwt_authn filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyJwtAuthnRaw {
    /// The jwt_authn providers whose verified payloads are accepted, by provider name (as in
    /// jwt_authn's `providers` map). Copy each provider's `issuer` and `payload_in_metadata`.
    pub providers: BTreeMap<String, EnvoyProviderRaw>,
}

/// One accepted jwt_authn provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyProviderRaw {
    /// The provider's `issuer`: the payload's `iss` claim must equal it exactly.
    pub issuer: String,
    /// The provider's `payload_in_metadata`: the key under the `envoy.filters.http.jwt_authn`
    /// filter metadata that holds the payload. Istio always uses `payload`.
    pub payload_in_metadata: String,
}

/// The compiled `claims_source`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClaimsSource {
    /// The meshguard jwt-authn hand-off in filter state.
    #[default]
    MeshguardJwtAuthn,
    /// Envoy jwt_authn's `payload_in_metadata`.
    EnvoyJwtAuthn(EnvoyJwtAuthn),
}

/// The compiled `envoy_jwt_authn` source: the metadata keys to read, each with the providers
/// (name, issuer) that write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyJwtAuthn {
    pub(crate) keys: Vec<MetadataKey>,
}

/// One `payload_in_metadata` key and the providers that write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetadataKey {
    /// The key in the `envoy.filters.http.jwt_authn` namespace.
    pub(crate) key: String,
    /// `(provider name, issuer)`, in provider-name order.
    pub(crate) providers: Vec<(String, String)>,
}

/// The dynamic-metadata namespace Envoy's jwt_authn filter writes.
pub const JWT_AUTHN_METADATA_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// Longest accepted provider name, issuer or metadata key.
const MAX_LEN: usize = 1024;

impl ClaimsSource {
    /// Compiles `raw`, located at `path` (`claims_source`), collecting errors with field paths.
    pub fn compile(raw: &ClaimsSourceRaw, path: &str, errors: &mut ConfigErrors) -> ClaimsSource {
        match raw {
            ClaimsSourceRaw::MeshguardJwtAuthn(_) => ClaimsSource::MeshguardJwtAuthn,
            ClaimsSourceRaw::EnvoyJwtAuthn(envoy) => {
                let path = format!("{path}.envoy_jwt_authn.providers");
                ClaimsSource::EnvoyJwtAuthn(EnvoyJwtAuthn::compile(envoy, &path, errors))
            }
        }
    }

    /// True for the default meshguard hand-off.
    pub fn is_meshguard(&self) -> bool {
        matches!(self, ClaimsSource::MeshguardJwtAuthn)
    }
}

fn check_text(errors: &mut ConfigErrors, path: &str, what: &str, value: &str) -> bool {
    if value.is_empty() {
        errors.push(path, format!("{what} must not be empty"));
        false
    } else if value.len() > MAX_LEN {
        errors.push(path, format!("{what} is longer than {MAX_LEN} bytes"));
        false
    } else if value.chars().any(char::is_control) {
        errors.push(path, format!("{what} contains a control character"));
        false
    } else {
        true
    }
}

impl EnvoyJwtAuthn {
    fn compile(raw: &EnvoyJwtAuthnRaw, path: &str, errors: &mut ConfigErrors) -> EnvoyJwtAuthn {
        if raw.providers.is_empty() {
            errors.push(
                path,
                "at least one provider is required (the jwt_authn providers whose payloads are \
                 accepted)",
            );
        }
        let mut keys: Vec<MetadataKey> = Vec::new();
        for (name, provider) in &raw.providers {
            let at = format!("{path}.{name}");
            let ok = [
                check_text(errors, &at, "provider name", name),
                check_text(errors, &format!("{at}.issuer"), "issuer", &provider.issuer),
                check_text(
                    errors,
                    &format!("{at}.payload_in_metadata"),
                    "payload_in_metadata",
                    &provider.payload_in_metadata,
                ),
            ];
            if ok.contains(&false) {
                continue;
            }
            let key = provider.payload_in_metadata.as_str();
            let entry = match keys.iter_mut().position(|k| k.key == key) {
                Some(i) => keys.get_mut(i),
                None => {
                    keys.push(MetadataKey {
                        key: key.to_owned(),
                        providers: Vec::new(),
                    });
                    keys.last_mut()
                }
            };
            let Some(entry) = entry else { continue };
            if let Some((other, _)) = entry
                .providers
                .iter()
                .find(|(_, iss)| *iss == provider.issuer)
            {
                errors.push(
                    format!("{at}.issuer"),
                    format!(
                        "issuer {:?} with payload_in_metadata {key:?} is already accepted for \
                         provider {other:?}: the two cannot be told apart",
                        provider.issuer
                    ),
                );
                continue;
            }
            entry
                .providers
                .push((name.clone(), provider.issuer.clone()));
        }
        EnvoyJwtAuthn { keys }
    }

    /// The `payload_in_metadata` keys looked at, in provider-name order of first use.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.key.as_str())
    }
}
