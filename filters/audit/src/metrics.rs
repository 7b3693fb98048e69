//! The filter's counters, defined once in `on_configure` (names in `meshguard_core::audit::metrics`).

use meshguard_core::audit::metrics::{self, StatusClass, DECISIONS, RECORD_OUTCOMES};
use meshguard_core::audit::sampling::Selection;
use meshguard_core::audit::stages::Decision;
use meshguard_host::{Counter, HostError};

/// Every counter of the filter.
pub(crate) struct Metrics {
    /// By (decision, status class), in `metrics::request_slot` order.
    requests: Vec<Counter>,
    /// By record outcome, in `RECORD_OUTCOMES` order.
    records: Vec<Counter>,
    errors: Option<Counter>,
}

impl Metrics {
    /// Defines every counter.
    pub(crate) fn define() -> Result<Metrics, HostError> {
        let mut requests = Vec::with_capacity(DECISIONS.len() * StatusClass::ALL.len());
        for decision in DECISIONS {
            for class in StatusClass::ALL {
                requests.push(Counter::define(&metrics::requests(decision, class))?);
            }
        }
        let records = RECORD_OUTCOMES
            .iter()
            .map(|outcome| Counter::define(&metrics::records(outcome)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Metrics {
            requests,
            records,
            errors: Some(Counter::define(metrics::ERRORS)?),
        })
    }

    /// No counters (a stream created without a configured plugin).
    pub(crate) fn none() -> Metrics {
        Metrics {
            requests: Vec::new(),
            records: Vec::new(),
            errors: None,
        }
    }

    /// Counts one finished request.
    pub(crate) fn request(&self, decision: Decision, status: Option<u16>) {
        let slot = metrics::request_slot(decision, StatusClass::of(status));
        if let Some(counter) = self.requests.get(slot) {
            counter.inc();
        }
    }

    /// Counts what happened to a record.
    pub(crate) fn record(&self, selection: Selection) {
        let outcome = selection.as_str();
        let slot = RECORD_OUTCOMES.iter().position(|o| *o == outcome);
        if let Some(counter) = slot.and_then(|i| self.records.get(i)) {
            counter.inc();
        }
    }

    /// Counts a failed hostcall.
    pub(crate) fn error(&self) {
        if let Some(counter) = self.errors {
            counter.inc();
        }
    }
}
