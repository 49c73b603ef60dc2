import { test } from "node:test";
import assert from "node:assert/strict";
import { applyPacket, createModel } from "../../interactive_gym/server/static/js/packet_apply.js";
import {
  MAX_SMOOTHING_FRAMES, RollbackSmoothing, correctedKeys, distance, glidePosition, positionOf,
} from "../../interactive_gym/server/static/js/rollback_smoothing.js";

const model = (objects) => ({ objects: new Map(Object.entries(objects)) });
const rect = (x, y) => ({ t: "rect", x, y, w: 10, h: 10 });
const result = (changed = [], removed = []) => ({ changed: new Set(changed), removed: new Set(removed) });

test("positionOf: finite numeric x and y only", () => {
  assert.deepEqual(positionOf(rect(3, 4)), { x: 3, y: 4 });
  assert.deepEqual(positionOf({ t: "text", x: 0, y: -2 }), { x: 0, y: -2 });
  for (const spec of [null, undefined, { t: "line", p: [0, 0, 1, 1] }, { x: 1 }, { x: "1", y: 2 },
    { x: NaN, y: 0 }, { x: 0, y: Infinity }]) {
    assert.equal(positionOf(spec), null, JSON.stringify(spec));
  }
});

test("distance is Euclidean", () => {
  assert.equal(distance({ x: 0, y: 0 }, { x: 3, y: 4 }), 5);
  assert.equal(distance({ x: 2, y: 2 }, { x: 2, y: 2 }), 0);
});

test("glidePosition covers 1/framesLeft of the way; the last frame is the target exactly", () => {
  assert.deepEqual(glidePosition({ x: 0, y: 0 }, { x: 30, y: -60 }, 3), { x: 10, y: -20 });
  assert.deepEqual(glidePosition({ x: 0, y: 0 }, { x: 30, y: -60 }, 2), { x: 15, y: -30 });
  assert.deepEqual(glidePosition({ x: 0.1, y: 0.1 }, { x: 0.3, y: 0.7 }, 1), { x: 0.3, y: 0.7 });
  for (const bad of [0, -1, 1.5, NaN, "2", undefined]) {
    assert.throws(() => glidePosition({ x: 0, y: 0 }, { x: 1, y: 1 }, bad), RangeError, String(bad));
  }
});

test("a glide toward a fixed target is linear and ends on it after the given frames", () => {
  for (let frames = 1; frames <= MAX_SMOOTHING_FRAMES; frames += 1) {
    let at = { x: 0, y: 0 };
    const target = { x: 40 * frames, y: 0 };
    const steps = [];
    for (let left = frames; left >= 1; left -= 1) {
      const next = glidePosition(at, target, left);
      steps.push(distance(at, next));
      at = next;
    }
    assert.deepEqual(at, target, `frames=${frames}`);
    for (const step of steps) assert.ok(Math.abs(step - 40) < 1e-9, `frames=${frames}: even steps, got ${steps}`);
  }
});

test("correctedKeys: persistent objects present before and after that moved, not excluded", () => {
  const shown = new Map([["o:a", { x: 0, y: 0 }], ["o:b", { x: 5, y: 5 }], ["o:me", { x: 1, y: 1 }],
    ["o:gone", { x: 0, y: 0 }], ["o:line", { x: 0, y: 0 }], ["t:0", { x: 0, y: 0 }], ["o:y", { x: 2, y: 2 }]]);
  const after = model({ a: rect(40, 0), b: rect(5, 5), me: rect(41, 1), fresh: rect(9, 9),
    line: { t: "line", p: [0, 0, 4, 4] }, y: rect(2, 3) });
  after.transient = [rect(50, 50)];
  const changed = ["o:a", "o:b", "o:me", "o:fresh", "o:line", "t:0", "o:y", "o:gone"];
  assert.deepEqual(correctedKeys(shown, after, changed, ["me"]), ["o:a", "o:y"]);
  assert.deepEqual(correctedKeys(shown, after, changed), ["o:a", "o:me", "o:y"], "nothing excluded");
  assert.deepEqual(correctedKeys(shown, after, ["o:b"]), [], "changed but not moved (a colour)");
  assert.deepEqual(correctedKeys(shown, after, []), [], "only what the packet changed");
});

