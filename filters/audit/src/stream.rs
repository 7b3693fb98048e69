//! One HTTP stream: read from the host, call `meshguard_core::audit::plan`, apply.

use std::rc::Rc;

use meshguard_core::audit::config::LogLevel as RecordLevel;
use meshguard_core::audit::plan::{log_plan, request_plan, LogInput, Seen};
use meshguard_core::audit::props;
use meshguard_core::audit::stages::Handoff;
use meshguard_core::handoff::{self as keys, AUDIT_RECORD};
use meshguard_core::identity::{ClaimsSource, EnvoyJwtAuthn, METADATA_PROPERTY};
use meshguard_host::{self as host, Headers, HostError};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use crate::{random, Shared};

const PEER: [&str; 2] = ["connection", "uri_san_peer_certificate"];

/// The audit filter's state for one stream.
pub(crate) struct AuditStream {
    shared: Rc<Shared>,
    context_id: u32,
    /// Set by the request phase: the request was admitted by every earlier filter.
    seen: Option<Seen>,
    /// Host time of the first callback, the last-resort start of the duration.
    first_seen_nanos: Option<u64>,
    /// Draws so far (varies the fallback random seed).
    draws: u64,
    /// What the request phase read from the host and `on_log` reuses (the earlier filters have
    /// all published by then, so reading it again would only cost hostcalls).
    request_reads: Option<(Handoff, Option<Vec<u8>>)>,
    /// The request headers as this filter forwarded them (after its edits); `on_log` records
    /// these instead of reading the map again.
    forwarded_headers: Option<Vec<(String, Vec<u8>)>>,
}

impl AuditStream {
    pub(crate) fn new(shared: Rc<Shared>, context_id: u32) -> AuditStream {
        AuditStream {
            shared,
            context_id,
            seen: None,
            first_seen_nanos: None,
            draws: 0,
            request_reads: None,
            forwarded_headers: None,
        }
    }

    /// Notes the host time of the first callback (the clock is only asked once per stream).
    fn touch(&mut self) {
        if self.first_seen_nanos.is_none() {
            self.first_seen_nanos = now_nanos();
        }
    }

    /// Fills buffers with host randomness; counts a host refusal as an error.
    fn random(&mut self) -> impl FnMut(&mut [u8]) + '_ {
        move |buf: &mut [u8]| {
            self.draws = self.draws.wrapping_add(1);
            let (context_id, draws) = (self.context_id, self.draws);
            let seed = || {
                now_nanos().unwrap_or(0)
                    ^ (u64::from(context_id) << 32)
                    ^ draws.wrapping_mul(0x9e37_79b9)
            };
            if !random::fill(buf, seed) {
                self.shared.metrics.error();
            }
        }
    }

    /// A property, `None` when absent; a failing hostcall is counted and treated as absent.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match host::property(path) {
            Ok(value) => value,
            Err(e) => {
                self.error(&e);
                None
            }
        }
    }

    /// Reads the hand-off, skipping jwt-authn keys it cannot have set given its outcome (each
    /// skipped key is a hostcall saved): issuer, subject and provider come only with `verified`,
    /// the reason only with another outcome, and nothing without an outcome.
    fn handoff(&self) -> Handoff {
        if let ClaimsSource::EnvoyJwtAuthn(source) = &self.shared.config.claims_source {
            return self.handoff_with_envoy_claims(source);
        }
        let mut jwt_outcome: Option<Option<Vec<u8>>> = None;
        Handoff::read(|key| {
            let verified = jwt_outcome
                .as_ref()
                .map(|o| o.as_deref().is_some_and(|v| v == b"verified"));
            let skip = match key {
                keys::JWT_ISSUER | keys::JWT_SUBJECT | keys::JWT_PROVIDER => {
                    verified == Some(false)
                }
                keys::JWT_REASON => {
                    verified == Some(true) || jwt_outcome.as_ref().is_some_and(Option::is_none)
                }
                _ => false,
            };
            if skip {
                return None;
            }
            let value = self.property(&[key]);
            if key == keys::JWT_OUTCOME {
                jwt_outcome = Some(value.clone().filter(|v| !v.is_empty()));
            }
            value
        })
    }

    /// The hand-off with the identity Envoy's jwt_authn verified in place of jwt-authn's keys.
    fn handoff_with_envoy_claims(&self, source: &EnvoyJwtAuthn) -> Handoff {
        use meshguard_core::handoff::{
            JWT_ISSUER, JWT_OUTCOME, JWT_PROVIDER, JWT_REASON, JWT_SUBJECT,
        };
        let handoff = Handoff::read(|key| match key {
            JWT_OUTCOME | JWT_REASON | JWT_ISSUER | JWT_SUBJECT | JWT_PROVIDER => None,
            _ => self.property(&[key]),
        });
        let metadata = self.property(&METADATA_PROPERTY);
        handoff.with_envoy_claims(&source.select(metadata.as_deref()))
    }

    fn error(&self, e: &HostError) {
        self.shared.metrics.error();
        host::log(LogLevel::Warn, &format!("audit: {e}"));
    }

    /// The request cannot be made safe (spoofed headers could remain): refuse it.
    fn fail_closed(&self, e: &HostError) -> Action {
        self.shared.metrics.error();
        host::log(
            LogLevel::Error,
            &format!("audit: cannot rewrite the request headers ({e}); refusing the request"),
        );
        if let Err(e) = host::send_local_response(500, &[], Some(b"audit filter error\n")) {
            self.error(&e);
        }
        Action::Pause
    }

    fn status(&self) -> Option<u16> {
        if let Some(code) = self
            .property(&["response", "code"])
            .and_then(|v| props::int64_le(&v))
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c > 0)
        {
            return Some(code);
        }
        let status = host::header(Headers::Response, ":status").ok().flatten()?;
        std::str::from_utf8(&status).ok()?.parse().ok()
    }

    fn duration_nanos(&self, now: Option<u64>) -> Option<u64> {
        if let Some(d) = self
            .property(&["request", "duration"])
            .and_then(|v| props::nanos(&v))
        {
            return Some(d);
        }
        let start = self
            .property(&["request", "time"])
            .and_then(|v| props::nanos(&v))
            .or(self.first_seen_nanos)?;
        now?.checked_sub(start)
    }
}

