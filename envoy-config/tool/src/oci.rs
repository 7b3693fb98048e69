//! Packages a filter's `.wasm` as an OCI image layout that Istio's `WasmPlugin` can pull.
//!
//! The layout is the "compat" variant Istio's image fetcher accepts (`pkg/wasm/imagefetcher.go`):
//! an ordinary OCI image whose **last** layer is `application/vnd.oci.image.layer.v1.tar+gzip`
//! and holds a file named `plugin.wasm`. We write exactly one layer. The single-layer
//! `…content.layer.v1+wasm` artifact that `oras push` produces is *not* accepted by Istio (its
//! "oci" variant needs exactly two layers), which is why we do not write that form.
//!
//! Everything is deterministic: the tar entry has a fixed mode, owner and mtime, the gzip header
//! has no name or time, JSON maps are ordered. The same `.wasm` and options give the same
//! manifest digest, so the digest can be pinned in a `WasmPlugin` (`sha256:` field, or
//! `url: oci://…@sha256:…`); Istio verifies an OCI pull against the manifest digest.
//!
//! No Docker engine is involved. Push the layout with
//! `skopeo copy oci:<dir>:<tag> docker://<registry>/<name>:<tag>`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Media type of an OCI image index (`index.json`).
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip-compressed tar layer: the only one Istio's compat parsing accepts for
/// OCI manifests.
pub const MEDIA_TYPE_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file name Istio looks for inside the layer (by basename).
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// Annotation marking the solo-io/Istio "compat" variant (no longer required by Istio, still
/// read by other tooling).
pub const ANNOTATION_VARIANT: &str = "module.wasm.image/variant";

/// Why packaging or reading back an image failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output directory exists, is not empty and is not an OCI layout we can replace.
    #[error("{0}: exists and is not an OCI image layout; choose an empty or new directory")]
    NotALayout(PathBuf),
    /// The input is not a WebAssembly binary module.
    #[error("{0}: not a WebAssembly module (missing \\0asm magic)")]
    NotWasm(PathBuf),
    /// A JSON document of the layout could not be written or read.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The layout does not satisfy what Istio's image fetcher requires.
    #[error("not pullable by Istio as a compat image: {0}")]
    NotIstioCompat(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to put in the image besides the module.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// Tag recorded in `index.json` (`org.opencontainers.image.ref.name`); `skopeo` addresses
    /// the image as `oci:<dir>:<tag>`.
    pub tag: String,
    /// `org.opencontainers.image.title`, e.g. `meshguard-jwt-authn`.
    pub title: String,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.source` (repository URL), if any.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision` (commit), if any.
    pub revision: Option<String>,
}

/// The result of packaging: what to pin and how to address the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedImage {
    /// `sha256:<hex>` of the manifest: the value Istio verifies (`sha256: <hex>` in a
    /// `WasmPlugin`, or `@sha256:<hex>` in its `url`).
    pub manifest_digest: String,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// `sha256:<hex>` of the gzip layer.
    pub layer_digest: String,
    /// `sha256:<hex>` of the module itself (what `sha256` means for `file://`/`http://` URLs).
    pub wasm_sha256: String,
    /// The tag written into `index.json`.
    pub tag: String,
}

impl PackagedImage {
    /// The bare hex of the manifest digest, as the `WasmPlugin.sha256` field wants it.
    pub fn manifest_hex(&self) -> &str {
        self.manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&self.manifest_digest)
    }
}

/// An OCI content descriptor (digest, size, media type, annotations).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced blob.
    pub media_type: String,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// Blob size in bytes.
    pub size: u64,
    /// Annotations, ordered so the JSON is deterministic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (the subset we write and read).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MEDIA_TYPE_MANIFEST`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index (`index.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`MEDIA_TYPE_INDEX`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The manifests in the layout.
    pub manifests: Vec<Descriptor>,
}

fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A deterministic `tar.gz` holding `plugin.wasm` (mode 0644, uid/gid 0, mtime 0).
fn compat_layer(wasm: &[u8]) -> Result<(Vec<u8>, Vec<u8>), std::io::Error> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, PLUGIN_FILE, wasm)?;
    let tar_bytes = builder.into_inner()?;
    // No file name, mtime 0, OS "unknown": the gzip header carries nothing that varies.
    let mut gz = flate2::GzBuilder::new()
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar_bytes)?;
    let gz_bytes = gz.finish()?;
    Ok((tar_bytes, gz_bytes))
}

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, OciError> {
    serde_json::to_vec(value).map_err(|source| OciError::Json {
        what: what.to_string(),
        source,
    })
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Result<String, OciError> {
    let digest = sha256_digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    let path = dir.join("blobs").join("sha256").join(hex);
    fs::write(&path, bytes).map_err(io_err(&path))?;
    Ok(digest)
}

/// Prepares `out`: creates it, or clears an OCI layout found there. Refuses anything else.
fn prepare_dir(out: &Path) -> Result<(), OciError> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(io_err(out))?;
        let empty = entries.next().is_none();
        if !empty {
            if !out.join("oci-layout").is_file() {
                return Err(OciError::NotALayout(out.to_path_buf()));
            }
            let blobs = out.join("blobs");
            if blobs.exists() {
                fs::remove_dir_all(&blobs).map_err(io_err(&blobs))?;
            }
        }
    }
    let blob_dir = out.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io_err(&blob_dir))
}

