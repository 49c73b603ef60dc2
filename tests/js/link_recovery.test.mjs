import assert from "node:assert/strict";
import { test } from "node:test";

import { CONNECT_TIMEOUT_MS, RECOVERY_TIMEOUT_MS, recoveryWaitMs } from "../../interactive_gym/server/static/js/link_recovery.js";

const ICE_STATES = [null, "new", "checking", "connected", "completed", "disconnected", "failed", "closed"];

test("only a connection never up and still checking gets the long connect wait", () => {
  for (const iceState of ICE_STATES) {
    for (const wasHealthy of [false, true]) {
      const connecting = !wasHealthy && (iceState === "new" || iceState === "checking");
      assert.equal(recoveryWaitMs({ iceState, wasHealthy }), connecting ? CONNECT_TIMEOUT_MS : RECOVERY_TIMEOUT_MS,
        `${iceState} wasHealthy=${wasHealthy}`);
    }
  }
});

test("a slow TURN-over-TLS connection is not replaced before it can finish", () => {
  // Found in the deployment test: ICE over turns: took 8 s on a busy machine; at 5 s the offerer started a new
  // connection (new allocations, the checks from the start), so the DataChannel never opened.
  assert.ok(recoveryWaitMs({ iceState: "checking", wasHealthy: false }) > 8000);
  assert.equal(recoveryWaitMs({ iceState: "disconnected", wasHealthy: true }), RECOVERY_TIMEOUT_MS);
});

test("the options set both waits; the connect wait is never shorter than the recovery wait", () => {
  const options = { recoveryTimeoutMs: 200, connectTimeoutMs: 900 };
  assert.equal(recoveryWaitMs({ iceState: "checking", wasHealthy: false }, options), 900);
  assert.equal(recoveryWaitMs({ iceState: "failed", wasHealthy: false }, options), 200);
  assert.equal(recoveryWaitMs({ iceState: "new", wasHealthy: false }, { recoveryTimeoutMs: 3000, connectTimeoutMs: 100 }), 3000);
});
