//! The compiled, validated ratelimit config: what `on_configure` builds once.

use std::collections::HashMap;

use super::algorithm::{Limit, SlidingWindow, TokenBucket, SUB_WINDOWS};
use super::descriptor::{ClaimPath, DescriptorSource};
use super::raw::{
    RawDescriptor, RawFailureMode, RawLimit, RawMatch, RawMissingDescriptor, RawRateLimitConfig,
    RawRule, RawXRateLimitHeaders,
};
use crate::config::{parse_duration, parse_json, ConfigErrors, FilterConfig};

/// Most limits per rule or tier.
pub const MAX_LIMITS: usize = 8;
/// Most tiers (`limits_by_claim.tiers` entries) per rule.
pub const MAX_TIERS: usize = 64;
/// Largest `max_keys`.
pub const MAX_KEYS: u32 = 100_000;
const MAX_COUNT: u64 = 1_000_000_000;
const MIN_FILL_INTERVAL_MS: u64 = 50;
const MIN_WINDOW_MS: u64 = 100;

/// The validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// When the counters cannot be updated.
    pub failure_mode: FailureMode,
    /// CAS retries per counter update.
    pub max_cas_retries: u32,
    /// Trusted proxies for `remote_address`.
    pub xff_num_trusted_hops: u32,
    /// The limited reply and the headers.
    pub response: ResponseConfig,
    /// Where the verified JWT claims come from.
    pub claims_source: crate::identity::ClaimsSource,
}

/// Fail closed or open when the counters cannot be updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Reply as if limited.
    Deny,
    /// Let the request through.
    Allow,
}

/// The limited reply and the rate-limit headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseConfig {
    /// Status of the limited reply.
    pub status: u16,
    /// Body of the limited reply.
    pub body: String,
    /// IETF `RateLimit` / `RateLimit-Policy`.
    pub ietf_headers: bool,
    /// Envoy's draft-03 `x-ratelimit-*`.
    pub x_ratelimit_headers: bool,
    /// Also on allowed responses.
    pub headers_on_allowed: bool,
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Which requests.
    pub route: RouteMatch,
    /// Key sources (empty = one key).
    pub descriptors: Vec<DescriptorSource>,
    /// `tiers[0]` is the default `limits`; `tiers[i]` the limits of tier `i`.
    pub tiers: Vec<Vec<Limit>>,
    /// Claim choosing the tier, and value → tier index.
    pub tier_claim: Option<(ClaimPath, HashMap<String, u8>)>,
    /// Requests lacking a descriptor value.
    pub missing: MissingDescriptor,
    /// Count only these response statuses (empty = count requests).
    pub count_on_response_statuses: Vec<u16>,
    /// Slots of this rule in shared data.
    pub max_keys: u32,
    /// Never block.
    pub shadow_mode: bool,
}

/// Requests lacking a descriptor value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingDescriptor {
    /// One shared counter.
    Shared,
    /// Rule skipped.
    Skip,
}

/// Compiled route match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// Exact path.
    pub path: Option<String>,
    /// Path prefix.
    pub prefix: Option<String>,
    /// Methods (any when empty).
    pub methods: Vec<String>,
}

impl RouteMatch {
    /// True when a request with this method and path (query already stripped) matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self.path.as_deref().is_none_or(|p| p == path)
            && self.prefix.as_deref().is_none_or(|p| path.starts_with(p))
    }
}

impl Rule {
    /// True when the rule counts responses rather than requests.
    pub fn counts_responses(&self) -> bool {
        !self.count_on_response_statuses.is_empty()
    }
}

impl FilterConfig for RateLimitConfig {
    const FILTER: &'static str = "ratelimit";
    type Raw = RawRateLimitConfig;

    fn parse(json: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawRateLimitConfig = parse_json(json)?;
        compile(&raw)
    }
}

