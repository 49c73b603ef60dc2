// The Python side of a browser-mode game, run in a dedicated Worker (a module Worker started by
// worker_env_host.js): Pyodide, the scene's bundle, the environment and the ONNX policies.
//
// Why a Worker (measured with benchmarks/no_frozen_pages.py): Python's start-up inside `loadPyodide` is one
// synchronous call of 0.7-4 s that cannot be sliced, and an interpreter started in a Worker cannot be handed
// to the page. Started in the page it froze whichever page it ran on (the instructions, or the game page behind
// its loading screen). Here it runs beside the page: the pages before a game start it ("preload"), and the game
// page only builds the env and then asks for one frame at a time. The page keeps the clock, the keyboard, the
// drawing, the uploads and the step records (it must save a partial episode synchronously when the tab closes).
//
// Protocol (every request carries an `id`; the reply is {id, ok: true, ...} or {id, ok: false, error}):
//   {op: "preload", config}          start Pyodide, its packages, onnxruntime-web and the ONNX sessions
//   {op: "load", session, config}    the whole runtime for a scene config (progress: {op: "progress", session,
//                                    event}); replies {human, onnxAgents}
//   {op: "reset", session, seed}     replies {text}: the first render packet as JSON text
//   {op: "frame", session, keys}     due ONNX agents act, one env step; replies {text, onnxCalls}: JSON text of
//                                    {packet, row, t, over} (`row` is the step's record, the upload format)
// Requests are handled one at a time, in order of arrival: a frame never overlaps another or a load. A preload
// is the exception: it runs beside them (a preload for the next scene arriving mid-game must not hold up frames;
// what it starts is cached, and a load awaits the same interpreter). A request
// naming an older session than the latest load is refused (a scene left while it loaded must not step the next
// scene's env). Errors: {kind: "load", stage, userMessage, message, traceback} (the loading screen's Retry),
// {kind: "env", where, message, traceback, rows} (an exception in the researcher's code; `rows` are records the
// step made before it raised), {kind: "other", message}.

import { OnnxAgent, loadOrt } from "./onnx_policy.js";
import { EnvError } from "./pyodide_env_host.js";
import { RuntimeLoadError, loadBrowserRuntime, preloadPyodide } from "./pyodide_loader.js";

export const MAX_KEYS = 16; // held keys per frame (a keyboard's rollover is less)
const MAX_KEY_CHARS = 32;

// One Python call per frame: step, then the step's record and the episode state, as one JSON text (strings
// cross both the Python boundary and postMessage far cheaper than objects).
const FRAME_HELPER = `
import json as _ig_json

def _ig_worker_frame(host, keys):
    packet = host.frame(keys)
    row = _ig_json.dumps(host.steps[-1], separators=(",", ":"))
    over = "true" if host.episode_over else "false"
    return '{"packet":' + packet + ',"row":' + row + ',"t":' + str(int(host.t)) + ',"over":' + over + '}'

def _ig_worker_rows_since(host, n):
    return _ig_json.dumps(host.steps[n:], separators=(",", ":"))
`;

/** The ONNX agents of a config's `agents` ({agentId: spec}). */
function onnxSpecs(config) {
  return Object.entries(config?.agents ?? {}).filter(([, spec]) => spec?.kind === "onnx");
}

/** Error fields that survive postMessage. */
export function errorReply(err) {
  if (err instanceof RuntimeLoadError) {
    return { kind: "load", stage: err.stage, userMessage: err.userMessage, message: String(err.message),
      traceback: err.cause?.traceback ?? null };
  }
  if (err instanceof EnvError) {
    return { kind: "env", where: err.where, message: String(err.message), traceback: err.traceback };
  }
  return { kind: "other", message: String(err?.message ?? err) };
}

/** The keys of a frame request: a short list of short strings (anything else is refused). */
export function checkedKeys(keys) {
  if (!Array.isArray(keys) || keys.length > MAX_KEYS
      || !keys.every((k) => typeof k === "string" && k.length > 0 && k.length <= MAX_KEY_CHARS && !k.includes("\n"))) {
    throw new TypeError(`keys must be a list of at most ${MAX_KEYS} key names`);
  }
  return keys.join("\n");
}

/** The game state of one Worker: at most one runtime (the latest load's). */
export class WorkerGame {
  constructor({ post, loadRuntime = loadBrowserRuntime, startPyodide = preloadPyodide, createSession = null }) {
    this.post = post;
    this.loadRuntime = loadRuntime;
    this.startPyodide = startPyodide;
    this.createSession = createSession ?? ((url) => this.openSession(url));
    this.session = 0; // the latest load's
    this.runtime = null; // {host, frameFn, rowsFn} once the latest load succeeded
    this.agents = [];
    this.posted = 0; // step records of the current episode sent to the page
    this.sessions = new Map(); // model URL -> Promise<{ort, session}>, shared by the preload and the game
  }

