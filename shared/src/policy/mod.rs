//! The authz policy language: Istio AuthorizationPolicy semantics, evaluated in the sidecar,
//! plus typed claim matching, per-rule deny responses and a real dry-run.
//!
//! # Config
//! ```json
//! { "policies": [ { "name": "api", "action": "ALLOW", "dry_run": false, "rules": [ {
//!       "name": "readers",
//!       "from": [ { "source": { "principals": ["cluster.local/ns/web/sa/frontend"] } } ],
//!       "to":   [ { "operation": { "methods": ["GET"], "paths": ["/api/{*}/items/{**}"] } } ],
//!       "when": [ { "key": "request.auth.claims[groups]", "values": ["readers"] },
//!                 { "claim": "realm_access.roles", "contains_any": ["reader", "admin"] },
//!                 { "scopes": { "all_of": ["items:read"] } } ] } ] } ],
//!   "dry_run": false,
//!   "deny_response": { "status": 403, "body": {"error": "forbidden"}, "headers": {} } }
//! ```
//!
//! # Semantics (Istio's, except where noted)
//! - **Policy order:** any matching DENY policy denies; otherwise, if ALLOW policies exist, one
//!   must match; otherwise the request is allowed. AUDIT policies never change the outcome; the
//!   first matching one is recorded. Among policies of one kind the first in config order is
//!   reported as the decider (Envoy orders by name; only attribution differs).
//! - **Rules:** a policy matches when any rule does; a rule matches when any `from` matches, any
//!   `to` matches and every `when` holds; missing lists do not constrain, so a rule `{}` matches
//!   everything, while a policy without rules matches nothing.
//! - **Fields:** within a field the values are OR-ed; the fields of a source/operation are
//!   AND-ed; `not_x` holds when no value of `not_x` matches, including when the attribute is
//!   absent (e.g. `not_principals` holds for plaintext requests, as in Istio).
//! - **Strings:** `abc` exact, `abc*` prefix, `*abc` suffix, `*` any non-empty value
//!   (`request.headers[x]: *` = header present). Hosts are matched case-insensitively.
//! - **Identity:** see [`identity`]. **Paths and normalization:** see [`path`].
//! - **Claims** (only from the jwt-authn hand-off, never from headers): Istio's
//!   `request.auth.claims[a][b]` matches string claims and string elements of list claims only;
//!   our typed conditions (see [`claims`]) compare strings, numbers and bools without mixing
//!   types and support `contains_any`/`contains_all`/`present` and their negations.
//! - **Scopes** (extension): `{scopes: {all_of, any_of}}` / `{not_scopes: …}` read `scope` and
//!   `scp` (space-delimited string or array). A request denied because no ALLOW rule matched,
//!   where some ALLOW rule failed only on `scopes`, gets `insufficient_scope` (see
//!   [`response`]); so does a DENY rule that matched through a `not_scopes` condition.
//! - **IP blocks:** `ip_blocks`, `remote_ip_blocks`, `source.ip` and `remote.ip` all match
//!   Envoy's `source.address`, the only client address proxy-wasm exposes. Envoy sets it to the
//!   address the HTTP connection manager detected: the TCP peer, unless XFF trust
//!   (`use_remote_address: false` or `xff_num_trusted_hops`) or an original-IP extension says
//!   otherwise. Istio distinguishes the direct peer (`ip_blocks`) from the detected client
//!   (`remote_ip_blocks`); here both are the detected client.
//! - **Dry-run:** a policy with `dry_run: true` (or every policy, with the global `dry_run`) is
//!   evaluated but not enforced. The outcome is `deny` when the enforced policies deny,
//!   `dry_run_deny` when they allow but all policies together would deny, else `allow`.
//! - **No policies:** refused unless `allow_all` or `deny_all` is set.

pub mod claims;
mod compile;
pub mod error;
mod eval;
mod gate;
mod header;
pub mod identity;
mod index;
pub mod ip;
pub mod limits;
pub mod model;
pub mod path;
pub mod raw;
pub mod response;
pub mod string_match;
mod when;

#[cfg(test)]
mod tests_config;
#[cfg(test)]
mod tests_eval;

pub use error::PolicyError;
pub use eval::{Decision, Jwt, Outcome, Request, Verdict, DEFAULT_POLICY};
pub use model::{Action, Needs, Policy, Rule};
pub use raw::AuthzConfigRaw;
pub use response::DenyResponse;

use crate::config::{parse_json, ConfigErrors, FilterConfig};
use crate::identity::ClaimsSource;
use compile::Compiler;
use eval::{Evaluator, Mode};
use index::RuleIndex;

