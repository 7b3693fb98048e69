//! `mg-harness`: runs filters against a declarative scenario and prints one JSON line per
//! request, then `N passed, N failed`. Exit status 1 when an expectation fails, 2 on bad usage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use meshguard_harness::runner::{self, ChainOverride};
use meshguard_harness::scenario::Scenario;

const USAGE: &str = "usage: mg-harness run [--filter NAME=PATH.wasm]... [--config NAME=CONFIG.json]... [--workers N] SCENARIO.json";

fn parse(args: &[String]) -> Result<(ChainOverride, PathBuf), String> {
    let mut chain = ChainOverride {
        filters: Vec::new(),
        configs: BTreeMap::new(),
        workers: None,
    };
    let mut scenario = None;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("run") => {}
        _ => return Err(USAGE.to_owned()),
    }
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--filter" => {
                let v = value("--filter")?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or(format!("--filter {v}: expected NAME=PATH"))?;
                chain.filters.push((name.to_owned(), PathBuf::from(path)));
            }
            "--config" => {
                let v = value("--config")?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or(format!("--config {v}: expected NAME=FILE"))?;
                chain.configs.insert(name.to_owned(), PathBuf::from(path));
            }
            "--workers" => {
                let v = value("--workers")?;
                chain.workers = Some(
                    v.parse()
                        .map_err(|_| format!("--workers {v}: not a number"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with('-') => {
                return Err(format!("unknown flag {other}\n{USAGE}"))
            }
            other => scenario = Some(PathBuf::from(other)),
        }
    }
    Ok((chain, scenario.ok_or(USAGE.to_owned())?))
}

fn run(chain: &ChainOverride, path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let scenario: Scenario =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let host = runner::build_host(&scenario, base, chain).map_err(|e| e.to_string())?;
    let mut emit = |result: &runner::RequestResult| match serde_json::to_string(result) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("cannot print result: {e}"),
    };
    let (passed, failed) = runner::run(&host, &scenario, &mut emit).map_err(|e| e.to_string())?;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (chain, path) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&chain, &path) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mg-harness: {e}");
            println!("0 passed, 1 failed");
            ExitCode::from(1)
        }
    }
}
