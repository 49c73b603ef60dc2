// A browser-mode game scene: the environment and the AI policies run in a dedicated Worker
// (browser_game_worker.js, started while the participant reads the pages before the game); this page keeps the
// clock, the keyboard, the drawing, the step records and the uploads.
//
//   const game = new BrowserGame({container, config, uploader, onStatus});
//   const result = await game.run();   // plays config.num_episodes episodes, uploads each one
//
// `config` is the browser scene config (interactive_gym/browser/scene_config.py); `uploader` has
// `upload(payload) -> Promise` (EpisodeUploader) and optionally `stash(payload)` (kept for the next page
// load when this one closes). The game loop runs at config.fps: sample held keys, ask the Worker for one
// frame (due ONNX agents act, one Python call steps the env and renders), the Renderer draws the packet. A
// hidden tab pauses the game and the pause is recorded with the episode; closing the page mid-episode stashes
// (and, with `beaconUrl`, beacons) the partial episode from the records kept on this page. An exception in the
// environment ends the game with a message to the participant, and the steps played so far are uploaded with
// the traceback. Where module Workers are unavailable the game runs in the page, as before.
//
// Episode payload: see interactive_gym/server/upload_validation.py. It names the scene visit and attempt the
// server put in the config (`scene_index`, `attempt`) and carries the page-clock times of the episode's start
// and end plus `clockOffset()`'s estimate of the server clock's lead; the server stores played times on its
// clock. A reloaded page gets a new attempt that plays only `config.episodes` (those not yet complete).

import { pageSeconds } from "./clock_sync.js";
import { LoadingScreen } from "./loading_screen.js";
import { warmInWorker } from "./cache_warmer.js";
import { DEFAULT_ORT_URL, OnnxAgent } from "./onnx_policy.js";
import { NO_WEBASSEMBLY_MESSAGE, RuntimeLoadError, loadBrowserRuntime, warmPyodide, webAssemblySupported }
  from "./pyodide_loader.js";
import { WorkerUnavailable, gameWorker } from "./worker_env_host.js";

const MAX_CATCH_UP_FRAMES = 5; // after a longer stall the clock restarts instead of bursting frames

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function defaultRenderer(container, canvas, assets) {
  const { Renderer } = await import("./renderer.js");
  const renderer = new Renderer(container, { width: canvas.width, height: canvas.height,
    background: canvas.background, assets });
  await renderer.ready();
  return renderer;
}

async function defaultInput(keys) {
  const { KeyboardInput } = await import("./input.js");
  return new KeyboardInput(globalThis.window, { keys });
}

