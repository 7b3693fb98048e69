//! Route matching for rules: exact path, prefix, or path template, plus methods. Compiled once at
//! configure time; matching allocates nothing.

/// One segment of a compiled path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Literal text, compared exactly.
    Literal(String),
    /// Exactly one non-empty segment (`{name}`, `{name=*}`, `*`, `{*}`).
    One,
    /// Zero or more remaining segments (`{**}`, `{name=**}`, `**`); only last.
    Rest,
}

/// How the path is compared (the query string is never part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Equal to this path.
    Exact(String),
    /// Starts with this prefix.
    Prefix(String),
    /// Matches the template.
    Template(Vec<SegmentMatcher>),
}

/// A compiled template segment (opaque; built by [`compile_template`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMatcher(Segment);

/// A compiled `match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatcher {
    /// Path condition.
    pub path: PathMatch,
    /// Upper-case methods; empty = any.
    pub methods: Vec<String>,
}

impl RouteMatcher {
    /// True when `method` and `path` (which may still carry `?query`) fit.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        let path = strip_query(path);
        match &self.path {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Template(segments) => template_matches(segments, path),
        }
    }
}

/// The path without `?query` and `#fragment`.
pub fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

/// Compiles `/users/{id}/orders/{**}`; the error says what is wrong.
pub fn compile_template(template: &str) -> Result<Vec<SegmentMatcher>, String> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(format!("path template {template:?} must start with '/'"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let seg = match *part {
            "*" | "{*}" => Segment::One,
            "**" | "{**}" => Segment::Rest,
            p if p.starts_with('{') && p.ends_with('}') => {
                let inner = p.get(1..p.len() - 1).unwrap_or("");
                let (name, pattern) = match inner.split_once('=') {
                    Some((n, pat)) => (n, pat),
                    None => (inner, "*"),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "path template {template:?}: bad variable name in {p:?}"
                    ));
                }
                match pattern {
                    "*" => Segment::One,
                    "**" => Segment::Rest,
                    _ => {
                        return Err(format!(
                            "path template {template:?}: {p:?} may only bind '*' or '**'"
                        ))
                    }
                }
            }
            p if p.contains(['{', '}', '*']) => {
                return Err(format!(
                    "path template {template:?}: segment {p:?} mixes literal text with a variable"
                ))
            }
            p => Segment::Literal(p.to_string()),
        };
        if seg == Segment::Rest && !last {
            return Err(format!(
                "path template {template:?}: '**' is only allowed as the last segment"
            ));
        }
        out.push(SegmentMatcher(seg));
    }
    Ok(out)
}

fn template_matches(segments: &[SegmentMatcher], path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut parts = rest.split('/');
    for SegmentMatcher(seg) in segments {
        match seg {
            Segment::Rest => return true,
            Segment::One => match parts.next() {
                Some(p) if !p.is_empty() => {}
                _ => return false,
            },
            Segment::Literal(lit) => match parts.next() {
                Some(p) if p == lit => {}
                _ => return false,
            },
        }
    }
    parts.next().is_none()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn m(path: PathMatch, methods: &[&str]) -> RouteMatcher {
        RouteMatcher {
            path,
            methods: methods.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn exact_and_prefix_ignore_query() {
        let exact = m(PathMatch::Exact("/health".into()), &[]);
        assert!(exact.matches("GET", "/health"));
        assert!(exact.matches("GET", "/health?x=1"));
        assert!(!exact.matches("GET", "/health/x"));
        let prefix = m(PathMatch::Prefix("/api/".into()), &["GET", "POST"]);
        assert!(prefix.matches("POST", "/api/orders?a=b"));
        assert!(!prefix.matches("DELETE", "/api/orders"));
        assert!(!prefix.matches("GET", "/apix"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn templates() {
        let t = m(
            PathMatch::Template(compile_template("/users/{id}/orders/{**}").unwrap()),
            &[],
        );
        assert!(t.matches("GET", "/users/42/orders/"));
        assert!(t.matches("GET", "/users/42/orders/a/b?q"));
        assert!(!t.matches("GET", "/users//orders/a"));
        assert!(!t.matches("GET", "/users/42/items/a"));
        let one = m(
            PathMatch::Template(compile_template("/a/*/c").unwrap()),
            &[],
        );
        assert!(one.matches("GET", "/a/b/c"));
        assert!(!one.matches("GET", "/a/b/c/d"));
        assert!(!one.matches("GET", "/a/b"));
        assert!(compile_template("a/b").is_err());
        assert!(compile_template("/a/{**}/b").is_err());
        assert!(compile_template("/a/x{id}").is_err());
        assert!(compile_template("/a/{id=x}").is_err());
        assert!(compile_template("/a/{name=**}").is_ok());
    }
}
