// The start countdown's wording and its clock (a fake clock; real timers only pace the ticks).
import assert from "node:assert/strict";
import { test } from "node:test";

import { countdownText, startCountdown } from "../../interactive_gym/server/static/js/start_countdown.js";

test("the text rounds the seconds up and names partners by group size", () => {
  assert.equal(countdownText(3), "Partner found, starting in 3…");
  assert.equal(countdownText(2.01), "Partner found, starting in 3…");
  assert.equal(countdownText(0.2, 3), "Partners found, starting in 1…");
  assert.equal(countdownText(undefined), "Partner found, starting in 1…");
});

test("no countdown for 0, negative or missing seconds", async () => {
  for (const seconds of [0, -1, undefined, null, "x"]) {
    const ticks = [];
    const handle = startCountdown(seconds, (left) => ticks.push(left));
    assert.equal(handle.running, false);
    await handle.done;
    assert.deepEqual(ticks, []);
  }
});

test("ticks down on its clock and resolves when it reaches zero", async () => {
  let clock = 0;
  const ticks = [];
  const handle = startCountdown(1, (left) => { ticks.push(left); clock += 300; }, () => clock);
  await handle.done;
  assert.equal(handle.running, false);
  assert.equal(ticks[0], 1);
  assert.ok(ticks.length >= 3 && ticks.every((t, i) => i === 0 || t < ticks[i - 1]), String(ticks));
});

test("cancel stops it and resolves at once", async () => {
  const ticks = [];
  const handle = startCountdown(10, (left) => ticks.push(left));
  handle.cancel();
  await handle.done;
  assert.equal(handle.running, false);
  assert.equal(ticks.length, 1);
});
