//! The validated config: [`RawConfig`] compiled once at configure time. Every error names its
//! field path; any error refuses the whole config.

use crate::config::{parse_json, ConfigErrors, FilterConfig};
use crate::jwt::{KeySet, ValidationSettings};

use super::api_key::ApiKeys;
use super::config::{RawConfig, RawRequirement, RawRouteMatch};
use super::extract::Locations;
use super::failed_cache::DEFAULT_MAX_FAILED_ENTRIES;
use super::fetch::KeyFetch;
use super::jwks::JwksPolicy;
use super::matcher::{compile_template, PathMatch, RouteMatcher};
use super::replay::ReplaySettings;
use super::requirements::Requirement;
use super::response::{check_realm, FailureSettings};
use super::secret::{Environment, ProcessEnv};

pub use super::extract::HeaderLocation;

/// A compiled jwt_authn config.
#[derive(Debug, Clone)]
pub struct JwtAuthnConfig {
    /// Providers, in name order (indices are used everywhere else).
    pub providers: Vec<Provider>,
    /// Rules, in config order.
    pub rules: Vec<Rule>,
    /// CORS preflights pass without a token.
    pub bypass_cors_preflight: bool,
    /// How refusals are answered.
    pub failure: FailureSettings,
    /// Verified-token cache size per worker (0 = off).
    pub cache_max_entries: usize,
    /// Failed-verdict cache size per worker (0 = off).
    pub cache_max_failed_entries: usize,
    /// Every request header this filter may set (lower-case, sorted, deduplicated): removed from
    /// every incoming request before anything else, so a client can never spoof one.
    pub output_headers: Vec<String>,
}

/// One compiled provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Config name.
    pub name: String,
    /// What a token must satisfy.
    pub settings: ValidationSettings,
    /// Where the keys come from.
    pub keys: KeySource,
    /// Where tokens are found.
    pub locations: Locations,
    /// Keep the token upstream.
    pub forward: bool,
    /// Header receiving the base64url payload.
    pub forward_payload_header: Option<String>,
    /// Claims copied to headers.
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// API-key table: set for an `api_keys` provider (then `keys` is an empty static set and
    /// `settings` is unused).
    pub api_keys: Option<ApiKeys>,
    /// `jti` replay detection.
    pub replay: Option<ReplaySettings>,
    /// Deepest object/array nesting accepted in a verified payload (1 = flat).
    pub max_claim_depth: usize,
}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Parsed at configure time (`local_jwks`, `hmac_secret`).
    Static(KeySet),
    /// Fetched at run time (`remote_jwks`, `openid_discovery`).
    Remote(RemoteKeys),
}

/// A remote key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeys {
    /// What to fetch.
    pub fetch: KeyFetch,
    /// Lifecycle timings.
    pub policy: JwksPolicy,
    /// Shared-data key of the [`super::jwks::JwksRecord`]: derived from the cluster and URL, so
    /// every plugin and provider fetching the same JWKS shares one record and one fetch.
    pub shared_data_key: String,
    /// Largest response body (JWKS or discovery document) read, in bytes.
    pub max_body_bytes: usize,
}

/// One `claim_to_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Lower-case header name.
    pub header: String,
    /// Claim path segments.
    pub claim_path: Vec<String>,
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which requests.
    pub matcher: RouteMatcher,
    /// What they need.
    pub action: RuleAction,
}

/// What a matching request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Nothing: no token is looked at.
    Bypass,
    /// This requirement.
    Require(Requirement),
}

impl FilterConfig for JwtAuthnConfig {
    const FILTER: &'static str = "jwt_authn";
    type Raw = RawConfig;

    fn parse(json: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = parse_json(json)?;
        compile(&raw)
    }
}

impl JwtAuthnConfig {
    /// Index of the provider called `name`.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}

/// Compiles a parsed document, reading `environment_variable` references from the process
/// environment (in the guest: what the proxy gave the VM).
pub fn compile(raw: &RawConfig) -> Result<JwtAuthnConfig, ConfigErrors> {
    compile_with_env(raw, &ProcessEnv)
}

/// Compiles a parsed document with `environment_variable` references read from `env`.
pub fn compile_with_env(
    raw: &RawConfig,
    env: &dyn Environment,
) -> Result<JwtAuthnConfig, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    if raw.providers.is_empty() {
        errs.push("providers", "at least one provider is required");
    }
    let names: Vec<&str> = raw.providers.keys().map(String::as_str).collect();
    let mut providers = Vec::new();
    for (name, p) in &raw.providers {
        if let Some(p) = super::providers::compile_provider(name, p, env, &mut errs) {
            providers.push(p);
        }
    }
    let rules: Vec<Rule> = raw
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let path = format!("rules[{i}]");
            let matcher = compile_match(&r.match_, &format!("{path}.match"), &mut errs);
            let action = match (&r.requires, r.bypass) {
                (Some(req), false) => {
                    compile_requirement(req, &names, &format!("{path}.requires"), &mut errs)
                        .map(RuleAction::Require)
                }
                (None, true) => Some(RuleAction::Bypass),
                (Some(_), true) => {
                    errs.push(&path, "set either `requires` or `bypass: true`, not both");
                    None
                }
                (None, false) => {
                    errs.push(&path, "set `requires` (or `bypass: true` to skip checks)");
                    None
                }
            };
            Some(Rule {
                matcher: matcher?,
                action: action?,
            })
        })
        .collect();
    let failure = compile_failure(raw, &mut errs);
    let cache_max_entries = raw
        .cache
        .as_ref()
        .and_then(|c| c.max_entries)
        .unwrap_or(100);
    if cache_max_entries > 100_000 {
        errs.push("cache.max_entries", "at most 100000");
    }
    let cache_max_failed_entries = raw
        .cache
        .as_ref()
        .and_then(|c| c.max_failed_entries)
        .unwrap_or(DEFAULT_MAX_FAILED_ENTRIES);
    if cache_max_failed_entries > 100_000 {
        errs.push("cache.max_failed_entries", "at most 100000");
    }
    let output_headers = output_headers(&providers, &mut errs);
    errs.into_result(JwtAuthnConfig {
        providers,
        rules,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        failure,
        cache_max_entries,
        cache_max_failed_entries,
        output_headers,
    })
}