test("without a correction nothing glides and nothing is counted", () => {
  const smoothing = new RollbackSmoothing();
  const m = model({ a: rect(40, 0) });
  assert.equal(smoothing.afterPacket(m, result(["o:a"])).size, 0);
  assert.equal(smoothing.afterPacket(m, result(["o:a"]), { frames: 3 }).size, 0, "frames alone start nothing");
  assert.deepEqual(smoothing.summary(), { corrections: 0, smoothed: 0, gliding: 0,
    jump_px: { n: 0, p50: null, max: null }, glide_step_px: { n: 0, p50: null, max: null } });
});

test("with 0 frames a correction is counted and drawn where the model has it", () => {
  const smoothing = new RollbackSmoothing();
  const before = model({ a: rect(0, 0) });
  const shown = smoothing.shownPositions(before);
  const draw = smoothing.afterPacket(model({ a: rect(30, 40) }), result(["o:a"]), { shown, frames: 0 });
  assert.equal(draw.size, 0);
  const summary = smoothing.summary();
  assert.equal(summary.corrections, 1);
  assert.equal(summary.smoothed, 0);
  assert.deepEqual(summary.jump_px, { n: 1, p50: 50, max: 50 });
  assert.equal(summary.glide_step_px.n, 0);
});

test("a corrected object glides over N frames, then is drawn from the model again", () => {
  const smoothing = new RollbackSmoothing();
  const shown = smoothing.shownPositions(model({ a: rect(0, 0), b: rect(7, 7) }));
  const m = model({ a: rect(30, 0), b: rect(7, 7) });
  assert.deepEqual([...smoothing.afterPacket(m, result(["o:a"]), { shown, frames: 3 })], [["o:a", { x: 10, y: 0 }]]);
  assert.equal(smoothing.summary().gliding, 1);
  assert.deepEqual([...smoothing.afterPacket(m, result([]))], [["o:a", { x: 20, y: 0 }]], "an untouched frame glides on");
  assert.deepEqual([...smoothing.afterPacket(m, result([]))], [["o:a", { x: 30, y: 0 }]]);
  assert.equal(smoothing.afterPacket(m, result([])).size, 0, "done: the model's position");
  const summary = smoothing.summary();
  assert.equal(summary.corrections, 1);
  assert.equal(summary.smoothed, 1);
  assert.equal(summary.gliding, 0);
  assert.deepEqual(summary.jump_px, { n: 1, p50: 30, max: 30 });
  assert.deepEqual(summary.glide_step_px, { n: 3, p50: 10, max: 10 });
});

test("a glide follows a target that keeps moving", () => {
  const smoothing = new RollbackSmoothing();
  const shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
  smoothing.afterPacket(model({ a: rect(40, 0) }), result(["o:a"]), { shown, frames: 2 }); // drawn at 20
  const draw = smoothing.afterPacket(model({ a: rect(80, 0) }), result(["o:a"])); // moved on by itself
  assert.deepEqual(draw.get("o:a"), { x: 80, y: 0 }, "the last frame of the glide is the model's position");
});

test("a second correction mid-glide starts from where the object is shown", () => {
  const smoothing = new RollbackSmoothing();
  let shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
  smoothing.afterPacket(model({ a: rect(30, 0) }), result(["o:a"]), { shown, frames: 3 }); // shown at 10
  shown = smoothing.shownPositions(model({ a: rect(30, 0) }));
  assert.deepEqual(shown.get("o:a"), { x: 10, y: 0 }, "the glide's position, not the model's");
  const draw = smoothing.afterPacket(model({ a: rect(10, 30) }), result(["o:a"]), { shown, frames: 3 });
  assert.deepEqual(draw.get("o:a"), { x: 10, y: 10 });
  assert.equal(smoothing.summary().corrections, 2);
  assert.deepEqual(smoothing.summary().jump_px.max, 30);
});

