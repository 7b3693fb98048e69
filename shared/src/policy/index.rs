//! A configure-time index of every rule of every policy by the path beginnings its gate admits
//! (see [`super::gate`]), so one evaluation looks only at the rules the request's path could
//! match instead of scanning all of them.
//!
//! Each rule gets a global id in config order (policy by policy, rule by rule). A rule whose
//! `to` constrains the path is filed under every `(mask, value)` word of its gate; a rule that
//! does not is filed in an "open" list. Words are grouped by mask (at most nine masks exist: a
//! prefix of 0 to 8 bytes), each group sorted by `(value, id)`. For a request, one binary search
//! per mask finds the ids whose word equals the masked path head; merging those sorted runs
//! with the open list yields exactly the rules whose path gate admits the request, in config
//! order, without allocating. Evaluating them in that order keeps first-match attribution and
//! Istio's policy order exact.

use std::collections::BTreeMap;

use super::model::Policy;

/// Largest number of runs merged at once: the open list and one run per possible mask.
const MAX_RUNS: usize = 10;

/// The rules of a policy set, indexed by path gate.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// `(policy, rule)` of each global id.
    ids: Vec<(usize, usize)>,
    /// Ids of rules that admit any path, ascending, paired with 0 to share the run type.
    open: Vec<(u64, usize)>,
    /// Per mask in use: the mask and the `(value, id)` words, sorted.
    classes: Vec<(u64, Vec<(u64, usize)>)>,
}

impl RuleIndex {
    /// Indexes `policies`.
    pub(crate) fn build(policies: &[Policy]) -> Self {
        let mut index = RuleIndex::default();
        let mut classes: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
        for (p, policy) in policies.iter().enumerate() {
            for (r, rule) in policy.rules.iter().enumerate() {
                let id = index.ids.len();
                index.ids.push((p, r));
                match rule.gate.path_words() {
                    None => index.open.push((0, id)),
                    Some(words) => {
                        for &(mask, value) in words {
                            classes.entry(mask).or_default().push((value, id));
                        }
                    }
                }
            }
        }
        for words in classes.values_mut() {
            words.sort_unstable();
            words.dedup();
        }
        index.classes = classes.into_iter().collect();
        index
    }

    /// The `(policy, rule)` positions of the rules whose path gate admits `path_head`, in
    /// config order.
    pub(crate) fn candidates(&self, path_head: u64) -> Candidates<'_> {
        let mut runs: [&[(u64, usize)]; MAX_RUNS] = [&[]; MAX_RUNS];
        let mut n = 0;
        if let (false, Some(slot)) = (self.open.is_empty(), runs.first_mut()) {
            *slot = &self.open;
            n = 1;
        }
        for (mask, words) in &self.classes {
            let key = path_head & mask;
            let start = words.partition_point(|&(v, _)| v < key);
            let rest = words.get(start..).unwrap_or_default();
            let len = rest.partition_point(|&(v, _)| v == key);
            if len > 0 {
                if let Some(slot) = runs.get_mut(n) {
                    *slot = rest.get(..len).unwrap_or_default();
                    n += 1;
                }
            }
        }
        Candidates {
            ids: &self.ids,
            runs,
            last: None,
        }
    }
}

/// Iterator over candidate rules in config order (a merge of sorted runs, duplicates dropped).
pub(crate) struct Candidates<'a> {
    ids: &'a [(usize, usize)],
    runs: [&'a [(u64, usize)]; MAX_RUNS],
    last: Option<usize>,
}

impl Iterator for Candidates<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            let mut best: Option<(usize, usize)> = None;
            for (i, run) in self.runs.iter().enumerate() {
                if let Some(&(_, id)) = run.first() {
                    if best.is_none_or(|(_, b)| id < b) {
                        best = Some((i, id));
                    }
                }
            }
            let (run, id) = best?;
            if let Some(slot) = self.runs.get_mut(run) {
                *slot = slot.get(1..).unwrap_or_default();
            }
            if self.last == Some(id) {
                continue;
            }
            self.last = Some(id);
            return self.ids.get(id).copied();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use crate::policy::gate::path_head;
    use crate::policy::path::url_path;
    use crate::policy::Authorizer;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A small deterministic generator (no dependency needed for this).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    const PATHS: [&str; 12] = [
        "/a",
        "/a*",
        "/api/v1/{*}",
        "/api/v12/{**}",
        "/api/v1/items",
        "*.json",
        "*",
        "/{*}/x",
        "/b/{**}",
        "/api/*",
        "/abcdefghij*",
        "/abcdefgh",
    ];
    const REQUESTS: [&str; 12] = [
        "/a",
        "/ab",
        "/api/v1/x",
        "/api/v12/y/z",
        "/api/v1/items?q",
        "/f.json",
        "/",
        "/q/x",
        "/b/",
        "/abcdefghijk",
        "/abcdefgh",
        "/api/v2/x",
    ];

    #[wasm_bindgen_test(unsupported = test)]
    fn candidates_are_exactly_the_admitted_rules_in_config_order() {
        let mut rng = Lcg(7);
        for _ in 0..200 {
            let policies: Vec<_> = (0..1 + rng.below(5))
                .map(|p| {
                    let rules: Vec<_> = (0..rng.below(6))
                        .map(|_| {
                            let to: Vec<_> = (0..rng.below(3))
                                .map(|_| {
                                    let paths: Vec<_> = (0..rng.below(3))
                                        .map(|_| PATHS[rng.below(PATHS.len())])
                                        .collect();
                                    json!({"operation": {"paths": paths}})
                                })
                                .collect();
                            json!({"to": to})
                        })
                        .collect();
                    json!({"name": format!("p{p}"), "rules": rules})
                })
                .collect();
            let config = json!({ "policies": policies }).to_string();
            let authz = Authorizer::parse(config.as_bytes()).unwrap();
            let index = RuleIndex::build(authz.policies());
            for path in REQUESTS {
                let head = path_head(url_path(path.as_bytes()));
                let want: Vec<(usize, usize)> = authz
                    .policies()
                    .iter()
                    .enumerate()
                    .flat_map(|(p, policy)| {
                        policy
                            .rules
                            .iter()
                            .enumerate()
                            .filter(|(_, rule)| rule.gate.admits(u16::MAX, head))
                            .map(move |(r, _)| (p, r))
                    })
                    .collect();
                let got: Vec<_> = index.candidates(head).collect();
                assert_eq!(got, want, "{path} in {config}");
            }
        }
    }
}
