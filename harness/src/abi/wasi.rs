//! The WASI preview1 subset Envoy provides: stdout/stderr to the log, the fake clock, random
//! bytes, empty args, the environment given by `HostBuilder::env`, and stubs.

use wasmtime::{Caller, Linker};

use super::{read, write, write_u32, write_u64, Cx, HcErr};
use crate::shared::lock;
use crate::types::{LogEntry, LogLevel};
use crate::vm::{Phase, VmState};

const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const FAULT: i32 = 21;
const INVAL: i32 = 28;
const NOTSUP: i32 = 58;

/// Runs a WASI call: same phase gate as proxy calls (a restricted call traps); memory faults
/// become EFAULT.
fn wasi(
    c: &mut Caller<'_, VmState>,
    name: &'static str,
    body: impl FnOnce(Cx) -> Result<i32, HcErr>,
) -> wasmtime::Result<i32> {
    let allowed = match c.data().phase {
        Phase::Initialize => super::INIT_ALLOWED.contains(&name),
        Phase::Allocating => super::ALLOC_ALLOWED.contains(&name),
        _ => true,
    };
    if !allowed {
        return Err(wasmtime::Error::msg(format!(
            "WASI {name} is not allowed here"
        )));
    }
    match body(c) {
        Ok(errno) => Ok(errno),
        Err(HcErr::Status(_)) => Ok(FAULT),
        Err(HcErr::Trap(e)) => Err(e),
    }
}

