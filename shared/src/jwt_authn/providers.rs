//! Compiling one provider: key source, validation settings, token locations and outputs.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::{parse_duration, ConfigErrors};
use crate::jwt::{Algorithm, KeySet, ValidationSettings};

use super::api_key;
use super::compile::{ClaimToHeader, KeySource, Provider, RemoteKeys};
use super::config::{RawOpenIdDiscovery, RawProvider, RawRemoteJwks};
use super::extract::{HeaderLocation, Locations};
use super::fetch::{discovery_uri, HttpTarget, KeyFetch};
use super::jwks::JwksPolicy;
use super::replay::ReplaySettings;
use super::secret::{self, Environment};

const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Compiles provider `name`, pushing errors under `providers.<name>`.
pub(crate) fn compile_provider(
    name: &str,
    p: &RawProvider,
    env: &dyn Environment,
    errs: &mut ConfigErrors,
) -> Option<Provider> {
    let path = format!("providers.{name}");
    let before = errs.0.len();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        errs.push(
            &path,
            "provider names are 1-64 characters of [A-Za-z0-9_-] (they appear in metric tags)",
        );
    }
    if p.issuer.as_deref() == Some("") {
        errs.push(format!("{path}.issuer"), "must not be empty");
    }
    for (i, a) in p.audiences.iter().enumerate() {
        if a.is_empty() {
            errs.push(format!("{path}.audiences[{i}]"), "must not be empty");
        }
    }
    let api_keys = p.api_keys.as_ref().and_then(|a| {
        api_key::refuse_jwt_fields(p, &path, errs);
        api_key::compile(
            a,
            p.issuer.as_deref(),
            env,
            &format!("{path}.api_keys"),
            errs,
        )
    });
    let keys = compile_keys(name, p, env, &path, errs);
    let allowed_algorithms = match p.api_keys {
        Some(_) => Vec::new(),
        None => compile_algorithms(p, &keys, &path, errs),
    };
    let max_token_bytes = p.max_token_bytes.unwrap_or(8192);
    if !(1..=65_536).contains(&max_token_bytes) {
        errs.push(format!("{path}.max_token_bytes"), "must be 1..=65536");
    }
    let max_claim_depth = p.max_claim_depth.unwrap_or(DEFAULT_MAX_CLAIM_DEPTH);
    if !(1..=100).contains(&max_claim_depth) {
        errs.push(format!("{path}.max_claim_depth"), "must be 1..=100");
    }
    if let Some(typ) = &p.required_typ {
        if typ.is_empty() {
            errs.push(format!("{path}.required_typ"), "must not be empty");
        }
    }
    let settings = ValidationSettings {
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        allowed_algorithms,
        require_exp: p.require_expiration.unwrap_or(true),
        clock_skew_seconds: p.clock_skew_seconds.unwrap_or(60),
        max_lifetime_seconds: p.max_lifetime_seconds,
        required_typ: p.required_typ.clone(),
        max_token_bytes,
        require_jti: p.require_jti,
    };
    let replay = p.jti_replay.as_ref().map(|r| {
        let rpath = format!("{path}.jti_replay");
        if !settings.require_exp {
            errs.push(
                &rpath,
                "requires `require_expiration: true` (a record lives until the token's exp)",
            );
        }
        ReplaySettings::compile(r, name, settings.clock_skew_seconds, &rpath, errs)
    });
    let settings = ValidationSettings {
        require_jti: settings.require_jti || replay.as_ref().is_some_and(|r| r.required),
        ..settings
    };
    if settings.clock_skew_seconds > 3600 {
        errs.push(format!("{path}.clock_skew_seconds"), "at most 3600");
    }
    let locations = compile_locations(p, &path, errs);
    let forward_payload_header = p
        .forward_payload_header
        .as_ref()
        .map(|h| check_output_header(h, &format!("{path}.forward_payload_header"), errs));
    let claim_to_headers = p
        .claim_to_headers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cpath = format!("{path}.claim_to_headers[{i}]");
            let header = check_output_header(&c.header_name, &format!("{cpath}.header_name"), errs);
            let claim_path: Vec<String> = c.claim_name.split('.').map(str::to_string).collect();
            if claim_path.iter().any(String::is_empty) {
                errs.push(
                    format!("{cpath}.claim_name"),
                    format!("{:?} is not a dot-separated claim path", c.claim_name),
                );
            }
            ClaimToHeader { header, claim_path }
        })
        .collect();
    if errs.0.len() != before {
        return None;
    }
    Some(Provider {
        name: name.to_string(),
        settings,
        keys: keys?,
        locations,
        forward: p.forward,
        forward_payload_header,
        claim_to_headers,
        api_keys,
        replay,
        max_claim_depth,
    })
}

