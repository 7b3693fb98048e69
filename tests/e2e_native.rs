//! Envoy's native jwt_authn in front of meshguard's authz, ratelimit and audit filters
//! (`envoy-config/native/native-jwt-chain.yaml`, run as committed): Envoy verifies the token and
//! writes the payload into dynamic metadata (`payload_in_metadata: payload`, Istio's key); our
//! filters read it through the property `metadata.filter_metadata["envoy.filters.http.jwt_authn"]
//! ["payload"]` (a serialized `google.protobuf.Struct` in Envoy 1.40) with
//! `claims_source.envoy_jwt_authn`, and act on its claims: allowed, denied, limited, recorded.

use meshguard_tool::bootstrap;
use meshguard_tool::demo::keys::{jwks, SigningKey};
use meshguard_tool::demo::servers::Upstream;
use serde_json::{json, Map, Value};

use crate::envoy::chain::{serial, tempdir, wasm_dir, AUD, ISS};
use crate::envoy::client::{send_plain, Req};
use crate::envoy::process::{envoy_binary, repo_root, Envoy};

const OTHER_ISS: &str = "https://other.e2e.test";

/// The audit record of the access-log entry for `path`.
fn audit_record(entries: &[Value], path: &str) -> Value {
    let entry = entries
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no access-log entry for {path}: {entries:?}"));
    let text = entry["audit_record"].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: record {text:?}: {e}"))
}

#[test]
fn native_jwt_authn_claims_drive_authz_ratelimit_and_audit() {
    let Some(envoy_bin) = envoy_binary() else {
        return;
    };
    let _one = serial();
    let dir = tempdir();
    let key = SigningKey::generate("native-1");
    let app = Upstream::start(0).unwrap();
    let access_log = dir.path().join("access.log");
    let template =
        std::fs::read_to_string(repo_root().join("envoy-config/native/native-jwt-chain.yaml"))
            .unwrap();
    let vars = [
        ("MG_WASM_DIR", wasm_dir().display().to_string()),
        ("MG_ADMIN_PORT", "0".to_string()),
        ("MG_HTTP_PORT", "0".to_string()),
        ("MG_UPSTREAM_PORT", app.port().to_string()),
        ("MG_ACCESS_LOG", access_log.display().to_string()),
        (
            "MG_NATIVE_JWKS",
            serde_json::to_string(&jwks(&[&key])).unwrap(),
        ),
    ];
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, bootstrap::substitute(&template, &vars).unwrap()).unwrap();
    let envoy = Envoy::start(&envoy_bin, &config, dir.path(), &access_log, 2).unwrap();
    let addr = envoy.listener("http");

    let token = |iss: &str, sub: &str, roles: Value| {
        let extra: Map<String, Value> = json!({"roles": roles}).as_object().cloned().unwrap();
        key.mint(iss, sub, AUD, 3600, &extra).unwrap()
    };
    let send = |path: &str, bearer: Option<&str>, extra: &[(&str, &str)]| {
        let mut req = Req::get(path);
        if let Some(t) = bearer {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        for (n, v) in extra {
            req = req.header(n, v);
        }
        send_plain(addr, &req).unwrap().status()
    };

    let alice = token(ISS, "alice", json!(["reader"]));
    let alice_statuses: Vec<u16> = (1..=4)
        .map(|i| send(&format!("/alice/{i}"), Some(&alice), &[]))
        .collect();
    // 3 per hour per subject, exact across both workers.
    assert_eq!(
        alice_statuses,
        [200, 200, 200, 429],
        "{}",
        envoy.log_tail(30)
    );

    let bob = token(ISS, "bob", json!(["writer"]));
    assert_eq!(
        send("/bob", Some(&bob), &[]),
        403,
        "claims without the role"
    );
    assert_eq!(
        send("/anonymous", None, &[]),
        403,
        "no token: unauthenticated"
    );
    let forged = json!({"iss": ISS, "sub": "alice", "roles": ["reader"]}).to_string();
    assert_eq!(
        send(
            "/spoofed",
            None,
            &[("x-jwt-payload", &forged), ("x-meshguard-subject", "alice")]
        ),
        403,
        "headers never stand in for metadata"
    );
    // Verified by Envoy (provider `other`, same metadata key) but not an accepted issuer.
    let carol = token(OTHER_ISS, "carol", json!(["reader"]));
    assert_eq!(send("/other-issuer", Some(&carol), &[]), 403);
    // A bad token never reaches our filters: Envoy's jwt_authn answers.
    assert_eq!(send("/bad-token", Some("e30.e30.e30"), &[]), 401);

    let entries = envoy.wait_access_log(10);
    let r = audit_record(&entries, "/alice/1");
    assert_eq!(r["attributes"]["user.id"], "alice", "{r}");
    assert_eq!(r["attributes"]["meshguard.authn.provider"], "e2e");
    assert_eq!(r["attributes"]["meshguard.authn.issuer"], ISS);
    assert_eq!(r["attributes"]["meshguard.decision"], "allow");
    let r = audit_record(&entries, "/alice/4");
    assert_eq!(r["attributes"]["user.id"], "alice");
    assert_eq!(r["attributes"]["meshguard.denied_by"], "ratelimit");
    let r = audit_record(&entries, "/bob");
    assert_eq!(r["attributes"]["user.id"], "bob");
    assert_eq!(r["attributes"]["meshguard.denied_by"], "authz");
    for path in ["/spoofed", "/other-issuer"] {
        let r = audit_record(&entries, path);
        assert_eq!(r["attributes"].get("user.id"), None, "{path}: {r}");
        assert_eq!(r["attributes"]["meshguard.denied_by"], "authz", "{path}");
    }
    assert_eq!(
        audit_record(&entries, "/other-issuer")["attributes"]["meshguard.authn.reason"],
        "issuer_not_accepted"
    );
    // Envoy did write the payload for the other issuer: only the issuer check refused it.
    let other = entries
        .iter()
        .find(|e| e["path"] == "/other-issuer")
        .unwrap();
    assert_eq!(other["jwt_payload"]["iss"], OTHER_ISS, "{other}");
    assert!(envoy.errors().is_empty(), "{:?}", envoy.errors());
}
