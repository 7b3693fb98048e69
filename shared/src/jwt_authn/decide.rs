//! One request, start to verdict: rule → tokens → requirement → what to do.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::handoff;
use crate::jwt::{
    object_depth, token_digest, validate_explained, JwtError, KeySet, Stability, VerifiedToken,
};

use super::cache::{Caches, Lookup};
use super::compile::{JwtAuthnConfig, RuleAction};
use super::extract::{header_str, strip_cookies, strip_params, Found, RequestParts};
use super::outputs::{claim_at, claim_header_value, payload_header_value};
use super::reason;
use super::replay::{NoReplayStore, ReplayGuard};
use super::requirements::{evaluate, Evaluation, Verdict, Verdicts, Wait};
use super::response::{local_reply, LocalReply, Refusal};

/// The state of a provider's keys, as the filter knows it at this moment.
#[derive(Debug, Clone, Copy)]
pub enum ProviderKeys<'a> {
    /// Keys to verify with. `generation` changes whenever the keys do (cache entries of older
    /// generations are ignored). `may_refetch`: on an unknown `kid`, wait for a refetch instead
    /// of refusing (the filter decides it from the rate limit, and passes false after a wait).
    Ready {
        /// The keys.
        keys: &'a KeySet,
        /// Key generation.
        generation: u64,
        /// Wait for new keys on an unknown `kid`.
        may_refetch: bool,
    },
    /// No keys yet, a fetch is under way or may start: the request should wait.
    Pending,
    /// No usable keys (cold-start wait over, or last keys too stale): fail closed.
    Unavailable,
}

/// Gives each provider's key state.
pub trait KeyView {
    /// Keys of provider `p`.
    fn keys(&self, p: usize) -> ProviderKeys<'_>;
}

/// What the request's tokens amounted to (published as [`handoff::JWT_OUTCOME`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A token verified (the first provider that verified, in requirement order).
    Verified {
        /// Provider index.
        provider: usize,
        /// The verified token.
        token: Rc<VerifiedToken>,
    },
    /// No token.
    Missing,
    /// A token was refused (the request may still pass under `allow_missing_or_failed`).
    Failed(&'static str),
    /// No check applied (bypass rule, no rule matched, CORS preflight).
    Bypassed,
}

impl Outcome {
    /// `verified`, `missing`, `failed`, `bypassed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Verified { .. } => "verified",
            Outcome::Missing => "missing",
            Outcome::Failed(_) => "failed",
            Outcome::Bypassed => "bypassed",
        }
    }

    /// Filter-state values to publish: `(key, value)` pairs from [`handoff`].
    pub fn handoff(&self, cfg: &JwtAuthnConfig) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![(handoff::JWT_OUTCOME, self.as_str().as_bytes().to_vec())];
        match self {
            Outcome::Verified { provider, token } => {
                out.push((handoff::JWT_PAYLOAD, token.payload_json.as_bytes().to_vec()));
                if let Some(iss) = &token.issuer {
                    out.push((handoff::JWT_ISSUER, iss.as_bytes().to_vec()));
                }
                if let Some(sub) = &token.subject {
                    out.push((handoff::JWT_SUBJECT, sub.as_bytes().to_vec()));
                }
                if let Some(p) = cfg.providers.get(*provider) {
                    out.push((handoff::JWT_PROVIDER, p.name.as_bytes().to_vec()));
                }
            }
            Outcome::Missing => out.push((handoff::JWT_REASON, reason::MISSING.into())),
            Outcome::Failed(r) => out.push((handoff::JWT_REASON, r.as_bytes().to_vec())),
            Outcome::Bypassed => {}
        }
        out
    }
}

/// Let the request through, after these changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allow {
    /// Headers to set (claims, payload), already sanitised.
    pub set_headers: Vec<(String, String)>,
    /// Token headers to remove (`forward: false`).
    pub remove_headers: Vec<String>,
    /// New `:path` without token query parameters.
    pub new_path: Option<String>,
    /// New `cookie` value without token cookies (`""` = remove the header).
    pub new_cookie: Option<String>,
    /// Claims not copied because their value was unsafe or not scalar.
    pub refused_claims: usize,
}

