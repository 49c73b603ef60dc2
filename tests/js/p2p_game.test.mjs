import { test } from "node:test";
import assert from "node:assert/strict";
import { P2PGame } from "../../interactive_gym/server/static/js/p2p_game.js";

const encoder = new TextEncoder();
const CONFIG = {
  fps: 200, num_episodes: 1, seeds: [11], controls: { keys: ["ArrowUp"] },
  agents: { a0: { kind: "human", player: 0 }, a1: { kind: "human", player: 1 } },
};

class FakeHost {
  constructor(script = {}) {
    this.script = script;
    this.frame = 0;
    this.received = [];
    this.startedAt = null;
    this.left = [];
    this.steps = 0;
  }
  start(now) { this.startedAt = now; }
  receive(peer, bytes) { this.received.push([peer, Array.from(bytes)]); }
  tick() {
    if (this.script.throwAt === this.frame) throw new Error("env exploded");
    this.frame += 1;
    this.steps += 1;
    const events = this.script.desyncAt === this.frame ? [{ type: "DesyncDetected", frame: 3 }] : [];
    if (this.script.silentAt === this.frame) events.push({ type: "Disconnected", player: this.script.silentPlayer ?? 1, frame: 4 });
    return { frame: this.frame, status: "advanced", rollback: this.frame === 2 ? 1 : 0,
      out: [[1, new Uint8Array([this.frame])]], render: { seq: this.frame }, events,
      episodes: this.frame === (this.script.doneAt ?? 1e9) ? [0] : [], done: this.frame >= (this.script.doneAt ?? 1e9),
      episode: 0, t: this.frame };
  }
  episodePayload(episode, partial, endReason) { return { episode, partial, end_reason: endReason, steps: [] }; }
  stats() {
    return { rtt_ms: {}, rollbacks: {}, frames: this.frame, desyncs: [], dropped_packets: {}, bad_packets: 0,
      row_mismatches: 0 };
  }
  get currentEpisode() { return this.script.doneAt && this.frame >= this.script.doneAt ? 1 : 0; }
  stepCount() { return this.steps; }
  partnerLeft(player) { this.left.push(player); }
  takeOver() { return JSON.stringify({ ok: true, frame: this.frame }); }
  closePackets() { return [[1, new Uint8Array([0xdd])]]; }
}

class FakeTransport {
  constructor() { this.sent = []; this.onMessage = null; }
  send(peer, bytes, { reliable = false } = {}) { this.sent.push({ peer, bytes: Array.from(bytes), reliable }); return true; }
  getStats() { return { peers: {} }; }
  deliverControl(peer, message) { this.onMessage(peer, encoder.encode(JSON.stringify(message)), "control"); }
}

function makeGame(script, config = CONFIG, options = {}) {
  const host = new FakeHost(script);
  const transport = new FakeTransport();
  const uploads = [];
  const drawn = [];
  const statuses = [];
  const game = new P2PGame({
    host, transport, renderer: { draw: (p) => drawn.push(p), model: { objects: new Map() } },
    input: { sample: () => ["ArrowUp"], destroy() {} }, config, gameId: "p2p-1", myPlayerId: 0,
    players: [0, 1], uploader: { upload: async (p) => { uploads.push(p); return { ok: true }; } },
    onStatus: (s) => statuses.push(s.phase), lingerMs: 20, keyTarget: null, ...options,
  });
  return { game, host, transport, uploads, drawn, statuses };
}

