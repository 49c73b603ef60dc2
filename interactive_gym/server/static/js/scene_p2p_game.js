// Peer-to-peer game view: waiting room, connection, then the game runs in this page and the partner's, inputs
// flowing peer to peer (p2p_game.js). Each episode's confirmed trajectory is uploaded to the server, which
// compares the partners' uploads frame by frame.
//
// Server contract: emit `p2p_join` {scene_index, scene_id}; receive `waiting`, then `pyodide_game_ready`
// (MultiplayerPyodideGame builds the WebRTC transport from its turn_config); upload `p2p_episode`; at the end
// emit `p2p_game_end` {game_id, reason}; `p2p_partner_left` ends the game early. A reloaded page gets its running
// game back (`pyodide_game_ready` with `rejoin: true`; `p2p_peer_rejoining` tells the partner). Test hooks: `#game-status`
// (data-state loading | waiting | countdown | connecting | playing | over, data-reason when over) and
// `window.interactiveGym.p2p`.

import { EpisodeUploader, MAX_UPLOAD_BYTES } from "./episode_uploader.js";
import { KeyboardInput } from "./input.js";
import { P2PGame } from "./p2p_game.js";
import { gameConnectionType } from "./p2p_stats.js";
import { loadP2PRuntime } from "./p2p_runtime.js";
import { MultiplayerPyodideGame } from "./pyodide_multiplayer_game.js";
import { RuntimeLoadError, preloadPyodide } from "./pyodide_loader.js";
import { waitingText } from "./waiting_text.js";
import { countdownText, startCountdown } from "./start_countdown.js";

const UPLOAD_EVENT = "p2p_episode";
const STASH_KEY = "interactive-gym:unsent-p2p-episodes";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

const MAX_ERROR_CHARS = 4000; // schemas.py p2p_game_end.error
const MAX_EARLY_NEWS = 32; // server news of a game held until the game is announced
const GAME_OVER_TEXT = "The game has ended."; // only if the server sent no words for the reason
// A network blip while the game's files load is retried (the partner waits, connecting) before the game ends.
const LOAD_ATTEMPTS = 4;
const LOAD_RETRY_MS = 2000;
const TRANSIENT_LOAD_STAGES = new Set(["download", "files"]);

/** The error's Python traceback (or JS stack) for the server: its last MAX_ERROR_CHARS characters. */
export function errorDetail(error) {
  const text = String(error?.traceback ?? error?.cause?.traceback ?? error?.stack ?? error?.message ?? error);
  return text.length > MAX_ERROR_CHARS ? text.slice(text.length - MAX_ERROR_CHARS) : text;
}

async function createRenderer(container, canvas, assets) {
  const { Renderer } = await import("./renderer.js");
  const renderer = new Renderer(container, { width: canvas.width, height: canvas.height,
    background: canvas.background, assets: assets ?? {} });
  await renderer.ready();
  return renderer;
}

