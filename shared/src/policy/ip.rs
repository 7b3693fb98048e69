//! IP ranges (`ip_blocks`, `source.ip`, `destination.ip`) and the addresses Envoy reports.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use super::error::PolicyError;

/// Compiles an IP address (a single-host range) or a CIDR range, v4 or v6, as Istio accepts them.
pub fn parse_ip_block(value: &str) -> Result<IpNet, PolicyError> {
    let invalid = || PolicyError::InvalidCidr {
        value: value.to_owned(),
    };
    if value.contains('/') {
        IpNet::from_str(value).map_err(|_| invalid())
    } else {
        IpAddr::from_str(value)
            .map(|ip| IpNet::from(canonical(ip)))
            .map_err(|_| invalid())
    }
}

/// Parses an Envoy address property (`source.address`, `destination.address`): `ip:port`,
/// `[v6]:port` or a bare IP. `None` for anything else (e.g. a Unix socket path).
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, seen on dual-stack listeners) become IPv4 so
/// that `10.0.0.0/8` matches them.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let ip = SocketAddr::from_str(text)
        .map(|s| s.ip())
        .or_else(|_| IpAddr::from_str(text))
        .ok()?;
    Some(canonical(ip))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn blocks_v4_v6_and_single_hosts() {
        let net = parse_ip_block("10.0.0.0/8").unwrap();
        assert!(net.contains(&parse_address("10.1.2.3:5000").unwrap()));
        assert!(!net.contains(&parse_address("11.1.2.3:5000").unwrap()));
        assert!(net.contains(&parse_address("[::ffff:10.9.9.9]:80").unwrap()));
        let host = parse_ip_block("192.168.1.7").unwrap();
        assert!(host.contains(&parse_address("192.168.1.7").unwrap()));
        assert!(!host.contains(&parse_address("192.168.1.8").unwrap()));
        let v6 = parse_ip_block("2001:db8::/32").unwrap();
        assert!(v6.contains(&parse_address("[2001:db8::1]:443").unwrap()));
        assert!(!v6.contains(&parse_address("[2001:db9::1]:443").unwrap()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_blocks_and_addresses() {
        for bad in ["10.0.0.0/33", "10.0.0", "abc", "::/129", "10.0.0.0/", ""] {
            assert_eq!(
                parse_ip_block(bad),
                Err(PolicyError::InvalidCidr {
                    value: bad.to_owned()
                }),
                "{bad}"
            );
        }
        assert_eq!(parse_address("/var/run/sock"), None);
        assert_eq!(parse_address("envoy://internal"), None);
    }
}