  /** Opens (once per URL) an onnxruntime-web session for a model. */
  openSession(url) {
    if (!this.sessions.has(url)) {
      const promise = (async () => {
        const ort = await loadOrt();
        const response = await fetch(url);
        if (!response.ok) throw new Error(`ONNX model: HTTP ${response.status} from ${url}`);
        const bytes = new Uint8Array(await response.arrayBuffer());
        return { ort, session: await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] }) };
      })();
      promise.catch(() => this.sessions.delete(url)); // a later load retries
      this.sessions.set(url, promise);
    }
    return this.sessions.get(url);
  }

  async handle(message) {
    switch (message?.op) {
      case "preload": return this.preload(message.config);
      case "load": return this.load(message.session, message.config);
      case "reset": return this.reset(message.session, message.seed);
      case "frame": return this.frame(message.session, message.keys);
      default: throw new TypeError(`unknown request ${JSON.stringify(message?.op)}`);
    }
  }

  /** Starts everything that does not need the scene's own config. Failures are retried by the load. */
  async preload(config) {
    const started = performance.now();
    const pyodide = await this.startPyodide(config);
    const packages = config?.pyodide?.packages ?? [];
    if (packages.length) await pyodide.loadPackage(packages, { errorCallback: () => {} }); // errors: at load
    await Promise.all(onnxSpecs(config).map(([, spec]) => this.createSession(spec.url)));
    return { ms: Math.round(performance.now() - started) };
  }

  async load(session, config) {
    if (!Number.isInteger(session) || session <= this.session) throw new Error(`stale load session ${session}`);
    this.session = session;
    this.dropRuntime();
    const runtime = await this.loadRuntime(config, {
      onProgress: (event) => this.post({ op: "progress", session, event: { ...event } }),
    });
    const { pyodide, host } = runtime;
    try {
      if (this.session !== session) throw new Error("a newer load replaced this one");
      pyodide.runPython(FRAME_HELPER);
      const agents = await Promise.all(onnxSpecs(config).map(async ([agentId, spec]) => {
        const { ort, session: onnx } = await this.createSession(spec.url);
        return new OnnxAgent(ort, onnx, agentId, spec);
      }));
      if (this.session !== session) throw new Error("a newer load replaced this one");
      this.runtime = { host, frameFn: pyodide.globals.get("_ig_worker_frame"),
        rowsFn: pyodide.globals.get("_ig_worker_rows_since") };
      this.agents = agents;
    } catch (err) {
      host.destroy();
      throw err;
    }
    return { human: host.human, onnxAgents: this.agents.map((a) => a.agentId) };
  }

  current(session) {
    if (session !== this.session || !this.runtime) throw new Error(`session ${session} is not the loaded game`);
    return this.runtime;
  }

  reset(session, seed) {
    const { host } = this.current(session);
    if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be an integer, got ${JSON.stringify(seed)}`);
    for (const agent of this.agents) agent.resetEpisode(seed);
    this.posted = 0;
    return { text: host.call("reset", () => host.proxy.reset(seed)) };
  }

  async frame(session, keys) {
    const { host, frameFn, rowsFn } = this.current(session);
    const held = checkedKeys(keys);
    let onnxCalls = 0;
    try {
      for (const agent of this.agents) {
        if (host.onnxDue(agent.agentId)) {
          host.setExternalAction(agent.agentId, await agent.act(host.observationInput(agent.agentId)));
          onnxCalls += 1;
        }
      }
      const text = host.call("step", () => frameFn(host.proxy, held));
      this.posted += 1;
      return { text, onnxCalls };
    } catch (err) {
      // Records the failed step made before raising (the render function failed after the step) belong to
      // the episode the page uploads with the traceback, as when the env ran in the page.
      if (err instanceof EnvError) err.rows = JSON.parse(rowsFn(host.proxy, this.posted));
      throw err;
    }
  }

  dropRuntime() {
    if (!this.runtime) return;
    this.runtime.frameFn.destroy?.();
    this.runtime.rowsFn.destroy?.();
    this.runtime.host.destroy();
    this.runtime = null;
    this.agents = [];
  }
}

/** Serves `scope`'s messages with a WorkerGame, one request at a time. */
export function serve(scope) {
  const game = new WorkerGame({ post: (message) => scope.postMessage(message) });
  let queue = Promise.resolve();
  const answer = async (message) => {
    try {
      scope.postMessage({ id: message?.id, ok: true, ...(await game.handle(message)) });
    } catch (err) {
      const error = errorReply(err);
      if (err?.rows !== undefined) error.rows = err.rows;
      scope.postMessage({ id: message?.id, ok: false, error });
    }
  };
  scope.onmessage = (event) => {
    const message = event.data;
    if (message?.op === "preload") answer(message);
    else queue = queue.then(() => answer(message));
  };
  scope.postMessage({ op: "ready" });
  return game;
}

// Inside a Worker this module serves at once; imported elsewhere (tests) it only exports.
if (typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope) serve(globalThis);
