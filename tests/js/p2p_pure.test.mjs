import { test } from "node:test";
import assert from "node:assert/strict";
import { LatencyProbe, quantile } from "../../interactive_gym/server/static/js/latency_probe.js";
import { buildUploadStats, connectionSummary } from "../../interactive_gym/server/static/js/p2p_stats.js";
import { FrameTicker, framePeriodMs } from "../../interactive_gym/server/static/js/frame_ticker.js";
import { base64ToBytes, bytesToBase64 } from "../../interactive_gym/server/static/js/p2p_runtime.js";
import { faultsFromReady } from "../../interactive_gym/server/static/js/pyodide_multiplayer_game.js";

test("quantile is nearest-rank and null for no data", () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([5, 1, 3], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  assert.equal(quantile([4], 0), 4);
});

test("LatencyProbe: press -> first frame where the local avatar moved", () => {
  const probe = new LatencyProbe("a0", { windowMs: 500 });
  probe.frameDrawn(0, 1000, { a0: { x: 1, y: 1 }, a1: { x: 5, y: 5 } }); // first sighting is not a move
  probe.keyDown(10, 1010);
  assert.equal(probe.frameDrawn(40, 1040, { a0: { x: 1, y: 1 }, a1: { x: 6, y: 5 } }), null); // only the partner moved
  assert.equal(probe.frameDrawn(90, 1090, { a0: { x: 2, y: 1 }, a1: { x: 6, y: 5 } }, 84), 74);
  assert.deepEqual(probe.samples, [74]); // to the frame's tick
  assert.deepEqual(probe.drawnSamples, [80]); // to the end of its drawing
  assert.deepEqual(probe.moves, { a1: [1040], a0: [1090] });
  assert.deepEqual(probe.presses, [1010]);
  // A move without a pending press (e.g. a reset) yields no sample.
  assert.equal(probe.frameDrawn(120, 1120, { a0: { x: 3, y: 1 } }), null);
  assert.equal(probe.samples.length, 1);
});

test("LatencyProbe: a press that moves nothing expires instead of inflating the next sample", () => {
  const probe = new LatencyProbe("a0", { windowMs: 300 });
  probe.frameDrawn(0, 0, { a0: { x: 0, y: 0 } });
  probe.keyDown(10, 10); // into a wall
  probe.frameDrawn(400, 400, { a0: { x: 0, y: 0 } });
  assert.equal(probe.expired, 1);
  probe.frameDrawn(450, 450, { a0: { x: 1, y: 0 } }); // moved by something else later
  assert.deepEqual(probe.samples, []);
  probe.keyDown(500, 500);
  probe.keyDown(560, 560); // the latest press is the one being answered
  probe.frameDrawn(620, 620, { a0: { x: 2, y: 0 } });
  assert.deepEqual(probe.samples, [60]);
  const summary = probe.summary();
  assert.equal(summary.p50, 60);
  assert.equal(summary.count, 1);
  assert.equal(summary.expired, 1);
  assert.equal(summary.drawn.p50, 60);
});

test("LatencyProbe: frame samples count simulated frames from the press to the drawn move", () => {
  const probe = new LatencyProbe("a0", { windowMs: 500 });
  probe.frameDrawn(0, 0, { a0: { x: 0, y: 0 } }, 0, 10);
  probe.keyDown(5, 5, 10); // frame 10 is simulated next
  probe.frameDrawn(40, 40, { a0: { x: 0, y: 0 } }, 33, 11);
  probe.frameDrawn(73, 73, { a0: { x: 0, y: 0 } }, 66, 12);
  probe.frameDrawn(106, 106, { a0: { x: 1, y: 0 } }, 100, 13); // input delay 2: frame 12 shows it, 13 simulated
  assert.deepEqual(probe.frameSamples, [3]);
  assert.deepEqual(probe.samples, [95]);
  probe.keyDown(110, 110); // a page that gives no frame numbers still gets time samples
  probe.frameDrawn(140, 140, { a0: { x: 2, y: 0 } }, 133);
  assert.deepEqual(probe.frameSamples, [3]);
  assert.equal(probe.samples.length, 2);
  assert.deepEqual(probe.summary().frames, { p50: 3, p99: 3, max: 3 });
});

