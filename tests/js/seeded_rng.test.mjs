import { test } from "node:test";
import assert from "node:assert/strict";
import {
  argmax, episodeRng, hashString, mulberry32, sampleCategorical, softmax,
} from "../../interactive_gym/server/static/js/seeded_rng.js";

test("mulberry32 is deterministic and in [0, 1)", () => {
  const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
  const xs = Array.from({ length: 1000 }, a);
  assert.deepEqual(xs, Array.from({ length: 1000 }, b));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, c));
  for (const x of xs) assert.ok(x >= 0 && x < 1);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test("episodeRng differs per agent and per seed, repeats for the same pair", () => {
  const first = (rng) => [rng(), rng(), rng()];
  assert.deepEqual(first(episodeRng(7, "agent_1")), first(episodeRng(7, "agent_1")));
  assert.notDeepEqual(first(episodeRng(7, "agent_1")), first(episodeRng(7, "agent_0")));
  assert.notDeepEqual(first(episodeRng(7, "agent_1")), first(episodeRng(8, "agent_1")));
  assert.equal(hashString(""), 0x811c9dc5);
});

test("argmax takes the first maximum and rejects empty input", () => {
  assert.equal(argmax([0.1, 3, 3, -1]), 1);
  assert.equal(argmax(new Float32Array([-5, -2, -9])), 1);
  assert.throws(() => argmax([]));
});

test("softmax sums to one, is stable for large logits, and validates temperature", () => {
  const p = softmax([1000, 1000, 0]);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(p[0] - 0.5) < 1e-12);
  assert.throws(() => softmax([1, 2], 0));
  // Low temperature sharpens towards the argmax.
  assert.ok(softmax([1, 2], 0.05)[1] > 0.999);
});

test("sampleCategorical follows the distribution and uses exactly one draw", () => {
  const logits = [Math.log(0.2), Math.log(0.5), Math.log(0.3)];
  const rng = mulberry32(1);
  const counts = [0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleCategorical(logits, 1, rng)]++;
  assert.ok(Math.abs(counts[0] / n - 0.2) < 0.02, String(counts));
  assert.ok(Math.abs(counts[1] / n - 0.5) < 0.02, String(counts));
  let calls = 0;
  sampleCategorical(logits, 1, () => { calls++; return 0.99; });
  assert.equal(calls, 1);
  assert.equal(sampleCategorical(logits, 1, () => 0.9999999999999999), 2);
  assert.equal(sampleCategorical(logits, 1, () => 0), 0);
});
