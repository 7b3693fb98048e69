//! Fake time on a [`Host`]: `advance` fires due ticks and scripted HTTP-call answers in time
//! order; ticks due at the same instant on several workers run as a shared-data race.

use std::time::Duration;

use crate::driver;
use crate::error::Result;
use crate::host::Host;
use crate::shared::lock;

impl Host {
    /// Moves the clock forward by `by`, firing, in time order, every `proxy_on_tick` (per root
    /// context per worker) and every scripted HTTP-call response or timeout that falls due.
    /// `advance(Duration::ZERO)` delivers whatever is already due.
    pub fn advance(&self, by: Duration) -> Result<()> {
        let clock = &self.inner.shared.clock;
        let target = clock
            .unix_nanos()
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        for _ in 0..1_000_000 {
            let next_tick = self.next_tick()?;
            let next_call = lock(&self.inner.shared.calls)
                .values()
                .filter_map(|c| c.due)
                .min();
            let next = [next_tick.map(|(t, _, _)| t), next_call]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= target => {
                    let now = clock.unix_nanos();
                    if t > now {
                        clock.advance(Duration::from_nanos(t - now));
                    }
                    if let Some((due, _, _)) =
                        next_tick.filter(|(due, _, _)| *due <= clock.unix_nanos())
                    {
                        // Ticks due at the same instant on several workers run at the same
                        // moment in Envoy (one thread each): they race on shared data.
                        let due_now = self.ticks_due_at(due)?;
                        self.race(|| -> Result<()> {
                            for (w, f) in due_now {
                                self.tick(w, f, due)?;
                            }
                            Ok(())
                        })?;
                    }
                    for w in 0..self.inner.workers.len() {
                        let mut worker = lock(self.inner.worker(w)?);
                        driver::deliver_ready(&self.inner, &mut worker);
                    }
                }
                _ => break,
            }
        }
        let now = clock.unix_nanos();
        if target > now {
            clock.advance(Duration::from_nanos(target - now));
        }
        for w in 0..self.inner.workers.len() {
            let mut worker = lock(self.inner.worker(w)?);
            driver::deliver_ready(&self.inner, &mut worker);
        }
        Ok(())
    }

    fn next_tick(&self) -> Result<Option<(u64, usize, usize)>> {
        let mut best: Option<(u64, usize, usize)> = None;
        for w in 0..self.inner.workers.len() {
            let worker = lock(self.inner.worker(w)?);
            for (f, vm) in worker.vms.iter().enumerate() {
                if let Some(t) = vm.store.data().next_tick.filter(|_| !vm.failed) {
                    if best.is_none_or(|(b, _, _)| t < b) {
                        best = Some((t, w, f));
                    }
                }
            }
        }
        Ok(best)
    }

    /// Every (worker, filter) whose tick is due exactly at `due`.
    fn ticks_due_at(&self, due: u64) -> Result<Vec<(usize, usize)>> {
        let mut out = Vec::new();
        for w in 0..self.inner.workers.len() {
            let worker = lock(self.inner.worker(w)?);
            for (f, vm) in worker.vms.iter().enumerate() {
                if !vm.failed && vm.store.data().next_tick == Some(due) {
                    out.push((w, f));
                }
            }
        }
        Ok(out)
    }

    /// Runs `f` as if the worker callbacks it drives ran at the same moment, each on its own
    /// thread: every worker's shared-data reads see the data as it was when `f` began, until that
    /// worker's own first write (later reads and writes see the live data; CAS is checked against
    /// it). This is the interleaving where all workers read before any writes, the one that
    /// breaks a read-then-unconditional-write. Ticks due at the same instant always run this way.
    pub fn race<T>(&self, f: impl FnOnce() -> T) -> T {
        lock(&self.inner.shared.data).open_race();
        let out = f();
        lock(&self.inner.shared.data).close_race();
        out
    }

    fn tick(&self, w: usize, f: usize, due: u64) -> Result<()> {
        let mut worker = lock(self.inner.worker(w)?);
        let Some(vm) = worker.vms.get_mut(f) else {
            return Ok(());
        };
        let state = vm.store.data_mut();
        let period = u64::from(state.tick_period_ms) * 1_000_000;
        state.next_tick = (period > 0).then(|| due + period);
        let root = state.root_ctx;
        let func = vm.exports.tick.clone();
        let _ = vm.call("proxy_on_tick", func, root, root as i32);
        let d = vm.take_pending();
        driver::apply(&self.inner, &mut worker, f, d);
        driver::deliver_ready(&self.inner, &mut worker);
        Ok(())
    }
}
