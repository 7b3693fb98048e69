//! Typed registered claims and the time, issuer and audience rules.
//!
//! NumericDates (`exp`, `nbf`, `iat`) must be JSON integers that fit an `i64` (seconds). A string,
//! a float (even `1.0`), `null`, a bool, an array, an object, `2^63` or `2^64` is a
//! [`JwtError::BadClaim`] — never "absent" (the CVE-2026-25537 mistake) and never saturated to
//! "never expires". Fractions are refused, as jwt_verify_lib does.
//!
//! Time rules, with `skew = clock_skew_seconds` and all arithmetic in `i128` (no overflow):
//! - expired iff `now ≥ exp + skew`, i.e. accepted iff `now < exp + skew`. At `skew = 0` a token is
//!   no longer valid in the second `exp` names (RFC 7519 §4.1.4: "on or after"). Envoy and
//!   jwt-simple accept one second longer (`now ≤ exp + skew`);
//! - not yet valid iff `now + skew < nbf`;
//! - issued in the future iff `iat > now + skew`;
//! - lifetime too long iff `exp − iat > max_lifetime_seconds` (when set; a token without `iat` or
//!   `exp` then has no bounded lifetime and is refused too).

use serde_json::{Map, Value};

use super::validate::{JwtError, ValidationSettings};

/// The registered claims, type-checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisteredClaims {
    /// `iss`.
    pub issuer: Option<String>,
    /// `sub`.
    pub subject: Option<String>,
    /// `aud`: a string becomes a one-element list.
    pub audiences: Vec<String>,
    /// Whether `aud` was present at all (`[]` is present but empty).
    pub has_audience: bool,
    /// `exp`, Unix seconds.
    pub expires_at: Option<i64>,
    /// `nbf`, Unix seconds.
    pub not_before: Option<i64>,
    /// `iat`, Unix seconds.
    pub issued_at: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
}

impl RegisteredClaims {
    /// Extracts and type-checks the registered claims of a payload.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, JwtError> {
        let (audiences, has_audience) = audiences(claims.get("aud"))?;
        Ok(RegisteredClaims {
            issuer: string_claim(claims, "iss")?,
            subject: string_claim(claims, "sub")?,
            audiences,
            has_audience,
            expires_at: numeric_date(claims, "exp")?,
            not_before: numeric_date(claims, "nbf")?,
            issued_at: numeric_date(claims, "iat")?,
            jti: string_claim(claims, "jti")?,
        })
    }

    /// Applies the time, issuer, audience and `jti` rules of `settings` at `now_unix`.
    pub fn check(&self, settings: &ValidationSettings, now_unix: i64) -> Result<(), JwtError> {
        let now = i128::from(now_unix);
        let skew = i128::from(settings.clock_skew_seconds);
        match self.expires_at {
            None if settings.require_exp => return Err(JwtError::MissingExp),
            Some(exp) if now >= i128::from(exp) + skew => return Err(JwtError::Expired),
            _ => {}
        }
        if let Some(nbf) = self.not_before {
            if now + skew < i128::from(nbf) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(iat) = self.issued_at {
            if i128::from(iat) > now + skew {
                return Err(JwtError::IssuedInFuture);
            }
        }
        if let Some(max) = settings.max_lifetime_seconds {
            match (self.issued_at, self.expires_at) {
                (Some(iat), Some(exp)) if i128::from(exp) - i128::from(iat) <= i128::from(max) => {}
                _ => return Err(JwtError::LifetimeTooLong),
            }
        }
        if let Some(issuer) = &settings.issuer {
            if self.issuer.as_deref() != Some(issuer.as_str()) {
                return Err(JwtError::BadIssuer);
            }
        }
        if !settings.audiences.is_empty()
            && !self
                .audiences
                .iter()
                .any(|aud| settings.audiences.iter().any(|want| want == aud))
        {
            return Err(JwtError::BadAudience);
        }
        if settings.require_jti && self.jti.is_none() {
            return Err(JwtError::MissingJti);
        }
        Ok(())
    }
}

/// A NumericDate claim: absent, or a JSON integer within `i64`.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        // `as_i64` is `None` for floats and for integers above `i64::MAX`.
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(JwtError::BadClaim(name)),
        Some(_) => Err(JwtError::BadClaim(name)),
    }
}

