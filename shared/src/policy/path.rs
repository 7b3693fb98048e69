//! Path patterns: Istio string patterns (`/a`, `/a/*`, `*.json`, `*`) and Istio path templates
//! (`/api/{*}/items/{**}`).
//!
//! Matching happens on the request's `:path` with the query (`?…`) and fragment (`#…`) removed,
//! as Envoy's rbac `url_path` does. No further normalization happens here: the filter relies on
//! the HTTP connection manager's `normalize_path: true` and `merge_slashes: true` (Istio's default
//! `pathNormalization: BASE` normalizes, `MERGE_SLASHES` also merges) so that `/a/../b` or `/a//b`
//! reach filters already normalized. Without them, a DENY on `/admin` can be bypassed with
//! `/x/../admin`.
//!
//! Templates (only when the value contains `{*}` or `{**}`):
//! - `{*}` matches exactly one non-empty path segment (no `/`);
//! - `{**}` matches zero or more characters including `/`, so `/a/{**}` matches `/a/` and
//!   `/a/b/c` but not `/a` (Envoy's `uri_template` semantics);
//! - each operator is a whole segment, `{**}` appears at most once and no `{*}` may follow it
//!   (literal segments may), the template starts with `/`, and a literal segment may not contain
//!   `*`, `{` or `}` (Istio refuses named variables and bare `*`/`**` in templates). A path with
//!   braces that is not a valid template (`/api/{id}`) is refused too, where Istio would match
//!   it literally and so never match a real request.

use super::error::PolicyError;
use super::string_match::StringPattern;

/// One compiled `paths` / `not_paths` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// An Istio string pattern.
    String(StringPattern),
    /// An Istio path template.
    Template(PathTemplate),
}

/// A compiled path template: literal pieces and single-segment operators, then optionally
/// `{**}` followed by a literal suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    head: Vec<Piece>,
    rest_suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    OneSegment,
}

const MATCH_ONE: &str = "{*}";
const MATCH_ANY: &str = "{**}";

impl PathPattern {
    /// Compiles one path value.
    pub fn parse(value: &str) -> Result<Self, PolicyError> {
        // Raw braces cannot appear in a request path (RFC 3986), so `/api/{id}` is a template
        // written for another syntax: refuse it rather than match it literally (Istio would).
        if value.contains(['{', '}']) {
            PathTemplate::parse(value).map(PathPattern::Template)
        } else {
            StringPattern::parse(value).map(PathPattern::String)
        }
    }

    /// Matches a path already stripped of its query (see [`url_path`]).
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathPattern::String(p) => p.matches(path),
            PathPattern::Template(t) => t.matches(path),
        }
    }
}

impl PathTemplate {
    /// Compiles a template, refusing what Istio and Envoy refuse.
    pub fn parse(value: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidPathTemplate {
            value: value.to_owned(),
            reason,
        };
        let Some(after_root) = value.strip_prefix('/') else {
            return Err(invalid("a path template must start with '/'"));
        };
        let mut head = Vec::new();
        let mut literal = String::from("/");
        let mut rest_seen = false;
        for (i, segment) in after_root.split('/').enumerate() {
            if i > 0 {
                literal.push('/');
            }
            match segment {
                MATCH_ONE => {
                    if rest_seen {
                        return Err(invalid("{**} must be the last operator"));
                    }
                    if !literal.is_empty() {
                        head.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    head.push(Piece::OneSegment);
                }
                MATCH_ANY => {
                    if rest_seen {
                        return Err(invalid("{**} may appear only once"));
                    }
                    if !literal.is_empty() {
                        head.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    rest_seen = true;
                }
                _ if segment.contains(['{', '}']) => {
                    return Err(invalid(
                        "only whole-segment {*} and {**} are supported (no named variables, no text around an operator)",
                    ))
                }
                _ if segment.contains('*') => {
                    return Err(invalid("'*' outside {*} or {**} is not allowed in a template"))
                }
                _ => literal.push_str(segment),
            }
        }
        let rest_suffix = if rest_seen {
            Some(literal)
        } else {
            if !literal.is_empty() {
                head.push(Piece::Literal(literal));
            }
            None
        };
        Ok(PathTemplate { head, rest_suffix })
    }

    /// The literal text every matching path starts with (at least `/`).
    pub fn literal_prefix(&self) -> &str {
        match self.head.first() {
            Some(Piece::Literal(text)) => text,
            _ => "",
        }
    }

    /// Matches a path already stripped of its query.
    pub fn matches(&self, path: &[u8]) -> bool {
        let mut rest = path;
        for piece in &self.head {
            match piece {
                Piece::Literal(text) => match rest.strip_prefix(text.as_bytes()) {
                    Some(after) => rest = after,
                    None => return false,
                },
                Piece::OneSegment => {
                    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
                    if end == 0 {
                        return false;
                    }
                    rest = rest.get(end..).unwrap_or_default();
                }
            }
        }
        match &self.rest_suffix {
            None => rest.is_empty(),
            Some(suffix) => rest.ends_with(suffix.as_bytes()),
        }
    }
}

/// The path without its query string and fragment.
pub fn url_path(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern)
            .unwrap()
            .matches(url_path(path.as_bytes()))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn string_patterns_and_query_stripping() {
        assert!(m("/info", "/info"));
        assert!(m("/info", "/info?x=1"));
        assert!(m("/info", "/info#frag"));
        assert!(!m("/info", "/info/"));
        assert!(m("/info*", "/info/a/b?q"));
        assert!(m("*.json", "/a/b.json?x=.txt"));
        assert!(!m("*.json", "/a/b.txt?x=.json"));
        assert!(m("*", "/"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn single_segment_operator() {
        assert!(m("/api/{*}/items", "/api/v1/items"));
        assert!(!m("/api/{*}/items", "/api/v1/x/items"));
        assert!(!m("/api/{*}/items", "/api//items"));
        assert!(m("/api/{*}", "/api/v1?x=/y"));
        assert!(!m("/api/{*}", "/api/v1/"));
        assert!(!m("/api/{*}", "/api/"));
        assert!(m("/{*}/{*}", "/a/b"));
        assert!(!m("/{*}/{*}", "/a"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rest_operator() {
        assert!(m("/api/{**}", "/api/"));
        assert!(m("/api/{**}", "/api/a/b/c"));
        assert!(!m("/api/{**}", "/api"));
        assert!(!m("/api/{**}", "/apix/a"));
        assert!(m("/api/{**}/edit", "/api/a/b/edit"));
        assert!(m("/api/{**}/edit", "/api//edit"));
        assert!(!m("/api/{**}/edit", "/api/edit"));
        assert!(!m("/api/{**}/edit", "/api/a/b/view"));
        assert!(m("/{*}/files/{**}", "/tenant/files/x/y.png"));
        assert!(!m("/{*}/files/{**}", "/files/x"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_templates_are_refused() {
        for bad in [
            "api/{*}",
            "/api/{**}/{*}",
            "/api/{**}/{**}",
            "/api/{name}",
            "/api/{name=*}",
            "/api/x{*}",
            "/api/{*}.json",
            "/api/*/{*}",
            "/api/{}/{*}",
            "/api/**/{**}",
        ] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(
                matches!(err, PolicyError::InvalidPathTemplate { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = PathPattern::parse("/a/{**}/{*}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path template \"/a/{**}/{*}\": {**} must be the last operator"
        );
    }
}
