//! Remote key loads: take the process-wide lease, dispatch the HTTP call(s), store the result
//! for every worker, then let paused requests go on.

use meshguard_core::jwt::KeySet;
use meshguard_core::jwt_authn::fetch::{parse_discovery, response_ok, HttpTarget, KeyFetch};
use meshguard_core::jwt_authn::jwks::{on_fetch_failed, on_fetch_ok, try_acquire, FetchReason};
use meshguard_host as host;
use proxy_wasm::types::LogLevel;

use crate::worker::{InFlight, Stage, Worker};

impl Worker {
    /// Starts a key load for `p` if this worker wins the lease. Returns false when it could not
    /// start (another worker holds the lease, back-off, or the dispatch failed).
    pub fn start_fetch(&mut self, p: usize, now_ms: u64, why: FetchReason) -> bool {
        let Some(remote) = self.store.remote(p).cloned() else {
            return false;
        };
        let lease = remote.policy.lease_ms();
        self.inflight
            .retain(|_, f| now_ms < f.started_ms.saturating_add(lease));
        if self.inflight.values().any(|f| {
            self.store.remote(f.provider).map(|r| &r.shared_data_key)
                == Some(&remote.shared_data_key)
        }) {
            return false;
        }
        let policy = remote.policy;
        let leased = self
            .store
            .update(p, &|rec| try_acquire(rec, &policy, now_ms, why));
        match leased {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(e) => {
                host::log(LogLevel::Warn, &format!("jwt_authn: {e}"));
                return false;
            }
        }
        let stage = match remote.fetch {
            KeyFetch::Jwks(_) => Stage::Jwks,
            KeyFetch::Discovery { .. } => Stage::Discovery,
        };
        if self.dispatch(p, remote.fetch.first(), stage, now_ms) {
            true
        } else {
            self.fetch_failed(p, now_ms);
            false
        }
    }

    fn dispatch(&mut self, p: usize, target: &HttpTarget, stage: Stage, now_ms: u64) -> bool {
        match host::dispatch_http_call(
            &target.cluster,
            &target.request_headers(),
            None,
            target.timeout,
        ) {
            Ok(token) => {
                self.inflight.insert(
                    token,
                    InFlight {
                        provider: p,
                        stage,
                        started_ms: now_ms,
                    },
                );
                self.want_tick(100);
                true
            }
            Err(e) => {
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "jwt_authn: JWKS fetch for provider {} not dispatched: {e}",
                        self.provider_name(p)
                    ),
                );
                false
            }
        }
    }

    fn provider_name(&self, p: usize) -> &str {
        self.cfg().providers.get(p).map_or("?", |x| x.name.as_str())
    }

    fn fetch_failed(&mut self, p: usize, now_ms: u64) {
        self.metrics.fetch(p, false);
        self.mark_failed(p, now_ms);
    }

    /// Records a failed key load in the shared record (back-off; the last good keys stay).
    fn mark_failed(&mut self, p: usize, now_ms: u64) {
        if let Err(e) = self
            .store
            .update(p, &|rec| Some(on_fetch_failed(rec, now_ms)))
        {
            host::log(LogLevel::Warn, &format!("jwt_authn: {e}"));
        }
    }

    /// Handles an HTTP-call response (`num_headers == 0` = failure or timeout). Returns true
    /// when the call was one of ours (then paused requests should be looked at).
    pub fn on_call_response(&mut self, token: u32, body_size: usize, now_ms: u64) -> bool {
        let Some(call) = self.inflight.remove(&token) else {
            return false;
        };
        let p = call.provider;
        let limit = self.store.remote(p).map_or(0, |r| r.max_body_bytes);
        if body_size > limit {
            // Refused before reading: a huge body never enters guest memory.
            host::log(
                LogLevel::Warn,
                &format!(
                    "jwt_authn: key fetch for provider {} refused: body of {body_size} bytes exceeds max_body_bytes ({limit})",
                    self.provider_name(p)
                ),
            );
            self.metrics.fetch_too_large(p);
            self.mark_failed(p, now_ms);
            return true;
        }
        let headers = host::http_call_response_headers().unwrap_or_default();
        let body = if body_size > 0 {
            host::http_call_response_body(body_size).ok().flatten()
        } else {
            None
        };
        if !response_ok(&headers, body.as_deref()) {
            host::log(
                LogLevel::Warn,
                &format!(
                    "jwt_authn: key fetch for provider {} failed (status {:?})",
                    self.provider_name(p),
                    headers
                        .iter()
                        .find(|(n, _)| n == ":status")
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                ),
            );
            self.fetch_failed(p, now_ms);
            return true;
        }
        let body = body.unwrap_or_default();
        match call.stage {
            Stage::Discovery => self.on_discovery(p, &body, now_ms),
            Stage::Jwks => self.on_jwks(p, body, now_ms),
        }
        true
    }

    fn on_discovery(&mut self, p: usize, body: &[u8], now_ms: u64) {
        let Some(KeyFetch::Discovery {
            issuer,
            jwks_cluster,
            timeout,
            ..
        }) = self.store.remote(p).map(|r| r.fetch.clone())
        else {
            return;
        };
        let target = parse_discovery(body, &issuer).and_then(|uri| {
            HttpTarget::parse(&uri, &jwks_cluster, timeout)
                .map_err(|_| "discovery jwks_uri is not a usable URL")
        });
        match target {
            Ok(t) => {
                if !self.dispatch(p, &t, Stage::Jwks, now_ms) {
                    self.fetch_failed(p, now_ms);
                }
            }
            Err(e) => {
                host::log(
                    LogLevel::Warn,
                    &format!("jwt_authn: provider {}: {e}", self.provider_name(p)),
                );
                self.fetch_failed(p, now_ms);
            }
        }
    }

    fn on_jwks(&mut self, p: usize, body: Vec<u8>, now_ms: u64) {
        // Only a document with at least one usable key replaces the last good one.
        if let Err(e) = KeySet::from_jwks_json(&body) {
            host::log(
                LogLevel::Warn,
                &format!(
                    "jwt_authn: provider {}: fetched JWKS refused: {e}",
                    self.provider_name(p)
                ),
            );
            self.fetch_failed(p, now_ms);
            return;
        }
        let Ok(doc) = String::from_utf8(body) else {
            self.fetch_failed(p, now_ms);
            return;
        };
        match self
            .store
            .update(p, &|rec| Some(on_fetch_ok(rec, now_ms, doc.clone())))
        {
            Ok(_) => self.metrics.fetch(p, true),
            Err(e) => {
                host::log(LogLevel::Warn, &format!("jwt_authn: {e}"));
                self.metrics.fetch(p, false);
            }
        }
    }
}