/// Default `max_claim_depth`.
pub const DEFAULT_MAX_CLAIM_DEPTH: usize = 16;
/// Default `max_body_bytes` of a key fetch.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

fn max_body_bytes(v: Option<usize>, path: String, errs: &mut ConfigErrors) -> usize {
    let bytes = v.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1..=16 * 1024 * 1024).contains(&bytes) {
        errs.push(path, "must be 1..=16777216");
    }
    bytes
}

fn compile_keys(
    name: &str,
    p: &RawProvider,
    env: &dyn Environment,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<KeySource> {
    let sources = [
        p.local_jwks.is_some(),
        p.remote_jwks.is_some(),
        p.hmac_secret.is_some(),
        p.openid_discovery.is_some(),
        p.api_keys.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if sources != 1 {
        errs.push(
            path,
            "exactly one of `local_jwks`, `remote_jwks`, `hmac_secret`, `openid_discovery`, \
             `api_keys` is required",
        );
        return None;
    }
    if p.api_keys.is_some() {
        // No JWT keys: the key table is `Provider::api_keys`.
        return Some(KeySource::Static(KeySet::default()));
    }
    if let Some(local) = &p.local_jwks {
        return match KeySet::from_jwks_json(local.inline_string.as_bytes()) {
            Ok(keys) => Some(KeySource::Static(keys)),
            Err(e) => {
                errs.push(format!("{path}.local_jwks.inline_string"), e.to_string());
                None
            }
        };
    }
    if let Some(h) = &p.hmac_secret {
        let (field, text, what) = secret::hmac_text(h, env, &format!("{path}.hmac_secret"), errs)?;
        let secret = STANDARD
            .decode(text.trim())
            .or_else(|_| STANDARD_NO_PAD.decode(text.trim()));
        let Ok(secret) = secret else {
            errs.push(field, format!("{what} valid standard base64"));
            return None;
        };
        return match KeySet::from_hmac_secret(h.algorithm, &secret) {
            Ok(keys) => Some(KeySource::Static(keys)),
            // The error names lengths and the algorithm, never the secret.
            Err(e) => {
                errs.push(field, e.to_string());
                None
            }
        };
    }
    if let Some(r) = &p.remote_jwks {
        return remote_jwks(name, r, &format!("{path}.remote_jwks"), errs);
    }
    let d = p.openid_discovery.as_ref()?;
    let Some(issuer) = p.issuer.as_deref() else {
        errs.push(format!("{path}.issuer"), "required with `openid_discovery`");
        return None;
    };
    openid_discovery(name, issuer, d, &format!("{path}.openid_discovery"), errs)
}

fn duration(v: &Option<String>, default: Duration, path: String, errs: &mut ConfigErrors) -> u64 {
    match v.as_deref().map(parse_duration) {
        None => default.as_millis() as u64,
        Some(Ok(d)) => d.as_millis() as u64,
        Some(Err(e)) => {
            errs.push(path, e);
            0
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn policy(
    cache: &Option<String>,
    stale: &Option<String>,
    failed: &Option<String>,
    kid: &Option<String>,
    cold: &Option<String>,
    fetch_timeout_ms: u64,
    steps: u64,
    path: &str,
    timeout_path: &str,
    errs: &mut ConfigErrors,
) -> JwksPolicy {
    let d = JwksPolicy::default();
    let ms = Duration::from_millis;
    let p = JwksPolicy {
        cache_duration_ms: duration(
            cache,
            ms(d.cache_duration_ms),
            format!("{path}.cache_duration"),
            errs,
        ),
        max_stale_ms: duration(stale, ms(d.max_stale_ms), format!("{path}.max_stale"), errs),
        failed_refetch_ms: duration(
            failed,
            ms(d.failed_refetch_ms),
            format!("{path}.failed_refetch_duration"),
            errs,
        ),
        unknown_kid_interval_ms: duration(
            kid,
            ms(d.unknown_kid_interval_ms),
            format!("{path}.unknown_kid_refetch_interval"),
            errs,
        ),
        cold_start_timeout_ms: duration(
            cold,
            ms(d.cold_start_timeout_ms),
            format!("{path}.cold_start_timeout"),
            errs,
        ),
        fetch_timeout_ms,
        fetch_steps: steps,
    };
    if p.cache_duration_ms < 1_000 {
        errs.push(format!("{path}.cache_duration"), "at least 1s");
    }
    if p.fetch_timeout_ms == 0 {
        errs.push(timeout_path, "must be more than 0");
    }
    p
}

fn shared_key(cluster: &str, uri: &str) -> String {
    let digest = Sha256::digest(format!("{cluster}\n{uri}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("meshguard.jwt_authn.jwks.{hex}")
}

fn remote_jwks(
    _name: &str,
    r: &RawRemoteJwks,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<KeySource> {
    let timeout = duration(
        &r.http_uri.timeout,
        Duration::from_secs(5),
        format!("{path}.http_uri.timeout"),
        errs,
    );
    let policy = policy(
        &r.cache_duration,
        &r.max_stale,
        &r.failed_refetch_duration,
        &r.unknown_kid_refetch_interval,
        &r.cold_start_timeout,
        timeout,
        1,
        path,
        &format!("{path}.http_uri.timeout"),
        errs,
    );
    match HttpTarget::parse(
        &r.http_uri.uri,
        &r.http_uri.cluster,
        Duration::from_millis(timeout),
    ) {
        Ok(target) => Some(KeySource::Remote(RemoteKeys {
            shared_data_key: shared_key(&r.http_uri.cluster, &r.http_uri.uri),
            fetch: KeyFetch::Jwks(target),
            policy,
            max_body_bytes: max_body_bytes(
                r.max_body_bytes,
                format!("{path}.max_body_bytes"),
                errs,
            ),
        })),
        Err(e) => {
            errs.push(format!("{path}.http_uri"), e);
            None
        }
    }
}

fn openid_discovery(
    _name: &str,
    issuer: &str,
    d: &RawOpenIdDiscovery,
    path: &str,
    errs: &mut ConfigErrors,
) -> Option<KeySource> {
    let timeout = duration(
        &d.timeout,
        Duration::from_secs(5),
        format!("{path}.timeout"),
        errs,
    );
    let policy = policy(
        &d.cache_duration,
        &d.max_stale,
        &d.failed_refetch_duration,
        &d.unknown_kid_refetch_interval,
        &d.cold_start_timeout,
        timeout,
        2,
        path,
        &format!("{path}.timeout"),
        errs,
    );
    let uri = discovery_uri(issuer);
    match HttpTarget::parse(&uri, &d.cluster, Duration::from_millis(timeout)) {
        Ok(discovery) => Some(KeySource::Remote(RemoteKeys {
            shared_data_key: shared_key(&d.cluster, &uri),
            fetch: KeyFetch::Discovery {
                discovery,
                issuer: issuer.to_string(),
                jwks_cluster: d.jwks_cluster.clone().unwrap_or_else(|| d.cluster.clone()),
                timeout: Duration::from_millis(timeout),
            },
            policy,
            max_body_bytes: max_body_bytes(
                d.max_body_bytes,
                format!("{path}.max_body_bytes"),
                errs,
            ),
        })),
        Err(e) => {
            errs.push(path, format!("issuer as discovery base: {e}"));
            None
        }
    }
}

fn compile_algorithms(
    p: &RawProvider,
    keys: &Option<KeySource>,
    path: &str,
    errs: &mut ConfigErrors,
) -> Vec<Algorithm> {
    let field = format!("{path}.allowed_algorithms");
    if let Some(h) = &p.hmac_secret {
        let algs = p
            .allowed_algorithms
            .clone()
            .unwrap_or_else(|| vec![h.algorithm]);
        if algs.iter().any(|a| *a != h.algorithm) {
            errs.push(
                field,
                format!("an {} secret only verifies {}", h.algorithm, h.algorithm),
            );
        }
        return algs;
    }
    let default: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| !HMAC.contains(a))
        .collect();
    let algs = p.allowed_algorithms.clone().unwrap_or(default);
    if algs.is_empty() {
        errs.push(&field, "must not be empty");
    }
    if matches!(keys, Some(KeySource::Remote(_))) && algs.iter().any(|a| HMAC.contains(a)) {
        errs.push(
            field,
            "HMAC algorithms are refused for remote keys (shared secrets are never fetched)",
        );
    }
    algs
}

fn compile_locations(p: &RawProvider, path: &str, errs: &mut ConfigErrors) -> Locations {
    let none_given =
        p.from_headers.is_none() && p.from_params.is_none() && p.from_cookies.is_none();
    // API keys: a dedicated header, the whole value (Kong key-auth reads `apikey`).
    let (default_header, default_prefix) = match p.api_keys {
        Some(_) => ("x-api-key", ""),
        None => ("authorization", "Bearer "),
    };
    let headers = match &p.from_headers {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = h.name.to_ascii_lowercase();
                if !is_header_name(&name) || name == "cookie" {
                    errs.push(
                        format!("{path}.from_headers[{i}].name"),
                        format!("invalid header name {:?}", h.name),
                    );
                }
                HeaderLocation {
                    name,
                    value_prefix: h.value_prefix.clone(),
                }
            })
            .collect(),
        None if none_given => vec![HeaderLocation {
            name: default_header.to_string(),
            value_prefix: default_prefix.to_string(),
        }],
        None => Vec::new(),
    };
    let check_names =
        |list: &Option<Vec<String>>, field: &str, errs: &mut ConfigErrors| -> Vec<String> {
            let list = list.clone().unwrap_or_default();
            for (i, n) in list.iter().enumerate() {
                if n.is_empty() || n.contains(['=', ';', '&', ' ']) {
                    errs.push(
                        format!("{path}.{field}[{i}]"),
                        format!("invalid name {n:?}"),
                    );
                }
            }
            list
        };
    let params = check_names(&p.from_params, "from_params", errs);
    let cookies = check_names(&p.from_cookies, "from_cookies", errs);
    if headers.is_empty() && params.is_empty() && cookies.is_empty() {
        errs.push(
            path,
            "no token location (from_headers, from_params, from_cookies are all empty)",
        );
    }
    Locations {
        headers,
        params,
        cookies,
    }
}

/// RFC 9110 token characters, lower-case.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fn check_output_header(name: &str, path: &str, errs: &mut ConfigErrors) -> String {
    let lower = name.to_ascii_lowercase();
    const RESERVED: [&str; 8] = [
        "host",
        "authorization",
        "cookie",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
    ];
    if !is_header_name(&lower) {
        errs.push(path, format!("invalid header name {name:?}"));
    } else if RESERVED.contains(&lower.as_str()) {
        errs.push(path, format!("{name:?} cannot be an output header"));
    }
    lower
}