/// The verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let through.
    Allow(Outcome, Allow),
    /// Refuse with this reply.
    Deny(Outcome, Refusal, LocalReply),
    /// Pause until provider `provider` has keys (`unknown_kid`: a refetch for a new `kid`).
    Wait {
        /// Provider index.
        provider: usize,
        /// Waiting for a rotation refetch rather than a first load.
        unknown_kid: bool,
    },
}

/// Decides one request. `headers` are the request headers (with `:method` and `:path`) after
/// the filter removed [`JwtAuthnConfig::output_headers`]; `now` is Unix seconds. Without a
/// replay store: tokens of providers with `jti_replay` are refused (`replay_check_failed`);
/// the filter uses [`decide_with`].
pub fn decide(
    cfg: &JwtAuthnConfig,
    headers: &[(String, Vec<u8>)],
    keys: &dyn KeyView,
    cache: &mut Caches,
    now: i64,
) -> Decision {
    decide_with(cfg, headers, keys, cache, &mut NoReplayStore, now)
}

/// [`decide`] with `jti` replay checks by `replay` (every verified token of a provider with
/// `jti_replay`, cached or not, is checked once per decision; a caller that decides one request
/// again after a [`Decision::Wait`] passes a [`super::replay::RequestGuard`], so the request's
/// own `jti` is not a replay).
pub fn decide_with(
    cfg: &JwtAuthnConfig,
    headers: &[(String, Vec<u8>)],
    keys: &dyn KeyView,
    cache: &mut Caches,
    replay: &mut dyn ReplayGuard,
    now: i64,
) -> Decision {
    let method = header_str(headers, ":method").unwrap_or("");
    let path = header_str(headers, ":path").unwrap_or("");
    let bypass = Decision::Allow(Outcome::Bypassed, Allow::default());
    if cfg.bypass_cors_preflight
        && method == "OPTIONS"
        && header_str(headers, "origin").is_some()
        && header_str(headers, "access-control-request-method").is_some()
    {
        return bypass;
    }
    let Some(rule) = cfg.rules.iter().find(|r| r.matcher.matches(method, path)) else {
        return bypass;
    };
    let req = match &rule.action {
        RuleAction::Bypass => return bypass,
        RuleAction::Require(req) => req,
    };
    let relevant = req.providers(cfg.providers.len());
    let parts = RequestParts::new(headers);
    let mut tokens: Vec<Option<Found>> = vec![None; cfg.providers.len()];
    for &p in &relevant {
        let Some(provider) = cfg.providers.get(p) else {
            continue;
        };
        match parts.find(&provider.locations) {
            Ok(found) => {
                if let Some(slot) = tokens.get_mut(p) {
                    *slot = found;
                }
            }
            Err(e) => return deny(cfg, Refusal::BadRequest(e.reason())),
        }
    }
    let mut oracle = Oracle {
        cfg,
        keys,
        cache,
        replay,
        now,
        tokens: &tokens,
        relevant: &relevant,
        memo: vec![None; cfg.providers.len()],
        verified: Vec::new(),
        unknown_kid: false,
    };
    let evaluation = match evaluate(req, &mut oracle) {
        Ok(e) => e,
        Err(Wait(provider)) => {
            return Decision::Wait {
                provider,
                unknown_kid: oracle.unknown_kid,
            }
        }
    };
    match evaluation {
        Evaluation::Allow => allow(cfg, headers, &tokens, &relevant, &oracle),
        Evaluation::DenyMissing => deny(cfg, Refusal::Missing),
        Evaluation::DenyInvalid(r) if r == reason::KEYS_UNAVAILABLE => {
            deny(cfg, Refusal::KeysUnavailable)
        }
        Evaluation::DenyInvalid(r) => deny(cfg, Refusal::Invalid(r)),
    }
}

fn deny(cfg: &JwtAuthnConfig, refusal: Refusal) -> Decision {
    let outcome = match refusal {
        Refusal::Missing => Outcome::Missing,
        other => Outcome::Failed(other.reason()),
    };
    Decision::Deny(outcome, refusal, local_reply(&cfg.failure, refusal))
}

