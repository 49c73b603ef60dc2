// The page's face of browser_game_worker.js: the Worker that runs a browser-mode game's Python (Pyodide, the
// env, the ONNX policies) off the page's main thread.
//
//   const worker = gameWorker();                  // one per page, started on first use
//   worker.preload(preloadConfig);                // during the instructions (never rejects)
//   const host = await worker.load(config, {onProgress});
//   const packet = await host.reset(seed);        // then, per frame:
//   const packet = await host.frame(["ArrowUp"]); // host.t, host.episodeOver, host.steps() are synchronous
//
// The step records stay here, on the page: each frame's reply carries its record, so a closing tab saves the
// partial episode synchronously (host.steps()) without asking the Worker. Errors come back as the page's own
// classes: RuntimeLoadError (the loading screen shows Retry), EnvError (the game ends with the traceback),
// WorkerUnavailable (no module Worker in this browser: the game runs in the page instead).

import { EnvError } from "./pyodide_env_host.js";
import { RuntimeLoadError } from "./pyodide_loader.js";

export const WORKER_URL = "/static/js/browser_game_worker.js";
const READY_TIMEOUT_MS = 20_000; // a module Worker that never starts (old browser) counts as unavailable

/** This browser cannot run the game's Worker (no module Workers, or it failed to start). */
export class WorkerUnavailable extends Error {
  constructor(message) {
    super(message);
    this.name = "WorkerUnavailable";
  }
}

/** The Worker stopped (crashed, out of memory, or terminated) while a request was open. */
export class WorkerStopped extends Error {
  constructor(message) {
    super(message);
    this.name = "WorkerStopped";
  }
}

/** The page-side error for a Worker's error reply (see browser_game_worker.js). */
export function errorFromReply(error) {
  if (error?.kind === "load") {
    const cause = new Error(error.message);
    cause.traceback = error.traceback ?? undefined;
    return new RuntimeLoadError(error.stage, error.userMessage, cause);
  }
  if (error?.kind === "env") {
    const err = new EnvError(error.where, error.traceback);
    err.rows = error.rows;
    return err;
  }
  return new Error(String(error?.message ?? "the game's worker failed"));
}

function defaultCreateWorker(url) {
  if (typeof Worker !== "function") throw new WorkerUnavailable("no Worker in this browser");
  return new Worker(url, { type: "module" });
}

/** One dedicated Worker and its requests. */
export class GameWorker {
  constructor({ createWorker = defaultCreateWorker, url = WORKER_URL, readyTimeoutMs = READY_TIMEOUT_MS } = {}) {
    this.pending = new Map(); // request id -> {resolve, reject}
    this.progress = new Map(); // load session -> onProgress
    this.nextId = 1;
    this.nextSession = 1;
    this.stopped = null; // the error once the Worker is gone
    this.preloads = new Map(); // preload config key -> Promise of the outcome
    let timer;
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
      timer = setTimeout(() => this.stop(new WorkerUnavailable("the game's worker did not start")), readyTimeoutMs);
    });
    this.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
    this.ready.catch(() => {}); // observed by every request
    try {
      this.worker = createWorker(url);
    } catch (err) {
      this.stop(err instanceof WorkerUnavailable ? err : new WorkerUnavailable(String(err?.message ?? err)));
      return;
    }
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.stop(new WorkerStopped(`the game's worker stopped: ${event.message ?? "error"}`));
    };
    this.worker.onmessageerror = () => this.stop(new WorkerStopped("a message from the game's worker was unreadable"));
  }

  receive(message) {
    if (message?.op === "ready") { this.markReady(); return; }
    if (message?.op === "progress") { this.progress.get(message.session)?.(message.event); return; }
    const waiter = this.pending.get(message?.id);
    if (!waiter) return; // not ours, or already settled
    this.pending.delete(message.id);
    if (message.ok) waiter.resolve(message);
    else waiter.reject(errorFromReply(message.error));
  }

  /** Ends the Worker; every open request rejects with `err` (a WorkerUnavailable before it ever started). */
  stop(err = new WorkerStopped("the game's worker was stopped")) {
    if (this.stopped) return;
    this.stopped = err;
    this.failReady(err instanceof WorkerUnavailable ? err : new WorkerUnavailable(err.message));
    this.worker?.terminate();
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
    this.progress.clear();
  }

  async request(op, fields = {}) {
    await this.ready;
    if (this.stopped) throw this.stopped;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...fields });
    });
  }

  /**
   * Starts Pyodide (and the ONNX sessions of `config.agents`) in the Worker; one per preload config.
   * @returns {Promise<{ok: boolean, ms?: number, error?: string}>} never rejects (the game's load retries)
   */
  preload(config) {
    const key = JSON.stringify({ pyodide: config?.pyodide ?? {}, agents: config?.agents ?? {} });
    if (!this.preloads.has(key)) {
      const promise = this.request("preload", { config: { pyodide: config?.pyodide, agents: config?.agents } })
        .then((reply) => ({ ok: true, ms: reply.ms }), (err) => {
          this.preloads.delete(key);
          console.warn(`Preloading the game in a Worker failed (the game will load it): ${err.message}`);
          return { ok: false, error: String(err.message) };
        });
      this.preloads.set(key, promise);
    }
    return this.preloads.get(key);
  }

  /**
   * Loads `config`'s game (replacing any earlier one in this Worker).
   * @returns {Promise<WorkerEnvHost>}
   */
  async load(config, { onProgress } = {}) {
    const session = this.nextSession++;
    if (onProgress) this.progress.set(session, onProgress);
    try {
      const reply = await this.request("load", { session, config });
      return new WorkerEnvHost(this, session, reply);
    } finally {
      this.progress.delete(session);
    }
  }
}

/** A loaded game in the Worker, with the current episode's step records kept on the page. */
export class WorkerEnvHost {
  constructor(worker, session, { human = null, onnxAgents = [] } = {}) {
    this.worker = worker;
    this.session = session;
    this.human = human ?? null;
    this.onnxAgents = onnxAgents;
    this.runsAgents = true; // the Worker runs the ONNX agents itself
    this.t = 0;
    this.episodeOver = true;
    this.rows = [];
    this.lastOnnxCalls = 0;
  }

  /** Starts an episode; resolves with the first render packet. */
  async reset(seed) {
    const reply = await this.worker.request("reset", { session: this.session, seed });
    this.rows = [];
    this.t = 0;
    this.episodeOver = false;
    return JSON.parse(reply.text);
  }

  /** Plays one frame with `keys` held (oldest press first); resolves with the render packet. */
  async frame(keys) {
    let reply;
    try {
      reply = await this.worker.request("frame", { session: this.session, keys });
    } catch (err) {
      if (Array.isArray(err.rows)) this.rows.push(...err.rows);
      throw err;
    }
    const { packet, row, t, over } = JSON.parse(reply.text);
    this.rows.push(row);
    this.t = t;
    this.episodeOver = over;
    this.lastOnnxCalls = reply.onnxCalls ?? 0;
    return packet;
  }

  /** The current episode's step records (upload format); synchronous, so a closing page can save them. */
  steps() {
    return this.rows.slice();
  }

  destroy() {}
}

let shared = null;

/** The page's game Worker (a new one if there is none, or the last one stopped). */
export function gameWorker(options) {
  if (!shared || shared.stopped) shared = new GameWorker(options);
  return shared;
}
