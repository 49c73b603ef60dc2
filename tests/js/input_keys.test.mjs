// Keyboard capture: key names, press order, the tap rule, and the DOM shell on a plain EventTarget.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyboardInput, KeyState, normalizeKey } from "../../interactive_gym/server/static/js/input.js";

test("normalizeKey", () => {
  assert.equal(normalizeKey(" "), "Space");
  assert.equal(normalizeKey("Spacebar"), "Space");
  assert.equal(normalizeKey("A"), "a");
  assert.equal(normalizeKey("a"), "a");
  assert.equal(normalizeKey("Left"), "ArrowLeft");
  assert.equal(normalizeKey("Esc"), "Escape");
  assert.equal(normalizeKey("ArrowUp"), "ArrowUp");
  assert.equal(normalizeKey("Enter"), "Enter");
  assert.throws(() => normalizeKey(""), TypeError);
  assert.throws(() => normalizeKey(undefined), TypeError);
});

test("KeyState needs a non-empty key list", () => {
  assert.throws(() => new KeyState([]), /list of game keys/);
  assert.throws(() => new KeyState(), /list of game keys/);
});

test("held keys are ordered by press time, most recent last; repeats do not reorder", () => {
  const state = new KeyState(["ArrowLeft", "ArrowRight", " "]);
  assert.equal(state.down("ArrowLeft"), true);
  assert.equal(state.down("Space"), true);
  assert.equal(state.down("ArrowLeft"), false); // auto-repeat
  assert.deepEqual(state.heldKeys(), ["ArrowLeft", "Space"]);
  state.down("ArrowRight");
  state.up("ArrowLeft");
  assert.deepEqual(state.heldKeys(), ["Space", "ArrowRight"]);
  state.down("ArrowLeft");
  assert.deepEqual(state.heldKeys(), ["Space", "ArrowRight", "ArrowLeft"]);
});

test("keys the game does not use are ignored", () => {
  const state = new KeyState(["a"]);
  assert.equal(state.down("b"), false);
  assert.equal(state.up("b"), false);
  assert.deepEqual(state.heldKeys(), []);
});

test("tap rule: pressed and released between ticks counts for exactly the next tick", () => {
  const state = new KeyState(["a", "b"]);
  state.down("a");
  state.up("a");
  assert.deepEqual(state.heldKeys(), []);
  assert.deepEqual(state.sample(), ["a"]);
  assert.deepEqual(state.sample(), []);
});

test("sample merges taps and held keys by press time", () => {
  const state = new KeyState(["a", "b", "c"]);
  state.down("b");
  state.down("a");
  state.up("a"); // tapped after b was pressed
  state.down("c");
  assert.deepEqual(state.sample(), ["b", "a", "c"]);
  assert.deepEqual(state.sample(), ["b", "c"]);
});

test("a key tapped twice in one tick appears once, at its latest press", () => {
  const state = new KeyState(["a", "b"]);
  state.down("a");
  state.up("a");
  state.down("b");
  state.down("a");
  state.up("a");
  assert.deepEqual(state.sample(), ["b", "a"]);
});

test("releaseAll releases held keys; they still count as taps for the next tick", () => {
  const state = new KeyState(["a", "b"]);
  state.down("a");
  state.down("b");
  assert.equal(state.releaseAll(), true);
  assert.deepEqual(state.heldKeys(), []);
  assert.deepEqual(state.sample(), ["a", "b"]);
  assert.equal(state.releaseAll(), false);
});

function keyEvent(type, key, extra = {}) {
  return Object.assign(new Event(type, { cancelable: true }), { key, code: "", ...extra });
}

