//! The compiled policy set: every value parsed, every pattern compiled, ready to evaluate
//! without allocating.

use ipnet::IpNet;

use super::claims::{ClaimPath, ScopeRequirement, TypedClaim};
use super::gate::Gate;
use super::identity::RequestPrincipalPattern;
use super::path::PathPattern;
use super::response::DenyResponse;
use super::string_match::{OneOf, StringPattern};

/// What a policy does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// One ALLOW policy must match (when any exists).
    Allow,
    /// A match denies.
    Deny,
    /// A match is recorded only.
    Audit,
}

impl Action {
    /// `ALLOW`, `DENY`, `AUDIT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
        }
    }
}

/// One compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Position in the config (and in [`super::Authorizer::policies`]).
    pub index: usize,
    /// Unique name.
    pub name: String,
    /// What a match does.
    pub action: Action,
    /// Not enforced (its own `dry_run` or the global one).
    pub dry_run: bool,
    /// Rules; the policy matches when one does.
    pub rules: Vec<Rule>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name (given, or `rules[<index>]`).
    pub name: String,
    /// Alternatives (OR) of conjunctions (AND); empty = no constraint.
    pub from: Vec<Vec<Check>>,
    /// Alternatives (OR) of conjunctions (AND); empty = no constraint.
    pub to: Vec<Vec<Check>>,
    /// All must hold.
    pub when: Vec<Check>,
    /// Response when this rule denies.
    pub deny_response: Option<DenyResponse>,
    /// For a DENY rule: the first `not_scopes` condition, reported as `insufficient_scope`.
    pub deny_scope: Option<ScopeRequirement>,
    /// Quick reject on method and path, derived from `to`.
    pub gate: Gate,
}

/// One test on the request.
#[derive(Debug, Clone)]
pub enum Check {
    /// mTLS peer identity (`principals`, `source.principal`).
    Principal(OneOf<StringPattern>),
    /// Namespace of the peer's SPIFFE id (`namespaces`, `source.namespace`).
    Namespace(OneOf<StringPattern>),
    /// `iss/sub` of the verified JWT (`request_principals`, `request.auth.principal`).
    RequestPrincipal(OneOf<RequestPrincipalPattern>),
    /// `source.address` in ranges (`ip_blocks`, `remote_ip_blocks`, `source.ip`, `remote.ip`).
    SourceIp(OneOf<IpNet>),
    /// `destination.address` in ranges (`destination.ip`).
    DestinationIp(OneOf<IpNet>),
    /// Destination port (`ports`, `destination.port`).
    Port(OneOf<u16>),
    /// `:authority`, case-insensitive (`hosts`).
    Host(OneOf<StringPattern>),
    /// `:method` (`methods`).
    Method(OneOf<StringPattern>),
    /// `:path` without query (`paths`).
    Path(OneOf<PathPattern>),
    /// A request header (`request.headers[name]`); `None` is `*`: the header is present.
    Header {
        /// Lower-case name.
        name: String,
        /// Patterns; duplicates of the header are joined with `,` as Envoy does.
        values: OneOf<Option<StringPattern>>,
    },
    /// Istio claim matching (`request.auth.claims[…]`, `.audiences` = `aud`, `.presenter` = `azp`).
    Claim {
        /// Where the claim is.
        path: ClaimPath,
        /// String patterns, matched against a string claim or a list's string elements.
        values: OneOf<StringPattern>,
    },
    /// TLS SNI (`connection.sni`).
    Sni(OneOf<StringPattern>),
    /// Typed claim condition (our extension).
    Typed(Box<TypedClaim>),
    /// OAuth scopes; `negate` for `not_scopes`.
    Scopes {
        /// What is required.
        requirement: Box<ScopeRequirement>,
        /// `not_scopes`: holds when the requirement is not met.
        negate: bool,
    },
}

/// Which request attributes the compiled policies read, so the filter fetches only those
/// properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `connection.uri_san_peer_certificate`.
    pub peer_identity: bool,
    /// `source.address`.
    pub source_ip: bool,
    /// `destination.address`.
    pub destination_ip: bool,
    /// `destination.port`.
    pub destination_port: bool,
    /// `connection.requested_server_name`.
    pub sni: bool,
    /// The jwt-authn hand-off (outcome, payload, issuer, subject).
    pub jwt: bool,
}

impl Check {
    /// Relative cost of evaluating the check, to test cheap checks first within a conjunction
    /// (`AND` is order-independent: checks have no side effects).
    pub(crate) fn cost(&self) -> u8 {
        match self {
            Check::Method(_) | Check::Port(_) => 0,
            Check::Path(_) | Check::Host(_) | Check::SourceIp(_) | Check::DestinationIp(_) => 1,
            Check::Principal(_) | Check::Namespace(_) | Check::Sni(_) => 2,
            Check::RequestPrincipal(_) => 3,
            Check::Header { .. } => 4,
            Check::Claim { .. } | Check::Typed(_) => 5,
            Check::Scopes { .. } => 6,
        }
    }
}

impl Needs {
    pub(crate) fn add(&mut self, check: &Check) {
        match check {
            Check::Principal(_) | Check::Namespace(_) => self.peer_identity = true,
            Check::SourceIp(_) => self.source_ip = true,
            Check::DestinationIp(_) => self.destination_ip = true,
            Check::Port(_) => self.destination_port = true,
            Check::Sni(_) => self.sni = true,
            Check::RequestPrincipal(_)
            | Check::Claim { .. }
            | Check::Typed(_)
            | Check::Scopes { .. } => self.jwt = true,
            Check::Host(_) | Check::Method(_) | Check::Path(_) | Check::Header { .. } => {}
        }
    }
}
