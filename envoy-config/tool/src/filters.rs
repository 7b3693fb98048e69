//! The four meshguard filters as the tool knows them: names, artifacts, and each filter's
//! [`FilterConfig`] (the same type its `on_configure` parses with).

use meshguard_core::config::{ConfigError, ConfigErrors, FilterConfig};

/// One meshguard filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Filter {
    /// JWT validation (`meshguard-jwt-authn`).
    JwtAuthn,
    /// Claim- and identity-based authorization (`meshguard-authz`).
    Authz,
    /// Rate limiting shared across workers (`meshguard-ratelimit`).
    Ratelimit,
    /// Request identity, audit headers and the audit record (`meshguard-audit`).
    Audit,
}

/// Parses a config with `T`, keeping only the outcome.
fn parse_with<T: FilterConfig>(json: &[u8]) -> Result<(), ConfigErrors> {
    T::parse(json).map(|_| ())
}

/// The JSON Schema of `T::Raw`.
fn schema_of<T: FilterConfig>() -> schemars::Schema {
    schemars::schema_for!(T::Raw)
}

/// A filter's config entry points.
struct ConfigFns {
    parse: fn(&[u8]) -> Result<(), ConfigErrors>,
    schema: fn() -> schemars::Schema,
}

impl Filter {
    /// Every filter, in chain order (jwt-authn → authz → ratelimit → audit).
    pub const ALL: [Filter; 4] = [
        Filter::JwtAuthn,
        Filter::Authz,
        Filter::Ratelimit,
        Filter::Audit,
    ];

    /// The filter's name in metrics, filter state, schemas and the CLI (`jwt_authn`).
    pub fn name(self) -> &'static str {
        match self {
            Filter::JwtAuthn => "jwt_authn",
            Filter::Authz => "authz",
            Filter::Ratelimit => "ratelimit",
            Filter::Audit => "audit",
        }
    }

    /// The cargo package (`meshguard-jwt-authn`), also the OCI image name.
    pub fn package(self) -> &'static str {
        match self {
            Filter::JwtAuthn => "meshguard-jwt-authn",
            Filter::Authz => "meshguard-authz",
            Filter::Ratelimit => "meshguard-ratelimit",
            Filter::Audit => "meshguard-audit",
        }
    }

    /// File name of the built module (`meshguard_jwt_authn.wasm`).
    pub fn wasm_file(self) -> String {
        format!("{}.wasm", self.package().replace('-', "_"))
    }

    /// Looks a filter up by name; accepts `jwt_authn`, `jwt-authn` and the package name.
    pub fn from_name(name: &str) -> Option<Filter> {
        let norm = name.trim().replace('-', "_");
        let norm = norm.strip_prefix("meshguard_").unwrap_or(&norm);
        Filter::ALL.into_iter().find(|f| f.name() == norm)
    }

    fn config_fns(self) -> Option<ConfigFns> {
        use meshguard_core::{audit, jwt_authn, limiter, policy};
        fn fns<T: FilterConfig>() -> ConfigFns {
            ConfigFns {
                parse: parse_with::<T>,
                schema: schema_of::<T>,
            }
        }
        Some(match self {
            Filter::JwtAuthn => fns::<jwt_authn::JwtAuthnConfig>(),
            Filter::Authz => fns::<policy::Authorizer>(),
            Filter::Ratelimit => fns::<limiter::RateLimitConfig>(),
            Filter::Audit => fns::<audit::AuditConfig>(),
        })
    }

    /// Parses `json` exactly as the filter's `on_configure` does.
    pub fn parse_config(self, json: &[u8]) -> Result<(), ConfigErrors> {
        match self.config_fns() {
            Some(fns) => (fns.parse)(json),
            None => Err(ConfigError::new(
                "",
                format!(
                    "the {} filter's config type is not available in this build",
                    self.name()
                ),
            )
            .into()),
        }
    }

    /// The JSON Schema of the filter's config, or `None` if its type is not available.
    pub fn config_schema(self) -> Option<schemars::Schema> {
        self.config_fns().map(|fns| (fns.schema)())
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Filter::ALL {
            assert_eq!(Filter::from_name(f.name()), Some(f));
            assert_eq!(Filter::from_name(f.package()), Some(f));
        }
        assert_eq!(Filter::from_name("jwt-authn"), Some(Filter::JwtAuthn));
        assert_eq!(Filter::from_name("nope"), None);
        assert_eq!(Filter::JwtAuthn.wasm_file(), "meshguard_jwt_authn.wasm");
    }
}
