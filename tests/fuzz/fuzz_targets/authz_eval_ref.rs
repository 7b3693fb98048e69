//! The fixed values the `authz_eval` target picks from, and how the reference evaluator
//! matches each (written from Istio's documented semantics, not from the evaluator's code).

use std::net::IpAddr;

pub const METHODS: [&str; 4] = ["GET", "POST", "DELETE", "PATCH"];
pub const PATHS: [&str; 8] = ["/a", "/a/b", "/a?q=1", "/b", "/", "/c/a", "/a/", "/ab"];
/// Path patterns and how the reference matches them.
pub const PATTERNS: [(&str, Pat); 7] = [
    ("/a", Pat::Exact("/a")),
    ("/a/*", Pat::Prefix("/a/")),
    ("*", Pat::Any),
    ("/b", Pat::Exact("/b")),
    ("*/a", Pat::Suffix("/a")),
    ("/a/{**}", Pat::Prefix("/a/")),
    ("/{*}", Pat::OneSegment),
];
pub const ROLES: [&str; 2] = ["admin", "reader"];
/// `principals` patterns and how the reference matches them on the peer id.
pub const PRINCIPALS: [(&str, Pat); 5] = [
    (
        "cluster.local/ns/shop/sa/web",
        Pat::Exact("spiffe://cluster.local/ns/shop/sa/web"),
    ),
    (
        "spiffe://cluster.local/ns/dev/sa/web",
        Pat::Exact("spiffe://cluster.local/ns/dev/sa/web"),
    ),
    (
        "cluster.local/ns/shop/*",
        Pat::Prefix("spiffe://cluster.local/ns/shop/"),
    ),
    ("*", Pat::Present),
    ("*/sa/web", Pat::PrefixSuffix("spiffe://", "/sa/web")),
];
pub const PEERS: [Option<&str>; 5] = [
    Some("spiffe://cluster.local/ns/shop/sa/web"),
    Some("spiffe://cluster.local/ns/dev/sa/web"),
    Some("spiffe://other.td/ns/shop/sa/batch"),
    Some("spiffe://cluster.local/sa/web"),
    None,
];
pub const NAMESPACES: [(&str, Pat); 4] = [
    ("shop", Pat::Exact("shop")),
    ("dev", Pat::Exact("dev")),
    ("*", Pat::Present),
    ("sh*", Pat::Prefix("sh")),
];
pub const IP_BLOCKS: [(&str, &str, u8); 6] = [
    ("10.0.0.0/8", "10.0.0.0", 8),
    ("10.1.2.3", "10.1.2.3", 32),
    ("192.168.0.0/16", "192.168.0.0", 16),
    ("::1/128", "::1", 128),
    ("0.0.0.0/0", "0.0.0.0", 0),
    ("2001:db8::/32", "2001:db8::", 32),
];
pub const IPS: [Option<&str>; 7] = [
    Some("10.1.2.3"),
    Some("10.200.0.1"),
    Some("192.168.5.5"),
    Some("127.0.0.1"),
    Some("::1"),
    Some("2001:db8::7"),
    None,
];
/// `request.headers[x-team]` values and how the reference matches the joined value.
pub const TEAM_PATTERNS: [(&str, Pat); 4] = [
    ("a", Pat::Exact("a")),
    ("b", Pat::Exact("b")),
    ("*", Pat::Any),
    ("x*", Pat::Prefix("x")),
];
/// `x-team` lines sent.
pub const TEAMS: [&[&str]; 6] = [&[], &["a"], &["b"], &["xyz"], &[""], &["a", "xyz"]];

#[derive(Clone, Copy)]
pub enum Pat {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Any,
    OneSegment,
    /// Non-empty.
    Present,
    PrefixSuffix(&'static str, &'static str),
}

impl Pat {
    pub fn matches(self, path: &str) -> bool {
        match self {
            Pat::Exact(p) => path == p,
            Pat::Prefix(p) => path.starts_with(p),
            Pat::Suffix(p) => path.ends_with(p),
            Pat::Any => !path.is_empty(),
            Pat::OneSegment => path
                .strip_prefix('/')
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
            Pat::Present => !path.is_empty(),
            Pat::PrefixSuffix(p, s) => {
                path.len() >= p.len() + s.len() && path.starts_with(p) && path.ends_with(s)
            }
        }
    }
}

/// `<ns>` of `spiffe://<td>/ns/<ns>/…`.
pub fn namespace_of(peer: &str) -> Option<&str> {
    let mut parts = peer.strip_prefix("spiffe://")?.split('/');
    let td = parts.next()?;
    if td.is_empty() || parts.next()? != "ns" {
        return None;
    }
    parts.next().filter(|ns| !ns.is_empty())
}

/// Whether `ip` is in the CIDR `(network, prefix length)`.
pub fn in_block(ip: IpAddr, (net, len): (&str, u8)) -> bool {
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((a, wa), (b, wb)) = (bits(ip), bits(net));
    if wa != wb {
        return false;
    }
    let shift = wa - u32::from(len);
    shift >= wa || (a >> shift) == (b >> shift)
}
