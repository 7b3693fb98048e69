//! The authz filter: Istio AuthorizationPolicy semantics, evaluated in the sidecar on the mTLS
//! peer identity and the claims jwt-authn verified.
//!
//! Thin glue over [`meshguard_core::policy`]: `on_configure` compiles the policies (a bad config
//! is refused whole, with every error's field path logged); each request reads only what the
//! policies need (headers, `source.address`, `destination.*`, the peer's URI SAN, the SNI and
//! the jwt-authn hand-off in filter state — never claims from headers), evaluates, publishes
//! `meshguard.authz.{decision,policy,rule,audit}` as filter state, counts, and on deny sends the
//! configured local reply. If a hostcall fails the request is denied (fail closed).

use std::rc::Rc;

use meshguard_core::config::FilterConfig;
use meshguard_core::handoff;
use meshguard_core::identity::{ClaimsSource, EnvoyClaims, EnvoyJwtAuthn, METADATA_PROPERTY};
use meshguard_core::policy::{ip, Authorizer, Decision, Jwt, Outcome, Request, Verdict};
use meshguard_host::{self as host, Headers};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde_json::Value;

mod metrics;

use metrics::Metrics;

#[cfg(feature = "entry")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(root);
}}

/// A new root context of this filter (the module entry point registers it; a fused module
/// runs it as one of its stages).
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(AuthzRoot { state: None })
}

/// What `on_configure` built, shared by the streams of this VM.
struct Configured {
    authz: Authorizer,
    metrics: Metrics,
}

struct AuthzRoot {
    state: Option<Rc<Configured>>,
}

