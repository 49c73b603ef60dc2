// Loads Pyodide and a browser-mode scene's Python files, with real progress and clear failures.
//
// preloadPyodide(config) starts the interpreter (download of the WebAssembly interpreter + standard library,
// ~12 MB, then Python's start-up on this thread) and returns a cached promise: the game scene and anything
// else needing the same interpreter await the same promise. loadBrowserRuntime(config, {onProgress}) then
// fetches the scene's bundle (manifest + one blob of source files), writes it into Pyodide's file system and
// imports the environment. Progress is real: bytes received for the interpreter files are counted by wrapping `fetch`
// while Pyodide loads (Pyodide fetches them itself), then each later stage reports when it ends.
//
// A failed load rejects with RuntimeLoadError (with a participant-facing message) and is not cached, so
// calling again retries.
//
// A browser-mode game runs this module in its Worker (browser_game_worker.js): there preloadPyodide starts
// the interpreter while the participant reads the pages before the game. For a game whose Python runs in the
// page (p2p), warmPyodide(config) only downloads the interpreter's files in a Worker during those pages
// (cache_warmer.js says why), and preloadPyodide starts it on the game page from the HTTP cache.
//
// The interpreter's environment variables come from the scene config (`config.pyodide.env`, built by the
// server from interactive_gym/envs/determinism.py): above all PYTHONHASHSEED, so that every peer's str
// hashes, and with them the iteration order of sets and dicts of strings, are the same. They only take
// effect when Python starts, so they are part of the cache key: an instance started with other variables is
// never reused.

import { warmInWorker } from "./cache_warmer.js";
import { PyodideEnvHost } from "./pyodide_env_host.js";

export const DEFAULT_INDEX_URL = "/vendor/pyodide/";
export const BUNDLE_ROOT = "/home/pyodide/ig_bundle";
// Share of the progress bar per stage (download dominates a cold load).
export const STAGES = Object.freeze([
  ["download", 0.7], ["python", 0.12], ["packages", 0.04], ["files", 0.06], ["env", 0.08],
]);

/** A load failure, with the stage it happened in and a sentence to show the participant. */
export class RuntimeLoadError extends Error {
  constructor(stage, userMessage, cause) {
    super(`${stage}: ${cause?.message ?? userMessage}`);
    this.name = "RuntimeLoadError";
    this.stage = stage;
    this.userMessage = userMessage;
    this.cause = cause;
  }
}

/**
 * Marks a point of a load on the page's performance timeline (`ig:<name>`), where benchmarks read where the
 * time of a load goes (benchmarks/p2p_rejoin.py). Never throws: a timeline is only a measurement.
 */
export function markLoad(name) {
  try {
    globalThis.performance?.mark?.(`ig:${name}`);
  } catch {
    // no timeline here (old browser, or a test double): nothing to record
  }
}

export const NO_WEBASSEMBLY_MESSAGE = "This browser cannot run the game (WebAssembly is not available). "
  + "Please use a current version of Chrome, Firefox, Edge or Safari.";

/** Whether this browser can run Pyodide at all. */
export function webAssemblySupported() {
  return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
}

/** Overall fraction [0, 1] when `stage` is `fraction` done. */
export function overallProgress(stage, fraction) {
  let before = 0;
  for (const [name, share] of STAGES) {
    if (name === stage) {
      const value = before + share * Math.max(0, Math.min(1, fraction));
      return Math.min(1, Math.round(value * 1e6) / 1e6); // 0.9999999999 from float sums is 1
    }
    before += share;
  }
  throw new Error(`unknown loading stage ${stage}`);
}

/** Progress state of one Pyodide load, shared by everyone awaiting it. */
class LoadTracker {
  constructor() {
    this.bytes = 0;
    this.totalBytes = 0;
    this.stage = "download";
    this.fraction = 0;
    this.listeners = new Set();
    this.best = 0;
  }

  report(stage, fraction, detail = "") {
    this.stage = stage;
    this.fraction = fraction;
    // The byte total grows as each file's response arrives; the bar must still never move backwards.
    this.best = Math.max(this.best, overallProgress(stage, fraction));
    const event = { stage, fraction, progress: this.best, detail, bytes: this.bytes, totalBytes: this.totalBytes };
    for (const listener of this.listeners) listener(event);
  }