/// The compiled authz config: parse once at configure time, then [`Authorizer::evaluate`] per
/// request.
#[derive(Debug, Clone)]
pub struct Authorizer {
    policies: Vec<Policy>,
    index: RuleIndex,
    mode: Mode,
    global_dry_run: bool,
    default_response: DenyResponse,
    needs: Needs,
    has_enforced_allow: bool,
    has_any_allow: bool,
    claims_source: ClaimsSource,
}

/// A local reply to send for a denied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// HTTP status.
    pub status: u16,
    /// Headers (`content-type`, configured ones, `www-authenticate` for missing scopes).
    pub headers: Vec<(&'a str, &'a str)>,
    /// Body.
    pub body: &'a [u8],
}

impl Authorizer {
    /// Compiles an already-deserialized config.
    pub fn compile(raw: &AuthzConfigRaw) -> Result<Self, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        if !limits::check(raw, &mut errors) {
            return Err(errors);
        }
        let mode = match (raw.policies.is_empty(), raw.allow_all, raw.deny_all) {
            (_, true, true) => {
                errors.push(
                    "deny_all",
                    PolicyError::ConflictingDefaults("allow_all and deny_all exclude each other")
                        .to_string(),
                );
                Mode::DenyAll
            }
            (false, true, false) | (false, false, true) => {
                let field = if raw.allow_all {
                    "allow_all"
                } else {
                    "deny_all"
                };
                errors.push(
                    field,
                    PolicyError::ConflictingDefaults(
                        "allow_all/deny_all apply only when there are no policies",
                    )
                    .to_string(),
                );
                Mode::Policies
            }
            (true, true, false) => Mode::AllowAll,
            (true, false, true) => Mode::DenyAll,
            (true, false, false) => {
                errors.push("policies", PolicyError::NoPolicies.to_string());
                Mode::DenyAll
            }
            (false, false, false) => Mode::Policies,
        };
        let claims_source = ClaimsSource::compile(&raw.claims_source, "claims_source", &mut errors);
        let default_response = match &raw.deny_response {
            Some(r) => DenyResponse::compile(r, "deny_response", &mut errors),
            None => DenyResponse::default(),
        };
        let mut compiler = Compiler {
            errors: &mut errors,
        };
        let policies: Vec<Policy> = raw
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| compiler.policy(i, p, raw.dry_run))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for p in &policies {
            if !seen.insert(p.name.as_str()) {
                let e = PolicyError::DuplicateName {
                    name: p.name.clone(),
                };
                errors.push(format!("policies[{}].name", p.index), e.to_string());
            }
        }
        let mut needs = Needs::default();
        for rule in policies.iter().flat_map(|p| &p.rules) {
            let all = rule.from.iter().chain(&rule.to).flatten().chain(&rule.when);
            all.for_each(|check| needs.add(check));
        }
        let allow = |p: &&Policy| p.action == Action::Allow;
        let authorizer = Authorizer {
            has_enforced_allow: policies.iter().filter(allow).any(|p| !p.dry_run),
            has_any_allow: policies.iter().any(|p| allow(&p)),
            index: RuleIndex::build(&policies),
            policies,
            mode,
            global_dry_run: raw.dry_run,
            default_response,
            needs,
            claims_source,
        };
        errors.into_result(authorizer)
    }

    /// Decides for one request.
    pub fn evaluate<'s>(&'s self, request: &Request<'_>) -> Decision<'s> {
        Evaluator {
            policies: &self.policies,
            index: &self.index,
            mode: self.mode,
            global_dry_run: self.global_dry_run,
            has_enforced_allow: self.has_enforced_allow,
            has_any_allow: self.has_any_allow,
        }
        .evaluate(request)
    }

    /// The reply for a denying verdict: the rule's `deny_response`, else the configured or
    /// built-in default; with `www-authenticate` when scopes were missing.
    pub fn deny_reply<'s>(&'s self, verdict: &Verdict<'s>) -> Reply<'s> {
        let response = verdict
            .rule
            .and_then(|r| r.deny_response.as_ref())
            .unwrap_or(&self.default_response);
        let mut headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = match verdict.insufficient_scope {
            Some(scope) => {
                if !response.sets_www_authenticate {
                    headers.push(("www-authenticate", scope.www_authenticate.as_str()));
                }
                response.insufficient_scope_body.as_slice()
            }
            None => response.body.as_slice(),
        };
        Reply {
            status: response.status,
            headers,
            body,
        }
    }

    /// The compiled policies, in config order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Which request attributes the policies read.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Where the verified JWT claims come from.
    pub fn claims_source(&self) -> &ClaimsSource {
        &self.claims_source
    }

    /// The global dry-run switch.
    pub fn dry_run(&self) -> bool {
        self.global_dry_run
    }
}

impl FilterConfig for Authorizer {
    const FILTER: &'static str = "authz";
    type Raw = AuthzConfigRaw;

    fn parse(json: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: AuthzConfigRaw = parse_json(json)?;
        Authorizer::compile(&raw)
    }
}
