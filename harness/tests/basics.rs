//! The passthrough filter through the whole lifecycle, one and several workers.

use meshguard_harness::{Action, Host, HostEvent, Request};
use meshguard_wasm_artifacts::PASSTHROUGH;

#[test]
fn passthrough_forwards_request_and_response() -> meshguard_harness::Result<()> {
    let host = Host::builder(PASSTHROUGH).build()?;
    let out = host.send(
        Request::get("/orders")
            .header("x-a", "1")
            .header("x-a", "2"),
    )?;
    assert_eq!(out.status, 200);
    assert_eq!(out.action, Action::Continue);
    let up = out
        .upstream_headers
        .clone()
        .ok_or_else(|| meshguard_harness::HarnessError::Invalid("no upstream".into()))?;
    assert_eq!(up.get_all("x-a"), vec!["1", "2"]);
    assert!(out.local_reply.is_none());
    assert!(host.traps().is_empty(), "{:?}", host.traps());
    let callbacks: Vec<&str> = host
        .events()
        .iter()
        .filter_map(|e| match e {
            HostEvent::Callback {
                name,
                worker: Some(0),
                ..
            } => Some(*name),
            _ => None,
        })
        .collect();
    assert_eq!(
        callbacks,
        vec![
            "_initialize",
            "proxy_on_context_create",
            "proxy_on_vm_start",
            "proxy_on_configure",
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete",
        ]
    );
    Ok(())
}
