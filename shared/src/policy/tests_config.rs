//! Config parsing and compile errors: every error names its field path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

fn errors(json: &str) -> String {
    match Authorizer::parse(json.as_bytes()) {
        Ok(_) => panic!("config accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(json: &str, expected: &str) {
    let text = errors(json);
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
}

#[wasm_bindgen_test(unsupported = test)]
fn empty_config_is_refused_unless_explicit() {
    assert_error("{}", "policies: no policies");
    assert_error(r#"{"policies":[]}"#, "policies: no policies");
    assert!(Authorizer::parse(br#"{"allow_all":true}"#).is_ok());
    assert!(Authorizer::parse(br#"{"deny_all":true}"#).is_ok());
    assert_error(
        r#"{"allow_all":true,"deny_all":true}"#,
        "deny_all: allow_all and deny_all",
    );
    assert_error(
        r#"{"allow_all":true,"policies":[{"name":"p","rules":[{}]}]}"#,
        "allow_all: allow_all/deny_all apply only when there are no policies",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_fields_and_types_are_refused_with_paths() {
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"from":[{"source":{"principal":["x"]}}]}]}]}"#,
        "policies[0].rules[0].from[0].source.principal: unknown field `principal`",
    );
    assert_error(
        r#"{"policies":[{"name":"p","action":"PERMIT"}]}"#,
        "policies[0].action: unknown variant `PERMIT`",
    );
    assert_error(
        r#"{"dry_run":"yes","allow_all":true}"#,
        "dry_run: invalid type",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn invalid_values_name_their_path() {
    let json = r#"{"policies":[
        {"name":"a","rules":[{}]},
        {"name":"b","rules":[{}]},
        {"name":"c","rules":[{"from":[{"source":{"ip_blocks":["10.0.0.0/8","10.0.0.0/33"]}}]}]}
    ]}"#;
    assert_error(
        json,
        r#"policies[2].rules[0].from[0].source.ip_blocks[1]: invalid CIDR "10.0.0.0/33""#,
    );
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"from":[{"source":{"not_remote_ip_blocks":["x"]}}]}]}]}"#,
        r#"policies[0].rules[0].from[0].source.not_remote_ip_blocks[0]: invalid CIDR "x""#,
    );
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"to":[{"operation":{"not_paths":["/a/{**}/{*}"]}}]}]}]}"#,
        r#"policies[0].rules[0].to[0].operation.not_paths[0]: invalid path template "/a/{**}/{*}""#,
    );
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"to":[{"operation":{"ports":["80",70000,"http"]}}]}]}]}"#,
        r#"policies[0].rules[0].to[0].operation.ports[1]: invalid port "70000""#,
    );
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"to":[{"operation":{"ports":["http"]}}]}]}]}"#,
        r#"policies[0].rules[0].to[0].operation.ports[0]: invalid port "http""#,
    );
    assert_error(
        r#"{"policies":[{"name":"p","rules":[{"to":[{"operation":{"methods":[""]}}]}]}]}"#,
        "policies[0].rules[0].to[0].operation.methods[0]: empty value not allowed",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn every_error_is_reported_at_once() {
    let text = errors(
        r#"{"policies":[{"name":"_x","rules":[
            {"from":[{"source":{"ip_blocks":["bad"]}}]},
            {"when":[{"key":"request.nope","values":["1"]}]}
        ]}]}"#,
    );
    assert!(text.contains("policies[0].name: invalid name"), "{text}");
    assert!(
        text.contains("policies[0].rules[0].from[0].source.ip_blocks[0]"),
        "{text}"
    );
    assert!(
        text.contains(r#"policies[0].rules[1].when[0].key: unknown key "request.nope""#),
        "{text}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn names_are_validated_and_unique() {
    assert_error(
        r#"{"policies":[{"name":"a"},{"name":"a"}]}"#,
        r#"policies[1].name: duplicate name "a""#,
    );
    assert_error(
        r#"{"policies":[{"name":"a","rules":[{"name":"r"},{"name":"r"}]}]}"#,
        r#"policies[0].rules[1].name: duplicate name "r""#,
    );
    assert_error(
        r#"{"policies":[{"name":"has space"}]}"#,
        "policies[0].name: invalid name",
    );
    assert_error(
        r#"{"policies":[{"name":"_default"}]}"#,
        "policies[0].name: invalid name",
    );
    assert_error(
        r#"{"policies":[{"name":"a;.;b"}]}"#,
        "policies[0].name: invalid name",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn when_conditions_are_validated() {
    let when = |c: &str| format!(r#"{{"policies":[{{"name":"p","rules":[{{"when":[{c}]}}]}}]}}"#);
    assert_error(
        &when("{}"),
        "policies[0].rules[0].when[0]: invalid condition: empty",
    );
    assert_error(
        &when(r#"{"key":"request.auth.claims[groups]"}"#),
        "when[0]: invalid condition: a `key` needs non-empty `values` or `not_values`",
    );
    assert_error(
        &when(r#"{"values":["x"]}"#),
        "when[0].key: invalid condition: `values`/`not_values` need a `key`",
    );
    assert_error(
        &when(r#"{"key":"request.auth.claims[]","values":["x"]}"#),
        r#"when[0].key: invalid key "request.auth.claims[]""#,
    );
    assert_error(
        &when(r#"{"key":"request.headers[bad header]","values":["x"]}"#),
        r#"when[0].key: invalid key "request.headers[bad header]""#,
    );
    assert_error(
        &when(r#"{"key":"experimental.envoy.filters.a[b]","values":["x"]}"#),
        "when[0].key: unknown key",
    );
    assert_error(
        &when(r#"{"key":"source.ip","values":["1.2.3.4","300.1.1.1"]}"#),
        r#"when[0].values[1]: invalid CIDR "300.1.1.1""#,
    );
    assert_error(
        &when(r#"{"key":"destination.port","not_values":["99999"]}"#),
        r#"when[0].not_values[0]: invalid port "99999""#,
    );
    assert_error(
        &when(r#"{"claim":"a..b","equals":"x"}"#),
        r#"when[0].claim: invalid claim path "a..b": empty segment"#,
    );
    assert_error(
        &when(r#"{"claim":"a"}"#),
        "when[0]: invalid condition: `claim` needs an operator",
    );
    assert_error(
        &when(r#"{"equals":1}"#),
        "when[0].claim: invalid condition: typed operators need a `claim`",
    );
    assert_error(
        &when(r#"{"claim":"a","equals":[1]}"#),
        "when[0].equals: invalid claim value [1]",
    );
    assert_error(
        &when(r#"{"claim":"a","contains_any":["x",{"y":1}]}"#),
        "when[0].contains_any[1]: invalid claim value",
    );
    assert_error(
        &when(r#"{"claim":"a","contains_all":[]}"#),
        "when[0].contains_all: invalid condition: must list at least one value",
    );
    assert_error(
        &when(r#"{"claim":"a","equals":1,"key":"source.ip","values":["1.1.1.1"]}"#),
        "when[0]: invalid condition: mixes",
    );
    assert_error(
        &when(r#"{"scopes":{}}"#),
        "when[0].scopes: invalid condition: list scopes",
    );
    assert_error(
        &when(r#"{"scopes":{"all_of":["ok","not ok"]}}"#),
        r#"when[0].scopes.all_of[1]: invalid scope "not ok""#,
    );
    assert_error(
        &when(r#"{"scopes":{"any_of":["a"]},"not_scopes":{"any_of":["b"]}}"#),
        "when[0]: invalid condition: set `scopes` or `not_scopes`, not both",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn deny_responses_are_validated() {
    assert_error(
        r#"{"policies":[{"name":"p","action":"ALLOW","rules":[{"deny_response":{"status":404}}]}]}"#,
        "policies[0].rules[0].deny_response: deny_response is only allowed on rules of DENY policies",
    );
    assert_error(
        r#"{"policies":[{"name":"p","action":"DENY","rules":[{"deny_response":{"status":99}}]}]}"#,
        "policies[0].rules[0].deny_response.status: invalid status 99",
    );
    assert_error(
        r#"{"allow_all":true,"deny_response":{"headers":{"x":"a\nb"}}}"#,
        "deny_response.headers.x: invalid header value",
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_full_istio_style_config_compiles_with_its_needs() {
    let authz = Authorizer::parse(
        br#"{"policies":[
          {"name":"deny-ext","action":"DENY","rules":[{"from":[{"source":{"not_namespaces":["prod"]}}]}]},
          {"name":"api","action":"allow","rules":[{
            "from":[{"source":{"principals":["cluster.local/ns/prod/sa/web"],"request_principals":["*"]}}],
            "to":[{"operation":{"hosts":["API.example.com"],"ports":[8080,"8443"],"methods":["GET"],"paths":["/v1/{*}/items/{**}"]}}],
            "when":[{"key":"request.auth.claims[realm_access][roles]","values":["reader"]},
                    {"claim":"admin","equals":true},
                    {"scopes":{"all_of":["items:read"]}},
                    {"key":"source.ip","values":["10.0.0.0/8"]}]}]},
          {"name":"audit-all","action":"AUDIT","rules":[{}]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(authz.policies().len(), 3);
    assert_eq!(authz.policies()[1].action, Action::Allow);
    let needs = authz.needs();
    assert!(needs.peer_identity && needs.jwt && needs.source_ip && needs.destination_port);
    assert!(!needs.destination_ip && !needs.sni);
}
