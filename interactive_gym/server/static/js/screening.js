// Screening on the participant's page: it reports what it sees of itself and answers the server's round-trip
// probes; the server decides (interactive_gym/screening). It also shows the server's exclusion warnings and
// tells the server, at most every 2 s, that the participant pressed a key or clicked (the idle rule's input).
import { FaultInjector } from "./transport_faults.js";

const ACTIVITY_EVERY_MS = 2000;
const CHECKING_TEXT = "Checking that your browser can run this study…";

function wholeNumber(value, high) {
  const n = Math.round(Number(value));
  return Number.isFinite(n) ? Math.min(high, Math.max(0, n)) : 0;
}

/** The facts of the `screening_report` event (the fields of its schema in interactive_gym/server/schemas.py). */
export function pageFacts(nav, win) {
  const data = nav.userAgentData;
  const facts = {
    user_agent: String(nav.userAgent || "").slice(0, 512),
    brands: Array.isArray(data?.brands)
      ? data.brands.slice(0, 16).map((b) => `${b.brand}/${b.version}`.slice(0, 100)) : [],
    touch_points: wholeNumber(nav.maxTouchPoints, 1000),
    width: wholeNumber(win.innerWidth, 100000),
    height: wholeNumber(win.innerHeight, 100000),
    webassembly: typeof win.WebAssembly === "object" && win.WebAssembly !== null
      && typeof win.WebAssembly.instantiate === "function",
    webrtc: typeof win.RTCPeerConnection === "function",
  };
  if (typeof data?.mobile === "boolean") facts.ua_mobile = data.mobile;
  return facts;
}

/**
 * Gathers ICE candidates through the study's TURN server only; resolves whether a relay candidate came within
 * `timeout_ms` ({relay, relay_ms}).
 */
export function turnPretest({ ice_servers: iceServers, timeout_ms: timeoutMs }, env = {}) {
  const Peer = env.Peer || globalThis.RTCPeerConnection;
  const now = env.now || (() => performance.now());
  const started = now();
  let pc;
  try {
    pc = new Peer({ iceServers, iceTransportPolicy: "relay" });
  } catch {
    return Promise.resolve({ relay: false });
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (relay) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try { pc.close(); } catch { /* already closed */ }
      resolve(relay ? { relay: true, relay_ms: Math.round(now() - started) } : { relay: false });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      if (c && (c.type === "relay" || / typ relay( |$)/.test(c.candidate || ""))) done(true);
    };
    pc.createDataChannel("pretest");
    pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => done(false));
  });
}

/** Passes an input to `send` at most once per `everyMs` (the first at once). */
export function throttle(send, everyMs, now = () => Date.now()) {
  let last = -Infinity;
  return () => {
    const t = now();
    if (t - last < everyMs) return false;
    last = t;
    send();
    return true;
  };
}

function showWarning(msg) {
  let banner = document.getElementById("exclusion-warning");
  if (!msg.active) {
    banner?.remove();
    if (document.title.startsWith("⚠ ")) document.title = document.title.slice(2);
    return;
  }
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "exclusion-warning";
    banner.className = "notice warning";
    banner.setAttribute("role", "alert");
    banner.style.cssText = "position:sticky;top:0;z-index:10;font-weight:bold";
    document.body.prepend(banner);
  }
  banner.dataset.rule = msg.rule;
  banner.textContent = msg.message;
  // A hidden tab's banner is unseen; its title shows in the tab strip.
  if (!document.title.startsWith("⚠ ")) document.title = `⚠ ${document.title}`;
}

/** Wires the page's side of screening to the socket (once per page). */
export function installScreening({ socket, emitWithAck, container, showError, sceneIndex }) {
  let faults = null; // tests only: the server's fault profile delays this page's probe answers both ways
  socket.on("rtt_probe", (msg, ack) => {
    if (typeof ack !== "function") return;
    // In-game probes come without a screening request when the study has no entry rules.
    if (!faults && msg?.test_faults) faults = new FaultInjector(msg.test_faults);
    if (faults) faults.schedule("server", true, () => faults.schedule("server", true, () => ack({})));
    else ack({});
  });
  socket.on("screening_request", async (request) => {
    if (request.test_faults) faults = new FaultInjector(request.test_faults);
    container.innerHTML = "";
    const p = document.createElement("p");
    p.className = "muted";
    p.id = "screening";
    p.textContent = CHECKING_TEXT;
    container.append(p);
    const facts = pageFacts(navigator, window);
    if (request.turn) Object.assign(facts, await turnPretest(request.turn));
    try {
      const ack = await emitWithAck("screening_report", facts, 120000);
      if (ack && ack.ok === false && !ack.retryable) showError(ack.error);
    } catch {
      showError("No answer from the server; please reload the page.");
    }
  });
  socket.on("exclusion_warning", showWarning);
  socket.on("scene", () => showWarning({ active: false }));
  const activity = throttle(() => {
    const index = sceneIndex();
    if (index >= 0 && socket.connected) socket.emit("activity", { scene_index: index });
  }, ACTIVITY_EVERY_MS);
  window.addEventListener("keydown", activity, { capture: true });
  window.addEventListener("pointerdown", activity, { capture: true });
}