  addBytes(n) {
    this.bytes += n;
    if (this.totalBytes > 0) this.report("download", this.bytes / this.totalBytes, "Downloading Python");
  }
}

// Waits before retrying a download of Python's files that failed on the network (a participant offline for a
// few seconds while the game loads): about 11 s in all, then the load fails with a Retry for the participant.
export const DOWNLOAD_RETRY_DELAYS_MS = Object.freeze([500, 1000, 2000, 2000, 3000, 3000]);

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * Wraps fetch so responses under `prefix` count their bytes into `tracker` as they stream in, and a network
 * error on one of those files is retried after each of `retryDelaysMs` (Pyodide gives up for good on the first
 * failed fetch of its wasm, and the page would be left loading).
 */
export function countingFetch(originalFetch, prefix, tracker, { retryDelaysMs = DOWNLOAD_RETRY_DELAYS_MS,
  sleep = pause } = {}) {
  return async function fetchWithProgress(input, init) {
    // Pyodide passes URL objects; other callers strings or Request objects.
    const raw = typeof Request !== "undefined" && input instanceof Request ? input.url : String(input);
    const url = new URL(raw, globalThis.location?.href).href;
    const ours = url.startsWith(prefix);
    let response;
    for (let attempt = 0; ; attempt += 1) {
      try {
        response = await originalFetch(input, init);
        break;
      } catch (err) {
        if (!ours || attempt >= retryDelaysMs.length || err?.name === "AbortError") throw err;
        await sleep(retryDelaysMs[attempt]);
      }
    }
    if (!ours || !response.body || !response.ok) return response;
    tracker.totalBytes += Number(response.headers.get("content-length")) || 0;
    const reader = response.body.getReader();
    const stream = new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) { controller.close(); return; }
        tracker.addBytes(value.byteLength);
        controller.enqueue(value);
      },
      cancel(reason) { return reader.cancel(reason); },
    });
    // Same status and headers (Content-Type application/wasm keeps streaming compilation working).
    return new Response(stream, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

// One load per index URL and environment per page: the instructions scene starts it, the game awaits it.
const loads = new Map();
const MAX_ENV_VARS = 16;
const MAX_ENV_CHARS = 1024;

function indexUrlOf(config) {
  const url = config?.pyodide?.index_url || DEFAULT_INDEX_URL;
  return new URL(url, globalThis.location?.href).href;
}

/**
 * The environment variables Python starts with, from `config.pyodide.env`: a fresh object (Pyodide adds
 * its own entries to the one it is given) with the names sorted, so equal settings give equal cache keys.
 * @param {object} config
 * @returns {Object<string, string>}
 */
export function pyodideEnvOf(config) {
  const env = config?.pyodide?.env ?? {};
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    throw new TypeError(`pyodide.env must be an object of strings, got ${JSON.stringify(env)}`);
  }
  const names = Object.keys(env).sort();
  if (names.length > MAX_ENV_VARS) throw new TypeError(`pyodide.env has ${names.length} variables (at most ${MAX_ENV_VARS})`);
  const out = {};
  for (const name of names) {
    const value = env[name];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== "string" || value.length > MAX_ENV_CHARS) {
      throw new TypeError(`pyodide.env.${name} must be a string of at most ${MAX_ENV_CHARS} characters, `
        + `got ${JSON.stringify(value)}`);
    }
    out[name] = value;
  }
  return out;
}

/** The cache key of a load: same index URL and same environment means the same interpreter can serve. */
export function loadKeyOf(indexURL, env) {
  return `${indexURL} ${JSON.stringify(env)}`;
}

/** The options for `loadPyodide` (a fresh env object each time: Pyodide adds HOME etc. to it). */
export function loadPyodideOptions(indexURL, env) {
  return { indexURL, env: { ...env } };
}

async function startPyodide(indexURL, env, tracker) {
  if (!webAssemblySupported()) {
    throw new RuntimeLoadError("download", NO_WEBASSEMBLY_MESSAGE);
  }
  const originalFetch = globalThis.fetch;
  globalThis.fetch = countingFetch(originalFetch, indexURL, tracker);
  let pyodide;
  try {
    markLoad("pyodide-start");
    tracker.report("download", 0, "Downloading Python");
    const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
    pyodide = await loadPyodide(loadPyodideOptions(indexURL, env));
  } catch (err) {
    throw new RuntimeLoadError("download", "The game could not be downloaded. Check your connection and retry.", err);
  } finally {
    globalThis.fetch = originalFetch;
  }
  markLoad("python-started");
  tracker.report("python", 1, "Python started");
  return pyodide;
}

