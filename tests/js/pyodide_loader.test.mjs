import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PYODIDE_FILES, STAGES, countingFetch, fetchBundle, loadKeyOf, overallProgress, pyodideEnvOf, preloadPyodide, webAssemblySupported,
  writeBundle,
} from "../../interactive_gym/server/static/js/pyodide_loader.js";

test("stage shares add up to one and progress ends exactly at 1", () => {
  const total = STAGES.reduce((sum, [, share]) => sum + share, 0);
  assert.ok(Math.abs(total - 1) < 1e-9);
  assert.equal(overallProgress("download", 0), 0);
  assert.equal(overallProgress("env", 1), 1);
  assert.throws(() => overallProgress("nope", 0.5), /unknown loading stage/);
});

test("progress is monotonic across stages and clamps fractions", () => {
  const points = [];
  for (const [stage] of STAGES) for (const f of [-1, 0, 0.25, 0.5, 1, 2]) points.push(overallProgress(stage, f));
  for (let i = 1; i < points.length; i++) assert.ok(points[i] >= points[i - 1], `${points[i - 1]} -> ${points[i]}`);
});

test("countingFetch counts streamed bytes under the prefix only and keeps status and headers", async () => {
  const bodies = { "http://h/vendor/pyodide/a.wasm": new Uint8Array(3000), "http://h/other/x.json": new Uint8Array(7) };
  const original = async (input) => {
    const url = String(input);
    return new Response(bodies[url], { status: 200, headers: { "content-type": "application/wasm",
      "content-length": String(bodies[url].length) } });
  };
  const tracker = { totalBytes: 0, bytes: 0, addBytes(n) { this.bytes += n; } };
  const fetchWithProgress = countingFetch(original, "http://h/vendor/pyodide/", tracker);
  const counted = await fetchWithProgress(new URL("http://h/vendor/pyodide/a.wasm"));
  assert.equal(counted.headers.get("content-type"), "application/wasm");
  assert.equal((await counted.arrayBuffer()).byteLength, 3000);
  assert.equal(tracker.totalBytes, 3000);
  assert.equal(tracker.bytes, 3000);
  const other = await fetchWithProgress("http://h/other/x.json");
  assert.equal((await other.arrayBuffer()).byteLength, 7);
  assert.equal(tracker.bytes, 3000, "other URLs are passed through uncounted");
});

test("countingFetch retries a network error on Python's files, and only there, then gives up", async () => {
  const tracker = { totalBytes: 0, addBytes() {} };
  let calls = 0;
  const flaky = (failures) => async () => {
    calls += 1;
    if (calls <= failures) throw new TypeError("Failed to fetch");
    return new Response("ok", { status: 200 });
  };
  const waits = [];
  const options = { retryDelaysMs: [10, 20, 30], sleep: async (ms) => { waits.push(ms); } };
  let fetchWithProgress = countingFetch(flaky(2), "http://h/vendor/pyodide/", tracker, options);
  assert.equal(await (await fetchWithProgress("http://h/vendor/pyodide/pyodide.asm.wasm")).text(), "ok");
  assert.deepEqual(waits, [10, 20]);  // two failures, two waits, then the download
  calls = 0;
  waits.length = 0;
  fetchWithProgress = countingFetch(flaky(9), "http://h/vendor/pyodide/", tracker, options);
  await assert.rejects(fetchWithProgress("http://h/vendor/pyodide/pyodide.asm.wasm"), /Failed to fetch/);
  assert.equal(calls, 4);  // the first try and one per delay
  calls = 0;
  await assert.rejects(fetchWithProgress("http://h/other.js"), /Failed to fetch/);
  assert.equal(calls, 1);  // another file's failure is not ours to retry
});

test("node has WebAssembly", () => {
  assert.equal(webAssemblySupported(), true);
});

test("pyodideEnvOf copies the config's variables with sorted names, so equal settings give equal keys", () => {
  const config = { pyodide: { env: { PYTHONHASHSEED: "0", B_VAR: "x" } } };
  const env = pyodideEnvOf(config);
  assert.deepEqual(Object.keys(env), ["B_VAR", "PYTHONHASHSEED"]);
  env.HOME = "/home/pyodide"; // what Pyodide does to the object it is given
  assert.equal(config.pyodide.env.HOME, undefined, "the config is never modified");
  const reordered = pyodideEnvOf({ pyodide: { env: { B_VAR: "x", PYTHONHASHSEED: "0" } } });
  assert.equal(loadKeyOf("http://h/p/", reordered), loadKeyOf("http://h/p/", pyodideEnvOf(config)));
  assert.notEqual(loadKeyOf("http://h/p/", {}), loadKeyOf("http://h/p/", reordered), "a seeded load is never reused unseeded");
  assert.deepEqual(pyodideEnvOf({}), {});
  assert.deepEqual(pyodideEnvOf({ pyodide: {} }), {});
});

