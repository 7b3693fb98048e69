//! A per-rule quick reject, computed at configure time from the rule's `to` list: which methods
//! and which path beginnings can possibly match. Evaluating it costs two compares against facts
//! computed once per request, so a scan over many rules only looks closer at the rules the
//! request could match. It never rejects a request the full rule would match: it only knows
//! what every `to` alternative requires (exact method values, literal path prefixes).

use super::model::Check;
use super::path::PathPattern;
use super::string_match::StringPattern;

const METHODS: [&[u8]; 9] = [
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"CONNECT", b"TRACE",
];
const OTHER_METHOD: u16 = 1 << 9;
const ANY_METHOD: u16 = u16::MAX;

/// The bit of a request method (an unlisted method shares one bit).
pub(crate) fn method_bit(method: &[u8]) -> u16 {
    METHODS
        .iter()
        .position(|m| *m == method)
        .map_or(OTHER_METHOD, |i| 1 << i)
}

/// The first 8 bytes of a path, zero-padded, as one integer.
pub(crate) fn path_head(path: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    for (dst, src) in head.iter_mut().zip(path) {
        *dst = *src;
    }
    u64::from_be_bytes(head)
}

/// `(mask, value)` such that a path starting with `prefix` has `path_head & mask == value`.
fn prefix_word(prefix: &[u8]) -> (u64, u64) {
    let n = prefix.len().min(8);
    let mask = if n == 0 { 0 } else { u64::MAX << (8 * (8 - n)) };
    (mask, path_head(prefix) & mask)
}

/// What a rule requires of the method and path, whatever else it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    methods: u16,
    /// `None`: any path; else the path starts with one of these (as `(mask, value)` words).
    paths: Option<Vec<(u64, u64)>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            methods: ANY_METHOD,
            paths: None,
        }
    }
}

impl Gate {
    /// The gate of a rule whose `to` alternatives are `to` (empty = no constraint).
    pub(crate) fn of(to: &[Vec<Check>]) -> Gate {
        if to.is_empty() {
            return Gate::default();
        }
        let mut methods = 0u16;
        let mut paths = Some(Vec::new());
        for alternative in to {
            methods |= alternative_methods(alternative);
            match (alternative_paths(alternative), paths.as_mut()) {
                (Some(words), Some(all)) => all.extend(words),
                _ => paths = None,
            }
        }
        if let Some(all) = paths.as_mut() {
            all.sort_unstable();
            all.dedup();
        }
        Gate { methods, paths }
    }

    /// The `(mask, value)` path words, one of which a path head must match; `None` when the
    /// rule admits any path.
    pub(crate) fn path_words(&self) -> Option<&[(u64, u64)]> {
        self.paths.as_deref()
    }

    /// False only when the rule cannot match a request with this method bit and path head.
    #[inline]
    pub(crate) fn admits(&self, method_bit: u16, path_head: u64) -> bool {
        self.methods & method_bit != 0
            && self
                .paths
                .as_ref()
                .is_none_or(|words| words.iter().any(|&(mask, value)| path_head & mask == value))
    }
}

/// Methods one `to` alternative allows: the exact `methods` values, or any.
fn alternative_methods(checks: &[Check]) -> u16 {
    let mut allowed = ANY_METHOD;
    for check in checks {
        if let Check::Method(f) = check {
            if f.values.is_empty() {
                continue;
            }
            let mut bits = 0u16;
            for pattern in &f.values {
                match pattern {
                    StringPattern::Exact(m) => bits |= method_bit(m.as_bytes()),
                    _ => return ANY_METHOD,
                }
            }
            allowed &= bits;
        }
    }
    allowed
}

/// Path beginnings one `to` alternative requires, or `None` when it does not constrain them.
fn alternative_paths(checks: &[Check]) -> Option<Vec<(u64, u64)>> {
    checks.iter().find_map(|check| match check {
        Check::Path(f) if !f.values.is_empty() => f
            .values
            .iter()
            .map(|p| match p {
                PathPattern::String(StringPattern::Exact(s) | StringPattern::Prefix(s)) => {
                    Some(prefix_word(s.as_bytes()))
                }
                PathPattern::Template(t) => Some(prefix_word(t.literal_prefix().as_bytes())),
                PathPattern::String(_) => None,
            })
            .collect::<Option<Vec<_>>>(),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::policy::path::url_path;
    use crate::policy::string_match::OneOf;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn to(methods: &[&str], paths: &[&str]) -> Vec<Check> {
        let mut checks = Vec::new();
        if !methods.is_empty() {
            checks.push(Check::Method(OneOf {
                values: methods
                    .iter()
                    .map(|m| StringPattern::parse(m).unwrap())
                    .collect(),
                not_values: vec![],
            }));
        }
        if !paths.is_empty() {
            checks.push(Check::Path(OneOf {
                values: paths
                    .iter()
                    .map(|p| PathPattern::parse(p).unwrap())
                    .collect(),
                not_values: vec![],
            }));
        }
        checks
    }

    fn admits(gate: &Gate, method: &str, path: &str) -> bool {
        gate.admits(
            method_bit(method.as_bytes()),
            path_head(url_path(path.as_bytes())),
        )
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_only_what_cannot_match() {
        let g = Gate::of(&[to(&["GET", "PROPFIND"], &["/api/v1/{*}", "/health"])]);
        assert!(admits(&g, "GET", "/api/v1/x"));
        assert!(admits(&g, "PROPFIND", "/health"));
        assert!(
            admits(&g, "MKCOL", "/health"),
            "unlisted methods share a bit"
        );
        assert!(!admits(&g, "POST", "/health"));
        assert!(!admits(&g, "GET", "/api/v2/x"));
        assert!(!admits(&g, "GET", "/he"));
        // Prefix longer than 8 bytes: only the first 8 are compared.
        assert!(admits(&g, "GET", "/api/v1/"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unconstrained_alternatives_open_the_gate() {
        assert_eq!(Gate::of(&[]), Gate::default());
        let g = Gate::of(&[to(&["GET"], &["/a"]), to(&[], &["*.json"])]);
        assert!(admits(&g, "DELETE", "/x.json"));
        let g = Gate::of(&[to(&["G*"], &[])]);
        assert!(admits(&g, "POST", "/"));
        let g = Gate::of(&[to(&["GET"], &["/a"]), to(&["POST"], &["/b*"])]);
        assert!(
            admits(&g, "POST", "/a"),
            "union over alternatives, checked in full later"
        );
        assert!(!admits(&g, "PUT", "/a"));
        assert!(!admits(&g, "GET", "/c"));
    }
}