/**
 * Starts loading Pyodide for `config` (a scene config, or just `{pyodide: {index_url, env}}`) unless an
 * instance with the same index URL and environment was started; returns the cached promise of it.
 *
 * A config without interpreter settings (`config.pyodide` absent: the caller does not know them yet, e.g. a
 * game page before its game's config arrived) starts no interpreter: it would start with the wrong
 * environment, and the game would then start a second one beside it (measured: the page downloaded the wasm
 * twice and compiled and started Python twice on its main thread). It only downloads the interpreter's files
 * in a Worker (warmPyodide) and resolves to null.
 * @param {object} config
 * @param {{onProgress?: (event: object) => void, warm?: Function}} [options]
 * @returns {Promise<object|null>}
 */
export function preloadPyodide(config = {}, { onProgress, warm } = {}) {
  if (config?.pyodide === undefined || config?.pyodide === null) {
    return warmPyodide(config, warm ? { warm } : {}).then(() => null);
  }
  const indexURL = indexUrlOf(config);
  let env;
  try {
    env = pyodideEnvOf(config);
  } catch (err) {
    return Promise.reject(new RuntimeLoadError("download", "The game is misconfigured and cannot start.", err));
  }
  const key = loadKeyOf(indexURL, env);
  let entry = loads.get(key);
  if (!entry) {
    if ([...loads.values()].some((other) => other.indexURL === indexURL)) {
      // Correct but slow: a second interpreter. The server should send the same env with every config.
      console.warn(`Starting a second Pyodide for ${indexURL}: environment ${JSON.stringify(env)} differs from the preloaded one`);
    }
    const tracker = new LoadTracker();
    entry = { tracker, indexURL, promise: startPyodide(indexURL, env, tracker), done: false };
    loads.set(key, entry);
    entry.promise.then(() => { entry.done = true; }, () => loads.delete(key)); // failures are retried
  }
  if (onProgress) {
    entry.tracker.listeners.add(onProgress);
    if (entry.done) onProgress({ stage: "python", fraction: 1, progress: overallProgress("python", 1), detail: "" });
  }
  return entry.promise;
}

// The files loadPyodide fetches (Pyodide 314: the loader, its Emscripten module, the WebAssembly binary, the lock
// file, the standard library).
export const PYODIDE_FILES = Object.freeze(["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "pyodide-lock.json",
  "python_stdlib.zip"]);
const warms = new Map(); // index URL -> Promise of the warm-up outcome

/**
 * Downloads Pyodide's files for `config` in a Worker, without starting the interpreter and
 * without work on the main thread; one warm-up per index URL per page (the environment does not matter for
 * files). Never rejects; a failed warm-up is retried by the next call.
 * @param {object} config a scene config or a preload ({pyodide: {index_url}})
 * @param {{warm?: typeof warmInWorker}} [options]
 * @returns {Promise<{warmed: boolean, ms?: number, bytes?: number, error?: string}>}
 */
export function warmPyodide(config = {}, { warm = warmInWorker } = {}) {
  const indexURL = indexUrlOf(config);
  if (!warms.has(indexURL)) {
    const promise = warm({ urls: PYODIDE_FILES.map((name) => indexURL + name) })
      .then((outcome) => {
        if (!outcome.warmed) {
          warms.delete(indexURL);
          console.warn(`Pyodide warm-up failed (the game will download it): ${outcome.error}`);
        }
        return outcome;
      });
    warms.set(indexURL, promise);
  }
  return warms.get(indexURL);
}

function checkedPath(path) {
  if (typeof path !== "string" || path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "")) {
    throw new Error(`bundle manifest has an unsafe path ${JSON.stringify(path)}`);
  }
  return path;
}

