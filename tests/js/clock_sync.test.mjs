import assert from "node:assert/strict";
import { test } from "node:test";

import { estimateClockOffset } from "../../interactive_gym/server/static/js/clock_sync.js";

// A fake network: the page's clock is `lag` ms behind the server; each ping takes `trips[i]` ms, split evenly.
function fakeNetwork(lag, trips) {
  let page = 1_000_000;
  let i = 0;
  return {
    now: () => page,
    ping: async () => {
      const trip = trips[i++];
      if (trip === null) throw new Error("lost");
      page += trip / 2;
      const answer = { server_t: page + lag };
      page += trip / 2;
      return answer;
    },
  };
}

const noSleep = async () => {};

test("the offset comes from the shortest round trip", async () => {
  const net = fakeNetwork(30_000, [200, 20, 80]);
  const est = await estimateClockOffset(net.ping, { samples: 3, now: net.now, sleep: noSleep });
  assert.equal(est.rtt_s, 0.02);
  assert.equal(est.offset_s, 30);
});

test("lost pings are skipped and no answer at all gives null", async () => {
  const net = fakeNetwork(-5_000, [null, 40]);
  const est = await estimateClockOffset(net.ping, { samples: 2, now: net.now, sleep: noSleep });
  assert.deepEqual(est, { offset_s: -5, rtt_s: 0.04 });
  const none = fakeNetwork(0, [null, null]);
  assert.equal(await estimateClockOffset(none.ping, { samples: 2, now: none.now, sleep: noSleep }), null);
});

test("an answer without a server time is not a sample", async () => {
  const est = await estimateClockOffset(async () => ({ server_t: "soon" }), { samples: 2, sleep: noSleep });
  assert.equal(est, null);
});

test("a p2p upload's clock spans its steps' page times", async () => {
  const { clockFromSteps } = await import("../../interactive_gym/server/static/js/clock_sync.js");
  const steps = [{ client_ts: 10.5 }, { client_ts: 11 }, { client_ts: 12.25 }];
  assert.deepEqual(clockFromSteps(steps, { offset_s: 2, rtt_s: 0.1 }),
    { started_at: 10.5, ended_at: 12.25, offset_s: 2, rtt_s: 0.1 });
  assert.deepEqual(clockFromSteps(steps), { started_at: 10.5, ended_at: 12.25, offset_s: null, rtt_s: null });
  assert.equal(clockFromSteps([]), undefined);
  assert.equal(clockFromSteps([{ client_ts: null }]), undefined);
});
