import { test } from "node:test";
import assert from "node:assert/strict";
import { FramePacing, PendingDraw, quantile } from "../../interactive_gym/server/static/js/draw_queue.js";

const result = (changed = [], removed = [], flags = {}) => ({ changed: new Set(changed), removed: new Set(removed),
  restack: false, resized: false, backgroundChanged: false, ...flags });

test("nothing is due before a packet and after a take", () => {
  const pending = new PendingDraw();
  assert.equal(pending.due, false);
  pending.add(result(["o:a"]));
  assert.equal(pending.due, true);
  pending.take();
  assert.equal(pending.due, false);
  assert.deepEqual(pending.take(), { removed: [], changed: [], restack: false, resized: false,
    backgroundChanged: false, packets: 0 }, "a second take draws nothing: no packet is drawn twice");
});

test("several packets give one sync per key with the last thing that happened to it", () => {
  const pending = new PendingDraw();
  pending.add(result(["o:a", "o:b"]));
  pending.add(result(["o:a"], ["o:b"]));          // b removed after a change
  pending.add(result(["o:c"], ["o:d"]));
  pending.add(result(["o:d"]));                   // d removed, then created again
  const todo = pending.take();
  assert.deepEqual(todo.changed.sort(), ["o:a", "o:c", "o:d"]);
  assert.deepEqual(todo.removed, ["o:b"]);
  assert.equal(todo.packets, 4);
});

test("flags are sticky until taken", () => {
  const pending = new PendingDraw();
  pending.add(result([], [], { restack: true }));
  pending.add(result([], [], { resized: true }));
  pending.add(result([], [], { backgroundChanged: true }));
  pending.add(result());
  const todo = pending.take();
  assert.deepEqual([todo.restack, todo.resized, todo.backgroundChanged], [true, true, true]);
  const next = (pending.add(result()), pending.take());
  assert.deepEqual([next.restack, next.resized, next.backgroundChanged], [false, false, false]);
});

test("quantile by nearest rank", () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([7], 0.99), 7);
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(quantile(values, 0.5), 50);
  assert.equal(quantile(values, 0.99), 99);
  assert.equal(quantile(values, 1), 100);
  assert.equal(quantile(values, 0), 1);
});

test("frame pacing: intervals between shown frames, coalesced packets, gaps", () => {
  const pacing = new FramePacing();
  assert.deepEqual(pacing.summary(), { frames: 0, coalesced: 0, intervals: 0, p50_ms: null, p99_ms: null, max_ms: null });
  for (const t of [0, 33.3, 66.7, 100, 150]) pacing.shown(t);
  pacing.shown(183.3, 3); // two packets never shown on their own
  pacing.gap();           // hidden tab
  pacing.shown(5000);
  pacing.shown(5033.3);
  const s = pacing.summary();
  assert.equal(s.frames, 8);
  assert.equal(s.coalesced, 2);
  assert.equal(s.intervals, 6, "the hidden time is not an interval");
  assert.equal(s.p50_ms, 33.3);
  assert.equal(s.max_ms, 50);
});

test("frame pacing keeps at most capacity intervals (the latest) and ignores time going backwards", () => {
  const pacing = new FramePacing(3);
  for (const t of [0, 10, 30, 60, 100]) pacing.shown(t);   // intervals 10, 20, 30, 40 -> keeps 20, 30, 40
  assert.deepEqual(pacing.summary().intervals, 3);
  assert.equal(pacing.summary().p50_ms, 30);
  assert.equal(pacing.summary().max_ms, 40);
  pacing.shown(90);
  assert.equal(pacing.summary().intervals, 3);
  assert.equal(pacing.summary().max_ms, 40);
  assert.throws(() => new FramePacing(0), /positive integer/);
});

test("reset forgets frames, intervals and the last frame", () => {
  const pacing = new FramePacing(2);
  for (const t of [0, 10, 20, 30]) pacing.shown(t, 2);
  pacing.reset();
  assert.deepEqual(pacing.summary(), { frames: 0, coalesced: 0, intervals: 0, p50_ms: null, p99_ms: null, max_ms: null });
  pacing.shown(100);
  pacing.shown(133);
  assert.equal(pacing.summary().intervals, 1);
  assert.equal(pacing.summary().p50_ms, 33);
});
