//! Offline checks of Istio `WasmPlugin` manifests, since no cluster runs here: every document
//! against the JSON Schema of the CRD (`envoy-config/istio/wasmplugin.schema.json`, derived from
//! istio/api `extensions/v1alpha1/wasm.proto`), meshguard's own rules for its manifests, and each
//! `pluginConfig` through the filter's parser.

use std::path::Path;

use serde_json::Value;

use crate::filters::Filter;
use crate::validate::{filter_named_in, validate_bytes, Selection};

/// The JSON Schema of a `WasmPlugin` resource.
pub const SCHEMA: &str = include_str!("../../istio/wasmplugin.schema.json");

/// One problem found in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `document N (WasmPlugin <name>)`.
    pub document: String,
    /// Path inside the document (`/spec/failStrategy`), empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.document, self.message)
        } else {
            write!(f, "{} {}: {}", self.document, self.path, self.message)
        }
    }
}

/// Checks every `WasmPlugin` document in a YAML file. Documents of other kinds are ignored;
/// `Ok(None)` when the file holds no `WasmPlugin`.
pub fn check_file(path: &Path) -> Result<Option<Vec<Problem>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_yaml(&text)
}

/// Checks every `WasmPlugin` document in `yaml`; `Ok(None)` when there is none.
pub fn check_yaml(yaml: &str) -> Result<Option<Vec<Problem>>, String> {
    let schema: Value =
        serde_json::from_str(SCHEMA).map_err(|e| format!("WasmPlugin schema: {e}"))?;
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| format!("WasmPlugin schema: {e}"))?;
    let mut problems = Vec::new();
    let mut seen = 0;
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let value: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("document {}: not YAML: {e}", i + 1))?;
        if value.get("kind").and_then(Value::as_str) != Some("WasmPlugin") {
            continue;
        }
        seen += 1;
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let document = format!("document {} (WasmPlugin {name})", i + 1);
        let problem = |path: &str, message: String| Problem {
            document: document.clone(),
            path: path.to_string(),
            message,
        };
        for error in validator.iter_errors(&value) {
            problems.push(problem(
                &error.instance_path().to_string(),
                error.to_string(),
            ));
        }
        problems.extend(
            meshguard_rules(&value)
                .into_iter()
                .map(|(p, m)| problem(p, m)),
        );
        // The plugin config, through the filter's own parser.
        let single = serde_norway::to_string(&value).map_err(|e| e.to_string())?;
        match validate_bytes(Selection::All, &document, single.as_bytes()) {
            Ok(findings) => {
                for finding in findings {
                    if let Err(errors) = finding.result {
                        for e in errors.0 {
                            let at = if e.path.is_empty() {
                                "/spec/pluginConfig".to_string()
                            } else {
                                format!("/spec/pluginConfig ({})", e.path)
                            };
                            problems.push(problem(&at, e.message));
                        }
                    }
                }
            }
            Err(e) => problems.push(problem("/spec/url", e.to_string())),
        }
    }
    if seen == 0 {
        return Ok(None);
    }
    Ok(Some(problems))
}

/// Where Istio puts a plugin among a workload's filters: phase (`AUTHN` < `AUTHZ` < `STATS` <
/// unspecified, which goes last), then higher `priority` first.
fn position(spec: &Value) -> (u8, i64) {
    let phase = match spec.get("phase").and_then(Value::as_str) {
        Some("AUTHN") => 0,
        Some("AUTHZ") => 1,
        Some("STATS") => 2,
        _ => 3,
    };
    let priority = spec.get("priority").and_then(Value::as_i64).unwrap_or(0);
    (phase, -priority)
}

/// A meshguard plugin of one workload: the filter, its [`position`] and its document label.
type Placed<'a> = (Filter, (u8, i64), &'a str);

