//! The validation pipeline: settings, the error enum and the stateless `validate` function.

use super::claims::RegisteredClaims;
use super::keys::KeySet;
use super::{token, Algorithm};

/// What a provider requires of a token. Built once at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSettings {
    /// Required `iss` (exact string match); `None` = not checked.
    pub issuer: Option<String>,
    /// Accepted audiences: the token's `aud` must contain at least one (exact match). Empty = not checked.
    pub audiences: Vec<String>,
    /// Algorithms accepted from the token header (exact match). `none` is never possible.
    pub allowed_algorithms: Vec<Algorithm>,
    /// Reject tokens without `exp`.
    pub require_exp: bool,
    /// Tolerance applied to `exp`, `nbf` and `iat`.
    pub clock_skew_seconds: u64,
    /// Maximum `exp − iat`; when set, `iat` (and `exp`) become required.
    pub max_lifetime_seconds: Option<u64>,
    /// Required header `typ` (case-insensitive, `application/` prefix optional), e.g. `at+jwt`.
    pub required_typ: Option<String>,
    /// Maximum token length in bytes, checked before any decoding.
    pub max_token_bytes: usize,
    /// Reject tokens without a string `jti`.
    pub require_jti: bool,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            issuer: None,
            audiences: Vec::new(),
            allowed_algorithms: Algorithm::ALL.to_vec(),
            require_exp: true,
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
            required_typ: None,
            max_token_bytes: 8192,
            require_jti: false,
        }
    }
}

/// A token whose signature and claims passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `iss`, if present.
    pub issuer: Option<String>,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// `aud` as a list (a string `aud` becomes one element).
    pub audiences: Vec<String>,
    /// `exp` in Unix seconds, if present.
    pub expires_at: Option<i64>,
    /// `jti`, if present.
    pub jti: Option<String>,
    /// Header `kid`, if present.
    pub kid: Option<String>,
    /// Header `alg` (verified against the key).
    pub algorithm: Algorithm,
    /// All payload members, parsed once.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The verified payload exactly as decoded from base64url (UTF-8 JSON object).
    pub payload_json: String,
}

/// Why a token was refused. [`JwtError::reason`] gives a stable snake_case code; no variant ever
/// carries the token or any value taken from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than `max_token_bytes` (checked before decoding).
    #[error("token longer than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Not a strict JWS compact serialisation; the detail says which rule failed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not a supported algorithm name (`none` and its variants included).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// `alg` is supported but not in this provider's allow-list.
    #[error("algorithm {0} not allowed")]
    AlgorithmNotAllowed(Algorithm),
    /// The token names a `kid` that no key in the set carries.
    #[error("unknown kid")]
    UnknownKid,
    /// No key in the set can verify this algorithm (family or declared `alg` mismatch, empty set).
    #[error("no key matches the token algorithm")]
    NoMatchingKey,
    /// The signature does not verify with any candidate key.
    #[error("signature verification failed")]
    BadSignature,
    /// `now ≥ exp + skew`.
    #[error("token expired")]
    Expired,
    /// `now + skew < nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat > now + skew`.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `exp − iat` exceeds `max_lifetime_seconds` (or `iat`/`exp` missing while it is set).
    #[error("token lifetime too long")]
    LifetimeTooLong,
    /// `exp` is required and absent.
    #[error("exp claim missing")]
    MissingExp,
    /// `iss` missing or not the configured issuer.
    #[error("issuer not accepted")]
    BadIssuer,
    /// `aud` missing or none of the configured audiences.
    #[error("audience not accepted")]
    BadAudience,
    /// `typ` missing or not the required type.
    #[error("token type not accepted")]
    BadTyp,
    /// The header carries a parameter this validator refuses (`crit`, `b64`, `jwk`, `jku`, `x5u`,
    /// `x5c`, `cty`, `enc`, `zip`).
    #[error("forbidden header parameter {0}")]
    ForbiddenHeader(&'static str),
    /// A registered claim has the wrong type or is out of range (the claim name).
    #[error("invalid {0} claim")]
    BadClaim(&'static str),
    /// `jti` is required and absent.
    #[error("jti claim missing")]
    MissingJti,
}

impl JwtError {
    /// Short stable snake_case code for metrics, `error_description` and filter state.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::TooLarge { .. } => "too_large",
            JwtError::Malformed(_) => "malformed",
            JwtError::UnsupportedAlgorithm => "unsupported_algorithm",
            JwtError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            JwtError::UnknownKid => "unknown_kid",
            JwtError::NoMatchingKey => "no_matching_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::IssuedInFuture => "issued_in_future",
            JwtError::LifetimeTooLong => "lifetime_too_long",
            JwtError::MissingExp => "missing_exp",
            JwtError::BadIssuer => "bad_issuer",
            JwtError::BadAudience => "bad_audience",
            JwtError::BadTyp => "bad_typ",
            JwtError::ForbiddenHeader(_) => "forbidden_header",
            JwtError::BadClaim(_) => "bad_claim",
            JwtError::MissingJti => "missing_jti",
        }
    }
}

