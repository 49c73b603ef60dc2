// The game's Worker protocol (browser_game_worker.js) and its page-side face (worker_env_host.js), joined by a
// fake Worker that passes structured clones of every message, with a stand-in for Pyodide's host (the real
// Pyodide path runs in Chromium: tests/e2e/test_browser_runtime.py, test_no_frozen_pages.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EnvError } from "../../interactive_gym/server/static/js/pyodide_env_host.js";
import { RuntimeLoadError } from "../../interactive_gym/server/static/js/pyodide_loader.js";
import { MAX_KEYS, WorkerGame, checkedKeys, serve }
  from "../../interactive_gym/server/static/js/browser_game_worker.js";
import { GameWorker, WorkerEnvHost, WorkerStopped, WorkerUnavailable }
  from "../../interactive_gym/server/static/js/worker_env_host.js";

const pause = (ms = 0) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Python's side as the Worker sees it: a host proxy recording rows, and the frame helper's JSON text. */
class FakePython {
  constructor({ failAt = null, failAfterRow = false, frameMs = 0 } = {}) {
    this.failAt = failAt;
    this.failAfterRow = failAfterRow;
    this.frameMs = frameMs;
    this.log = []; // "start t" / "end t" per frame, to see overlaps
    this.proxy = { reset: (seed) => { this.seed = seed; this.rows = []; this.t = 0; return `{"seed":${seed}}`; } };
    this.host = {
      human: "agent_0",
      proxy: this.proxy,
      call: (where, fn) => { try { return fn(); } catch (err) { throw new EnvError(where, err); } },
      onnxDue: () => false,
      destroy: () => { this.destroyed = true; },
    };
    this.pyodide = {
      runPython() {},
      globals: { get: (name) => (name === "_ig_worker_frame" ? (proxy, keys) => this.frame(keys)
        : (proxy, n) => JSON.stringify(this.rows.slice(n))) },
    };
  }

  frame(keys) {
    if (this.t + 1 === this.failAt && !this.failAfterRow) throw new Error("Traceback ...\nZeroDivisionError: boom");
    this.rows.push({ t: this.t, keys: { agent_0: keys ? keys.split("\n") : [] }, seed: this.seed });
    this.t += 1;
    if (this.t === this.failAt) throw new Error("Traceback ...\nValueError: render");
    const row = JSON.stringify(this.rows[this.rows.length - 1]);
    return `{"packet":{"n":${this.t}},"row":${row},"t":${this.t},"over":${this.t >= 3}}`;
  }
}

/** A Worker in this thread: messages are structured-cloned both ways, handlers run on later ticks. */
function fakeWorkerPair(python, { silent = false } = {}) {
  const scope = { onmessage: null, postMessage: (m) => setTimeout(() => page.onmessage?.({ data: structuredClone(m) })) };
  const page = {
    onmessage: null, onerror: null, terminated: false,
    postMessage: (m) => setTimeout(() => scope.onmessage?.({ data: structuredClone(m) })),
    terminate() { this.terminated = true; },
  };
  const slowRuntime = async (config, { onProgress }) => {
    onProgress({ stage: "download", progress: 0.5 });
    await pause(python.loadMs ?? 0);
    if (python.loadError) throw python.loadError;
    return { pyodide: python.pyodide, host: python.host };
  };
  let game = null;
  if (!silent) {
    const realServe = () => {
      game = serve(scope);
      game.loadRuntime = slowRuntime;
      game.startPyodide = async () => python.pyodide;
    };
    realServe();
  }
  return { page, scope, game: () => game };
}

function pageWorker(python, options = {}) {
  const pair = fakeWorkerPair(python, options);
  const worker = new GameWorker({ createWorker: () => pair.page, readyTimeoutMs: options.readyTimeoutMs ?? 2000 });
  return { worker, pair };
}

test("a frame's step record reaches the page with its packet; steps() reads them synchronously", async () => {
  const python = new FakePython();
  const { worker } = pageWorker(python);
  const progress = [];
  const host = await worker.load({ agents: {} }, { onProgress: (e) => progress.push(e.stage) });
  assert.ok(host instanceof WorkerEnvHost);
  assert.equal(host.human, "agent_0");
  assert.deepEqual(progress, ["download"]);
  assert.deepEqual(await host.reset(42), { seed: 42 });
  assert.equal(host.episodeOver, false);
  assert.deepEqual(await host.frame(["ArrowUp"]), { n: 1 });
  assert.deepEqual(await host.frame([]), { n: 2 });
  assert.equal(host.t, 2);
  assert.deepEqual(host.steps(), python.rows, "the page holds exactly the Worker's records");
  await host.frame([]);
  assert.equal(host.episodeOver, true);
  assert.deepEqual(host.steps(), python.rows);
  await host.reset(7);
  assert.deepEqual(host.steps(), [], "a new episode starts with no records");
});

test("frames sent at once are played one at a time, in order", async () => {
  const python = new FakePython();
  const { worker } = pageWorker(python);
  const host = await worker.load({ agents: {} });
  await host.reset(1);
  // Three requests before any reply: the Worker queue keeps them apart and in order.
  const replies = await Promise.all([host.frame(["a"]), host.frame(["b"]), host.frame(["c"])]);
  assert.deepEqual(replies.map((p) => p.n), [1, 2, 3]);
  assert.deepEqual(python.rows.map((r) => r.keys.agent_0[0]), ["a", "b", "c"]);
});

