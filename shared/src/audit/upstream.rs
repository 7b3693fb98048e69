//! The audit headers sent to the upstream with an admitted request.
//!
//! Every name this filter may set (configured names plus the default names) is removed from the
//! request first, whether or not a value follows, so a client can never make the upstream believe
//! it was authenticated. Values come only from filter state and connection properties, and are
//! made safe with [`crate::headers::sanitize_value`].

use super::config::{RawUpstreamHeaders, DEFAULT_HEADERS};
use super::stages::Handoff;
use crate::headers::{sanitize_value, UnsafeValuePolicy};

/// The compiled `upstream_headers` config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// Header for the verified subject, if enabled.
    pub subject: Option<String>,
    /// Header for the verified issuer, if enabled.
    pub issuer: Option<String>,
    /// Header for the mTLS peer principal, if enabled.
    pub peer: Option<String>,
    /// Header for the authz decision, if enabled.
    pub authz_decision: Option<String>,
    /// Header for the authz policy, if enabled.
    pub authz_policy: Option<String>,
    /// Header for the rate-limit state, if enabled.
    pub ratelimit: Option<String>,
    /// What to do with unsafe values.
    pub unsafe_values: UnsafeValuePolicy,
    /// Every header removed from incoming requests (configured and default names, no duplicates).
    pub strip: Vec<String>,
}

impl UpstreamHeaders {
    /// Compiles the raw config (names are validated by the caller).
    pub fn new(raw: &RawUpstreamHeaders) -> UpstreamHeaders {
        let mut headers = UpstreamHeaders {
            subject: raw.subject.clone(),
            issuer: raw.issuer.clone(),
            peer: raw.peer.clone(),
            authz_decision: raw.authz_decision.clone(),
            authz_policy: raw.authz_policy.clone(),
            ratelimit: raw.ratelimit.clone(),
            unsafe_values: raw.unsafe_values,
            strip: Vec::new(),
        };
        let configured = [
            &headers.subject,
            &headers.issuer,
            &headers.peer,
            &headers.authz_decision,
            &headers.authz_policy,
            &headers.ratelimit,
        ];
        let mut strip: Vec<String> = DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect();
        for name in configured.into_iter().flatten() {
            if !strip.contains(name) {
                strip.push(name.clone());
            }
        }
        headers.strip = strip;
        headers
    }

    /// No header set, the default names still stripped.
    pub fn disabled() -> UpstreamHeaders {
        UpstreamHeaders {
            subject: None,
            issuer: None,
            peer: None,
            authz_decision: None,
            authz_policy: None,
            ratelimit: None,
            unsafe_values: UnsafeValuePolicy::Escape,
            strip: DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The header edits for the upstream request: first remove every name in `remove`, then set
/// every pair in `set` (each name at most once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Names to remove (all values).
    pub remove: Vec<String>,
    /// Names and safe values to set.
    pub set: Vec<(String, String)>,
}

impl HeaderEdits {
    /// How many single-header hostcalls the edits take against `headers`: a removal only for a
    /// name the request carries and that is not about to be set (a replace drops every copy), and
    /// one per set.
    pub fn single_calls(&self, headers: &[(String, Vec<u8>)]) -> usize {
        self.removals(headers).count() + self.set.len()
    }

    /// The removals worth making against `headers` (see [`HeaderEdits::single_calls`]).
    pub fn removals<'a>(
        &'a self,
        headers: &'a [(String, Vec<u8>)],
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.remove.iter().filter(move |name| {
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
                && !self.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
        })
    }

    /// The whole header list after the edits: every line of `headers` whose name is neither
    /// removed nor set, in order, then the set names with their values. Writing it back in one
    /// `proxy_set_header_map_pairs` has the same effect as the single removals and replaces.
    pub fn apply(&self, headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        let touched = |name: &str| {
            self.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
                || self.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(name))
        };
        headers
            .iter()
            .filter(|(name, _)| !touched(name))
            .cloned()
            .chain(
                self.set
                    .iter()
                    .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec())),
            )
            .collect()
    }
}