test("pyodideEnvOf rejects values Python could not take", () => {
  for (const env of [[], "0", { PYTHONHASHSEED: 0 }, { "BAD-NAME": "1" }, { X: "y".repeat(2000) },
    Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`V${i}`, "1"]))]) {
    assert.throws(() => pyodideEnvOf({ pyodide: { env } }), TypeError, JSON.stringify(env).slice(0, 40));
  }
});

test("a misconfigured env rejects the load with a participant-facing message and is not cached", async () => {
  const config = { pyodide: { index_url: "http://h/never/", env: { PYTHONHASHSEED: 0 } } };
  for (let attempt = 0; attempt < 2; attempt++) {
    await assert.rejects(preloadPyodide(config), (err) => err.name === "RuntimeLoadError" && /misconfigured/.test(err.userMessage));
  }
});

/** A fetch answering `bodies` by URL once `release()` is called, recording the order of requests. */
function heldFetch(bodies) {
  const requested = [];
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const fetchFn = async (input) => {
    requested.push(String(input));
    await gate;
    const body = bodies[String(input)];
    return body === undefined ? new Response("no", { status: 404 }) : new Response(body, { status: 200 });
  };
  return { fetchFn, requested, release };
}

const MANIFEST = { hash: "abc", files: [{ path: "pkg/a.py", kind: "source", size: 3 },
  { path: "models/x.onnx", kind: "model", size: 99 }, { path: "b.py", kind: "source", size: 2 }] };

test("fetchBundle asks for the manifest and the blob at once and checks their sizes agree", async () => {
  const url = "http://h/bundle/s/abc/manifest.json";
  const held = heldFetch({ [url]: JSON.stringify(MANIFEST), "http://h/bundle/s/abc/sources.bin": "AAABB" });
  const saved = globalThis.fetch;
  globalThis.fetch = held.fetchFn;
  try {
    const pending = fetchBundle(url);
    await new Promise((resolve) => { setTimeout(resolve, 0); });
    assert.deepEqual(held.requested, [url, "http://h/bundle/s/abc/sources.bin"], "both before either answered");
    held.release();
    const { manifest, blob } = await pending;
    assert.equal(manifest.hash, "abc");
    assert.deepEqual([...blob], [..."AAABB"].map((c) => c.charCodeAt(0)));

    const short = heldFetch({ [url]: JSON.stringify(MANIFEST), "http://h/bundle/s/abc/sources.bin": "AAAB" });
    globalThis.fetch = short.fetchFn;
    short.release();
    await assert.rejects(fetchBundle(url), /bundle is 4 bytes, manifest says 5/);
    const missing = heldFetch({ [url]: JSON.stringify(MANIFEST) });
    globalThis.fetch = missing.fetchFn;
    missing.release();
    await assert.rejects(fetchBundle(url), /bundle files .*sources.bin: HTTP 404/);
  } finally {
    globalThis.fetch = saved;
  }
});

test("writeBundle writes each source file from its slice of the blob and refuses unsafe paths", () => {
  const written = {};
  const ran = [];
  const pyodide = { FS: { mkdirTree() {}, writeFile(path, bytes) { written[path] = Buffer.from(bytes).toString(); } },
    runPython(code) { ran.push(code); } };
  const { root } = writeBundle(pyodide, { manifest: MANIFEST, blob: new TextEncoder().encode("AAABB") });
  assert.equal(root, "/home/pyodide/ig_bundle/abc");
  assert.deepEqual(written, { [`${root}/pkg/a.py`]: "AAA", [`${root}/b.py`]: "BB" });
  assert.equal(ran.length, 1);
  const unsafe = { hash: "abc", files: [{ path: "../evil.py", kind: "source", size: 1 }] };
  assert.throws(() => writeBundle(pyodide, { manifest: unsafe, blob: new Uint8Array(1) }), /unsafe path/);
});

test("a preload without interpreter settings starts no interpreter, it only warms the files", async () => {
  const warmed = [];
  const warm = async ({ urls }) => { warmed.push(...urls); return { warmed: true }; };
  const saved = globalThis.fetch;
  globalThis.fetch = async () => { throw new Error("no interpreter file may be fetched in this page"); };
  globalThis.location = { href: "http://h/study/" }; // the page's URL (Node has none)
  try {
    assert.equal(await preloadPyodide({ scene_id: "game" }, { warm }), null);
    assert.deepEqual(warmed.map((u) => u.split("/").pop()).sort(), [...PYODIDE_FILES].sort());
    assert.ok(warmed.every((u) => u.startsWith("http://h/vendor/pyodide/")), "the default index URL");
  } finally {
    globalThis.fetch = saved;
    delete globalThis.location;
  }
});
