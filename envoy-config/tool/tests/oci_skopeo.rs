//! The OCI layout `meshguard oci` writes, read back by independent implementations: `skopeo`
//! (containers/image, what pushes it to a registry) inspects and copies it — copying verifies
//! every blob's digest — and the `oci-spec` crate parses its index and manifest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

use meshguard_tool::oci::{self, ImageOptions};

/// `skopeo`, installed with apt when missing and running as root in CI; otherwise its absence
/// fails the test (the point is an independent reader).
fn skopeo() -> String {
    let have = || {
        Command::new("skopeo")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if root && std::env::var_os("CI").is_some() {
            let ok = Command::new("sh")
                .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "apt-get install skopeo failed");
        }
    }
    assert!(
        have(),
        "skopeo is needed to check the OCI layout independently: apt-get install skopeo"
    );
    "skopeo".to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A small but valid WebAssembly module: the header plus a custom section.
fn module(dir: &Path) -> std::path::PathBuf {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    let name = b"meshguard-test";
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let size = 1 + name.len() + payload.len();
    bytes.push(0); // custom section
    let mut n = size;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    let path = dir.join("plugin-src.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn skopeo_reads_the_layout_and_verifies_every_digest() {
    let skopeo = skopeo();
    let tmp = tempfile::tempdir().unwrap();
    let wasm = module(tmp.path());
    let layout = tmp.path().join("layout");
    let image = oci::package(
        &wasm,
        &layout,
        &ImageOptions {
            tag: "0.1.0".into(),
            title: "meshguard-authz".into(),
            version: "0.1.0".into(),
            source: Some("https://example.invalid/meshguard".into()),
            revision: Some("0123abcd".into()),
        },
    )
    .unwrap();
    let reference = format!("oci:{}:0.1.0", layout.display());

    // skopeo inspect: same manifest digest, one layer, the platform we wrote.
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new(&skopeo).args(["inspect", &reference]))).unwrap();
    assert_eq!(inspect["Digest"], image.manifest_digest.as_str());
    assert_eq!(inspect["Layers"], serde_json::json!([image.layer_digest]));
    assert_eq!(inspect["Os"], "wasip1");
    assert_eq!(inspect["Architecture"], "wasm");

    // The raw manifest, parsed by oci-spec: media types and annotations Istio relies on.
    let raw = run(Command::new(&skopeo).args(["inspect", "--raw", &reference]));
    let manifest = oci_spec::image::ImageManifest::from_reader(raw.as_bytes()).unwrap();
    assert_eq!(
        manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let layers = manifest.layers();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0].media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let annotations = manifest.annotations().clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("module.wasm.image/variant")
            .map(String::as_str),
        Some("compat")
    );
    assert_eq!(
        annotations
            .get("org.opencontainers.image.revision")
            .map(String::as_str),
        Some("0123abcd")
    );
    let index = oci_spec::image::ImageIndex::from_file(layout.join("index.json")).unwrap();
    assert_eq!(index.manifests().len(), 1);
    assert_eq!(
        index.manifests()[0].digest().to_string(),
        image.manifest_digest
    );

    // skopeo copy verifies each blob against its digest; the copied layer holds plugin.wasm.
    let copy = tmp.path().join("copy");
    run(Command::new(&skopeo).args(["copy", &reference, &format!("dir:{}", copy.display())]));
    let layer_hex = image.layer_digest.trim_start_matches("sha256:");
    let layer = std::fs::read(copy.join(layer_hex)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut found = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "plugin.wasm" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            found = Some(bytes);
        }
    }
    assert_eq!(
        found.as_deref(),
        Some(std::fs::read(&wasm).unwrap().as_slice())
    );

    // A flipped byte in the layer makes skopeo refuse the copy.
    let blob = layout.join("blobs/sha256").join(layer_hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let out = Command::new(&skopeo)
        .args([
            "copy",
            &reference,
            &format!("dir:{}", tmp.path().join("copy2").display()),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "skopeo copied a layout with a corrupt blob"
    );
}
