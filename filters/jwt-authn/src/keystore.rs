//! The worker's view of every provider's keys: static keys from config, and remote keys mirrored
//! from the process-wide shared-data record (read on tick and whenever a request finds no usable
//! keys; parsed only when the record's generation changes).

use std::rc::Rc;

use meshguard_core::jwt::KeySet;
use meshguard_core::jwt_authn::decide::{KeyView, ProviderKeys};
use meshguard_core::jwt_authn::jwks::{
    freshness, try_acquire, FetchReason, JwksRecord, KeyProgress,
};
use meshguard_core::jwt_authn::{JwtAuthnConfig, KeySource, RemoteKeys};
use meshguard_host::{self as host, CasOutcome};
use proxy_wasm::types::LogLevel;

/// One provider's keys as this worker knows them.
#[derive(Debug)]
pub enum LocalKeys {
    /// Keys from config (in [`JwtAuthnConfig`]).
    Static,
    /// Keys mirrored from shared data.
    Remote(Box<RemoteLocal>),
}

/// A remote provider's keys as this worker knows them.
#[derive(Debug)]
pub struct RemoteLocal {
    /// Source and timings.
    pub remote: RemoteKeys,
    /// Last record read (or written) by this worker.
    pub record: JwksRecord,
    /// Keys parsed from `record.jwks`, with the generation they were parsed at.
    pub parsed: Option<(u64, KeySet)>,
}

/// Every provider's keys.
#[derive(Debug)]
pub struct KeyStore {
    cfg: Rc<JwtAuthnConfig>,
    /// Per provider, same order as the config.
    pub keys: Vec<LocalKeys>,
}

impl KeyStore {
    /// Static keys ready, remote ones not read yet.
    pub fn new(cfg: Rc<JwtAuthnConfig>) -> Self {
        let keys = cfg
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Static(_) => LocalKeys::Static,
                KeySource::Remote(r) => LocalKeys::Remote(Box::new(RemoteLocal {
                    remote: r.clone(),
                    record: JwksRecord::default(),
                    parsed: None,
                })),
            })
            .collect();
        KeyStore { cfg, keys }
    }

    /// The config.
    pub fn cfg(&self) -> &JwtAuthnConfig {
        &self.cfg
    }

    /// Indices of remote providers.
    pub fn remote_providers(&self) -> Vec<usize> {
        (0..self.keys.len())
            .filter(|p| matches!(self.keys.get(*p), Some(LocalKeys::Remote(_))))
            .collect()
    }

    /// The remote source of `p`.
    pub fn remote(&self, p: usize) -> Option<&RemoteKeys> {
        match self.keys.get(p) {
            Some(LocalKeys::Remote(r)) => Some(&r.remote),
            _ => None,
        }
    }

    /// The record this worker last saw for `p`.
    pub fn record(&self, p: usize) -> Option<&JwksRecord> {
        match self.keys.get(p) {
            Some(LocalKeys::Remote(r)) => Some(&r.record),
            _ => None,
        }
    }

    /// Reads `p`'s shared record and adopts it.
    pub fn sync(&mut self, p: usize) -> host::Result<()> {
        let Some(remote) = self.remote(p) else {
            return Ok(());
        };
        let (bytes, _) = host::shared_data(&remote.shared_data_key)?;
        let rec = JwksRecord::from_bytes(bytes.as_deref());
        self.adopt(p, rec);
        Ok(())
    }

    /// Takes `rec` as `p`'s record (and every provider sharing its key), parsing new keys.
    pub fn adopt(&mut self, p: usize, rec: JwksRecord) {
        let Some(key) = self.remote(p).map(|r| r.shared_data_key.clone()) else {
            return;
        };
        for local in &mut self.keys {
            let LocalKeys::Remote(r) = local else {
                continue;
            };
            let RemoteLocal {
                remote,
                record,
                parsed,
            } = r.as_mut();
            if remote.shared_data_key != key {
                continue;
            }
            let changed = parsed.as_ref().map(|(g, _)| *g) != Some(rec.fetched_at_ms);
            if changed {
                *parsed = match rec.jwks.as_deref().map(str::as_bytes) {
                    Some(doc) => match KeySet::from_jwks_json(doc) {
                        Ok(keys) => Some((rec.fetched_at_ms, keys)),
                        Err(e) => {
                            host::log(
                                LogLevel::Warn,
                                &format!("jwt_authn: shared JWKS unusable: {e}"),
                            );
                            None
                        }
                    },
                    None => None,
                };
            }
            *record = rec.clone();
        }
    }

    /// Creates every remote provider's shared record that does not exist yet (at configure
    /// time, before this worker can tick or see a request), so that every later lease or write
    /// is a real compare-and-swap: a record that does not exist has no CAS value, and a write
    /// to it would be unconditional, letting two workers both take the fetch lease.
    ///
    /// The ABI has no atomic "create if absent": two workers configuring at the same moment may
    /// both write the empty record, which is harmless as long as neither holds a lease yet.
    pub fn create_records(&self) -> host::Result<usize> {
        let mut created = 0;
        for p in self.remote_providers() {
            if let Some(key) = self.remote(p).map(|r| r.shared_data_key.as_str()) {
                if create_record(key)? {
                    created += 1;
                }
            }
        }
        Ok(created)
    }

    /// Read-modify-write of `p`'s record with CAS retries. `f` returns the new record, or `None`
    /// to leave it. Returns what was written.
    pub fn update(
        &mut self,
        p: usize,
        f: &dyn Fn(&JwksRecord) -> Option<JwksRecord>,
    ) -> host::Result<Option<JwksRecord>> {
        let Some(key) = self.remote(p).map(|r| r.shared_data_key.clone()) else {
            return Ok(None);
        };
        for _ in 0..16 {
            let (bytes, cas) = host::shared_data(&key)?;
            let Some(cas) = cas else {
                // Not created at configure time (cannot happen while this VM lives, as shared
                // data outlives it): create it, then read it back for a CAS value. Never write
                // a lease unconditionally.
                create_record(&key)?;
                continue;
            };
            let current = JwksRecord::from_bytes(bytes.as_deref());
            let Some(next) = f(&current) else {
                self.adopt(p, current);
                return Ok(None);
            };
            if host::set_shared_data(&key, &next.to_bytes(), Some(cas))? == CasOutcome::Written {
                self.adopt(p, next.clone());
                return Ok(Some(next));
            }
        }
        host::log(
            LogLevel::Warn,
            "jwt_authn: shared JWKS record contended, giving up this round",
        );
        Ok(None)
    }

    /// Where `p`'s keys stand, for the wait list.
    pub fn progress(&self, p: usize, now_ms: u64) -> KeyProgress {
        match self.record(p) {
            Some(r) => KeyProgress {
                generation: r.fetched_at_ms,
                fetch_in_progress: r.lease_until_ms > now_ms,
            },
            None => KeyProgress {
                generation: 0,
                fetch_in_progress: false,
            },
        }
    }

    /// Whether, by the record this worker last read, a fetch for `why` may start now (no lease
    /// held, no back-off, the unknown-`kid` rate limit allows it).
    pub fn may_fetch(&self, p: usize, now_ms: u64, why: FetchReason) -> bool {
        match (self.record(p), self.remote(p)) {
            (Some(rec), Some(r)) => try_acquire(rec, &r.policy, now_ms, why).is_some(),
            _ => false,
        }
    }

    /// Whether `p` has usable keys now.
    pub fn usable(&self, p: usize, now_ms: u64) -> bool {
        match self.keys.get(p) {
            Some(LocalKeys::Static) => true,
            Some(LocalKeys::Remote(r)) => {
                r.parsed.is_some() && freshness(&r.record, &r.remote.policy, now_ms).usable()
            }
            None => false,
        }
    }

    /// A view for one request; `waited` lists providers it already waited for (never twice).
    pub fn view<'a>(&'a self, now_ms: u64, waited: &'a [usize]) -> View<'a> {
        View {
            store: self,
            now_ms,
            waited,
        }
    }
}

