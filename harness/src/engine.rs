//! One wasmtime `Engine` per process (one with fuel metering, one without), compiled modules
//! cached per file, and the linker with every host function.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::{Config, Engine, ExternType, Linker, Module, Val};

use crate::error::{HarnessError, Result};
use crate::shared::lock;
use crate::types::{Flag, Status};
use crate::vm::VmState;

static ENGINES: OnceLock<std::result::Result<(Engine, Engine), String>> = OnceLock::new();

/// The engine: `fuel` = with fuel metering.
pub(crate) fn engine(fuel: bool) -> Result<&'static Engine> {
    let engines = ENGINES.get_or_init(|| {
        let make = |fuel: bool| {
            let mut config = Config::new();
            config.consume_fuel(fuel);
            // A debug build of the harness (tests) compiles modules with an unoptimized
            // Cranelift, which is slow; skip its optimization passes there. Release builds
            // (benchmarks, the CLI with --release) generate optimized code.
            if cfg!(debug_assertions) {
                config.cranelift_opt_level(wasmtime::OptLevel::None);
            }
            Engine::new(&config).map_err(|e| e.to_string())
        };
        Ok((make(true)?, make(false)?))
    });
    match engines {
        Ok((with, without)) => Ok(if fuel { with } else { without }),
        Err(e) => Err(HarnessError::Wasmtime(e.clone())),
    }
}

type ModuleKey = (PathBuf, bool, Option<SystemTime>);
type ModuleSlot = Arc<Mutex<Option<Module>>>;
static MODULES: OnceLock<Mutex<HashMap<ModuleKey, ModuleSlot>>> = OnceLock::new();

/// Compiles `path` once per process (per modification time), then reuses it.
pub(crate) fn module(path: &Path, fuel: bool) -> Result<Module> {
    let display = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| HarnessError::Read {
        path: display.clone(),
        source,
    })?;
    let key = (path.to_path_buf(), fuel, meta.modified().ok());
    let slot = lock(MODULES.get_or_init(Mutex::default))
        .entry(key)
        .or_default()
        .clone();
    let mut slot = lock(&slot);
    if let Some(module) = slot.as_ref() {
        return Ok(module.clone());
    }
    let bytes = std::fs::read(path).map_err(|source| HarnessError::Read {
        path: display.clone(),
        source,
    })?;
    let module = Module::new(engine(fuel)?, &bytes).map_err(|e| HarnessError::Compile {
        path: display.clone(),
        message: format!("{e:#}"),
    })?;
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    if !exports
        .iter()
        .any(|e| e.starts_with("proxy_abi_version_0_2_"))
    {
        return Err(HarnessError::MissingAbiVersion { path: display });
    }
    if !exports.contains(&"malloc") && !exports.contains(&"proxy_on_memory_allocate") {
        return Err(HarnessError::MissingAllocator { path: display });
    }
    *slot = Some(module.clone());
    Ok(module)
}

/// A linker with every host function, plus, for imports of `module` the harness does not
/// implement: `env` functions returning one i32 answer UNIMPLEMENTED (12, flagged), anything
/// else traps when called.
pub(crate) fn linker(module: &Module) -> Result<Linker<VmState>> {
    let wasmtime_err = |e: wasmtime::Error| HarnessError::Wasmtime(format!("{e:#}"));
    let mut linker = Linker::new(module.engine());
    // Fallbacks first, then the real host functions shadow them.
    linker.allow_shadowing(true);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let results: Vec<_> = ty.results().collect();
        if import.module() != "env" || results.len() != 1 || !results.iter().all(|r| r.is_i32()) {
            continue;
        }
        let name = import.name().to_owned();
        linker
            .func_new(
                "env",
                import.name(),
                ty.clone(),
                move |caller: wasmtime::Caller<'_, VmState>, _params, out| {
                    let state = caller.data();
                    state.shared.flag(Flag::Unimplemented {
                        worker: state.worker,
                        filter: state.info.index,
                        name: name.clone(),
                    });
                    if let Some(slot) = out.first_mut() {
                        *slot = Val::I32(Status::Unimplemented.code());
                    }
                    Ok(())
                },
            )
            .map_err(wasmtime_err)?;
    }
    crate::abi::define(&mut linker).map_err(wasmtime_err)?;
    linker
        .define_unknown_imports_as_traps(module)
        .map_err(wasmtime_err)?;
    Ok(linker)
}
