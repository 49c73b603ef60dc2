// Pure packet model: errors leave the model untouched, change reports drive the Renderer correctly.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyPacket,
  createModel,
  drawOrder,
  PacketError,
  parseColor,
  sameSpec,
  specFor,
} from "../../interactive_gym/server/static/js/packet_apply.js";

const full = (extra = {}) => ({ v: 1, seq: 1, full: true, size: [100, 50], bg: "#101018", ...extra });
const rect = (id, extra = {}) => ({ t: "rect", id, x: 0, y: 0, w: 5, h: 5, ...extra });

function modelWith(objects, transient = []) {
  const model = createModel();
  applyPacket(model, full({ objects, transient }));
  return model;
}

test("a full packet builds the model with defaults filled in", () => {
  const model = createModel();
  const result = applyPacket(model, full({ objects: [rect("a", { c: "#ff0000" })] }));
  assert.deepEqual(model.objects.get("a"), { t: "rect", id: "a", x: 0, y: 0, w: 5, h: 5, d: 0, c: "#ff0000", s: null, sw: 1 });
  assert.deepEqual([...result.changed], ["o:a"]);
  assert.equal(result.resized, true);
  assert.equal(result.backgroundChanged, true);
  assert.equal(model.seq, 1);
});

test("a patch changes only the named fields and reports the key", () => {
  const model = modelWith([rect("a"), rect("b")]);
  const result = applyPacket(model, { v: 1, seq: 2, full: false, objects: [{ id: "b", x: 7 }] });
  assert.equal(model.objects.get("b").x, 7);
  assert.equal(model.objects.get("b").w, 5);
  assert.deepEqual([...result.changed], ["o:b"]);
  assert.equal(result.restack, false);
});

test("a depth change in a patch asks for restacking", () => {
  const model = modelWith([rect("a"), rect("b")]);
  assert.equal(applyPacket(model, { v: 1, seq: 2, full: false, objects: [{ id: "a", d: 3 }] }).restack, true);
  assert.deepEqual(drawOrder(model).map((item) => item.key), ["o:b", "o:a"]);
});

test("removal and implied order: kept ids keep their order, new ids go on top", () => {
  const model = modelWith([rect("a"), rect("b"), rect("c")]);
  const result = applyPacket(model, { v: 1, seq: 2, full: false, remove: ["b"], objects: [rect("d")] });
  assert.deepEqual(model.order, ["a", "c", "d"]);
  assert.deepEqual([...result.removed], ["o:b"]);
  assert.equal(result.restack, true);
});

test("an explicit order replaces the stacking", () => {
  const model = modelWith([rect("a"), rect("b")]);
  applyPacket(model, { v: 1, seq: 2, full: false, order: ["b", "a"] });
  assert.deepEqual(drawOrder(model).map((item) => item.key), ["o:b", "o:a"]);
});

test("draw order: depth first, then persistent before transient, then draw order", () => {
  const model = modelWith(
    [rect("low", { d: -1 }), rect("a"), rect("high", { d: 2 })],
    [{ t: "circle", x: 0, y: 0, r: 1 }, { t: "circle", x: 0, y: 0, r: 1, d: 2 }, { t: "circle", x: 1, y: 0, r: 1 }],
  );
  assert.deepEqual(drawOrder(model).map((item) => item.key), ["o:low", "o:a", "t:0", "t:2", "o:high", "t:1"]);
});

test("a full packet over an existing model removes objects it does not list", () => {
  const model = modelWith([rect("a"), rect("b")], [{ t: "circle", x: 0, y: 0, r: 1 }]);
  const result = applyPacket(model, full({ seq: 7, objects: [rect("b")] }));
  assert.deepEqual([...result.removed].sort(), ["o:a", "t:0"]);
  assert.deepEqual(model.order, ["b"]);
  assert.equal(result.resized, false);
});

test("transient objects are matched by index: unchanged ones are not reported", () => {
  const circle = { t: "circle", x: 1, y: 1, r: 1 };
  const model = modelWith([], [circle, { ...circle, x: 2 }]);
  const result = applyPacket(model, { v: 1, seq: 2, full: false, transient: [circle, { ...circle, x: 3 }] });
  assert.deepEqual([...result.changed], ["t:1"]);
  const gone = applyPacket(model, { v: 1, seq: 3, full: false });
  assert.deepEqual([...gone.removed], ["t:0", "t:1"]);
  assert.equal(model.transient.length, 0);
});

