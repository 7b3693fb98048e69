//! Sending a test request to Envoy: plain HTTP/1.1 over a raw socket (headers exactly as given,
//! duplicates and any bytes included), or over mutual TLS with `curl` and a client
//! certificate whose URI SAN is the peer's SPIFFE ID.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use meshguard_tool::demo::http::{self, Message};

/// A request as the test sends it.
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// Method.
    pub method: String,
    /// Path with query, sent as is (no normalisation by the client).
    pub path: String,
    /// Headers, `host` included when the test wants a specific authority.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Req {
    /// A GET of `path` with `host: example.com`.
    pub fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("host".into(), b"example.com".to_vec())],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }
}

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The CA that signed the server certificate (and the client's).
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client key (PEM).
    pub key: PathBuf,
}

/// Sends `req` over plain HTTP/1.1.
pub fn send_plain(addr: SocketAddr, req: &Req) -> Result<Message, String> {
    http::send(
        addr,
        &req.method,
        &req.path,
        &req.headers,
        &req.body,
        Duration::from_secs(30),
    )
    .map_err(|e| format!("{} {} to {addr}: {e}", req.method, req.path))
}

/// Sends `req` over mutual TLS with `curl`.
pub fn send_mtls(
    addr: SocketAddr,
    cert: &ClientCert,
    req: &Req,
    scratch: &Path,
) -> Result<Message, String> {
    let head_file = scratch.join("curl-head.txt");
    let body_file = scratch.join("curl-body.bin");
    let req_body = scratch.join("curl-req-body.bin");
    let _ = std::fs::remove_file(&head_file);
    let _ = std::fs::remove_file(&body_file);
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--http1.1",
        "--path-as-is",
        "--max-time",
        "30",
        "-X",
        &req.method,
    ])
    .arg("--cacert")
    .arg(&cert.ca)
    .arg("--cert")
    .arg(&cert.cert)
    .arg("--key")
    .arg(&cert.key)
    .arg("-D")
    .arg(&head_file)
    .arg("-o")
    .arg(&body_file)
    // Don't add headers the raw client wouldn't send.
    .args(["-H", "accept:", "-H", "user-agent:"]);
    for (name, value) in &req.headers {
        let mut arg = std::ffi::OsString::from(format!("{name}:"));
        if value.is_empty() {
            arg = std::ffi::OsString::from(format!("{name};"));
        } else {
            use std::os::unix::ffi::OsStringExt;
            let mut bytes = arg.into_vec();
            bytes.push(b' ');
            bytes.extend_from_slice(value);
            arg = std::ffi::OsString::from_vec(bytes);
        }
        cmd.arg("-H").arg(arg);
    }
    if !req.body.is_empty() {
        std::fs::write(&req_body, &req.body).map_err(|e| e.to_string())?;
        cmd.arg("--data-binary")
            .arg(format!("@{}", req_body.display()));
    }
    cmd.arg(format!("https://{addr}{}", req.path));
    let out = cmd.output().map_err(|e| format!("running curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {} {}: {}",
            req.method,
            req.path,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let head = std::fs::read(&head_file).map_err(|e| format!("{}: {e}", head_file.display()))?;
    // Skip interim (1xx) blocks: the last head is the response.
    let text = String::from_utf8_lossy(&head).replace("\r\n", "\n");
    let last = text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .ok_or("curl wrote no response head")?;
    let head = format!("{last}\n\n");
    let mut msg = http::read_message(&mut head.as_bytes(), true)
        .map_err(|e| e.to_string())?
        .ok_or("empty response head")?;
    msg.body = std::fs::read(&body_file).unwrap_or_default();
    Ok(msg)
}
