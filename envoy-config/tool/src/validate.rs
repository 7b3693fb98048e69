//! `meshguard validate`: finds the filter configs in a file and parses each with the filter's
//! own parser (the one `on_configure` runs), so an error here is exactly the error the filter
//! would log before Envoy refuses the config.
//!
//! Accepted inputs:
//! - a plugin config JSON document;
//! - YAML with one or more Istio `WasmPlugin` documents (`spec.pluginConfig`);
//! - an Envoy bootstrap (YAML or JSON): every `envoy.filters.http.wasm` filter whose module is a
//!   meshguard filter (`configuration.value`).

use std::path::Path;

use serde_json::Value;

use crate::filters::Filter;
use meshguard_core::config::ConfigErrors;

/// The `@type` of Envoy's wasm HTTP filter config.
pub const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Why a file could not be searched for configs (as opposed to a config being invalid).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is neither JSON nor YAML.
    #[error("{path}: not JSON or YAML: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with its line and column.
        message: String,
    },
    /// The file holds no config for the requested filter.
    #[error("{path}: no {filter} config found (looked for a plugin config JSON, WasmPlugin spec.pluginConfig, or an Envoy wasm filter configuration)")]
    NothingFound {
        /// The file.
        path: String,
        /// The filter, or `all`.
        filter: String,
    },
}

/// One config found in a file and the verdict of the filter's parser.
#[derive(Debug)]
pub struct Finding {
    /// The filter whose parser ran.
    pub filter: Filter,
    /// Where in the file the config is (`document 2 (WasmPlugin jwt-authn) spec.pluginConfig`).
    pub location: String,
    /// `Ok` or every error with its field path.
    pub result: Result<(), ConfigErrors>,
}

/// Which filter(s) to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Only this filter's configs.
    One(Filter),
    /// Every meshguard filter's configs, each recognised by its module or image name.
    All,
}

impl Selection {
    fn label(self) -> String {
        match self {
            Selection::One(f) => f.name().to_string(),
            Selection::All => "meshguard filter".to_string(),
        }
    }
}

/// Which filter a string naming a module, image or plugin refers to (`…/meshguard_authz.wasm`,
/// `oci://…/meshguard-authz:0.1.0`, `meshguard-authz`).
pub fn filter_named_in(text: &str) -> Option<Filter> {
    let norm = text.replace('-', "_");
    // Longest names first is unnecessary: no filter name is a prefix of another's package.
    Filter::ALL
        .into_iter()
        .find(|f| norm.contains(&f.package().replace('-', "_")))
}

/// Validates every config for `selection` in the file at `path`.
pub fn validate_file(selection: Selection, path: &Path) -> Result<Vec<Finding>, ValidateError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ValidateError::Read {
        path: display.clone(),
        source,
    })?;
    validate_bytes(selection, &display, &bytes)
}

/// Validates every config for `selection` in `bytes` (named `name` in messages).
pub fn validate_bytes(
    selection: Selection,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<Finding>, ValidateError> {
    let trimmed = bytes.trim_ascii_start();
    let mut findings = Vec::new();
    if trimmed.starts_with(b"{") {
        // JSON: either a plugin config or an Envoy bootstrap written as JSON.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ValidateError::Syntax {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        if looks_like_bootstrap(&value) {
            scan_envoy(selection, "", &value, &mut findings);
        } else if let Selection::One(filter) = selection {
            // Parse the original bytes, not the re-serialised value: duplicate keys and number
            // formats must reach the filter's parser as the user wrote them.
            findings.push(Finding {
                filter,
                location: "plugin config".to_string(),
                result: filter.parse_config(bytes),
            });
        }
    } else {
        let text = String::from_utf8_lossy(bytes);
        for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value: Value =
                serde::Deserialize::deserialize(doc).map_err(|e| ValidateError::Syntax {
                    path: name.to_string(),
                    message: e.to_string(),
                })?;
            let prefix = format!("document {}", i + 1);
            if value.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
                scan_wasmplugin(selection, &prefix, &value, &mut findings);
            } else {
                scan_envoy(selection, &prefix, &value, &mut findings);
            }
        }
    }
    if findings.is_empty() {
        return Err(ValidateError::NothingFound {
            path: name.to_string(),
            filter: selection.label(),
        });
    }
    Ok(findings)
}