fn allow(
    cfg: &JwtAuthnConfig,
    headers: &[(String, Vec<u8>)],
    tokens: &[Option<Found>],
    relevant: &[usize],
    oracle: &Oracle<'_>,
) -> Decision {
    let mut out = Allow::default();
    for (p, token) in &oracle.verified {
        let Some(provider) = cfg.providers.get(*p) else {
            continue;
        };
        for c in &provider.claim_to_headers {
            match claim_at(&token.claims, &c.claim_path).map(claim_header_value) {
                Some(Ok(v)) => out.set_headers.push((c.header.clone(), v)),
                Some(Err(_)) => out.refused_claims += 1,
                None => {}
            }
        }
        if let Some(h) = &provider.forward_payload_header {
            out.set_headers
                .push((h.clone(), payload_header_value(&token.payload_json)));
        }
    }
    let (mut params, mut cookies) = (Vec::new(), Vec::new());
    for &p in relevant {
        let (Some(provider), Some(Some(found))) = (cfg.providers.get(p), tokens.get(p)) else {
            continue;
        };
        if provider.forward {
            continue;
        }
        out.remove_headers.extend(found.headers.iter().cloned());
        params.extend(found.params.iter().map(String::as_str));
        cookies.extend(found.cookies.iter().map(String::as_str));
    }
    out.remove_headers.sort();
    out.remove_headers.dedup();
    if !params.is_empty() {
        out.new_path = strip_params(header_str(headers, ":path").unwrap_or(""), &params);
    }
    if !cookies.is_empty() {
        out.new_cookie = strip_cookies(headers, &cookies);
    }
    let outcome = match oracle.verified.first() {
        Some((provider, token)) => Outcome::Verified {
            provider: *provider,
            token: Rc::clone(token),
        },
        None => match oracle.first_failure() {
            Some(r) => Outcome::Failed(r),
            None => Outcome::Missing,
        },
    };
    Decision::Allow(outcome, out)
}

type Memo = Option<(Verdict, Option<Rc<VerifiedToken>>)>;

struct Oracle<'a> {
    cfg: &'a JwtAuthnConfig,
    keys: &'a dyn KeyView,
    cache: &'a mut Caches,
    replay: &'a mut dyn ReplayGuard,
    now: i64,
    tokens: &'a [Option<Found>],
    relevant: &'a [usize],
    memo: Vec<Memo>,
    verified: Vec<(usize, Rc<VerifiedToken>)>,
    unknown_kid: bool,
}

