//! The fake clock every worker VM reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One fake clock driving `proxy_get_current_time_nanoseconds` and both WASI clocks
/// (`clock_time_get` REALTIME and MONOTONIC), so code that mixes the SDK's time with `std::time`
/// or `coarsetime` sees one consistent time. It only moves when a test moves it.
///
/// Cloning gives a handle to the same clock.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    /// Nanoseconds since the Unix epoch.
    realtime: AtomicU64,
    /// Nanoseconds since an arbitrary start; advances with realtime.
    monotonic: AtomicU64,
}

impl Clock {
    /// A clock frozen at `secs` seconds after the Unix epoch.
    pub fn fixed_unix(secs: u64) -> Clock {
        Clock::fixed_unix_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// A clock frozen at `nanos` nanoseconds after the Unix epoch.
    pub fn fixed_unix_nanos(nanos: u64) -> Clock {
        Clock {
            inner: Arc::new(ClockInner {
                realtime: AtomicU64::new(nanos),
                monotonic: AtomicU64::new(1_000_000_000),
            }),
        }
    }

    /// A clock frozen at the real time of the call.
    pub fn starting_now() -> Clock {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock::fixed_unix_nanos(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the Unix epoch (REALTIME).
    pub fn unix_nanos(&self) -> u64 {
        self.inner.realtime.load(Ordering::SeqCst)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> u64 {
        self.unix_nanos() / 1_000_000_000
    }

    /// Monotonic nanoseconds (MONOTONIC).
    pub fn monotonic_nanos(&self) -> u64 {
        self.inner.monotonic.load(Ordering::SeqCst)
    }

    /// Moves both clocks forward. Prefer [`crate::Host::advance`], which also fires the ticks and
    /// delayed HTTP-call responses that fall due.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.realtime.fetch_add(nanos, Ordering::SeqCst);
        self.inner.monotonic.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the wall clock to `secs` after the epoch. Monotonic time moves forward by the same
    /// amount when that is later, and stays put otherwise (it never goes back).
    pub fn set_unix_secs(&self, secs: u64) {
        let target = secs.saturating_mul(1_000_000_000);
        let now = self.unix_nanos();
        if target > now {
            self.advance(Duration::from_nanos(target - now));
        } else {
            self.inner.realtime.store(target, Ordering::SeqCst);
        }
    }
}

impl Default for Clock {
    /// 2023-11-14T22:13:20Z (1_700_000_000 s), so runs are reproducible.
    fn default() -> Clock {
        Clock::fixed_unix(1_700_000_000)
    }
}