/// Writes an empty record under `key` when none exists; true if it did.
fn create_record(key: &str) -> host::Result<bool> {
    if host::shared_data(key)?.1.is_some() {
        return Ok(false);
    }
    host::set_shared_data(key, &JwksRecord::default().to_bytes(), None)?;
    Ok(true)
}

/// [`KeyView`] of one request.
pub struct View<'a> {
    store: &'a KeyStore,
    now_ms: u64,
    waited: &'a [usize],
}

impl KeyView for View<'_> {
    fn keys(&self, p: usize) -> ProviderKeys<'_> {
        let waited = self.waited.contains(&p);
        match self.store.keys.get(p) {
            Some(LocalKeys::Static) => match self.store.cfg.providers.get(p).map(|x| &x.keys) {
                Some(KeySource::Static(keys)) => ProviderKeys::Ready {
                    keys,
                    generation: 0,
                    may_refetch: false,
                },
                _ => ProviderKeys::Unavailable,
            },
            Some(LocalKeys::Remote(r)) => {
                let RemoteLocal {
                    remote,
                    record,
                    parsed,
                } = r.as_ref();
                let policy = &remote.policy;
                match parsed {
                    Some((generation, keys)) if freshness(record, policy, self.now_ms).usable() => {
                        ProviderKeys::Ready {
                            keys,
                            generation: *generation,
                            // The filter reads the shared record before it refetches.
                            may_refetch: !waited,
                        }
                    }
                    _ if waited => ProviderKeys::Unavailable,
                    _ if record.lease_until_ms > self.now_ms
                        || try_acquire(record, policy, self.now_ms, FetchReason::NeedKeys)
                            .is_some() =>
                    {
                        ProviderKeys::Pending
                    }
                    _ => ProviderKeys::Unavailable,
                }
            }
            None => ProviderKeys::Unavailable,
        }
    }
}
