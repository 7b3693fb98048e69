//! Evaluating the compiled policies for one request. Nothing here allocates: request-side
//! values (path without query, method bit, path head, namespace, issuer, subject) are derived
//! once per request and shared by every rule, and only the rules the [`RuleIndex`] names as
//! candidates for the request's path are looked at.

use std::cell::OnceCell;
use std::net::IpAddr;

use serde_json::Value;

use super::claims::{istio_claim_matches, ScopeRequirement};
use super::gate::{method_bit, path_head};
use super::header::HeaderValue;
use super::identity::spiffe_namespace;
use super::index::RuleIndex;
use super::model::{Action, Check, Policy, Rule};
use super::path::url_path;

/// The pseudo-policy reported when no policy decided (no ALLOW policy matched, there are no
/// ALLOW policies, or the config is `allow_all`/`deny_all`).
pub const DEFAULT_POLICY: &str = "_default";

/// What the filter knows about the request, borrowed from what it read from the host.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// `:authority`.
    pub authority: &'a [u8],
    /// `:path`, query included (it is stripped before matching).
    pub path: &'a [u8],
    /// All request headers, lower-case names, duplicates kept.
    pub headers: &'a [(String, Vec<u8>)],
    /// IP of `source.address`.
    pub source_ip: Option<IpAddr>,
    /// IP of `destination.address`.
    pub destination_ip: Option<IpAddr>,
    /// `destination.port`.
    pub destination_port: Option<u16>,
    /// `connection.uri_san_peer_certificate` (the mTLS peer's SPIFFE id).
    pub peer_identity: Option<&'a str>,
    /// `connection.requested_server_name`.
    pub sni: Option<&'a str>,
    /// The token jwt-authn verified, from filter state; `None` unless its outcome is `verified`.
    pub jwt: Option<Jwt<'a>>,
}

impl<'a> Request<'a> {
    /// A request with method, authority and path taken from the pseudo-headers in `headers`.
    pub fn from_headers(headers: &'a [(String, Vec<u8>)]) -> Self {
        let first = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .unwrap_or_default()
        };
        Request {
            method: first(":method"),
            authority: first(":authority"),
            path: first(":path"),
            headers,
            ..Request::default()
        }
    }
}

/// The verified token, from the jwt-authn hand-off.
#[derive(Debug, Clone, Copy)]
pub struct Jwt<'a> {
    /// `iss` (filter state `JWT_ISSUER`, else the payload's `iss`).
    pub issuer: Option<&'a str>,
    /// `sub` (filter state `JWT_SUBJECT`, else the payload's `sub`).
    pub subject: Option<&'a str>,
    /// The verified payload (a JSON object).
    pub payload: &'a Value,
}

/// What happens to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Let through.
    Allow,
    /// Refused with the deny response.
    Deny,
    /// Let through, but a dry-run policy (or the global dry-run) would have denied it.
    DryRunDeny,
}

impl Outcome {
    /// The value published as filter state `AUTHZ_DECISION`: `allow`, `deny`, `dry_run_deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::DryRunDeny => "dry_run_deny",
        }
    }
}

/// One evaluation's result: allowed or not, and who decided.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    /// Allowed.
    pub allowed: bool,
    /// The deciding policy; `None` for [`DEFAULT_POLICY`].
    pub policy: Option<&'a Policy>,
    /// The matching rule of that policy.
    pub rule: Option<&'a Rule>,
    /// Denied for lacking these OAuth scopes.
    pub insufficient_scope: Option<&'a ScopeRequirement>,
}

impl<'a> Verdict<'a> {
    fn by_default(allowed: bool, insufficient_scope: Option<&'a ScopeRequirement>) -> Self {
        Verdict {
            allowed,
            policy: None,
            rule: None,
            insufficient_scope,
        }
    }

    fn by(hit: Hit<'a>) -> Self {
        Verdict {
            allowed: hit.policy.action != Action::Deny,
            policy: Some(hit.policy),
            rule: Some(hit.rule),
            insufficient_scope: match hit.policy.action {
                Action::Deny => hit.rule.deny_scope.as_ref(),
                _ => None,
            },
        }
    }

