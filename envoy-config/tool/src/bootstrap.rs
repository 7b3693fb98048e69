//! Envoy bootstraps that load meshguard filters from local `.wasm` files with the V8 runtime.
//!
//! One renderer serves three users: the committed examples under `envoy-config/envoy/` (ports
//! and paths left as `${MG_…}` placeholders, see [`substitute`]), the e2e tests (concrete ports,
//! each scenario's filter configs) and the demo. Every bootstrap has:
//! - a plain HTTP listener and, optionally, a TLS listener that requires a client certificate
//!   signed by the test CA (for mTLS peer identity; `connection.uri_san_peer_certificate`),
//!   both on 127.0.0.1 with the same HTTP filter chain;
//! - each plugin as `envoy.filters.http.wasm` with `failure_policy: FAIL_CLOSED`, its own
//!   `vm_id`, and the config as a `google.protobuf.StringValue`;
//! - a JSON access log (`log_format.json_format`) with the filters' filter-state hand-off keys
//!   (`%FILTER_STATE(wasm.<key>:PLAIN)%`, keys from `meshguard_core::handoff`) and the audit
//!   record;
//! - `stats_config.stats_tags` that turn our `<tag>=.=<value>;.;` metric-name labels into
//!   Prometheus labels;
//! - `always_set_request_id_in_response: true`;
//! - clusters `demo_upstream` (the service behind the proxy) and `meshguard_jwks` (the JWKS
//!   server the jwt-authn filter fetches keys from with `dispatch_http_call`).

use std::fmt::Write as _;

use meshguard_core::handoff;

/// Cluster name of the service behind the proxy.
pub const UPSTREAM_CLUSTER: &str = "demo_upstream";
/// Cluster name the jwt-authn configs use for remote JWKS.
pub const JWKS_CLUSTER: &str = "meshguard_jwks";

/// Metric label names our filters encode as `<tag>=.=<value>;.;`; each gets a `stats_tags`
/// regex. A label not listed here stays in the metric name (still counted, not a label).
pub const STAT_TAGS: &[&str] = &[
    "outcome",
    "reason",
    "decision",
    "policy",
    "rule",
    "provider",
    "result",
    "status_class",
    "sink",
];

/// Access-log fields and the filter-state key each prints.
pub const ACCESS_LOG_FILTER_STATE: &[(&str, &str)] = &[
    ("jwt_outcome", handoff::JWT_OUTCOME),
    ("jwt_reason", handoff::JWT_REASON),
    ("jwt_provider", handoff::JWT_PROVIDER),
    ("jwt_issuer", handoff::JWT_ISSUER),
    ("jwt_subject", handoff::JWT_SUBJECT),
    ("authz_decision", handoff::AUTHZ_DECISION),
    ("authz_policy", handoff::AUTHZ_POLICY),
    ("authz_rule", handoff::AUTHZ_RULE),
    ("ratelimit_decision", handoff::RATELIMIT_DECISION),
    ("ratelimit_remaining", handoff::RATELIMIT_REMAINING),
    ("ratelimit_rule", handoff::RATELIMIT_RULE),
    ("audit_record", handoff::AUDIT_RECORD),
];

/// One wasm plugin in the chain.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Short name (`jwt_authn`, `passthrough`): plugin name `meshguard_<name>`, root id and
    /// vm id derive from it.
    pub name: String,
    /// Path of the `.wasm` file (may contain placeholders).
    pub wasm_path: String,
    /// The plugin config (JSON text) handed to `on_configure`.
    pub config: String,
    /// Envoy `root_id` (default: `name`).
    pub root_id: Option<String>,
    /// Envoy `vm_id` (default: `meshguard_<name>`).
    pub vm_id: Option<String>,
    /// Envoy `failure_policy`: `FAIL_CLOSED` (what meshguard recommends), `FAIL_OPEN` or
    /// `FAIL_RELOAD`.
    pub failure_policy: String,
}

impl Plugin {
    /// A plugin with the default root id, vm id and `FAIL_CLOSED`.
    pub fn new(name: &str, wasm_path: &str, config: String) -> Plugin {
        Plugin {
            name: name.to_string(),
            wasm_path: wasm_path.to_string(),
            config,
            root_id: None,
            vm_id: None,
            failure_policy: "FAIL_CLOSED".to_string(),
        }
    }
}