test("connectionSummary and buildUploadStats map transport and session figures to the upload's stats", () => {
  assert.equal(connectionSummary(null).type, null);
  const session = {
    rtt_ms: { p50: 101, p99: 140, samples: 12 }, rollbacks: { count: 3, frames: 7, mean_depth: 2.333, max_depth: 4 },
    frames: 300, frames_simulated: 307, stalls: 1, waited_frames: 2, desyncs: [], input_delay: 2,
    prediction_window: 8, dropped_packets: { malformed: 1 }, bad_packets: 0, row_mismatches: 0,
  };
  const transport = {
    turnConfigured: true, forceRelay: false, faults: { rttMs: 100, dropped: 4 },
    peers: {
      1: { connection: { type: "relay", localCandidateType: "relay", remoteCandidateType: "relay", protocol: "udp",
        relayProtocol: "tcp" }, connectionLog: [], datachannelRtt: null, iceErrors: [], fallbackTotalMs: 12,
      counts: { sentP2P: 10, sentRelay: 2, receivedP2P: 9, receivedRelay: 1 },
      fallbackPeriods: [{ startMs: 1, endMs: 13, reason: "connecting" }] },
    },
  };
  const stats = buildUploadStats(session, transport, { p50: 80, p99: 99 });
  assert.deepEqual(stats.connection, { type: "relay", local_candidate: "relay", remote_candidate: "relay",
    protocol: "udp", relay_protocol: "tcp" });
  assert.equal(stats.turn_used, true);
  assert.equal(stats.turn_configured, true);
  assert.deepEqual(stats.fallback_periods, [{ peer: 1, start_ms: 1, end_ms: 13, open: false, reason: "connecting" }]);
  assert.deepEqual(stats.packets, { sent_p2p: 10, sent_relay: 2, received_p2p: 9, received_relay: 1,
    dropped: { malformed: 1 }, bad: 0, row_mismatches: 0, faults: { rttMs: 100, dropped: 4 } });
  assert.deepEqual(stats.local_input_latency_ms, { p50: 80, p99: 99 });
  assert.equal(stats.rollbacks.mean_depth, 2.333);
  const none = buildUploadStats(session, null, {});
  assert.equal(none.connection.type, null);
  assert.equal(none.turn_used, false);
});

test("base64 helpers round-trip every byte value", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(base64ToBytes(bytesToBase64(bytes)), bytes);
  assert.equal(bytesToBase64(new Uint8Array([])), "");
});

test("faultsFromReady seeds the profile per player and is null without faults", () => {
  const ready = { config: { p2p: { faults: { seed: 7, rttMs: 100, jitterMs: 30, loss: 0.1 } } } };
  assert.deepEqual(faultsFromReady(ready, 1), { seed: 8, rttMs: 100, jitterMs: 30, loss: 0.1 });
  assert.equal(faultsFromReady({ config: { p2p: { faults: null } } }, 0), null);
  assert.equal(faultsFromReady({}, 0), null);
});

test("framePeriodMs validates fps", () => {
  assert.equal(framePeriodMs(50), 20);
  for (const bad of [0, -1, NaN, "30", 1000]) assert.throws(() => framePeriodMs(bad), TypeError);
});

test("FrameTicker (timer fallback) fires once per period on its own clock, skips a stall's burst and stops", (t) => {
  // The page's clock and timers are simulated: the schedule is checked exactly, whatever the machine's load.
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let clock = 1000;
  const times = [];
  const ticker = new FrameTicker(100, (now) => times.push(now), { useWorker: false, now: () => clock });
  ticker.start();
  const advance = (ms) => { for (let i = 0; i < ms; i += 1) { clock += 1; t.mock.timers.tick(1); } };
  advance(250);
  assert.equal(times.length, 26); // at 0, 10, ..., 250 ms
  assert.deepEqual(times.slice(0, 3), [1000, 1010, 1020]);
  // A stall of the page (the timer fires 200 ms late): one late frame, then the schedule restarts from now
  // instead of a burst of 20 frames.
  clock += 200;
  t.mock.timers.tick(10);
  const afterStall = times.length;
  advance(30);
  assert.ok(times.length - afterStall <= 4, `a burst after the stall: ${times.length - afterStall} frames`);
  ticker.stop();
  const count = times.length;
  advance(100);
  assert.equal(times.length, count, "no frame after stop()");
  assert.ok(times.every((v, i) => i === 0 || v >= times[i - 1]));
});
