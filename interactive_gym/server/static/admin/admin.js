// The study dashboard: renders the live view pushed on the Socket.IO namespace /admin about once a second,
// and sends the researcher's actions (POST with the session's CSRF token). Everything that comes from
// participants (ids, URL parameters, answers, tracebacks) is set with textContent, never parsed as HTML.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";
import uPlot from "/vendor/uplot/uPlot.esm.js";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const SERIES = [
  { key: "completed", label: "completed", stroke: "#1a7f37" },
  { key: "excluded", label: "excluded (timed out, errored)", stroke: "#9a6700" },
  { key: "dropped", label: "dropped", stroke: "#6e40c9" },
  { key: "errors", label: "errors", stroke: "#cf222e" },
];
const STATUSES = ["active", "completed", "timed_out", "errored", "dropped"];
const $ = (id) => document.getElementById(id);

function el(tag, text = "", attrs = {}) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = String(text);
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell ?? "";
    if (typeof cell === "number") td.className = "num";
    tr.append(td);
  }
  return tr;
}

function fill(tableId, rows) {
  $(tableId).querySelector("tbody").replaceChildren(...rows);
}

function pidButton(participantId) {
  const b = el("button", participantId, { type: "button", class: "pid", "data-participant": participantId });
  b.addEventListener("click", () => showTimeline(participantId));
  return b;
}

function showActionError(message) {
  $("action-error").textContent = message;
  $("action-error").hidden = !message;
}

async function post(path, body = {}) {
  showActionError("");
  let answer;
  try {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF }, body: JSON.stringify(body),
    });
    answer = await response.json();
    if (response.status === 401) window.location.replace("/admin");
  } catch (err) {
    answer = { ok: false, error: err.message };
  }
  if (!answer.ok) showActionError(answer.error ?? "the action failed");
  return answer;
}

// -- live view ------------------------------------------------------------------------------------------------
let enrolmentOpen = null;

function render(view) {
  enrolmentOpen = view.enrolment_open;
  $("enrolment-state").textContent = view.enrolment_open ? "Enrolment open" : "Enrolment paused";
  $("enrolment-state").dataset.open = String(view.enrolment_open);
  $("enrolment-toggle").textContent = view.enrolment_open ? "Pause enrolment" : "Resume enrolment";
  $("enrolment-toggle").disabled = false;

  const p = view.participants;
  $("participant-total").textContent = `(${p.total})`;
  fill("by-scene", Object.entries(p.by_scene).map(([scene, c]) =>
    row([scene, c.connected ?? 0, ...STATUSES.map((s) => c[s] ?? 0)])));
  fill("recent", p.recent.map((r) => row([pidButton(r.participant_id), `${r.scene_id} (#${r.scene_index})`,
    r.status, r.connected ? "yes" : "no"])));

  fill("waiting", view.waiting.map((room) => {
    const waiters = el("span");
    room.waiters.forEach((w, i) => {
      if (i) waiters.append(", ");
      waiters.append(pidButton(w.participant_id), ` ${w.waited_s.toFixed(0)} s${w.present ? "" : " (away)"}`);
    });
    return row([room.mode, room.scene_id, `needs ${room.needed}`, waiters]);
  }));

  fill("games", view.games.map((g) => {
    const players = el("span");
    g.players.forEach((pid, i) => { if (i) players.append(", "); players.append(pidButton(pid)); });
    const end = el("button", "End game", { type: "button", "data-end-game": g.game_id });
    end.addEventListener("click", async () => { end.disabled = true; await post(`/admin/games/${encodeURIComponent(g.game_id)}/end`); });
    const late = g.lateness ? `${g.lateness.p50_ms} / ${g.lateness.p99_ms} / ${g.lateness.max_ms}` : "";
    const at = g.t === null ? "" : `${g.episode + 1} / ${g.t}`;
    return row([g.game_id, g.mode, g.scene_id, players, g.connection ?? "not yet reported", at, g.rtt_ms ?? "",
      g.rollbacks ?? "", g.desyncs ?? "", late, end]);
  }));
  $("games").dataset.count = String(view.games.length);

  $("error-count").textContent = `(${view.counts.errors} in all; ${view.unauthorized} refused dashboard requests)`;
  $("errors").replaceChildren(...view.errors.slice().reverse().map((e) => {
    const li = el("li");
    li.append(`${new Date(e.ts * 1000).toLocaleTimeString()} ${e.kind} in ${e.scene_id ?? "?"} `);
    if (e.participant_id) li.append(pidButton(e.participant_id));
    if (e.game_id) li.append(` game ${e.game_id}`);
    li.append(el("pre", e.text || "(no traceback)"));
    return li;
  }));

  if (view.history) history = view.history;
  plot(view);
}

