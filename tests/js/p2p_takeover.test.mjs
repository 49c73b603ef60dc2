import { test } from "node:test";
import assert from "node:assert/strict";
import { P2PGame } from "../../interactive_gym/server/static/js/p2p_game.js";

const encoder = new TextEncoder();
const CONFIG = {
  fps: 200, num_episodes: 1, seeds: [11], controls: { keys: ["ArrowUp"] },
  agents: { a0: { kind: "human", player: 0 }, a1: { kind: "human", player: 1 } },
};

/** The host bridge as P2PGame sees it; take_over answers like P2PGameHost.take_over. */
class Host {
  constructor(answer) { this.answer = answer; this.frame = 0; this.left = []; this.takeovers = []; }
  start() {}
  receive() {}
  tick() {
    this.frame += 1;
    const done = this.frame >= 40;
    return { frame: this.frame, status: "advanced", rollback: 0, out: [], render: null, events: [],
      episodes: this.frame === 40 ? [0] : [], done, episode: 0, t: this.frame };
  }
  takeOver(player) { this.takeovers.push(player); return JSON.stringify(this.answer(player)); }
  episodePayload(episode, partial, endReason) { return { episode, partial, end_reason: endReason, steps: [] }; }
  stats() { return { rtt_ms: {}, rollbacks: {}, frames: this.frame, desyncs: [], dropped_packets: {} }; }
  get currentEpisode() { return this.frame >= 40 ? 1 : 0; }
  stepCount() { return this.frame; }
  partnerLeft(player) { this.left.push(player); }
  closePackets() { return []; }
}

function start(answer) {
  const host = new Host(answer);
  const transport = { sent: [], onMessage: null, send() { return true; }, getStats: () => ({ peers: {} }) };
  const uploads = [];
  const game = new P2PGame({
    host, transport, renderer: { draw() {}, model: { objects: new Map() } },
    input: { sample: () => [], destroy() {} }, config: CONFIG, gameId: "p2p-1", myPlayerId: 0, players: [0, 1],
    uploader: { upload: async (p) => { uploads.push(p); return { ok: true }; } }, onStatus() {}, lingerMs: 5,
    keyTarget: null,
  });
  const done = game.run();
  transport.onMessage(1, encoder.encode(JSON.stringify({ t: "ready" })), "control");
  return { game, host, uploads, done };
}

test("a takeover lets the game play on to its end; a repeated one changes nothing", async () => {
  const { game, host, uploads, done } = start(() => ({ ok: true, frame: 3 }));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(game.takeOver([1]), 3);
  assert.equal(game.takeOver([1]), 3);
  const result = await done;
  assert.equal(result.reason, "complete");
  assert.deepEqual(host.left, []);
  assert.deepEqual(uploads.map((u) => [u.partial, u.end_reason]), [[false, "done"]]);
  assert.equal(game.takeOver([1]), null); // after the end: nothing happens
  assert.deepEqual(host.takeovers, [1, 1]);
});

test("a refused takeover ends the game as if the partner left", async () => {
  const { game, host, uploads, done } = start(() => ({ ok: false, error: "another peer is still connected" }));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(game.takeOver([1]), null);
  const result = await done;
  assert.equal(result.reason, "partner_left");
  assert.deepEqual(host.left, [1]);
  assert.deepEqual(uploads.map((u) => [u.partial, u.end_reason]), [[true, "partner_left"]]);
});