/// Settings and keys of one provider bundled together (convenience over [`validate`]).
#[derive(Debug, Clone)]
pub struct Validator {
    /// The provider's requirements.
    pub settings: ValidationSettings,
    /// The provider's keys.
    pub keys: KeySet,
}

impl Validator {
    /// Bundles settings and keys.
    pub fn new(settings: ValidationSettings, keys: KeySet) -> Self {
        Validator { settings, keys }
    }

    /// [`validate`] with this provider's settings and keys.
    pub fn validate(&self, token: &str, now_unix: i64) -> Result<VerifiedToken, JwtError> {
        validate(token, &self.settings, &self.keys, now_unix)
    }
}

/// Stateless: settings + keys + now → verdict.
///
/// Order (each failure is final, see `shared/research/jwt-attacks.md` §2): size cap → strict
/// compact parse and header checks ([`token::parse`]) → `alg` in the allow-list → `typ` (if
/// required) → key selection and signature over the received `header.payload` bytes → payload
/// decode (only now) → claim types → time, issuer, audience, `jti` ([`RegisteredClaims::check`]).
pub fn validate(
    token: &str,
    settings: &ValidationSettings,
    keys: &KeySet,
    now_unix: i64,
) -> Result<VerifiedToken, JwtError> {
    validate_explained(token, settings, keys, now_unix).map_err(|r| r.error)
}

/// How long a refusal by [`validate_explained`] stays the answer for the same token, settings
/// and keys, as the clock moves forward from the moment it was given. A clock that goes back
/// voids it (`nbf`/`iat` would be checked before they held), and so do other keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    /// For good: token shape and header, algorithm, `typ`, key choice and signature, claim
    /// types, missing `exp`, and `expired` (time only moves further past `exp`).
    Permanent,
    /// Until this Unix second (excluded): a claim refused after the time checks passed
    /// (lifetime, issuer, audience, `jti`); from `exp` + skew on the token is `expired` instead.
    Until(i64),
    /// Can change at any moment: `nbf` / `iat` in the future (they become valid), an unknown
    /// `kid` (the key may be published).
    Transient,
}

impl Stability {
    /// [`Stability::Until`] the moment a token with `exp` becomes expired under `settings`
    /// (`now ≥ exp + skew`); [`Stability::Permanent`] for a token without `exp`.
    pub fn until_expired(exp: Option<i64>, settings: &ValidationSettings) -> Stability {
        match exp {
            None => Stability::Permanent,
            Some(exp) => {
                let skew = i64::try_from(settings.clock_skew_seconds).unwrap_or(i64::MAX);
                Stability::Until(exp.saturating_add(skew))
            }
        }
    }
}

/// A refusal by [`validate_explained`]: why, and for how long it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub error: JwtError,
    /// For how long the same token gets the same answer (for caching refusals).
    pub stability: Stability,
}

