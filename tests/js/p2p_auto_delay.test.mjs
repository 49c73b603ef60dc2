import { test } from "node:test";
import assert from "node:assert/strict";
import { P2PGame } from "../../interactive_gym/server/static/js/p2p_game.js";

// An "auto" input delay may differ between episodes: each upload's stats carry the delay of its own episode.
const CONFIG = {
  fps: 30, num_episodes: 2, seeds: [1, 2], controls: { keys: [] },
  agents: { a0: { kind: "human", player: 0 }, a1: { kind: "human", player: 1 } },
};

function game(sessionStats) {
  const host = {
    stats: () => ({ rtt_ms: {}, rollbacks: {}, dropped_packets: {}, ...sessionStats }),
    episodePayload: (episode) => ({ episode, steps: [] }),
  };
  return new P2PGame({
    host, transport: { send() {}, getStats: () => ({ peers: {} }) }, renderer: { draw() {} }, input: null,
    config: CONFIG, gameId: "g", myPlayerId: 0, players: [0, 1], uploader: { upload: async () => ({}) },
    keyTarget: null,
  });
}

test("each episode's upload names the delay that episode was played with", () => {
  const g = game({ input_delay: 3, input_delays: [1, 3] });
  assert.equal(g.hostPayload(0, false, "done").stats.input_delay, 1);
  assert.equal(g.hostPayload(1, false, "done").stats.input_delay, 3);
});

test("an episode not started yet, or a fixed delay, reports the delay in use", () => {
  assert.equal(game({ input_delay: 2, input_delays: [2, null] }).hostPayload(1, true, "error").stats.input_delay, 2);
  assert.equal(game({ input_delay: 2 }).hostPayload(0, false, "done").stats.input_delay, 2);
});
