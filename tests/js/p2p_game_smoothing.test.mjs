// P2PGame.frame() tells the renderer which packets follow a rollback, with the scene's smoothing (p2p block
// `rollback_smoothing_frames`, absent: 0) and the page's own avatar excluded; ordinary ticks draw as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { P2PGame } from "../../interactive_gym/server/static/js/p2p_game.js";

const AGENTS = { a0: { kind: "human", player: 0 }, a1: { kind: "human", player: 1 } };

function playFrames(p2p, rollbacks, myPlayerId = 0) {
  let frame = 0;
  const host = {
    tick() {
      const rollback = rollbacks[frame];
      frame += 1;
      return { frame, status: "advanced", rollback, out: [], render: { seq: frame }, events: [], episodes: [],
        done: false, episode: 0, t: frame };
    },
  };
  const calls = [];
  const renderer = { draw: (...args) => calls.push(args), model: { objects: new Map() } };
  const config = { fps: 30, num_episodes: 1, seeds: [1], controls: { keys: [] }, agents: AGENTS,
    ...(p2p === undefined ? {} : { p2p }) };
  const game = new P2PGame({ host, transport: { send() {}, getStats: () => ({}) }, renderer, input: null, config,
    gameId: "g", myPlayerId, players: [0, 1], uploader: { upload: async () => ({ ok: true }) }, keyTarget: null });
  for (let i = 0; i < rollbacks.length; i += 1) game.frame(i * 33);
  return calls;
}

test("a tick that rolled back draws as a correction with the scene's glide, excluding the own avatar", () => {
  const calls = playFrames({ rollback_smoothing_frames: 3 }, [0, 2, 0, 1], 1);
  assert.deepEqual(calls, [
    [{ seq: 1 }],
    [{ seq: 2 }, { correction: { frames: 3, exclude: ["a1"] } }],
    [{ seq: 3 }],
    [{ seq: 4 }, { correction: { frames: 3, exclude: ["a1"] } }],
  ]);
});

test("without the option a correction is still marked, with 0 frames (counted, drawn as simulated)", () => {
  for (const p2p of [undefined, {}, { input_delay: 2 }]) {
    const calls = playFrames(p2p, [0, 1]);
    assert.deepEqual(calls, [[{ seq: 1 }], [{ seq: 2 }, { correction: { frames: 0, exclude: ["a0"] } }]],
      JSON.stringify(p2p));
  }
});
