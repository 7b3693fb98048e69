//! Envoy behaviours beyond the first gotcha tests (shared/research/proxy-wasm-abi.md §8): the
//! start-up hostcall restriction (§8.14), the route-cache side effect of request-header edits
//! (§8.21), repeated header lines merged as Envoy's codecs and header maps do, and workers racing
//! on shared data. Each test fails on a permissive host.

mod common;

use common::{probe, probe_request, result, TestResult};
use meshguard_harness::{HarnessError, HeaderCodec, Host, HttpResponse, Request, Status};
use meshguard_wasm_artifacts::PASSTHROUGH;
use serde_json::json;

/// A minimal proxy-wasm module (encoded by hand, no toolchain needed) whose `_initialize` or
/// `main` makes the hostcall `call` (`tick` = `proxy_set_tick_period_milliseconds(1000)`, `log` =
/// `proxy_log(2, 0, 0)`), and otherwise accepts every callback.
fn start_probe_module(call: &str, from_main: bool) -> Vec<u8> {
    fn leb(mut n: u32, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u32, out);
        out.extend_from_slice(body);
    }
    fn name(s: &str, out: &mut Vec<u8>) {
        leb(s.len() as u32, out);
        out.extend_from_slice(s.as_bytes());
    }
    const I32: u8 = 0x7f;
    // Types: 0 (i32)->i32, 1 ()->(), 2 (i32,i32)->(), 3 (i32,i32)->i32, 4 (i32,i32,i32)->i32.
    let types: [(&[u8], &[u8]); 5] = [
        (&[I32], &[I32]),
        (&[], &[]),
        (&[I32, I32], &[]),
        (&[I32, I32], &[I32]),
        (&[I32, I32, I32], &[I32]),
    ];
    let mut body = vec![types.len() as u8];
    for (params, results) in types {
        body.push(0x60);
        body.push(params.len() as u8);
        body.extend_from_slice(params);
        body.push(results.len() as u8);
        body.extend_from_slice(results);
    }
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    section(1, &body, &mut out);
    // Imports: func 0 = env.proxy_set_tick_period_milliseconds, func 1 = env.proxy_log.
    let mut body = vec![2];
    for (field, ty) in [("proxy_set_tick_period_milliseconds", 0), ("proxy_log", 4)] {
        name("env", &mut body);
        name(field, &mut body);
        body.extend_from_slice(&[0x00, ty]);
    }
    section(2, &body, &mut out);
    // Functions 2..: _initialize, main, abi marker, allocator, context_create, vm_start, configure.
    let funcs: [(&str, u8); 7] = [
        ("_initialize", 1),
        ("main", 3),
        ("proxy_abi_version_0_2_1", 1),
        ("proxy_on_memory_allocate", 0),
        ("proxy_on_context_create", 2),
        ("proxy_on_vm_start", 3),
        ("proxy_on_configure", 3),
    ];
    let mut body = vec![funcs.len() as u8];
    body.extend(funcs.iter().map(|(_, ty)| *ty));
    section(3, &body, &mut out);
    section(5, &[1, 0x00, 1], &mut out); // one memory, min 1 page
    let mut body = vec![funcs.len() as u8 + 1];
    name("memory", &mut body);
    body.extend_from_slice(&[0x02, 0]);
    for (i, (field, _)) in funcs.iter().enumerate() {
        name(field, &mut body);
        body.extend_from_slice(&[0x00, i as u8 + 2]);
    }
    section(7, &body, &mut out);
    // The hostcall: push its arguments, call, drop the status.
    let hostcall: Vec<u8> = match call {
        "tick" => vec![0x41, 0xe8, 0x07, 0x10, 0, 0x1a], // i32.const 1000; call 0; drop
        _ => vec![0x41, 2, 0x41, 0, 0x41, 0, 0x10, 1, 0x1a], // proxy_log(2, 0, 0); drop
    };
    let bodies: [Vec<u8>; 7] = [
        if from_main { vec![] } else { hostcall.clone() },
        if from_main {
            [hostcall, vec![0x41, 0]].concat()
        } else {
            vec![0x41, 0]
        },
        vec![],
        vec![0x41, 0x80, 0x08], // i32.const 1024
        vec![],
        vec![0x41, 1],
        vec![0x41, 1],
    ];
    let mut body = vec![bodies.len() as u8];
    for code in bodies {
        let mut f = vec![0]; // no locals
        f.extend_from_slice(&code);
        f.push(0x0b);
        leb(f.len() as u32, &mut body);
        body.extend_from_slice(&f);
    }
    section(10, &body, &mut out);
    out
}

