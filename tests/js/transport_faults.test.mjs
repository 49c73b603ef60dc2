import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FaultInjector, mulberry32, normalizeFaults, planDelivery,
} from "../../interactive_gym/server/static/js/transport_faults.js";

test("mulberry32 is deterministic per seed and uniform-ish", () => {
  const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
  const xs = Array.from({ length: 10000 }, () => a());
  const ys = Array.from({ length: 10000 }, () => b());
  assert.deepEqual(xs, ys);
  assert.notEqual(xs[0], c());
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
});

test("normalizeFaults validates and defaults", () => {
  assert.equal(normalizeFaults(undefined), null);
  assert.equal(normalizeFaults(null), null);
  assert.deepEqual(normalizeFaults({ rttMs: 100 }), { seed: 1, rttMs: 100, jitterMs: 0, loss: 0 });
  assert.throws(() => normalizeFaults({ loss: 1.5 }), /faults.loss/);
  assert.throws(() => normalizeFaults({ rttMs: -1 }), /faults.rttMs/);
  assert.throws(() => normalizeFaults({ latency: 10 }), /unknown key/);
  assert.throws(() => normalizeFaults({ seed: 1.5 }), /seed/);
  assert.throws(() => normalizeFaults("slow"), /must be an object/);
});

test("planDelivery: loss only on the unreliable channel, delay around rtt/2 within jitter", () => {
  const profile = normalizeFaults({ seed: 7, rttMs: 100, jitterMs: 30, loss: 0.1 });
  const rand = mulberry32(7);
  let drops = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const { drop, delayMs } = planDelivery(rand, profile, false);
    if (drop) drops++;
    assert.ok(delayMs >= 20 && delayMs <= 80, `delay ${delayMs}`);
  }
  assert.ok(Math.abs(drops / n - 0.1) < 0.01, `loss ${drops / n}`);
  for (let i = 0; i < 1000; i++) assert.equal(planDelivery(rand, profile, true).drop, false);
  const zero = normalizeFaults({ rttMs: 0, jitterMs: 50 });
  for (let i = 0; i < 100; i++) assert.ok(planDelivery(rand, zero, false).delayMs >= 0);
});

function fakeClock() {
  const timers = [];
  let now = 0;
  return {
    env: { now: () => now, setTimer: (fn, ms) => timers.push({ at: now + ms, fn, seq: timers.length }) },
    advance(to) {
      now = to;
      timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      while (timers.length && timers[0].at <= now) timers.shift().fn();
    },
  };
}

test("FaultInjector drops the planned share and delivers the rest later", () => {
  const clock = fakeClock();
  const inj = new FaultInjector({ seed: 3, rttMs: 100, jitterMs: 0, loss: 0.25 }, clock.env);
  const got = [];
  for (let i = 0; i < 400; i++) inj.schedule(1, false, () => got.push(i));
  clock.advance(49);
  assert.equal(got.length, 0);
  clock.advance(50);
  assert.equal(got.length, inj.counts.sent);
  assert.equal(inj.counts.sent + inj.counts.dropped, 400);
  assert.ok(inj.counts.dropped > 60 && inj.counts.dropped < 140, `dropped ${inj.counts.dropped}`);
});

test("FaultInjector keeps reliable packets in order despite jitter, and never drops them", () => {
  const clock = fakeClock();
  const inj = new FaultInjector({ seed: 9, rttMs: 60, jitterMs: 25, loss: 0.9 }, clock.env);
  const got = [];
  for (let i = 0; i < 200; i++) inj.schedule("p", true, () => got.push(i));
  clock.advance(1000);
  assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i));
  assert.equal(inj.counts.dropped, 0);
});

test("same seed gives the same fate sequence", () => {
  const fates = (seed) => {
    const clock = fakeClock();
    const inj = new FaultInjector({ seed, rttMs: 10, loss: 0.3 }, clock.env);
    return Array.from({ length: 100 }, () => inj.schedule(0, false, () => {}));
  };
  assert.deepEqual(fates(5), fates(5));
  assert.notDeepEqual(fates(5), fates(6));
});
