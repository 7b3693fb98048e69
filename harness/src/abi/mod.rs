//! The host functions: proxy-wasm ABI 0.2.1 (module `env`) and the WASI preview1 subset a
//! `wasm32-wasip1` filter imports, with Envoy's statuses.
//!
//! Every hostcall goes through [`run`], which enforces the restricted phases (`_initialize`,
//! the guest allocator), capability restriction, and records the call in the host's call log.

mod maps;
mod pairs;
mod props;
mod proxy;
mod wasi;

use wasmtime::{Caller, Linker};

use crate::stream_state::StreamRef;
use crate::types::{Flag, HostEvent, Status};
use crate::vm::{Phase, VmState};

pub(crate) use pairs::{parse_pairs, serialize_pairs};
pub(crate) use props::property_value;

/// Why a hostcall stopped: a status for the guest, or a trap.
pub(crate) enum HcErr {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for HcErr {
    fn from(s: Status) -> HcErr {
        HcErr::Status(s)
    }
}

pub(crate) type Hc<T> = Result<T, HcErr>;

pub(crate) type Cx<'a, 'b> = &'a mut Caller<'b, VmState>;

/// Hostcalls allowed while `_initialize`/`main` run (cpp-host `startVm` restricts them to
/// `env.proxy_log` and this WASI subset; any other call traps with `restricted_callback`).
const INIT_ALLOWED: &[&str] = &[
    "proxy_log",
    "fd_write",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "environ_sizes_get",
    "environ_get",
    "args_sizes_get",
    "args_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "poll_oneoff",
    "sched_yield",
    "proc_exit",
];

/// Hostcalls allowed inside the guest allocator (cpp-host `allocMemory`).
const ALLOC_ALLOWED: &[&str] = &["proxy_log", "fd_write", "clock_time_get", "poll_oneoff"];

/// Runs one hostcall body with the phase gate and the call log.
pub(crate) fn run(
    c: Cx,
    name: &'static str,
    body: impl FnOnce(Cx, &mut String) -> Hc<Status>,
) -> wasmtime::Result<i32> {
    let phase = c.data().phase;
    let allowed = match phase {
        Phase::Initialize => INIT_ALLOWED.contains(&name),
        Phase::Allocating => ALLOC_ALLOWED.contains(&name),
        Phase::Configure | Phase::Running => true,
    };
    if !allowed {
        return Err(wasmtime::Error::msg(format!(
            "hostcall {name} is not allowed during {phase:?} (Envoy restricts it)"
        )));
    }
    let mut args = String::new();
    let restricted = match &c.data().info.allowed {
        Some(set) => name.starts_with("proxy_") && !set.contains(name),
        None => false,
    };
    let result = if restricted {
        args.push_str("restricted capability");
        Ok(Status::InternalFailure)
    } else {
        body(c, &mut args)
    };
    let status = match result {
        Ok(s) | Err(HcErr::Status(s)) => s,
        Err(HcErr::Trap(e)) => return Err(e),
    };
    let state = c.data();
    if status == Status::Unimplemented {
        state.shared.flag(Flag::Unimplemented {
            worker: state.worker,
            filter: state.info.index,
            name: name.to_owned(),
        });
    }
    state.record(HostEvent::Hostcall {
        worker: state.worker,
        filter: state.info.index,
        context_id: state.effective_ctx,
        name,
        args,
        status,
    });
    Ok(status.code())
}

fn memory(c: &Caller<'_, VmState>) -> Hc<wasmtime::Memory> {
    c.data()
        .memory
        .ok_or(HcErr::Status(Status::InvalidMemoryAccess))
}

/// Reads `len` bytes at `ptr` (a zero length is legal with any pointer, including 0).
pub(crate) fn read(c: Cx, ptr: i32, len: i32) -> Hc<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = memory(c)?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    mem.data(&*c)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or(HcErr::Status(Status::InvalidMemoryAccess))
}

/// Reads a UTF-8 string (lossy).
pub(crate) fn read_str(c: Cx, ptr: i32, len: i32) -> Hc<String> {
    Ok(String::from_utf8_lossy(&read(c, ptr, len)?).into_owned())
}

/// Writes bytes at `ptr`.
pub(crate) fn write(c: Cx, ptr: i32, bytes: &[u8]) -> Hc<()> {
    let mem = memory(c)?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?;
    let slot = mem
        .data_mut(&mut *c)
        .get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?;
    slot.copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(c: Cx, ptr: i32, v: u32) -> Hc<()> {
    write(c, ptr, &v.to_le_bytes())
}

pub(crate) fn write_u64(c: Cx, ptr: i32, v: u64) -> Hc<()> {
    write(c, ptr, &v.to_le_bytes())
}

/// Copies `bytes` into guest memory allocated with the guest's allocator and writes the pointer
/// and length to the out-pointers. Empty data is returned as (0, 0) without allocating, as
/// cpp-host does (the Rust SDK panics on a 1-byte empty map).
pub(crate) fn copy_out(c: Cx, bytes: &[u8], ptr_ptr: i32, len_ptr: i32) -> Hc<()> {
    if bytes.is_empty() {
        write_u32(c, ptr_ptr, 0)?;
        return write_u32(c, len_ptr, 0);
    }
    let alloc = c.data().alloc.clone().ok_or(Status::InvalidMemoryAccess)?;
    let len = i32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let previous = c.data().phase;
    c.data_mut().phase = Phase::Allocating;
    let result = alloc.call(&mut *c, len);
    c.data_mut().phase = previous;
    let ptr = result.map_err(HcErr::Trap)?;
    if ptr == 0 {
        return Err(HcErr::Status(Status::InvalidMemoryAccess));
    }
    write(c, ptr, bytes)?;
    write_u32(c, ptr_ptr, ptr as u32)?;
    write_u32(c, len_ptr, len as u32)
}

/// The stream of the effective context, if it is a stream context.
pub(crate) fn stream(c: &Caller<'_, VmState>) -> Option<StreamRef> {
    let state = c.data();
    state.streams.get(&state.effective_ctx).cloned()
}

/// Defines every host function in `linker`; returns the names defined (module, name).
pub(crate) fn define(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    proxy::define(linker)?;
    maps::define(linker)?;
    wasi::define(linker, "wasi_snapshot_preview1")?;
    wasi::define(linker, "wasi_unstable")?;
    Ok(())
}
