import assert from "node:assert/strict";
import { test } from "node:test";
import { waitingText } from "../../interactive_gym/server/static/js/waiting_text.js";

test("a group of three with two waiting asks for one more", () => {
  assert.equal(waitingText({ needed: 3, waiting: 2 }), "Waiting for 1 more participant to join… (2 of 3 here)");
});

test("alone in a group of three asks for two more", () => {
  assert.equal(waitingText({ needed: 3, waiting: 1 }), "Waiting for 2 more participants to join… (1 of 3 here)");
});

test("a pair with one waiting asks for one more", () => {
  assert.equal(waitingText({ needed: 2, waiting: 1 }), "Waiting for 1 more participant to join… (1 of 2 here)");
});

test("missing or hostile counts fall back to sane text", () => {
  assert.equal(waitingText({}), "Waiting for 1 more participant to join… (1 of 2 here)");
  assert.equal(waitingText({ needed: 2, waiting: 99 }), "Waiting for every participant to be ready… (2 of 2 here)");
  assert.equal(waitingText({ needed: -1, waiting: "x" }), "Waiting for 1 more participant to join… (1 of 2 here)");
});

test("a notice comes first", () => {
  assert.match(waitingText({ needed: 2, waiting: 1, notice: "The game could not start." }), /^The game could not start\. Waiting/);
});