impl Context for AuditStream {}

impl HttpContext for AuditStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.touch();
        let headers = match host::headers(Headers::Request) {
            Ok(headers) => headers,
            Err(e) => return self.fail_closed(&e),
        };
        let handoff = self.handoff();
        let peer = self.property(&PEER);
        let shared = Rc::clone(&self.shared);
        let plan = request_plan(
            &shared.config,
            &headers,
            &handoff,
            peer.as_deref(),
            &mut self.random(),
        );
        // Two or more single edits cost more in Envoy than writing the whole map back once.
        let edited = if plan.edits.single_calls(&headers) >= 2 {
            let edited = plan.edits.apply(&headers);
            if let Err(e) = host::set_headers(Headers::Request, &edited) {
                return self.fail_closed(&e);
            }
            edited
        } else {
            for name in plan.edits.removals(&headers) {
                if let Err(e) = host::remove_header(Headers::Request, name) {
                    return self.fail_closed(&e);
                }
            }
            for (name, value) in &plan.edits.set {
                if let Err(e) = host::set_header(Headers::Request, name, value.as_bytes()) {
                    return self.fail_closed(&e);
                }
            }
            plan.edits.apply(&headers)
        };
        self.forwarded_headers = Some(edited);
        self.seen = Some(Seen {
            request_id: plan.request_id.as_str().to_string(),
            trace: (plan.trace.context, plan.trace.source),
        });
        self.request_reads = Some((handoff, peer));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.touch();
        let config = &self.shared.config;
        if let (true, Some(seen)) = (config.echo_request_id, &self.seen) {
            let id = seen.request_id.as_bytes();
            if let Err(e) = host::set_header(Headers::Response, &config.request_id_header, id) {
                self.error(&e);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let now = now_nanos();
        if self.first_seen_nanos.is_none() {
            self.first_seen_nanos = now;
        }
        let headers = match self.forwarded_headers.take() {
            Some(headers) => headers,
            None => host::headers(Headers::Request).unwrap_or_else(|e| {
                self.error(&e);
                Vec::new()
            }),
        };
        let (handoff, peer) = match self.request_reads.take() {
            Some(reads) => reads,
            None => (self.handoff(), self.property(&PEER)),
        };
        let status = self.status();
        let duration = self.duration_nanos(now);
        let source = self.property(&["source", "address"]);
        let shared = Rc::clone(&self.shared);
        let seen = self.seen.clone();
        let input = LogInput {
            seen: seen.as_ref(),
            request_headers: &headers,
            handoff: &handoff,
            time_unix_nanos: now.unwrap_or(0),
            status,
            duration_nanos: duration,
            source_address: text(&source),
            peer_principal: text(&peer),
        };
        let plan = log_plan(&shared.config, &input, &mut self.random());
        shared.metrics.request(plan.verdict.decision, status);
        shared.metrics.record(plan.selection);
        let Some(record) = plan.record else { return };
        let json = match record.to_json() {
            Ok(json) => json,
            Err(e) => {
                shared.metrics.error();
                host::log(
                    LogLevel::Error,
                    &format!("audit: cannot encode the record: {e}"),
                );
                return;
            }
        };
        if let Some(level) = shared.config.log_level {
            host::log(proxy_level(level), &json);
        }
        if shared.config.filter_state {
            if let Err(e) = host::set_property(AUDIT_RECORD, json.as_bytes()) {
                self.error(&e);
            }
        }
    }
}

fn text(value: &Option<Vec<u8>>) -> Option<&str> {
    value.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

fn now_nanos() -> Option<u64> {
    let now = host::now().ok()?;
    let since = now.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

fn proxy_level(level: RecordLevel) -> LogLevel {
    match level {
        RecordLevel::Trace => LogLevel::Trace,
        RecordLevel::Debug => LogLevel::Debug,
        RecordLevel::Info => LogLevel::Info,
        RecordLevel::Warn => LogLevel::Warn,
        RecordLevel::Error => LogLevel::Error,
        RecordLevel::Critical => LogLevel::Critical,
    }
}
