//! What can be wrong in an authz config. Each error is reported with the field path it was found
//! at (`policies[2].rules[0].from[0].source.ip_blocks[1]: invalid CIDR "10.0.0.0/33": …`).

/// One semantic problem in an authz config (serde's shape errors are reported by
/// [`crate::config::parse_json`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No policies and neither `allow_all` nor `deny_all`: an empty config is refused so that a
    /// missing config never silently means "allow everything".
    #[error("no policies: set `allow_all: true` or `deny_all: true` explicitly, or add policies")]
    NoPolicies,
    /// `allow_all`/`deny_all` combined with policies or with each other.
    #[error("{0}")]
    ConflictingDefaults(&'static str),
    /// An empty string where a value is required (Istio refuses them too).
    #[error("empty value not allowed")]
    EmptyValue,
    /// A policy or rule name outside `[A-Za-z0-9._-]{1,64}` or starting with `_` (reserved).
    #[error(
        "invalid name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ - not starting with `_`"
    )]
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// Two policies (or two rules of one policy) with the same name.
    #[error("duplicate name {name:?}")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// Not an IP address or CIDR range.
    #[error("invalid CIDR {value:?}: expected an IP address or a range like 10.0.0.0/8 or 2001:db8::/32")]
    InvalidCidr {
        /// The value as written.
        value: String,
    },
    /// Not a port number.
    #[error("invalid port {value:?}: expected an integer from 0 to 65535")]
    InvalidPort {
        /// The value as written.
        value: String,
    },
    /// A path that does not start with `/` (or `*`), or an unsupported path template.
    #[error("invalid path template {value:?}: {reason}")]
    InvalidPathTemplate {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A claim path that cannot address a claim (`a..b`, `/a/~2`, `[a`).
    #[error("invalid claim path {value:?}: {reason}")]
    InvalidClaimPath {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `when` key that is not one of the supported attributes.
    #[error("unknown key {key:?}; supported: request.auth.claims[<name>]…, request.auth.principal, request.auth.audiences, request.auth.presenter, request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A `when` key with a malformed bracket part (`request.headers[]`).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as written.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `when` condition whose fields do not form one of the supported condition kinds.
    #[error("invalid condition: {0}")]
    InvalidCondition(&'static str),
    /// A typed claim value that is not a string, number or bool.
    #[error("invalid claim value {value}: expected a string, number or bool")]
    InvalidClaimValue {
        /// The value, as JSON.
        value: String,
    },
    /// An OAuth scope with characters RFC 6749 §3.3 does not allow (space, `"`, `\`, controls).
    #[error("invalid scope {value:?}: RFC 6749 scope tokens are printable ASCII without space, '\"' or '\\'")]
    InvalidScope {
        /// The scope as written.
        value: String,
    },
    /// A deny status outside 200..=599.
    #[error("invalid status {status}: expected 200 to 599")]
    InvalidStatus {
        /// The status as written.
        status: u16,
    },
    /// A response header name that is not a lower-case-able HTTP token, or a pseudo-header.
    #[error("invalid header name {name:?}: expected an HTTP token (letters, digits, !#$%&'*+-.^_`|~), not a pseudo-header")]
    InvalidHeaderName {
        /// The name as written.
        name: String,
    },
    /// A response header value with control characters (CR, LF, NUL…).
    #[error("invalid header value for {name:?}: control characters are not allowed")]
    InvalidHeaderValue {
        /// The header the value is for.
        name: String,
    },
    /// `deny_response` on a rule whose policy is not a DENY policy (it could never be sent).
    #[error("deny_response is only allowed on rules of DENY policies (ALLOW and AUDIT rules never deny)")]
    DenyResponseOnNonDeny,
}
