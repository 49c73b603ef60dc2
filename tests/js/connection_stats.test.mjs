import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FallbackLog, RttSummary, connectionChanged, describeConnection, findSelectedPair,
} from "../../interactive_gym/server/static/js/connection_stats.js";

function reports({ localType, remoteType, protocol = "udp", relayProtocol, viaTransport = true, rtt = 0.012 }) {
  const list = [
    { id: "L1", type: "local-candidate", candidateType: localType, protocol, relayProtocol },
    { id: "R1", type: "remote-candidate", candidateType: remoteType, protocol },
    { id: "L0", type: "local-candidate", candidateType: "host", protocol: "udp" },
    { id: "P0", type: "candidate-pair", localCandidateId: "L0", remoteCandidateId: "R1", state: "failed" },
    { id: "P1", type: "candidate-pair", localCandidateId: "L1", remoteCandidateId: "R1", state: "succeeded",
      nominated: true, currentRoundTripTime: rtt, bytesSent: 10, bytesReceived: 20 },
  ];
  if (viaTransport) list.push({ id: "T", type: "transport", selectedCandidatePairId: "P1" });
  return list;
}

test("host/host pair is direct", () => {
  const info = describeConnection(reports({ localType: "host", remoteType: "host" }));
  assert.equal(info.type, "direct");
  assert.equal(info.localCandidateType, "host");
  assert.equal(info.protocol, "udp");
  assert.equal(info.relayProtocol, null);
  assert.equal(info.rttMs, 12);
  assert.equal(info.packetsLost, null);
  assert.equal(info.bytesReceived, 20);
});

test("either side relayed makes the connection relay, with the relay protocol", () => {
  const a = describeConnection(reports({ localType: "relay", remoteType: "relay", protocol: "udp", relayProtocol: "tcp" }));
  assert.equal(a.type, "relay");
  assert.equal(a.relayProtocol, "tcp");
  const b = describeConnection(reports({ localType: "host", remoteType: "relay" }));
  assert.equal(b.type, "relay");
  assert.equal(b.relayProtocol, null);
  assert.equal(describeConnection(reports({ localType: "srflx", remoteType: "prflx" })).type, "direct");
});

test("without a transport report the nominated succeeded pair is used; nothing selected gives null", () => {
  const info = describeConnection(reports({ localType: "relay", remoteType: "host", viaTransport: false }));
  assert.equal(info.type, "relay");
  assert.equal(findSelectedPair([{ id: "x", type: "candidate-pair", state: "in-progress" }]), null);
  assert.equal(describeConnection([]), null);
});

test("packet loss is summed from inbound-rtp when present", () => {
  const list = reports({ localType: "host", remoteType: "host" });
  list.push({ id: "i1", type: "inbound-rtp", packetsLost: 3 }, { id: "i2", type: "inbound-rtp", packetsLost: 4 });
  assert.equal(describeConnection(list).packetsLost, 7);
});

test("connectionChanged compares type and candidate types only", () => {
  const a = { type: "direct", localCandidateType: "host", remoteCandidateType: "host", protocol: "udp", rttMs: 1 };
  assert.equal(connectionChanged(a, { ...a, rttMs: 5 }), false);
  assert.equal(connectionChanged(a, { ...a, type: "relay", localCandidateType: "relay" }), true);
  assert.equal(connectionChanged(null, a), true);
  assert.equal(connectionChanged(null, null), false);
});

test("RttSummary ignores junk and summarises", () => {
  const s = new RttSummary();
  [4, 2, NaN, -1, "x", 6].forEach((v) => s.add(v));
  assert.deepEqual(s.toJSON(), { count: 3, meanMs: 4, minMs: 2, maxMs: 6, lastMs: 6 });
  assert.deepEqual(new RttSummary().toJSON(), { count: 0, meanMs: null, minMs: null, maxMs: null, lastMs: null });
});

test("FallbackLog records open and closed periods and reports changes only", () => {
  const log = new FallbackLog();
  assert.equal(log.set(false, 0), false);
  assert.equal(log.set(true, 100, "channel closed"), true);
  assert.equal(log.set(true, 150), false);
  assert.deepEqual(log.periods(), [{ startMs: 100, endMs: null, reason: "channel closed" }]);
  assert.equal(log.totalMs(130), 30);
  assert.equal(log.set(false, 400), true);
  log.set(true, 1000);
  assert.deepEqual(log.periods().map((p) => [p.startMs, p.endMs]), [[100, 400], [1000, null]]);
  assert.equal(log.totalMs(1100), 400);
  log.periods()[0].startMs = -5; // callers get copies
  assert.equal(log.periods()[0].startMs, 100);
});
