//! JWT claims: claim paths, Istio's string/list matching, our typed matching and OAuth scopes.
//!
//! Claims come only from the payload the jwt-authn filter verified and handed off in filter
//! state, never from request headers.
//!
//! A claim path is written one of three ways:
//! - dotted: `realm_access.roles`;
//! - Istio brackets: `[https://example.com/roles][0]` (for names containing dots);
//! - a JSON pointer (RFC 6901): `/https:~1~1example.com~1roles/0`.
//!
//! A segment made of digits indexes an array when the value at that point is an array
//! (`groups.0`), and is an object key otherwise.

use serde_json::Value;

use super::error::PolicyError;
use super::string_match::StringPattern;

/// A compiled claim path: the object keys / array indexes to walk from the payload root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// Parses a dotted, bracketed or JSON-pointer claim path.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidClaimPath {
            value: text.to_owned(),
            reason,
        };
        let segments: Vec<String> = if text.is_empty() {
            return Err(invalid("empty path"));
        } else if let Some(pointer) = text.strip_prefix('/') {
            pointer
                .split('/')
                .map(|s| {
                    unescape_pointer(s).ok_or_else(|| invalid("'~' must be followed by 0 or 1"))
                })
                .collect::<Result<_, _>>()?
        } else if text.starts_with('[') {
            parse_brackets(text)
                .ok_or_else(|| invalid("expected [name][name]… with non-empty names"))?
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        if segments.iter().any(String::is_empty) {
            return Err(invalid("empty segment"));
        }
        Ok(ClaimPath(segments))
    }

    /// Builds a path from already-separated segments (Istio's `request.auth.claims[a][b]`).
    pub fn from_segments(segments: Vec<String>) -> Self {
        ClaimPath(segments)
    }

    /// The value at this path in `root`, if any.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.0.iter().try_fold(root, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

fn unescape_pointer(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Parses `[a][b]…`; `None` unless the whole text is bracket groups with non-empty names.
pub(crate) fn parse_brackets(text: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let name = inner.get(..close)?;
        if name.is_empty() || name.contains('[') {
            return None;
        }
        segments.push(name.to_owned());
        rest = inner.get(close + 1..)?;
    }
    (!segments.is_empty()).then_some(segments)
}

/// Istio's claim matching: a string claim matches the pattern, a list claim matches when one of
/// its string elements does. Numbers, bools and objects never match (use typed conditions).
pub fn istio_claim_matches(value: Option<&Value>, pattern: &StringPattern) -> bool {
    match value {
        Some(Value::String(s)) => pattern.matches(s.as_bytes()),
        Some(Value::Array(items)) => items
            .iter()
            .any(|item| item.as_str().is_some_and(|s| pattern.matches(s.as_bytes()))),
        _ => false,
    }
}

/// A typed scalar a claim is compared with: a JSON string, number or bool. Types never mix:
/// the string `"true"` does not equal the bool `true`, and `"1"` does not equal `1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(Value);

impl Scalar {
    /// Accepts a JSON string, number or bool.
    pub fn new(value: &Value) -> Result<Self, PolicyError> {
        match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(Scalar(value.clone())),
            other => Err(PolicyError::InvalidClaimValue {
                value: other.to_string(),
            }),
        }
    }

    /// Type-strict equality; numbers compare by value (`1` equals `1.0`).
    pub fn equals(&self, claim: &Value) -> bool {
        match (&self.0, claim) {
            (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => match (a.as_u64(), b.as_u64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y),
                },
            },
            (a, b) => a == b,
        }
    }
}

/// Iterates the elements of a claim seen as a list: an array's elements, or the claim itself
/// for a scalar (so `aud: "x"` and `aud: ["x"]` behave alike). Null and objects have none.
fn elements(claim: &Value) -> impl Iterator<Item = &Value> {
    let (one, many): (Option<&Value>, &[Value]) = match claim {
        Value::Array(items) => (None, items.as_slice()),
        Value::Null | Value::Object(_) => (None, &[]),
        scalar => (Some(scalar), &[]),
    };
    one.into_iter().chain(many.iter())
}

/// A typed claim condition (our extension to Istio): every listed operator must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypedClaim {
    /// Where the claim is.
    pub path: Option<ClaimPath>,
    /// `equals`: the claim equals this scalar.
    pub equals: Option<Scalar>,
    /// `not_equals`: the claim is absent or does not equal this scalar.
    pub not_equals: Option<Scalar>,
    /// `contains_any`: one of these is an element of the claim.
    pub contains_any: Vec<Scalar>,
    /// `not_contains_any`: none of these is an element of the claim.
    pub not_contains_any: Vec<Scalar>,
    /// `contains_all`: all of these are elements of the claim.
    pub contains_all: Vec<Scalar>,
    /// `not_contains_all`: not all of these are elements of the claim.
    pub not_contains_all: Vec<Scalar>,
    /// `present`: the claim exists and is not null (`true`) or is absent or null (`false`).
    pub present: Option<bool>,
}