async function fetchOk(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what} ${url}: HTTP ${response.status}`);
  return response;
}

/**
 * Downloads a bundle: its manifest and the one blob of its source files, both at once (the blob's URL is known
 * from the manifest's), and checks their sizes agree. Needs no interpreter: a game starts it while Pyodide starts.
 * @returns {Promise<{manifest: object, blob: Uint8Array}>}
 */
export async function fetchBundle(manifestUrl) {
  const blobUrl = new URL("sources.bin", new URL(manifestUrl, globalThis.location?.href));
  const [manifest, bytes] = await Promise.all([
    fetchOk(manifestUrl, "bundle manifest").then((r) => r.json()),
    fetchOk(blobUrl, "bundle files").then((r) => r.arrayBuffer()),
  ]);
  const blob = new Uint8Array(bytes);
  const expected = manifest.files.filter((f) => f.kind === "source").reduce((n, f) => n + f.size, 0);
  if (blob.length !== expected) throw new Error(`bundle is ${blob.length} bytes, manifest says ${expected}`);
  return { manifest, blob };
}

/** Downloads the bundle at `manifestUrl` and writes it into `pyodide` (writeBundle). */
export async function installBundle(pyodide, manifestUrl) {
  return writeBundle(pyodide, await fetchBundle(manifestUrl));
}

/** Writes a fetched bundle's source files under BUNDLE_ROOT/<hash> and puts that folder first on sys.path. */
export function writeBundle(pyodide, { manifest, blob }) {
  const sources = manifest.files.filter((f) => f.kind === "source");
  const root = `${BUNDLE_ROOT}/${manifest.hash}`;
  let offset = 0;
  for (const file of sources) {
    const path = `${root}/${checkedPath(file.path)}`;
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, blob.subarray(offset, offset + file.size));
    offset += file.size;
  }
  // Activate this bundle: forget modules a previous scene's bundle imported, and search this one first.
  pyodide.runPython(`
import importlib, sys
_root = ${JSON.stringify(root)}
for _name, _mod in list(sys.modules.items()):
    _file = getattr(_mod, "__file__", None) or ""
    if _file.startswith(${JSON.stringify(BUNDLE_ROOT + "/")}) and not _file.startswith(_root + "/"):
        del sys.modules[_name]
sys.path[:] = [p for p in sys.path if not p.startswith(${JSON.stringify(BUNDLE_ROOT)})]
sys.path.insert(0, _root)
importlib.invalidate_caches()
`);
  return { manifest, root };
}

/**
 * Everything a browser-mode game needs before its first frame: Pyodide, packages, the scene's files, the
 * environment imported and built.
 * @param {object} config - the browser scene config (see interactive_gym/browser/scene_config.py)
 * @param {{onProgress?: (event: object) => void}} [options]
 * @returns {Promise<{pyodide: object, host: PyodideEnvHost, manifest: object, timings: object}>}
 */
export async function loadBrowserRuntime(config, { onProgress } = {}) {
  const report = (stage, fraction, detail) => onProgress?.({ stage, fraction, progress: overallProgress(stage, fraction), detail });
  const t0 = performance.now();
  const pyodide = await preloadPyodide(config, { onProgress });
  const timings = { pyodide: performance.now() - t0 };
  const packages = config.pyodide?.packages ?? [];
  if (packages.length > 0) {
    report("packages", 0, "Loading Python packages");
    const errors = [];
    try {
      await pyodide.loadPackage(packages, { errorCallback: (m) => errors.push(m) });
    } catch (err) {
      errors.push(String(err?.message ?? err));
    }
    // loadPackage mostly reports missing packages through the callback instead of throwing.
    if (errors.length) {
      throw new RuntimeLoadError("packages", "The game's Python packages could not be loaded.", new Error(errors.join("; ")));
    }
  }
  report("packages", 1, "");
  timings.packages = performance.now() - t0;
  let manifest;
  try {
    report("files", 0, "Loading the game");
    ({ manifest } = await installBundle(pyodide, config.bundle.manifest_url));
  } catch (err) {
    throw new RuntimeLoadError("files", "The game files could not be loaded. Please retry.", err);
  }
  if (manifest.hash !== config.bundle.hash) {
    throw new RuntimeLoadError("files", "The game was updated while loading. Please reload the page.",
      new Error(`bundle hash ${manifest.hash} != ${config.bundle.hash}`));
  }
  report("files", 1, "");
  timings.files = performance.now() - t0;
  let host;
  try {
    report("env", 0, "Starting the game");
    host = PyodideEnvHost.create(pyodide, config);
  } catch (err) {
    throw new RuntimeLoadError("env", "The game could not start.", err);
  }
  report("env", 1, "Ready");
  timings.env = performance.now() - t0;
  return { pyodide, host, manifest, timings };
}
