// Browser-mode game view: the environment and the AI run in this page (Pyodide); episodes are uploaded to
// the server, which acknowledges each only after storing it. The page continues once every upload is in.
import { BrowserGame } from "/static/js/browser_game.js";
import { estimateClockOffset } from "/static/js/clock_sync.js";
import { EpisodeUploader } from "/static/js/episode_uploader.js";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

const PHASE_TEXT = {
  loading: "Loading the game…",
  playing: "Use the keyboard to play.",
  paused: "Paused while this tab is hidden.",
  between: "Episode finished. The next one starts in a moment…",
  uploading: "Saving your game…",
  done: "The game is over. Thank you!",
};

/** Shows a browser-mode GymScene; returns the view ({destroy}). */
export function showBrowserGame({ emitWithAck, container, index, scene, showError }) {
  container.innerHTML = "";
  const root = el("div", { class: "game", "data-scene-id": scene.scene_id });
  if (scene.title) root.append(el("h1", {}, scene.title));
  const body = el("div", { class: "body" });
  body.innerHTML = scene.body_html || "";
  const status = el("p", { class: "status", id: "game-status", "data-state": "loading" }, PHASE_TEXT.loading);
  const canvasBox = el("div", { class: "game-canvas", id: "game-canvas", tabindex: "0" });
  const next = el("button", { id: "continue", hidden: "" }, "Continue");
  root.append(body, status, canvasBox, next);
  container.append(root);

  const uploader = new EpisodeUploader({ emitWithAck, event: "browser_episode" });
  // The server clock's lead over this page's, measured while the game loads; uploads carry the latest.
  let clockOffset = null;
  estimateClockOffset((t) => emitWithAck("ping", { t }, 5000))
    .then((estimate) => { clockOffset = estimate; })
    .catch(() => {});
  const state = { phase: "loading", episode: 0, result: null };
  window.interactiveGym.game = state;
  const game = new BrowserGame({
    container: canvasBox,
    config: scene.browser,
    uploader,
    beaconUrl: scene.beacon_url ?? null,
    clockOffset: () => clockOffset,
    onStatus: (s) => {
      state.phase = s.phase;
      if (s.episode !== undefined) state.episode = s.episode;
      status.dataset.state = { loading: "loading", playing: "playing", paused: "playing", between: "playing",
        uploading: "uploading", done: "over", error: "over", load_failed: "loading" }[s.phase] ?? s.phase;
      if (s.phase === "error") {
        status.dataset.reason = "error";
        status.textContent = "The game stopped because of an error. What you played has been saved.";
      } else if (PHASE_TEXT[s.phase]) {
        status.textContent = PHASE_TEXT[s.phase];
        if (s.phase === "done") status.dataset.reason = "complete";
      }
    },
  });
  uploader.resendStashed?.().catch(() => {});
  game.run().then((result) => {
    state.result = result;
    if (result.uploadErrors?.length) showError("Some data could not be saved: " + result.uploadErrors.join("; "));
    next.hidden = false;
    canvasBox.focus();
  });
  next.addEventListener("click", async () => {
    next.disabled = true;
    const ack = await emitWithAck("advance", { scene_index: index, scene_id: scene.scene_id, answers: {} });
    if (!ack.ok) { showError(ack.error); next.disabled = false; }
  });
  return { destroy() { game.stop(); } };
}
