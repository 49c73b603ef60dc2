// Module Worker for the page-vs-Worker comparison: the same runtime, driven by postMessage per frame.
import { loadBrowserRuntime } from "/static/js/pyodide_loader.js";

let host = null;
// ONNX partners hold a fixed action here (inference is measured separately in the page).
function reset(seed) {
  const packet = host.reset(seed);
  for (const agent of host.onnxAgents) host.setExternalAction(agent, 0);
  return packet;
}
self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "load") {
      const t0 = performance.now();
      ({ host } = await loadBrowserRuntime(msg.config));
      self.postMessage({ ok: true, ms: performance.now() - t0 });
    } else if (msg.type === "reset") {
      self.postMessage({ packet: JSON.stringify(reset(msg.seed)) });
    } else if (msg.type === "frame") {
      const t0 = performance.now();
      const packet = host.frameText(msg.keys);
      if (host.episodeOver) reset(1);
      self.postMessage({ packet, ms: performance.now() - t0 });
    }
  } catch (err) {
    self.postMessage({ error: String(err && err.stack || err) });
  }
};
