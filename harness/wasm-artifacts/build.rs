//! Builds every filter cdylib under `filters/` for `wasm32-wasip1` with one inner
//! `cargo build --release`, into its own target dir (`<workspace>/target/wasm-artifacts`) so it
//! never waits on the outer build's lock, and writes the paths of the `.wasm` files as consts.
//!
//! Set `MESHGUARD_ALLOW_BROKEN_FILTERS=1` to keep going when some filter does not compile: each
//! package is then built alone, the broken ones are reported as warnings, and their consts point
//! at files that do not exist (loading them fails with a clear error).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (const name, package, library file stem).
const FILTERS: &[(&str, &str, &str)] = &[
    (
        "PASSTHROUGH",
        "meshguard-passthrough",
        "meshguard_passthrough",
    ),
    ("JWT_AUTHN", "meshguard-jwt-authn", "meshguard_jwt_authn"),
    ("AUTHZ", "meshguard-authz", "meshguard_authz"),
    ("RATELIMIT", "meshguard-ratelimit", "meshguard_ratelimit"),
    ("AUDIT", "meshguard-audit", "meshguard_audit"),
    ("ABI_PROBE", "meshguard-abi-probe", "meshguard_abi_probe"),
    ("FUSED", FUSED, "meshguard_fused"),
];

/// The fused module is its own workspace (`filters/fused/Cargo.toml` says why): built by a
/// second cargo run with `--manifest-path`, into the same target dir.
const FUSED: &str = "meshguard-fused";

/// Variables the outer cargo sets that would change or break the inner build.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    for watched in [
        "filters",
        "shared",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        // wasm32 rustflags (cpubits) and the C compiler for ring
        ".cargo/config.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=MESHGUARD_ALLOW_BROKEN_FILTERS");
    let target_dir = workspace.join("target").join("wasm-artifacts");
    let allow_broken = std::env::var_os("MESHGUARD_ALLOW_BROKEN_FILTERS").is_some_and(|v| v == "1");

    let all: Vec<&str> = FILTERS.iter().map(|(_, package, _)| *package).collect();
    if let Err(stderr) = build(&workspace, &target_dir, &all) {
        if !allow_broken {
            eprintln!(
                "meshguard-wasm-artifacts: `cargo build --release --target wasm32-wasip1` of the \
                 filters failed (set MESHGUARD_ALLOW_BROKEN_FILTERS=1 to build the others anyway).\n\
                 --- inner cargo stderr ---\n{stderr}"
            );
            std::process::exit(1);
        }
        for package in &all {
            if let Err(stderr) = build(&workspace, &target_dir, &[package]) {
                for line in stderr.lines().filter(|l| l.contains("error")).take(20) {
                    println!("cargo:warning={package} does not build: {line}");
                }
            }
        }
    }

    let out = target_dir.join("wasm32-wasip1").join("release");
    let mut code = String::new();
    let mut names = String::new();
    let mut all = String::new();
    for (konst, package, stem) in FILTERS {
        let path = out.join(format!("{stem}.wasm"));
        code.push_str(&format!(
            "/// Absolute path of the compiled `{package}` filter (`{stem}.wasm`).\n\
             pub const {konst}: &str = {:?};\n",
            path.display().to_string()
        ));
        let short = stem.trim_start_matches("meshguard_");
        names.push_str(&format!(
            "        {short:?} | {package:?} => Some({konst}),\n"
        ));
        all.push_str(&format!("    ({short:?}, {konst}),\n"));
    }
    code.push_str(&format!(
        "/// Every filter module: (short name, path).\npub const ALL: &[(&str, &str)] = &[\n{all}];\n"
    ));
    code.push_str(&format!(
        "/// The path of a filter by its short name (`passthrough`, `jwt_authn`, `authz`, \
         `ratelimit`, `audit`, `abi_probe`, `fused`) or its package name.\n\
         pub fn by_name(name: &str) -> Option<&'static str> {{\n    match name {{\n{names}        _ => None,\n    }}\n}}\n"
    ));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("artifacts.rs"), code) {
        eprintln!("meshguard-wasm-artifacts: cannot write artifacts.rs: {e}");
        std::process::exit(1);
    }
}

/// Runs the inner cargo (twice when `packages` has the fused module and others); `Err(stderr)`
/// when it fails.
fn build(workspace: &Path, target_dir: &Path, packages: &[&str]) -> Result<(), String> {
    let members: Vec<&str> = packages.iter().copied().filter(|p| *p != FUSED).collect();
    if !members.is_empty() {
        build_one(workspace, target_dir, &members, None)?;
    }
    if packages.contains(&FUSED) {
        // Its own target dir: building it also builds the four filter crates (without their
        // `entry` feature) as cdylibs, and in the shared dir those entry-less `.wasm` files
        // would replace the real filters. Only the fused module is copied next to the others.
        let manifest = workspace.join("filters").join("fused").join("Cargo.toml");
        let fused_dir = target_dir.join("fused");
        build_one(workspace, &fused_dir, &[], Some(&manifest))?;
        let built = fused_dir
            .join("wasm32-wasip1")
            .join("release")
            .join("meshguard_fused.wasm");
        let release = target_dir.join("wasm32-wasip1").join("release");
        std::fs::create_dir_all(&release)
            .and_then(|()| std::fs::copy(&built, release.join("meshguard_fused.wasm")))
            .map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    }
    Ok(())
}

fn build_one(
    workspace: &Path,
    target_dir: &Path,
    packages: &[&str],
    manifest: Option<&Path>,
) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--target-dir",
        ])
        .arg(target_dir);
    if let Some(manifest) = manifest {
        cmd.arg("--manifest-path").arg(manifest);
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    // Everything cargo sets for a build script describes the *outer* build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_PROFILE_")
            || [
                "TARGET",
                "HOST",
                "OUT_DIR",
                "PROFILE",
                "OPT_LEVEL",
                "DEBUG",
                "NUM_JOBS",
                "RUSTC_LINKER",
            ]
            .contains(&key.as_str())
        {
            cmd.env_remove(&key);
        }
    }
    match cmd.output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}