fn output_headers(providers: &[Provider], errs: &mut ConfigErrors) -> Vec<String> {
    let mut out: Vec<String> = providers
        .iter()
        .flat_map(|p| {
            p.claim_to_headers
                .iter()
                .map(|c| c.header.clone())
                .chain(p.forward_payload_header.clone())
        })
        .collect();
    out.sort();
    out.dedup();
    for p in providers {
        for loc in &p.locations.headers {
            if out.contains(&loc.name) {
                errs.push(
                    format!("providers.{}.from_headers", p.name),
                    format!(
                        "header {:?} carries tokens and is also an output header (it would be \
                         removed before the token is read)",
                        loc.name
                    ),
                );
            }
        }
    }
    out
}

fn compile_match(m: &RawRouteMatch, path: &str, errs: &mut ConfigErrors) -> Option<RouteMatcher> {
    let set = [&m.path, &m.prefix, &m.path_template]
        .iter()
        .filter(|o| o.is_some())
        .count();
    if set != 1 {
        errs.push(
            path,
            "exactly one of `path`, `prefix`, `path_template` is required",
        );
        return None;
    }
    let pm = if let Some(p) = &m.path {
        if !p.starts_with('/') {
            errs.push(format!("{path}.path"), format!("{p:?} must start with '/'"));
        }
        PathMatch::Exact(p.clone())
    } else if let Some(p) = &m.prefix {
        if !p.starts_with('/') {
            errs.push(
                format!("{path}.prefix"),
                format!("{p:?} must start with '/'"),
            );
        }
        PathMatch::Prefix(p.clone())
    } else {
        let t = m.path_template.as_deref().unwrap_or("");
        match compile_template(t) {
            Ok(segments) => PathMatch::Template(segments),
            Err(e) => {
                errs.push(format!("{path}.path_template"), e);
                return None;
            }
        }
    };
    let mut methods = Vec::new();
    for (i, method) in m.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            errs.push(
                format!("{path}.methods[{i}]"),
                format!("invalid method {method:?}"),
            );
        }
        methods.push(method.to_ascii_uppercase());
    }
    Some(RouteMatcher { path: pm, methods })
}

fn compile_requirement(
    r: &RawRequirement,
    names: &[&str],
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<Requirement> {
    let set = [
        r.provider_name.is_some(),
        r.requires_any.is_some(),
        r.requires_all.is_some(),
        r.allow_missing.is_some(),
        r.allow_missing_or_failed.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        errs.push(
            path,
            "exactly one of `provider_name`, `requires_any`, `requires_all`, `allow_missing`, \
             `allow_missing_or_failed` is required",
        );
        return None;
    }
    if let Some(name) = &r.provider_name {
        return match names.iter().position(|n| n == name) {
            Some(i) => Some(Requirement::Provider(i)),
            None => {
                errs.push(
                    format!("{path}.provider_name"),
                    format!("unknown provider {name:?} (known: {})", names.join(", ")),
                );
                None
            }
        };
    }
    if r.allow_missing.is_some() {
        return Some(Requirement::AllowMissing);
    }
    if r.allow_missing_or_failed.is_some() {
        return Some(Requirement::AllowMissingOrFailed);
    }
    let (list, field, any) = match (&r.requires_any, &r.requires_all) {
        (Some(l), _) => (l, "requires_any", true),
        (None, Some(l)) => (l, "requires_all", false),
        (None, None) => return None,
    };
    if list.requirements.is_empty() {
        errs.push(
            format!("{path}.{field}.requirements"),
            "at least one requirement",
        );
        return None;
    }
    let items: Vec<Option<Requirement>> = list
        .requirements
        .iter()
        .enumerate()
        .map(|(i, r)| {
            compile_requirement(r, names, &format!("{path}.{field}.requirements[{i}]"), errs)
        })
        .collect();
    let items: Option<Vec<Requirement>> = items.into_iter().collect();
    let items = items?;
    Some(if any {
        Requirement::Any(items)
    } else {
        Requirement::All(items)
    })
}

fn compile_failure(raw: &RawConfig, errs: &mut ConfigErrors) -> FailureSettings {
    let mut out = FailureSettings::default();
    let Some(f) = &raw.failure else {
        return out;
    };
    for (field, value, target) in [
        ("status", f.status, &mut out.status),
        (
            "keys_unavailable_status",
            f.keys_unavailable_status,
            &mut out.keys_unavailable_status,
        ),
    ] {
        if let Some(v) = value {
            if !(400..=599).contains(&v) {
                errs.push(
                    format!("failure.{field}"),
                    format!("{v} is not in 400..=599"),
                );
            }
            *target = v;
        }
    }
    out.body = f.body.clone();
    if let Some(ct) = &f.content_type {
        if ct.is_empty() || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            errs.push("failure.content_type", "must be visible ASCII");
        }
        out.content_type = ct.clone();
    }
    if let Some(realm) = &f.realm {
        if let Err(e) = check_realm(realm) {
            errs.push("failure.realm", e);
        }
        out.realm = realm.clone();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "compile_tests.rs"]
mod tests;
