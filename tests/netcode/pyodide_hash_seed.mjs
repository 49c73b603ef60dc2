// Starts Pyodide in Node twice with the options the page's loader (pyodide_loader.js) builds: once from the
// scene config's pyodide settings (given as JSON), once from the same settings without `env`. Prints, on
// the last line, JSON {"seeded": {...}, "unseeded": {...}} with hash("abc"), the hash-randomisation flag
// and the iteration order of a set of strings in each interpreter.
// (Node's Pyodide takes a file path as indexURL where the page uses a URL, hence not preloadPyodide itself.)
// Usage: node tests/netcode/pyodide_hash_seed.mjs <repo root> '<pyodide settings JSON>'
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [root, settingsJson] = process.argv.slice(2);
const { loadPyodideOptions, pyodideEnvOf } = await import(
  pathToFileURL(join(root, "interactive_gym/server/static/js/pyodide_loader.js")).href);
const { loadPyodide } = await import(pathToFileURL(join(root, "node_modules/pyodide/pyodide.mjs")).href);
const settings = JSON.parse(settingsJson);
const { env, ...withoutEnv } = settings;

const probe = `
import json, os, sys
json.dumps({"hash": hash("abc"), "randomized": sys.flags.hash_randomization,
            "env_seed": os.environ.get("PYTHONHASHSEED"),
            "order": list({"alpha", "beta", "gamma", "delta", "epsilon", "zeta"})})`;
const result = { requested_env: env ?? null };
for (const [name, pyodide] of [["seeded", settings], ["unseeded", withoutEnv]]) {
  const options = loadPyodideOptions(join(root, "node_modules/pyodide/"), pyodideEnvOf({ pyodide }));
  const instance = await loadPyodide(options);
  result[name] = JSON.parse(instance.runPython(probe));
}
console.log(JSON.stringify(result));
