import { test } from "node:test";
import assert from "node:assert/strict";
import {
  MultiplayerPyodideGame, resolveMyPlayerId,
} from "../../interactive_gym/server/static/js/pyodide_multiplayer_game.js";

class FakeSocket {
  constructor() { this.handlers = new Map(); this.emitted = []; }
  on(event, fn) { this.handlers.set(event, fn); }
  off(event, fn) { if (this.handlers.get(event) === fn) this.handlers.delete(event); }
  emit(event, data) { this.emitted.push([event, data]); }
  fire(event, data) { this.handlers.get(event)(data); }
}

function captureLogs(fn) {
  const lines = [];
  const orig = console.log;
  console.log = (...args) => lines.push(args.map(String).join(" "));
  try { fn(); } finally { console.log = orig; }
  return lines;
}

const READY = {
  game_id: "g7", players: [0, 1], player_subjects: { 0: "alice", 1: "bob" }, seed: 99,
  turn_config: { username: "1700:bob", credential: "cred", force_relay: true, expires_at: 1700 },
  rtc_configuration: {
    iceServers: [{ urls: ["turn:127.0.0.1:3478"], username: "1700:bob", credential: "cred" }],
    iceTransportPolicy: "relay",
  },
};

test("resolveMyPlayerId uses my_player_id, else player_subjects, else fails clearly", () => {
  assert.equal(resolveMyPlayerId({ my_player_id: "2" }, "x"), 2);
  assert.equal(resolveMyPlayerId(READY, "bob"), 1);
  assert.throws(() => resolveMyPlayerId(READY, "carol"), /does not list participant carol/);
});

test("pyodide_game_ready's turn_config reaches the WebRTCManager (seed task 3)", () => {
  const socket = new FakeSocket();
  // Player 1 answers, so no RTCPeerConnection is created before player 0's offer: runs under node.
  const game = new MultiplayerPyodideGame(socket, { subjectId: "bob", webrtcOptions: { monitorIntervalMs: 60000 } });
  let readyPayload = null;
  game.onGameReady = (d) => { readyPayload = d; };
  const logs = captureLogs(() => socket.fire("pyodide_game_ready", READY));
  try {
    assert.equal(game.turnConfig, READY.turn_config);
    assert.equal(game.myPlayerId, 1);
    assert.equal(game.seed, 99);
    const m = game.webrtcManager;
    assert.equal(m.gameId, "g7");
    assert.equal(m.myPlayerId, 1);
    assert.equal(m.rtcConfig, READY.rtc_configuration); // the server's RTCConfiguration, as it is
    assert.ok(logs.includes("[MultiplayerPyodide] TURN config received"));
    assert.ok(logs.some((l) => l.startsWith("[WebRTC] TURN servers configured")));
    assert.ok(!logs.some((l) => l.includes("cred")), "the credential is never logged");
    assert.equal(readyPayload, READY);
    assert.deepEqual([...m.peers.keys()], [0]); // waits for the lower id's offer
    assert.equal(m.isP2P(0), false);
  } finally {
    game.close();
  }
  assert.equal(socket.handlers.has("pyodide_game_ready"), false);
  assert.equal(socket.handlers.has("webrtc_signal"), false);
});

test("without turn_config there is no TURN entry and no relay policy", () => {
  const socket = new FakeSocket();
  const game = new MultiplayerPyodideGame(socket, { subjectId: "bob", webrtcOptions: { monitorIntervalMs: 60000 } });
  const logs = captureLogs(() => socket.fire("pyodide_game_ready", { ...READY, turn_config: null,
    rtc_configuration: { iceServers: [{ urls: ["stun:127.0.0.1:3478"] }], iceTransportPolicy: "all" } }));
  try {
    assert.equal(game.turnConfig, null);
    assert.deepEqual(game.webrtcManager.rtcConfig, { iceServers: [{ urls: ["stun:127.0.0.1:3478"] }],
      iceTransportPolicy: "all" });
    assert.ok(!logs.some((l) => l.includes("TURN")));
  } finally {
    game.close();
  }
});

test("relay fallback: send() before the DataChannel exists goes through p2p_input_relay", () => {
  const socket = new FakeSocket();
  const game = new MultiplayerPyodideGame(socket, { subjectId: "bob", webrtcOptions: { monitorIntervalMs: 60000 } });
  captureLogs(() => socket.fire("pyodide_game_ready", READY));
  try {
    const m = game.webrtcManager;
    assert.equal(m.send(0, new Uint8Array([1, 2, 3])), true);
    assert.equal(m.send(0, new Uint8Array(5000)), false); // larger than the server accepts on the relay
    assert.equal(m.send(5, new Uint8Array([1])), false); // not a peer
    const relayed = socket.emitted.filter(([e]) => e === "p2p_input_relay");
    assert.equal(relayed.length, 1);
    assert.deepEqual(relayed[0][1].to_player, 0);
    assert.deepEqual([...relayed[0][1].data], [1, 2, 3]);
    assert.equal(m.getStats().counts.relayOversize, 1);
    const got = [];
    m.onMessage = (peer, bytes, channel, path) => got.push([peer, [...bytes], channel, path]);
    socket.fire("p2p_input_relay", { game_id: "g7", from_player: 0, channel: "control", data: new Uint8Array([9]).buffer });
    socket.fire("p2p_input_relay", { game_id: "other", from_player: 0, data: new Uint8Array([8]).buffer });
    assert.deepEqual(got, [[0, [9], "control", "relay"]]);
    const stats = m.getStats().peers[0];
    assert.equal(stats.fallbackActive, true);
    assert.equal(stats.fallbackPeriods[0].reason, "connecting");
  } finally {
    game.close();
  }
  const stats = game.webrtcManager.getStats().peers[0];
  assert.equal(stats.fallbackActive, false); // close() ends the open period
  assert.notEqual(stats.fallbackPeriods[0].endMs, null);
});

test("turn_refresh renews this game's credentials once and ignores other games and repeats", () => {
  const socket = new FakeSocket();
  const game = new MultiplayerPyodideGame(socket, { subjectId: "bob", webrtcOptions: { monitorIntervalMs: 60000 } });
  captureLogs(() => socket.fire("pyodide_game_ready", READY));
  const renewed = {
    game_id: "g7",
    turn_config: { username: "2300:bob", credential: "cred2", force_relay: true, expires_at: 2300 },
    rtc_configuration: { iceServers: [{ urls: ["turn:127.0.0.1:3478"], username: "2300:bob", credential: "cred2" }],
      iceTransportPolicy: "relay" },
  };
  try {
    const m = game.webrtcManager;
    socket.fire("turn_refresh", { ...renewed, game_id: "other" });
    assert.equal(m.rtcConfig, READY.rtc_configuration);
    const logs = captureLogs(() => socket.fire("turn_refresh", renewed));
    assert.equal(m.rtcConfig, renewed.rtc_configuration);
    assert.equal(game.turnConfig, renewed.turn_config);
    assert.ok(logs.includes("[MultiplayerPyodide] TURN credentials renewed"));
    socket.fire("turn_refresh", { ...renewed }); // the same grant again (a reconnect): nothing to do
    assert.equal(m.getStats().counts.configUpdates, 1);
  } finally {
    game.close();
  }
  assert.equal(socket.handlers.has("turn_refresh"), false);
});
