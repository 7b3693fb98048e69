//! What the earlier filters decided, read from their filter-state hand-off, and the overall
//! verdict of a request.
//!
//! Chain order: jwt-authn → authz → ratelimit → audit. The audit filter's request-headers
//! callback only runs for requests the other three admitted, so "did this filter see the request
//! headers" (`admitted`) is the ground truth for allow/deny; the hand-off says who denied and why.

use crate::handoff;

/// The hand-off values of the earlier filters (absent keys are `None`). Values are decoded as
/// UTF-8 (invalid bytes replaced), so they may still hold anything a client put in a JWT claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handoff {
    /// [`handoff::JWT_OUTCOME`]
    pub jwt_outcome: Option<String>,
    /// [`handoff::JWT_REASON`]
    pub jwt_reason: Option<String>,
    /// [`handoff::JWT_ISSUER`]
    pub jwt_issuer: Option<String>,
    /// [`handoff::JWT_SUBJECT`]
    pub jwt_subject: Option<String>,
    /// [`handoff::JWT_PROVIDER`]
    pub jwt_provider: Option<String>,
    /// [`handoff::AUTHZ_DECISION`]
    pub authz_decision: Option<String>,
    /// [`handoff::AUTHZ_POLICY`]
    pub authz_policy: Option<String>,
    /// [`handoff::AUTHZ_RULE`]
    pub authz_rule: Option<String>,
    /// [`handoff::RATELIMIT_DECISION`]
    pub ratelimit_decision: Option<String>,
    /// [`handoff::RATELIMIT_REMAINING`]
    pub ratelimit_remaining: Option<String>,
    /// [`handoff::RATELIMIT_RULE`]
    pub ratelimit_rule: Option<String>,
}

/// Every hand-off key the audit filter reads.
pub const KEYS: [&str; 11] = [
    handoff::JWT_OUTCOME,
    handoff::JWT_REASON,
    handoff::JWT_ISSUER,
    handoff::JWT_SUBJECT,
    handoff::JWT_PROVIDER,
    handoff::AUTHZ_DECISION,
    handoff::AUTHZ_POLICY,
    handoff::AUTHZ_RULE,
    handoff::RATELIMIT_DECISION,
    handoff::RATELIMIT_REMAINING,
    handoff::RATELIMIT_RULE,
];

impl Handoff {
    /// Reads every key through `lookup` (the filter passes a `get_property([key])` wrapper).
    /// Empty values count as absent.
    pub fn read(mut lookup: impl FnMut(&str) -> Option<Vec<u8>>) -> Handoff {
        let mut get = |key: &str| {
            lookup(key)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        Handoff {
            jwt_outcome: get(handoff::JWT_OUTCOME),
            jwt_reason: get(handoff::JWT_REASON),
            jwt_issuer: get(handoff::JWT_ISSUER),
            jwt_subject: get(handoff::JWT_SUBJECT),
            jwt_provider: get(handoff::JWT_PROVIDER),
            authz_decision: get(handoff::AUTHZ_DECISION),
            authz_policy: get(handoff::AUTHZ_POLICY),
            authz_rule: get(handoff::AUTHZ_RULE),
            ratelimit_decision: get(handoff::RATELIMIT_DECISION),
            ratelimit_remaining: get(handoff::RATELIMIT_REMAINING),
            ratelimit_rule: get(handoff::RATELIMIT_RULE),
        }
    }

    /// True when jwt-authn verified a token (only then are subject and issuer identities).
    pub fn jwt_verified(&self) -> bool {
        self.jwt_outcome.as_deref() == Some("verified")
    }
}

/// Allow or deny, as recorded and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The meshguard filters admitted the request (whatever the upstream answered).
    Allow,
    /// The request was stopped before the upstream.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Which stage stopped a denied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedBy {
    /// jwt-authn (token missing or invalid).
    JwtAuthn,
    /// authz (a policy denied).
    Authz,
    /// ratelimit (over a limit).
    Ratelimit,
    /// Something else replied before the audit filter (another filter, or Envoy itself).
    Other,
}

