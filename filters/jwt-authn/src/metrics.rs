//! The filter's counters, all defined once at configure time (a fixed set: reasons are the
//! enum of [`meshguard_core::jwt_authn::reason::ALL_DENIAL_REASONS`], providers come from config).
//!
//! Names (tags Istio-style, extracted by `extraStatTags` / `stats_tags` regexes):
//! - `meshguard_jwt_authn_requests_total_outcome=.=allowed;.;_reason=.=<verified|bypassed|missing|failed>;.;`
//! - `meshguard_jwt_authn_requests_total_outcome=.=denied;.;_reason=.=<reason>;.;`
//! - `meshguard_jwt_authn_jwks_fetch_total_provider=.=<name>;.;_result=.=<ok|failed|too_large>;.;`
//!   (`too_large`: the response body exceeded `max_body_bytes` and was not read)
//! - `meshguard_jwt_authn_cache_total_result=.=<hit|miss>;.;` (verified-token cache)
//! - `meshguard_jwt_authn_failed_cache_total_result=.=<hit|miss>;.;` (failed-verdict cache,
//!   looked up after a verified-cache miss; a hit is a refusal served without validation)
//! - `meshguard_jwt_authn_claim_headers_refused_total`

use std::collections::HashMap;

use meshguard_core::jwt_authn::reason::ALL_DENIAL_REASONS;
use meshguard_host::{Counter, Result};

const PREFIX: &str = "meshguard_jwt_authn";
const ALLOWED: [&str; 4] = ["verified", "bypassed", "missing", "failed"];

/// Every counter of one plugin instance.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    allowed: HashMap<&'static str, Counter>,
    denied: HashMap<&'static str, Counter>,
    fetch_ok: Vec<Option<Counter>>,
    fetch_failed: Vec<Option<Counter>>,
    fetch_too_large: Vec<Option<Counter>>,
    cache_hit: Option<Counter>,
    cache_miss: Option<Counter>,
    failed_cache_hit: Option<Counter>,
    failed_cache_miss: Option<Counter>,
    claims_refused: Option<Counter>,
}

impl Metrics {
    /// Defines every counter; `remote[i]` tells whether provider `i` (named `names[i]`) fetches
    /// keys.
    pub fn define(names: &[&str], remote: &[bool]) -> Result<Metrics> {
        let mut m = Metrics::default();
        for r in ALLOWED {
            let name = format!("{PREFIX}_requests_total_outcome=.=allowed;.;_reason=.={r};.;");
            m.allowed.insert(r, Counter::define(&name)?);
        }
        for r in ALL_DENIAL_REASONS {
            let name = format!("{PREFIX}_requests_total_outcome=.=denied;.;_reason=.={r};.;");
            m.denied.insert(r, Counter::define(&name)?);
        }
        for (name, is_remote) in names.iter().zip(remote) {
            let (ok, failed, too_large) = if *is_remote {
                let base = format!("{PREFIX}_jwks_fetch_total_provider=.={name};.;_result=.=");
                (
                    Some(Counter::define(&format!("{base}ok;.;"))?),
                    Some(Counter::define(&format!("{base}failed;.;"))?),
                    Some(Counter::define(&format!("{base}too_large;.;"))?),
                )
            } else {
                (None, None, None)
            };
            m.fetch_ok.push(ok);
            m.fetch_failed.push(failed);
            m.fetch_too_large.push(too_large);
        }
        m.cache_hit = Some(Counter::define(&format!(
            "{PREFIX}_cache_total_result=.=hit;.;"
        ))?);
        m.cache_miss = Some(Counter::define(&format!(
            "{PREFIX}_cache_total_result=.=miss;.;"
        ))?);
        m.failed_cache_hit = Some(Counter::define(&format!(
            "{PREFIX}_failed_cache_total_result=.=hit;.;"
        ))?);
        m.failed_cache_miss = Some(Counter::define(&format!(
            "{PREFIX}_failed_cache_total_result=.=miss;.;"
        ))?);
        m.claims_refused = Some(Counter::define(&format!(
            "{PREFIX}_claim_headers_refused_total"
        ))?);
        Ok(m)
    }

    /// A request was let through (`reason` = the hand-off outcome).
    pub fn allowed(&self, reason: &str) {
        if let Some(c) = self.allowed.get(reason) {
            c.inc();
        }
    }

    /// A request was refused for `reason`.
    pub fn denied(&self, reason: &str) {
        if let Some(c) = self.denied.get(reason) {
            c.inc();
        }
    }

    /// A key fetch of provider `p` ended.
    pub fn fetch(&self, p: usize, ok: bool) {
        let list = if ok {
            &self.fetch_ok
        } else {
            &self.fetch_failed
        };
        if let Some(Some(c)) = list.get(p) {
            c.inc();
        }
    }

    /// A key fetch of provider `p` was refused because its body exceeded `max_body_bytes`.
    pub fn fetch_too_large(&self, p: usize) {
        if let Some(Some(c)) = self.fetch_too_large.get(p) {
            c.inc();
        }
    }

    /// Cache lookups since the last call.
    pub fn cache(&self, hits: u64, misses: u64) {
        for (n, c) in [(hits, self.cache_hit), (misses, self.cache_miss)] {
            if let Some(c) = c {
                (0..n).for_each(|_| c.inc());
            }
        }
    }

    /// Failed-verdict cache lookups since the last call.
    pub fn failed_cache(&self, hits: u64, misses: u64) {
        for (n, c) in [
            (hits, self.failed_cache_hit),
            (misses, self.failed_cache_miss),
        ] {
            if let Some(c) = c {
                (0..n).for_each(|_| c.inc());
            }
        }
    }

    /// Claims not copied to headers.
    pub fn claims_refused(&self, n: usize) {
        if let Some(c) = self.claims_refused {
            (0..n).for_each(|_| c.inc());
        }
    }
}
