// Browser-mode game view: the environment and the AI run in the browser (Pyodide, in the game's Worker:
// browser_game.js); episodes are uploaded to the server, which acknowledges each only after storing it. The
// page continues once every upload is in.
import { BrowserGame } from "/static/js/browser_game.js";
import { estimateClockOffset, pageSeconds } from "/static/js/clock_sync.js";
import { EpisodeUploader, MAX_UPLOAD_BYTES, episodesCompletedByStash } from "/static/js/episode_uploader.js";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

const MAX_ERROR_CHARS = 8192; // upload_validation.py keeps the error text to this size
// How long the game waits for the previous page load's unsent episodes before it starts loading (no wait when
// there are none): an episode they complete is not played again. Past this the game starts; a repeat is then
// stored flagged (browser_scenes.py, "Repeats").
const STASH_FIRST_MS = 5000;

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

  // The server's upload cap comes with the config; the uploader's own copy is the fallback for older servers.
  const uploader = new EpisodeUploader({ emitWithAck, event: "browser_episode",
    maxBytes: scene.browser.max_upload_bytes ?? MAX_UPLOAD_BYTES });
  // The server clock's lead over this page's, measured while the game loads; uploads carry the latest.
  let clockOffset = null;
  estimateClockOffset((t) => emitWithAck("ping", { t }, 5000))
    .then((estimate) => { clockOffset = estimate; })
    .catch(() => {});
  const state = { phase: "loading", episode: 0, result: null, reportedError: null, errorStored: false };
  window.interactiveGym.game = state;
  // A Python error while starting the game (the env, the render function, a policy) happens again on every
  // retry: tell the server once, as a partial zero-step upload of this attempt's first episode carrying the
  // traceback. It names the visit and attempt and carries a clock like every upload (the server refuses
  // uploads without them). Once it is stored the server counts the game as over with an error, so the
  // participant can continue (the scene's on_error decides where to); until then they are not stuck with
  // only a Retry that cannot help.
  const showStartError = () => {
    status.dataset.state = state.errorStored ? "over" : "loading";
    status.dataset.reason = "error";
    status.textContent = "The game could not start because of an error in the study's code. " + (state.errorStored
      ? "The researchers have been told. Please press Continue." : "Telling the researchers…");
  };
  const reportStartError = (traceback) => {
    if (state.reportedError !== null) return;
    state.reportedError = String(traceback).slice(-MAX_ERROR_CHARS);
    console.error(`[browser game] the game could not start:\n${state.reportedError}`);
    const config = scene.browser;
    const episode = config.episodes?.[0] ?? 0;
    const now = pageSeconds();
    uploader.upload({ scene_id: config.scene_id, scene_index: config.scene_index, attempt: config.attempt,
      episode, seed: config.seeds[episode], bundle_hash: config.bundle.hash,
      clock: { started_at: now, ended_at: now, offset_s: clockOffset?.offset_s ?? null,
        rtt_s: clockOffset?.rtt_s ?? null },
      partial: true, end_reason: "error", error: state.reportedError, steps: [], pauses: [] })
      .then(() => {
        state.errorStored = true;
        showStartError();
        next.hidden = false;
      }, (err) => {
        console.error("[browser game] the error report was not stored", err);
        showError("The game could not start, and the error could not be reported. Please contact the researcher.");
      });
  };
  const makeGame = () => new BrowserGame({
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
        if (s.traceback) console.error(`[browser game] the game stopped because of an error:\n${s.traceback}`);
      } else if (s.phase === "load_failed" && s.traceback) {
        showStartError();
        reportStartError(s.traceback);
      } else if (PHASE_TEXT[s.phase]) {
        status.textContent = PHASE_TEXT[s.phase];
        if (s.phase === "done") status.dataset.reason = "complete";
      }
    },
  });
  let game = null;
  let destroyed = false;
  const start = (started) => started.run().then((result) => {
    state.result = result;
    if (result.uploadErrors?.length) showError("Some data could not be saved: " + result.uploadErrors.join("; "));
    next.hidden = false;
    canvasBox.focus();
  });
  // Episodes the previous page load finished offline are sent first: if they are stored now, this attempt
  // skips them instead of playing them a second time.
  const resent = uploader.resendStashed().catch(() => []);
  const waited = new Promise((resolve) => setTimeout(() => resolve(null), STASH_FIRST_MS));
  Promise.race([resent, waited]).then((results) => {
    if (destroyed) return;
    const config = scene.browser;
    const skip = episodesCompletedByStash(config, results);
    if (skip.size && Array.isArray(config.episodes)) {
      config.episodes = config.episodes.filter((e) => !skip.has(e));
      console.info(`[browser game] episodes ${[...skip].join(", ")} were saved by the previous page load; not replayed`);
    }
    game = makeGame();
    start(game);
  });
  next.addEventListener("click", async () => {
    next.disabled = true;
    const ack = await emitWithAck("advance", { scene_index: index, scene_id: scene.scene_id, answers: {} });
    if (!ack.ok) { showError(ack.error); next.disabled = false; }
  });
  return { destroy() { destroyed = true; game?.stop(); } };
}