    /// Name of the deciding policy ([`DEFAULT_POLICY`] when none).
    pub fn policy_name(&self) -> &'a str {
        self.policy.map_or(DEFAULT_POLICY, |p| p.name.as_str())
    }

    /// Name of the matching rule, if a rule decided.
    pub fn rule_name(&self) -> Option<&'a str> {
        self.rule.map(|r| r.name.as_str())
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// What happens.
    pub outcome: Outcome,
    /// The enforced verdict (from the policies that are not dry-run); the deny reply is built
    /// from it.
    pub enforced: Verdict<'a>,
    /// The verdict to publish and count: the enforced one for [`Outcome::Deny`]; for
    /// [`Outcome::DryRunDeny`] the policy that would have denied; for [`Outcome::Allow`] the
    /// ALLOW policy that matched, dry-run or not (so a global dry-run still names the policy
    /// that would allow).
    pub recorded: Verdict<'a>,
    /// The first AUDIT policy (and rule) that matched.
    pub audit: Option<(&'a Policy, &'a Rule)>,
}

#[derive(Clone, Copy)]
struct Hit<'a> {
    policy: &'a Policy,
    rule: &'a Rule,
}

/// Request-side values shared by every rule: computed once per request, the costlier ones
/// only when a rule first needs them.
struct Ctx<'r> {
    req: &'r Request<'r>,
    url_path: &'r [u8],
    method_bit: u16,
    path_head: u64,
    payload: Option<&'r Value>,
    namespace: OnceCell<Option<&'r str>>,
    principal: OnceCell<Option<(&'r str, &'r str)>>,
}

impl<'r> Ctx<'r> {
    fn new(req: &'r Request<'r>) -> Self {
        let url_path = url_path(req.path);
        Ctx {
            req,
            url_path,
            method_bit: method_bit(req.method),
            path_head: path_head(url_path),
            payload: req.jwt.map(|j| j.payload),
            namespace: OnceCell::new(),
            principal: OnceCell::new(),
        }
    }

    /// The namespace of the peer's SPIFFE id.
    fn namespace(&self) -> Option<&'r str> {
        *self
            .namespace
            .get_or_init(|| self.req.peer_identity.and_then(spiffe_namespace))
    }

    /// `(iss, sub)` of the verified token: the hand-off's, else the payload's.
    fn request_principal(&self) -> Option<(&'r str, &'r str)> {
        *self.principal.get_or_init(|| {
            let jwt = self.req.jwt?;
            let claim = |name: &str| jwt.payload.get(name).and_then(Value::as_str);
            let issuer = jwt.issuer.or_else(|| claim("iss"))?;
            let subject = jwt.subject.or_else(|| claim("sub"))?;
            Some((issuer, subject))
        })
    }
}

impl Check {
    fn matches(&self, ctx: &Ctx<'_>) -> bool {
        let req = ctx.req;
        let text = |v: Option<&str>, p: &super::string_match::StringPattern| {
            v.is_some_and(|s| p.matches(s.as_bytes()))
        };
        match self {
            Check::Principal(f) => f.matches(|p| text(req.peer_identity, p)),
            Check::Namespace(f) => f.matches(|p| text(ctx.namespace(), p)),
            Check::RequestPrincipal(f) => f.matches(|p| {
                ctx.request_principal()
                    .is_some_and(|(iss, sub)| p.matches(iss, sub))
            }),
            Check::SourceIp(f) => {
                f.matches(|net| req.source_ip.is_some_and(|ip| net.contains(&ip)))
            }
            Check::DestinationIp(f) => {
                f.matches(|net| req.destination_ip.is_some_and(|ip| net.contains(&ip)))
            }
            Check::Port(f) => f.matches(|port| req.destination_port == Some(*port)),
            Check::Host(f) => f.matches(|p| p.matches_ignore_case(req.authority)),
            Check::Method(f) => f.matches(|p| p.matches(req.method)),
            Check::Path(f) => f.matches(|p| p.matches(ctx.url_path)),
            Check::Header { name, values } => {
                let value = HeaderValue::find(req.headers, name);
                values.matches(|p| match (p, &value) {
                    (None, Some(_)) => true,
                    (Some(p), Some(v)) => v.matches(p),
                    (_, None) => false,
                })
            }
            Check::Claim { path, values } => {
                let claim = ctx.payload.and_then(|root| path.lookup(root));
                values.matches(|p| istio_claim_matches(claim, p))
            }
            Check::Sni(f) => f.matches(|p| text(req.sni, p)),
            Check::Typed(t) => t.matches(ctx.payload),
            Check::Scopes {
                requirement,
                negate,
            } => requirement.satisfied_by(ctx.payload) != *negate,
        }
    }
}