impl AuthzRoot {
    fn configure() -> Result<Configured, String> {
        let json = host::plugin_configuration()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let authz = Authorizer::parse(&json).map_err(|e| format!("invalid config: {e}"))?;
        let metrics = Metrics::define(&authz).map_err(|e| e.to_string())?;
        Ok(Configured { authz, metrics })
    }
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match Self::configure() {
            Ok(state) => {
                let policies = state.authz.policies().len();
                host::log(
                    LogLevel::Info,
                    &format!("authz: configured {policies} policies"),
                );
                self.state = Some(Rc::new(state));
                true
            }
            Err(e) => {
                host::log(LogLevel::Error, &format!("authz: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        Some(Box::new(AuthzStream { state }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthzStream {
    state: Rc<Configured>,
}

impl Context for AuthzStream {}

/// What the request's properties say, owned (the [`Request`] borrows from it).
#[derive(Default)]
struct Facts {
    headers: Vec<(String, Vec<u8>)>,
    source: Option<String>,
    destination: Option<String>,
    destination_port: Option<u16>,
    peer: Option<String>,
    sni: Option<String>,
    jwt: Option<(Value, Option<String>, Option<String>)>,
}

/// Envoy serves integer properties as 8 little-endian bytes.
fn port_of(bytes: &[u8]) -> Option<u16> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    u16::try_from(u64::from_le_bytes(raw)).ok()
}

/// Verified payload, issuer, subject.
type JwtFacts = (Value, Option<String>, Option<String>);

/// The claims Envoy's jwt_authn verified (`claims_source.envoy_jwt_authn`); `None` when there
/// are none or they are not accepted: the request is then unauthenticated.
fn envoy_claims(source: &EnvoyJwtAuthn) -> host::Result<Option<JwtFacts>> {
    match source.select(host::property(&METADATA_PROPERTY)?.as_deref()) {
        EnvoyClaims::Verified(v) => Ok(Some((v.payload, Some(v.issuer), v.subject))),
        EnvoyClaims::Missing => Ok(None),
        EnvoyClaims::Rejected(why) => {
            host::log(
                LogLevel::Debug,
                &format!("authz: jwt_authn payload not accepted: {}", why.as_str()),
            );
            Ok(None)
        }
    }
}

fn read_facts(state: &Configured) -> host::Result<Facts> {
    let needs = state.authz.needs();
    let text = |path: &[&str], needed: bool| {
        if needed {
            host::property_string(path)
        } else {
            Ok(None)
        }
    };
    let destination = text(
        &["destination", "address"],
        needs.destination_ip || needs.destination_port,
    )?;
    let destination_port = if needs.destination_port {
        host::property(&["destination", "port"])?
            .and_then(|bytes| port_of(&bytes))
            .or_else(|| {
                destination
                    .as_deref()
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    .map(|s| s.port())
            })
    } else {
        None
    };
    let envoy_jwt = match (needs.jwt, state.authz.claims_source()) {
        (true, ClaimsSource::EnvoyJwtAuthn(source)) => Some(envoy_claims(source)?),
        _ => None,
    };
    let jwt = if let Some(jwt) = envoy_jwt {
        jwt
    } else if needs.jwt
        && host::property_string(&[handoff::JWT_OUTCOME])?.as_deref() == Some("verified")
    {
        match host::property(&[handoff::JWT_PAYLOAD])?
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        {
            Some(payload @ Value::Object(_)) => Some((
                payload,
                host::property_string(&[handoff::JWT_ISSUER])?,
                host::property_string(&[handoff::JWT_SUBJECT])?,
            )),
            _ => {
                // jwt-authn said verified but handed off no payload object: treat the request
                // as unauthenticated (every positive identity condition fails).
                host::log(
                    LogLevel::Warn,
                    "authz: verified JWT without a payload object in filter state",
                );
                None
            }
        }
    } else {
        None
    };
    Ok(Facts {
        headers: host::headers(Headers::Request)?,
        source: text(&["source", "address"], needs.source_ip)?,
        destination,
        destination_port,
        peer: text(
            &["connection", "uri_san_peer_certificate"],
            needs.peer_identity,
        )?,
        sni: text(&["connection", "requested_server_name"], needs.sni)?,
        jwt,
    })
}

impl Facts {
    fn request(&self) -> Request<'_> {
        Request {
            source_ip: self.source.as_deref().and_then(ip::parse_address),
            destination_ip: self.destination.as_deref().and_then(ip::parse_address),
            destination_port: self.destination_port,
            peer_identity: self.peer.as_deref().filter(|p| !p.is_empty()),
            sni: self.sni.as_deref().filter(|s| !s.is_empty()),
            jwt: self.jwt.as_ref().map(|(payload, iss, sub)| Jwt {
                issuer: iss.as_deref(),
                subject: sub.as_deref(),
                payload,
            }),
            ..Request::from_headers(&self.headers)
        }
    }
}

fn publish(decision: &Decision<'_>) {
    let verdict = &decision.recorded;
    let mut failed = host::set_property(
        handoff::AUTHZ_DECISION,
        decision.outcome.as_str().as_bytes(),
    )
    .is_err();
    failed |= host::set_property(handoff::AUTHZ_POLICY, verdict.policy_name().as_bytes()).is_err();
    if let Some(rule) = verdict.rule_name() {
        failed |= host::set_property(handoff::AUTHZ_RULE, rule.as_bytes()).is_err();
    }
    if let Some((policy, _)) = decision.audit {
        failed |= host::set_property(handoff::AUTHZ_AUDIT, policy.name.as_bytes()).is_err();
    }
    if failed {
        host::log(
            LogLevel::Warn,
            "authz: could not publish the decision as filter state",
        );
    }
}

fn send_deny(authz: &Authorizer, verdict: &Verdict<'_>) -> Action {
    let reply = authz.deny_reply(verdict);
    if let Err(e) =
        host::send_local_response(u32::from(reply.status), &reply.headers, Some(reply.body))
    {
        // The request stays paused: still closed, never forwarded.
        host::log(
            LogLevel::Error,
            &format!("authz: cannot send the deny reply: {e}"),
        );
    }
    Action::Pause
}

impl HttpContext for AuthzStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let state = Rc::clone(&self.state);
        let facts = match read_facts(&state) {
            Ok(facts) => facts,
            Err(e) => {
                host::log(
                    LogLevel::Warn,
                    &format!("authz: denying, request attributes unavailable: {e}"),
                );
                state.metrics.error();
                let _ =
                    host::set_property(handoff::AUTHZ_DECISION, Outcome::Deny.as_str().as_bytes());
                let _ = host::set_property(handoff::AUTHZ_POLICY, b"_error");
                let verdict = Verdict {
                    allowed: false,
                    policy: None,
                    rule: None,
                    insufficient_scope: None,
                };
                return send_deny(&state.authz, &verdict);
            }
        };
        let request = facts.request();
        let decision = state.authz.evaluate(&request);
        publish(&decision);
        state.metrics.count(&decision);
        let verdict = &decision.recorded;
        host::log(
            LogLevel::Debug,
            &format!(
                "authz: {} policy={} rule={}",
                decision.outcome.as_str(),
                verdict.policy_name(),
                verdict.rule_name().unwrap_or("-")
            ),
        );
        match decision.outcome {
            Outcome::Deny => send_deny(&state.authz, &decision.enforced),
            Outcome::Allow | Outcome::DryRunDeny => Action::Continue,
        }
    }
}