pub(super) fn define(l: &mut Linker<VmState>, module: &str) -> wasmtime::Result<()> {
    l.func_wrap(
        module,
        "fd_write",
        |mut c: Caller<'_, VmState>, fd: i32, iovs: i32, n: i32, written: i32| {
            wasi(&mut c, "fd_write", |c| fd_write(c, fd, iovs, n, written))
        },
    )?;
    l.func_wrap(
        module,
        "clock_time_get",
        |mut c: Caller<'_, VmState>, id: i32, _precision: i64, out: i32| {
            wasi(&mut c, "clock_time_get", |c| {
                let clock = &c.data().shared.clock;
                let now = match id {
                    0 => clock.unix_nanos(),
                    1 => clock.monotonic_nanos(),
                    _ => return Ok(NOTSUP),
                };
                write_u64(c, out, now)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "clock_res_get",
        |mut c: Caller<'_, VmState>, id: i32, out: i32| {
            wasi(&mut c, "clock_res_get", |c| {
                if id > 1 {
                    return Ok(NOTSUP);
                }
                write_u64(c, out, 1)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "random_get",
        |mut c: Caller<'_, VmState>, buf: i32, len: i32| {
            wasi(&mut c, "random_get", |c| {
                let len = len as u32 as usize;
                if len > 64 * 1024 {
                    return Ok(INVAL);
                }
                let mut bytes = vec![0u8; len];
                if getrandom::fill(&mut bytes).is_err() {
                    return Ok(NOTSUP);
                }
                write(c, buf, &bytes)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "environ_sizes_get",
        |mut c: Caller<'_, VmState>, count: i32, size: i32| {
            wasi(&mut c, "environ_sizes_get", |c| {
                let env = environ(c);
                let bytes: usize = env.iter().map(Vec::len).sum();
                write_u32(c, count, env.len() as u32)?;
                write_u32(c, size, bytes as u32)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "environ_get",
        |mut c: Caller<'_, VmState>, ptrs: i32, buf: i32| {
            wasi(&mut c, "environ_get", |c| {
                let mut at = buf as u32;
                for (i, entry) in environ(c).iter().enumerate() {
                    write_u32(c, (ptrs as u32).wrapping_add(4 * i as u32) as i32, at)?;
                    write(c, at as i32, entry)?;
                    at = at.wrapping_add(entry.len() as u32);
                }
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "args_sizes_get",
        |mut c: Caller<'_, VmState>, count: i32, size: i32| {
            wasi(&mut c, "args_sizes_get", |c| {
                write_u32(c, count, 0)?;
                write_u32(c, size, 0)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "args_get",
        |mut c: Caller<'_, VmState>, _a: i32, _b: i32| wasi(&mut c, "args_get", |_| Ok(SUCCESS)),
    )?;
    l.func_wrap(
        module,
        "fd_fdstat_get",
        |mut c: Caller<'_, VmState>, fd: i32, out: i32| {
            wasi(&mut c, "fd_fdstat_get", |c| {
                if !(0..=2).contains(&fd) {
                    return Ok(BADF);
                }
                // filetype CHARACTER_DEVICE (2), no flags, all rights.
                let mut stat = [0u8; 24];
                stat[0] = 2;
                stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
                stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
                write(c, out, &stat)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "fd_prestat_get",
        |mut c: Caller<'_, VmState>, _fd: i32, _out: i32| {
            wasi(&mut c, "fd_prestat_get", |_| Ok(BADF))
        },
    )?;
    l.func_wrap(
        module,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, VmState>, _fd: i32, _p: i32, _l: i32| {
            wasi(&mut c, "fd_prestat_dir_name", |_| Ok(BADF))
        },
    )?;
    l.func_wrap(
        module,
        "fd_close",
        |mut c: Caller<'_, VmState>, _fd: i32| wasi(&mut c, "fd_close", |_| Ok(BADF)),
    )?;
    l.func_wrap(
        module,
        "fd_seek",
        |mut c: Caller<'_, VmState>, _fd: i32, _off: i64, _whence: i32, _out: i32| {
            wasi(&mut c, "fd_seek", |_| Ok(BADF))
        },
    )?;
    l.func_wrap(
        module,
        "fd_read",
        |mut c: Caller<'_, VmState>, _fd: i32, _iovs: i32, _n: i32, _out: i32| {
            wasi(&mut c, "fd_read", |_| Ok(BADF))
        },
    )?;
    l.func_wrap(module, "sched_yield", |mut c: Caller<'_, VmState>| {
        wasi(&mut c, "sched_yield", |_| Ok(SUCCESS))
    })?;
    l.func_wrap(
        module,
        "poll_oneoff",
        |mut c: Caller<'_, VmState>, _in: i32, _out: i32, _n: i32, nevents: i32| {
            wasi(&mut c, "poll_oneoff", |c| {
                write_u32(c, nevents, 0)?;
                Ok(SUCCESS)
            })
        },
    )?;
    l.func_wrap(
        module,
        "proc_exit",
        |mut c: Caller<'_, VmState>, code: i32| -> wasmtime::Result<()> {
            log_line(&mut c, LogLevel::Error, format!("proc_exit({code})"));
            Err(wasmtime::Error::msg(format!("proc_exit({code})")))
        },
    )?;
    Ok(())
}

fn log_line(c: Cx, level: LogLevel, message: String) {
    let state = c.data();
    lock(&state.shared.logs).push(LogEntry {
        worker: state.worker,
        filter: state.info.name.clone(),
        level,
        message,
    });
}

/// fd 1 → INFO, fd 2 → ERROR, one log entry per line (a partial line waits for its newline:
/// Rust's `eprintln!` writes a line in several calls).
fn fd_write(c: Cx, fd: i32, iovs: i32, n: i32, written: i32) -> Result<i32, HcErr> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Ok(BADF),
    };
    let mut data = Vec::new();
    for i in 0..n {
        let iov = read(c, iovs.wrapping_add(i * 8), 8)?;
        let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        data.extend_from_slice(&read(c, ptr, len)?);
    }
    let total = data.len() as u32;
    let mut lines = Vec::new();
    {
        let buffer = if fd == 1 {
            &mut c.data_mut().stdout
        } else {
            &mut c.data_mut().stderr
        };
        buffer.extend_from_slice(&data);
        while let Some(at) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=at).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
    }
    for line in lines {
        log_line(c, level, line);
    }
    write_u32(c, written, total)?;
    Ok(SUCCESS)
}

/// The VM's environment as WASI hands it over: `NAME=value\0` per variable.
fn environ(c: Cx) -> Vec<Vec<u8>> {
    let state = c.data();
    lock(&state.shared.env)
        .get(&state.info.index)
        .map(|env| {
            env.iter()
                .map(|(n, v)| format!("{n}={v}\0").into_bytes())
                .collect()
        })
        .unwrap_or_default()
}
