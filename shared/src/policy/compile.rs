//! Raw config → compiled policies. Every problem is collected with its field path; a config with
//! any problem is refused whole.

use std::collections::HashSet;

use super::claims::{validate_scope, ClaimPath, Scalar, ScopeRequirement, TypedClaim};
use super::error::PolicyError;
use super::gate::Gate;
use super::identity::{principal_pattern, RequestPrincipalPattern};
use super::ip::parse_ip_block;
use super::model::{Action, Check, Policy, Rule};
use super::path::PathPattern;
use super::raw::{
    ActionRaw, ConditionRaw, OperationRaw, PolicyRaw, PortRaw, RuleRaw, ScopesRaw, SourceRaw,
};
use super::response::DenyResponse;
use super::string_match::{OneOf, StringPattern};
use super::when::compile_key;
use crate::config::ConfigErrors;

/// Collects errors while compiling.
pub(crate) struct Compiler<'e> {
    pub(crate) errors: &'e mut ConfigErrors,
}

impl Compiler<'_> {
    pub(crate) fn error(&mut self, path: impl Into<String>, e: PolicyError) {
        self.errors.push(path, e.to_string());
    }

    /// Compiles `values` (at `{base}.{name}[i]`) and `not_values` (at `{base}.not_{name}[i]`).
    pub(crate) fn one_of<M>(
        &mut self,
        base: &str,
        name: &str,
        values: &[String],
        not_values: &[String],
        parse: impl Fn(&str) -> Result<M, PolicyError>,
    ) -> OneOf<M> {
        let mut side = |list: &[String], field: String| {
            list.iter()
                .enumerate()
                .filter_map(|(i, v)| match parse(v) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        self.error(format!("{base}.{field}[{i}]"), e);
                        None
                    }
                })
                .collect()
        };
        OneOf {
            values: side(values, name.to_owned()),
            not_values: side(not_values, format!("not_{name}")),
        }
    }

    pub(crate) fn policy(&mut self, index: usize, raw: &PolicyRaw, global_dry_run: bool) -> Policy {
        let path = format!("policies[{index}]");
        if let Err(e) = validate_name(&raw.name) {
            self.error(format!("{path}.name"), e);
        }
        let action = match raw.action {
            ActionRaw::Allow => Action::Allow,
            ActionRaw::Deny => Action::Deny,
            ActionRaw::Audit => Action::Audit,
        };
        let mut names = HashSet::new();
        let rules = raw
            .rules
            .iter()
            .enumerate()
            .map(|(j, rule)| {
                let rule_path = format!("{path}.rules[{j}]");
                let compiled = self.rule(&rule_path, j, rule, action);
                if !names.insert(compiled.name.clone()) {
                    let e = PolicyError::DuplicateName {
                        name: compiled.name.clone(),
                    };
                    self.error(format!("{rule_path}.name"), e);
                }
                compiled
            })
            .collect();
        Policy {
            index,
            name: raw.name.clone(),
            action,
            dry_run: raw.dry_run || global_dry_run,
            rules,
        }
    }

    fn rule(&mut self, path: &str, index: usize, raw: &RuleRaw, action: Action) -> Rule {
        let name = match &raw.name {
            Some(name) => {
                if let Err(e) = validate_name(name) {
                    self.error(format!("{path}.name"), e);
                }
                name.clone()
            }
            None => format!("rules[{index}]"),
        };
        let from = raw
            .from
            .iter()
            .enumerate()
            .map(|(k, f)| self.source(&format!("{path}.from[{k}].source"), &f.source))
            .collect();
        let to = raw
            .to
            .iter()
            .enumerate()
            .map(|(k, t)| self.operation(&format!("{path}.to[{k}].operation"), &t.operation))
            .collect();
        let when: Vec<Check> = raw
            .when
            .iter()
            .enumerate()
            .filter_map(|(k, c)| self.condition(&format!("{path}.when[{k}]"), c))
            .collect();
        let deny_response = raw.deny_response.as_ref().map(|r| {
            if action != Action::Deny {
                self.error(
                    format!("{path}.deny_response"),
                    PolicyError::DenyResponseOnNonDeny,
                );
            }
            DenyResponse::compile(r, &format!("{path}.deny_response"), self.errors)
        });
        let deny_scope = when.iter().find_map(|c| match c {
            Check::Scopes {
                requirement,
                negate: true,
            } if action == Action::Deny => Some(requirement.as_ref().clone()),
            _ => None,
        });
        let mut from: Vec<Vec<Check>> = from;
        let mut to: Vec<Vec<Check>> = to;
        let mut when = when;
        for conjunction in from.iter_mut().chain(to.iter_mut()) {
            conjunction.sort_by_key(Check::cost);
        }
        when.sort_by_key(Check::cost);
        Rule {
            name,
            gate: Gate::of(&to),
            from,
            to,
            when,
            deny_response,
            deny_scope,
        }
    }

    fn source(&mut self, path: &str, s: &SourceRaw) -> Vec<Check> {
        let mut checks = Vec::new();
        let f = self.one_of(
            path,
            "principals",
            &s.principals,
            &s.not_principals,
            principal_pattern,
        );
        if !f.is_empty() {
            checks.push(Check::Principal(f));
        }
        let f = self.one_of(
            path,
            "namespaces",
            &s.namespaces,
            &s.not_namespaces,
            StringPattern::parse,
        );
        if !f.is_empty() {
            checks.push(Check::Namespace(f));
        }
        let f = self.one_of(
            path,
            "request_principals",
            &s.request_principals,
            &s.not_request_principals,
            RequestPrincipalPattern::parse,
        );
        if !f.is_empty() {
            checks.push(Check::RequestPrincipal(f));
        }
        for (name, values, not_values) in [
            ("ip_blocks", &s.ip_blocks, &s.not_ip_blocks),
            (
                "remote_ip_blocks",
                &s.remote_ip_blocks,
                &s.not_remote_ip_blocks,
            ),
        ] {
            let f = self.one_of(path, name, values, not_values, parse_ip_block);
            if !f.is_empty() {
                checks.push(Check::SourceIp(f));
            }
        }
        checks
    }

    fn operation(&mut self, path: &str, o: &OperationRaw) -> Vec<Check> {
        let mut checks = Vec::new();
        let host = |v: &str| StringPattern::parse(v).map(|p| p.to_ascii_lowercase());
        let f = self.one_of(path, "hosts", &o.hosts, &o.not_hosts, host);
        if !f.is_empty() {
            checks.push(Check::Host(f));
        }
        let ports = OneOf {
            values: self.ports(&format!("{path}.ports"), &o.ports),
            not_values: self.ports(&format!("{path}.not_ports"), &o.not_ports),
        };
        if !ports.is_empty() {
            checks.push(Check::Port(ports));
        }
        let f = self.one_of(
            path,
            "methods",
            &o.methods,
            &o.not_methods,
            StringPattern::parse,
        );
        if !f.is_empty() {
            checks.push(Check::Method(f));
        }
        let f = self.one_of(path, "paths", &o.paths, &o.not_paths, PathPattern::parse);
        if !f.is_empty() {
            checks.push(Check::Path(f));
        }
        checks
    }

    fn ports(&mut self, path: &str, raw: &[PortRaw]) -> Vec<u16> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let parsed = match p {
                    PortRaw::Number(n) => u16::try_from(*n).map_err(|_| n.to_string()),
                    PortRaw::Text(t) => parse_port(t).ok_or_else(|| t.clone()),
                };
                parsed
                    .map_err(|value| {
                        self.error(format!("{path}[{i}]"), PolicyError::InvalidPort { value })
                    })
                    .ok()
            })
            .collect()
    }

    fn condition(&mut self, path: &str, c: &ConditionRaw) -> Option<Check> {
        let istio = c.key.is_some() || c.values.is_some() || c.not_values.is_some();
        let typed = c.claim.is_some()
            || c.equals.is_some()
            || c.not_equals.is_some()
            || c.contains_any.is_some()
            || c.not_contains_any.is_some()
            || c.contains_all.is_some()
            || c.not_contains_all.is_some()
            || c.present.is_some();
        let scopes = c.scopes.is_some() || c.not_scopes.is_some();
        let invalid = |reason| PolicyError::InvalidCondition(reason);
        match (istio, typed, scopes) {
            (false, false, false) => {
                self.error(path, invalid("empty: set `key` with `values`/`not_values`, `claim` with an operator, or `scopes`/`not_scopes`"));
                None
            }
            (true, false, false) => self.istio_condition(path, c),
            (false, true, false) => self.typed_condition(path, c),
            (false, false, true) => match (&c.scopes, &c.not_scopes) {
                (Some(s), None) => self.scopes(&format!("{path}.scopes"), s, false),
                (None, Some(s)) => self.scopes(&format!("{path}.not_scopes"), s, true),
                _ => {
                    self.error(
                        path,
                        invalid("set `scopes` or `not_scopes`, not both (use two conditions)"),
                    );
                    None
                }
            },
            _ => {
                self.error(path, invalid("mixes `key`/`values`, typed `claim` operators and `scopes`; write separate conditions"));
                None
            }
        }
    }

    fn istio_condition(&mut self, path: &str, c: &ConditionRaw) -> Option<Check> {
        let Some(key) = &c.key else {
            self.error(
                format!("{path}.key"),
                PolicyError::InvalidCondition("`values`/`not_values` need a `key`"),
            );
            return None;
        };
        let values = c.values.as_deref().unwrap_or_default();
        let not_values = c.not_values.as_deref().unwrap_or_default();
        if values.is_empty() && not_values.is_empty() {
            self.error(
                path,
                PolicyError::InvalidCondition("a `key` needs non-empty `values` or `not_values`"),
            );
            return None;
        }
        compile_key(self, path, key, values, not_values)
    }

    fn typed_condition(&mut self, path: &str, c: &ConditionRaw) -> Option<Check> {
        let before = self.errors.0.len();
        let claim_path = match &c.claim {
            None => {
                self.error(
                    format!("{path}.claim"),
                    PolicyError::InvalidCondition("typed operators need a `claim`"),
                );
                None
            }
            Some(text) => ClaimPath::parse(text)
                .map_err(|e| self.error(format!("{path}.claim"), e))
                .ok(),
        };
        let mut scalar = |field: &str, v: &Option<serde_json::Value>| {
            v.as_ref().and_then(|v| {
                Scalar::new(v)
                    .map_err(|e| self.error(format!("{path}.{field}"), e))
                    .ok()
            })
        };
        let equals = scalar("equals", &c.equals);
        let not_equals = scalar("not_equals", &c.not_equals);
        let mut list = |field: &str, v: &Option<Vec<serde_json::Value>>| -> Vec<Scalar> {
            let Some(items) = v else { return Vec::new() };
            if items.is_empty() {
                self.error(
                    format!("{path}.{field}"),
                    PolicyError::InvalidCondition("must list at least one value"),
                );
            }
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    Scalar::new(item)
                        .map_err(|e| self.error(format!("{path}.{field}[{i}]"), e))
                        .ok()
                })
                .collect()
        };
        let typed = TypedClaim {
            path: claim_path,
            equals,
            not_equals,
            contains_any: list("contains_any", &c.contains_any),
            not_contains_any: list("not_contains_any", &c.not_contains_any),
            contains_all: list("contains_all", &c.contains_all),
            not_contains_all: list("not_contains_all", &c.not_contains_all),
            present: c.present,
        };
        let has_operator = c.equals.is_some()
            || c.not_equals.is_some()
            || c.contains_any.is_some()
            || c.not_contains_any.is_some()
            || c.contains_all.is_some()
            || c.not_contains_all.is_some()
            || c.present.is_some();
        if !has_operator {
            self.error(path, PolicyError::InvalidCondition("`claim` needs an operator: equals, not_equals, contains_any, not_contains_any, contains_all, not_contains_all or present"));
        }
        (self.errors.0.len() == before).then(|| Check::Typed(Box::new(typed)))
    }

    fn scopes(&mut self, path: &str, raw: &ScopesRaw, negate: bool) -> Option<Check> {
        if raw.all_of.is_empty() && raw.any_of.is_empty() {
            self.error(
                path,
                PolicyError::InvalidCondition("list scopes in `all_of` and/or `any_of`"),
            );
            return None;
        }
        let mut valid = true;
        for (field, list) in [("all_of", &raw.all_of), ("any_of", &raw.any_of)] {
            for (i, scope) in list.iter().enumerate() {
                if let Err(e) = validate_scope(scope) {
                    self.error(format!("{path}.{field}[{i}]"), e);
                    valid = false;
                }
            }
        }
        valid.then(|| Check::Scopes {
            requirement: Box::new(ScopeRequirement::new(
                raw.all_of.clone(),
                raw.any_of.clone(),
            )),
            negate,
        })
    }
}

/// A port written as text: ASCII digits, 0-65535.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Policy and rule names end up in metric names and filter state: keep them plain.
pub(crate) fn validate_name(name: &str) -> Result<(), PolicyError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::InvalidName {
            name: name.to_owned(),
        })
    }
}