enum RuleMatch<'a> {
    Yes,
    No,
    /// Everything matched except positive `scopes` conditions.
    OnlyScopesMissing(&'a ScopeRequirement),
}

fn any_all(alternatives: &[Vec<Check>], ctx: &Ctx<'_>) -> bool {
    alternatives.is_empty()
        || alternatives
            .iter()
            .any(|all| all.iter().all(|c| c.matches(ctx)))
}

fn eval_rule<'a>(rule: &'a Rule, ctx: &Ctx<'_>) -> RuleMatch<'a> {
    if !rule.gate.admits(ctx.method_bit, ctx.path_head)
        || !any_all(&rule.to, ctx)
        || !any_all(&rule.from, ctx)
    {
        return RuleMatch::No;
    }
    let mut missing = None;
    for check in &rule.when {
        if check.matches(ctx) {
            continue;
        }
        match check {
            Check::Scopes {
                requirement,
                negate: false,
            } => {
                missing.get_or_insert(requirement.as_ref());
            }
            _ => return RuleMatch::No,
        }
    }
    missing.map_or(RuleMatch::Yes, RuleMatch::OnlyScopesMissing)
}

/// One policy's evaluation in progress: its first matching rule, and the first rule before it
/// that failed only on scopes.
struct PolicyScan<'a> {
    policy: &'a Policy,
    wanted: bool,
    hit: Option<Hit<'a>>,
    missing: Option<&'a ScopeRequirement>,
}

/// What the compiled config says to do when it has no policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Policies,
    AllowAll,
    DenyAll,
}

/// What the policies evaluated so far decided, per kind (Istio order: DENY, then ALLOW).
#[derive(Default)]
struct PolicyStates<'a> {
    enforced_deny: Option<Hit<'a>>,
    shadow_deny: Option<Hit<'a>>,
    enforced_allow: Option<Hit<'a>>,
    shadow_allow: Option<Hit<'a>>,
    enforced_missing: Option<&'a ScopeRequirement>,
    any_missing: Option<&'a ScopeRequirement>,
    audit: Option<Hit<'a>>,
}

impl<'a> PolicyStates<'a> {
    /// Whether `policy` can still change the decision (or the recorded attribution).
    fn wants(&self, policy: &Policy) -> bool {
        match (policy.action, policy.dry_run) {
            (Action::Deny, false) => self.enforced_deny.is_none(),
            (Action::Deny, true) => self.enforced_deny.is_none() && self.shadow_deny.is_none(),
            (Action::Allow, false) => self.enforced_deny.is_none() && self.enforced_allow.is_none(),
            (Action::Allow, true) => {
                self.enforced_deny.is_none()
                    && self.enforced_allow.is_none()
                    && self.shadow_allow.is_none()
            }
            (Action::Audit, _) => self.audit.is_none(),
        }
    }

