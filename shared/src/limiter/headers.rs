//! Rate-limit response headers.
//!
//! - IETF `RateLimit-Policy` and `RateLimit` as structured-field Lists
//!   (draft-ietf-httpapi-ratelimit-headers-09 to -11; RFC 9651 syntax), one item per limit of the
//!   reported rule, named after the rule (`<rule>` for a single limit, `<rule>.<i>` for several):
//!   `RateLimit-Policy: "per_user";q=100;w=60` (quota, window in seconds; for a token bucket the
//!   window is the time to refill an empty bucket) and `RateLimit: "per_user";r=42;t=17`
//!   (remaining, seconds until the remaining quota grows; 0 when full).
//! - Envoy's `DRAFT_VERSION_03` names: `x-ratelimit-limit: 100, 100;w=60`,
//!   `x-ratelimit-remaining: 42`, `x-ratelimit-reset: 17`, for the tightest limit (the first list
//!   element is its quota, then every limit's quota policy).
//! - `Retry-After` (seconds) on every limited reply: when all limits would admit again.

use super::algorithm::Quota;
use super::config::ResponseConfig;

/// Names of every header this module may set (so the filter can drop upstream copies).
pub const HEADER_NAMES: [&str; 6] = [
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

fn policy_name(rule: &str, index: usize, count: usize) -> String {
    if count == 1 {
        rule.to_owned()
    } else {
        format!("{rule}.{index}")
    }
}

/// Headers for a response: `limited` adds `Retry-After`; the rest follows `config`. `quotas`
/// are those of the reported rule (empty when the counters failed: only `Retry-After: 1`).
pub fn rate_limit_headers(
    config: &ResponseConfig,
    rule: &str,
    quotas: &[Quota],
    limited: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if limited {
        let wait = quotas
            .iter()
            .filter(|q| q.remaining == 0)
            .map(|q| q.retry_after_ms)
            .max()
            .unwrap_or(0);
        out.push(("retry-after", seconds(wait).max(1).to_string()));
    }
    if quotas.is_empty() {
        return out;
    }
    if config.ietf_headers {
        let n = quotas.len();
        let policies: Vec<String> = quotas
            .iter()
            .enumerate()
            .map(|(i, q)| {
                format!(
                    "\"{}\";q={};w={}",
                    policy_name(rule, i, n),
                    q.limit,
                    seconds(q.window_ms).max(1)
                )
            })
            .collect();
        let current: Vec<String> = quotas
            .iter()
            .enumerate()
            .map(|(i, q)| {
                format!(
                    "\"{}\";r={};t={}",
                    policy_name(rule, i, n),
                    q.remaining,
                    seconds(q.reset_ms)
                )
            })
            .collect();
        out.push(("ratelimit-policy", policies.join(", ")));
        out.push(("ratelimit", current.join(", ")));
    }
    if config.x_ratelimit_headers {
        let tightest = quotas
            .iter()
            .min_by_key(|q| (q.remaining, std::cmp::Reverse(q.reset_ms)));
        if let Some(t) = tightest {
            let mut limit = t.limit.to_string();
            for q in quotas {
                limit.push_str(&format!(", {};w={}", q.limit, seconds(q.window_ms).max(1)));
            }
            out.push(("x-ratelimit-limit", limit));
            out.push(("x-ratelimit-remaining", t.remaining.to_string()));
            out.push(("x-ratelimit-reset", seconds(t.reset_ms).to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn cfg(ietf: bool, x: bool) -> ResponseConfig {
        ResponseConfig {
            status: 429,
            body: String::new(),
            ietf_headers: ietf,
            x_ratelimit_headers: x,
            headers_on_allowed: false,
        }
    }

    fn q(limit: u32, remaining: u32, reset_ms: u64, retry_after_ms: u64, window_ms: u64) -> Quota {
        Quota {
            limit,
            remaining,
            reset_ms,
            retry_after_ms,
            window_ms,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn limited_reply_with_two_limits() {
        let quotas = [
            q(100, 0, 1500, 1500, 60_000),
            q(1000, 880, 400, 0, 3_600_000),
        ];
        let h = rate_limit_headers(&cfg(true, true), "per_user", &quotas, true);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("retry-after"), Some("2"));
        assert_eq!(
            get("ratelimit-policy"),
            Some("\"per_user.0\";q=100;w=60, \"per_user.1\";q=1000;w=3600")
        );
        assert_eq!(
            get("ratelimit"),
            Some("\"per_user.0\";r=0;t=2, \"per_user.1\";r=880;t=1")
        );
        assert_eq!(get("x-ratelimit-limit"), Some("100, 100;w=60, 1000;w=3600"));
        assert_eq!(get("x-ratelimit-remaining"), Some("0"));
        assert_eq!(get("x-ratelimit-reset"), Some("2"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn allowed_response_single_limit_ietf_only() {
        let h = rate_limit_headers(&cfg(true, false), "r", &[q(10, 10, 0, 0, 500)], false);
        assert_eq!(
            h,
            vec![
                ("ratelimit-policy", "\"r\";q=10;w=1".to_owned()),
                ("ratelimit", "\"r\";r=10;t=0".to_owned())
            ]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn failure_reply_has_only_retry_after() {
        let h = rate_limit_headers(&cfg(true, true), "r", &[], true);
        assert_eq!(h, vec![("retry-after", "1".to_owned())]);
        assert!(rate_limit_headers(&cfg(false, false), "r", &[q(1, 1, 0, 0, 1)], false).is_empty());
    }
}
