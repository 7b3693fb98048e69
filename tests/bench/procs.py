"""Processes of the Envoy load benchmark: Envoy instances, wrk runs, and /proc accounting.

CPU time is read from /proc/<pid>/stat (utime + stime of all threads of the process, in clock
ticks), memory from /proc/<pid>/status (VmRSS). The load generator's own CPU comes from
wait4()'s rusage, the whole machine's from /proc/stat, so that the report can show how much
other work ran on the machine during a measurement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Niceness of the measured processes (Envoy, upstream, wrk); bench.py sets it from --nice. On a
# machine shared with other work, a negative value keeps builds from taking the measured CPU.
# With autogroup scheduling (kernel.sched_autogroup_enabled) a process's nice value only counts
# inside its session, so each measured process gets its own session and that session's
# autogroup gets the same niceness.
NICE = 0


def set_autogroup_nice(pid: int) -> None:
    if not NICE:
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(NICE))
    except OSError:
        pass  # no autogroup support, or not allowed: the plain nice value still applies


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    """`cmd` pinned to one CPU, at NICE."""
    prefix = ["nice", "-n", str(NICE)] if NICE else []
    return prefix + ["taskset", "-c", str(cpu)] + cmd


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all threads), in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def machine_busy_ticks() -> int:
    """Busy clock ticks of all CPUs together (user, nice, system, irq, softirq, steal)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return user + nice + system + irq + softirq + steal


def http_get(url: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class Envoy:
    """One Envoy process: `--concurrency 1`, pinned to `cpu`, ports read back after start."""

    binary: str
    config: Path
    workdir: Path
    cpu: int
    name: str
    proc: subprocess.Popen | None = None
    admin: str = ""
    port: int = 0
    startup_ms: float = 0.0
    log: Path = field(default_factory=Path)

    def start(self, timeout_s: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        admin_file = self.workdir / f"{self.name}.admin"
        admin_file.unlink(missing_ok=True)
        self.log = self.workdir / f"{self.name}.log"
        cmd = pinned(self.cpu, [
            self.binary, "-c", str(self.config),
            "--concurrency", "1", "--disable-hot-restart", "-l", "warning",
            "--admin-address-path", str(admin_file),
        ])
        t0 = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        set_autogroup_nice(self.proc.pid)
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: Envoy exited with {self.proc.returncode}; log: {self.log}\n{self.tail_log()}")
            if admin_file.exists() and admin_file.read_text().strip():
                self.admin = "http://" + admin_file.read_text().strip()
                try:
                    status, _ = http_get(self.admin + "/ready", timeout=1.0)
                except OSError:
                    status = 0
                if status == 200:
                    self.startup_ms = (time.monotonic() - t0) * 1000.0
                    self.port = self._listener_port()
                    return
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name}: not ready within {timeout_s}s; log: {self.log}")

    def _listener_port(self) -> int:
        _, body = http_get(self.admin + "/listeners?format=json")
        for status in json.loads(body).get("listener_statuses", []):
            return int(status["local_address"]["socket_address"]["port_value"])
        raise RuntimeError(f"{self.name}: no listener")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def counters(self, regex: str) -> dict[str, int]:
        """Counter and gauge values whose name matches `regex` (admin /stats)."""
        q = urllib.parse.urlencode({"format": "json", "filter": regex})
        _, body = http_get(f"{self.admin}/stats?{q}")
        out = {}
        for stat in json.loads(body).get("stats", []):
            if "value" in stat:
                out[stat["name"]] = int(stat["value"])
        return out

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


CALIBRATION = "import hashlib\nb = bytes(65536)\nfor _ in range(1500):\n    hashlib.sha256(b).digest()\n"


def calibrate(cpu: int, python: str) -> float:
    """CPU milliseconds a fixed SHA-256 workload (96 MiB) takes on `cpu` right now.

    This machine's hypervisor does not report steal time, so stolen time shows up as CPU time of
    whatever ran. Comparing this number across runs shows how much the machine's speed moved.
    """
    proc = subprocess.Popen(pinned(cpu, [python, "-c", CALIBRATION]), start_new_session=True)
    set_autogroup_nice(proc.pid)
    _, _, usage = os.wait4(proc.pid, 0)
    return round((usage.ru_utime + usage.ru_stime) * 1000.0, 1)


def perf_start(pid: int, out: Path) -> subprocess.Popen:
    """`perf record` (cpu-clock samples, all threads of `pid`) until perf_stop()."""
    return subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-p", str(pid), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stop(proc: subprocess.Popen, data: Path) -> dict[str, float]:
    """Stops perf and returns the share (%) of samples per part: Envoy's own code (which includes V8's
    runtime and the hostcall implementations), the wasm code V8 compiled (JIT), the kernel, the rest."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso"],
                         capture_output=True, text=True, timeout=300).stdout
    shares = {"envoy": 0.0, "wasm_jit": 0.0, "kernel": 0.0, "other": 0.0}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].endswith("%"):
            continue
        pct, dso = float(parts[0].rstrip("%")), parts[1].strip()
        if dso.startswith("[JIT]"):
            shares["wasm_jit"] += pct
        elif dso == "[kernel.kallsyms]":
            shares["kernel"] += pct
        elif dso == "envoy":
            shares["envoy"] += pct
        else:
            shares["other"] += pct
    return {k: round(v, 1) for k, v in shares.items()}


@dataclass
class WrkResult:
    summary: dict
    cpu_s: float
    wall_s: float
    stdout: str


def run_wrk(url: str, duration_s: int, conns: int, env: dict, out_json: Path, cpu: int, lua: Path) -> WrkResult:
    """Runs wrk (one thread) pinned to `cpu`; returns its JSON summary and its own CPU time.

    In the script's once mode the Lua side creates a marker file when its tokens run out; wrk
    would otherwise idle until `-d` elapses, so it gets SIGINT then (it still prints its summary).
    """
    out_json.unlink(missing_ok=True)
    stdout_file = out_json.with_suffix(".stdout")
    done_file = out_json.with_suffix(".done")
    done_file.unlink(missing_ok=True)
    full_env = dict(os.environ, **env, MG_OUT=str(out_json), MG_DONE=str(done_file))
    cmd = pinned(cpu, ["wrk", "-t1", f"-c{conns}", f"-d{duration_s}s", "--timeout", "10s", "-s", str(lua), url])
    t0 = time.monotonic()
    with open(stdout_file, "wb") as so:
        proc = subprocess.Popen(cmd, env=full_env, stdout=so, stderr=subprocess.STDOUT, start_new_session=True)
        set_autogroup_nice(proc.pid)
        interrupted = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            if not interrupted and done_file.exists():
                time.sleep(0.05)  # let the last in-flight responses arrive
                # os.kill, not Popen.send_signal: the latter may reap the child itself, and then
                # wait4 (which we need for the rusage) fails. Not yet reaped = the pid is still ours.
                os.kill(proc.pid, signal.SIGINT)
                interrupted = True
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    text = stdout_file.read_text(errors="replace")
    if proc.returncode != 0 or not out_json.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-2000:]}")
    return WrkResult(json.loads(out_json.read_text()), usage.ru_utime + usage.ru_stime, wall, text)
