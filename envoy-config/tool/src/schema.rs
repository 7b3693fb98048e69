//! JSON Schemas of the filter configs, generated from the Rust types with `schemars` (the
//! `Raw` type of each filter's `FilterConfig`), so they cannot drift from the parser. The
//! committed copies live in `envoy-config/schemas/<filter>.schema.json`; a test keeps them in
//! sync, and `meshguard schema` rewrites them.

use std::path::{Path, PathBuf};

use crate::filters::Filter;

/// Where the committed schemas live in the repository.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// The schema file name of a filter (`jwt_authn.schema.json`).
pub fn file_name(filter: Filter) -> String {
    format!("{}.schema.json", filter.name())
}

/// The schema document of `filter` as it is committed (pretty JSON, trailing newline), or
/// `None` while the filter's config type is not available.
pub fn render(filter: Filter) -> Option<String> {
    let mut schema = filter.config_schema()?;
    schema.insert(
        "$id".to_string(),
        format!(
            "urn:meshguard:schema:{}:{}",
            filter.name(),
            env!("CARGO_PKG_VERSION")
        )
        .into(),
    );
    schema.insert(
        "description".to_string(),
        format!(
            "Configuration of the meshguard {} proxy-wasm filter (Envoy `configuration.value`, Istio WasmPlugin `pluginConfig`). Generated from the Rust config types by `meshguard schema`; do not edit.",
            filter.name()
        )
        .into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).ok()?;
    text.push('\n');
    Some(text)
}

/// Writes every available schema into `dir`; returns the files written and the filters
/// skipped because their config type is not available.
pub fn write_all(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<Filter>)> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for filter in Filter::ALL {
        match render(filter) {
            Some(text) => {
                let path = dir.join(file_name(filter));
                std::fs::write(&path, text)?;
                written.push(path);
            }
            None => skipped.push(filter),
        }
    }
    Ok((written, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schemas are exactly what the current types generate. Run
    /// `cargo run -p meshguard-tool -- schema` after changing a config type.
    #[test]
    fn committed_schemas_are_in_sync() {
        let dir = default_dir();
        for filter in Filter::ALL {
            let path = dir.join(file_name(filter));
            match render(filter) {
                Some(expected) => {
                    let committed = std::fs::read_to_string(&path).unwrap_or_default();
                    assert!(
                        committed == expected,
                        "{} is out of date: run `cargo run -p meshguard-tool -- schema`",
                        path.display()
                    );
                }
                None => assert!(
                    !path.exists(),
                    "{} exists but the {filter} config type is not available",
                    path.display()
                ),
            }
        }
    }
}
