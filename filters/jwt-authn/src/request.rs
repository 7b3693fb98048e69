//! One request: read headers → remove spoofable ones → decide (meshguard-core) → apply; and
//! paused requests taken up again when keys arrive, the fetch ends, or their deadline passes.

use meshguard_core::jwt_authn::decide::{decide_with, Allow, Decision, Outcome};
use meshguard_core::jwt_authn::jwks::{FetchReason, Waiter};
use meshguard_core::jwt_authn::reason;
use meshguard_core::jwt_authn::replay::RequestGuard;
use meshguard_core::jwt_authn::response::{local_reply, Refusal};
use meshguard_host::{self as host, Headers};
use proxy_wasm::types::LogLevel;

use crate::worker::Worker;

/// What the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Go on with the filter chain.
    Continue,
    /// Stop: a local reply was sent, or the request waits for keys.
    Pause,
}

impl Worker {
    /// Handles the request of the current (effective) context `ctx`.
    pub fn on_request(&mut self, ctx: u32, now_ms: u64) -> Step {
        match self.try_request(ctx, now_ms) {
            Ok(step) => step,
            Err(e) => {
                // A hostcall failed: fail closed, without trusting any header state.
                host::log(LogLevel::Error, &format!("jwt_authn: {e}"));
                self.forget(ctx);
                self.fail_closed();
                Step::Pause
            }
        }
    }

    fn try_request(&mut self, ctx: u32, now_ms: u64) -> host::Result<Step> {
        // 1. Nothing a client sent under an output header's name survives.
        for name in &self.cfg().output_headers {
            host::remove_header(Headers::Request, name)?;
        }
        let mut headers = host::headers(Headers::Request)?;
        headers.retain(|(n, _)| !self.cfg().output_headers.contains(n));
        // 2. Make sure remote keys this worker has not loaded yet are read from shared data.
        for p in self.store.remote_providers() {
            if !self.store.usable(p, now_ms) {
                self.store.sync(p)?;
            }
        }
        // 3. Decide; again (at most twice per provider) when waiting is not possible or new
        // keys turned up in shared data. `jti`s this request consumed in an earlier decision
        // (before it paused) are its own, not replays.
        let mut consumed = self.consumed.remove(&ctx).unwrap_or_default();
        let bound = 2 * self.store.keys.len() + 2;
        for _ in 0..bound {
            let waited = self.waited.get(&ctx).cloned().unwrap_or_default();
            let (hits, misses) = (self.cache.verified.hits(), self.cache.verified.misses());
            let (f_hits, f_misses) = (self.cache.failed.hits(), self.cache.failed.misses());
            let view = self.store.view(now_ms, &waited);
            let decision = decide_with(
                self.store.cfg(),
                &headers,
                &view,
                &mut self.cache,
                &mut RequestGuard {
                    guard: &mut self.replay,
                    consumed: &mut consumed,
                },
                (now_ms / 1000) as i64,
            );
            self.metrics.cache(
                self.cache.verified.hits() - hits,
                self.cache.verified.misses() - misses,
            );
            self.metrics.failed_cache(
                self.cache.failed.hits() - f_hits,
                self.cache.failed.misses() - f_misses,
            );
            match decision {
                Decision::Wait {
                    provider,
                    unknown_kid,
                } => {
                    if let Some(step) = self.wait(ctx, provider, unknown_kid, now_ms)? {
                        if !consumed.is_empty() {
                            self.consumed.insert(ctx, std::mem::take(&mut consumed));
                        }
                        return Ok(step);
                    }
                }
                Decision::Allow(outcome, allow) => {
                    self.forget(ctx);
                    self.apply_allow(&outcome, &allow)?;
                    self.metrics.allowed(outcome.as_str());
                    return Ok(Step::Continue);
                }
                Decision::Deny(outcome, refusal, _) => {
                    self.forget(ctx);
                    self.refuse(outcome, refusal);
                    return Ok(Step::Pause);
                }
            }
        }
        self.forget(ctx);
        self.fail_closed();
        Ok(Step::Pause)
    }