/// Validates and compiles a parsed config, collecting every error with its path.
pub fn compile(raw: &RawRateLimitConfig) -> Result<RateLimitConfig, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    if raw.rules.is_empty() {
        errors.push("rules", "at least one rule is required");
    }
    if raw.max_cas_retries > 64 {
        errors.push(
            "max_cas_retries",
            format!("{} is out of range (0 to 64)", raw.max_cas_retries),
        );
    }
    if !(400..=599).contains(&raw.status) {
        errors.push(
            "status",
            format!("{} is not a 4xx or 5xx status", raw.status),
        );
    }
    let mut names = HashMap::new();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if let Some(first) = names.insert(rule.name.clone(), i) {
            errors.push(
                format!("{path}.name"),
                format!("duplicate rule name {:?} (also rules[{first}])", rule.name),
            );
        }
        if let Some(rule) = compile_rule(rule, raw.shadow_mode, &path, &mut errors) {
            rules.push(rule);
        }
    }
    let config = RateLimitConfig {
        rules,
        failure_mode: match raw.failure_mode {
            RawFailureMode::Deny => FailureMode::Deny,
            RawFailureMode::Allow => FailureMode::Allow,
        },
        max_cas_retries: raw.max_cas_retries,
        xff_num_trusted_hops: raw.xff_num_trusted_hops,
        response: ResponseConfig {
            status: raw.status,
            body: raw.body.clone(),
            ietf_headers: raw.enable_ratelimit_headers,
            x_ratelimit_headers: raw.enable_x_ratelimit_headers
                == RawXRateLimitHeaders::DraftVersion03,
            headers_on_allowed: raw.headers_on_allowed,
        },
        claims_source: crate::identity::ClaimsSource::compile(
            &raw.claims_source,
            "claims_source",
            &mut errors,
        ),
    };
    errors.into_result(config)
}

fn compile_rule(
    raw: &RawRule,
    shadow: bool,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<Rule> {
    let before = errors.0.len();
    let valid_name = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name {
        errors.push(
            format!("{path}.name"),
            format!("{:?}: use 1 to 64 letters, digits, '_' or '-'", raw.name),
        );
    }
    let route = raw
        .route
        .as_ref()
        .map(|m| compile_match(m, &format!("{path}.match"), errors))
        .unwrap_or_default();
    let descriptors: Vec<DescriptorSource> = raw
        .descriptors
        .iter()
        .enumerate()
        .filter_map(|(i, d)| compile_descriptor(d, &format!("{path}.descriptors[{i}]"), errors))
        .collect();
    let mut tiers = vec![compile_limits(
        &raw.limits,
        &format!("{path}.limits"),
        errors,
    )];
    let mut tier_claim = None;
    if let Some(by_claim) = &raw.limits_by_claim {
        let at = format!("{path}.limits_by_claim");
        let claim = ClaimPath::parse(&by_claim.claim);
        if claim.is_none() {
            errors.push(
                format!("{at}.claim"),
                format!("{:?} is not a claim path", by_claim.claim),
            );
        }
        if by_claim.tiers.is_empty() || by_claim.tiers.len() > MAX_TIERS {
            errors.push(
                format!("{at}.tiers"),
                format!("give 1 to {MAX_TIERS} tiers"),
            );
        }
        let mut by_value = HashMap::new();
        for (value, limits) in by_claim.tiers.iter().take(MAX_TIERS) {
            let index = u8::try_from(tiers.len()).unwrap_or(u8::MAX);
            tiers.push(compile_limits(
                limits,
                &format!("{at}.tiers.{value}"),
                errors,
            ));
            by_value.insert(value.clone(), index);
        }
        tier_claim = claim.map(|c| (c, by_value));
    }
    let mut statuses = raw.count_on_response_statuses.clone();
    for (i, status) in statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            errors.push(
                format!("{path}.count_on_response_statuses[{i}]"),
                format!("{status} is not an HTTP status"),
            );
        }
    }
    statuses.sort_unstable();
    statuses.dedup();
    if !(1..=MAX_KEYS).contains(&raw.max_keys) {
        errors.push(
            format!("{path}.max_keys"),
            format!("{} is out of range (1 to {MAX_KEYS})", raw.max_keys),
        );
    }
    (errors.0.len() == before).then(|| Rule {
        name: raw.name.clone(),
        route,
        descriptors,
        tiers,
        tier_claim,
        missing: match raw.missing_descriptor {
            RawMissingDescriptor::Shared => MissingDescriptor::Shared,
            RawMissingDescriptor::Skip => MissingDescriptor::Skip,
        },
        count_on_response_statuses: statuses,
        max_keys: raw.max_keys,
        shadow_mode: shadow || raw.shadow_mode,
    })
}