fn looks_like_bootstrap(value: &Value) -> bool {
    ["static_resources", "admin", "node", "staticResources"]
        .iter()
        .any(|k| value.get(k).is_some())
}

fn pick(selection: Selection, named: Option<Filter>, only_one: bool) -> Option<Filter> {
    match (selection, named) {
        (Selection::One(f), Some(n)) if n == f => Some(f),
        (Selection::One(f), None) if only_one => Some(f),
        (Selection::One(_), _) => None,
        (Selection::All, n) => n,
    }
}

fn scan_wasmplugin(selection: Selection, prefix: &str, doc: &Value, out: &mut Vec<Finding>) {
    let spec = doc.get("spec");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let url = spec
        .and_then(|s| s.get("url"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let named = filter_named_in(url).or_else(|| filter_named_in(name));
    let Some(filter) = pick(selection, named, true) else {
        return;
    };
    let config = spec
        .and_then(|s| s.get("pluginConfig"))
        .cloned()
        .unwrap_or(Value::Null);
    // Istio hands the plugin `pluginConfig` JSON-encoded; re-encode it the same way.
    let json = serde_json::to_vec(&config).unwrap_or_default();
    out.push(Finding {
        filter,
        location: format!("{prefix} (WasmPlugin {name}) spec.pluginConfig"),
        result: filter.parse_config(&json),
    });
}

fn scan_envoy(selection: Selection, prefix: &str, value: &Value, out: &mut Vec<Finding>) {
    let mut path = Vec::new();
    walk(value, &mut path, &mut |at, obj| {
        if obj.get("@type").and_then(Value::as_str) != Some(WASM_FILTER_TYPE) {
            return;
        }
        let Some(config) = obj.get("config") else {
            return;
        };
        let module = config
            .pointer("/vm_config/code/local/filename")
            .and_then(Value::as_str)
            .unwrap_or("");
        let root_id = config.get("root_id").and_then(Value::as_str).unwrap_or("");
        let named = filter_named_in(module).or_else(|| Filter::from_name(root_id));
        let Some(filter) = pick(selection, named, false) else {
            return;
        };
        let plugin = config.get("name").and_then(Value::as_str).unwrap_or("?");
        let location = format!(
            "{}{} (wasm plugin {plugin}) config.configuration.value",
            if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix} ")
            },
            at
        );
        let result = match config
            .pointer("/configuration/value")
            .and_then(Value::as_str)
        {
            Some(text) => filter.parse_config(text.as_bytes()),
            None => filter.parse_config(b""),
        };
        out.push(Finding {
            filter,
            location,
            result,
        });
    });
}

