//! The filter's metrics, all defined at configure time (a fixed set: one per rule × decision,
//! plus a few globals). Names follow the project convention
//! `meshguard_ratelimit_<what>_total_<tag>=.=<value>;.;`.

use meshguard_core::limiter::config::RateLimitConfig;
use meshguard_core::limiter::{Decision, LimiterError};
use meshguard_host::{Counter, HostError};

/// Counters of one rule.
struct RuleCounters {
    allowed: Counter,
    limited: Counter,
    shadow_limited: Counter,
}

/// Every counter of the filter.
pub struct Metrics {
    rules: Vec<RuleCounters>,
    cas_retries: Counter,
    cas_exhausted: Counter,
    host_errors: Counter,
    slot_collisions: Counter,
    responses_counted: Counter,
}

/// Name of the per-rule request counter.
pub fn requests_metric(decision: &str, rule: &str) -> String {
    format!("meshguard_ratelimit_requests_total_decision=.={decision};.;_rule=.={rule};.;")
}

impl Metrics {
    /// Defines every counter the config can touch.
    pub fn define(config: &RateLimitConfig) -> Result<Metrics, HostError> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for rule in &config.rules {
            rules.push(RuleCounters {
                allowed: Counter::define(&requests_metric("allowed", &rule.name))?,
                limited: Counter::define(&requests_metric("limited", &rule.name))?,
                shadow_limited: Counter::define(&requests_metric("shadow_limited", &rule.name))?,
            });
        }
        Ok(Metrics {
            rules,
            cas_retries: Counter::define("meshguard_ratelimit_cas_retries_total")?,
            cas_exhausted: Counter::define(
                "meshguard_ratelimit_failures_total_reason=.=cas_exhausted;.;",
            )?,
            host_errors: Counter::define(
                "meshguard_ratelimit_failures_total_reason=.=host_error;.;",
            )?,
            slot_collisions: Counter::define("meshguard_ratelimit_slot_collisions_total")?,
            responses_counted: Counter::define("meshguard_ratelimit_responses_counted_total")?,
        })
    }

    /// One request decided by rule `rule`.
    pub fn decision(&self, rule: usize, decision: Decision) {
        if let Some(c) = self.rules.get(rule) {
            match decision {
                Decision::Allow => c.allowed.inc(),
                Decision::Limited => c.limited.inc(),
                Decision::ShadowLimited => c.shadow_limited.inc(),
            }
        }
    }

    /// Counter bookkeeping of one phase.
    pub fn counters(&self, cas_retries: u32, collisions: u32, failures: &[LimiterError]) {
        for _ in 0..cas_retries {
            self.cas_retries.inc();
        }
        for _ in 0..collisions {
            self.slot_collisions.inc();
        }
        for f in failures {
            match f {
                LimiterError::CasExhausted { .. } => self.cas_exhausted.inc(),
                LimiterError::Store(_) => self.host_errors.inc(),
            }
        }
    }

    /// Responses counted against rules that count statuses.
    pub fn responses_counted(&self, n: u32) {
        for _ in 0..n {
            self.responses_counted.inc();
        }
    }
}