/// The TLS listener's port and certificate files.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Listener port.
    pub port: String,
    /// Server certificate chain (PEM).
    pub cert: String,
    /// Server private key (PEM).
    pub key: String,
    /// CA that client certificates must chain to (PEM).
    pub client_ca: String,
}

/// Everything a bootstrap needs. Ports are text so that templates can hold placeholders.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// A comment placed at the top of the file.
    pub header: String,
    /// Admin listener port.
    pub admin_port: String,
    /// Plain HTTP listener port.
    pub http_port: String,
    /// The mTLS listener, if any.
    pub tls: Option<Tls>,
    /// Port of the demo upstream on 127.0.0.1.
    pub upstream_port: String,
    /// More clusters on 127.0.0.1 as `(name, port)`, e.g. `meshguard_jwks` for the JWKS server
    /// the jwt_authn filter fetches keys from.
    pub clusters: Vec<(String, String)>,
    /// More access-log fields as `(field, format)`, e.g. `%FILTER_STATE(wasm.x:PLAIN)%`.
    pub extra_log_fields: Vec<(String, String)>,
    /// File the JSON access log is written to (`/dev/stdout` works).
    pub access_log: String,
    /// The wasm plugins, in chain order.
    pub plugins: Vec<Plugin>,
}

/// A YAML double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// A block-style `address:` for 127.0.0.1:`port` at `indent` (block style keeps a `${…}`
/// placeholder a plain YAML scalar, so templates parse before they are rendered).
fn address(indent: usize, port: &str) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}address:\n{pad}  socket_address:\n{pad}    address: 127.0.0.1\n{pad}    port_value: {port}\n"
    )
}

fn indent_block(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    let mut out = String::new();
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    out
}

