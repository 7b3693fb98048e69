//! One request through every rule: which counter, admit or not, what to report.

use super::algorithm::Quota;
use super::config::{FailureMode, MissingDescriptor, RateLimitConfig, Rule};
use super::descriptor::{hash_key, RequestView};
use super::store::{run, Counter, CounterKey, Op, SharedStore};
use super::LimiterError;

/// The overall decision, as published in [`crate::handoff::RATELIMIT_DECISION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No enforced rule was over its limit.
    Allow,
    /// An enforced rule was over its limit (or the counters failed and `failure_mode` is deny).
    Limited,
    /// Only shadow rules were over their limit: recorded, not blocked.
    ShadowLimited,
}

impl Decision {
    /// The filter-state value: `allow`, `limited`, `shadow_limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Limited => "limited",
            Decision::ShadowLimited => "shadow_limited",
        }
    }
}

/// What one rule decided, for metrics, headers and filter state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// Index of the rule in the config.
    pub rule: usize,
    /// The rule's decision (`Allow` for a rule that counted the request without limiting it).
    pub decision: Decision,
    /// Tier of limits used.
    pub tier: u8,
    /// Per limit of that tier; empty when the counters failed.
    pub quotas: Vec<Quota>,
    /// The rule is in shadow mode (never shown to clients).
    pub shadow: bool,
}

impl RuleResult {
    /// Smallest remaining quota of the rule's limits.
    pub fn remaining(&self) -> Option<u32> {
        self.quotas.iter().map(|q| q.remaining).min()
    }
}

/// Everything the request phase decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Results of the rules that applied, in order (evaluation stops at a limiting rule).
    pub results: Vec<RuleResult>,
    /// Rules that count responses: the counter to bump if the response status is listed.
    pub pending: Vec<(usize, Counter)>,
    /// CAS retries spent.
    pub cas_retries: u32,
    /// Keys that shared another key's slot.
    pub collisions: u32,
    /// Counter failures (host errors, CAS exhaustion).
    pub failures: Vec<LimiterError>,
}

impl Evaluation {
    /// The overall decision.
    pub fn decision(&self) -> Decision {
        let has = |d| self.results.iter().any(|r| r.decision == d);
        if has(Decision::Limited) {
            Decision::Limited
        } else if has(Decision::ShadowLimited) {
            Decision::ShadowLimited
        } else {
            Decision::Allow
        }
    }

    /// The result to publish in filter state: the limiting rule, else a shadow-limited one,
    /// else the rule with the least remaining quota. `None` when no rule applied.
    pub fn reported(&self) -> Option<&RuleResult> {
        self.results
            .iter()
            .find(|r| r.decision == Decision::Limited)
            .or_else(|| {
                self.results
                    .iter()
                    .find(|r| r.decision == Decision::ShadowLimited)
            })
            .or_else(|| self.tightest(false))
    }

    /// The result to show the client in headers: the limiting rule, else the enforced rule
    /// with the least remaining quota (shadow rules never show).
    pub fn for_headers(&self) -> Option<&RuleResult> {
        self.results
            .iter()
            .find(|r| r.decision == Decision::Limited)
            .or_else(|| self.tightest(true))
    }

    fn tightest(&self, enforced_only: bool) -> Option<&RuleResult> {
        self.results
            .iter()
            .filter(|r| r.decision == Decision::Allow && !r.quotas.is_empty())
            .filter(|r| !enforced_only || !r.shadow)
            .min_by_key(|r| r.remaining())
    }
}

/// The counter of `rule` a request draws from; `None` when the rule does not apply to it.
pub fn counter_for(
    rule: &Rule,
    view: &RequestView<'_>,
    xff_num_trusted_hops: u32,
    salt: &[u8],
) -> Option<Counter> {
    let tier = rule
        .tier_claim
        .as_ref()
        .and_then(|(claim, tiers)| view.claim(claim).and_then(|v| tiers.get(&v).copied()))
        .unwrap_or(0);
    let values: Option<Vec<Vec<u8>>> = rule
        .descriptors
        .iter()
        .map(|d| view.value(d, xff_num_trusted_hops))
        .collect();
    match (values, rule.missing) {
        (Some(values), _) => Some(Counter {
            tier,
            key: CounterKey::Hashed(hash_key(salt, &rule.name, tier, &values, rule.max_keys)),
        }),
        (None, MissingDescriptor::Shared) => Some(Counter {
            tier,
            key: CounterKey::Missing,
        }),
        (None, MissingDescriptor::Skip) => None,
    }
}

/// Runs the request phase: every matching rule in order, until one limits the request.
pub fn evaluate(
    config: &RateLimitConfig,
    salt: &[u8],
    view: &RequestView<'_>,
    store: &mut dyn SharedStore,
    now_ms: u64,
) -> Evaluation {
    let mut eval = Evaluation::default();
    let path = view.path_only();
    for (index, rule) in config.rules.iter().enumerate() {
        if !rule.route.matches(view.method, path) {
            continue;
        }
        let Some(counter) = counter_for(rule, view, config.xff_num_trusted_hops, salt) else {
            continue;
        };
        let op = if rule.counts_responses() {
            Op::Check
        } else {
            Op::Consume
        };
        match run(store, rule, &counter, op, now_ms, config.max_cas_retries) {
            Ok(outcome) => {
                eval.cas_retries += outcome.cas_retries;
                eval.collisions += u32::from(outcome.collision);
                let decision = match (outcome.admitted, rule.shadow_mode) {
                    (true, _) => Decision::Allow,
                    (false, true) => Decision::ShadowLimited,
                    (false, false) => Decision::Limited,
                };
                if rule.counts_responses() && decision != Decision::Limited {
                    eval.pending.push((index, counter));
                }
                eval.results.push(RuleResult {
                    rule: index,
                    decision,
                    tier: counter.tier,
                    quotas: outcome.quotas,
                    shadow: rule.shadow_mode,
                });
                if decision == Decision::Limited {
                    break;
                }
            }
            Err(error) => {
                if let LimiterError::CasExhausted { retries, .. } = &error {
                    eval.cas_retries += retries;
                }
                eval.failures.push(error);
                if config.failure_mode == FailureMode::Deny && !rule.shadow_mode {
                    eval.results.push(RuleResult {
                        rule: index,
                        decision: Decision::Limited,
                        tier: counter.tier,
                        quotas: Vec::new(),
                        shadow: false,
                    });
                    break;
                }
            }
        }
    }
    eval
}

/// What the response phase did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseCount {
    /// Responses counted.
    pub counted: u32,
    /// CAS retries spent.
    pub cas_retries: u32,
    /// Counter failures.
    pub failures: Vec<LimiterError>,
}

/// Counts the response against the rules that wait for it, if its status is one they count.
pub fn count_response(
    config: &RateLimitConfig,
    pending: &[(usize, Counter)],
    status: u16,
    store: &mut dyn SharedStore,
    now_ms: u64,
) -> ResponseCount {
    let mut out = ResponseCount::default();
    for (index, counter) in pending {
        let Some(rule) = config.rules.get(*index) else {
            continue;
        };
        if rule
            .count_on_response_statuses
            .binary_search(&status)
            .is_err()
        {
            continue;
        }
        match run(
            store,
            rule,
            counter,
            Op::CountResponse,
            now_ms,
            config.max_cas_retries,
        ) {
            Ok(o) => {
                out.counted += 1;
                out.cas_retries += o.cas_retries;
            }
            Err(e) => {
                if let LimiterError::CasExhausted { retries, .. } = &e {
                    out.cas_retries += retries;
                }
                out.failures.push(e);
            }
        }
    }
    out
}
