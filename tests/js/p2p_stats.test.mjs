// The upload's network stats: connection type per peer link (direct, relay, server_relay), the TURN errors, the
// fallback periods closed when the stats are taken, and one RTT figure per peer named for what it measures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { IceErrorLog, RttSummary } from "../../interactive_gym/server/static/js/connection_stats.js";
import { buildUploadStats, peerConnectionType } from "../../interactive_gym/server/static/js/p2p_stats.js";

const SESSION = {
  rtt_ms: { p50: 40, p99: 60, samples: 9 }, rollbacks: { count: 0 }, frames: 120, frames_simulated: 120, stalls: 0,
  waited_frames: 0, desyncs: [], input_delay: 2, prediction_window: 8, dropped_packets: {}, bad_packets: 0,
  row_mismatches: 0, takeovers: [{ player: 1, frame: 30, episode: 0, t: 30 }],
};
const DIRECT = { type: "direct", localCandidateType: "host", remoteCandidateType: "host", protocol: "udp",
  relayProtocol: null };
const TURN = { type: "relay", localCandidateType: "relay", remoteCandidateType: "relay", protocol: "udp",
  relayProtocol: "udp" };

function peer({ connection = null, sentRelay = 0, receivedRelay = 0, periods = [], errors = [], rtts = [] } = {}) {
  const log = new IceErrorLog();
  for (const e of errors) log.add(e);
  const rtt = new RttSummary();
  for (const ms of rtts) rtt.add(ms);
  return {
    connection, connectionLog: connection ? [{ atMs: 5, gen: 1, ...connection }] : [], datachannelRtt: rtt.toJSON(),
    iceErrors: log.list(), fallbackPeriods: periods, fallbackTotalMs: 0,
    counts: { sentP2P: connection ? 50 : 0, sentRelay, receivedP2P: connection ? 50 : 0, receivedRelay },
  };
}

test("a link no DataChannel ever carried, whose packets went through the server, is server_relay", () => {
  assert.equal(peerConnectionType(peer({ sentRelay: 3 })), "server_relay");
  assert.equal(peerConnectionType(peer({ receivedRelay: 1 })), "server_relay");
  assert.equal(peerConnectionType(peer()), null); // nothing went either way yet
  assert.equal(peerConnectionType(peer({ connection: DIRECT, sentRelay: 9 })), "direct"); // fell back for a while
  assert.equal(peerConnectionType(peer({ connection: TURN })), "relay");
});

test("wrong TURN credentials: server_relay with the TURN errors, counted per kind, and the open period closed", () => {
  const unauthorized = { errorCode: 401, url: "turn:127.0.0.1:3478?transport=udp", errorText: "Unauthorized" };
  const errors = [{ ...unauthorized, atMs: 10 }, { ...unauthorized, atMs: 5010 }, { ...unauthorized, atMs: 10010 }];
  const transport = { turnConfigured: true, forceRelay: true, peers: {
    1: peer({ sentRelay: 200, receivedRelay: 190, errors, periods: [{ startMs: 3, endMs: null, reason: "connecting" }] }),
  } };
  const stats = buildUploadStats(SESSION, transport, {}, 12_000);
  assert.equal(stats.connection.type, "server_relay");
  assert.equal(stats.turn_used, false);
  assert.equal(stats.turn_configured, true);
  assert.deepEqual(stats.peers[1].ice_errors, [{ error_code: 401, url: unauthorized.url, error_text: "Unauthorized",
    count: 3, first_ms: 10, last_ms: 10010 }]);
  assert.deepEqual(stats.fallback_periods, [{ peer: 1, start_ms: 3, end_ms: 12_000, open: true, reason: "connecting" }]);
  assert.equal(stats.peers[1].datachannel_rtt_ms, null); // no DataChannel, no DataChannel RTT
  assert.deepEqual(stats.netcode_rtt_ms, SESSION.rtt_ms);
  assert.equal("rtt_ms" in stats || "rtt" in stats.peers[1], false); // no ambiguous RTT name left
  assert.deepEqual(stats.takeovers, SESSION.takeovers);
});

test("the game's type is its worst link; each peer keeps its own type and DataChannel RTT", () => {
  const transport = { peers: {
    1: peer({ connection: DIRECT, rtts: [0.4, 0.6] }),
    2: peer({ connection: TURN, rtts: [2] }),
    3: peer({ sentRelay: 4 }),
  } };
  const stats = buildUploadStats(SESSION, transport, {}, 1);
  assert.deepEqual(Object.fromEntries(Object.entries(stats.peers).map(([id, p]) => [id, p.type])),
    { 1: "direct", 2: "relay", 3: "server_relay" });
  assert.equal(stats.connection.type, "server_relay");
  assert.equal(stats.turn_used, true);
  assert.deepEqual(stats.peers[1].datachannel_rtt_ms, { count: 2, mean: 0.5, min: 0.4, max: 0.6, last: 0.6 });
  assert.deepEqual(stats.peers[1].log, [{ at_ms: 5, gen: 1, type: "direct", local_candidate: "host",
    remote_candidate: "host", protocol: "udp", relay_protocol: null }]);
  const noRelay = buildUploadStats(SESSION, { peers: { 1: transport.peers[1], 2: transport.peers[2] } }, {}, 1);
  assert.deepEqual(noRelay.connection, { type: "relay", local_candidate: "relay", remote_candidate: "relay",
    protocol: "udp", relay_protocol: "udp" });
});

test("a closed fallback period keeps its end; the ICE error log stays bounded", () => {
  const stats = buildUploadStats(SESSION, { peers: { 1: peer({ connection: DIRECT, periods: [
    { startMs: 1, endMs: 7, reason: "inputs channel closed" }] }) } }, {}, 99);
  assert.deepEqual(stats.fallback_periods, [{ peer: 1, start_ms: 1, end_ms: 7, open: false,
    reason: "inputs channel closed" }]);
  const log = new IceErrorLog(2);
  for (let i = 0; i < 100; i += 1) log.add({ errorCode: 701, url: `turn:h:${i % 3}`, errorText: "", atMs: i });
  assert.equal(log.list().length, 2);
  assert.equal(log.list().reduce((n, e) => n + e.count, 0) + log.dropped, 100);
});
