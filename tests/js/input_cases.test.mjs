// The shared input table (tests/fixtures/input_cases.json) through the page's keyboard code: the same cases
// tests/unit/test_input_cases.py runs through controls.py, so the page and Python follow one rule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KEY_ALIASES, KeyboardInput, normalizeKey } from "../../interactive_gym/server/static/js/input.js";

const TABLE = JSON.parse(readFileSync(new URL("../fixtures/input_cases.json", import.meta.url), "utf8"));

function gameKeys(mappingName) {
  return [...new Set(TABLE.mappings[mappingName].controls.flatMap(([keys]) => keys))];
}

function keyEvent(type, key, code) {
  return Object.assign(new Event(type, { cancelable: true }), { key, code: code ?? "" });
}

test("the table has cases and every tick case has ticks", () => {
  assert.ok(TABLE.tick_cases.length >= 20);
  for (const c of TABLE.tick_cases) assert.ok(c.events.some((e) => "tick" in e), c.name);
});

for (const c of TABLE.tick_cases) {
  test(`tick rule: ${c.name}`, () => {
    const keys = gameKeys(c.mapping);
    const target = new EventTarget();
    const sent = [];
    const input = new KeyboardInput(target, { keys, onChange: (held) => sent.push(held) });
    // What the page reports as held (server mode sends it on every change): press order, no repeats.
    let reference = [];
    for (const [i, event] of c.events.entries()) {
      const where = `${c.name}, event ${i} ${JSON.stringify(event)}`;
      const before = reference;
      const reported = sent.length;
      if ("down" in event) {
        target.dispatchEvent(keyEvent("keydown", event.down, event.code));
        const key = normalizeKey(event.down);
        if (keys.includes(key) && !reference.includes(key)) reference = [...reference, key];
      } else if ("up" in event) {
        target.dispatchEvent(keyEvent("keyup", event.up, event.code));
        const key = normalizeKey(event.up);
        reference = reference.filter((k) => k !== key);
      } else if ("blur" in event) {
        target.dispatchEvent(new Event("blur"));
        reference = [];
      } else {
        assert.deepEqual(input.sample(), event.tick, where);
      }
      assert.deepEqual(input.heldKeys(), reference, where);
      // Server mode sends the held list from onChange: once per change, never for a change-less event.
      const changed = JSON.stringify(before) !== JSON.stringify(reference);
      assert.deepEqual(sent.slice(reported), changed ? [reference] : [], where);
    }
    input.destroy();
  });
}

test("KEY_ALIASES is the table's alias list", () => {
  assert.deepEqual(Object.fromEntries(KEY_ALIASES), TABLE.aliases);
});

test("normalizeKey gives the table's canonical names", () => {
  for (const [raw, expected] of TABLE.normalise) assert.equal(normalizeKey(raw), expected, JSON.stringify(raw));
});

test("normalizeKey does not treat Object.prototype names as aliases", () => {
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    assert.equal(normalizeKey(name), name);
  }
});
