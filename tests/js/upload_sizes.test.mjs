// The shared size table (tests/fixtures/upload_sizes.json) through the page's measure: utf8Length of
// JSON.stringify, the figure the page compares with the upload cap. The server measures the same table
// (tests/unit/test_fast_socketio.py), so both sides agree on what fits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { utf8Length } from "../../interactive_gym/server/static/js/episode_uploader.js";

const TABLE = JSON.parse(readFileSync(new URL("../fixtures/upload_sizes.json", import.meta.url), "utf8"));

for (const { name, text, bytes } of TABLE.cases) {
  test(`page measures ${name} as ${bytes} bytes`, () => {
    const payload = JSON.parse(text);
    assert.equal(JSON.stringify(payload), text); // the table holds what the page would send
    assert.equal(utf8Length(JSON.stringify(payload)), bytes);
    assert.equal(Buffer.byteLength(text, "utf8"), bytes);
  });
}
