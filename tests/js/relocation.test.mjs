import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_BACKOFF_MS, RELOCATION_WINDOW_MS, relocationWaitMs } from "../../interactive_gym/server/static/js/relocation.js";

test("the first move is at once, moves close together back off and are capped", () => {
  const recent = [];
  const waits = [0, 100, 200, 300, 400, 500, 600].map((t) => relocationWaitMs(recent, t));
  assert.deepEqual(waits, [0, 250, 500, 1000, 2000, 2000, 2000]);
  assert.ok(waits.every((w) => w <= MAX_BACKOFF_MS));
});

test("moves older than the window are forgotten", () => {
  const recent = [];
  relocationWaitMs(recent, 0);
  relocationWaitMs(recent, 10);
  assert.equal(relocationWaitMs(recent, 10 + RELOCATION_WINDOW_MS + 1), 0);
  assert.equal(recent.length, 1);
});

test("a dead worker's heartbeat (5 s) is outlived by a handful of reconnects", () => {
  const recent = [];
  let now = 0;
  let reconnects = 0;
  while (now < 5000) {
    now += relocationWaitMs(recent, now) + 20; // 20 ms for a reconnect on loopback
    reconnects += 1;
  }
  assert.ok(reconnects <= 8, `${reconnects} reconnects`);
});
