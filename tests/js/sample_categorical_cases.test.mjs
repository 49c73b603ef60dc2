// The shared table of how logits become an action (tests/fixtures/sample_categorical_cases.json) through the
// page's seeded_rng.js; browser/p2p_agents.py is tested against the same table (tests/unit/test_p2p_agents.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { argmax, sampleCategorical } from "../../interactive_gym/server/static/js/seeded_rng.js";

const TABLE = JSON.parse(readFileSync(new URL("../fixtures/sample_categorical_cases.json", import.meta.url), "utf8"));

test("every sampling case of the shared table", () => {
  for (const c of TABLE.sample) {
    assert.equal(sampleCategorical(c.logits, c.temperature, () => c.u), c.expected, JSON.stringify(c));
  }
});

test("every argmax case of the shared table", () => {
  for (const c of TABLE.argmax) assert.equal(argmax(c.values), c.expected, JSON.stringify(c));
});