/// Checks the meshguard `WasmPlugin`s of a set of manifests together, per workload (same
/// namespace and same `selector`/`targetRefs`): the four filters must come in chain order
/// (jwt_authn → authz → ratelimit → audit, by phase and priority), and the fused module stands in
/// for the four — alone, never with one of them (a stage would run twice). `documents` are the
/// `WasmPlugin` documents with a label each (file and document number).
pub fn check_set(documents: &[(String, Value)]) -> Vec<Problem> {
    use std::collections::BTreeMap;
    let mut workloads: BTreeMap<String, Vec<Placed<'_>>> = BTreeMap::new();
    for (label, doc) in documents {
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let url = spec.get("url").and_then(Value::as_str).unwrap_or("");
        let Some(filter) = filter_named_in(url) else {
            continue;
        };
        let workload = format!(
            "namespace {} {}",
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default"),
            match (spec.get("selector"), spec.get("targetRefs")) {
                (Some(s), _) => format!("selector {s}"),
                (None, Some(t)) => format!("targetRefs {t}"),
                (None, None) => "(every workload)".to_string(),
            }
        );
        workloads
            .entry(workload)
            .or_default()
            .push((filter, position(&spec), label.as_str()));
    }
    let mut problems = Vec::new();
    for (workload, mut plugins) in workloads {
        let fused: Vec<&str> = plugins
            .iter()
            .filter(|p| p.0 == Filter::Fused)
            .map(|p| p.2)
            .collect();
        let chain: Vec<&str> = plugins
            .iter()
            .filter(|p| p.0 != Filter::Fused)
            .map(|p| p.2)
            .collect();
        if fused.len() > 1 || (!fused.is_empty() && !chain.is_empty()) {
            problems.push(Problem {
                document: fused.first().copied().unwrap_or("?").to_string(),
                path: String::new(),
                message: format!(
                    "{workload}: the fused module runs jwt_authn, authz, ratelimit and audit itself; \
                     use it instead of the separate filters, not with them or twice (also here: {})",
                    fused.iter().chain(chain.iter()).skip(1).copied().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        plugins.retain(|p| p.0 != Filter::Fused);
        // Stable sort by where Istio puts them; chain order must survive it.
        plugins.sort_by_key(|p| p.1);
        for pair in plugins.windows(2) {
            if let [a, b] = pair {
                if a.0 > b.0 || a.1 == b.1 {
                    problems.push(Problem {
                        document: b.2.to_string(),
                        path: "/spec/priority".to_string(),
                        message: format!(
                            "{workload}: {} must run before {} (chain order jwt_authn → authz → \
                             ratelimit → audit); set phase/priority so it does",
                            b.0.min(a.0),
                            b.0.max(a.0)
                        ),
                    });
                }
            }
        }
    }
    problems
}

/// The `WasmPlugin` documents of `yaml`, each with its label (`<name> document N`).
pub fn wasmplugin_documents(name: &str, yaml: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let value: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("{name}: document {}: not YAML: {e}", i + 1))?;
        if value.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
            let plugin = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            out.push((
                format!("{name}: document {} (WasmPlugin {plugin})", i + 1),
                value,
            ));
        }
    }
    Ok(out)
}

/// Writes `hex` (a manifest digest from `meshguard oci`) into the `sha256:` field of every
/// `WasmPlugin` document of `yaml` whose `url` names `filter`'s image; returns the new text and
/// how many documents were pinned. Comments and layout are kept (a line edit, not a re-dump).
pub fn pin(yaml: &str, filter: Filter, hex: &str) -> (String, usize) {
    let mut out = Vec::new();
    let mut pinned = 0;
    let lines: Vec<&str> = yaml.split_inclusive('\n').collect();
    let mut start = 0;
    while start < lines.len() {
        let end = lines
            .iter()
            .skip(start + 1)
            .position(|l| l.trim_end() == "---")
            .map_or(lines.len(), |p| p + start + 1);
        let doc = lines.get(start..end).unwrap_or_default();
        let names_filter = doc.iter().any(|l| {
            let t = l.trim_start();
            t.starts_with("url:") && filter_named_in(t) == Some(filter)
        });
        let is_plugin = doc.iter().any(|l| l.trim() == "kind: WasmPlugin");
        for line in doc {
            let t = line.trim_start();
            if names_filter && is_plugin && t.starts_with("sha256:") {
                let indent = &line[..line.len() - t.len()];
                // Quoted: a digest of digits (and one `e`) would otherwise be a YAML number.
                out.push(format!("{indent}sha256: \"{hex}\"\n"));
                pinned += 1;
            } else {
                out.push((*line).to_string());
            }
        }
        start = end;
    }
    (out.concat(), pinned)
}

/// What meshguard requires of its own manifests beyond the CRD schema.
fn meshguard_rules(doc: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
    let url = spec.get("url").and_then(Value::as_str).unwrap_or("");
    let sha = spec.get("sha256").and_then(Value::as_str).unwrap_or("");
    if filter_named_in(url).is_none() {
        out.push((
            "/spec/url",
            format!("{url:?} names no meshguard filter image"),
        ));
    }
    // Production manifests pin the image: by `sha256`, by `@sha256:` in the url, or both (then
    // they must agree, as Istio checks).
    let url_digest = url.split_once("@sha256:").map(|(_, d)| d);
    match (url_digest, sha.is_empty()) {
        (None, true) => out.push((
            "/spec/sha256",
            "not pinned: set sha256 to the manifest digest printed by `meshguard oci`".to_string(),
        )),
        (None, false) if sha.bytes().all(|b| b == b'0') => out.push((
            "/spec/sha256",
            "placeholder digest: pin it with `meshguard oci <filter> <wasm> <dir> --pin <this file>`"
                .to_string(),
        )),
        (Some(d), false) if d != sha => out.push((
            "/spec/sha256",
            format!("does not match the digest in url ({d})"),
        )),
        _ => {}
    }
    match spec.get("failStrategy").and_then(Value::as_str) {
        Some("FAIL_CLOSE") | None => {}
        Some(other) => out.push((
            "/spec/failStrategy",
            format!(
                "{other} lets requests bypass an auth filter; meshguard manifests use FAIL_CLOSE"
            ),
        )),
    }
    if spec.get("phase").is_none() {
        // The fused module orders its stages itself; the phase still places it among Istio's
        // own filters (before Istio's authorization, like jwt_authn alone).
        let why = if filter_named_in(url) == Some(Filter::Fused) {
            "missing: the fused module runs jwt_authn → authz → ratelimit → audit itself, but its \
             phase places it among Istio's filters (meshguard-fused.yaml uses AUTHN)"
        } else {
            "missing: the filters depend on their order (jwt_authn → authz → ratelimit → audit, \
             or one fused module in their place)"
        };
        out.push(("/spec/phase", why.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: x, namespace: default}
spec:
  selector: {matchLabels: {app: a}}
  url: oci://registry.example/meshguard-audit:0.1.0
  sha256: "1234567890123456789012345678901234567890123456789012345678901234"
  phase: STATS
  failStrategy: FAIL_CLOSE
  pluginConfig: {}
"#;

    const SHA: &str =
        "sha256: \"1234567890123456789012345678901234567890123456789012345678901234\"";

    fn schema_problems(yaml: &str) -> Vec<String> {
        check_yaml(yaml)
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|p| !p.path.starts_with("/spec/pluginConfig"))
            .map(|p| p.to_string())
            .collect()
    }

    /// The CI check of the committed manifests: every `WasmPlugin` under `envoy-config/istio`
    /// satisfies the CRD schema and meshguard's rules, and its `pluginConfig` passes the
    /// filter's parser; every filter, and the fused module, has one.
    #[test]
    fn committed_manifests_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../istio");
        let mut covered = std::collections::BTreeSet::new();
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("fused")).unwrap());
        for entry in files {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if path.extension().is_none_or(|e| e != "yaml") || !text.contains("kind: WasmPlugin") {
                continue;
            }
            let problems = check_file(&path).unwrap().unwrap();
            assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
            for f in Filter::ALL {
                if text.contains(&format!("/{}:", f.package())) {
                    covered.insert(f);
                }
            }
        }
        assert_eq!(
            covered.len(),
            Filter::ALL.len(),
            "a filter has no WasmPlugin manifest: {covered:?}"
        );
        // Applied together (`kubectl apply -f envoy-config/istio/`), the four run in chain
        // order; the fused manifest, applied instead of them (`istio/fused/`), is alone.
        let set = |files: &[std::path::PathBuf]| {
            let mut docs = Vec::new();
            for path in files {
                let text = std::fs::read_to_string(path).unwrap();
                docs.extend(wasmplugin_documents(&path.display().to_string(), &text).unwrap());
            }
            check_set(&docs)
        };
        let four: Vec<_> = ["jwt-authn", "authz", "ratelimit", "audit"]
            .iter()
            .map(|f| dir.join(format!("meshguard-{f}.yaml")))
            .collect();
        assert_eq!(set(&four), Vec::<Problem>::new());
        assert_eq!(
            set(&[dir.join("fused/meshguard-fused.yaml")]),
            Vec::<Problem>::new()
        );
    }

    fn plugin(filter: &str, phase: &str, priority: i64) -> (String, Value) {
        let yaml = GOOD
            .replace("meshguard-audit", &format!("meshguard-{filter}"))
            .replace(
                "phase: STATS",
                &format!("phase: {phase}\n  priority: {priority}"),
            );
        wasmplugin_documents(filter, &yaml).unwrap().remove(0)
    }

    /// The set check: chain order by phase and priority; the fused module alone.
    #[test]
    fn plugins_of_one_workload_come_in_chain_order_or_fused_alone() {
        let chain = [
            plugin("jwt-authn", "AUTHN", 100),
            plugin("authz", "AUTHZ", 100),
            plugin("ratelimit", "AUTHZ", 10),
            plugin("audit", "STATS", 100),
        ];
        assert_eq!(check_set(&chain), Vec::<Problem>::new());
        // ratelimit before authz: higher priority in the same phase runs first.
        let mut swapped = chain.clone();
        swapped[2] = plugin("ratelimit", "AUTHZ", 200);
        let problems = check_set(&swapped);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("authz must run before ratelimit"),
            "{problems:?}"
        );
        // Same phase and priority: Istio's order between them is not defined.
        let mut tie = chain.clone();
        tie[2] = plugin("ratelimit", "AUTHZ", 100);
        assert_eq!(check_set(&tie).len(), 1);
        // The fused module alone is fine; with one of the four on the same workload it is not.
        let fused = plugin("fused", "AUTHN", 100);
        assert_eq!(
            check_set(std::slice::from_ref(&fused)),
            Vec::<Problem>::new()
        );
        let problems = check_set(&[fused.clone(), chain[3].clone()]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .message
            .contains("instead of the separate filters"));
        assert_eq!(check_set(&[fused.clone(), fused.clone()]).len(), 1);
        // On another workload, the four and the fused module do not meet.
        let mut other = fused.clone();
        other.1["spec"]["selector"]["matchLabels"]["app"] = "b".into();
        let mut set = chain.to_vec();
        set.push(other);
        assert_eq!(check_set(&set), Vec::<Problem>::new());
    }

    #[test]
    fn schema_accepts_a_complete_manifest() {
        assert_eq!(schema_problems(GOOD), Vec::<String>::new());
    }

    #[test]
    fn schema_rejects_what_the_crd_rejects() {
        let cases = [
            (SHA, "sha256: ABC"),
            (
                SHA,
                "sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"",
            ),
            // Unquoted, this digest is a YAML number, not the string the CRD wants.
            (
                SHA,
                "sha256: 1234567890123456789012345678901234567890123456789012345678901234",
            ),
            ("phase: STATS", "phase: LATE"),
            ("failStrategy: FAIL_CLOSE", "failStrategy: FAIL_OPEN"),
            (
                "failStrategy: FAIL_CLOSE",
                "failStrategy: FAIL_CLOSE\n  targetRefs: [{kind: Gateway, name: g}]",
            ),
            ("pluginConfig: {}", "pluginConfig: {}\n  plugin_config: {}"),
            (
                "pluginConfig: {}",
                "pluginConfig: {}\n  vmConfig: {env: [{name: A, valueFrom: HOST, value: b}]}",
            ),
            (
                "pluginConfig: {}",
                "pluginConfig: {}\n  match: [{ports: [{number: 70000}]}]",
            ),
        ];
        for (from, to) in cases {
            assert!(GOOD.contains(from));
            let bad = GOOD.replace(from, to);
            assert!(!schema_problems(&bad).is_empty(), "accepted:\n{bad}");
        }
    }

    #[test]
    fn pin_rewrites_only_the_named_filters_digest() {
        let two = format!(
            "{GOOD}---\n{}",
            GOOD.replace("meshguard-audit", "meshguard-authz")
        );
        let hex = "ab".repeat(32);
        let (text, n) = pin(&two, Filter::Authz, &hex);
        assert_eq!(n, 1);
        let (first, second) = text.split_once("---\n").unwrap();
        assert!(first.contains("sha256: \"1234"));
        assert!(second.contains(&format!("  sha256: \"{hex}\"\n")));
        assert_eq!(schema_problems(&text), Vec::<String>::new());
    }

    #[test]
    fn url_and_sha256_must_agree() {
        let bad = GOOD.replace(
            "meshguard-audit:0.1.0",
            "meshguard-audit@sha256:1111111111111111111111111111111111111111111111111111111111111111",
        );
        let problems = schema_problems(&bad);
        assert!(
            problems.iter().any(|p| p.contains("does not match")),
            "{problems:?}"
        );
    }

    /// A fused manifest: its pluginConfig goes through the fused parser (section errors carry
    /// the section), the phase rule names the fused module, and `pin` finds it by its image.
    #[test]
    fn fused_manifests_are_checked_as_fused() {
        let fused = GOOD
            .replace("meshguard-audit", "meshguard-fused")
            .replace("phase: STATS", "phase: AUTHN")
            .replace(
                "pluginConfig: {}",
                "pluginConfig:\n    audit: {}\n    ratelimit: {rules: [{name: r, limits: x}]}",
            );
        let problems = check_yaml(&fused).unwrap().unwrap();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(
            problems[0].path,
            "/spec/pluginConfig (ratelimit.rules[0].limits)"
        );
        let good = fused.replace("\n    ratelimit: {rules: [{name: r, limits: x}]}", "");
        let problems = check_yaml(&good).unwrap().unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        let no_phase = good.replace("  phase: AUTHN\n", "");
        let problems = schema_problems(&no_phase);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("/spec/phase") && p.contains("fused module")),
            "{problems:?}"
        );
        let (_, n) = pin(&good, Filter::Fused, &"cd".repeat(32));
        assert_eq!(n, 1);
        let (_, n) = pin(&good, Filter::Audit, &"cd".repeat(32));
        assert_eq!(n, 0);
    }
}