fn write_module(label: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "meshguard-start-probe-{label}-{}.wasm",
        std::process::id()
    ));
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// §8.14: while `_initialize` and `main` run, cpp-host's `startVm` allows only `proxy_log` and
/// a WASI subset; any other hostcall traps (`restricted_callback`) and the VM never starts.
#[test]
fn g14b_hostcalls_during_start_are_restricted() -> TestResult {
    for (label, call, from_main) in [("init-tick", "tick", false), ("main-tick", "tick", true)] {
        let path = write_module(label, &start_probe_module(call, from_main))?;
        match Host::builder(&path).build() {
            Err(HarnessError::StartTrap(trap)) => {
                assert!(
                    trap.message
                        .contains("proxy_set_tick_period_milliseconds is not allowed"),
                    "{label}: {trap:?}"
                );
            }
            other => panic!("{label}: the VM started: {other:?}"),
        }
        let _ = std::fs::remove_file(&path);
    }
    // proxy_log is allowed there: the same module with a log call starts and configures.
    let path = write_module("init-log", &start_probe_module("log", false))?;
    let host = Host::builder(&path).build()?;
    assert_eq!(host.statuses_of("proxy_log"), vec![Status::Ok; 2]);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// §8.21: every add, replace, remove (even of an absent header) and set-pairs on the request
/// headers makes Envoy clear the route cache; reads and response-header edits do not.
#[test]
fn g21_request_header_edits_clear_the_route_cache() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(probe_request(&[
        (
            "request_headers",
            "get_header:request=x-a;add_header:request=x-a=1;set_header:request=x-b=2;\
             remove_header:request=x-absent",
        ),
        ("response_headers", "set_header:response=x-r=1"),
    ]))?;
    assert_eq!(out.status, 200);
    assert_eq!(out.upstream_header("x-b").as_deref(), Some("2"));
    assert_eq!(out.route_cache_cleared, 3);
    let out = host.send(probe_request(&[(
        "request_headers",
        "get_header:request=x-a",
    )]))?;
    assert_eq!(out.route_cache_cleared, 0, "reads leave the route alone");
    let pass = Host::builder(PASSTHROUGH).build()?;
    assert_eq!(pass.send(Request::get("/"))?.route_cache_cleared, 0);
    Ok(())
}

fn seen_by_filter(codec: HeaderCodec, request: Request) -> Result<String, String> {
    let host = probe(json!({}))
        .header_codec(codec)
        .build()
        .map_err(|e| e.to_string())?;
    let out = host
        .send(request.header("x-probe-request-headers", "get_headers:request"))
        .map_err(|e| e.to_string())?;
    result(&out.logs, "request_headers", "get_headers:request").ok_or("no log".into())
}

