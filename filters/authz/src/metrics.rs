//! The authz counters, defined once at configure time. Each request is counted once, under the
//! policy its decision is recorded for: ALLOW policies count `allowed`, DENY policies `denied`
//! and `dry_run_denied`, the pseudo-policy `_default` all three; AUDIT policies count `audited`
//! (in addition); `meshguard_authz_errors_total` counts requests denied because a hostcall
//! failed.
//!
//! Names follow Istio's tag encoding so `extraStatTags: [policy, decision]` turns them into
//! labels: `meshguard_authz_requests_total_policy=.=<policy>;.;_decision=.=<decision>;.;`.

use meshguard_core::policy::{Action, Authorizer, Decision, Outcome, Verdict, DEFAULT_POLICY};
use meshguard_host::{Counter, Result};

/// Counters of one policy (index = policy index; the last entry is `_default`).
struct PolicyCounters {
    allowed: Option<Counter>,
    denied: Option<Counter>,
    dry_run_denied: Option<Counter>,
    audited: Option<Counter>,
}

/// Every authz counter.
pub struct Metrics {
    policies: Vec<PolicyCounters>,
    errors: Counter,
}

fn counter(policy: &str, decision: &str) -> Result<Counter> {
    Counter::define(&format!(
        "meshguard_authz_requests_total_policy=.={policy};.;_decision=.={decision};.;"
    ))
}

impl Metrics {
    /// Defines the counters for `authz`'s policies.
    pub fn define(authz: &Authorizer) -> Result<Metrics> {
        let mut policies = Vec::with_capacity(authz.policies().len() + 1);
        for p in authz.policies() {
            let enforcing = p.action != Action::Audit;
            let maybe =
                |on: bool, decision: &str| on.then(|| counter(&p.name, decision)).transpose();
            policies.push(PolicyCounters {
                allowed: maybe(enforcing && p.action == Action::Allow, "allowed")?,
                denied: maybe(enforcing && p.action == Action::Deny, "denied")?,
                dry_run_denied: maybe(p.action == Action::Deny, "dry_run_denied")?,
                audited: maybe(!enforcing, "audited")?,
            });
        }
        policies.push(PolicyCounters {
            allowed: Some(counter(DEFAULT_POLICY, "allowed")?),
            denied: Some(counter(DEFAULT_POLICY, "denied")?),
            dry_run_denied: Some(counter(DEFAULT_POLICY, "dry_run_denied")?),
            audited: None,
        });
        Ok(Metrics {
            policies,
            errors: Counter::define("meshguard_authz_errors_total")?,
        })
    }

    fn of(&self, verdict: &Verdict<'_>) -> Option<&PolicyCounters> {
        match verdict.policy {
            Some(p) => self.policies.get(p.index),
            None => self.policies.last(),
        }
    }

    /// Counts one decision, once, under the policy it is recorded for (see
    /// `Decision::recorded`), plus the matching AUDIT policy.
    pub fn count(&self, decision: &Decision<'_>) {
        let counters = self.of(&decision.recorded);
        let which = match decision.outcome {
            Outcome::Allow => counters.and_then(|c| c.allowed),
            Outcome::Deny => counters.and_then(|c| c.denied),
            Outcome::DryRunDeny => counters.and_then(|c| c.dry_run_denied),
        };
        if let Some(c) = which {
            c.inc();
        }
        if let Some((policy, _)) = decision.audit {
            if let Some(c) = self.policies.get(policy.index).and_then(|c| c.audited) {
                c.inc();
            }
        }
    }

    /// Counts a request that could not be evaluated (a hostcall failed).
    pub fn error(&self) {
        self.errors.inc();
    }
}
