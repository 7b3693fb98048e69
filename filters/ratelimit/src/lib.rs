//! The ratelimit filter: limits keyed on verified identity, exact across Envoy worker VMs.
//!
//! Thin glue over [`meshguard_core::limiter`]: `on_configure` parses and validates the config,
//! picks the proxy-wide hash salt and creates every shared-data entry the rules may use (see
//! `meshguard_core::limiter::store` for why that bounds state and keeps CAS exact); each request
//! reads what the rules need (headers, `source.address`, the mTLS principal, the jwt-authn
//! hand-off), calls `evaluate`, and either sends the limited reply or lets the request through,
//! remembering what the response phase must count or add.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;

use meshguard_core::config::FilterConfig;
use meshguard_core::handoff;
use meshguard_core::identity::{ClaimsSource, METADATA_PROPERTY};
use meshguard_core::limiter::config::{FailureMode, RateLimitConfig};
use meshguard_core::limiter::decision::{count_response, evaluate, Decision, Evaluation};
use meshguard_core::limiter::descriptor::DescriptorSource;
use meshguard_core::limiter::headers::rate_limit_headers;
use meshguard_core::limiter::store::{ensure_salt, prepare, Counter, SALT_LEN};
use meshguard_core::limiter::{LimiterError, RequestView};
use meshguard_host::{self as host, Headers};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

mod host_store;
mod metrics;

use host_store::HostStore;
use metrics::Metrics;

#[cfg(feature = "entry")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(root);
}}

/// A new root context of this filter (the module entry point registers it; a fused module
/// runs it as one of its stages).
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(RateLimitRoot { state: None })
}

/// What `on_configure` built, shared by every stream of this VM.
struct Configured {
    config: RateLimitConfig,
    salt: Vec<u8>,
    metrics: Metrics,
    /// Which request properties some rule reads (each is a hostcall).
    needs: Needs,
}

#[derive(Default)]
struct Needs {
    source_address: bool,
    mtls_principal: bool,
    jwt: bool,
}

impl Needs {
    fn of(config: &RateLimitConfig) -> Needs {
        let mut needs = Needs::default();
        for rule in &config.rules {
            needs.jwt |= rule.tier_claim.is_some();
            for d in &rule.descriptors {
                match d {
                    DescriptorSource::RemoteAddress => needs.source_address = true,
                    DescriptorSource::MtlsPrincipal => needs.mtls_principal = true,
                    DescriptorSource::JwtClaim(_) => needs.jwt = true,
                    _ => {}
                }
            }
        }
        needs
    }
}

struct RateLimitRoot {
    state: Option<Rc<Configured>>,
}

/// 16 random bytes from the standard library's per-process random keys (WASI `random_get`).
fn random_salt() -> [u8; SALT_LEN] {
    let random = RandomState::new();
    let mut salt = [0u8; SALT_LEN];
    let (a, b) = salt.split_at_mut(8);
    a.copy_from_slice(&random.hash_one(0u8).to_le_bytes());
    b.copy_from_slice(&random.hash_one(1u8).to_le_bytes());
    salt
}

impl RateLimitRoot {
    fn configure(&mut self) -> Result<Configured, String> {
        let json = host::plugin_configuration()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let config = RateLimitConfig::parse(&json).map_err(|e| format!("invalid config: {e}"))?;
        let salt = ensure_salt(&mut HostStore, random_salt()).map_err(|e| e.to_string())?;
        let created = prepare(&mut HostStore, &config).map_err(|e| e.to_string())?;
        if created > 0 {
            host::log(
                LogLevel::Info,
                &format!("ratelimit: created {created} shared-data slots"),
            );
        }
        let metrics = Metrics::define(&config).map_err(|e| e.to_string())?;
        let needs = Needs::of(&config);
        Ok(Configured {
            config,
            salt,
            metrics,
            needs,
        })
    }
}

impl Context for RateLimitRoot {}

