//! The deployed chain (jwt-authn → authz → ratelimit → audit, the example configs the e2e chain
//! and the demo use: `envoy-config/examples/*.json`) in the harness, ES256 tokens with chosen
//! times, and the invariants every fault test checks.

use std::sync::OnceLock;

use jwt_simple::prelude::{
    Claims, Duration as JwtDuration, ECDSAP256KeyPairLike, ES256KeyPair, UnixTimeStamp,
};
use meshguard_harness::{
    Clock, FailurePolicy, Host, HostBuilder, HttpResponse, LogLevel, Outcome, Request, Upstream,
};
use meshguard_wasm_artifacts::{ABI_PROBE, AUDIT, AUTHZ, JWT_AUTHN, RATELIMIT};
use serde_json::{json, Map, Value};

/// Fake-clock start (Unix seconds).
pub const NOW: u64 = 1_800_000_000;
/// The examples' issuer and audience.
pub const ISS: &str = "https://auth.meshguard.test";
pub const AUD: &str = "demo-api";
/// The examples' JWKS cluster.
pub const JWKS_CLUSTER: &str = "meshguard_jwks";

pub const FETCH_OK: &str = "meshguard_jwt_authn_jwks_fetch_total_provider=.=demo;.;_result=.=ok;.;";
pub const FETCH_FAILED: &str =
    "meshguard_jwt_authn_jwks_fetch_total_provider=.=demo;.;_result=.=failed;.;";
pub const FETCH_TOO_LARGE: &str =
    "meshguard_jwt_authn_jwks_fetch_total_provider=.=demo;.;_result=.=too_large;.;";

/// Example config of `filter` (`jwt_authn`, `authz`, `ratelimit`, `audit`).
pub fn example(filter: &str) -> Value {
    let text = match filter {
        "jwt_authn" => include_str!("../../envoy-config/examples/jwt_authn.json"),
        "authz" => include_str!("../../envoy-config/examples/authz.json"),
        "ratelimit" => include_str!("../../envoy-config/examples/ratelimit.json"),
        "audit" => include_str!("../../envoy-config/examples/audit.json"),
        other => panic!("no example config for {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// The signing key (ES256, `kid` demo-1), generated once per test process.
pub fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("demo-1"))
}

/// The JWKS with the public key.
pub fn jwks() -> String {
    let text = key().public_key().to_jwk();
    let mut jwk: Value = serde_json::from_str(&text).unwrap();
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    jwk["kid"] = json!("demo-1");
    json!({ "keys": [jwk] }).to_string()
}

/// A 200 JWKS response.
pub fn jwks_response() -> HttpResponse {
    HttpResponse::ok()
        .header("content-type", "application/json")
        .body(jwks().into_bytes())
}

/// A token for `sub` with `extra` claims, issued at `iat`, valid until `exp` (Unix seconds).
pub fn token_at(sub: &str, extra: Value, iat: u64, exp: u64) -> String {
    let extra: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    let mut claims = Claims::with_custom_claims(extra, JwtDuration::from_secs(1))
        .with_issuer(ISS)
        .with_subject(sub)
        .with_audience(AUD);
    claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
    claims.invalid_before = Some(UnixTimeStamp::from_secs(iat));
    claims.expires_at = Some(UnixTimeStamp::from_secs(exp));
    key().sign(claims).unwrap()
}

/// A reader's token valid for an hour from [`NOW`].
pub fn reader(sub: &str) -> String {
    token_at(sub, json!({"roles": ["reader"]}), NOW, NOW + 3600)
}

/// How to build the chain.
pub struct Chain {
    pub workers: usize,
    pub jwks: Upstream,
    /// Overrides of the example configs, by filter name.
    pub configs: Vec<(&'static str, Value)>,
    pub policy: FailurePolicy,
    /// Put the abi-probe filter between authz and ratelimit (driven by `x-probe-*` headers).
    pub probe: bool,
    pub memory_limit: Option<usize>,
    pub quiet: bool,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain {
            workers: 1,
            jwks: Upstream::respond(jwks_response()),
            configs: Vec::new(),
            policy: FailurePolicy::FailClosed,
            probe: false,
            memory_limit: None,
            quiet: false,
        }
    }
}

impl Chain {
    fn config(&self, name: &str) -> Value {
        self.configs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| example(name))
    }

    /// The builder (filters named, `vm_id` `meshguard_<name>` and `root_id` as the e2e
    /// bootstraps set them).
    pub fn builder(&self) -> HostBuilder {
        let mut b = Host::builder(JWT_AUTHN);
        b = self.filter(b, "jwt_authn");
        b = self.filter(b.then(AUTHZ), "authz");
        if self.probe {
            b = b
                .then(ABI_PROBE)
                .name("probe")
                .root_id("probe")
                .vm_id("meshguard_probe")
                .plugin_config_json(json!({}))
                .failure_policy(self.policy);
        }
        b = self.filter(b.then(RATELIMIT), "ratelimit");
        b = self.filter(b.then(AUDIT), "audit");
        b = b
            .workers(self.workers)
            .clock(Clock::fixed_unix(NOW))
            .upstream(JWKS_CLUSTER, self.jwks.clone())
            .memory_limit(self.memory_limit.or(Some(512 << 20)));
        if self.quiet {
            b = b.log_level(LogLevel::Warn).record_hostcalls(false);
        }
        b
    }

    fn filter(&self, b: HostBuilder, name: &str) -> HostBuilder {
        b.name(name)
            .root_id(name)
            .vm_id(&format!("meshguard_{name}"))
            .plugin_config_json(self.config(name))
            .failure_policy(FailurePolicy::FailClosed)
    }

    pub fn build(&self) -> Host {
        self.builder().build().unwrap()
    }
}

