//! Cost of a full request lifecycle through the passthrough filter (one worker, no hostcall
//! recording): context create, request headers, response headers, log, done, delete — against
//! the floor of calling an empty exported function (`proxy_abi_version_0_2_1`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshguard_harness::{Host, Request};
use meshguard_wasm_artifacts::PASSTHROUGH;

fn host() -> Option<Host> {
    Host::builder(PASSTHROUGH)
        .plugin_config_json(serde_json::json!({}))
        .record_hostcalls(false)
        .build()
        .map_err(|e| eprintln!("cannot build the host: {e}"))
        .ok()
}

const HEADERS: [(&str, &str); 6] = [
    (":method", "GET"),
    (":path", "/orders/42"),
    (":authority", "shop.example.com"),
    (":scheme", "https"),
    ("user-agent", "bench"),
    ("x-request-id", "4f2c1a"),
];

fn bench(c: &mut Criterion) {
    let Some(host) = host() else { return };
    let mut group = c.benchmark_group("passthrough");
    group.throughput(Throughput::Elements(1));
    group.bench_function("empty_export_call", |b| {
        b.iter(|| host.call_void_export(0, 0, "proxy_abi_version_0_2_1"))
    });
    group.bench_function("request_lifecycle_stream_api", |b| {
        b.iter(|| -> meshguard_harness::Result<()> {
            let mut s = host.stream_on(0)?;
            s.request_headers(HEADERS, true)?;
            s.response_headers([(":status", "200"), ("content-length", "0")], true)?;
            s.finish()
        })
    });
    group.bench_function("request_lifecycle_send", |b| {
        b.iter(|| host.send(Request::get("/orders/42").header("user-agent", "bench")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
