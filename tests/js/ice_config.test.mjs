// The page uses the server's RTCConfiguration as it is: every case of the table the Python settings are tested
// against (tests/fixtures/rtc_configuration_cases.json) reaches RTCPeerConnection unchanged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  checkRtcConfiguration, describeRtcConfiguration, optionsFromTurnConfig,
} from "../../interactive_gym/server/static/js/ice_config.js";
import { WebRTCManager } from "../../interactive_gym/server/static/js/webrtc_manager.js";

const { cases } = JSON.parse(readFileSync(new URL("../fixtures/rtc_configuration_cases.json", import.meta.url)));

class FakeSocket {
  constructor() { this.handlers = new Map(); this.emitted = []; }
  on(event, fn) { this.handlers.set(event, fn); }
  off(event) { this.handlers.delete(event); }
  emit(event, data) { this.emitted.push([event, data]); }
}

/** Stands in for the browser's RTCPeerConnection: records the configuration it was built with. */
class FakePeerConnection {
  static made = [];
  constructor(config) {
    this.config = config;
    this.updates = [];
    FakePeerConnection.made.push(this);
  }
  createDataChannel(label) { return { label, readyState: "connecting", close() {} }; }
  async createOffer() { return { type: "offer", sdp: "v=0" }; }
  async setLocalDescription(d) { this.localDescription = d; }
  setConfiguration(config) { this.updates.push(config); }
  close() {}
}

function quietly(fn) {
  const orig = console.log;
  console.log = () => {};
  try { return fn(); } finally { console.log = orig; }
}

for (const c of cases) {
  test(`table: ${c.name}: handed to RTCPeerConnection as it is`, () => {
    const ready = { game_id: "g", turn_config: c.turn_config, rtc_configuration: structuredClone(c.rtc_configuration) };
    const options = optionsFromTurnConfig(ready.turn_config, ready);
    assert.equal(options.rtcConfiguration, ready.rtc_configuration); // the very object, not a rebuilt one
    if (c.turn_config) {
      assert.deepEqual([options.turnUsername, options.turnCredential, options.forceRelay],
        [c.turn_config.username, c.turn_config.credential, c.turn_config.force_relay]);
    } else {
      assert.equal("turnUsername" in options, false);
    }
    assert.deepEqual(describeRtcConfiguration(options.rtcConfiguration),
      { hasTurn: c.has_turn, forceRelay: c.force_relay });

    globalThis.RTCPeerConnection = FakePeerConnection;
    FakePeerConnection.made = [];
    const manager = quietly(() => new WebRTCManager(new FakeSocket(), "g", 0, { ...options, monitorIntervalMs: 60000 }));
    try {
      manager.connect([0, 1]); // player 0 offers to player 1: a connection is made at once
      assert.equal(FakePeerConnection.made.length, 1);
      assert.equal(FakePeerConnection.made[0].config, ready.rtc_configuration);
      assert.deepEqual(FakePeerConnection.made[0].config, c.rtc_configuration); // and nothing was changed in it
      assert.equal(manager.hasTurn, c.has_turn);
      assert.equal(manager.forceRelay, c.force_relay);
      const stats = manager.getStats();
      assert.equal(stats.turnConfigured, c.has_turn);
      assert.equal(stats.forceRelay, c.force_relay);
    } finally {
      manager.close();
      delete globalThis.RTCPeerConnection;
    }
  });
}

test("renewed credentials (turn_refresh) reach live connections and every later one, as they are", () => {
  const [first, renewed] = cases.filter((c) => c.turn_config?.expires_at);
  globalThis.RTCPeerConnection = FakePeerConnection;
  FakePeerConnection.made = [];
  const manager = quietly(() => new WebRTCManager(new FakeSocket(), "g", 0,
    { rtcConfiguration: first.rtc_configuration, monitorIntervalMs: 60000 }));
  try {
    manager.connect([1]);
    manager.setRtcConfiguration(renewed.rtc_configuration);
    assert.deepEqual(FakePeerConnection.made[0].updates, [renewed.rtc_configuration]);
    assert.equal(manager.rtcConfig, renewed.rtc_configuration);
    assert.equal(manager.getStats().counts.configUpdates, 1);
    assert.throws(() => manager.setRtcConfiguration({ iceServers: "x" }), /iceServers array/);
    assert.equal(manager.rtcConfig, renewed.rtc_configuration); // a malformed renewal changes nothing
  } finally {
    manager.close();
    delete globalThis.RTCPeerConnection;
  }
});

test("a missing or malformed rtc_configuration is a clear error, never a rebuilt default", () => {
  assert.throws(() => optionsFromTurnConfig(null, {}), /rtc_configuration must be an object/);
  assert.throws(() => optionsFromTurnConfig(null, { rtc_configuration: { iceServers: [] } }), /iceTransportPolicy/);
  assert.throws(() => checkRtcConfiguration({ iceServers: [], iceTransportPolicy: "none" }), /"all" or "relay"/);
});

test("the seed's TURN options without the server's configuration are refused (no TURN URLs in the page)", () => {
  assert.throws(() => new WebRTCManager(new FakeSocket(), "g", 0, { turnUsername: "u", turnCredential: "c" }),
    /need rtcConfiguration/);
  assert.throws(() => new WebRTCManager(new FakeSocket(), "g", 0, { forceRelay: true }), /need rtcConfiguration/);
  const bare = new WebRTCManager(new FakeSocket(), "g", 0, { monitorIntervalMs: 60000 });
  try {
    assert.deepEqual(bare.rtcConfig, { iceServers: [], iceTransportPolicy: "all" }); // host candidates only
  } finally {
    bare.close();
  }
});

test("the page has no TURN or STUN URL of its own", () => {
  const dir = new URL("../../interactive_gym/server/static/js/", import.meta.url);
  for (const file of ["ice_config.js", "webrtc_manager.js", "pyodide_multiplayer_game.js"]) {
    const source = readFileSync(new URL(file, dir), "utf8");
    assert.doesNotMatch(source, /openrelay|["'`](turns?|stuns?):[a-z0-9]/i, file);
  }
});
