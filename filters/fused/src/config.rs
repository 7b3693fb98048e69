//! The fused module's config: the four filters' configs side by side, each optional,
//! `{"jwt_authn": …, "authz": …, "ratelimit": …, "audit": …}`. Each section is checked with the
//! filter's own parser; errors carry the section name in front of their field path.

use meshguard_core::audit::AuditConfig;
use meshguard_core::config::{ConfigError, ConfigErrors, FilterConfig};
use meshguard_core::jwt_authn::JwtAuthnConfig;
use meshguard_core::limiter::config::RateLimitConfig;
use meshguard_core::policy::Authorizer;
use serde_json::{Map, Value};

/// The stages, in the order a request passes them (the chain's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `meshguard-jwt-authn`.
    JwtAuthn,
    /// `meshguard-authz`.
    Authz,
    /// `meshguard-ratelimit`.
    RateLimit,
    /// `meshguard-audit`.
    Audit,
}

impl Stage {
    /// Every stage, in chain order.
    pub const ALL: [Stage; 4] = [
        Stage::JwtAuthn,
        Stage::Authz,
        Stage::RateLimit,
        Stage::Audit,
    ];

    /// The stage's key in the fused config (the filter's `FilterConfig::FILTER` name).
    pub fn key(self) -> &'static str {
        match self {
            Stage::JwtAuthn => JwtAuthnConfig::FILTER,
            Stage::Authz => Authorizer::FILTER,
            Stage::RateLimit => RateLimitConfig::FILTER,
            Stage::Audit => AuditConfig::FILTER,
        }
    }

    /// Prefix of the filter-state keys the stage publishes (`meshguard_core::handoff`).
    pub fn filter_state_prefix(self) -> &'static str {
        use meshguard_core::handoff;
        match self {
            Stage::JwtAuthn => handoff::JWT_PREFIX,
            Stage::Authz => handoff::AUTHZ_PREFIX,
            Stage::RateLimit => handoff::RATELIMIT_PREFIX,
            Stage::Audit => handoff::AUDIT_PREFIX,
        }
    }

    /// Parses a section with the stage's own parser (exactly what its `on_configure` runs).
    fn check(self, json: &[u8]) -> Result<(), ConfigErrors> {
        match self {
            Stage::JwtAuthn => JwtAuthnConfig::parse(json).map(drop),
            Stage::Authz => Authorizer::parse(json).map(drop),
            Stage::RateLimit => RateLimitConfig::parse(json).map(drop),
            Stage::Audit => AuditConfig::parse(json).map(drop),
        }
    }
}

/// The sections present, in chain order, as the JSON bytes each stage is configured with.
pub fn sections(json: &[u8]) -> Result<Vec<(Stage, Vec<u8>)>, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let text = if json.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        json
    };
    let object: Map<String, Value> = match serde_json::from_slice(text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            errors.push(
                "",
                "expected a JSON object with jwt_authn, authz, ratelimit, audit",
            );
            return Err(errors);
        }
        Err(e) => {
            errors.push("", format!("invalid JSON: {e}"));
            return Err(errors);
        }
    };
    for key in object.keys() {
        if !Stage::ALL.iter().any(|s| s.key() == key) {
            errors.push(
                key.as_str(),
                "unknown field, expected one of `jwt_authn`, `authz`, `ratelimit`, `audit`",
            );
        }
    }
    let mut out = Vec::new();
    for stage in Stage::ALL {
        let Some(section) = object.get(stage.key()) else {
            continue;
        };
        let bytes = match serde_json::to_vec(section) {
            Ok(bytes) => bytes,
            Err(e) => {
                errors.push(stage.key(), e.to_string());
                continue;
            }
        };
        if let Err(stage_errors) = stage.check(&bytes) {
            for ConfigError { path, message } in stage_errors.0 {
                let path = if path.is_empty() {
                    stage.key().to_owned()
                } else {
                    format!("{}.{path}", stage.key())
                };
                errors.push(path, message);
            }
        }
        out.push((stage, bytes));
    }
    errors.into_result(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_come_in_chain_order_and_are_each_optional() {
        let json = br#"{"audit": {}, "authz": {"policies": [{"name": "p", "action": "ALLOW", "rules": [{}]}]}}"#;
        let out = sections(json).unwrap();
        let stages: Vec<Stage> = out.iter().map(|(s, _)| *s).collect();
        assert_eq!(stages, vec![Stage::Authz, Stage::Audit]);
        assert!(sections(b"").unwrap().is_empty());
        assert!(sections(b"{}").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_section_and_the_field_path() {
        let err = sections(br#"{"ratelimit": {"rules": [{"name": "r", "bogus": 1}]}, "other": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("other: unknown field"), "{err}");
        assert!(err.contains("ratelimit.rules[0]"), "{err}");
        let err = sections(b"[1]").unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
    }
}