impl Bootstrap {
    /// The HTTP connection manager of a listener (same filter chain on every listener).
    fn connection_manager(&self, stat_prefix: &str) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "- name: envoy.filters.network.http_connection_manager");
        y.push_str("  typed_config:\n");
        y.push_str("    \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n");
        let _ = writeln!(y, "    stat_prefix: {stat_prefix}");
        y.push_str("    always_set_request_id_in_response: true\n");
        y.push_str("    normalize_path: true\n");
        y.push_str("    merge_slashes: true\n");
        y.push_str("    access_log:\n");
        y.push_str("    - name: envoy.access_loggers.file\n");
        y.push_str("      typed_config:\n");
        y.push_str("        \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n");
        let _ = writeln!(y, "        path: {}", quoted(&self.access_log));
        y.push_str("        log_format:\n");
        y.push_str("          json_format:\n");
        let fields: [(&str, &str); 12] = [
            ("time", "%START_TIME%"),
            ("listener", stat_prefix),
            ("request_id", "%REQ(X-REQUEST-ID)%"),
            ("method", "%REQ(:METHOD)%"),
            // Path without the query: a token may travel in a query parameter.
            ("path", "%PATH(NQ)%"),
            ("status", "%RESPONSE_CODE%"),
            ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
            ("response_flags", "%RESPONSE_FLAGS%"),
            ("duration_ms", "%DURATION%"),
            ("downstream_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
            ("downstream_peer_uri_san", "%DOWNSTREAM_PEER_URI_SAN%"),
            ("upstream_host", "%UPSTREAM_HOST%"),
        ];
        for (k, v) in fields {
            let _ = writeln!(y, "            {k}: {}", quoted(v));
        }
        for (k, key) in ACCESS_LOG_FILTER_STATE {
            let _ = writeln!(
                y,
                "            {k}: {}",
                quoted(&format!("%FILTER_STATE(wasm.{key}:PLAIN)%"))
            );
        }
        for (k, v) in &self.extra_log_fields {
            let _ = writeln!(y, "            {}: {}", quoted(k), quoted(v));
        }
        y.push_str("    route_config:\n");
        y.push_str("      name: local\n");
        y.push_str("      virtual_hosts:\n");
        y.push_str("      - name: demo\n");
        y.push_str("        domains: [\"*\"]\n");
        y.push_str("        routes:\n");
        y.push_str("        - match: {prefix: \"/\"}\n");
        let _ = writeln!(y, "          route: {{cluster: {UPSTREAM_CLUSTER}}}");
        y.push_str("    http_filters:\n");
        for p in &self.plugins {
            let _ = writeln!(y, "    - name: meshguard.{}", p.name);
            y.push_str("      typed_config:\n");
            y.push_str("        \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n");
            y.push_str("        config:\n");
            let _ = writeln!(y, "          name: meshguard_{}", p.name);
            let root_id = p.root_id.clone().unwrap_or_else(|| p.name.clone());
            let _ = writeln!(y, "          root_id: {}", quoted(&root_id));
            let _ = writeln!(y, "          failure_policy: {}", p.failure_policy);
            y.push_str("          vm_config:\n");
            let vm_id = p
                .vm_id
                .clone()
                .unwrap_or_else(|| format!("meshguard_{}", p.name));
            let _ = writeln!(y, "            vm_id: {}", quoted(&vm_id));
            y.push_str("            runtime: envoy.wasm.runtime.v8\n");
            let _ = writeln!(
                y,
                "            code: {{local: {{filename: {}}}}}",
                quoted(&p.wasm_path)
            );
            y.push_str("          configuration:\n");
            y.push_str("            \"@type\": type.googleapis.com/google.protobuf.StringValue\n");
            let config = p.config.trim();
            if config.is_empty() {
                y.push_str("            value: \"\"\n");
            } else {
                y.push_str("            value: |\n");
                y.push_str(&indent_block(config, 14));
            }
        }
        y.push_str("    - name: envoy.filters.http.router\n");
        y.push_str("      typed_config:\n");
        y.push_str("        \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n");
        y
    }

    /// Renders the bootstrap as YAML.
    pub fn render(&self) -> String {
        let mut y = String::new();
        for line in self.header.lines() {
            let _ = writeln!(y, "# {line}");
        }
        y.push_str("node: {id: meshguard, cluster: meshguard}\n");
        y.push_str("admin:\n");
        y.push_str(&address(2, &self.admin_port));
        y.push_str("stats_config:\n");
        y.push_str("  stats_tags:\n");
        for tag in STAT_TAGS {
            let _ = writeln!(y, "  - tag_name: {tag}");
            // First group: the part removed from the name; second: the label value.
            let _ = writeln!(
                y,
                "    regex: {}",
                quoted(&format!("(_{tag}=\\.=(.*?);\\.;)"))
            );
        }
        y.push_str("static_resources:\n");
        y.push_str("  listeners:\n");
        y.push_str("  - name: http\n");
        y.push_str("    stat_prefix: http\n");
        y.push_str(&address(4, &self.http_port));
        y.push_str("    filter_chains:\n");
        y.push_str("    - filters:\n");
        y.push_str(&indent_block(&self.connection_manager("http"), 6));
        if let Some(tls) = &self.tls {
            y.push_str("  - name: mtls\n");
            y.push_str("    stat_prefix: mtls\n");
            y.push_str(&address(4, &tls.port));
            y.push_str("    filter_chains:\n");
            y.push_str("    - transport_socket:\n");
            y.push_str("        name: envoy.transport_sockets.tls\n");
            y.push_str("        typed_config:\n");
            y.push_str("          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n");
            y.push_str("          require_client_certificate: true\n");
            y.push_str("          common_tls_context:\n");
            y.push_str("            tls_certificates:\n");
            let _ = writeln!(
                y,
                "            - certificate_chain: {{filename: {}}}",
                quoted(&tls.cert)
            );
            let _ = writeln!(
                y,
                "              private_key: {{filename: {}}}",
                quoted(&tls.key)
            );
            y.push_str("            validation_context:\n");
            let _ = writeln!(
                y,
                "              trusted_ca: {{filename: {}}}",
                quoted(&tls.client_ca)
            );
            y.push_str("      filters:\n");
            y.push_str(&indent_block(&self.connection_manager("mtls"), 6));
        }
        y.push_str("  clusters:\n");
        let mut clusters = vec![(UPSTREAM_CLUSTER, self.upstream_port.as_str())];
        clusters.extend(self.clusters.iter().map(|(n, p)| (n.as_str(), p.as_str())));
        for (name, port) in clusters {
            let _ = writeln!(y, "  - name: {}", quoted(name));
            y.push_str("    type: STATIC\n");
            y.push_str("    connect_timeout: 1s\n");
            y.push_str("    load_assignment:\n");
            let _ = writeln!(y, "      cluster_name: {}", quoted(name));
            y.push_str("      endpoints:\n");
            y.push_str("      - lb_endpoints:\n");
            y.push_str(
                "        - endpoint:
",
            );
            y.push_str(&address(12, port));
        }
        y
    }
}

