//! The per-scenario harness-vs-Envoy agreement table.

use super::replay::Comparison;

/// Prints the agreement table and the details of every disagreement and Envoy failure.
pub fn report(results: &[Comparison]) -> String {
    let mut out = String::new();
    let width = results
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    out.push_str(&format!(
        "\n{:<width$}  {:>8}  {:>14}  {:>14}  {}\n",
        "scenario", "requests", "harness ok/bad", "envoy ok/bad", "agreement"
    ));
    for c in results {
        let h_ok = c
            .rows
            .iter()
            .filter(|r| r.harness.failures.is_empty())
            .count();
        let e_ok = c
            .rows
            .iter()
            .filter(|r| r.envoy.failures.is_empty())
            .count();
        let n = c.rows.len();
        let verdict = match (c.agrees(), &c.harness_error, &c.envoy_error) {
            (true, Some(_), Some(_)) => "agree (both refused the config)".to_string(),
            (true, _, _) => "agree".to_string(),
            (false, _, _) => format!(
                "DISAGREE on {}",
                c.rows.iter().filter(|r| !r.agrees()).count().max(1)
            ),
        };
        out.push_str(&format!(
            "{:<width$}  {:>8}  {:>14}  {:>14}  {}\n",
            c.name,
            n,
            format!("{h_ok}/{}", n - h_ok),
            format!("{e_ok}/{}", n - e_ok),
            verdict
        ));
    }
    for c in results {
        if let Some(e) = &c.harness_error {
            out.push_str(&format!("\n[{}] harness error: {e}\n", c.name));
        }
        if let Some(e) = &c.envoy_error {
            out.push_str(&format!("\n[{}] envoy error: {e}\n", c.name));
        }
        for r in &c.rows {
            if !r.agrees() || !r.envoy.failures.is_empty() {
                out.push_str(&format!(
                    "\n[{}] {}: harness status {} forwarded {} failures {:?}\n{:>w$}  envoy status {} forwarded {} failures {:?}\n",
                    c.name,
                    r.request,
                    r.harness.status,
                    r.harness.forwarded,
                    r.harness.failures,
                    "",
                    r.envoy.status,
                    r.envoy.forwarded,
                    r.envoy.failures,
                    w = c.name.len() + r.request.len() + 3,
                ));
            }
        }
        for l in &c.envoy_log_errors {
            out.push_str(&format!("[{}] envoy log: {l}\n", c.name));
        }
    }
    out
}