impl Oracle<'_> {
    fn first_failure(&self) -> Option<&'static str> {
        self.memo.iter().find_map(|m| match m {
            Some((Verdict::Failed(r), _)) => Some(*r),
            _ => None,
        })
    }

    /// The verdict of provider `p` on `token`: an API key looked up, or a JWT validated (caches
    /// first: a verified token, or a refusal that cannot change) and then checked against
    /// replays.
    fn verify(
        &mut self,
        p: usize,
        token: &str,
    ) -> Result<(Verdict, Option<Rc<VerifiedToken>>), Wait> {
        let Some(provider) = self.cfg.providers.get(p) else {
            return Ok((Verdict::Failed(reason::INTERNAL), None));
        };
        if let Some(api_keys) = &provider.api_keys {
            return Ok(api_keys.verdict(token.as_bytes()));
        }
        let (verdict, verified) = self.verify_jwt(p, token)?;
        Ok(match (&provider.replay, verified) {
            (Some(s), Some(t)) => match self.replay.check(p, s, &t, self.now) {
                Ok(()) => (verdict, Some(t)),
                Err(r) => (Verdict::Failed(r), None),
            },
            (_, verified) => (verdict, verified),
        })
    }

    fn verify_jwt(
        &mut self,
        p: usize,
        token: &str,
    ) -> Result<(Verdict, Option<Rc<VerifiedToken>>), Wait> {
        let Some(provider) = self.cfg.providers.get(p) else {
            return Ok((Verdict::Failed(reason::INTERNAL), None));
        };
        let (keys, generation, may_refetch) = match self.keys.keys(p) {
            ProviderKeys::Pending => return Err(Wait(p)),
            ProviderKeys::Unavailable => {
                return Ok((Verdict::Failed(reason::KEYS_UNAVAILABLE), None))
            }
            ProviderKeys::Ready {
                keys,
                generation,
                may_refetch,
            } => (keys, generation, may_refetch),
        };
        let digest = token_digest(token);
        if let Lookup::Hit(t) = self.cache.verified.get(p, &digest, generation, self.now) {
            return Ok((Verdict::Verified, Some(t)));
        }
        // A stable refusal: the same answer validation would give, without the signature check.
        if let Some(r) = self.cache.failed.get(p, &digest, generation, self.now) {
            return Ok((Verdict::Failed(r), None));
        }
        if let (Some(want), Some(got)) = (
            provider.settings.issuer.as_deref(),
            peek_issuer(token, provider.settings.max_token_bytes),
        ) {
            if want != got {
                return Ok((Verdict::Failed(reason::ISSUER_MISMATCH), None));
            }
        }
        let (r, stability) = match validate_explained(token, &provider.settings, keys, self.now) {
            Ok(v) if object_depth(&v.claims) > provider.max_claim_depth => (
                reason::CLAIMS_TOO_DEEP,
                Stability::until_expired(v.expires_at, &provider.settings),
            ),
            Ok(v) => {
                let v = Rc::new(v);
                self.cache
                    .verified
                    .put(p, digest, Rc::clone(&v), generation, self.now);
                return Ok((Verdict::Verified, Some(v)));
            }
            Err(r) if r.error == JwtError::UnknownKid && may_refetch => {
                self.unknown_kid = true;
                return Err(Wait(p));
            }
            Err(r) => (r.error.reason(), r.stability),
        };
        self.cache
            .failed
            .put(p, digest, r, stability, generation, self.now);
        Ok((Verdict::Failed(r), None))
    }
}

impl Verdicts for Oracle<'_> {
    fn provider(&mut self, p: usize) -> Result<Verdict, Wait> {
        if let Some(Some((v, _))) = self.memo.get(p) {
            return Ok(*v);
        }
        let token = match self.tokens.get(p) {
            Some(Some(found)) => found.token.clone(),
            _ => {
                if let Some(slot) = self.memo.get_mut(p) {
                    *slot = Some((Verdict::Missing, None));
                }
                return Ok(Verdict::Missing);
            }
        };
        let (verdict, verified) = self.verify(p, &token)?;
        if let Some(t) = &verified {
            self.verified.push((p, Rc::clone(t)));
        }
        if let Some(slot) = self.memo.get_mut(p) {
            *slot = Some((verdict, verified));
        }
        Ok(verdict)
    }

    fn all_present(&mut self) -> Result<Verdict, Wait> {
        let mut distinct: Vec<&str> = Vec::new();
        for &p in self.relevant {
            if let Some(Some(found)) = self.tokens.get(p) {
                if !distinct.contains(&found.token.as_str()) {
                    distinct.push(found.token.as_str());
                }
            }
        }
        let distinct: Vec<String> = distinct.into_iter().map(str::to_string).collect();
        let mut first_failure = None;
        for token in &distinct {
            let candidates: Vec<usize> = self
                .relevant
                .iter()
                .copied()
                .filter(|p| matches!(self.tokens.get(*p), Some(Some(f)) if &f.token == token))
                .collect();
            let mut ok = false;
            for p in candidates {
                match self.provider(p)? {
                    Verdict::Verified => {
                        ok = true;
                        break;
                    }
                    Verdict::Failed(r) => {
                        first_failure.get_or_insert(r);
                    }
                    Verdict::Missing => {}
                }
            }
            if !ok {
                return Ok(Verdict::Failed(first_failure.unwrap_or(reason::INTERNAL)));
            }
        }
        Ok(if distinct.is_empty() {
            Verdict::Missing
        } else {
            Verdict::Verified
        })
    }
}

/// The unverified `iss` of a token, only to skip providers of other issuers without crypto
/// (the verified `iss` is checked again by `validate`). `None` when it cannot be read.
fn peek_issuer(token: &str, max_token_bytes: usize) -> Option<String> {
    if token.len() > max_token_bytes {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "decide_tests.rs"]
mod tests;
