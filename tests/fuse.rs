//! Chain scenarios as fused-module scenarios, shared by the harness test (`bench/fused.rs`) and
//! the real-Envoy test (`e2e.rs`): a scenario whose filters are meshguard stages in chain order
//! becomes one with a single `fused` filter configured with their configs side by side, and the
//! scenario's own expectations.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The stages of the fused module, in chain order (its config keys).
pub const STAGES: [&str; 4] = ["jwt_authn", "authz", "ratelimit", "audit"];

/// Every scenario file under `tests/scenarios/<area>/`, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out = Vec::new();
    for area in std::fs::read_dir(&root).unwrap() {
        let area = area.unwrap().path();
        if !area.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&area).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json") {
                out.push(file);
            }
        }
    }
    out.sort();
    out
}

/// The scenario with its stage filters replaced by one fused filter; `None` when a filter is not
/// a meshguard stage or the stages are not in chain order.
pub fn fuse(path: &Path) -> Option<Value> {
    let mut scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let filters = scenario.get("filters")?.as_array()?.clone();
    let mut config = Map::new();
    let mut last = None;
    for f in &filters {
        let name = f.get("name")?.as_str()?;
        let position = STAGES.iter().position(|s| *s == name)?;
        if last.is_some_and(|l| l >= position) || f.get("wasm").is_some() {
            return None;
        }
        last = Some(position);
        let section = match (f.get("config"), f.get("config_file")) {
            (Some(c), _) => c.clone(),
            (None, Some(file)) => {
                let file = path.parent()?.join(file.as_str()?);
                serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?
            }
            (None, None) => json!({}),
        };
        config.insert(name.to_owned(), section);
    }
    scenario["filters"] = json!([{
        "name": "fused",
        "wasm": meshguard_wasm_artifacts::FUSED,
        "config": Value::Object(config),
    }]);
    Some(scenario)
}