/// Calls `visit` on every object in `value`, with its path (`static_resources.listeners[0]…`).
fn walk(value: &Value, path: &mut Vec<String>, visit: &mut dyn FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            visit(&path.concat(), value);
            for (k, v) in map {
                path.push(if path.is_empty() {
                    k.clone()
                } else {
                    format!(".{k}")
                });
                walk(v, path, visit);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk(v, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_by_module_and_image_names() {
        assert_eq!(
            filter_named_in("/x/target/wasm32-wasip1/release/meshguard_authz.wasm"),
            Some(Filter::Authz)
        );
        assert_eq!(
            filter_named_in("oci://ghcr.io/o/meshguard-jwt-authn:0.1.0"),
            Some(Filter::JwtAuthn)
        );
        assert_eq!(filter_named_in("meshguard_passthrough.wasm"), None);
    }

    #[test]
    fn finds_every_wasm_filter_in_an_envoy_bootstrap() {
        let yaml = br#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: a
                vm_config: {code: {local: {filename: /w/meshguard_authz.wasm}}}
                configuration: {value: '{"x":1}'}
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: b
                vm_config: {code: {local: {filename: /w/meshguard_passthrough.wasm}}}
"#;
        let found = validate_bytes(Selection::All, "e.yaml", yaml).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].filter, Filter::Authz);
        assert!(
            found[0].location.contains("http_filters[0]"),
            "{}",
            found[0].location
        );
        assert!(matches!(
            validate_bytes(Selection::One(Filter::Audit), "e.yaml", yaml),
            Err(ValidateError::NothingFound { .. })
        ));
    }

    #[test]
    fn reads_plugin_config_from_wasmplugin_documents() {
        let yaml = br#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: rl}
spec:
  url: oci://r/meshguard-ratelimit:0.1.0
  pluginConfig: {a: 1}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: audit}
spec:
  url: oci://r/meshguard-audit:0.1.0
  pluginConfig: {}
"#;
        let found = validate_bytes(Selection::All, "w.yaml", yaml).unwrap();
        let filters: Vec<_> = found.iter().map(|f| f.filter).collect();
        assert_eq!(filters, vec![Filter::Ratelimit, Filter::Audit]);
        assert!(found[1]
            .location
            .starts_with("document 2 (WasmPlugin audit)"));
        let one = validate_bytes(Selection::One(Filter::Audit), "w.yaml", yaml).unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(matches!(
            validate_bytes(Selection::One(Filter::Authz), "x.json", b"{\"a\": }"),
            Err(ValidateError::Syntax { .. })
        ));
    }

    /// The fused module is found like the four filters: by its module file or root id in an
    /// Envoy bootstrap, by its image or plugin name in a WasmPlugin; its config goes through the
    /// fused parser.
    #[test]
    fn finds_fused_configs_in_bootstraps_and_wasmplugins() {
        assert_eq!(
            filter_named_in("/w/target/fused/wasm32-wasip1/release/meshguard_fused.wasm"),
            Some(Filter::Fused)
        );
        assert_eq!(
            filter_named_in("oci://r/meshguard-fused:0.1.0"),
            Some(Filter::Fused)
        );
        let bootstrap = |module: &str, root_id: &str| {
            format!(
                r#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: f
                root_id: {root_id}
                vm_config: {{code: {{local: {{filename: {module}}}}}}}
                configuration: {{value: '{{"audit": {{}}, "authz": {{"bogus": 1}}}}'}}
"#
            )
        };
        for (module, root_id) in [("/w/meshguard_fused.wasm", "x"), ("/w/other.wasm", "fused")] {
            let yaml = bootstrap(module, root_id);
            let found = validate_bytes(Selection::All, "e.yaml", yaml.as_bytes()).unwrap();
            assert_eq!(found.len(), 1, "{module}");
            assert_eq!(found[0].filter, Filter::Fused);
            let errors = found[0].result.clone().unwrap_err();
            assert_eq!(errors.0[0].path, "authz.bogus", "{errors:?}");
            let one = validate_bytes(Selection::One(Filter::Fused), "e.yaml", yaml.as_bytes());
            assert_eq!(one.unwrap().len(), 1);
            assert!(
                validate_bytes(Selection::One(Filter::Authz), "e.yaml", yaml.as_bytes()).is_err()
            );
        }
        let plugin = br#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: meshguard-fused}
spec:
  url: oci://r/meshguard-fused:0.1.0
  pluginConfig: {audit: {}}
"#;
        let found = validate_bytes(Selection::All, "w.yaml", plugin).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].filter, Filter::Fused);
        assert!(found[0].result.is_ok(), "{:?}", found[0].result);
        // A plain plugin config JSON checked as fused.
        let found =
            validate_bytes(Selection::One(Filter::Fused), "f.json", br#"{"nope": {}}"#).unwrap();
        assert_eq!(found[0].result.clone().unwrap_err().0[0].path, "nope");
    }
}