    /// Takes in the result of one wanted policy.
    fn record(&mut self, scan: PolicyScan<'a>) {
        if !scan.wanted {
            return;
        }
        let (hit, missing) = (scan.hit, scan.missing);
        match (scan.policy.action, scan.policy.dry_run) {
            (Action::Deny, false) => self.enforced_deny = hit,
            (Action::Deny, true) => self.shadow_deny = hit,
            (Action::Allow, dry_run) => {
                if dry_run {
                    self.shadow_allow = hit;
                } else {
                    self.enforced_allow = hit;
                    self.enforced_missing = self.enforced_missing.or(missing);
                }
                self.any_missing = self.any_missing.or(missing);
            }
            (Action::Audit, _) => self.audit = hit,
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub(crate) policies: &'a [Policy],
    pub(crate) index: &'a RuleIndex,
    pub(crate) mode: Mode,
    pub(crate) global_dry_run: bool,
    pub(crate) has_enforced_allow: bool,
    pub(crate) has_any_allow: bool,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn evaluate(&self, req: &Request<'_>) -> Decision<'a> {
        let (outcome, enforced, recorded) = match (self.mode, self.global_dry_run) {
            (Mode::Policies, _) => return self.evaluate_policies(req),
            (Mode::AllowAll, _) => (Outcome::Allow, true, true),
            (Mode::DenyAll, false) => (Outcome::Deny, false, false),
            (Mode::DenyAll, true) => (Outcome::DryRunDeny, true, false),
        };
        Decision {
            outcome,
            enforced: Verdict::by_default(enforced, None),
            recorded: Verdict::by_default(recorded, None),
            audit: None,
        }
    }

    fn evaluate_policies(&self, req: &Request<'_>) -> Decision<'a> {
        let ctx = Ctx::new(req);
        let mut state = PolicyStates::default();
        // Only the rules whose path gate admits the request, in config order; a policy none of
        // whose rules is a candidate cannot match and changes nothing.
        let mut current: Option<PolicyScan<'a>> = None;
        for (p, r) in self.index.candidates(ctx.path_head) {
            let (Some(policy), Some(rule)) = (
                self.policies.get(p),
                self.policies.get(p).and_then(|policy| policy.rules.get(r)),
            ) else {
                continue;
            };
            if current
                .as_ref()
                .is_none_or(|c| c.policy.index != policy.index)
            {
                if let Some(done) = current.take() {
                    state.record(done);
                }
                current = Some(PolicyScan {
                    policy,
                    wanted: state.wants(policy),
                    hit: None,
                    missing: None,
                });
            }
            let Some(scan) = current.as_mut() else {
                continue;
            };
            if !scan.wanted || scan.hit.is_some() {
                continue;
            }
            match eval_rule(rule, &ctx) {
                RuleMatch::Yes => scan.hit = Some(Hit { policy, rule }),
                RuleMatch::OnlyScopesMissing(m) => {
                    scan.missing.get_or_insert(m);
                }
                RuleMatch::No => {}
            }
        }
        if let Some(done) = current {
            state.record(done);
        }
        let PolicyStates {
            enforced_deny,
            shadow_deny,
            enforced_allow,
            shadow_allow,
            enforced_missing,
            any_missing,
            audit,
        } = state;
        let audit = audit.map(|h| (h.policy, h.rule));
        let enforced = match (enforced_deny, enforced_allow) {
            (Some(hit), _) => Verdict::by(hit),
            (None, Some(hit)) => Verdict::by(hit),
            (None, None) if self.has_enforced_allow => Verdict::by_default(false, enforced_missing),
            (None, None) => Verdict::by_default(true, None),
        };
        if !enforced.allowed {
            return Decision {
                outcome: Outcome::Deny,
                enforced,
                recorded: enforced,
                audit,
            };
        }
        let would_deny = match shadow_deny {
            Some(hit) => Some(Verdict::by(hit)),
            None if self.has_any_allow && enforced_allow.or(shadow_allow).is_none() => {
                Some(Verdict::by_default(false, any_missing))
            }
            None => None,
        };
        let (outcome, recorded) = match would_deny {
            Some(verdict) => (Outcome::DryRunDeny, verdict),
            None => match (enforced_allow, shadow_allow) {
                (None, Some(hit)) => (Outcome::Allow, Verdict::by(hit)),
                _ => (Outcome::Allow, enforced),
            },
        };
        Decision {
            outcome,
            enforced,
            recorded,
            audit,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn request_from_pseudo_headers() {
        let headers = vec![
            (":method".to_owned(), b"GET".to_vec()),
            (":path".to_owned(), b"/a?b".to_vec()),
            (":authority".to_owned(), b"example.com".to_vec()),
        ];
        let r = Request::from_headers(&headers);
        assert_eq!(r.method, b"GET");
        assert_eq!(r.path, b"/a?b");
        assert_eq!(r.authority, b"example.com");
        assert_eq!(r.headers.len(), 3);
    }
}
