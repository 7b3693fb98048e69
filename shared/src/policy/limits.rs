//! Size bounds of an authz config, checked before anything is compiled, so a huge policy set is
//! refused at configure time (with the field path) instead of costing memory and evaluation time
//! per request. Fixed bounds, documented in `filters/authz/README.md`.

use super::raw::AuthzConfigRaw;
use crate::config::ConfigErrors;

/// Most policies in one config.
pub const MAX_POLICIES: usize = 256;
/// Most rules in one policy.
pub const MAX_RULES_PER_POLICY: usize = 1024;
/// Most rules over all policies.
pub const MAX_RULES_TOTAL: usize = 4096;
/// Most entries in a rule's `from`, `to` or `when` list.
pub const MAX_ENTRIES_PER_RULE_LIST: usize = 256;

/// Pushes an error for every bound `raw` exceeds; true when it is within all of them.
pub(crate) fn check(raw: &AuthzConfigRaw, errors: &mut ConfigErrors) -> bool {
    let before = errors.0.len();
    let mut too_many = |path: String, what: &str, got: usize, limit: usize| {
        if got > limit {
            errors.push(path, format!("{got} {what}; at most {limit} allowed"));
        }
    };
    too_many(
        "policies".to_owned(),
        "policies",
        raw.policies.len(),
        MAX_POLICIES,
    );
    let total: usize = raw.policies.iter().map(|p| p.rules.len()).sum();
    too_many(
        "policies".to_owned(),
        "rules in all",
        total,
        MAX_RULES_TOTAL,
    );
    for (i, p) in raw.policies.iter().enumerate().take(MAX_POLICIES) {
        let path = format!("policies[{i}].rules");
        too_many(path.clone(), "rules", p.rules.len(), MAX_RULES_PER_POLICY);
        for (j, r) in p.rules.iter().enumerate().take(MAX_RULES_PER_POLICY) {
            for (field, n) in [
                ("from", r.from.len()),
                ("to", r.to.len()),
                ("when", r.when.len()),
            ] {
                too_many(
                    format!("{path}[{j}].{field}"),
                    "entries",
                    n,
                    MAX_ENTRIES_PER_RULE_LIST,
                );
            }
        }
    }
    errors.0.len() == before
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use crate::policy::Authorizer;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn rule(i: usize) -> serde_json::Value {
        json!({"name": format!("r{i}"), "to": [{"operation": {"paths": [format!("/p{i}")]}}]})
    }

    fn errors_of(config: serde_json::Value) -> String {
        match Authorizer::parse(config.to_string().as_bytes()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn too_many_policies_is_refused_with_the_path() {
        let policies: Vec<_> = (0..=MAX_POLICIES)
            .map(|i| json!({"name": format!("p{i}"), "action": "ALLOW", "rules": [rule(0)]}))
            .collect();
        let e = errors_of(json!({ "policies": policies }));
        assert!(
            e.contains("policies: 257 policies; at most 256 allowed"),
            "{e}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn too_many_rules_in_a_policy_and_in_all() {
        let rules: Vec<_> = (0..=MAX_RULES_PER_POLICY).map(rule).collect();
        let e = errors_of(json!({"policies": [{"name": "p", "action": "ALLOW", "rules": rules}]}));
        assert!(
            e.contains("policies[0].rules: 1025 rules; at most 1024 allowed"),
            "{e}"
        );
        let policies: Vec<_> = (0..5)
            .map(|i| {
                let rules: Vec<_> = (0..1000).map(rule).collect();
                json!({"name": format!("p{i}"), "action": "ALLOW", "rules": rules})
            })
            .collect();
        let e = errors_of(json!({ "policies": policies }));
        assert!(
            e.contains("policies: 5000 rules in all; at most 4096 allowed"),
            "{e}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn too_many_entries_in_a_rule_list() {
        let to: Vec<_> = (0..=MAX_ENTRIES_PER_RULE_LIST)
            .map(|i| json!({"operation": {"paths": [format!("/p{i}")]}}))
            .collect();
        let e = errors_of(json!({"policies": [{"name": "p", "action": "ALLOW",
            "rules": [{"name": "r", "to": to}]}]}));
        assert!(
            e.contains("policies[0].rules[0].to: 257 entries; at most 256 allowed"),
            "{e}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_largest_allowed_config_compiles() {
        let rules: Vec<_> = (0..MAX_RULES_PER_POLICY).map(rule).collect();
        let config = json!({"policies": [{"name": "p", "action": "ALLOW", "rules": rules}]});
        assert!(Authorizer::parse(config.to_string().as_bytes()).is_ok());
    }
}