test("removed, new, excluded and transient objects never glide", () => {
  const smoothing = new RollbackSmoothing();
  let shown = smoothing.shownPositions(model({ a: rect(0, 0), me: rect(0, 0) }));
  let draw = smoothing.afterPacket(model({ a: rect(30, 0), me: rect(30, 0), fresh: rect(1, 1) }),
    result(["o:a", "o:me", "o:fresh", "t:0"]), { shown, frames: 3, exclude: ["me"] });
  assert.deepEqual([...draw.keys()], ["o:a"]);
  draw = smoothing.afterPacket(model({ me: rect(30, 0) }), result([], ["o:a"]));
  assert.equal(draw.size, 0, "a removed object's glide ends");
  assert.equal(smoothing.summary().gliding, 0);
  shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
  draw = smoothing.afterPacket(model({ a: { t: "polygon", p: [0, 0, 1, 1, 2, 0] } }), result(["o:a"]),
    { shown, frames: 3 });
  assert.equal(draw.size, 0, "no longer positioned: drawn as the model has it");
});

test("a glide whose object loses its position mid-way ends there", () => {
  const smoothing = new RollbackSmoothing();
  const shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
  smoothing.afterPacket(model({ a: rect(30, 0) }), result(["o:a"]), { shown, frames: 3 });
  assert.equal(smoothing.afterPacket(model({ a: { t: "line", p: [0, 0, 1, 1] } }), result(["o:a"])).size, 0);
  assert.equal(smoothing.summary().gliding, 0);
});

test("a correction with 0 frames ends a glide in progress", () => {
  const smoothing = new RollbackSmoothing();
  let shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
  smoothing.afterPacket(model({ a: rect(30, 0) }), result(["o:a"]), { shown, frames: 3 });
  shown = smoothing.shownPositions(model({ a: rect(30, 0) }));
  assert.equal(smoothing.afterPacket(model({ a: rect(60, 0) }), result(["o:a"]), { shown, frames: 0 }).size, 0);
  assert.equal(smoothing.summary().gliding, 0);
});

test("the glide never touches the model", () => {
  const smoothing = new RollbackSmoothing();
  const m = createModel();
  applyPacket(m, { v: 1, seq: 1, full: true, size: [100, 100], bg: "#000000", objects: [{ id: "a", t: "rect", x: 0, y: 0, w: 5, h: 5 }] });
  const shown = smoothing.shownPositions(m);
  const changed = applyPacket(m, { v: 1, seq: 2, full: false, objects: [{ id: "a", x: 30 }] });
  const spec = m.objects.get("a");
  const frozen = JSON.stringify(spec);
  const draw = smoothing.afterPacket(m, changed, { shown, frames: 3 });
  assert.deepEqual(draw.get("o:a"), { x: 10, y: 0 });
  assert.equal(JSON.stringify(m.objects.get("a")), frozen);
  assert.equal(m.objects.get("a").x, 30);
});

test("frames out of range are refused", () => {
  const smoothing = new RollbackSmoothing();
  for (const bad of [-1, MAX_SMOOTHING_FRAMES + 1, 1.5, "3", null]) {
    assert.throws(() => smoothing.afterPacket(model({}), result([]), { frames: bad }), RangeError, String(bad));
  }
  assert.equal(MAX_SMOOTHING_FRAMES, 10);
});

test("the measurements are bounded", () => {
  assert.throws(() => new RollbackSmoothing({ capacity: 0 }), TypeError);
  const smoothing = new RollbackSmoothing({ capacity: 4 });
  for (let i = 1; i <= 10; i += 1) {
    const shown = smoothing.shownPositions(model({ a: rect(0, 0) }));
    smoothing.afterPacket(model({ a: rect(i, 0) }), result(["o:a"]), { shown, frames: 0 });
  }
  const summary = smoothing.summary();
  assert.equal(summary.corrections, 10);
  assert.deepEqual(summary.jump_px, { n: 4, p50: 8, max: 10 }, "the last four: 7, 8, 9, 10");
});
