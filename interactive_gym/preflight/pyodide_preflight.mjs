// Pyodide preflight: plays the first frames of every browser/p2p scene of an experiment inside the project's own
// Pyodide (Node), each with the exact bundle its page gets. One process for all scenes, so Pyodide starts once.
//
// Usage: node pyodide_preflight.mjs <job.json>
//   job: {"pyodide_dir": ".../node_modules/pyodide", "driver": "<source of frames.py>", "env": {...},
//         "scenes": [{"scene_id", "mode", "steps", "config", "packages": [...], "files": [{"path", "b64"}]}]}
// Prints one JSON line: {"startup_ms", "scenes": [{"scene_id", ...frames.run_job result}]}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const t0 = performance.now();
const { loadPyodide } = await import(pathToFileURL(join(job.pyodide_dir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ env: job.env ?? {} });
const startupMs = Math.round(performance.now() - t0);

const ROOT = "/home/pyodide/ig_preflight";
pyodide.FS.mkdirTree(`${ROOT}/driver`);
pyodide.FS.writeFile(`${ROOT}/driver/ig_preflight_frames.py`, job.driver);
pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(ROOT + "/driver")})`);

const results = [];
for (const [index, scene] of job.scenes.entries()) {
  const root = `${ROOT}/bundle_${index}`;
  for (const file of scene.files) {
    const path = `${root}/${file.path}`;
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, Buffer.from(file.b64, "base64"));
  }
  if (scene.packages?.length) {
    const errors = [];
    try {
      await pyodide.loadPackage(scene.packages, { errorCallback: (m) => errors.push(m), messageCallback: () => {} });
    } catch (err) {
      errors.push(String(err?.message ?? err));
    }
    if (errors.length) {
      results.push({ scene_id: scene.scene_id, ok: false, stage: "loading Pyodide packages", function: null,
        error_type: "PackageLoadError", error: errors.join("; "), missing_module: null, traceback_tail: [] });
      continue;
    }
  }
  // Like the page: forget the previous bundle's modules and search this one first.
  pyodide.runPython(`
import importlib, sys
for _name, _mod in list(sys.modules.items()):
    if (getattr(_mod, "__file__", None) or "").startswith(${JSON.stringify(ROOT + "/bundle_")}):
        del sys.modules[_name]
sys.path[:] = [p for p in sys.path if not p.startswith(${JSON.stringify(ROOT + "/bundle_")})]
sys.path.insert(0, ${JSON.stringify(root)})
importlib.invalidate_caches()
`);
  const frames = pyodide.pyimport("ig_preflight_frames");
  try {
    const text = frames.run_job_json(JSON.stringify({ mode: scene.mode, config: scene.config, steps: scene.steps }));
    results.push({ scene_id: scene.scene_id, ...JSON.parse(text) });
  } finally {
    frames.destroy();
  }
}
console.log(JSON.stringify({ startup_ms: startupMs, scenes: results }));
