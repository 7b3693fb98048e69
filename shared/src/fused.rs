//! The config of the fused module (`filters/fused`): the four filters' configs side by side,
//! each optional, `{"jwt_authn": …, "authz": …, "ratelimit": …, "audit": …}`. Each section is
//! checked with the filter's own parser (the one its `on_configure` runs); its errors carry the
//! section name in front of their field path (`ratelimit.rules[0].limits: …`). Unknown top-level
//! keys are refused.

use serde_json::{Map, Value};

use crate::audit::AuditConfig;
use crate::config::{ConfigError, ConfigErrors, FilterConfig};
use crate::handoff;
use crate::jwt_authn::JwtAuthnConfig;
use crate::limiter::config::RateLimitConfig;
use crate::policy::Authorizer;

/// The stages of the fused module, in the order a request passes them (the chain's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// Prefix of the filter-state keys the stage publishes ([`crate::handoff`]).
    pub fn filter_state_prefix(self) -> &'static str {
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

/// A checked fused config: the sections present, in chain order, each as the JSON bytes its
/// stage is configured with (every one already passed the stage's parser).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FusedConfig {
    /// `(stage, section JSON)`, in chain order; stages without a section are absent.
    pub sections: Vec<(Stage, Vec<u8>)>,
}

/// The fused config as written: four optional sections, each the filter's own config document
/// (absent, not `null`, for a stage left out).
/// Only used for the JSON Schema (`meshguard schema`); [`FusedConfig::parse`] checks each
/// section with the filter's parser so that its errors are the filter's.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFusedConfig {
    /// The jwt_authn stage (`meshguard-jwt-authn`'s config); absent: no JWT stage.
    #[serde(default)]
    #[schemars(with = "<JwtAuthnConfig as FilterConfig>::Raw")]
    pub jwt_authn: Option<<JwtAuthnConfig as FilterConfig>::Raw>,
    /// The authz stage (`meshguard-authz`'s config); absent: no authorization stage.
    #[serde(default)]
    #[schemars(with = "<Authorizer as FilterConfig>::Raw")]
    pub authz: Option<<Authorizer as FilterConfig>::Raw>,
    /// The ratelimit stage (`meshguard-ratelimit`'s config); absent: no rate-limit stage.
    #[serde(default)]
    #[schemars(with = "<RateLimitConfig as FilterConfig>::Raw")]
    pub ratelimit: Option<<RateLimitConfig as FilterConfig>::Raw>,
    /// The audit stage (`meshguard-audit`'s config); absent: no audit stage.
    #[serde(default)]
    #[schemars(with = "<AuditConfig as FilterConfig>::Raw")]
    pub audit: Option<<AuditConfig as FilterConfig>::Raw>,
}

impl FilterConfig for FusedConfig {
    const FILTER: &'static str = "fused";
    type Raw = RawFusedConfig;

    /// Splits the document into its sections and checks each with its stage's parser; every
    /// error of every section is reported, its path prefixed by the section. An empty (or
    /// whitespace) config is `{}`: no stage.
    fn parse(json: &[u8]) -> Result<Self, ConfigErrors> {
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
        let mut sections = Vec::new();
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
            sections.push((stage, bytes));
        }
        errors.into_result(FusedConfig { sections })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn stages(json: &[u8]) -> Vec<Stage> {
        FusedConfig::parse(json)
            .unwrap()
            .sections
            .iter()
            .map(|(s, _)| *s)
            .collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fused_sections_come_in_chain_order_and_are_each_optional() {
        let json = br#"{"audit": {}, "authz": {"policies": [{"name": "p", "action": "ALLOW", "rules": [{}]}]}}"#;
        assert_eq!(stages(json), vec![Stage::Authz, Stage::Audit]);
        assert!(stages(b"").is_empty());
        assert!(stages(b" \n").is_empty());
        assert!(stages(b"{}").is_empty());
        // The section handed to the stage is the section, not the whole document.
        let config = FusedConfig::parse(json).unwrap();
        let audit: Value = serde_json::from_slice(&config.sections[1].1).unwrap();
        assert_eq!(audit, serde_json::json!({}));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fused_errors_name_the_section_and_the_field_path() {
        let err = FusedConfig::parse(
            br#"{"ratelimit": {"rules": [{"name": "r", "bogus": 1}]}, "other": 1}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("other: unknown field"), "{text}");
        assert!(
            err.0
                .iter()
                .any(|e| e.path.starts_with("ratelimit.rules[0]")),
            "{err:?}"
        );
        let err =
            FusedConfig::parse(br#"{"ratelimit": {"rules": [{"name": "r", "limits": "x"}]}}"#)
                .unwrap_err();
        assert_eq!(err.0[0].path, "ratelimit.rules[0].limits", "{err:?}");
        let err = FusedConfig::parse(b"[1]").unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
        let err = FusedConfig::parse(b"{").unwrap_err().to_string();
        assert!(err.contains("invalid JSON"), "{err}");
    }

    /// Every section's errors are reported, not only the first bad section's.
    #[wasm_bindgen_test(unsupported = test)]
    fn fused_reports_every_bad_section() {
        let err = FusedConfig::parse(br#"{"jwt_authn": {"x": 1}, "audit": {"y": 2}}"#).unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.iter().any(|p| p.starts_with("jwt_authn")),
            "{paths:?}"
        );
        assert!(paths.iter().any(|p| p.starts_with("audit")), "{paths:?}");
    }

    /// The schema has exactly the four sections, each optional, and refuses other keys.
    #[wasm_bindgen_test(unsupported = test)]
    fn fused_schema_has_the_four_optional_sections() {
        let schema = serde_json::to_value(schemars::schema_for!(RawFusedConfig)).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = properties.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want: Vec<&str> = Stage::ALL.iter().map(|s| s.key()).collect();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert!(schema.get("required").is_none(), "{schema}");
        assert_eq!(schema["additionalProperties"], false);
        // A section is absent or a config, never `null` (the stage parsers refuse `null`).
        for (key, section) in properties {
            assert!(section.get("$ref").is_some(), "{key}: {section}");
        }
        assert!(FusedConfig::parse(br#"{"audit": null}"#).is_err());
    }
}