/// Repeated request lines as Envoy 1.40 hands them to a filter: inline headers (here
/// `authorization`, `x-forwarded-for`) joined with `,`, others (`x-custom`) kept apart, `cookie`
/// lines kept apart over HTTP/1.1 and joined with `; ` over HTTP/2; `Raw` keeps every line.
#[test]
fn repeated_request_lines_are_merged_as_envoy_does() -> TestResult {
    let request = || {
        Request::get("/")
            .header("authorization", "Bearer a")
            .header("x-custom", "1")
            .header("Authorization", "Bearer b")
            .header("x-custom", "2")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x-forwarded-for", "1.1.1.1")
            .header("x-forwarded-for", "2.2.2.2")
    };
    let h1 = seen_by_filter(HeaderCodec::Http1, request())?;
    assert!(h1.contains(r#""authorization=Bearer a,Bearer b""#), "{h1}");
    assert!(h1.contains(r#""x-custom=1", "x-custom=2""#), "{h1}");
    assert!(h1.contains(r#""cookie=a=1", "cookie=b=2""#), "{h1}");
    assert!(h1.contains(r#""x-forwarded-for=1.1.1.1,2.2.2.2""#), "{h1}");
    let h2 = seen_by_filter(HeaderCodec::Http2, request())?;
    assert!(h2.contains(r#""cookie=a=1; b=2""#), "{h2}");
    assert!(h2.contains(r#""authorization=Bearer a,Bearer b""#), "{h2}");
    let raw = seen_by_filter(HeaderCodec::Raw, request())?;
    assert!(
        raw.contains(r#""authorization=Bearer a""#) && raw.contains(r#""authorization=Bearer b""#),
        "{raw}"
    );
    Ok(())
}

/// A filter's `add_header_map_value` is Envoy's `addCopy`: an inline header is joined, others get
/// a second entry; repeated response lines follow the response-side inline set.
#[test]
fn filter_adds_and_response_lines_follow_the_inline_rule() -> TestResult {
    let host = probe(json!({})).build()?;
    let out = host.send(
        probe_request(&[(
            "request_headers",
            "add_header:request=x-forwarded-for=2.2.2.2;add_header:request=x-tag=b",
        )])
        .header("x-forwarded-for", "1.1.1.1")
        .header("x-tag", "a")
        .respond_with(
            HttpResponse::ok()
                .header("etag", "\"1\"")
                .header("etag", "\"2\"")
                .header("set-cookie", "a=1")
                .header("set-cookie", "b=2"),
        ),
    )?;
    let up = out.upstream_headers.clone().ok_or("no upstream")?;
    assert_eq!(up.get_all("x-forwarded-for"), vec!["1.1.1.1,2.2.2.2"]);
    assert_eq!(up.get_all("x-tag"), vec!["a", "b"]);
    let down = out.response_headers.clone().ok_or("no response")?;
    assert_eq!(down.get_all("etag"), vec!["\"1\",\"2\""]);
    assert_eq!(down.get_all("set-cookie"), vec!["a=1", "b=2"]);
    Ok(())
}

/// `Host::race`: every worker reads shared data as it was when the race began until it writes
/// itself; CAS is checked against the live data, so the loser of a read-then-CAS sees a mismatch.
#[test]
fn racing_workers_read_before_anyone_writes() -> TestResult {
    let host = probe(json!({})).workers(2).vm_id("mesh").build()?;
    assert_eq!(host.set_shared_data("mesh", "k", b"old", 0), Status::Ok);
    let (_, cas) = host.shared_data("mesh", "k").ok_or("missing")?;
    let (first, second) = host.race(|| {
        let w0 = host.send(
            probe_request(&[("request_headers", &format!("shared_set:k=w0={cas}"))]).on_worker(0),
        );
        let w1 = host.send(
            probe_request(&[(
                "request_headers",
                &format!("shared_get:k;shared_set:k=w1={cas};shared_get:k"),
            )])
            .on_worker(1),
        );
        (w0, w1)
    });
    let (first, second) = (first?, second?);
    assert_eq!(
        result(
            &first.logs,
            "request_headers",
            &format!("shared_set:k=w0={cas}")
        )
        .as_deref(),
        Some("Ok(())")
    );
    let reads: Vec<_> = second
        .logs
        .iter()
        .filter_map(|l| {
            l.message
                .strip_prefix("probe request_headers shared_get:k -> ")
        })
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(
        reads[0].starts_with(r#"Ok((Some("old")"#),
        "snapshot: {reads:?}"
    );
    assert!(
        reads[1].starts_with(r#"Ok((Some("w0")"#),
        "live after its write: {reads:?}"
    );
    assert_eq!(
        result(
            &second.logs,
            "request_headers",
            &format!("shared_set:k=w1={cas}")
        )
        .as_deref(),
        Some("Err(CasMismatch)")
    );
    // Outside a race a worker reads the live value.
    let out = host.send(probe_request(&[("request_headers", "shared_get:k")]).on_worker(1))?;
    let got = result(&out.logs, "request_headers", "shared_get:k").ok_or("no log")?;
    assert!(got.starts_with(r#"Ok((Some("w0")"#), "{got}");
    Ok(())
}
