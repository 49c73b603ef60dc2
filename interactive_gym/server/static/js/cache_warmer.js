// Downloads files in a Worker so that a later load reads them from the browser's HTTP cache, without work on
// the page's main thread.
//
// Why (measured with benchmarks/no_frozen_pages.py): starting Pyodide in the page while a participant read the
// consent and instruction pages froze those pages (one task of 0.7-6 s, depending on the machine's load, in
// which clicks wait): Python's start-up inside `loadPyodide` is one synchronous call that cannot be sliced. A
// browser-mode game therefore runs its Python in a Worker of its own (browser_game_worker.js), started during
// those pages. What is left for this warm-up: the files of a game whose Python runs in the page (p2p mode: its
// interpreter starts on the game page, behind its loading screen) and the renderer's files (Phaser is evaluated
// on the game page, where it draws). Compiling the WebAssembly module here as well was measured and dropped: the
// game page's start was no faster, and in some runs much slower.
//
//   const outcome = await warmInWorker({urls: [...]});  // {warmed: true, ms, bytes} | {warmed: false, error}
//
// Never rejects: a failed warm-up only means the game page downloads the files itself.

const WORKER_SOURCE = `
onmessage = async (event) => {
  const { urls } = event.data;
  const started = performance.now();
  let bytes = 0;
  const read = async (url) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    bytes += (await response.arrayBuffer()).byteLength;
  };
  try {
    await Promise.all(urls.map(read));
    postMessage({ warmed: true, ms: performance.now() - started, bytes });
  } catch (err) {
    postMessage({ warmed: false, error: String(err && err.message || err) });
  }
};
`;

const MAX_URLS = 32;
const defaultWorker = typeof Worker === "function" ? (url) => new Worker(url) : null;

/** Absolute, same-origin URLs only (a Worker from a blob has no base URL, and nothing else is ours to warm). */
export function checkedUrls(urls, base = globalThis.location?.href) {
  if (!Array.isArray(urls) || urls.length > MAX_URLS) throw new TypeError(`urls must be a list of at most ${MAX_URLS}`);
  return urls.map((url) => {
    const absolute = new URL(url, base);
    if (base && absolute.origin !== new URL(base).origin) throw new TypeError(`not same-origin: ${absolute.href}`);
    return absolute.href;
  });
}

/**
 * Fetches `urls` (each read to its end) in a dedicated Worker, terminated when done.
 * @param {{urls?: string[], createWorker?: (url: string) => Worker}} files
 * @returns {Promise<{warmed: boolean, ms?: number, bytes?: number, error?: string}>}
 */
export function warmInWorker({ urls = [], createWorker = defaultWorker } = {}) {
  let message;
  try {
    message = { urls: checkedUrls(urls) };
  } catch (err) {
    return Promise.resolve({ warmed: false, error: String(err.message) });
  }
  if (!createWorker) return Promise.resolve({ warmed: false, error: "no Worker in this browser" });
  return new Promise((resolve) => {
    let worker;
    const finish = (outcome) => {
      worker?.terminate();
      resolve(outcome);
    };
    try {
      const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
      worker = createWorker(url);
      URL.revokeObjectURL(url);
    } catch (err) {
      finish({ warmed: false, error: String(err.message ?? err) });
      return;
    }
    worker.onmessage = (event) => finish(event.data);
    worker.onerror = (event) => finish({ warmed: false, error: String(event.message ?? "worker error") });
    worker.postMessage(message);
  });
}
