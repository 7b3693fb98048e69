//! Workers racing on the same key at the same instant (`Host::race`: every worker reads the
//! shared data as it was before any of them wrote), the interleaving that makes compare-and-swap
//! fail: the losers must retry, be counted as CAS retries, and the total admitted must still be
//! exactly the limit.

use meshguard_harness::Request;

use super::{host, per_key, requests_metric};

const CAS_RETRIES: &str = "meshguard_ratelimit_cas_retries_total";

fn racing_workers_admit_exactly_the_limit(workers: usize) {
    let limit = 5u64;
    let host = host(per_key(limit, 64), workers);
    let rounds = 4usize;
    let mut admitted = 0u64;
    let mut limited = 0u64;
    for _ in 0..rounds {
        let outs = host.race(|| {
            (0..workers)
                .map(|w| {
                    host.send(
                        Request::get("/")
                            .header("x-api-key", "shared-key")
                            .on_worker(w),
                    )
                })
                .collect::<Vec<_>>()
        });
        for out in outs {
            match out.unwrap().status {
                200 => admitted += 1,
                429 => limited += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    let sent = (rounds * workers) as u64;
    assert_eq!(admitted, limit.min(sent), "{workers} workers");
    assert_eq!(limited, sent - limit.min(sent));
    assert_eq!(
        host.counter(&requests_metric("allowed", "per_key")),
        admitted as i64
    );
    // In the first round every worker but one read the same record and lost its CAS.
    assert!(
        host.counter(CAS_RETRIES) >= (workers - 1) as i64,
        "{workers} workers: {} CAS retries",
        host.counter(CAS_RETRIES)
    );
    assert!(host.traps().is_empty(), "{:?}", host.traps());
}

#[test]
fn two_racing_workers_retry_cas_and_admit_exactly_the_limit() {
    racing_workers_admit_exactly_the_limit(2);
}

#[test]
fn four_racing_workers_retry_cas_and_admit_exactly_the_limit() {
    racing_workers_admit_exactly_the_limit(4);
}
