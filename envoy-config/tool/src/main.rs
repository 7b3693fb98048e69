//! `meshguard`: validate filter configs, generate schemas and bootstraps, package OCI images,
//! and run the demo's upstream, JWKS server and token minter. See `meshguard --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use meshguard_tool::demo::keys::{self, SigningKey};
use meshguard_tool::demo::servers::{JwksServer, Upstream};
use meshguard_tool::filters::Filter;
use meshguard_tool::validate::{validate_file, Selection};
use meshguard_tool::{bootstrap, examples, oci, schema, wasmplugin};

#[derive(Parser)]
#[command(name = "meshguard", version, about = "meshguard filter tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check filter configs with the filter's own parser (the one on_configure runs). FILE is a
    /// plugin config JSON, a WasmPlugin YAML (spec.pluginConfig) or an Envoy bootstrap. Prints
    /// every error with its field path; exits 1 if any config is invalid.
    Validate {
        /// jwt_authn, authz, ratelimit, audit, fused (the four as stages of one module), or
        /// `all` (every meshguard filter found by its module or image name).
        filter: String,
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write the JSON Schema of each filter config (generated from the Rust types).
    Schema {
        /// Output directory (default: the repository's envoy-config/schemas).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Package a filter as an OCI image layout Istio's WasmPlugin can pull ("compat": one
    /// tar+gzip layer holding plugin.wasm). Prints the manifest digest to pin.
    Oci {
        /// jwt_authn, authz, ratelimit, audit or fused.
        filter: String,
        /// The built module (target/wasm32-wasip1/release/meshguard_<filter>.wasm; the fused
        /// module: target/fused/wasm32-wasip1/release/meshguard_fused.wasm).
        wasm: PathBuf,
        /// Output directory (created; an existing layout there is replaced).
        out_dir: PathBuf,
        /// Tag in the layout (default: the package version).
        #[arg(long)]
        tag: Option<String>,
        /// org.opencontainers.image.source annotation.
        #[arg(long)]
        source: Option<String>,
        /// org.opencontainers.image.revision annotation (e.g. `git rev-parse HEAD`).
        #[arg(long)]
        revision: Option<String>,
        /// WasmPlugin manifests whose `sha256` to set to the new manifest digest (the
        /// documents whose `url` names this filter's image).
        #[arg(long = "pin", value_name = "WASMPLUGIN_YAML")]
        pin: Vec<PathBuf>,
    },
    /// Regenerate the example Envoy bootstraps (envoy-config/envoy/*.yaml) from the example
    /// plugin configs (envoy-config/examples/*.json).
    Bootstrap {
        /// Output directory (default: the repository's envoy-config/envoy).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fill the `${NAME}` placeholders of a template (e.g. an example bootstrap); fails on any
    /// placeholder left unfilled.
    Render {
        /// The template file.
        template: PathBuf,
        /// NAME=VALUE pairs.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Write here instead of stdout.
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Check Istio WasmPlugin manifests against the WasmPlugin schema, meshguard's rules and
    /// each pluginConfig against its filter's parser; the files' plugins together: per workload
    /// the four filters in chain order (phase, priority), or the fused module alone.
    CheckManifests {
        /// YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Demo helpers: keys, tokens, upstream and JWKS server.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Create an ES256 signing key (DIR/signing-key.jwk) and its JWKS (DIR/jwks.json), unless
    /// they exist.
    Keys {
        /// Directory for the key files.
        dir: PathBuf,
        /// Key id.
        #[arg(long, default_value = "demo-1")]
        kid: String,
    },
    /// Print a signed token.
    Mint {
        /// Private JWK written by `demo keys`.
        #[arg(long)]
        key: PathBuf,
        /// iss claim.
        #[arg(long, default_value = examples::DEMO_ISSUER)]
        iss: String,
        /// aud claim.
        #[arg(long, default_value = examples::DEMO_AUDIENCE)]
        aud: String,
        /// sub claim.
        #[arg(long, default_value = "alice")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Extra claims as NAME=VALUE (VALUE parsed as JSON when it is JSON).
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
    },
    /// Run the demo upstream and JWKS server until interrupted.
    Serve {
        /// Upstream port on 127.0.0.1.
        #[arg(long)]
        upstream_port: u16,
        /// JWKS server port on 127.0.0.1.
        #[arg(long)]
        jwks_port: u16,
        /// The JWKS file to serve.
        #[arg(long)]
        jwks: PathBuf,
        /// Issuer advertised by OIDC discovery.
        #[arg(long, default_value = examples::DEMO_ISSUER)]
        issuer: String,
    },
}

fn parse_filter(name: &str) -> Result<Filter, String> {
    Filter::from_name(name).ok_or_else(|| {
        format!("unknown filter {name:?}: expected jwt_authn, authz, ratelimit, audit or fused")
    })
}

fn run(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Command::Validate { filter, files } => {
            let selection = if filter == "all" {
                Selection::All
            } else {
                Selection::One(parse_filter(&filter)?)
            };
            let mut ok = true;
            for file in files {
                match validate_file(selection, &file) {
                    Ok(findings) => {
                        for f in findings {
                            match f.result {
                                Ok(()) => println!(
                                    "{}: {}: {} config OK",
                                    file.display(),
                                    f.location,
                                    f.filter
                                ),
                                Err(errors) => {
                                    ok = false;
                                    for e in errors.0 {
                                        let path = if e.path.is_empty() {
                                            String::new()
                                        } else {
                                            format!("{}: ", e.path)
                                        };
                                        eprintln!(
                                            "{}: {}: {} config: {path}{}",
                                            file.display(),
                                            f.location,
                                            f.filter,
                                            e.message
                                        );
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        ok = false;
                        eprintln!("{e}");
                    }
                }
            }
            Ok(ok)
        }
        Command::Schema { out } => {
            let dir = out.unwrap_or_else(schema::default_dir);
            let (written, skipped) = schema::write_all(&dir).map_err(|e| e.to_string())?;
            for p in written {
                println!("wrote {}", p.display());
            }
            for f in skipped {
                eprintln!("skipped {f}: its config type is not available in this build");
            }
            Ok(true)
        }
        Command::Oci {
            filter,
            wasm,
            out_dir,
            tag,
            source,
            revision,
            pin,
        } => {
            let filter = parse_filter(&filter)?;
            let version = env!("CARGO_PKG_VERSION").to_string();
            let opts = oci::ImageOptions {
                tag: tag.unwrap_or_else(|| version.clone()),
                title: filter.package().to_string(),
                version,
                source,
                revision,
            };
            let image = oci::package(&wasm, &out_dir, &opts).map_err(|e| e.to_string())?;
            println!("{}", image.manifest_digest);
            eprintln!(
                "OCI layout written to {dir} (compat variant, layer {layer}, module {module}).\n\
                 Push:  skopeo copy oci:{dir}:{tag} docker://<registry>/{name}:{tag}\n\
                 Pin in the WasmPlugin:  sha256: {hex}\n\
                 or:  url: oci://<registry>/{name}@{digest}",
                dir = out_dir.display(),
                layer = image.layer_digest,
                module = image.wasm_sha256,
                tag = image.tag,
                name = filter.package(),
                hex = image.manifest_hex(),
                digest = image.manifest_digest,
            );
            for file in pin {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                let (pinned, n) = wasmplugin::pin(&text, filter, image.manifest_hex());
                if n == 0 {
                    return Err(format!(
                        "{}: no WasmPlugin with a url naming {} and a sha256 field",
                        file.display(),
                        filter.package()
                    ));
                }
                std::fs::write(&file, pinned).map_err(|e| format!("{}: {e}", file.display()))?;
                eprintln!("pinned {} in {}", image.manifest_hex(), file.display());
            }
            Ok(true)
        }
        Command::Bootstrap { out } => {
            let dir = out.unwrap_or_else(examples::bootstrap_dir);
            for path in examples::write_bootstraps(&dir)? {
                println!("wrote {}", path.display());
            }
            Ok(true)
        }
        Command::Render {
            template,
            vars,
            out,
        } => {
            let text = std::fs::read_to_string(&template)
                .map_err(|e| format!("{}: {e}", template.display()))?;
            let mut pairs = Vec::new();
            for v in &vars {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--set {v:?}: expected NAME=VALUE"))?;
                pairs.push((k, val.to_string()));
            }
            let rendered = bootstrap::substitute(&text, &pairs)
                .map_err(|e| format!("{}: {e}", template.display()))?;
            match out {
                Some(path) => std::fs::write(&path, rendered)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
                None => print!("{rendered}"),
            }
            Ok(true)
        }
        Command::CheckManifests { files } => {
            let mut ok = true;
            // The plugins of all files together: chain order per workload, fused alone.
            let mut documents = Vec::new();
            for file in &files {
                if let Ok(text) = std::fs::read_to_string(file) {
                    if let Ok(docs) =
                        wasmplugin::wasmplugin_documents(&file.display().to_string(), &text)
                    {
                        documents.extend(docs);
                    }
                }
            }
            for p in wasmplugin::check_set(&documents) {
                ok = false;
                eprintln!("{p}");
            }
            for file in files {
                match wasmplugin::check_file(&file) {
                    Ok(None) => println!("{}: no WasmPlugin (skipped)", file.display()),
                    Ok(Some(problems)) if problems.is_empty() => {
                        println!("{}: OK", file.display())
                    }
                    Ok(Some(problems)) => {
                        ok = false;
                        for p in problems {
                            eprintln!("{}: {p}", file.display());
                        }
                    }
                    Err(e) => {
                        ok = false;
                        eprintln!("{}: {e}", file.display());
                    }
                }
            }
            Ok(ok)
        }
        Command::Demo(cmd) => run_demo(cmd),
    }
}

fn run_demo(cmd: DemoCommand) -> Result<bool, String> {
    match cmd {
        DemoCommand::Keys { dir, kid } => {
            let key_path = dir.join("signing-key.jwk");
            let jwks_path = dir.join("jwks.json");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if !key_path.exists() {
                let key = SigningKey::generate(&kid);
                std::fs::write(&key_path, key.to_private_jwk())
                    .map_err(|e| format!("{}: {e}", key_path.display()))?;
            }
            let text = std::fs::read_to_string(&key_path)
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            let key = SigningKey::from_private_jwk(&text).map_err(|e| e.to_string())?;
            std::fs::write(&jwks_path, keys::jwks(&[&key]))
                .map_err(|e| format!("{}: {e}", jwks_path.display()))?;
            println!("{}", jwks_path.display());
            Ok(true)
        }
        DemoCommand::Mint {
            key,
            iss,
            aud,
            sub,
            ttl,
            claims,
        } => {
            let text =
                std::fs::read_to_string(&key).map_err(|e| format!("{}: {e}", key.display()))?;
            let key = SigningKey::from_private_jwk(&text).map_err(|e| e.to_string())?;
            let extra = keys::parse_claims(&claims)?;
            let token = key
                .mint(&iss, &sub, &aud, ttl, &extra)
                .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(true)
        }
        DemoCommand::Serve {
            upstream_port,
            jwks_port,
            jwks,
            issuer,
        } => {
            let text =
                std::fs::read_to_string(&jwks).map_err(|e| format!("{}: {e}", jwks.display()))?;
            let upstream = Upstream::start(upstream_port)
                .map_err(|e| format!("upstream on port {upstream_port}: {e}"))?;
            let server = JwksServer::start(jwks_port, text, &issuer)
                .map_err(|e| format!("JWKS server on port {jwks_port}: {e}"))?;
            eprintln!(
                "demo upstream on 127.0.0.1:{}, JWKS on http://127.0.0.1:{}/.well-known/jwks.json",
                upstream.port(),
                server.port()
            );
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("meshguard: {e}");
            ExitCode::from(2)
        }
    }
}