    /// The request needs `p`'s keys (a first load, or a refetch for an unknown `kid`). Pauses it
    /// (`Some`) while a fetch by any worker is under way; `None`: decide again now (new keys
    /// were found in shared data, or there is nothing to wait for).
    fn wait(
        &mut self,
        ctx: u32,
        p: usize,
        unknown_kid: bool,
        now_ms: u64,
    ) -> host::Result<Option<Step>> {
        let why = if unknown_kid {
            // Another worker may have stored the rotated keys already: read the shared record
            // before asking for a refetch, so this worker learns them now, not on its next tick.
            let before = self.store.progress(p, now_ms).generation;
            self.store.sync(p)?;
            if self.store.progress(p, now_ms).generation != before {
                return Ok(None);
            }
            FetchReason::UnknownKid
        } else {
            FetchReason::NeedKeys
        };
        if self.store.may_fetch(p, now_ms, why) {
            self.start_fetch(p, now_ms, why);
        }
        self.waited.entry(ctx).or_default().push(p);
        let progress = self.store.progress(p, now_ms);
        if !progress.fetch_in_progress {
            // Rate limit, back-off or a failed dispatch: decide without waiting for `p`.
            return Ok(None);
        }
        let timeout = self
            .store
            .remote(p)
            .map_or(0, |r| r.policy.cold_start_timeout_ms);
        self.waiting.add(Waiter {
            context_id: ctx,
            provider: p,
            generation: progress.generation,
            deadline_ms: now_ms.saturating_add(timeout),
        });
        self.want_tick(100);
        Ok(Some(Step::Pause))
    }

    fn apply_allow(&self, outcome: &Outcome, allow: &Allow) -> host::Result<()> {
        for (key, value) in outcome.handoff(self.cfg()) {
            host::set_property(key, &value)?;
        }
        for name in &allow.remove_headers {
            host::remove_header(Headers::Request, name)?;
        }
        if let Some(path) = &allow.new_path {
            host::set_header(Headers::Request, ":path", path.as_bytes())?;
        }
        match allow.new_cookie.as_deref() {
            Some("") => host::remove_header(Headers::Request, "cookie")?,
            Some(c) => host::set_header(Headers::Request, "cookie", c.as_bytes())?,
            None => {}
        }
        for (name, value) in &allow.set_headers {
            host::set_header(Headers::Request, name, value.as_bytes())?;
        }
        if allow.refused_claims > 0 {
            self.metrics.claims_refused(allow.refused_claims);
            host::log(
                LogLevel::Debug,
                &format!(
                    "jwt_authn: {} claim(s) not copied to headers (unsafe characters or not scalar)",
                    allow.refused_claims
                ),
            );
        }
        Ok(())
    }

    /// Refuses the current request because of an internal error (a failed hostcall).
    pub fn fail_closed(&self) {
        self.refuse(
            Outcome::Failed(reason::INTERNAL),
            Refusal::Invalid(reason::INTERNAL),
        );
    }

    /// Publishes the outcome and sends the local reply for `refusal`.
    fn refuse(&self, outcome: Outcome, refusal: Refusal) {
        for (key, value) in outcome.handoff(self.cfg()) {
            if let Err(e) = host::set_property(key, &value) {
                host::log(LogLevel::Debug, &format!("jwt_authn: {e}"));
            }
        }
        self.metrics.denied(refusal.reason());
        let reply = local_reply(&self.cfg().failure, refusal);
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if let Err(e) = host::send_local_response(reply.status, &headers, Some(&reply.body)) {
            host::log(LogLevel::Error, &format!("jwt_authn: {e}"));
        }
    }

    /// Decides again every paused request that can go on, then makes `current` the effective
    /// context again.
    pub fn resume_due(&mut self, now_ms: u64, current: u32) {
        let store = &self.store;
        let due = self
            .waiting
            .take_due(now_ms, &|p| store.progress(p, now_ms));
        if due.is_empty() {
            return;
        }
        for w in due {
            if host::set_effective_context(w.context_id).is_err() {
                self.forget(w.context_id);
                continue;
            }
            if self.on_request(w.context_id, now_ms) == Step::Continue {
                if let Err(e) = host::resume_request() {
                    host::log(LogLevel::Warn, &format!("jwt_authn: {e}"));
                }
            }
        }
        if let Err(e) = host::set_effective_context(current) {
            host::log(LogLevel::Debug, &format!("jwt_authn: {e}"));
        }
    }
}