test("starts only when the partner is ready; early packets are replayed; a complete game uploads and lingers", async () => {
  const { game, host, transport, uploads, drawn, statuses } = makeGame({ doneAt: 6 });
  const done = game.run();
  transport.onMessage(1, new Uint8Array([1, 2, 3]), "inputs"); // before the start: buffered
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(host.startedAt, null);
  assert.equal(host.frame, 0);
  const readies = transport.sent.filter((s) => s.reliable);
  assert.ok(readies.length >= 1 && readies.every((s) => s.peer === 1));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(Uint8Array.from(readies[0].bytes))), { t: "ready" });
  transport.deliverControl(1, { t: "ready" });
  assert.notEqual(host.startedAt, null);
  assert.deepEqual(host.received, [[1, [1, 2, 3]]]);
  transport.onMessage(1, new Uint8Array([9]), "inputs");
  assert.deepEqual(host.received.at(-1), [1, [9]]);
  transport.onMessage(1, new Uint8Array([0xff, 0x00]), "control"); // junk on the control channel is ignored
  const result = await done;
  assert.equal(result.reason, "complete");
  assert.deepEqual(uploads.map((u) => [u.episode, u.partial, u.end_reason, u.game_id]), [[0, false, "done", "p2p-1"]]);
  assert.ok(uploads[0].stats.connection && "local_input_latency_ms" in uploads[0].stats);
  assert.ok(host.frame >= 6, "kept ticking through the linger period");
  assert.ok(drawn.length >= 6);
  assert.ok(transport.sent.some((s) => !s.reliable && s.bytes[0] === 1)); // netcode packets go unreliable
  assert.ok(!transport.sent.some((s) => s.bytes[0] === 0xdd)); // no goodbye after a complete game
  assert.deepEqual([...new Set(statuses)], ["connecting", "playing", "finishing", "uploading"]);
  assert.equal(game.counters.rollbacks, 1);
});

test("a desync ends the game and uploads the episode so far as partial", async () => {
  const { game, transport, uploads } = makeGame({ desyncAt: 4 });
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  const result = await done;
  assert.equal(result.reason, "desync");
  assert.deepEqual(uploads.map((u) => [u.partial, u.end_reason]), [[true, "desync"]]);
  assert.ok(transport.sent.some((s) => s.bytes[0] === 0xdd)); // the partner is told at once
});

test("partner left: the host is told, partial upload with end_reason partner_left", async () => {
  const { game, host, transport, uploads } = makeGame({});
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  await new Promise((r) => setTimeout(r, 30));
  game.partnerLeft(1);
  const result = await done;
  assert.equal(result.reason, "partner_left");
  assert.deepEqual(host.left, [1]);
  assert.deepEqual(uploads.map((u) => [u.partial, u.end_reason]), [[true, "partner_left"]]);
  game.partnerLeft(1); // late duplicates are harmless
  assert.equal(uploads.length, 1);
});

test("a Python exception ends the game with reason error", async () => {
  const { game, transport } = makeGame({ throwAt: 3 });
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  const result = await done;
  assert.equal(result.reason, "error");
  assert.match(result.error, /env exploded/);
});

// ---- the clock estimate (measured before the first frame) and the start from no input ----

class StampedHost extends FakeHost {
  episodePayload(episode, partial, endReason) {
    return { episode, partial, end_reason: endReason, steps: [{ t: 0, client_ts: 1000.5 }, { t: 1, client_ts: 1001.25 }] };
  }
}

function makeStampedGame({ ping, input }) {
  const host = new StampedHost({ doneAt: 4 });
  const transport = new FakeTransport();
  const uploads = [];
  const game = new P2PGame({
    host, transport, renderer: { draw() {}, model: { objects: new Map() } }, input, config: CONFIG, gameId: "p2p-1",
    myPlayerId: 0, players: [0, 1], uploader: { upload: async (p) => { uploads.push(p); return { ok: true }; } },
    lingerMs: 10, keyTarget: null, ping, clockOptions: { samples: 2, gapMs: 0 },
  });
  return { game, host, transport, uploads };
}

test("the clock estimate is measured while connecting, and every upload carries it", async () => {
  const pings = [];
  let open;
  const gate = new Promise((resolve) => { open = resolve; }); // the server answers once the test says so
  const ping = (t) => { pings.push(t); return gate.then(() => ({ server_t: t + 30_000 })); };
  const { game, transport, uploads } = makeStampedGame({ ping, input: { sample: () => [] } });
  const done = game.run();
  assert.equal(pings.length, 1, "the first ping goes out before the partner is even ready");
  transport.deliverControl(1, { t: "ready" });
  await new Promise((r) => setTimeout(r, 60)); // the episode is complete: its upload waits for the estimate
  assert.deepEqual(uploads, []);
  open();
  const result = await done;
  assert.equal(result.reason, "complete");
  assert.equal(uploads.length, 1);
  const { clock } = uploads[0];
  assert.equal(clock.started_at, 1000.5);
  assert.equal(clock.ended_at, 1001.25);
  assert.ok(Math.abs(clock.offset_s - 30) < 1, `offset ${clock.offset_s}`);
  assert.ok(clock.rtt_s >= 0);
});