/// Plans the audit headers of an admitted request from the hand-off and the mTLS peer principal
/// (`connection.uri_san_peer_certificate`).
pub fn plan(config: &UpstreamHeaders, handoff: &Handoff, peer: Option<&[u8]>) -> HeaderEdits {
    let mut edits = HeaderEdits {
        remove: config.strip.clone(),
        set: Vec::new(),
    };
    let verified = handoff.jwt_verified();
    let ratelimit = handoff.ratelimit_decision.as_ref().map(|decision| {
        match handoff.ratelimit_remaining.as_deref() {
            Some(remaining) => format!("{decision}; remaining={remaining}"),
            None => decision.clone(),
        }
    });
    let values: [(&Option<String>, Option<&[u8]>); 6] = [
        (
            &config.subject,
            handoff
                .jwt_subject
                .as_deref()
                .filter(|_| verified)
                .map(str::as_bytes),
        ),
        (
            &config.issuer,
            handoff
                .jwt_issuer
                .as_deref()
                .filter(|_| verified)
                .map(str::as_bytes),
        ),
        (&config.peer, peer.filter(|p| !p.is_empty())),
        (
            &config.authz_decision,
            handoff.authz_decision.as_deref().map(str::as_bytes),
        ),
        (
            &config.authz_policy,
            handoff.authz_policy.as_deref().map(str::as_bytes),
        ),
        (&config.ratelimit, ratelimit.as_deref().map(str::as_bytes)),
    ];
    for (name, value) in values {
        let (Some(name), Some(value)) = (name, value) else {
            continue;
        };
        if let Some(safe) = sanitize_value(value, config.unsafe_values) {
            edits.set.push((name.clone(), safe));
        }
    }
    edits
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn apply_equals_the_single_removals_and_replaces() {
        let headers = pairs(&[
            (":method", "GET"),
            (":path", "/a"),
            ("x-forged", "1"),
            ("accept", "a"),
            ("x-forged", "2"),
            ("x-subject", "spoofed"),
            ("tracestate", "t"),
        ]);
        let edits = HeaderEdits {
            remove: vec!["X-Forged".into(), "x-subject".into(), "absent".into()],
            set: vec![
                ("X-Subject".into(), "alice".into()),
                ("x-new".into(), "n".into()),
            ],
        };
        // The single calls: remove x-forged (present, not set); x-subject is replaced instead.
        let removals: Vec<&String> = edits.removals(&headers).collect();
        assert_eq!(removals, vec!["X-Forged"]);
        assert_eq!(edits.single_calls(&headers), 3);
        // What those calls leave, computed the slow way.
        let mut expected = headers.clone();
        for name in removals {
            expected.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        for (name, value) in &edits.set {
            expected.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            expected.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        }
        assert_eq!(edits.apply(&headers), expected);
        assert_eq!(
            edits.apply(&headers),
            pairs(&[
                (":method", "GET"),
                (":path", "/a"),
                ("accept", "a"),
                ("tracestate", "t"),
                ("x-subject", "alice"),
                ("x-new", "n"),
            ])
        );
    }

    #[test]
    fn apply_without_edits_keeps_every_line_in_order() {
        let headers = pairs(&[(":path", "/"), ("a", "1"), ("a", "2")]);
        let edits = HeaderEdits::default();
        assert_eq!(edits.apply(&headers), headers);
        assert_eq!(edits.single_calls(&headers), 0);
    }
    use crate::audit::config::{compile, RawAuditConfig};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn config(raw: RawUpstreamHeaders) -> UpstreamHeaders {
        compile(RawAuditConfig {
            upstream_headers: raw,
            ..Default::default()
        })
        .unwrap()
        .upstream
    }

    fn verified(subject: &str) -> Handoff {
        Handoff {
            jwt_outcome: Some("verified".into()),
            jwt_subject: Some(subject.into()),
            jwt_issuer: Some("https://idp.example".into()),
            authz_decision: Some("allow".into()),
            authz_policy: Some("orders-read".into()),
            ratelimit_decision: Some("allow".into()),
            ratelimit_remaining: Some("4".into()),
            ..Default::default()
        }
    }

    fn get<'a>(edits: &'a HeaderEdits, name: &str) -> Option<&'a str> {
        edits
            .set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sets_every_header_from_the_handoff() {
        let edits = plan(
            &config(RawUpstreamHeaders::default()),
            &verified("alice"),
            Some(b"spiffe://cluster.local/ns/a/sa/b"),
        );
        assert_eq!(edits.remove.len(), 6);
        assert_eq!(get(&edits, "x-meshguard-subject"), Some("alice"));
        assert_eq!(
            get(&edits, "x-meshguard-issuer"),
            Some("https://idp.example")
        );
        assert_eq!(
            get(&edits, "x-meshguard-peer"),
            Some("spiffe://cluster.local/ns/a/sa/b")
        );
        assert_eq!(get(&edits, "x-meshguard-authz-decision"), Some("allow"));
        assert_eq!(get(&edits, "x-meshguard-authz-policy"), Some("orders-read"));
        assert_eq!(
            get(&edits, "x-meshguard-ratelimit"),
            Some("allow; remaining=4")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nothing_known_means_everything_removed_and_nothing_set() {
        let edits = plan(
            &config(RawUpstreamHeaders::default()),
            &Handoff::default(),
            None,
        );
        assert!(edits.set.is_empty());
        assert_eq!(edits.remove, DEFAULT_HEADERS.map(String::from).to_vec());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn identity_only_from_a_verified_token() {
        let mut h = verified("alice");
        h.jwt_outcome = Some("failed".into());
        let edits = plan(&config(RawUpstreamHeaders::default()), &h, None);
        assert_eq!(get(&edits, "x-meshguard-subject"), None);
        assert_eq!(get(&edits, "x-meshguard-issuer"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unsafe_values_are_escaped_or_dropped() {
        let h = verified("alice\r\nx-admin: true");
        let edits = plan(
            &config(RawUpstreamHeaders::default()),
            &h,
            Some("ü".as_bytes()),
        );
        assert_eq!(
            get(&edits, "x-meshguard-subject"),
            Some("alice%0D%0Ax-admin: true")
        );
        assert_eq!(get(&edits, "x-meshguard-peer"), Some("%C3%BC"));
        let drop = config(RawUpstreamHeaders {
            unsafe_values: UnsafeValuePolicy::Drop,
            ..Default::default()
        });
        let edits = plan(&drop, &h, None);
        assert_eq!(get(&edits, "x-meshguard-subject"), None);
        assert_eq!(
            get(&edits, "x-meshguard-issuer"),
            Some("https://idp.example")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn renamed_and_disabled_headers_are_still_stripped() {
        let c = config(RawUpstreamHeaders {
            subject: Some("x-user".into()),
            ratelimit: None,
            ..Default::default()
        });
        let edits = plan(&c, &verified("bob"), None);
        assert_eq!(get(&edits, "x-user"), Some("bob"));
        assert_eq!(get(&edits, "x-meshguard-subject"), None);
        assert_eq!(get(&edits, "x-meshguard-ratelimit"), None);
        for h in ["x-user", "x-meshguard-subject", "x-meshguard-ratelimit"] {
            assert!(edits.remove.iter().any(|r| r == h), "{h}");
        }
    }
}
