// check-env --pyodide: runs interactive_gym.envs.trace.run_request inside Pyodide in Node.
// Reads JSON {index_path, env, files: {path: base64}, request} from stdin; writes the files under ROOT,
// puts ROOT first on sys.path (as the page does with a scene's bundle) and prints the TraceResult JSON as
// the last line of stdout. Python's own output goes to stderr.
// Usage: node pyodide_trace.mjs < payload.json   (started by interactive_gym/tools/env_runs.py)
import { pathToFileURL } from "node:url";

const ROOT = "/home/pyodide/ig_check";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const payload = await readStdin();
  const { loadPyodide } = await import(pathToFileURL(`${payload.index_path}pyodide.mjs`).href);
  const pyodide = await loadPyodide({
    indexURL: payload.index_path,
    env: { ...payload.env },
    stdout: (line) => process.stderr.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  });
  for (const [path, data] of Object.entries(payload.files)) {
    if (path.startsWith("/") || path.split("/").some((part) => part === ".." || part === "")) {
      throw new Error(`unsafe file path ${JSON.stringify(path)}`);
    }
    const target = `${ROOT}/${path}`;
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
    pyodide.FS.writeFile(target, Buffer.from(data, "base64"));
  }
  pyodide.globals.set("request_json", JSON.stringify(payload.request));
  const result = pyodide.runPython(`
import json, sys
sys.path.insert(0, ${JSON.stringify(ROOT)})
from interactive_gym.envs.trace import run_request
json.dumps(run_request(json.loads(request_json)))
`);
  process.stdout.write(`${result}\n`);
}

try {
  await main();
} catch (err) {
  // One readable message (a Python traceback included), not Node's dump of Pyodide's minified source.
  process.stderr.write(`${err?.message ?? err}\n`);
  process.exitCode = 1;
}