/// Writes `wasm` as a compat OCI image layout into `out` and returns the digests to pin.
pub fn package(
    wasm_path: &Path,
    out: &Path,
    opts: &ImageOptions,
) -> Result<PackagedImage, OciError> {
    let wasm = fs::read(wasm_path).map_err(io_err(wasm_path))?;
    if !wasm.starts_with(b"\0asm") {
        return Err(OciError::NotWasm(wasm_path.to_path_buf()));
    }
    prepare_dir(out)?;
    let (tar_bytes, layer) = compat_layer(&wasm).map_err(io_err(out))?;

    // The image config: a valid OCI config so generic tools (skopeo, crane) can inspect the
    // image. Platform wasip1/wasm as Go names it (GOOS/GOARCH), which the image spec follows.
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar_bytes)] },
    });
    let config_bytes = to_json("image config", &config)?;
    let config_digest = write_blob(out, &config_bytes)?;
    let layer_digest = write_blob(out, &layer)?;

    let mut manifest_annotations = BTreeMap::new();
    manifest_annotations.insert(ANNOTATION_VARIANT.to_string(), "compat".to_string());
    manifest_annotations.insert(
        "org.opencontainers.image.title".to_string(),
        opts.title.clone(),
    );
    manifest_annotations.insert(
        "org.opencontainers.image.version".to_string(),
        opts.version.clone(),
    );
    if let Some(source) = &opts.source {
        manifest_annotations.insert(
            "org.opencontainers.image.source".to_string(),
            source.clone(),
        );
    }
    if let Some(revision) = &opts.revision {
        manifest_annotations.insert(
            "org.opencontainers.image.revision".to_string(),
            revision.clone(),
        );
    }
    let mut layer_annotations = BTreeMap::new();
    layer_annotations.insert(
        "org.opencontainers.image.title".to_string(),
        PLUGIN_FILE.to_string(),
    );
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
        config: Descriptor {
            media_type: MEDIA_TYPE_CONFIG.to_string(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: MEDIA_TYPE_LAYER_TAR_GZIP.to_string(),
            digest: layer_digest.clone(),
            size: layer.len() as u64,
            annotations: layer_annotations,
        }],
        annotations: manifest_annotations,
    };
    let manifest_bytes = to_json("image manifest", &manifest)?;
    let manifest_digest = write_blob(out, &manifest_bytes)?;

    let mut ref_name = BTreeMap::new();
    ref_name.insert(
        "org.opencontainers.image.ref.name".to_string(),
        opts.tag.clone(),
    );
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.to_string()),
        manifests: vec![Descriptor {
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            digest: manifest_digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations: ref_name,
        }],
    };
    let index_path = out.join("index.json");
    fs::write(&index_path, to_json("index.json", &index)?).map_err(io_err(&index_path))?;
    let layout_path = out.join("oci-layout");
    fs::write(&layout_path, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&layout_path))?;

    Ok(PackagedImage {
        manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        layer_digest,
        wasm_sha256: sha256_digest(&wasm),
        tag: opts.tag.clone(),
    })
}

fn read_blob(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>, OciError> {
    let hex = desc
        .digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| OciError::NotIstioCompat(format!("bad digest {:?}", desc.digest)))?;
    let path = dir.join("blobs").join("sha256").join(hex);
    let bytes = fs::read(&path).map_err(io_err(&path))?;
    if sha256_digest(&bytes) != desc.digest || bytes.len() as u64 != desc.size {
        return Err(OciError::NotIstioCompat(format!(
            "blob {} does not match its descriptor (digest or size)",
            desc.digest
        )));
    }
    Ok(bytes)
}