/// Index of a filter in the chain built by [`Chain`] (without / with the probe).
pub fn index(name: &str, probe: bool) -> usize {
    let order: &[&str] = if probe {
        &["jwt_authn", "authz", "probe", "ratelimit", "audit"]
    } else {
        &["jwt_authn", "authz", "ratelimit", "audit"]
    };
    order.iter().position(|n| *n == name).unwrap()
}

/// GET `/api/orders` with a bearer token.
pub fn bearer(token: &str) -> Request {
    Request::get("/api/orders").header("authorization", format!("Bearer {token}"))
}

/// The invariants of every request in these tests: it finished; a 5xx is only ever the 503 of a
/// failed VM (`wasm_fail_stream`) or the application's own answer, never a filter's decision;
/// an admitted request reached the upstream with the verified subject, a refused one did not.
pub fn guard(out: &Outcome) {
    assert!(!out.stuck, "request left hanging: {:?}", out.logs);
    if let Some(reply) = &out.local_reply {
        assert!(
            reply.status < 500 || reply.details == "wasm_fail_stream",
            "a filter answered {} ({}): {:?}",
            reply.status,
            reply.details,
            out.logs
        );
        assert!(out.upstream_headers.is_none(), "refused but forwarded");
    }
}

/// [`guard`], and the request was refused with `status` (never forwarded).
pub fn refused(out: &Outcome, status: u16) {
    guard(out);
    assert_eq!(out.status, status, "{:?}", out.logs);
    assert!(
        out.upstream_headers.is_none(),
        "an unverified request reached the upstream"
    );
}

/// [`guard`], and the request reached the upstream as `sub`.
pub fn admitted(out: &Outcome, sub: &str) {
    guard(out);
    assert_eq!(out.status, 200, "{:?} {:?}", out.local_reply, out.logs);
    assert_eq!(out.upstream_header("x-jwt-sub").as_deref(), Some(sub));
}

/// jwt-authn's refusal reason in filter state.
pub fn authn_reason(out: &Outcome) -> Option<String> {
    out.filter_state
        .get("wasm.meshguard.jwt_authn.reason")
        .cloned()
}
