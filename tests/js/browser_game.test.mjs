// BrowserGame's episode start (browser mode): a tap made in the pause between episodes does not act on the next
// episode's first frame (as in server mode, controls.TickKeys.forget_taps), while a key still held does. The
// page's real KeyboardInput on an EventTarget; the Python host is a fake that records what each frame got.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BrowserGame } from "../../interactive_gym/server/static/js/browser_game.js";
import { KeyboardInput } from "../../interactive_gym/server/static/js/input.js";

const FRAMES = 3;
const BETWEEN_MS = 1234; // marks the sleep between episodes

class FakeHost {
  constructor() {
    this.human = "agent_0";
    this.frames = []; // [episode, keys] per frame
    this.episode = -1;
    this.played = 0;
    this.t = 0;
  }
  reset() { this.episode += 1; this.played = 0; return { seq: 0 }; }
  get episodeOver() { return this.played >= FRAMES; }
  onnxDue() { return false; }
  frame(keys) { this.frames.push([this.episode, keys]); this.played += 1; this.t = this.played; return {}; }
  steps() { return []; }
}

function keyEvent(type, key) {
  return Object.assign(new Event(type, { cancelable: true }), { key, code: "" });
}

/** Plays two episodes; `between(target)` acts on the keyboard during the pause, `during` before frame 2 of ep 0. */
async function play({ between = () => {}, during = () => {} }) {
  const target = new EventTarget();
  const host = new FakeHost();
  const config = { mode: "browser", scene_id: "solo", scene_index: 0, attempt: 1, fps: 1000, num_episodes: 2,
    seeds: [1, 2], episodes: [0, 1], controls: { keys: ["ArrowUp"] }, agents: {}, canvas: {},
    bundle: { hash: "h" } };
  const element = { className: "", textContent: "" };
  const container = { ownerDocument: { createElement: () => element }, append() {} };
  const game = new BrowserGame({
    container, config, uploader: { upload: async () => ({ ok: true }) }, runtime: { host },
    betweenEpisodesMs: BETWEEN_MS, createRenderer: async () => ({ draw() {} }),
    createInput: async (keys) => new KeyboardInput(target, { keys }),
    sleep: async (ms) => {
      if (ms === BETWEEN_MS) between(target);
      else if (host.episode === 0 && host.played === 1) during(target);
    },
  });
  const result = await game.run();
  assert.equal(result.error, null);
  return host.frames;
}

const tap = (target) => {
  target.dispatchEvent(keyEvent("keydown", "ArrowUp"));
  target.dispatchEvent(keyEvent("keyup", "ArrowUp"));
};

test("a tap during an episode counts on its next frame (the control case)", async () => {
  const frames = await play({ during: tap });
  assert.deepEqual(frames.slice(0, FRAMES), [[0, []], [0, ["ArrowUp"]], [0, []]]);
});

test("a tap in the pause between episodes does not act on the next episode's first frame", async () => {
  const frames = await play({ between: tap });
  assert.deepEqual(frames, [[0, []], [0, []], [0, []], [1, []], [1, []], [1, []]]);
});

test("a key pressed in the pause and still held acts from the next episode's first frame", async () => {
  const frames = await play({ between: (target) => target.dispatchEvent(keyEvent("keydown", "ArrowUp")) });
  assert.deepEqual(frames.slice(FRAMES), [[1, ["ArrowUp"]], [1, ["ArrowUp"]], [1, ["ArrowUp"]]]);
});
