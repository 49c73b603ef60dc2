import { test } from "node:test";
import assert from "node:assert/strict";
import { checkedUrls, warmInWorker } from "../../interactive_gym/server/static/js/cache_warmer.js";
import { PYODIDE_FILES, warmPyodide } from "../../interactive_gym/server/static/js/pyodide_loader.js";
import { ORT_FILES, RENDERER_FILES, isBrowserModePreload, preloadBrowserGame } from "../../interactive_gym/server/static/js/browser_game.js";

globalThis.location ??= { href: "http://h/page" };

/** A stand-in Worker that answers the warm-up message with `reply` (or an error event). */
function fakeWorker(reply, seen) {
  return () => {
    const worker = {
      terminated: false,
      terminate() { this.terminated = true; },
      postMessage(message) {
        seen.push({ message, worker });
        queueMicrotask(() => (reply instanceof Error ? worker.onerror({ message: reply.message })
          : worker.onmessage({ data: reply })));
      },
    };
    return worker;
  };
}

test("urls are made absolute and must be same-origin", () => {
  assert.deepEqual(checkedUrls(["/vendor/a.js", "b.js"], "http://h/x/page"), ["http://h/vendor/a.js", "http://h/x/b.js"]);
  assert.throws(() => checkedUrls(["http://evil/a.js"], "http://h/page"), /not same-origin/);
  assert.throws(() => checkedUrls("nope", "http://h/"), /list/);
  assert.throws(() => checkedUrls(Array(33).fill("/a"), "http://h/"), /at most 32/);
});

test("the Worker gets the absolute urls, its answer is the outcome, and it is terminated", async () => {
  const seen = [];
  const outcome = await warmInWorker({ urls: ["/a", "/b.wasm"],
    createWorker: fakeWorker({ warmed: true, ms: 5, bytes: 9 }, seen) });
  assert.deepEqual(outcome, { warmed: true, ms: 5, bytes: 9 });
  assert.deepEqual(seen[0].message, { urls: ["http://h/a", "http://h/b.wasm"] });
  assert.equal(seen[0].worker.terminated, true);
});

test("a warm-up never rejects: worker errors, bad urls and no Worker give warmed false", async () => {
  const seen = [];
  assert.equal((await warmInWorker({ urls: ["/a"], createWorker: fakeWorker(new Error("boom"), seen) })).warmed, false);
  assert.equal(seen[0].worker.terminated, true);
  assert.match((await warmInWorker({ urls: ["http://evil/x"], createWorker: fakeWorker({}, []) })).error, /same-origin/);
  assert.equal((await warmInWorker({ urls: ["/a"], createWorker: null })).warmed, false);
  const throwing = () => { throw new Error("blocked by policy"); };
  assert.match((await warmInWorker({ urls: ["/a"], createWorker: throwing })).error, /blocked by policy/);
});

test("warmPyodide warms Pyodide's files once per index URL and retries after a failure", async () => {
  const calls = [];
  let answer = { warmed: false, error: "offline" };
  const warm = async (files) => { calls.push(files); return answer; };
  const config = { pyodide: { index_url: "/py-a/", env: { PYTHONHASHSEED: "0" } } };
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.equal((await warmPyodide(config, { warm })).warmed, false);
    answer = { warmed: true };
    await warmPyodide(config, { warm });
    await warmPyodide({ pyodide: { index_url: "/py-a/", env: { OTHER: "1" } } }, { warm }); // same files
  } finally {
    console.warn = warn;
  }
  assert.equal(calls.length, 2, "failed once, then warmed once");
  assert.deepEqual(calls[1], { urls: PYODIDE_FILES.map((f) => `http://h/py-a/${f}`) });
  assert.ok(PYODIDE_FILES.includes("pyodide.asm.wasm"));
});

test("preloadBrowserGame starts a browser-mode game's Worker, warms only files for a p2p game, the renderer once", async () => {
  const calls = [];
  const preloads = [];
  const warm = async (files) => { calls.push(files); return { warmed: true }; };
  const worker = () => ({ preload: async (config) => { preloads.push(config); return { ok: true }; } });
  const human = { pyodide: { index_url: "/py-b/" }, agents: { a: { kind: "human" } } };
  await preloadBrowserGame(human, { warm, worker });
  await preloadBrowserGame({ pyodide: { index_url: "/py-b/" }, agents: { b: { kind: "onnx" } } }, { warm, worker });
  await preloadBrowserGame({ pyodide: { index_url: "/py-b/" }, agents: {} }, { warm, worker }); // p2p
  const isPyodide = (c) => c.urls.some((u) => u.includes("/py-b/"));
  assert.deepEqual(calls.filter((c) => !isPyodide(c)).map((c) => c.urls), [[...RENDERER_FILES]],
    "the renderer's files once per page; onnxruntime-web is loaded by the Worker itself");
  assert.equal(calls.filter(isPyodide).length, 1, "Pyodide's files warmed for the p2p game only");
  assert.deepEqual(preloads.map((c) => Object.keys(c.agents)), [["a"], ["b"]], "browser-mode preloads go to the Worker");
  assert.ok(ORT_FILES.length > 0 && isBrowserModePreload({ mode: "browser", agents: {} }));
  assert.equal(isBrowserModePreload({ mode: "p2p", agents: { a: { kind: "onnx" } } }), false);
});

test("preloadBrowserGame warms Pyodide's files when the game's Worker cannot preload", async () => {
  const calls = [];
  const warm = async (files) => { calls.push(files); return { warmed: true }; };
  const worker = () => ({ preload: async () => ({ ok: false, error: "no module Worker" }) });
  await preloadBrowserGame({ pyodide: { index_url: "/py-c/" }, agents: { a: { kind: "human" } } }, { warm, worker });
  assert.equal(calls.filter((c) => c.urls.some((u) => u.includes("/py-c/"))).length, 1);
});