fn compile_match(raw: &RawMatch, path: &str, errors: &mut ConfigErrors) -> RouteMatch {
    if raw.path.is_some() && raw.prefix.is_some() {
        errors.push(path, "set `path` or `prefix`, not both");
    }
    for (field, value) in [("path", &raw.path), ("prefix", &raw.prefix)] {
        if let Some(v) = value {
            if !v.starts_with('/') {
                errors.push(
                    format!("{path}.{field}"),
                    format!("{v:?} must start with '/'"),
                );
            }
        }
    }
    for (i, m) in raw.methods.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(
                format!("{path}.methods[{i}]"),
                format!("{m:?} is not an upper-case method"),
            );
        }
    }
    RouteMatch {
        path: raw.path.clone(),
        prefix: raw.prefix.clone(),
        methods: raw.methods.clone(),
    }
}

fn compile_descriptor(
    raw: &RawDescriptor,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<DescriptorSource> {
    Some(match raw {
        RawDescriptor::JwtClaim(claim) => match ClaimPath::parse(claim) {
            Some(c) => DescriptorSource::JwtClaim(c),
            None => {
                errors.push(
                    format!("{path}.jwt_claim"),
                    format!("{claim:?} is not a claim path"),
                );
                return None;
            }
        },
        RawDescriptor::RequestHeader(name) => {
            let valid = !name.is_empty()
                && name.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_alphanumeric() || b"-_.".contains(&b) || (i == 0 && b == b':')
                });
            if !valid {
                errors.push(
                    format!("{path}.request_header"),
                    format!("{name:?} is not a header name"),
                );
                return None;
            }
            DescriptorSource::RequestHeader(name.to_ascii_lowercase())
        }
        RawDescriptor::MtlsPrincipal => DescriptorSource::MtlsPrincipal,
        RawDescriptor::RemoteAddress => DescriptorSource::RemoteAddress,
        RawDescriptor::Path => DescriptorSource::Path,
        RawDescriptor::Method => DescriptorSource::Method,
    })
}

fn compile_limits(raw: &[RawLimit], path: &str, errors: &mut ConfigErrors) -> Vec<Limit> {
    if raw.is_empty() || raw.len() > MAX_LIMITS {
        errors.push(path, format!("give 1 to {MAX_LIMITS} limits"));
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, l)| compile_limit(l, &format!("{path}[{i}]"), errors))
        .collect()
}

fn count(value: u64, path: String, errors: &mut ConfigErrors) -> Option<u32> {
    if (1..=MAX_COUNT).contains(&value) {
        u32::try_from(value).ok()
    } else {
        errors.push(path, format!("{value} is out of range (1 to {MAX_COUNT})"));
        None
    }
}

fn duration_ms(text: &str, min_ms: u64, path: String, errors: &mut ConfigErrors) -> Option<u64> {
    match parse_duration(text) {
        Ok(d) if d.as_millis() >= u128::from(min_ms) => u64::try_from(d.as_millis()).ok(),
        Ok(_) => {
            errors.push(path, format!("{text:?} is too short (at least {min_ms}ms)"));
            None
        }
        Err(e) => {
            errors.push(path, e);
            None
        }
    }
}

fn compile_limit(raw: &RawLimit, path: &str, errors: &mut ConfigErrors) -> Option<Limit> {
    match raw {
        RawLimit::TokenBucket(tb) => {
            let at = format!("{path}.token_bucket");
            let max = count(tb.max_tokens, format!("{at}.max_tokens"), errors);
            let per_fill = count(tb.tokens_per_fill, format!("{at}.tokens_per_fill"), errors);
            let interval = duration_ms(
                &tb.fill_interval,
                MIN_FILL_INTERVAL_MS,
                format!("{at}.fill_interval"),
                errors,
            );
            Some(Limit::TokenBucket(TokenBucket {
                max_tokens: max?,
                tokens_per_fill: per_fill?,
                fill_interval_ms: interval?,
            }))
        }
        RawLimit::SlidingWindow(sw) => {
            let at = format!("{path}.sliding_window");
            let requests = count(sw.requests, format!("{at}.requests"), errors);
            let window = duration_ms(
                &sw.window,
                MIN_WINDOW_MS.max(SUB_WINDOWS),
                format!("{at}.window"),
                errors,
            );
            Some(Limit::SlidingWindow(SlidingWindow {
                requests: requests?,
                window_ms: window?,
            }))
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
