// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, and the total
// time of every function whose name matches a pattern (self + callees), in % of all samples.
//
//   node tests/bench/cold/profile.mjs FILE.cpuprofile [TOP] [PATTERN ...]
import { readFileSync } from "node:fs";

const [file, topArg, ...patterns] = process.argv.slice(2);
const top = Number(topArg ?? 40);
const prof = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample time per node id.
const time = new Map();
prof.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const total = [...time.values()].reduce((a, b) => a + b, 0);

const name = (n) => n.callFrame.functionName || `(${n.callFrame.url || "anonymous"})`;
const self = new Map();
for (const [id, t] of time) {
  const k = name(byId.get(id));
  self.set(k, (self.get(k) ?? 0) + t);
}
const pct = (t) => ((100 * t) / total).toFixed(1).padStart(5);
console.log(`total ${(total / 1e3).toFixed(0)} ms sampled`);
console.log("-- self time");
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)} %  ${k}`);

// Inclusive time: a sample counts once for each distinct matching function on its stack.
for (const p of patterns) {
  const re = new RegExp(p);
  const incl = new Map();
  for (const [id, t] of time) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = name(byId.get(cur));
      if (re.test(k) && !seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + t);
      }
    }
  }
  console.log(`-- inclusive, /${p}/`);
  for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)} %  ${k}`);
}