// Big files of the renderer and of onnxruntime-web, warmed with Pyodide's (same origin, under /vendor/).
export const RENDERER_FILES = Object.freeze(["/vendor/phaser/phaser.esm.min.js"]);
export const ORT_FILES = Object.freeze(["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
  .map((name) => DEFAULT_ORT_URL + name));

/**
 * What a preload config (the server's `scene.preload`: {pyodide, agents}) is for: a browser-mode game has its
 * agents listed; a p2p game's preload lists none (its interpreter runs in the page, p2p_runtime.js).
 */
export function isBrowserModePreload(config) {
  if (typeof config?.mode === "string") return config.mode === "browser";
  return Object.keys(config?.agents ?? {}).length > 0;
}

/**
 * Gets the next game ready while the participant reads the instructions, without work on this page's main
 * thread; safe to call repeatedly. For a browser-mode game, the game's Worker starts Pyodide, its packages,
 * onnxruntime-web and the ONNX sessions (browser_game_worker.js), so the game page only builds the env. For
 * a p2p game (which runs Python in the page) Pyodide's files are downloaded in a Worker into the HTTP cache
 * (cache_warmer.js). The renderer's files (Phaser) are warmed into the cache in both cases; Phaser itself is
 * evaluated on the game page, where it draws.
 * @returns {Promise<void>} settles when all are done (failures are retried later by the game)
 */
export function preloadBrowserGame(config, { warm = warmInWorker, worker = gameWorker } = {}) {
  const browserMode = isBrowserModePreload(config);
  const urls = [...RENDERER_FILES];
  if (!browserMode && Object.values(config.agents ?? {}).some((spec) => spec.kind === "onnx")) urls.push(...ORT_FILES);
  const key = urls.join(" ");
  if (!fileWarms.has(key)) {
    fileWarms.set(key, warm({ urls }).then((outcome) => { if (!outcome.warmed) fileWarms.delete(key); }));
  }
  // Without a game Worker (no module Workers here), the game runs in the page: warm its files at least.
  const python = browserMode
    ? worker().preload(config).then((outcome) => (outcome.ok ? outcome : warmPyodide(config, { warm })))
    : warmPyodide(config, { warm });
  return Promise.allSettled([python, fileWarms.get(key)]).then(() => undefined);
}
const fileWarms = new Map(); // the renderer's (and onnxruntime-web's) files, warmed once per page

export class BrowserGame {
  /**
   * @param {object} options
   * @param {HTMLElement} options.container - where the loading screen and the canvas go
   * @param {object} options.config - browser scene config
   * @param {{upload: Function, stash?: Function}} options.uploader
   * @param {(status: object) => void} [options.onStatus] - {phase: "loading"|"playing"|"paused"|
   *   "between"|"uploading"|"done"|"error", ...}
   * @param {string|null} [options.beaconUrl] - POST target for navigator.sendBeacon on page close
   * @param {number} [options.betweenEpisodesMs] - pause showing "episode done" between episodes
   * @param {object} [options.runtime] - an already loaded runtime ({host}) (tests, benchmarks)
   * @param {boolean} [options.useWorker] - run Python in the game's Worker (default); false runs it in this
   *   page (what browsers without module Workers get; benchmarks compare the two)
   * @param {Function} [options.createRenderer] - (container, canvas, assets) => Promise<{draw(packet)}>
   * @param {Function} [options.createInput] - (keys) => Promise<{sample(): string[]}>
   * @param {() => ({offset_s: number, rtt_s: number} | null)} [options.clockOffset] - the latest estimate of
   *   the server clock's lead (clock_sync.js); null while unknown
   */
  constructor({ container, config, uploader, onStatus = () => {}, beaconUrl = null, betweenEpisodesMs = 1500,
    runtime = null, createRenderer = defaultRenderer, createInput = defaultInput, sleep = defaultSleep,
    clockOffset = () => null, useWorker = true, worker = gameWorker }) {
    if (!config || config.mode !== "browser") throw new TypeError("BrowserGame needs a browser-mode scene config");
    if (!uploader || typeof uploader.upload !== "function") throw new TypeError("BrowserGame needs an uploader");
    this.container = container;
    this.config = config;
    this.uploader = uploader;
    this.onStatus = onStatus;
    this.beaconUrl = beaconUrl;
    this.betweenEpisodesMs = betweenEpisodesMs;
    this.runtime = runtime;
    this.createRenderer = createRenderer;
    this.createInput = createInput;
    this.sleep = sleep;
    this.clockOffset = clockOffset;
    this.useWorker = useWorker;
    this.worker = worker;
    this.episode = null; // {index, seed, pauses, startedAt} while an episode is being played
    this.stopped = false;
    this.uploads = [];
    this.stats = { frames: 0, hostMs: 0, drawMs: 0, onnxMs: 0, onnxCalls: 0, firstFrameAt: null };
    this.onPageHide = () => this.savePartial("page_closed");
  }

  /** Plays every episode; resolves with {episodes, error, uploadErrors} once all uploads are settled. */
  async run() {
    try {
      await this.setUp();
    } catch (err) {
      this.reportError(err);
      return { episodes: [], error: String(err.message ?? err), uploadErrors: [] };
    }
    const episodes = [];
    let error = null;
    globalThis.addEventListener?.("pagehide", this.onPageHide);
    // The episodes of this attempt: after a reload, only those without a complete upload yet.
    const toPlay = this.config.episodes ?? [...Array(this.config.num_episodes).keys()];
    try {
      for (const [position, index] of toPlay.entries()) {
        if (this.stopped) break;
        const summary = await this.playEpisode(index);
        episodes.push(summary);
        if (position + 1 < toPlay.length && !this.stopped) {
          this.showMessage(`Episode ${index + 1} of ${this.config.num_episodes} done.`);
          this.onStatus({ phase: "between", episode: index });
          await this.sleep(this.betweenEpisodesMs);
          this.showMessage("");
        }
      }
    } catch (err) {
      error = err;
      this.reportError(err);
    } finally {
      globalThis.removeEventListener?.("pagehide", this.onPageHide);
      this.input?.destroy?.();
    }
    this.onStatus({ phase: "uploading" });
    const results = await Promise.allSettled(this.uploads);
    const failed = results.filter((r) => r.status === "rejected").map((r) => String(r.reason?.message ?? r.reason));
    this.onStatus({ phase: error ? "error" : "done", uploadErrors: failed });
    return { episodes, error: error ? String(error.message ?? error) : null, uploadErrors: failed };
  }

  /**
   * Loads everything before the first frame. The Python side (Pyodide, the bundle, the env; in the Worker
   * also the ONNX sessions) and the renderer (Phaser) load in parallel: on a cold visit that hides the
   * renderer's download behind Pyodide's.
   */
  async setUp() {
    const t0 = performance.now();
    const stamp = (name) => (value) => { this.stats[name] = performance.now() - t0; return value; };
    const rendererReady = this.createRenderer(this.container, this.config.canvas, this.config.assets ?? {})
      .then(stamp("rendererMs"));
    rendererReady.catch(() => {}); // a rejected side task must not go unobserved while Python loads
    // ONNX agents run beside the host unless the host runs them itself (the Worker does); in the page they
    // load in parallel with Pyodide.
    const inPage = this.runtime ? !this.runtime.host.runsAgents : !this.useWorker;
    let agentsReady = inPage ? this.createAgents().then(stamp("agentsMs")) : null;
    agentsReady?.catch(() => {});
    const runtime = this.runtime ?? await this.load();
    this.stats.runtimeMs = performance.now() - t0;
    this.host = runtime.host;
    agentsReady ??= (this.host.runsAgents ? Promise.resolve([]) : this.createAgents()).then(stamp("agentsMs"));
    [this.renderer, this.agents] = await Promise.all([rendererReady, agentsReady]);
    this.input = this.host.human !== null ? await this.createInput(this.config.controls.keys) : null;
    this.message = this.container.ownerDocument.createElement("p");
    this.message.className = "ig-game-message";
    this.container.append(this.message);
  }

  /**
   * Loads Pyodide and the scene (in the Worker; in this page if the browser has no module Worker), showing
   * progress; on failure waits for the participant's Retry.
   */
  async load() {
    const screen = new LoadingScreen(this.container);
    const onProgress = (event) => { screen.update(event); this.onStatus({ phase: "loading", ...event }); };
    for (;;) {
      try {
        // Checked here: the Worker's global scope cannot tell what this page lacks.
        if (!webAssemblySupported()) throw new RuntimeLoadError("download", NO_WEBASSEMBLY_MESSAGE);
        const runtime = await this.loadRuntime(onProgress);
        screen.remove();
        return runtime;
      } catch (err) {
        const message = err instanceof RuntimeLoadError ? err.userMessage : "The game could not be loaded.";
        this.onStatus({ phase: "load_failed", message, detail: String(err.message ?? err),
          traceback: err.cause?.traceback ?? null });
        await screen.fail(message);
      }
    }
  }

  async loadRuntime(onProgress) {
    if (this.useWorker) {
      try {
        return { host: await this.worker().load(this.config, { onProgress }) };
      } catch (err) {
        if (!(err instanceof WorkerUnavailable)) throw err;
        console.warn(`[browser game] ${err.message}: the game runs in the page`);
        this.useWorker = false;
      }
    }
    return loadBrowserRuntime(this.config, { onProgress });
  }

  async createAgents() {
    const specs = Object.entries(this.config.agents).filter(([, spec]) => spec.kind === "onnx");
    return Promise.all(specs.map(([agentId, spec]) => OnnxAgent.create(agentId, spec)));
  }

  /** Ends the game early (the scene is over): the current episode is uploaded as partial. */
  stop() {
    this.stopped = true;
  }

  async playEpisode(index) {
    const seed = this.config.seeds[index];
    this.episode = { index, seed, pauses: [], startedAt: pageSeconds() };
    for (const agent of this.agents) agent.resetEpisode(seed);
    this.renderer.draw(await this.host.reset(seed));
    // A tap made in the pause before this episode (or while it loaded) must not act on its first frame: the
    // episode starts from no input, as in server mode (TickKeys.forget_taps). Keys still held do count.
    this.input?.forgetTaps?.();
    if (this.stats.firstFrameAt === null) {
      this.stats.firstFrameAt = performance.now();
      performance.mark?.("ig-first-frame");
    }
    this.onStatus({ phase: "playing", episode: index });
    const period = 1000 / this.config.fps;
    let next = performance.now();
    let endReason = "done";
    try {
      while (!this.host.episodeOver) {
        if (this.stopped) { endReason = "scene_end"; break; }
        if (this.isHidden()) {
          await this.waitWhileHidden();
          next = performance.now();
        }
        await this.playFrame();
        next += period;
        const delay = next - performance.now();
        if (delay < -MAX_CATCH_UP_FRAMES * period) next = performance.now();
        await this.sleep(delay);
      }
    } catch (err) {
      this.finishEpisode("error", err.traceback ?? String(err.stack ?? err));
      throw err;
    }
    return this.finishEpisode(endReason, null);
  }

  async playFrame() {
    const t0 = performance.now();
    for (const agent of this.agents) {
      if (this.host.onnxDue(agent.agentId)) {
        const action = await agent.act(this.host.observationInput(agent.agentId));
        this.host.setExternalAction(agent.agentId, action);
        this.stats.onnxCalls += 1;
      }
    }
    const t1 = performance.now();
    const packet = await this.host.frame(this.input ? this.input.sample() : []);
    const t2 = performance.now();
    this.stats.onnxCalls += this.host.lastOnnxCalls ?? 0;
    this.renderer.draw(packet);
    const t3 = performance.now();
    this.stats.frames += 1;
    this.stats.onnxMs += t1 - t0;
    this.stats.hostMs += t2 - t1;
    this.stats.drawMs += t3 - t2;
  }

  isHidden() {
    return globalThis.document?.visibilityState === "hidden";
  }

  async waitWhileHidden() {
    const doc = globalThis.document;
    const started = performance.now();
    const t = this.host.t;
    this.onStatus({ phase: "paused", episode: this.episode.index, t });
    await new Promise((resolve) => {
      const onChange = () => {
        if (doc.visibilityState !== "hidden") {
          doc.removeEventListener("visibilitychange", onChange);
          resolve();
        }
      };
      doc.addEventListener("visibilitychange", onChange);
    });
    this.episode.pauses.push({ t, ms: Math.round(performance.now() - started) });
    this.onStatus({ phase: "playing", episode: this.episode.index, resumed: true });
  }

  payload(partial, endReason, error) {
    const offset = this.clockOffset() ?? null;
    return {
      scene_id: this.config.scene_id,
      scene_index: this.config.scene_index,
      attempt: this.config.attempt,
      clock: { started_at: this.episode.startedAt, ended_at: Math.max(this.episode.startedAt, pageSeconds()),
        offset_s: offset?.offset_s ?? null, rtt_s: offset?.rtt_s ?? null },
      episode: this.episode.index,
      seed: this.episode.seed,
      bundle_hash: this.config.bundle.hash,
      partial,
      end_reason: endReason,
      error: error ? String(error).slice(0, 8192) : null,
      steps: this.host.steps(),
      pauses: this.episode.pauses.slice(),
    };
  }

  finishEpisode(endReason, error) {
    const partial = endReason !== "done";
    const payload = this.payload(partial, endReason, error);
    this.episode = null;
    this.uploads.push(this.uploader.upload(payload));
    return { episode: payload.episode, steps: payload.steps.length, partial, end_reason: endReason };
  }

  /** Page closing: keep the episode in progress (marked partial) for the next page load, and beacon it. */
  savePartial(endReason) {
    if (!this.episode) return;
    const payload = this.payload(true, endReason, null);
    this.uploader.stash?.(payload);
    if (this.beaconUrl && globalThis.navigator?.sendBeacon) {
      globalThis.navigator.sendBeacon(this.beaconUrl, new Blob([JSON.stringify(payload)], { type: "application/json" }));
    }
  }

  showMessage(text) {
    if (this.message) this.message.textContent = text;
  }

  reportError(err) {
    const message = "Sorry, the game stopped because of an error. Your progress so far has been saved.";
    this.showMessage(message);
    this.onStatus({ phase: "error", message, detail: String(err.message ?? err), traceback: err.traceback ?? null });
  }
}