impl DeniedBy {
    /// `jwt_authn`, `authz`, `ratelimit` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeniedBy::JwtAuthn => "jwt_authn",
            DeniedBy::Authz => "authz",
            DeniedBy::Ratelimit => "ratelimit",
            DeniedBy::Other => "other",
        }
    }
}

/// The verdict of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Allow or deny.
    pub decision: Decision,
    /// For a denial, who denied.
    pub denied_by: Option<DeniedBy>,
}

/// Decides the verdict. `admitted` is true when the audit filter's request-headers callback ran
/// (every earlier filter let the request through).
///
/// A denied request is attributed to the last stage that left a denying hand-off, searched from
/// the end of the chain: a later filter only runs (and writes) when the earlier ones admitted.
pub fn verdict(admitted: bool, handoff: &Handoff) -> Verdict {
    if admitted {
        return Verdict {
            decision: Decision::Allow,
            denied_by: None,
        };
    }
    let denied_by = if handoff.ratelimit_decision.as_deref() == Some("limited") {
        DeniedBy::Ratelimit
    } else if handoff.authz_decision.as_deref() == Some("deny") {
        DeniedBy::Authz
    } else if matches!(handoff.jwt_outcome.as_deref(), Some("missing" | "failed")) {
        DeniedBy::JwtAuthn
    } else {
        DeniedBy::Other
    };
    Verdict {
        decision: Decision::Deny,
        denied_by: Some(denied_by),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn handoff(pairs: &[(&str, &str)]) -> Handoff {
        Handoff::read(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_bytes().to_vec())
        })
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_every_key() {
        let pairs: Vec<(&str, &str)> = KEYS.iter().map(|k| (*k, *k)).collect();
        let h = handoff(&pairs);
        assert_eq!(h.jwt_subject.as_deref(), Some(handoff::JWT_SUBJECT));
        assert_eq!(h.ratelimit_rule.as_deref(), Some(handoff::RATELIMIT_RULE));
        assert_eq!(h.authz_rule.as_deref(), Some(handoff::AUTHZ_RULE));
        let empty = handoff(&[(handoff::JWT_SUBJECT, "")]);
        assert_eq!(empty.jwt_subject, None);
        let bytes = Handoff::read(|_| Some(vec![0xff, b'a']));
        assert_eq!(bytes.jwt_subject.as_deref(), Some("\u{fffd}a"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn admitted_requests_are_allowed() {
        let h = handoff(&[(handoff::AUTHZ_DECISION, "dry_run_deny")]);
        assert_eq!(verdict(true, &h).decision, Decision::Allow);
        assert_eq!(verdict(true, &h).denied_by, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn denials_are_attributed_to_the_last_denying_stage() {
        let cases = [
            (vec![(handoff::JWT_OUTCOME, "failed")], DeniedBy::JwtAuthn),
            (vec![(handoff::JWT_OUTCOME, "missing")], DeniedBy::JwtAuthn),
            (
                vec![
                    (handoff::JWT_OUTCOME, "missing"),
                    (handoff::AUTHZ_DECISION, "deny"),
                ],
                DeniedBy::Authz,
            ),
            (
                vec![
                    (handoff::JWT_OUTCOME, "verified"),
                    (handoff::AUTHZ_DECISION, "allow"),
                    (handoff::RATELIMIT_DECISION, "limited"),
                ],
                DeniedBy::Ratelimit,
            ),
            (vec![(handoff::JWT_OUTCOME, "verified")], DeniedBy::Other),
            (vec![], DeniedBy::Other),
        ];
        for (pairs, expected) in cases {
            let v = verdict(false, &handoff(&pairs));
            assert_eq!(v.decision, Decision::Deny);
            assert_eq!(v.denied_by, Some(expected), "{pairs:?}");
        }
    }
}
