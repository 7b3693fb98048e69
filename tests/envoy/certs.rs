//! Test certificates for the mTLS listener, made by `envoy-config/gen-certs.sh` (openssl): a CA,
//! a server certificate for 127.0.0.1, and a client certificate per SPIFFE ID (its URI SAN).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::client::ClientCert;
use super::process::repo_root;

/// Generates the CA, the server certificate and one client certificate per id into `dir`.
/// With no id, one default client certificate is still made (the listener needs a CA).
pub fn generate(dir: &Path, spiffe_ids: &[String]) -> Result<BTreeMap<String, ClientCert>, String> {
    let script = repo_root().join("envoy-config/gen-certs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .args(spiffe_ids)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(spiffe_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                id.clone(),
                ClientCert {
                    ca: dir.join("ca.pem"),
                    cert: dir.join(format!("client{}.pem", i + 1)),
                    key: dir.join(format!("client{}.key", i + 1)),
                },
            )
        })
        .collect())
}