impl TypedClaim {
    /// Evaluates against the verified payload (`None` when there is no verified token: every
    /// positive operator fails and every `not_` operator holds, as Istio's `not_values` do).
    pub fn matches(&self, payload: Option<&Value>) -> bool {
        let claim = match (&self.path, payload) {
            (Some(path), Some(root)) => path.lookup(root).filter(|v| !v.is_null()),
            _ => None,
        };
        let contains = |want: &Scalar| claim.is_some_and(|c| elements(c).any(|e| want.equals(e)));
        self.present.is_none_or(|p| p == claim.is_some())
            && self
                .equals
                .as_ref()
                .is_none_or(|want| claim.is_some_and(|c| want.equals(c)))
            && self
                .not_equals
                .as_ref()
                .is_none_or(|want| !claim.is_some_and(|c| want.equals(c)))
            && (self.contains_any.is_empty() || self.contains_any.iter().any(contains))
            && !self.not_contains_any.iter().any(contains)
            && (self.contains_all.is_empty() || self.contains_all.iter().all(contains))
            && (self.not_contains_all.is_empty() || !self.not_contains_all.iter().all(contains))
    }
}

/// Checks one RFC 6749 scope token.
pub fn validate_scope(scope: &str) -> Result<(), PolicyError> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PolicyError::InvalidScope {
            value: scope.to_owned(),
        })
    }
}

/// Whether the token grants `scope`: in `scope` or `scp`, each either a space-delimited string
/// or an array of strings (Okta sends `scp` as an array, Entra ID as a string).
pub fn has_scope(payload: Option<&Value>, scope: &str) -> bool {
    let Some(Value::Object(claims)) = payload else {
        return false;
    };
    ["scope", "scp"].iter().any(|name| match claims.get(*name) {
        Some(Value::String(s)) => s.split(' ').any(|granted| granted == scope),
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(scope)),
        _ => false,
    })
}

/// Required OAuth scopes (`scopes: {all_of, any_of}`), with the `WWW-Authenticate` value sent
/// when a request is refused for lacking them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    /// Every one of these must be granted.
    pub all_of: Vec<String>,
    /// At least one of these must be granted (when non-empty).
    pub any_of: Vec<String>,
    /// `Bearer error="insufficient_scope", scope="<all_of and any_of>"`, built at configure time.
    pub www_authenticate: String,
}

