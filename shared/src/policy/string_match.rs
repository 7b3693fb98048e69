//! Istio's string patterns: `abc` exact, `abc*` prefix, `*abc` suffix, `*` any non-empty value.
//!
//! As in Istio, only a leading or a trailing `*` is special; `a*b` is the exact string `a*b`.
//! Values are matched as bytes, so a non-UTF-8 header value is compared like any other.

use super::error::PolicyError;

/// One compiled string pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringPattern {
    /// The whole value equals this.
    Exact(String),
    /// The value starts with this.
    Prefix(String),
    /// The value ends with this.
    Suffix(String),
    /// The value starts with `prefix` and ends with `suffix`, not overlapping (Istio's
    /// `spiffe://.*abc` for a principal written `*abc`).
    PrefixSuffix {
        /// Required start.
        prefix: String,
        /// Required end.
        suffix: String,
    },
    /// Any non-empty value (`*`).
    Present,
}

impl StringPattern {
    /// Compiles an Istio string value. Empty values are refused (as Istio does).
    pub fn parse(value: &str) -> Result<Self, PolicyError> {
        Self::with_prefix(value, "")
    }

    /// Compiles `value` as Istio's `StringMatcherWithPrefix`: the fixed `prefix` (e.g.
    /// `spiffe://`) is required in front of every pattern except `*`.
    pub fn with_prefix(value: &str, prefix: &str) -> Result<Self, PolicyError> {
        if value.is_empty() {
            return Err(PolicyError::EmptyValue);
        }
        Ok(if value == "*" {
            StringPattern::Present
        } else if let Some(suffix) = value.strip_prefix('*') {
            if prefix.is_empty() {
                StringPattern::Suffix(suffix.to_owned())
            } else {
                StringPattern::PrefixSuffix {
                    prefix: prefix.to_owned(),
                    suffix: suffix.to_owned(),
                }
            }
        } else if let Some(start) = value.strip_suffix('*') {
            StringPattern::Prefix(format!("{prefix}{start}"))
        } else {
            StringPattern::Exact(format!("{prefix}{value}"))
        })
    }

    /// The same pattern with its literal parts lower-cased, for [`StringPattern::matches_ignore_case`].
    pub fn to_ascii_lowercase(&self) -> Self {
        match self {
            StringPattern::Exact(s) => StringPattern::Exact(s.to_ascii_lowercase()),
            StringPattern::Prefix(s) => StringPattern::Prefix(s.to_ascii_lowercase()),
            StringPattern::Suffix(s) => StringPattern::Suffix(s.to_ascii_lowercase()),
            StringPattern::PrefixSuffix { prefix, suffix } => StringPattern::PrefixSuffix {
                prefix: prefix.to_ascii_lowercase(),
                suffix: suffix.to_ascii_lowercase(),
            },
            StringPattern::Present => StringPattern::Present,
        }
    }

    /// Case-sensitive match.
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            StringPattern::Exact(s) => value == s.as_bytes(),
            StringPattern::Prefix(s) => value.starts_with(s.as_bytes()),
            StringPattern::Suffix(s) => value.ends_with(s.as_bytes()),
            StringPattern::PrefixSuffix { prefix, suffix } => {
                value.len() >= prefix.len() + suffix.len()
                    && value.starts_with(prefix.as_bytes())
                    && value.ends_with(suffix.as_bytes())
            }
            StringPattern::Present => !value.is_empty(),
        }
    }

    /// ASCII case-insensitive match; the pattern must have been lower-cased with
    /// [`StringPattern::to_ascii_lowercase`].
    pub fn matches_ignore_case(&self, value: &[u8]) -> bool {
        fn starts(value: &[u8], p: &str) -> bool {
            value
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
        }
        fn ends(value: &[u8], p: &str) -> bool {
            value
                .len()
                .checked_sub(p.len())
                .and_then(|at| value.get(at..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(p.as_bytes()))
        }
        match self {
            StringPattern::Exact(s) => value.eq_ignore_ascii_case(s.as_bytes()),
            StringPattern::Prefix(s) => starts(value, s),
            StringPattern::Suffix(s) => ends(value, s),
            StringPattern::PrefixSuffix { prefix, suffix } => {
                value.len() >= prefix.len() + suffix.len()
                    && starts(value, prefix)
                    && ends(value, suffix)
            }
            StringPattern::Present => !value.is_empty(),
        }
    }
}

