// Runs the netcode benchmark's measure() inside Pyodide under Node; prints its JSON on the last stdout line.
// Usage: node benchmarks/netcode_pyodide.mjs <repo root> <frames> <seed> <repeats>
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [root, frames, seed, repeats] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(join(root, "node_modules/pyodide/pyodide.mjs")).href);
const pyodide = await loadPyodide();
const base = "/home/pyodide/work";
const files = [
  "interactive_gym/__init__.py",
  "interactive_gym/envs/__init__.py",
  "interactive_gym/envs/spaces.py",
  "interactive_gym/envs/state.py",
  "interactive_gym/envs/input_codecs.py",
  "examples/demo/gatherers.py",
  "benchmarks/netcode.py",
  "benchmarks/netcode_heavy_env.py",
  ...readdirSync(join(root, "interactive_gym/netcode"))
    .filter((n) => n.endsWith(".py"))
    .map((n) => `interactive_gym/netcode/${n}`),
];
for (const file of files) {
  pyodide.FS.mkdirTree(`${base}/${file.split("/").slice(0, -1).join("/")}`);
  pyodide.FS.writeFile(`${base}/${file}`, readFileSync(join(root, file), "utf8"));
}
const result = await pyodide.runPythonAsync(`
import sys, json
sys.path[:0] = ["${base}", "${base}/benchmarks"]
import netcode as bench
json.dumps({"machine": bench.machine(), "results": bench.measure(${Number(frames)}, ${Number(seed)}, ${Number(repeats)})})
`);
console.log(result);