/// A string claim: absent, or a JSON string.
fn string_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::BadClaim(name)),
    }
}

/// `aud`: a string, or an array of strings (no nesting, no other types).
fn audiences(aud: Option<&Value>) -> Result<(Vec<String>, bool), JwtError> {
    match aud {
        None => Ok((Vec::new(), false)),
        Some(Value::String(s)) => Ok((vec![s.clone()], true)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(JwtError::BadClaim("aud")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|list| (list, true)),
        Some(_) => Err(JwtError::BadClaim("aud")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const NOW: i64 = 1_700_000_000;

    fn claims(json: &str) -> Result<RegisteredClaims, JwtError> {
        let Value::Object(map) = serde_json::from_str::<Value>(json).unwrap() else {
            panic!("not an object")
        };
        RegisteredClaims::from_claims(&map)
    }

    fn check(json: &str, settings: &ValidationSettings, now: i64) -> Result<(), JwtError> {
        claims(json)?.check(settings, now)
    }

    fn skew(seconds: u64) -> ValidationSettings {
        ValidationSettings {
            clock_skew_seconds: seconds,
            ..ValidationSettings::default()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numeric_dates_must_be_i64_integers() {
        assert_eq!(
            claims(r#"{"exp":1700000000}"#).unwrap().expires_at,
            Some(NOW)
        );
        assert_eq!(claims(r#"{"nbf":-5}"#).unwrap().not_before, Some(-5));
        assert_eq!(
            claims(r#"{"exp":9223372036854775807}"#).unwrap().expires_at,
            Some(i64::MAX)
        );
        for (json, name) in [
            (r#"{"exp":"1700000000"}"#, "exp"),
            (r#"{"exp":1700000000.0}"#, "exp"),
            (r#"{"exp":1.5}"#, "exp"),
            (r#"{"exp":1e300}"#, "exp"),
            (r#"{"exp":9223372036854775808}"#, "exp"),
            (r#"{"exp":18446744073709551616}"#, "exp"),
            (r#"{"exp":null}"#, "exp"),
            (r#"{"exp":true}"#, "exp"),
            (r#"{"exp":[1]}"#, "exp"),
            (r#"{"nbf":{}}"#, "nbf"),
            (r#"{"iat":"0"}"#, "iat"),
            (r#"{"iss":1}"#, "iss"),
            (r#"{"sub":null}"#, "sub"),
            (r#"{"jti":7}"#, "jti"),
            (r#"{"aud":1}"#, "aud"),
            (r#"{"aud":["a",1]}"#, "aud"),
            (r#"{"aud":[["a"]]}"#, "aud"),
            (r#"{"aud":null}"#, "aud"),
        ] {
            assert_eq!(
                claims(json).unwrap_err(),
                JwtError::BadClaim(name),
                "{json}"
            );
        }
        let huge = format!(r#"{{"exp":{}}}"#, "9".repeat(30));
        assert_eq!(claims(&huge).unwrap_err(), JwtError::BadClaim("exp"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn exp_boundary_is_exclusive() {
        let exp = r#"{"exp":1700000000}"#;
        assert_eq!(check(exp, &skew(0), NOW - 1), Ok(()));
        assert_eq!(check(exp, &skew(0), NOW), Err(JwtError::Expired));
        assert_eq!(check(exp, &skew(60), NOW + 59), Ok(()));
        assert_eq!(check(exp, &skew(60), NOW + 60), Err(JwtError::Expired));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn exp_is_required_by_default_only() {
        assert_eq!(check("{}", &skew(0), NOW), Err(JwtError::MissingExp));
        let optional = ValidationSettings {
            require_exp: false,
            ..ValidationSettings::default()
        };
        assert_eq!(check("{}", &optional, NOW), Ok(()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nbf_boundary_is_inclusive() {
        let t = r#"{"exp":1800000000,"nbf":1700000000}"#;
        assert_eq!(check(t, &skew(0), NOW), Ok(()));
        assert_eq!(check(t, &skew(0), NOW - 1), Err(JwtError::NotYetValid));
        assert_eq!(check(t, &skew(60), NOW - 60), Ok(()));
        assert_eq!(check(t, &skew(60), NOW - 61), Err(JwtError::NotYetValid));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn iat_may_not_be_in_the_future_beyond_skew() {
        let t = r#"{"exp":1800000000,"iat":1700000000}"#;
        assert_eq!(check(t, &skew(0), NOW), Ok(()));
        assert_eq!(check(t, &skew(0), NOW - 1), Err(JwtError::IssuedInFuture));
        assert_eq!(check(t, &skew(60), NOW - 60), Ok(()));
        assert_eq!(check(t, &skew(60), NOW - 61), Err(JwtError::IssuedInFuture));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn extreme_values_do_not_overflow() {
        let s = ValidationSettings {
            clock_skew_seconds: u64::MAX,
            ..ValidationSettings::default()
        };
        assert_eq!(
            check(r#"{"exp":9223372036854775807}"#, &s, i64::MAX),
            Ok(())
        );
        assert_eq!(
            check(r#"{"exp":-9223372036854775808}"#, &skew(0), i64::MIN),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check(
                r#"{"exp":9223372036854775807,"nbf":-9223372036854775808}"#,
                &skew(60),
                i64::MIN
            ),
            Ok(())
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn max_lifetime() {
        let s = ValidationSettings {
            max_lifetime_seconds: Some(3600),
            clock_skew_seconds: 0,
            ..ValidationSettings::default()
        };
        assert_eq!(
            check(r#"{"iat":1700000000,"exp":1700003600}"#, &s, NOW),
            Ok(())
        );
        assert_eq!(
            check(r#"{"iat":1700000000,"exp":1700003601}"#, &s, NOW),
            Err(JwtError::LifetimeTooLong)
        );
        assert_eq!(
            check(r#"{"exp":1700003600}"#, &s, NOW),
            Err(JwtError::LifetimeTooLong)
        );
        let no_exp = ValidationSettings {
            require_exp: false,
            ..s
        };
        assert_eq!(
            check(r#"{"iat":1700000000}"#, &no_exp, NOW),
            Err(JwtError::LifetimeTooLong)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn issuer_is_an_exact_match() {
        let s = ValidationSettings {
            issuer: Some("https://idp.example".into()),
            ..ValidationSettings::default()
        };
        let ok = r#"{"exp":1800000000,"iss":"https://idp.example"}"#;
        assert_eq!(check(ok, &s, NOW), Ok(()));
        for iss in [
            "https://idp.example/",
            "https://IDP.example",
            "https://idp.exampl",
            "",
        ] {
            let t = format!(r#"{{"exp":1800000000,"iss":"{iss}"}}"#);
            assert_eq!(check(&t, &s, NOW), Err(JwtError::BadIssuer), "{iss}");
        }
        assert_eq!(
            check(r#"{"exp":1800000000}"#, &s, NOW),
            Err(JwtError::BadIssuer)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn audience_any_of_exact() {
        let s = ValidationSettings {
            audiences: vec!["api".into(), "web".into()],
            ..ValidationSettings::default()
        };
        for aud in [r#""api""#, r#"["x","web"]"#, r#"["api"]"#] {
            let t = format!(r#"{{"exp":1800000000,"aud":{aud}}}"#);
            assert_eq!(check(&t, &s, NOW), Ok(()), "{aud}");
        }
        for aud in [r#""ap""#, r#""api2""#, r#""""#, "[]", r#"["API"]"#] {
            let t = format!(r#"{{"exp":1800000000,"aud":{aud}}}"#);
            assert_eq!(check(&t, &s, NOW), Err(JwtError::BadAudience), "{aud}");
        }
        assert_eq!(
            check(r#"{"exp":1800000000}"#, &s, NOW),
            Err(JwtError::BadAudience)
        );
        // Not configured: any aud (or none) passes.
        assert_eq!(
            check(r#"{"exp":1800000000,"aud":"z"}"#, &skew(60), NOW),
            Ok(())
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn jti_required_when_configured() {
        let s = ValidationSettings {
            require_jti: true,
            ..ValidationSettings::default()
        };
        assert_eq!(
            check(r#"{"exp":1800000000}"#, &s, NOW),
            Err(JwtError::MissingJti)
        );
        assert_eq!(check(r#"{"exp":1800000000,"jti":"j"}"#, &s, NOW), Ok(()));
    }
}
