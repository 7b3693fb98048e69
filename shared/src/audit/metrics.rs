//! The audit filter's metrics: a fixed set of counter names, defined once at configure time.
//!
//! Labels are encoded Istio-style in the name (`<tag>=.=<value>;.;`) so `extraStatTags`
//! (or Envoy `stats_tags` with the regex `(<tag>=\.=(.*?);\.;)`) turns them into labels:
//! - `meshguard_audit_requests_total_decision=.=<allow|deny>;.;_status_class=.=<class>;.;`
//!   — every request, by verdict and response status class (`1xx`…`5xx`, `none` when no status);
//! - `meshguard_audit_records_total_outcome=.=<emitted|not_selected|sampled_out>;.;`
//!   — what happened to the audit record;
//! - `meshguard_audit_errors_total` — a hostcall failed (the request itself is not affected).

use super::stages::Decision;

/// Response status class, a bounded metric tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 100–199
    Informational,
    /// 200–299
    Success,
    /// 300–399
    Redirect,
    /// 400–499
    ClientError,
    /// 500–599
    ServerError,
    /// No status (stream reset before a response) or one outside 100–599.
    None,
}

impl StatusClass {
    /// Every class, in tag order.
    pub const ALL: [StatusClass; 6] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirect,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::None,
    ];

    /// The class of `status`.
    pub fn of(status: Option<u16>) -> StatusClass {
        match status {
            Some(100..=199) => StatusClass::Informational,
            Some(200..=299) => StatusClass::Success,
            Some(300..=399) => StatusClass::Redirect,
            Some(400..=499) => StatusClass::ClientError,
            Some(500..=599) => StatusClass::ServerError,
            _ => StatusClass::None,
        }
    }

    /// `1xx` … `5xx` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::None => "none",
        }
    }

    fn index(self) -> usize {
        match self {
            StatusClass::Informational => 0,
            StatusClass::Success => 1,
            StatusClass::Redirect => 2,
            StatusClass::ClientError => 3,
            StatusClass::ServerError => 4,
            StatusClass::None => 5,
        }
    }
}

/// Both decisions, in tag order.
pub const DECISIONS: [Decision; 2] = [Decision::Allow, Decision::Deny];

/// Record outcomes, in tag order.
pub const RECORD_OUTCOMES: [&str; 3] = ["emitted", "not_selected", "sampled_out"];

/// Name of the hostcall-error counter.
pub const ERRORS: &str = "meshguard_audit_errors_total";

/// Name of the request counter for one decision and status class.
pub fn requests(decision: Decision, class: StatusClass) -> String {
    format!(
        "meshguard_audit_requests_total_decision=.={};.;_status_class=.={};.;",
        decision.as_str(),
        class.as_str()
    )
}

/// Name of the record counter for one outcome.
pub fn records(outcome: &str) -> String {
    format!("meshguard_audit_records_total_outcome=.={outcome};.;")
}

/// Position of a (decision, class) request counter in a table built by iterating [`DECISIONS`]
/// then [`StatusClass::ALL`].
pub fn request_slot(decision: Decision, class: StatusClass) -> usize {
    let row = match decision {
        Decision::Allow => 0,
        Decision::Deny => 1,
    };
    row * StatusClass::ALL.len() + class.index()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn names_follow_the_istio_tag_convention() {
        assert_eq!(
            requests(Decision::Deny, StatusClass::ClientError),
            "meshguard_audit_requests_total_decision=.=deny;.;_status_class=.=4xx;.;"
        );
        assert_eq!(
            records("sampled_out"),
            "meshguard_audit_records_total_outcome=.=sampled_out;.;"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn classes() {
        assert_eq!(StatusClass::of(Some(200)), StatusClass::Success);
        assert_eq!(StatusClass::of(Some(429)), StatusClass::ClientError);
        assert_eq!(StatusClass::of(Some(503)), StatusClass::ServerError);
        assert_eq!(StatusClass::of(Some(99)), StatusClass::None);
        assert_eq!(StatusClass::of(None), StatusClass::None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn slots_match_the_iteration_order() {
        let mut i = 0;
        for d in DECISIONS {
            for c in StatusClass::ALL {
                assert_eq!(request_slot(d, c), i);
                i += 1;
            }
        }
        assert_eq!(i, 12);
    }
}