test("specFor finds persistent and transient specs", () => {
  const model = modelWith([rect("a")], [{ t: "circle", x: 0, y: 0, r: 1 }]);
  assert.equal(specFor(model, "o:a").t, "rect");
  assert.equal(specFor(model, "t:0").t, "circle");
  assert.equal(specFor(model, "t:1"), undefined);
  assert.equal(specFor(model, "x"), undefined);
});

const invalid = [
  ["not an object", [1, 2]],
  ["wrong version", { v: 2, seq: 1, full: true, size: [1, 1], bg: "#000000" }],
  ["no seq", { v: 1, full: true, size: [1, 1], bg: "#000000" }],
  ["full without size", { v: 1, seq: 1, full: true, bg: "#000000" }],
  ["bad size", full({ size: [0, 5] })],
  ["unknown type", full({ objects: [{ t: "star", id: "s" }] })],
  ["missing field", full({ objects: [{ t: "rect", id: "r", x: 0, y: 0, w: 1 }] })],
  ["foreign field", full({ objects: [rect("r", { r: 3 })] })],
  ["object without id", full({ objects: [{ t: "rect", x: 0, y: 0, w: 1, h: 1 }] })],
  ["bad colour", full({ objects: [rect("r", { c: "red" })] })],
  ["bad number", full({ objects: [rect("r", { x: "1" })] })],
  ["odd point list", full({ transient: [{ t: "line", p: [0, 0, 1] }] })],
  ["objects not a list", full({ objects: {} })],
  ["bad transient", full({ transient: [null] })],
  ["bad text", full({ transient: [{ t: "text", x: 0, y: 0, text: 5 }] })],
];
for (const [name, packet] of invalid) {
  test(`invalid packet rejected without touching the model: ${name}`, () => {
    const model = modelWith([rect("keep")]);
    const before = JSON.stringify([...model.objects]);
    assert.throws(() => applyPacket(model, packet), PacketError);
    assert.equal(JSON.stringify([...model.objects]), before);
    assert.equal(model.seq, 1);
  });
}

const badDiffs = [
  ["patch of unknown id", { objects: [{ id: "ghost", x: 1 }] }],
  ["patch with foreign field", { objects: [{ id: "keep", r: 1 }] }],
  ["patch with bad value", { objects: [{ id: "keep", x: null }] }],
  ["remove unknown id", { remove: ["ghost"] }],
  ["order missing an id", { objects: [rect("new")], order: ["keep"] }],
  ["order with a duplicate", { order: ["keep", "keep"] }],
  ["bad transient after valid objects", { objects: [{ id: "keep", x: 9 }], transient: [{ t: "rect" }] }],
];
for (const [name, body] of badDiffs) {
  test(`invalid diff rejected without touching the model: ${name}`, () => {
    const model = modelWith([rect("keep")]);
    assert.throws(() => applyPacket(model, { v: 1, seq: 2, full: false, ...body }), (error) => error.code === "invalid");
    assert.equal(model.objects.get("keep").x, 0);
    assert.deepEqual(model.order, ["keep"]);
    assert.equal(model.seq, 1);
  });
}

test("a diff that skips a frame, repeats one, or comes first is a gap", () => {
  const fresh = createModel();
  assert.throws(() => applyPacket(fresh, { v: 1, seq: 1, full: false }), (error) => error.code === "gap");
  const model = modelWith([]);
  assert.throws(() => applyPacket(model, { v: 1, seq: 3, full: false }), (error) => error.code === "gap");
  assert.throws(() => applyPacket(model, { v: 1, seq: 1, full: false }), (error) => error.code === "gap");
  applyPacket(model, { v: 1, seq: 2, full: false });
  assert.equal(model.seq, 2);
});

test("version errors say which version the renderer reads", () => {
  assert.throws(() => applyPacket(createModel(), { v: 9, seq: 1, full: true }), /version 9; this renderer reads 1/);
});

test("parseColor", () => {
  assert.deepEqual(parseColor("#ff8000"), { color: 0xff8000, alpha: 1 });
  assert.deepEqual(parseColor("#00000080"), { color: 0, alpha: 128 / 255 });
  assert.equal(parseColor(null), null);
  assert.throws(() => parseColor("#fff"), PacketError);
});

test("sameSpec compares point lists by value", () => {
  assert.equal(sameSpec({ t: "line", p: [1, 2, 3, 4] }, { t: "line", p: [1, 2, 3, 4] }), true);
  assert.equal(sameSpec({ t: "line", p: [1, 2, 3, 4] }, { t: "line", p: [1, 2, 3, 5] }), false);
  assert.equal(sameSpec({ t: "line", p: [1, 2] }, { t: "line", p: [1, 2], d: 0 }), false);
});