/// [`validate`], telling with each refusal how long it holds ([`Stability`]), so a caller may
/// remember refusals that cannot change (the jwt-authn failed-verdict cache).
pub fn validate_explained(
    token: &str,
    settings: &ValidationSettings,
    keys: &KeySet,
    now_unix: i64,
) -> Result<VerifiedToken, Rejection> {
    let permanent = |error| Rejection {
        error,
        stability: Stability::Permanent,
    };
    let parsed = token::parse(token, settings.max_token_bytes).map_err(permanent)?;
    let header = parsed.header;
    if !settings.allowed_algorithms.contains(&header.alg) {
        return Err(permanent(JwtError::AlgorithmNotAllowed(header.alg)));
    }
    if let Some(required) = &settings.required_typ {
        if !header
            .typ
            .as_deref()
            .is_some_and(|typ| typ_matches(typ, required))
        {
            return Err(permanent(JwtError::BadTyp));
        }
    }
    keys.verify(
        header.kid.as_deref(),
        header.alg,
        parsed.signing_input.as_bytes(),
        &parsed.signature,
    )
    .map_err(|error| match error {
        JwtError::UnknownKid => Rejection {
            error,
            stability: Stability::Transient,
        },
        error => permanent(error),
    })?;
    let (claims, payload_json) = token::decode_payload(parsed.payload_b64).map_err(permanent)?;
    let registered = RegisteredClaims::from_claims(&claims).map_err(permanent)?;
    registered
        .check(settings, now_unix)
        .map_err(|error| Rejection {
            stability: match error {
                JwtError::MissingExp | JwtError::Expired => Stability::Permanent,
                JwtError::NotYetValid | JwtError::IssuedInFuture => Stability::Transient,
                _ => Stability::until_expired(registered.expires_at, settings),
            },
            error,
        })?;
    Ok(VerifiedToken {
        issuer: registered.issuer,
        subject: registered.subject,
        audiences: registered.audiences,
        expires_at: registered.expires_at,
        jti: registered.jti,
        kid: header.kid,
        algorithm: header.alg,
        claims,
        payload_json,
    })
}

