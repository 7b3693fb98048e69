//! `jti` replay detection on the proxy's shared data (the logic is
//! [`meshguard_core::jwt_authn::replay`]), and its counters:
//! - `meshguard_jwt_authn_jti_replay_total_result=.=<fresh|replayed|full|failed|skipped>;.;`
//! - `meshguard_jwt_authn_jti_replay_cas_conflicts_total`
//!
//! Defined only when some provider has `jti_replay`. Refusals are also counted in
//! `requests_total` with reasons `replayed`, `replay_cache_full`, `replay_check_failed`.

use meshguard_core::jwt::VerifiedToken;
use meshguard_core::jwt_authn::replay::{
    prepare, JtiStore, ReplayError, ReplayGuard, ReplaySettings, StoreGuard,
};
use meshguard_core::jwt_authn::JwtAuthnConfig;
use meshguard_host::{self as host, CasOutcome, Counter};

const PREFIX: &str = "meshguard_jwt_authn_jti_replay";

/// Shared data through the host.
#[derive(Debug, Default)]
pub struct HostJtiStore;

impl JtiStore for HostJtiStore {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ReplayError> {
        match host::shared_data(key) {
            Ok((Some(v), Some(cas))) => Ok(Some((v, cas))),
            // Envoy answers an existing empty value as (None, Some(cas)).
            Ok((None, Some(cas))) => Ok(Some((Vec::new(), cas))),
            Ok((_, None)) => Ok(None),
            Err(_) => Err(ReplayError::Store("get")),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, ReplayError> {
        match host::set_shared_data(key, value, cas) {
            Ok(CasOutcome::Written) => Ok(true),
            Ok(CasOutcome::Mismatch) => Ok(false),
            Err(_) => Err(ReplayError::Store("set")),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    fresh: Counter,
    replayed: Counter,
    full: Counter,
    failed: Counter,
    skipped: Counter,
    conflicts: Counter,
}

/// The replay guard of one worker, counting what it finds.
#[derive(Debug, Default)]
pub struct Replay {
    guard: StoreGuard<HostJtiStore>,
    counters: Option<Counters>,
}

impl Replay {
    /// At configure time: when some provider has `jti_replay`, defines the counters and creates
    /// every absent bucket (so later writes are all compare-and-swap).
    pub fn configure(cfg: &JwtAuthnConfig) -> Result<Replay, String> {
        let settings: Vec<&ReplaySettings> = cfg
            .providers
            .iter()
            .filter_map(|p| p.replay.as_ref())
            .collect();
        let mut out = Replay::default();
        if settings.is_empty() {
            return Ok(out);
        }
        let def = |r: &str| {
            Counter::define(&format!("{PREFIX}_total_result=.={r};.;")).map_err(|e| e.to_string())
        };
        out.counters = Some(Counters {
            fresh: def("fresh")?,
            replayed: def("replayed")?,
            full: def("full")?,
            failed: def("failed")?,
            skipped: def("skipped")?,
            conflicts: Counter::define(&format!("{PREFIX}_cas_conflicts_total"))
                .map_err(|e| e.to_string())?,
        });
        for s in settings {
            prepare(&mut out.guard.store, s).map_err(|e| format!("jti_replay: {e}"))?;
        }
        Ok(out)
    }
}

impl ReplayGuard for Replay {
    fn check(
        &mut self,
        p: usize,
        s: &ReplaySettings,
        token: &VerifiedToken,
        now: i64,
    ) -> Result<(), &'static str> {
        let before = self.guard.stats;
        let result = self.guard.check(p, s, token, now);
        if let Some(c) = self.counters {
            let after = self.guard.stats;
            let pairs = [
                (after.fresh.saturating_sub(before.fresh), c.fresh),
                (after.replayed.saturating_sub(before.replayed), c.replayed),
                (after.full.saturating_sub(before.full), c.full),
                (after.failed.saturating_sub(before.failed), c.failed),
                (after.skipped.saturating_sub(before.skipped), c.skipped),
                (
                    after.conflicts.saturating_sub(before.conflicts),
                    c.conflicts,
                ),
            ];
            for (n, counter) in pairs {
                (0..n).for_each(|_| counter.inc());
            }
        }
        result
    }
}