impl RootContext for RateLimitRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match self.configure() {
            Ok(state) => {
                self.state = Some(Rc::new(state));
                true
            }
            Err(e) => {
                host::log(LogLevel::Error, &format!("ratelimit: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK panics on `None`; Envoy never creates streams for a plugin whose configure
        // failed, but if it ever did, fail closed instead of killing the VM.
        Some(match self.state.clone() {
            Some(state) => Box::new(RateLimitStream {
                state,
                pending: Vec::new(),
                response_headers: Vec::new(),
            }),
            None => Box::new(Unconfigured),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RateLimitStream {
    state: Rc<Configured>,
    /// Rules counting response statuses: what to count if the status is listed.
    pending: Vec<(usize, Counter)>,
    /// Headers to add to the response of an allowed request.
    response_headers: Vec<(&'static str, String)>,
}

fn now_ms() -> u64 {
    host::now()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn header_str<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

impl RateLimitStream {
    fn decide(&mut self) -> Result<Evaluation, host::HostError> {
        let state = Rc::clone(&self.state);
        let headers = host::headers(Headers::Request)?;
        let source = if state.needs.source_address {
            host::property_string(&["source", "address"])?
        } else {
            None
        };
        let mtls = if state.needs.mtls_principal {
            host::property_string(&["connection", "uri_san_peer_certificate"])?
        } else {
            None
        };
        let envoy = match (&state.config.claims_source, state.needs.jwt) {
            (ClaimsSource::EnvoyJwtAuthn(source), true) => {
                Some(source.select(host::property(&METADATA_PROPERTY)?.as_deref()))
            }
            _ => None,
        };
        let (payload, subject) = if let Some(claims) = envoy {
            // Envoy's jwt_authn verified these (`claims_source.envoy_jwt_authn`); none accepted:
            // the request has no claims, exactly like a missing hand-off.
            claims
                .into_verified()
                .map_or((None, None), |v| (Some(v.payload), v.subject))
        } else if state.needs.jwt {
            let payload = host::property(&[handoff::JWT_PAYLOAD])?
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
            // The subject key is only the fallback for a payload without a string `sub` (e.g. an
            // API-key identity): skip the hostcall when the payload has it.
            let has_sub = payload
                .as_ref()
                .is_some_and(|p| p.get("sub").is_some_and(serde_json::Value::is_string));
            let subject = if has_sub {
                None
            } else {
                host::property_string(&[handoff::JWT_SUBJECT])?
            };
            (payload, subject)
        } else {
            (None, None)
        };
        let view = RequestView {
            method: header_str(&headers, ":method"),
            path: header_str(&headers, ":path"),
            headers: &headers,
            source_address: source.as_deref(),
            mtls_principal: mtls.as_deref(),
            jwt_payload: payload.as_ref(),
            jwt_subject: subject.as_deref(),
        };
        Ok(evaluate(
            &state.config,
            &state.salt,
            &view,
            &mut HostStore,
            now_ms(),
        ))
    }

    fn publish(&self, eval: &Evaluation) {
        let Some(reported) = eval.reported() else {
            return;
        };
        let rule = self
            .state
            .config
            .rules
            .get(reported.rule)
            .map_or("", |r| r.name.as_str());
        let _ = host::set_property(
            handoff::RATELIMIT_DECISION,
            eval.decision().as_str().as_bytes(),
        );
        let _ = host::set_property(handoff::RATELIMIT_RULE, rule.as_bytes());
        if let Some(remaining) = reported.remaining() {
            let _ = host::set_property(
                handoff::RATELIMIT_REMAINING,
                remaining.to_string().as_bytes(),
            );
        }
    }

    fn reply_limited(&self, eval: &Evaluation) -> Action {
        let config = &self.state.config;
        let (rule, quotas) = match eval.for_headers() {
            Some(r) => (
                config.rules.get(r.rule).map_or("", |r| r.name.as_str()),
                r.quotas.as_slice(),
            ),
            None => ("", &[][..]),
        };
        let mut headers = rate_limit_headers(&config.response, rule, quotas, true);
        headers.push(("content-type", "text/plain".to_owned()));
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Err(e) = host::send_local_response(
            u32::from(config.response.status),
            &pairs,
            Some(config.response.body.as_bytes()),
        ) {
            host::log(
                LogLevel::Error,
                &format!("ratelimit: limited reply failed: {e}"),
            );
        }
        Action::Pause
    }
}

/// A stream of a root context without a valid config: replies 503 rather than guessing.
struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _ = host::send_local_response(503, &[], Some(b"ratelimit filter not configured"));
        Action::Pause
    }
}

impl Context for RateLimitStream {}

impl HttpContext for RateLimitStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let eval = match self.decide() {
            Ok(eval) => eval,
            Err(e) => {
                host::log(
                    LogLevel::Warn,
                    &format!("ratelimit: cannot read the request: {e}"),
                );
                let mut eval = Evaluation::default();
                eval.failures.push(LimiterError::Store(e.to_string()));
                self.state.metrics.counters(0, 0, &eval.failures);
                return match self.state.config.failure_mode {
                    FailureMode::Deny => self.reply_limited(&eval),
                    FailureMode::Allow => Action::Continue,
                };
            }
        };
        let metrics = &self.state.metrics;
        for r in &eval.results {
            metrics.decision(r.rule, r.decision);
        }
        metrics.counters(eval.cas_retries, eval.collisions, &eval.failures);
        for f in &eval.failures {
            host::log(LogLevel::Warn, &format!("ratelimit: {f}"));
        }
        self.publish(&eval);
        if eval.decision() == Decision::Limited {
            return self.reply_limited(&eval);
        }
        let response = &self.state.config.response;
        if response.headers_on_allowed {
            if let Some(r) = eval.for_headers() {
                let rule = self
                    .state
                    .config
                    .rules
                    .get(r.rule)
                    .map_or("", |r| r.name.as_str());
                self.response_headers = rate_limit_headers(response, rule, &r.quotas, false);
            }
        }
        self.pending = eval.pending;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if !self.pending.is_empty() {
            let status = host::header(Headers::Response, ":status")
                .ok()
                .flatten()
                .and_then(|v| {
                    std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok())
                });
            if let Some(status) = status {
                let state = Rc::clone(&self.state);
                let counted = count_response(
                    &state.config,
                    &self.pending,
                    status,
                    &mut HostStore,
                    now_ms(),
                );
                state.metrics.responses_counted(counted.counted);
                state
                    .metrics
                    .counters(counted.cas_retries, 0, &counted.failures);
                for f in &counted.failures {
                    host::log(LogLevel::Warn, &format!("ratelimit: {f}"));
                }
            }
            self.pending.clear();
        }
        for (name, value) in &self.response_headers {
            if let Err(e) = host::set_header(Headers::Response, name, value.as_bytes()) {
                host::log(
                    LogLevel::Warn,
                    &format!("ratelimit: cannot set {name}: {e}"),
                );
            }
        }
        Action::Continue
    }
}