/// Replaces every `${NAME}` in `template` with its value from `vars`; an unknown `${…}` left
/// over is an error naming it (so a template never reaches Envoy half-filled).
pub fn substitute(template: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    if let Some(at) = out.find("${") {
        let rest = out.get(at..).unwrap_or("");
        let end = rest.find('}').map_or(rest.len(), |e| e + 1);
        return Err(format!(
            "unfilled placeholder {}",
            rest.get(..end).unwrap_or(rest)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bootstrap {
        Bootstrap {
            header: "test".into(),
            admin_port: "${MG_ADMIN_PORT}".into(),
            http_port: "10000".into(),
            tls: Some(Tls {
                port: "10443".into(),
                cert: "/c/server.pem".into(),
                key: "/c/server.key".into(),
                client_ca: "/c/ca.pem".into(),
            }),
            upstream_port: "18080".into(),
            clusters: vec![(JWKS_CLUSTER.into(), "18081".into())],
            extra_log_fields: vec![("fs.x".into(), "%FILTER_STATE(wasm.x:PLAIN)%".into())],
            access_log: "/tmp/a.log".into(),
            plugins: vec![Plugin::new(
                "authz",
                "/w/meshguard_authz.wasm",
                "{\n  \"a\": \"b: c\"\n}".into(),
            )],
        }
    }

    #[test]
    fn renders_parseable_yaml_with_the_config_verbatim() {
        let yaml = substitute(&sample().render(), &[("MG_ADMIN_PORT", "9901".into())]).unwrap();
        let v: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        let listeners = v.pointer("/static_resources/listeners").unwrap();
        assert_eq!(listeners.as_array().unwrap().len(), 2);
        let hcm = listeners
            .pointer("/1/filter_chains/0/filters/0/typed_config")
            .unwrap();
        let wasm = hcm.pointer("/http_filters/0/typed_config/config").unwrap();
        assert_eq!(
            wasm.pointer("/configuration/value")
                .unwrap()
                .as_str()
                .unwrap(),
            "{\n  \"a\": \"b: c\"\n}\n"
        );
        assert_eq!(wasm["failure_policy"], "FAIL_CLOSED");
        assert_eq!(hcm["always_set_request_id_in_response"], true);
        let fmt = hcm
            .pointer("/access_log/0/typed_config/log_format/json_format")
            .unwrap();
        assert_eq!(
            fmt["audit_record"],
            "%FILTER_STATE(wasm.meshguard.audit.record:PLAIN)%"
        );
        assert_eq!(fmt["fs.x"], "%FILTER_STATE(wasm.x:PLAIN)%");
        let clusters = v.pointer("/static_resources/clusters").unwrap();
        assert_eq!(clusters[1]["name"], JWKS_CLUSTER);
        assert_eq!(
            v.pointer("/admin/address/socket_address/port_value")
                .unwrap(),
            9901
        );
        let tags = v
            .pointer("/stats_config/stats_tags")
            .unwrap()
            .as_array()
            .unwrap();
        assert!(tags
            .iter()
            .any(|t| t["regex"] == "(_outcome=\\.=(.*?);\\.;)"));
    }

    #[test]
    fn substitute_refuses_leftover_placeholders() {
        assert_eq!(
            substitute("a ${X} ${Y}", &[("X", "1".into())]).unwrap_err(),
            "unfilled placeholder ${Y}"
        );
        assert_eq!(substitute("${X}${X}", &[("X", "1".into())]).unwrap(), "11");
    }
}
