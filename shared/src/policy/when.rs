//! Istio `when` keys (`{key, values, not_values}`), compiled to the same checks `from`/`to` use.
//!
//! Supported keys: `request.auth.claims[<name>]…` (nested brackets), `request.auth.principal`,
//! `request.auth.audiences`, `request.auth.presenter`, `request.headers[<name>]`, `source.ip`,
//! `remote.ip`, `source.namespace`, `source.principal`, `destination.ip`, `destination.port`,
//! `connection.sni`. Istio's `experimental.envoy.filters.*` keys read Envoy dynamic metadata,
//! which proxy-wasm cannot read, and are refused.

use super::claims::{parse_brackets, ClaimPath};
use super::compile::{parse_port, Compiler};
use super::error::PolicyError;
use super::identity::{principal_pattern, RequestPrincipalPattern};
use super::ip::parse_ip_block;
use super::model::Check;
use super::string_match::StringPattern;

const CLAIMS: &str = "request.auth.claims";
const HEADERS: &str = "request.headers";

/// Compiles one Istio condition; `None` (with errors recorded) when invalid.
pub(crate) fn compile_key(
    c: &mut Compiler<'_>,
    path: &str,
    key: &str,
    values: &[String],
    not_values: &[String],
) -> Option<Check> {
    let before = c.errors.0.len();
    let key_error = |c: &mut Compiler<'_>, reason| {
        c.error(
            format!("{path}.key"),
            PolicyError::InvalidKey {
                key: key.to_owned(),
                reason,
            },
        )
    };
    let check = if let Some(brackets) = key.strip_prefix(CLAIMS) {
        match parse_brackets(brackets) {
            Some(segments) => Check::Claim {
                path: ClaimPath::from_segments(segments),
                values: c.one_of(path, "values", values, not_values, StringPattern::parse),
            },
            None => {
                key_error(c, "expected request.auth.claims[name] or [name][nested]…");
                return None;
            }
        }
    } else if let Some(brackets) = key.strip_prefix(HEADERS) {
        match parse_brackets(brackets).as_deref() {
            Some([name]) if is_token(name) => Check::Header {
                name: name.to_ascii_lowercase(),
                values: c.one_of(path, "values", values, not_values, |v| {
                    if v == "*" {
                        Ok(None)
                    } else {
                        StringPattern::parse(v).map(Some)
                    }
                }),
            },
            _ => {
                key_error(c, "expected request.headers[<header name>]");
                return None;
            }
        }
    } else {
        match key {
            "request.auth.principal" => Check::RequestPrincipal(c.one_of(
                path,
                "values",
                values,
                not_values,
                RequestPrincipalPattern::parse,
            )),
            "request.auth.audiences" | "request.auth.presenter" => Check::Claim {
                path: ClaimPath::from_segments(vec![if key.ends_with("audiences") {
                    "aud".to_owned()
                } else {
                    "azp".to_owned()
                }]),
                values: c.one_of(path, "values", values, not_values, StringPattern::parse),
            },
            "source.ip" | "remote.ip" => {
                Check::SourceIp(c.one_of(path, "values", values, not_values, parse_ip_block))
            }
            "destination.ip" => {
                Check::DestinationIp(c.one_of(path, "values", values, not_values, parse_ip_block))
            }
            "source.namespace" => {
                Check::Namespace(c.one_of(path, "values", values, not_values, StringPattern::parse))
            }
            "source.principal" => {
                Check::Principal(c.one_of(path, "values", values, not_values, principal_pattern))
            }
            "destination.port" => Check::Port(c.one_of(path, "values", values, not_values, |v| {
                parse_port(v).ok_or_else(|| PolicyError::InvalidPort {
                    value: v.to_owned(),
                })
            })),
            "connection.sni" => {
                Check::Sni(c.one_of(path, "values", values, not_values, StringPattern::parse))
            }
            _ => {
                c.error(
                    format!("{path}.key"),
                    PolicyError::UnknownKey {
                        key: key.to_owned(),
                    },
                );
                return None;
            }
        }
    };
    (c.errors.0.len() == before).then_some(check)
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