/** Shows a p2p GymScene; returns the view ({destroy}). */
export function showP2PGame({ socket, emitWithAck, container, index, scene, showError }) {
  container.innerHTML = "";
  const root = el("div", { class: "game", "data-scene-id": scene.scene_id });
  if (scene.title) root.append(el("h1", {}, scene.title));
  const body = el("div", { class: "body" });
  body.innerHTML = scene.body_html || "";
  const status = el("p", { class: "status", id: "game-status", "data-state": "loading" }, "Loading the game…");
  const canvasBox = el("div", { class: "game-canvas", id: "game-canvas", tabindex: "0" });
  const next = el("button", { id: "continue", hidden: "" }, "Continue");
  // "Next round" between episodes (GymScene episode_pause_s): shown while the host holds the pause frames,
  // which every peer's simulation holds alike (browser/p2p_agents.py).
  const roundNotice = el("p", { class: "notice round-notice", id: "round-notice", role: "status", hidden: "" });
  root.append(body, status, roundNotice, canvasBox, next);
  container.append(root);

  const setStatus = (state, text, reason = null) => {
    status.dataset.state = state;
    status.textContent = text;
    if (reason) status.dataset.reason = reason;
  };
  /** Shows the "next round" notice while `game` holds the pause before `episode` (hidden when play resumes). */
  const showRoundNotice = (game, episode, episodes) => {
    if (!(game.last?.pause > 0) || !roundNotice.hidden) return;
    roundNotice.textContent = `Next round: episode ${episode + 1} of ${episodes} starts in a moment…`;
    roundNotice.hidden = false;
    const watch = () => {
      if (view.over || view.destroyed || !(game.last?.pause > 0)) roundNotice.hidden = true;
      else requestAnimationFrame(watch);
    };
    requestAnimationFrame(watch);
  };
  const view = { destroyed: false, game: null, ready: null, partnerLeft: null, result: null, over: false,
    leaving: false, rejoins: [], endMessages: {}, earlyNews: [] };
  const hook = {
    get state() { return status.dataset.state; },
    get frame() { return view.game?.last?.frame ?? 0; },
    get connectionType() { return gameConnectionType(view.ready?.manager?.getStats()); }, // as in the uploads
    get rollbacks() { return view.game?.counters.rollbacks ?? 0; },
    get counters() { return view.game ? { ...view.game.counters } : null; },
    get latencySamples() { return view.game ? view.game.probe.samples.slice() : []; },
    get drawnLatencySamples() { return view.game ? view.game.probe.drawnSamples.slice() : []; },
    get frameLatencySamples() { return view.game ? view.game.probe.frameSamples.slice() : []; },
    get probe() { return view.game?.probe ?? null; },
    get last() { return view.game?.last ?? null; },
    get myPlayerId() { return view.ready?.myPlayerId ?? null; },
    get myAgent() { return view.game?.myAgent ?? null; },
    get gameId() { return view.ready?.gameId ?? null; },
    get result() { return view.result; },
    get rejoined() { return view.game?.rejoinedAt ?? null; },
    stats: () => (view.game ? view.game.stats() : null),
    transportStats: () => view.ready?.manager?.getStats() ?? null,
    // On-screen frame pacing (draw_queue.js FramePacing); a benchmark resets it once play has begun.
    framePacing: () => view.renderer?.framePacing() ?? null,
    resetFramePacing: () => view.renderer?.pacing.reset(),
    // Rollback corrections seen and the on-screen jumps they caused (rollback_smoothing.js).
    smoothing: () => view.renderer?.smoothing?.summary() ?? null,
  };
  window.interactiveGym.p2p = hook;

  preloadPyodide(scene.preload ?? scene.browser ?? {}).catch(() => {}); // start the big download at once
  const uploader = new EpisodeUploader({ emitWithAck, event: UPLOAD_EVENT, stashKey: STASH_KEY });
  uploader.resendStashed().catch(() => {});
  const multiplayer = new MultiplayerPyodideGame(socket);
  const early = [];
  multiplayer.onGameReady = (data) => {
    // Packets may arrive while Pyodide still loads; the game replays them once it exists.
    multiplayer.webrtcManager.onMessage = (...message) => early.push(message);
    view.ready = { gameId: data.game_id, myPlayerId: multiplayer.myPlayerId, manager: multiplayer.webrtcManager };
    view.endMessages = data.config?.end_messages ?? {};
    // News of this game the server sent just before it (its events race a rejoin): acted on now.
    for (const [handle, msg] of view.earlyNews.splice(0)) handle(msg);
    if (view.over) return; // that news ended it before it began
    // A page being closed or reloaded aborts its loads: that is the participant leaving (the server hears it
    // from the new page or the drop), not an error of the game to end their study with.
    start(data).catch((err) => { if (!view.leaving) finish("error", err); });
  };

  async function loadRuntime(config) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await loadP2PRuntime(config, multiplayer.myPlayerId);
      } catch (err) {
        const transient = err instanceof RuntimeLoadError && TRANSIENT_LOAD_STAGES.has(err.stage);
        if (!transient || attempt >= LOAD_ATTEMPTS || view.destroyed || view.leaving || view.over) throw err;
        console.warn(`[p2p] loading the game failed (${err.message}); retrying`);
        await new Promise((resolve) => { setTimeout(resolve, LOAD_RETRY_MS); });
      }
    }
  }

  async function start(data) {
    // "Partner found, starting in 3…" (GymScene start_countdown_s) while the game loads; the session starts after.
    view.countdown = startCountdown(data.countdown_s,
      (left) => setStatus("countdown", countdownText(left, scene.humans)));
    if (!view.countdown.running) {
      setStatus("connecting", data.rejoin ? "Getting your game back…" : "Connecting to your partner…");
    }
    const config = data.config;
    const [{ host }, renderer] = await Promise.all([
      loadRuntime(config),
      createRenderer(canvasBox, config.canvas, config.assets),
    ]);
    view.renderer = renderer;
    if (view.destroyed) return;
    await view.countdown.done;
    if (view.destroyed || view.over) return;
    if (status.dataset.state === "countdown") setStatus("connecting", "Connecting to your partner…");
    uploader.setMaxBytes(config.max_upload_bytes ?? MAX_UPLOAD_BYTES); // the server's cap, sent with the game
    const input = new KeyboardInput(window, { keys: config.controls.keys });
    const game = new P2PGame({
      host, transport: multiplayer.webrtcManager, renderer, input, config, gameId: data.game_id,
      myPlayerId: multiplayer.myPlayerId, players: data.players, uploader,
      rejoin: data.rejoin === true ? { sender: data.sender } : null, canRejoin: data.can_rejoin === true,
      ping: (t) => emitWithAck("ping", { t }, 5000), // the server clock's lead, measured before the first frame
      onStatus: (s) => {
        if (s.phase === "playing") {
          setStatus("playing", `You are ${game.myAgent}. Episode ${s.episode + 1} of ${config.num_episodes}.`);
          showRoundNotice(game, s.episode, config.num_episodes);
          canvasBox.focus();
        } else if (s.phase === "partner_away") {
          setStatus("playing", "Your partner's page is reconnecting. Please keep playing.");
        } else if (s.phase === "partner_back") {
          setStatus("playing", `You are ${game.myAgent}. Episode ${s.episode + 1} of ${config.num_episodes}.`);
        } else if (s.phase === "finishing") {
          setStatus("playing", "Finishing…");
        }
      },
    });
    view.game = game;
    for (const [player, attempt] of view.rejoins.splice(0)) game.peerRejoining(player, attempt, { reconnected: true });
    for (const message of early.splice(0)) game.onMessage(...message);
    const running = game.run();
    if (view.partnerLeft !== null) game.partnerLeft(view.partnerLeft);
    const result = await running;
    // The game's own error object, not result.error (its one-line message): the server needs the traceback.
    await finish(result.reason, game.error ?? result.error, result.uploadErrors);
  }

  async function finish(reason, error = null, uploadErrors = []) {
    if (view.over || view.destroyed) return;
    view.over = true;
    view.countdown?.cancel();
    const detail = error ? errorDetail(error) : null;
    view.result = { reason, error: error ? String(error.message ?? error) : null, detail, uploadErrors };
    if (error) console.error(`[p2p] game ended with an error:\n${detail}`);
    if (reason === "error" && error instanceof RuntimeLoadError) showError(error.userMessage);
    if (uploadErrors.length) showError("Some data could not be saved: " + uploadErrors.join("; "));
    setStatus("over", view.endedMessage || (view.endMessages[reason] ?? view.endMessages.error ?? GAME_OVER_TEXT),
      reason);
    multiplayer.close();
    if (view.ready) {
      try {
        await emitWithAck("p2p_game_end", { game_id: view.ready.gameId, reason, ...(detail ? { error: detail } : {}) });
      } catch (err) {
        console.warn("[p2p] p2p_game_end not acknowledged", err);
      }
    }
    next.hidden = false;
  }

  const onWaiting = (msg) => {
    if (msg.scene_id !== scene.scene_id || view.ready) return;
    setStatus("waiting", waitingText(msg));
  };
  /** Whether `msg` (a game's news from the server) is for this page's game; kept for later if the game is not
   * announced yet (the server may send news of it just before `pyodide_game_ready`). */
  const forThisGame = (handle, msg) => {
    if (!view.ready) {
      if (view.earlyNews.length < MAX_EARLY_NEWS) view.earlyNews.push([handle, msg]);
      return false;
    }
    return msg?.game_id === view.ready.gameId;
  };
  const onPartnerLeft = (msg) => {
    if (!forThisGame(onPartnerLeft, msg)) return;
    // The partner's game failed (reason "error", with its text): a running game here fails with it.
    const partnerError = msg.reason === "error" ? String(msg.error ?? "").slice(0, MAX_ERROR_CHARS) : null;
    if (view.game) view.game.partnerLeft(msg.player_id, { partnerError });
    else {
      view.partnerLeft = msg.player_id;
      finish("partner_left");
    }
  };
  // The researcher ended the game: it ends as if the partner left (what was played is uploaded), with their words.
  const onEndedByResearcher = (msg) => {
    if (!forThisGame(onEndedByResearcher, msg)) return;
    view.endedMessage = String(msg.message ?? "");
    onPartnerLeft({ game_id: msg.game_id, player_id: null });
  };
  // on_partner_drop="ai": the partner is gone and this page is the last; an AI plays their part from now on.
  const onTakeover = (msg) => {
    if (!forThisGame(onTakeover, msg) || !Array.isArray(msg.player_ids)) return;
    const ids = msg.player_ids.filter((p) => Number.isInteger(p));
    if (!view.game) {
      onPartnerLeft({ game_id: msg.game_id, player_id: ids[0] ?? null }); // no game to play on yet
      return;
    }
    if (view.game.takeOver(ids) !== null) {
      setStatus("playing", "Your partner left; an AI now plays their part. Please keep playing.");
    }
  };
  // The partner reloaded: its new page gets the game from here (or from another partner).
  // A partner's game is over while this page (a reload) was getting the game back.
  const onPeerFinished = (msg) => {
    if (!forThisGame(onPeerFinished, msg) || !Number.isInteger(msg.player_id)) return;
    if (view.game) view.game.peerFinished(msg.player_id);
    else finish("ended_while_away"); // still loading: nobody is left to send or start the game with
  };
  const onPeerRejoining = (msg) => {
    if (!forThisGame(onPeerRejoining, msg) || !Number.isInteger(msg.player_id)) return;
    const attempt = Number.isInteger(msg.attempt) ? msg.attempt : null;
    if (view.game) view.game.peerRejoining(msg.player_id, attempt);
    else {
      // This page still loads: connect to the new page now; the game learns of it once it exists.
      multiplayer.webrtcManager?.restartPeer(msg.player_id);
      view.rejoins.push([msg.player_id, attempt]);
    }
  };
  const onVisibility = () => socket.emit("visibility", { visible: !document.hidden });
  const onPageHide = () => {
    view.leaving = true;
    view.game?.pageClosed(socket);
  };
  socket.on("waiting", onWaiting);
  socket.on("p2p_partner_left", onPartnerLeft);
  socket.on("p2p_game_ended", onEndedByResearcher);
  socket.on("p2p_takeover", onTakeover);
  socket.on("p2p_peer_rejoining", onPeerRejoining);
  socket.on("p2p_peer_finished", onPeerFinished);
  document.addEventListener("visibilitychange", onVisibility);
  window.addEventListener("pagehide", onPageHide);
  next.addEventListener("click", async () => {
    next.disabled = true;
    const ack = await emitWithAck("advance", { scene_index: index, scene_id: scene.scene_id, answers: {} });
    if (!ack.ok) { showError(ack.error); next.disabled = false; }
  });
  const join = () => {
    emitWithAck("p2p_join", { scene_index: index, scene_id: scene.scene_id }).then((ack) => {
      if (!ack?.ok) showError(ack?.error ?? "Could not join the game.");
    }, (err) => showError(`Could not join the game: ${err.message}`));
  };
  // A socket that dropped while waiting comes back into the queue (the server keeps the place); once the game
  // is announced, a reconnect needs nothing: the server re-attaches the socket to the running game.
  const rejoinIfWaiting = () => { if (!view.ready && !view.over) join(); };
  socket.on("connect", rejoinIfWaiting);
  join();

  return {
    destroy() {
      view.destroyed = true;
      view.countdown?.cancel();
      view.game?.stop("error");
      socket.off("waiting", onWaiting);
      socket.off("p2p_partner_left", onPartnerLeft);
      socket.off("p2p_game_ended", onEndedByResearcher);
      socket.off("p2p_takeover", onTakeover);
      socket.off("p2p_peer_rejoining", onPeerRejoining);
      socket.off("p2p_peer_finished", onPeerFinished);
      socket.off("connect", rejoinIfWaiting);
      document.removeEventListener("visibilitychange", onVisibility);
      window.removeEventListener("pagehide", onPageHide);
      multiplayer.close();
      view.renderer?.destroy?.();
    },
  };
}