impl ScopeRequirement {
    /// Builds a requirement from validated scopes.
    pub fn new(all_of: Vec<String>, any_of: Vec<String>) -> Self {
        let listed: Vec<&str> = all_of.iter().chain(&any_of).map(String::as_str).collect();
        let www_authenticate = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\"",
            listed.join(" ")
        );
        ScopeRequirement {
            all_of,
            any_of,
            www_authenticate,
        }
    }

    /// Whether the token grants what is required.
    pub fn satisfied_by(&self, payload: Option<&Value>) -> bool {
        self.all_of.iter().all(|s| has_scope(payload, s))
            && (self.any_of.is_empty() || self.any_of.iter().any(|s| has_scope(payload, s)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn payload() -> Value {
        json!({
            "sub": "alice",
            "admin": true,
            "level": 3,
            "ratio": 0.5,
            "flag": "true",
            "realm_access": {"roles": ["reader", "writer"]},
            "https://example.com/tenant": "acme",
            "groups": ["g0", "g1"],
            "nothing": null,
            "scope": "read:a write:a",
            "scp": ["admin"]
        })
    }

    fn s(v: Value) -> Scalar {
        Scalar::new(&v).unwrap()
    }

    fn typed(path: &str) -> TypedClaim {
        TypedClaim {
            path: Some(ClaimPath::parse(path).unwrap()),
            ..TypedClaim::default()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn claim_path_forms() {
        let p = payload();
        let get = |path: &str| ClaimPath::parse(path).unwrap().lookup(&p).cloned();
        assert_eq!(get("realm_access.roles.1"), Some(json!("writer")));
        assert_eq!(get("[https://example.com/tenant]"), Some(json!("acme")));
        assert_eq!(get("/https:~1~1example.com~1tenant"), Some(json!("acme")));
        assert_eq!(get("/realm_access/roles/0"), Some(json!("reader")));
        assert_eq!(
            get("[realm_access][roles]"),
            Some(json!(["reader", "writer"]))
        );
        assert_eq!(get("groups.7"), None);
        assert_eq!(get("sub.x"), None);
        for bad in [
            "", "a..b", ".a", "a.", "/a//b", "/a/~2", "[a", "[a]b", "[]", "[a][]",
        ] {
            assert!(
                matches!(
                    ClaimPath::parse(bad),
                    Err(PolicyError::InvalidClaimPath { .. })
                ),
                "{bad}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn istio_matching_is_strings_and_string_lists_only() {
        let p = payload();
        let at = |path: &str| ClaimPath::parse(path).unwrap().lookup(&p);
        let pat = |v: &str| StringPattern::parse(v).unwrap();
        assert!(istio_claim_matches(at("sub"), &pat("alice")));
        assert!(istio_claim_matches(at("groups"), &pat("g1")));
        assert!(istio_claim_matches(at("realm_access.roles"), &pat("wri*")));
        assert!(!istio_claim_matches(at("admin"), &pat("true")));
        assert!(!istio_claim_matches(at("level"), &pat("3")));
        assert!(!istio_claim_matches(at("missing"), &pat("*")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn typed_equality_never_mixes_types() {
        let p = payload();
        let eq = |path: &str, v: Value| {
            TypedClaim {
                equals: Some(s(v)),
                ..typed(path)
            }
            .matches(Some(&p))
        };
        assert!(eq("admin", json!(true)));
        assert!(!eq("admin", json!("true")));
        assert!(eq("flag", json!("true")));
        assert!(!eq("flag", json!(true)));
        assert!(eq("level", json!(3)));
        assert!(eq("level", json!(3.0)));
        assert!(!eq("level", json!("3")));
        assert!(eq("ratio", json!(0.5)));
        assert!(!eq("missing", json!("x")));
        let ne = TypedClaim {
            not_equals: Some(s(json!(false))),
            ..typed("admin")
        };
        assert!(ne.matches(Some(&p)));
        assert!(TypedClaim {
            not_equals: Some(s(json!("x"))),
            ..typed("missing")
        }
        .matches(Some(&p)));
        assert!(Scalar::new(&json!(null)).is_err());
        assert!(Scalar::new(&json!([1])).is_err());
        assert!(Scalar::new(&json!({"a": 1})).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn contains_any_all_and_negations() {
        let p = payload();
        let roles = |f: fn(&mut TypedClaim, Vec<Scalar>), vals: &[&str]| {
            let mut t = typed("realm_access.roles");
            f(&mut t, vals.iter().map(|v| s(json!(v))).collect());
            t.matches(Some(&p))
        };
        assert!(roles(|t, v| t.contains_any = v, &["admin", "writer"]));
        assert!(!roles(|t, v| t.contains_any = v, &["admin"]));
        assert!(roles(|t, v| t.contains_all = v, &["reader", "writer"]));
        assert!(!roles(|t, v| t.contains_all = v, &["reader", "admin"]));
        assert!(roles(|t, v| t.not_contains_any = v, &["admin"]));
        assert!(!roles(|t, v| t.not_contains_any = v, &["admin", "reader"]));
        assert!(roles(|t, v| t.not_contains_all = v, &["reader", "admin"]));
        assert!(!roles(|t, v| t.not_contains_all = v, &["reader", "writer"]));
        // A scalar claim is a one-element list.
        let mut t = typed("sub");
        t.contains_any = vec![s(json!("alice"))];
        assert!(t.matches(Some(&p)));
        // Typed: the number 3 is not the string "3".
        let mut t = typed("level");
        t.contains_any = vec![s(json!("3"))];
        assert!(!t.matches(Some(&p)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn presence_and_absent_tokens() {
        let p = payload();
        let present = |path: &str, want: bool, payload: Option<&Value>| {
            TypedClaim {
                present: Some(want),
                ..typed(path)
            }
            .matches(payload)
        };
        assert!(present("sub", true, Some(&p)));
        assert!(!present("missing", true, Some(&p)));
        assert!(present("missing", false, Some(&p)));
        assert!(present("nothing", false, Some(&p)), "null counts as absent");
        assert!(!present("sub", true, None));
        assert!(present("sub", false, None));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn scopes_from_scope_string_and_scp() {
        let p = payload();
        assert!(has_scope(Some(&p), "read:a"));
        assert!(has_scope(Some(&p), "write:a"));
        assert!(has_scope(Some(&p), "admin"));
        assert!(!has_scope(Some(&p), "read"));
        assert!(!has_scope(None, "read:a"));
        let entra = json!({"scp": "User.Read Mail.Send"});
        assert!(has_scope(Some(&entra), "Mail.Send"));
        let req = ScopeRequirement::new(vec!["read:a".into()], vec!["x".into(), "admin".into()]);
        assert!(req.satisfied_by(Some(&p)));
        assert_eq!(
            req.www_authenticate,
            "Bearer error=\"insufficient_scope\", scope=\"read:a x admin\""
        );
        let req = ScopeRequirement::new(vec!["read:a".into(), "delete:a".into()], vec![]);
        assert!(!req.satisfied_by(Some(&p)));
        assert!(validate_scope("read:a").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(validate_scope(bad).is_err(), "{bad}");
        }
    }
}
