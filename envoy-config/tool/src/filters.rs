//! The meshguard filters as the tool knows them — the four of the chain and the fused module
//! that runs them as stages of one filter: names, artifacts, and each one's [`FilterConfig`]
//! (the same type its `on_configure` parses with).

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
    /// The four above as stages of one filter (`meshguard-fused`), configured by their configs
    /// side by side (`{"jwt_authn": …, "authz": …, "ratelimit": …, "audit": …}`).
    Fused,
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
    /// The four filters of the chain, in chain order (jwt-authn → authz → ratelimit → audit).
    pub const CHAIN: [Filter; 4] = [
        Filter::JwtAuthn,
        Filter::Authz,
        Filter::Ratelimit,
        Filter::Audit,
    ];

    /// Every module the tool knows: the chain's four, then the fused module.
    pub const ALL: [Filter; 5] = [
        Filter::JwtAuthn,
        Filter::Authz,
        Filter::Ratelimit,
        Filter::Audit,
        Filter::Fused,
    ];

    /// The filter's name in metrics, filter state, schemas and the CLI (`jwt_authn`).
    pub fn name(self) -> &'static str {
        match self {
            Filter::JwtAuthn => "jwt_authn",
            Filter::Authz => "authz",
            Filter::Ratelimit => "ratelimit",
            Filter::Audit => "audit",
            Filter::Fused => "fused",
        }
    }

    /// The cargo package (`meshguard-jwt-authn`), also the OCI image name.
    pub fn package(self) -> &'static str {
        match self {
            Filter::JwtAuthn => "meshguard-jwt-authn",
            Filter::Authz => "meshguard-authz",
            Filter::Ratelimit => "meshguard-ratelimit",
            Filter::Audit => "meshguard-audit",
            Filter::Fused => "meshguard-fused",
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
        use meshguard_core::{audit, fused, jwt_authn, limiter, policy};
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
            Filter::Fused => fns::<fused::FusedConfig>(),
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
        assert_eq!(Filter::from_name("meshguard-fused"), Some(Filter::Fused));
        assert_eq!(Filter::Fused.wasm_file(), "meshguard_fused.wasm");
        assert!(!Filter::CHAIN.contains(&Filter::Fused));
    }

    /// The fused config goes through meshguard-core's fused parser: section errors carry the
    /// section in front of the field path, unknown sections are refused.
    #[test]
    fn fused_configs_are_checked_section_by_section() {
        assert!(Filter::Fused.parse_config(br#"{"audit": {}}"#).is_ok());
        let err = Filter::Fused
            .parse_config(br#"{"ratelimit": {"rules": [{"name": "r", "limits": "x"}]}, "x": 1}"#)
            .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"x"), "{paths:?}");
        assert!(paths.contains(&"ratelimit.rules[0].limits"), "{paths:?}");
        // What the four filters accept alone, the fused module accepts side by side.
        let mut side_by_side = serde_json::Map::new();
        for f in Filter::CHAIN {
            let config = crate::examples::example_config(f).unwrap();
            assert!(f.parse_config(config.as_bytes()).is_ok(), "{f}");
            side_by_side.insert(f.name().into(), serde_json::from_str(&config).unwrap());
        }
        let json = serde_json::to_vec(&side_by_side).unwrap();
        assert!(Filter::Fused.parse_config(&json).is_ok());
    }
}
