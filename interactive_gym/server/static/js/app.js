// Entry point of a participant's page: who they are, the connection, and which scene view to show.
// Each scene kind has its own module; this file only routes server events to them.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";
import { showPageScene } from "/static/js/scene_pages.js";
import { showServerGame } from "/static/js/scene_server_game.js";
import { showBrowserGame } from "/static/js/scene_browser_game.js";
import { preloadBrowserGame } from "/static/js/browser_game.js";
import { installScreening } from "/static/js/screening.js";
import { relocationWaitMs } from "/static/js/relocation.js";

// Which view plays a live game scene, by mode (p2p is loaded on demand: its module is larger).
const GAME_VIEWS = {
  server: async () => showServerGame,
  browser: async () => showBrowserGame,
  p2p: async () => (await import("/static/js/scene_p2p_game.js")).showP2PGame,
};

const sceneEl = document.getElementById("scene");
const errorEl = document.getElementById("error");
const progressEl = document.getElementById("progress");

/** URL parameters (all of them are stored with the participant's data). */
function urlParams() {
  const out = {};
  for (const [k, v] of new URLSearchParams(window.location.search)) out[k] = v;
  return out;
}

/** A per-tab id (survives reloads of this tab, differs between tabs) so the server can tell a reload
 *  from a second tab. */
function tabId() {
  let id = sessionStorage.getItem("ig-tab-id");
  if (!id) { id = crypto.randomUUID(); sessionStorage.setItem("ig-tab-id", id); }
  return id;
}

/** A participant id for links opened without one, kept across reloads in this browser. */
function generatedId() {
  let id = localStorage.getItem("ig-generated-id");
  if (!id) { id = "anon-" + crypto.randomUUID().replaceAll("-", "").slice(0, 16); localStorage.setItem("ig-generated-id", id); }
  return id;
}

// Resume secrets the server issued to this browser, by participant id (the id alone never resumes a session).
const experimentId = document.body.dataset.experiment || "experiment";
const SECRETS_KEY = `ig-resume:${experimentId}`;
const MAX_SECRETS = 8; // the server reads at most this many

function resumeSecrets() {
  try {
    const parsed = JSON.parse(localStorage.getItem(SECRETS_KEY) || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch {
    return {};
  }
}

function keepResumeSecret(participantId, secret) {
  const kept = Object.entries(resumeSecrets()).filter(([id]) => id !== participantId).slice(-(MAX_SECRETS - 1));
  localStorage.setItem(SECRETS_KEY, JSON.stringify(Object.fromEntries([...kept, [participantId, secret]])));
}

// One id per page load: a new socket from the same page is a network blip, a new page id is a reload.
const pageId = crypto.randomUUID();

// With several server workers the page names its worker in every handshake (the front routes by it); the
// server tells the page its worker ("route") and moves it to another ("relocate": a game is hosted there).
const ROUTE_KEY = `ig-route:${experimentId}`;
const savedRoute = localStorage.getItem(ROUTE_KEY);

const socket = io({
  transports: ["websocket"],
  query: savedRoute ? { ig_route: savedRoute } : {},
  // A function, so every reconnect sends the secrets as they are then (the first connect may have added one).
  auth: (cb) => cb({ url_params: urlParams(), tab_id: tabId(), generated_id: generatedId(), page_id: pageId,
    resume: resumeSecrets() }),
});
// A test hook and debugging aid: the live socket and the current scene.
window.interactiveGym = { socket, scene: null };

let current = null; // { index, view: { destroy() } }
// Entry facts before the first scene, probe answers, exclusion warnings, input activity (screening.js).
installScreening({ socket, emitWithAck, container: sceneEl, showError: (m) => showError(m),
  sceneIndex: () => (current ? current.index : -1) });

function showError(message) {
  errorEl.textContent = message;
  errorEl.hidden = !message;
}

function setProgress(index, total) {
  progressEl.innerHTML = `<div style="width:${Math.round((100 * index) / Math.max(1, total - 1))}%"></div>`;
}

/** Sends an event and resolves with the server's acknowledgement (retries while disconnected). */
export function emitWithAck(event, payload, timeoutMs = 10000) {
  return socket.timeout(timeoutMs).emitWithAck(event, payload);
}

/** Gets the next game ready in a Worker while the participant reads (the page never freezes). */
function preload(config) {
  const state = { startedAt: performance.now(), doneAt: null };
  window.interactiveGym.preload ??= state; // the first preload, read by tests and benchmarks
  preloadBrowserGame(config).then(() => { state.doneAt = performance.now(); });
}

socket.on("scene", (msg) => {
  showError("");
  if (current && current.index === msg.index && current.kind === msg.scene.kind && msg.scene.kind === "gym"
      && !msg.scene.game_over) {
    return; // the same game scene re-sent (reconnect): the game view re-joins by itself
  }
  if (current?.view?.destroy) current.view.destroy();
  setProgress(msg.index, msg.total);
  window.interactiveGym.scene = msg;
  const ctx = { socket, emitWithAck, container: sceneEl, index: msg.index, scene: msg.scene, showError };
  const isLiveGame = msg.scene.kind === "gym" && !msg.scene.game_over;
  current = { index: msg.index, kind: msg.scene.kind, view: null };
  if (msg.scene.preload) preload(msg.scene.preload);
  if (!isLiveGame) {
    current.view = showPageScene(ctx);
    return;
  }
  const entry = current;
  GAME_VIEWS[msg.scene.mode]().then((show) => {
    if (current === entry) entry.view = show(ctx);
  }, (err) => showError(`Could not load the game: ${err.message}`));
});

socket.on("session", (msg) => {
  if (msg && typeof msg.participant_id === "string" && typeof msg.resume_secret === "string") {
    keepResumeSecret(msg.participant_id, msg.resume_secret);
  }
});

/** Keeps the worker the server named for every later handshake; false if the message names none. */
function keepRoute(msg) {
  if (!msg || typeof msg.route !== "string" || !msg.route) return false;
  localStorage.setItem(ROUTE_KEY, msg.route);
  socket.io.opts.query = { ...socket.io.opts.query, ig_route: msg.route };
  return true;
}

const relocations = []; // times of this page's recent moves (relocation.js)

socket.on("route", keepRoute);
socket.on("relocate", (msg) => {
  if (!keepRoute(msg)) return;
  const waitMs = relocationWaitMs(relocations, performance.now());
  socket.disconnect();
  setTimeout(() => socket.connect(), waitMs);
});

socket.on("refused", (msg) => {
  if (current?.view?.destroy) current.view.destroy();
  current = null;
  if (msg.end) {
    showPageScene({ socket, emitWithAck, container: sceneEl, index: -1, scene: msg.end, showError });
  } else {
    sceneEl.innerHTML = "";
    const p = document.createElement("p");
    p.className = "notice";
    p.dataset.refused = msg.reason;
    p.textContent = msg.message;
    sceneEl.append(p);
  }
  socket.disconnect();
});

socket.on("error", (msg) => {
  // Errors about this participant's own events; shown, never fatal.
  console.warn("[server error]", msg);
  if (msg && msg.event === "advance") showError(msg.message);
});

socket.on("connect_error", () => showError("Connection problem: retrying…"));
socket.on("connect", () => showError(""));