/// Peek at the unverified header to learn the `kid` (for "unknown kid → refetch JWKS"
/// decisions), with the same size and strictness checks as [`validate`]. Never trust the result
/// for anything but choosing keys.
pub fn peek_kid(token: &str, max_token_bytes: usize) -> Result<Option<String>, JwtError> {
    token::parse(token, max_token_bytes).map(|parsed| parsed.header.kid)
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, `application/` prefix optional.
fn typ_matches(typ: &str, required: &str) -> bool {
    fn bare(s: &str) -> &str {
        match s.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => s.get(12..).unwrap_or(s),
            _ => s,
        }
    }
    bare(typ).eq_ignore_ascii_case(bare(required))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    use wasm_bindgen_test::wasm_bindgen_test;

    const NOW: i64 = 1_700_000_000;
    const SECRET: [u8; 32] = [5; 32];

    fn hs256(header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&SECRET).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn keys() -> KeySet {
        KeySet::from_hmac_secret(Algorithm::HS256, &SECRET).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_and_returns_the_verified_claims() {
        let payload = r#"{"iss":"me","sub":"alice","aud":["x","api"],"exp":1700000100,"jti":"j","n":{"a":1}}"#;
        let token = hs256(r#"{"alg":"HS256","kid":"k1"}"#, payload);
        let settings = ValidationSettings {
            issuer: Some("me".into()),
            audiences: vec!["api".into()],
            ..ValidationSettings::default()
        };
        let v = validate(&token, &settings, &keys(), NOW).unwrap();
        assert_eq!(v.issuer.as_deref(), Some("me"));
        assert_eq!(v.subject.as_deref(), Some("alice"));
        assert_eq!(v.audiences, vec!["x".to_string(), "api".to_string()]);
        assert_eq!(v.expires_at, Some(1_700_000_100));
        assert_eq!(v.jti.as_deref(), Some("j"));
        assert_eq!(v.kid.as_deref(), Some("k1"));
        assert_eq!(v.algorithm, Algorithm::HS256);
        assert_eq!(v.payload_json, payload);
        assert_eq!(v.claims["n"]["a"], 1);
        let validator = Validator::new(settings, keys());
        assert_eq!(validator.validate(&token, NOW), Ok(v));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn order_allow_list_before_keys_and_signature_before_claims() {
        let token = hs256(r#"{"alg":"HS256"}"#, r#"{"exp":"bad"}"#);
        let only_rs = ValidationSettings {
            allowed_algorithms: vec![Algorithm::RS256],
            ..ValidationSettings::default()
        };
        assert_eq!(
            validate(&token, &only_rs, &keys(), NOW),
            Err(JwtError::AlgorithmNotAllowed(Algorithm::HS256))
        );
        // A bad claim behind a bad signature is reported as the signature.
        let forged = format!("{}AAAA", token.get(..token.len() - 4).unwrap());
        let s = ValidationSettings::default();
        assert_eq!(
            validate(&forged, &s, &keys(), NOW),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            validate(&token, &s, &keys(), NOW),
            Err(JwtError::BadClaim("exp"))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn required_typ() {
        let s = ValidationSettings {
            required_typ: Some("at+jwt".into()),
            ..ValidationSettings::default()
        };
        let ok = hs256(
            r#"{"alg":"HS256","typ":"application/AT+JWT"}"#,
            r#"{"exp":1800000000}"#,
        );
        assert!(validate(&ok, &s, &keys(), NOW).is_ok());
        let id_token = hs256(r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"exp":1800000000}"#);
        assert_eq!(validate(&id_token, &s, &keys(), NOW), Err(JwtError::BadTyp));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(typ_matches("Application/At+Jwt", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
        assert!(!typ_matches("at+jwt", "jwt"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn peek_kid_applies_the_same_header_checks() {
        let token = hs256(r#"{"alg":"HS256","kid":"k9"}"#, "{}");
        assert_eq!(peek_kid(&token, 8192), Ok(Some("k9".into())));
        assert_eq!(peek_kid(&hs256(r#"{"alg":"HS256"}"#, "{}"), 8192), Ok(None));
        assert_eq!(peek_kid(&token, 10), Err(JwtError::TooLarge { limit: 10 }));
        let crit = hs256(r#"{"alg":"HS256","kid":"k","crit":["x"]}"#, "{}");
        assert_eq!(
            peek_kid(&crit, 8192),
            Err(JwtError::ForbiddenHeader("crit"))
        );
        assert_eq!(
            peek_kid(&hs256(r#"{"alg":"none","kid":"k"}"#, "{}"), 8192),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reasons_are_stable_snake_case_and_carry_no_input() {
        let all = [
            JwtError::TooLarge { limit: 1 },
            JwtError::Malformed("x"),
            JwtError::UnsupportedAlgorithm,
            JwtError::AlgorithmNotAllowed(Algorithm::EdDSA),
            JwtError::UnknownKid,
            JwtError::NoMatchingKey,
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::IssuedInFuture,
            JwtError::LifetimeTooLong,
            JwtError::MissingExp,
            JwtError::BadIssuer,
            JwtError::BadAudience,
            JwtError::BadTyp,
            JwtError::ForbiddenHeader("crit"),
            JwtError::BadClaim("exp"),
            JwtError::MissingJti,
        ];
        let reasons: std::collections::BTreeSet<&str> = all.iter().map(JwtError::reason).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(reasons
            .iter()
            .all(|r| r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn algorithm_names_are_exact() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(serde_json::to_string(&alg).unwrap(), format!("\"{alg}\""));
        }
        for bad in ["none", "rs256", "Ed25519", "ES512", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn token_digest_is_sha256_of_the_token() {
        assert_eq!(
            crate::jwt::token_digest(""),
            [
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
                0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
                0x78, 0x52, 0xb8, 0x55
            ]
        );
    }
}