/// A field with its negation: `values` (any may match) and `not_values` (none may match).
/// An empty side is no constraint; a field with both sides empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOf<M> {
    /// At least one must match (when non-empty).
    pub values: Vec<M>,
    /// None may match.
    pub not_values: Vec<M>,
}

impl<M> Default for OneOf<M> {
    fn default() -> Self {
        OneOf {
            values: Vec::new(),
            not_values: Vec::new(),
        }
    }
}

impl<M> OneOf<M> {
    /// True when neither side constrains anything.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.not_values.is_empty()
    }

    /// Evaluates the field with `test` deciding whether one matcher matches the request.
    #[inline]
    pub fn matches(&self, mut test: impl FnMut(&M) -> bool) -> bool {
        (self.values.is_empty() || self.values.iter().any(&mut test))
            && !self.not_values.iter().any(test)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn p(v: &str) -> StringPattern {
        StringPattern::parse(v).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn exact_prefix_suffix_presence() {
        assert!(p("abc").matches(b"abc"));
        assert!(!p("abc").matches(b"abcd"));
        assert!(p("ab*").matches(b"abcd"));
        assert!(p("ab*").matches(b"ab"));
        assert!(!p("ab*").matches(b"a"));
        assert!(p("*cd").matches(b"abcd"));
        assert!(!p("*cd").matches(b"abc"));
        assert!(p("*").matches(b"x"));
        assert!(!p("*").matches(b""));
        // A star in the middle is literal, as in Istio.
        assert!(p("a*b").matches(b"a*b"));
        assert!(!p("a*b").matches(b"axb"));
        assert_eq!(StringPattern::parse(""), Err(PolicyError::EmptyValue));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn with_prefix_follows_istio_principals() {
        let exact = StringPattern::with_prefix("td/ns/a/sa/b", "spiffe://").unwrap();
        assert!(exact.matches(b"spiffe://td/ns/a/sa/b"));
        assert!(!exact.matches(b"td/ns/a/sa/b"));
        let suffix = StringPattern::with_prefix("*/sa/b", "spiffe://").unwrap();
        assert!(suffix.matches(b"spiffe://td/ns/a/sa/b"));
        assert!(!suffix.matches(b"https://td/ns/a/sa/b"));
        let any = StringPattern::with_prefix("*", "spiffe://").unwrap();
        assert!(any.matches(b"https://anything"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ignore_case() {
        let host = p("*.Example.COM").to_ascii_lowercase();
        assert!(host.matches_ignore_case(b"api.EXAMPLE.com"));
        assert!(!host.matches_ignore_case(b"example.com"));
        assert!(p("API.example.com")
            .to_ascii_lowercase()
            .matches_ignore_case(b"api.example.COM"));
        assert!(p("Api*").to_ascii_lowercase().matches_ignore_case(b"API.x"));
        assert!(!p("Api*").to_ascii_lowercase().matches_ignore_case(b"AP"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn one_of_and_its_negation() {
        let f = OneOf {
            values: vec![p("a*")],
            not_values: vec![p("ab")],
        };
        assert!(f.matches(|m| m.matches(b"ac")));
        assert!(!f.matches(|m| m.matches(b"ab")));
        assert!(!f.matches(|m| m.matches(b"b")));
        let only_not = OneOf {
            values: vec![],
            not_values: vec![p("x")],
        };
        assert!(only_not.matches(|m| m.matches(b"y")));
        assert!(!only_not.matches(|m| m.matches(b"x")));
        assert!(OneOf::<StringPattern>::default().matches(|_| false));
    }
}