test("an exception in the env ends with its traceback and the records made before it", async () => {
  for (const [failAfterRow, rows] of [[false, 1], [true, 2]]) {
    const python = new FakePython({ failAt: 2, failAfterRow });
    const { worker } = pageWorker(python);
    const host = await worker.load({ agents: {} });
    await host.reset(1);
    await host.frame([]);
    const err = await host.frame([]).catch((e) => e);
    assert.ok(err instanceof EnvError, String(err));
    assert.equal(err.where, "step");
    assert.match(err.traceback, /Error: (boom|render)/);
    assert.equal(host.steps().length, rows, "a render failure keeps its step's record, a step failure has none");
    assert.deepEqual(host.steps(), python.rows);
  }
});

test("a load failure comes back as RuntimeLoadError with its traceback, and a retry can load", async () => {
  const python = new FakePython();
  const cause = new Error("boom");
  cause.traceback = "Traceback: ImportError";
  python.loadError = new RuntimeLoadError("env", "The game could not start.", cause);
  const { worker } = pageWorker(python);
  const err = await worker.load({ agents: {} }).catch((e) => e);
  assert.ok(err instanceof RuntimeLoadError);
  assert.equal(err.stage, "env");
  assert.equal(err.userMessage, "The game could not start.");
  assert.equal(err.cause.traceback, "Traceback: ImportError");
  python.loadError = null;
  const host = await worker.load({ agents: {} });
  assert.deepEqual(await host.reset(3), { seed: 3 });
});

test("a game left while it loaded cannot step the next one's env", async () => {
  const python = new FakePython();
  const { worker } = pageWorker(python);
  const first = await worker.load({ agents: {} });
  await first.reset(1);
  const second = await worker.load({ agents: {} });
  await assert.rejects(first.frame([]), /not the loaded game/);
  await assert.rejects(first.reset(2), /not the loaded game/);
  await second.reset(5);
  assert.deepEqual(await second.frame([]), { n: 1 });
});

test("the Worker refuses a repeated or older load session and bad frame input", async () => {
  const python = new FakePython();
  const game = new WorkerGame({ post() {}, loadRuntime: async () => ({ pyodide: python.pyodide, host: python.host }) });
  await game.load(2, { agents: {} });
  await assert.rejects(game.load(2, { agents: {} }), /stale load session/);
  await assert.rejects(game.load(1, { agents: {} }), /stale load session/);
  game.reset(2, 1);
  assert.throws(() => game.reset(2, 1.5), /seed must be an integer/);
  assert.throws(() => checkedKeys("ArrowUp"), /keys must be/);
  assert.throws(() => checkedKeys(Array(MAX_KEYS + 1).fill("a")), /keys must be/);
  assert.throws(() => checkedKeys(["a\nb"]), /keys must be/);
  assert.equal(checkedKeys(["ArrowUp", "ArrowLeft"]), "ArrowUp\nArrowLeft");
  await assert.rejects(game.handle({ op: "eval" }), /unknown request/);
});

test("a preload is sent once per config; a failed one is retried by the next call and never rejects", async () => {
  const python = new FakePython();
  const { worker, pair } = pageWorker(python);
  await worker.ready;
  let calls = 0;
  pair.game().startPyodide = async () => { calls += 1; if (calls === 1) throw new Error("offline"); return python.pyodide; };
  const warn = console.warn;
  console.warn = () => {};
  try {
    const config = { pyodide: { index_url: "/py/" }, agents: { a: { kind: "human" } } };
    assert.deepEqual(await worker.preload(config), { ok: false, error: "offline" });
    assert.equal((await worker.preload(config)).ok, true);
    assert.equal((await worker.preload(config)).ok, true);
    assert.equal(calls, 2);
  } finally {
    console.warn = warn;
  }
});

test("a Worker that stops rejects what was open; one that never starts is unavailable", async () => {
  const python = new FakePython();
  python.loadMs = 200;
  const { worker, pair } = pageWorker(python);
  const loading = worker.load({ agents: {} });
  await pause(20);
  pair.page.onerror({ message: "out of memory", preventDefault() {} });
  await assert.rejects(loading, WorkerStopped);
  assert.ok(pair.page.terminated);
  await assert.rejects(worker.load({ agents: {} }), WorkerStopped);

  const silent = pageWorker(new FakePython(), { silent: true, readyTimeoutMs: 30 }).worker;
  await assert.rejects(silent.load({ agents: {} }), WorkerUnavailable);
  const none = new GameWorker({ createWorker: () => { throw new Error("no module workers"); } });
  await assert.rejects(none.load({ agents: {} }), WorkerUnavailable);
});

test("a preload arriving mid-game does not hold up the frames", async () => {
  const python = new FakePython();
  const { worker, pair } = pageWorker(python);
  const host = await worker.load({ agents: {} });
  await host.reset(1);
  let release;
  pair.game().startPyodide = () => new Promise((resolve) => { release = () => resolve(python.pyodide); });
  const preloaded = worker.preload({ pyodide: {}, agents: { b: { kind: "human" } } });
  assert.deepEqual(await host.frame([]), { n: 1 }, "the frame is answered while the preload still waits");
  release();
  assert.equal((await preloaded).ok, true);
});

test("a repeated or unknown reply is ignored", async () => {
  const python = new FakePython();
  const { worker } = pageWorker(python);
  const host = await worker.load({ agents: {} });
  await host.reset(1);
  worker.receive({ id: 1, ok: true, text: "{}" }); // the load's id again
  worker.receive({ id: 999, ok: false, error: { kind: "other", message: "x" } });
  worker.receive(null);
  assert.deepEqual(await host.frame([]), { n: 1 });
});
