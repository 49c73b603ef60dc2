// Runs tests/netcode/pyodide_scenario.py inside Pyodide (Node) with the project's netcode files written into
// Pyodide's file system, and prints the scenario's JSON on the last line of stdout.
// Usage: node tests/netcode/pyodide_netsim.mjs <repo root>
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = process.argv[2];
const { loadPyodide } = await import(pathToFileURL(join(root, "node_modules/pyodide/pyodide.mjs")).href);

const pyodide = await loadPyodide();
const files = {
  "interactive_gym/__init__.py": "interactive_gym/__init__.py",
  "interactive_gym/envs/__init__.py": "interactive_gym/envs/__init__.py",
  "interactive_gym/envs/state.py": "interactive_gym/envs/state.py",
  "interactive_gym/envs/input_codecs.py": "interactive_gym/envs/input_codecs.py",
  "envs_for_tests.py": "tests/netcode/envs_for_tests.py",
  "pyodide_scenario.py": "tests/netcode/pyodide_scenario.py",
};
for (const name of readdirSync(join(root, "interactive_gym/netcode"))) {
  if (name.endsWith(".py")) files[`interactive_gym/netcode/${name}`] = `interactive_gym/netcode/${name}`;
}
const base = "/home/pyodide/work";
for (const dir of ["", "/interactive_gym", "/interactive_gym/envs", "/interactive_gym/netcode"]) {
  pyodide.FS.mkdirTree(base + dir);
}
for (const [target, source] of Object.entries(files)) {
  pyodide.FS.writeFile(`${base}/${target}`, readFileSync(join(root, source), "utf8"));
}
const started = performance.now();
const result = await pyodide.runPythonAsync(`
import sys, json
sys.path.insert(0, "${base}")
import pyodide_scenario
json.dumps(pyodide_scenario.run())
`);
const data = JSON.parse(result);
data.wall_ms = Math.round(performance.now() - started);
console.log(JSON.stringify(data));
