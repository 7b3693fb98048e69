// Runs coldbench modules (wasm32-wasip1 builds of tests/bench/cold) under Node's V8, interleaved:
// every round instantiates each module once (rotating order) and collects its RESULT lines;
// prints the median µs per token over the rounds, per module, algorithm and mode.
//
//   node --no-liftoff tests/bench/cold/run.mjs TOKENS.json ROUNDS [ALG=RS256,ES256,EdDSA] LABEL=MODULE.wasm [...]
//
// Times are CPU time of the Node process (COLDBENCH_WALL=1: wall-clock time), in µs per token.
// `--no-liftoff` is what Envoy's V8 set-up does (TurboFan only). Add `--cpu-prof` (and
// `--cpu-prof-dir DIR`) for a per-function profile; profile.mjs summarises it.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
import { dirname, basename } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// Child: one instance of one module, its RESULT lines on stdout. (Several WASI instances in one
// Node 20 process abort it, so each run is its own process, started with this process's flags.)
if (process.argv[2] === "--child") {
  const [, , , path, tokens, ...only] = process.argv;
  const wasi = new WASI({
    version: "preview1",
    args: ["coldbench", "run", `/data/${basename(tokens)}`, ...only],
    preopens: { "/data": dirname(tokens) },
    returnOnExit: true,
  });
  // The program times itself with the monotonic clock (`Instant`); answer it with this process's
  // CPU time (user + system), so that waiting for a CPU on a shared machine does not count.
  const imports = wasi.getImportObject();
  const wasiImports = imports.wasi_snapshot_preview1;
  const realClock = wasiImports.clock_time_get;
  let memory;
  if (process.env.COLDBENCH_WALL !== "1") {
    wasiImports.clock_time_get = (id, precision, out) => {
      if (id !== 1) return realClock(id, precision, out);
      const { user, system } = process.cpuUsage();
      new DataView(memory.buffer).setBigUint64(out, BigInt(user + system) * 1000n, true);
      return 0;
    };
  }
  const module = new WebAssembly.Module(readFileSync(path));
  const instance = new WebAssembly.Instance(module, imports);
  memory = instance.exports.memory;
  process.exit(wasi.start(instance));
}

const [tokens, roundsArg, ...rest] = process.argv.slice(2);
// Optional ALG=RS256,EdDSA (before the modules): only these algorithms.
const only = rest[0]?.startsWith("ALG=") ? rest.shift().slice(4).split(",") : [];
const specs = rest;
if (!tokens || !roundsArg || specs.length === 0) {
  console.error("usage: node --no-liftoff run.mjs TOKENS.json ROUNDS [ALG=...] LABEL=MODULE.wasm [...]");
  process.exit(2);
}
const rounds = Number(roundsArg);
const modules = specs.map((s) => {
  const [label, path] = s.split("=");
  return { label, path };
});

function runOnce({ label, path }) {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, "--no-warnings", fileURLToPath(import.meta.url), "--child", path, tokens, ...only],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  if (child.status !== 0) throw new Error(`${label} exited ${child.status}: ${child.stderr}`);
  return child.stdout
    .split("\n")
    .filter((l) => l.startsWith("RESULT "))
    .map((l) => l.split(" "));
}

const results = new Map(); // "label alg mode" -> [µs]
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < modules.length; i++) {
    const m = modules[(i + r) % modules.length];
    for (const [, alg, mode, us] of runOnce(m)) {
      const key = `${m.label}\t${alg}\t${mode}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push(Number(us));
    }
  }
  process.stderr.write(`round ${r + 1}/${rounds} done\n`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`V8 ${process.versions.v8}, ${rounds} rounds, median [min–max] µs per token (${process.env.COLDBENCH_WALL === "1" ? "wall clock" : "process CPU time"})`);
console.log("module\talg\tmode\tmedian\tmin\tmax");
for (const [key, xs] of results) {
  console.log(`${key}\t${median(xs).toFixed(1)}\t${Math.min(...xs).toFixed(1)}\t${Math.max(...xs).toFixed(1)}`);
}