test("pings that all fail still let the uploads go, without an offset", async () => {
  const ping = () => Promise.reject(new Error("no server"));
  const { game, transport, uploads } = makeStampedGame({ ping, input: { sample: () => [] } });
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  assert.equal((await done).reason, "complete");
  assert.deepEqual(uploads.map((u) => [u.clock.offset_s, u.clock.rtt_s]), [[null, null]]);
});

test("taps made while connecting are forgotten before frame 0", async () => {
  const calls = [];
  const input = { sample: () => { calls.push("sample"); return []; }, forgetTaps: () => calls.push("forget"),
    destroy() {} };
  const { game, transport } = makeStampedGame({ ping: null, input });
  const done = game.run();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls, [], "nothing is sampled or forgotten before the start");
  transport.deliverControl(1, { t: "ready" });
  await done;
  assert.equal(calls[0], "forget");
  assert.equal(calls.filter((c) => c === "forget").length, 1, "later episodes follow without a pause: taps kept");
  assert.ok(calls.length > 1 && calls.slice(1).every((c) => c === "sample"));
});

test("a partner gone silent (remote Disconnected) ends the game as partner_left with a partial upload", async () => {
  const { game, host, transport, uploads } = makeGame({ silentAt: 5 });
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  const result = await done;
  assert.equal(result.reason, "partner_left");
  assert.equal(host.frame, 5, "no frame is played after the disconnect");
  assert.deepEqual(uploads.map((u) => [u.partial, u.end_reason]), [[true, "partner_left"]]);
  assert.ok(transport.sent.some((s) => s.bytes[0] === 0xdd)); // the partner is told, should it come back
});

test("with a takeover policy a remote Disconnected does not end the game: the server decides", async () => {
  const config = { ...CONFIG, p2p: { takeover: { ref: "env:policy" } } };
  const { game, host, transport } = makeGame({ silentAt: 3 }, config);
  const done = game.run();
  transport.deliverControl(1, { t: "ready" });
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(game.finished, false);
  assert.ok(host.frame > 3, "kept playing while the server's grace runs");
  game.partnerLeft(1); // the server's answer
  assert.equal((await done).reason, "partner_left");
});

test("our own Disconnected, or one after the last frame, does not end the game early", async () => {
  const own = makeGame({ silentAt: 3, silentPlayer: 0, doneAt: 8 });
  const ownDone = own.game.run();
  own.transport.deliverControl(1, { t: "ready" });
  assert.equal((await ownDone).reason, "complete");
  const late = makeGame({ silentAt: 9, doneAt: 6 }); // the partner's goodbye while lingering
  const lateDone = late.game.run();
  late.transport.deliverControl(1, { t: "ready" });
  assert.equal((await lateDone).reason, "complete");
  assert.deepEqual(late.uploads.map((u) => [u.partial, u.end_reason]), [[false, "done"]]);
});

test("with a takeover policy and no decision from the server within partnerDecisionMs, the game ends", async () => {
  const config = { ...CONFIG, p2p: { takeover: { ref: "env:policy" } } };
  const waiting = makeGame({ silentAt: 3 }, config, { partnerDecisionMs: 40 });
  const done = waiting.game.run();
  waiting.transport.deliverControl(1, { t: "ready" });
  const result = await done;
  assert.equal(result.reason, "partner_left");
  assert.deepEqual(waiting.uploads.map((u) => [u.partial, u.end_reason]), [[true, "partner_left"]]);
  // The server's takeover came in time: the game plays on past the wait, to its end.
  const taken = makeGame({ silentAt: 3, doneAt: 40 }, config, { partnerDecisionMs: 40 });
  const takenDone = taken.game.run();
  taken.transport.deliverControl(1, { t: "ready" });
  await new Promise((r) => setTimeout(r, 10));
  assert.notEqual(taken.game.takeOver([1]), null);
  assert.equal((await takenDone).reason, "complete");
});
