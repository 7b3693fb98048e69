//! Sensitive config values given by reference to an environment variable of the proxy instead of
//! inline: `{"environment_variable": "JWT_HS_SECRET"}` (the name of Envoy's `DataSource` field).
//!
//! The variable is read once, at configure time, through WASI `environ` (`std::env::var` in the
//! guest). Envoy hands a Wasm VM only the variables listed in `vm_config.environment_variables`
//! (`host_env_keys` or `key_values`); Istio's WasmPlugin sets them with `vmConfig.env`.
//!
//! A missing, empty or non-UTF-8 variable refuses the config with an error naming the variable
//! and the field path. The value itself never appears in an error, a log line, `Debug` output or
//! a metric: callers decode it at once and only report *that* it is wrong (see [`EnvValue`]).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::ConfigErrors;

/// A reference to an environment variable of the proxy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvRef {
    /// Name of the variable (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters).
    pub environment_variable: String,
}

/// Where configure-time code reads environment variables from.
pub trait Environment {
    /// The value of `name`: `Ok(None)` when unset, `Err(())` when set but not UTF-8.
    #[allow(clippy::result_unit_err)]
    fn var(&self, name: &str) -> Result<Option<String>, ()>;
}

/// The process environment (in the guest: WASI `environ`, i.e. what the proxy gave the VM).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Result<Option<String>, ()> {
        match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(()),
        }
    }
}

/// A fixed environment (tests, the `validate` tool with `--env`).
impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Result<Option<String>, ()> {
        Ok(self.get(name).cloned())
    }
}

/// A value read from the environment. `Debug` and `Display` never show it.
pub struct EnvValue {
    /// Variable name (safe to show).
    pub name: String,
    value: String,
}

impl EnvValue {
    /// The value (to decode at once; never format it into a message).
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvValue({}: <redacted>)", self.name)
    }
}

/// True for a portable variable name.
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128
}

/// Reads `r` from `env`; on a problem pushes an error at `path` (naming the variable, never its
/// value) and returns `None`.
pub fn read(
    env: &dyn Environment,
    r: &RawEnvRef,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<EnvValue> {
    let name = &r.environment_variable;
    let path = format!("{path}.environment_variable");
    if !valid_name(name) {
        errs.push(path, format!("{name:?} is not a valid variable name"));
        return None;
    }
    match env.var(name) {
        Ok(Some(v)) if !v.trim().is_empty() => Some(EnvValue {
            name: name.clone(),
            value: v,
        }),
        Ok(Some(_)) => {
            errs.push(path, format!("environment variable {name} is empty"));
            None
        }
        Ok(None) => {
            errs.push(
                path,
                format!(
                    "environment variable {name} is not set (give it to the VM: Envoy \
                     vm_config.environment_variables, Istio WasmPlugin vmConfig.env)"
                ),
            );
            None
        }
        Err(()) => {
            errs.push(
                path,
                format!("environment variable {name} is not valid UTF-8"),
            );
            None
        }
    }
}

/// The base64 text of an HMAC secret at `path` (`providers.<name>.hmac_secret`), inline or from
/// the environment, with the field to blame and how to name the text in an error (`"not"` or
/// `"the value of NAME is not"`): never by its value.
pub(crate) fn hmac_text(
    h: &super::config::RawHmacSecret,
    env: &dyn Environment,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<(String, String, String)> {
    match (&h.inline_base64, &h.environment_variable) {
        (Some(inline), None) => Some((
            format!("{path}.inline_base64"),
            inline.clone(),
            "not".to_string(),
        )),
        (None, Some(var)) => {
            let r = RawEnvRef {
                environment_variable: var.clone(),
            };
            let v = read(env, &r, path, errs)?;
            Some((
                format!("{path}.environment_variable"),
                v.expose().to_string(),
                format!("the value of {} is not", v.name),
            ))
        }
        _ => {
            errs.push(
                path,
                "exactly one of `inline_base64` and `environment_variable` is required",
            );
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn r(name: &str) -> RawEnvRef {
        RawEnvRef {
            environment_variable: name.to_string(),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_a_set_variable_and_hides_it_in_debug() {
        let mut errs = ConfigErrors::default();
        let v = read(&env(&[("S", "hunter2-value")]), &r("S"), "p", &mut errs).unwrap();
        assert!(errs.is_empty());
        assert_eq!(v.expose(), "hunter2-value");
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains('S'));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn missing_empty_and_badly_named_variables_are_errors_with_the_path() {
        for (e, name, want) in [
            (env(&[]), "JWT_HS_SECRET", "JWT_HS_SECRET is not set"),
            (env(&[("E", "  ")]), "E", "E is empty"),
            (env(&[]), "1BAD", "not a valid variable name"),
            (env(&[]), "A-B", "not a valid variable name"),
        ] {
            let mut errs = ConfigErrors::default();
            assert!(read(&e, &r(name), "providers.a.hmac_secret", &mut errs).is_none());
            let text = errs.to_string();
            assert!(
                text.starts_with("providers.a.hmac_secret.environment_variable: "),
                "{text}"
            );
            assert!(text.contains(want), "{text}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn process_env_reports_unset_as_none() {
        assert_eq!(
            ProcessEnv.var("MESHGUARD_SURELY_UNSET_VARIABLE_4711"),
            Ok(None)
        );
    }
}
