// Server-mode game view: the environment steps on the server. This page sends the held game keys when they
// change and draws the render packets the server sends each tick.
import { Renderer } from "/static/js/renderer.js";
import { KeyboardInput } from "/static/js/input.js";
import { waitingText } from "/static/js/waiting_text.js";
import { countdownText, startCountdown } from "/static/js/start_countdown.js";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

/** Shows a server-mode GymScene; returns the view ({destroy}). */
export function showServerGame({ socket, emitWithAck, container, index, scene, showError }) {
  container.innerHTML = "";
  const root = el("div", { class: "game", "data-scene-id": scene.scene_id });
  if (scene.title) root.append(el("h1", {}, scene.title));
  const body = el("div", { class: "body" });
  body.innerHTML = scene.body_html || "";
  const status = el("p", { class: "status", id: "game-status" }, "Getting the game ready…");
  const canvasBox = el("div", { class: "game-canvas", id: "game-canvas", tabindex: "0" });
  const next = el("button", { id: "continue", hidden: "" }, "Continue");
  root.append(body, status, canvasBox, next);
  container.append(root);

  const state = { gameId: null, seq: 0, renderer: null, input: null, frames: 0, pending: [] };
  window.interactiveGym.game = state;

  const draw = (packet) => {
    if (!packet) return;
    if (state.renderer) { state.renderer.draw(packet); state.frames += 1; } else state.pending.push(packet);
  };

  const sendKeys = (held) => {
    if (!state.gameId) return;
    state.seq += 1;
    socket.emit("keys", { game_id: state.gameId, held, seq: state.seq });
  };

  const onWaiting = (msg) => {
    if (msg.scene_id !== scene.scene_id || state.gameId) return;
    status.textContent = waitingText(msg);
    status.dataset.state = "waiting";
  };
  const playing = () => {
    status.textContent = `You are ${state.agentId}. Use the keyboard to play.`;
    status.dataset.state = "playing";
  };
  const onStart = async (msg) => {
    state.gameId = msg.game_id;
    state.agentId = msg.agent_id;
    // The server starts the game's first tick after the countdown (GymScene start_countdown_s).
    state.countdown?.cancel();
    state.countdown = startCountdown(msg.countdown_s, (left) => {
      status.textContent = countdownText(left, scene.humans);
      status.dataset.state = "countdown";
    });
    if (!state.countdown.running) playing();
    else state.countdown.done.then(() => { if (status.dataset.state === "countdown") playing(); });
    if (!state.renderer) {
      const r = new Renderer(canvasBox, { ...scene.canvas, assets: scene.assets || {} });
      await r.ready();
      state.renderer = r;
      for (const p of state.pending.splice(0)) draw(p);
    }
    if (msg.snapshot) draw(msg.snapshot);
    if (!state.input) {
      state.input = new KeyboardInput(window, { keys: scene.keys, onChange: sendKeys });
    }
    canvasBox.focus();
  };
  const onEpisode = (msg) => {
    if (msg.game_id !== state.gameId) return;
    state.countdown?.cancel(); // the game has started
    status.dataset.state = "playing";
    status.textContent = `Episode ${msg.episode + 1} of ${scene.num_episodes}`;
    draw(msg.packet);
  };
  const onRender = (msg) => { if (msg.game_id === state.gameId) draw(msg.packet); };
  const onTakeover = (msg) => {
    if (msg.game_id !== state.gameId || msg.agent_id === state.agentId) return;
    status.textContent = "Your partner left; an AI now plays their part. Please keep playing.";
    status.dataset.notice = "partner_takeover";
  };
  const onOver = (msg) => {
    if (msg.game_id !== state.gameId) return;
    state.countdown?.cancel();
    status.textContent = msg.message;
    status.dataset.state = "over";
    status.dataset.reason = msg.reason;
    state.input?.destroy();
    state.input = null;
    next.hidden = false;
  };
  next.addEventListener("click", async () => {
    next.disabled = true;
    const ack = await emitWithAck("advance", { scene_index: index, scene_id: scene.scene_id, answers: {} });
    if (!ack.ok) { showError(ack.error); next.disabled = false; }
  });
  const onVisibility = () => socket.emit("visibility", { visible: !document.hidden });
  const join = () => socket.emit("join_game", { scene_index: index, scene_id: scene.scene_id });

  socket.on("waiting", onWaiting);
  socket.on("game_start", onStart);
  socket.on("episode_start", onEpisode);
  socket.on("render", onRender);
  socket.on("game_over", onOver);
  socket.on("partner_takeover", onTakeover);
  socket.on("connect", join); // re-join the running game after a reconnect
  document.addEventListener("visibilitychange", onVisibility);
  join();

  return {
    destroy() {
      socket.off("waiting", onWaiting);
      socket.off("game_start", onStart);
      socket.off("episode_start", onEpisode);
      socket.off("render", onRender);
      socket.off("game_over", onOver);
      socket.off("partner_takeover", onTakeover);
      socket.off("connect", join);
      document.removeEventListener("visibilitychange", onVisibility);
      state.countdown?.cancel();
      state.input?.destroy();
      state.renderer?.destroy();
    },
  };
}