/// Reads a layout back the way Istio's fetcher parses a compat OCI image and returns the
/// module and the manifest digest: the manifest tagged `tag` in `index.json`, its **last**
/// layer of media type tar+gzip, the entry whose basename is `plugin.wasm`. Digests and sizes
/// of every blob read are checked.
pub fn read_istio_compat(dir: &Path, tag: &str) -> Result<(Vec<u8>, String), OciError> {
    let index_path = dir.join("index.json");
    let index_bytes = fs::read(&index_path).map_err(io_err(&index_path))?;
    let index: Index = serde_json::from_slice(&index_bytes).map_err(|source| OciError::Json {
        what: "index.json".into(),
        source,
    })?;
    let desc = index
        .manifests
        .iter()
        .find(|m| {
            m.annotations
                .get("org.opencontainers.image.ref.name")
                .is_some_and(|t| t == tag)
        })
        .ok_or_else(|| OciError::NotIstioCompat(format!("no manifest tagged {tag:?}")))?;
    if desc.media_type != MEDIA_TYPE_MANIFEST {
        return Err(OciError::NotIstioCompat(format!(
            "manifest media type {:?}",
            desc.media_type
        )));
    }
    let manifest: Manifest =
        serde_json::from_slice(&read_blob(dir, desc)?).map_err(|source| OciError::Json {
            what: "manifest".into(),
            source,
        })?;
    read_blob(dir, &manifest.config)?;
    let last = manifest
        .layers
        .last()
        .ok_or_else(|| OciError::NotIstioCompat("manifest has no layer".into()))?;
    if last.media_type != MEDIA_TYPE_LAYER_TAR_GZIP {
        return Err(OciError::NotIstioCompat(format!(
            "last layer media type is {:?}, want {MEDIA_TYPE_LAYER_TAR_GZIP}",
            last.media_type
        )));
    }
    let layer = read_blob(dir, last)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let entries = archive.entries().map_err(io_err(dir))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err(dir))?;
        let path = entry.path().map_err(io_err(dir))?.into_owned();
        if path.file_name().is_some_and(|n| n == PLUGIN_FILE) {
            let mut wasm = Vec::new();
            entry.read_to_end(&mut wasm).map_err(io_err(dir))?;
            return Ok((wasm, desc.digest.clone()));
        }
    }
    Err(OciError::NotIstioCompat(format!(
        "last layer holds no {PLUGIN_FILE}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_wasm(dir: &Path) -> PathBuf {
        let path = dir.join("f.wasm");
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.extend((0..5000u32).map(|i| (i % 251) as u8));
        fs::write(&path, bytes).unwrap();
        path
    }

    fn opts() -> ImageOptions {
        ImageOptions {
            tag: "0.1.0".into(),
            title: "meshguard-test".into(),
            version: "0.1.0".into(),
            source: None,
            revision: Some("abc".into()),
        }
    }

    #[test]
    fn packaging_is_deterministic_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let wasm = fake_wasm(tmp.path());
        let a = package(&wasm, &tmp.path().join("a"), &opts()).unwrap();
        let b = package(&wasm, &tmp.path().join("b"), &opts()).unwrap();
        assert_eq!(a, b);
        // Re-packaging over an existing layout replaces it.
        let again = package(&wasm, &tmp.path().join("a"), &opts()).unwrap();
        assert_eq!(a, again);
        let (module, digest) = read_istio_compat(&tmp.path().join("a"), "0.1.0").unwrap();
        assert_eq!(module, fs::read(&wasm).unwrap());
        assert_eq!(digest, a.manifest_digest);
        assert_eq!(a.manifest_hex().len(), 64);
    }

    #[test]
    fn a_different_module_gives_a_different_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let wasm = fake_wasm(tmp.path());
        let a = package(&wasm, &tmp.path().join("a"), &opts()).unwrap();
        let mut bytes = fs::read(&wasm).unwrap();
        bytes.push(1);
        fs::write(&wasm, bytes).unwrap();
        let b = package(&wasm, &tmp.path().join("b"), &opts()).unwrap();
        assert_ne!(a.manifest_digest, b.manifest_digest);
    }

    #[test]
    fn refuses_non_wasm_and_foreign_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let not_wasm = tmp.path().join("x.wasm");
        fs::write(&not_wasm, b"hello").unwrap();
        assert!(matches!(
            package(&not_wasm, &tmp.path().join("o"), &opts()),
            Err(OciError::NotWasm(_))
        ));
        let wasm = fake_wasm(tmp.path());
        let foreign = tmp.path().join("foreign");
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("keep.txt"), b"x").unwrap();
        assert!(matches!(
            package(&wasm, &foreign, &opts()),
            Err(OciError::NotALayout(_))
        ));
        assert!(foreign.join("keep.txt").exists());
    }

    #[test]
    fn tampered_blob_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let wasm = fake_wasm(tmp.path());
        let out = tmp.path().join("a");
        let img = package(&wasm, &out, &opts()).unwrap();
        let layer = out
            .join("blobs/sha256")
            .join(img.layer_digest.trim_start_matches("sha256:"));
        let mut bytes = fs::read(&layer).unwrap();
        bytes[20] ^= 1;
        fs::write(&layer, bytes).unwrap();
        assert!(matches!(
            read_istio_compat(&out, "0.1.0"),
            Err(OciError::NotIstioCompat(_))
        ));
    }
}