test("KeyboardInput tracks a target's key events and prevents default only for game keys", () => {
  const target = new EventTarget();
  const changes = [];
  const input = new KeyboardInput(target, { keys: ["ArrowLeft", "Space"], onChange: (held) => changes.push(held) });
  const arrow = keyEvent("keydown", "ArrowLeft");
  target.dispatchEvent(arrow);
  const other = keyEvent("keydown", "x");
  target.dispatchEvent(other);
  const space = keyEvent("keydown", " ");
  target.dispatchEvent(space);
  assert.equal(arrow.defaultPrevented, true);
  assert.equal(space.defaultPrevented, true);
  assert.equal(other.defaultPrevented, false);
  assert.deepEqual(input.heldKeys(), ["ArrowLeft", "Space"]);
  target.dispatchEvent(keyEvent("keyup", "ArrowLeft"));
  assert.deepEqual(changes, [["ArrowLeft"], ["ArrowLeft", "Space"], ["Space"]]);
  assert.deepEqual(input.sample(), ["ArrowLeft", "Space"]);
  assert.deepEqual(input.sample(), ["Space"]);
});

test("shortcuts with Ctrl/Alt/Meta keep the browser's default", () => {
  const target = new EventTarget();
  new KeyboardInput(target, { keys: ["r"] });
  const reload = keyEvent("keydown", "r", { ctrlKey: true });
  target.dispatchEvent(reload);
  assert.equal(reload.defaultPrevented, false);
});

test("a keyup reporting a shifted character releases the key pressed with the same code", () => {
  const target = new EventTarget();
  const input = new KeyboardInput(target, { keys: ["1"] });
  target.dispatchEvent(keyEvent("keydown", "1", { code: "Digit1" }));
  target.dispatchEvent(keyEvent("keyup", "!", { code: "Digit1", shiftKey: true }));
  assert.deepEqual(input.heldKeys(), []);
});

test("blur and a hidden document release every key", () => {
  const previous = globalThis.document;
  const doc = new EventTarget();
  doc.hidden = false;
  globalThis.document = doc;
  try {
    const target = new EventTarget();
    const input = new KeyboardInput(target, { keys: ["a", "b"] });
    target.dispatchEvent(keyEvent("keydown", "a"));
    target.dispatchEvent(new Event("blur"));
    assert.deepEqual(input.heldKeys(), []);
    target.dispatchEvent(keyEvent("keydown", "b"));
    doc.dispatchEvent(new Event("visibilitychange")); // still visible: nothing happens
    assert.deepEqual(input.heldKeys(), ["b"]);
    doc.hidden = true;
    doc.dispatchEvent(new Event("visibilitychange"));
    assert.deepEqual(input.heldKeys(), []);
    input.destroy();
  } finally {
    globalThis.document = previous;
  }
});

test("typing into form fields is not game input", () => {
  class FakeField extends EventTarget {
    tagName = "INPUT";
  }
  const field = new FakeField();
  const input = new KeyboardInput(field, { keys: ["a"] });
  const typed = keyEvent("keydown", "a");
  field.dispatchEvent(typed);
  assert.deepEqual(input.heldKeys(), []);
  assert.equal(typed.defaultPrevented, false);
});

test("destroy removes the listeners", () => {
  const target = new EventTarget();
  const input = new KeyboardInput(target, { keys: ["a"] });
  input.destroy();
  target.dispatchEvent(keyEvent("keydown", "a"));
  assert.deepEqual(input.heldKeys(), []);
});

test("KeyboardInput without a target or keys fails clearly", () => {
  assert.throws(() => new KeyboardInput(null, { keys: ["a"] }), /event target/);
  assert.throws(() => new KeyboardInput(new EventTarget(), {}), /list of game keys/);
});

test("forgetTaps drops uncounted taps and keeps held keys", () => {
  const target = new EventTarget();
  const input = new KeyboardInput(target, { keys: ["a", "b"] });
  target.dispatchEvent(keyEvent("keydown", "a"));
  target.dispatchEvent(keyEvent("keyup", "a"));
  target.dispatchEvent(keyEvent("keydown", "b"));
  input.forgetTaps();
  assert.deepEqual(input.sample(), ["b"]);
  assert.deepEqual(input.sample(), ["b"]);
});