// -- plots ------------------------------------------------------------------------------------------------------
let history = null;
let chart = null;

function plot(view) {
  if (!history) return;
  // The stored samples, then this moment, so the lines reach the present.
  const data = [[...history.t, view.now], ...SERIES.map((s) => [...history[s.key], view.counts[s.key]])];
  if (!chart) {
    const box = $("plots");
    chart = new uPlot({
      width: Math.max(320, box.clientWidth - 20), height: 260,
      series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: 2 }))],
      axes: [{}, { label: "participants / errors" }],
      scales: { y: { range: (u, min, max) => [0, Math.max(5, max + 1)] } },
    }, data, box);
  } else {
    chart.setData(data);
  }
}

// -- timeline ---------------------------------------------------------------------------------------------------
async function showTimeline(participantId) {
  showActionError("");
  const response = await fetch(`/admin/participants/${encodeURIComponent(participantId)}/timeline`,
    { credentials: "same-origin" });
  const answer = await response.json();
  if (!response.ok) { showActionError(answer.error ?? "no timeline"); return; }
  $("timeline").hidden = false;
  $("timeline-id").textContent = participantId;
  const who = answer.participant;
  $("timeline-participant").textContent = `status ${who.status}, scene ${who.current_scene ?? ""}` +
    `${who.completion_code ? `, code ${who.completion_code}` : ""}\nURL parameters: ${JSON.stringify(who.url_params)}`;
  const rows = [
    ...answer.events.map((e) => ({ t: e.ts, what: e.kind, scene: e.scene_id, game: e.game_id, details: e.data })),
    ...answer.scenes.map((s) => ({ t: s.ended_at, what: `finished scene #${s.scene_index}`, scene: s.scene_id,
      game: null, details: s.answers })),
    ...answer.episodes.map((e) => ({ t: e.started_at, what: `episode ${e.episode} (${e.mode}, ${e.status})`,
      scene: e.scene_id, game: e.game_id, details: null })),
  ].sort((a, b) => (a.t ?? 0) - (b.t ?? 0));
  fill("timeline-rows", rows.map((r) => row([r.t ? new Date(r.t * 1000).toLocaleTimeString() : "", r.what,
    r.scene ?? "", r.game ?? "", r.details === null || r.details === undefined ? "" : JSON.stringify(r.details)])));
  $("timeline").scrollIntoView({ block: "nearest" });
}

// -- wiring -----------------------------------------------------------------------------------------------------
$("enrolment-toggle").addEventListener("click", async () => {
  if (enrolmentOpen === null) return;
  $("enrolment-toggle").disabled = true;
  const answer = await post("/admin/enrolment", { open: !enrolmentOpen });
  if (answer.ok) {
    enrolmentOpen = answer.enrolment_open;
    $("enrolment-state").textContent = enrolmentOpen ? "Enrolment open" : "Enrolment paused";
    $("enrolment-state").dataset.open = String(enrolmentOpen);
    $("enrolment-toggle").textContent = enrolmentOpen ? "Pause enrolment" : "Resume enrolment";
  }
  $("enrolment-toggle").disabled = false;
});
$("logout").addEventListener("click", async () => {
  await post("/admin/logout");
  window.location.replace("/admin");
});
$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("lookup-id").value.trim();
  if (id) showTimeline(id);
});

const socket = io("/admin");
socket.on("connect", () => { $("live-status").textContent = "live"; $("live-status").dataset.state = "live"; });
socket.on("disconnect", () => { $("live-status").textContent = "offline"; $("live-status").dataset.state = "offline"; });
socket.on("connect_error", (err) => {
  $("live-status").textContent = `offline (${err.message})`;
  $("live-status").dataset.state = "offline";
  if (String(err.message).startsWith("unauthorized")) window.location.replace("/admin");
});
socket.on("snapshot", (view) => {
  render(view);
  document.body.dataset.pushes = String(Number(document.body.dataset.pushes ?? 0) + 1);
});
