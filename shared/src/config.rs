//! What every filter config has in common: strict JSON parsing with field paths in errors,
//! durations written as strings, and the [`FilterConfig`] trait the filters, the `validate`
//! command and the JSON Schema generator share.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;

/// One problem in a filter config, located by its field path (`providers.a.issuer`,
/// `policies[2].rules[0].from[0].source.ip_blocks[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field; empty for the document itself.
    pub path: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one config. A config with any error is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Adds an error.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// `Ok(value)` when no error was collected, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// True when nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses strict JSON into `T`; a serde error carries the path of the field it failed at.
pub fn parse_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", format!("trailing data after the config: {e}")))?;
    Ok(value)
}

/// A filter's configuration: the raw JSON shape (for the schema) and its compiled form.
pub trait FilterConfig: Sized {
    /// The filter's name as used in metric names, filter-state keys and the CLI (`jwt_authn`).
    const FILTER: &'static str;
    /// The JSON document as written by the user (serde + schemars).
    type Raw: DeserializeOwned + schemars::JsonSchema;
    /// Parses and validates a JSON config exactly as the filter's `on_configure` does.
    fn parse(json: &[u8]) -> Result<Self, ConfigErrors>;
}

/// Parses a duration written as `"250ms"`, `"5s"`, `"10m"`, `"1h"` or Envoy's `"0.5s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => {
            return Err(format!(
                "invalid duration {text:?}: missing unit (ms, s, m, h)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number then ms, s, m or h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {unit:?} (ms, s, m, h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=31_536_000.0).contains(&seconds) {
        return Err(format!(
            "invalid duration {text:?}: out of range (0 to 365 days)"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn serde_errors_carry_the_field_path() {
        let err = parse_json::<Outer>(br#"{"items":[{"name":"a"},{"nam":"b"}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].nam");
        assert!(
            err.message.contains("unknown field `nam`"),
            "{}",
            err.message
        );
        let err = parse_json::<Outer>(br#"{"items":[{"name":1}]}"#).unwrap_err();
        assert_eq!(err.path, "items[0].name");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn trailing_data_is_refused() {
        assert!(parse_json::<Outer>(br#"{"items":[]} {}"#).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("9999999h").is_err());
    }
}
