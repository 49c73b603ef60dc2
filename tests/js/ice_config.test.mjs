import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_STUN_URLS, DEFAULT_TURN_URLS, buildIceServers, buildRtcConfiguration, optionsFromTurnConfig,
} from "../../interactive_gym/server/static/js/ice_config.js";

test("no credentials: STUN only, no TURN entry", () => {
  const { iceServers, hasTurn } = buildIceServers({});
  assert.equal(hasTurn, false);
  assert.deepEqual(iceServers, [{ urls: [...DEFAULT_STUN_URLS] }]);
});

test("credentials: STUN plus one TURN entry with default Open Relay URLs", () => {
  const { iceServers, hasTurn } = buildIceServers({ turnUsername: "u", turnCredential: "c" });
  assert.equal(hasTurn, true);
  assert.deepEqual(iceServers[1], { urls: [...DEFAULT_TURN_URLS], username: "u", credential: "c" });
  assert.ok(DEFAULT_TURN_URLS.every((u) => u.includes("openrelay.metered.ca")));
});

test("explicit URLs replace the defaults; empty STUN list means no STUN", () => {
  const { iceServers } = buildIceServers({
    turnUsername: "u", turnCredential: "c", turnUrls: ["turn:127.0.0.1:3478?transport=tcp"], stunUrls: [],
  });
  assert.deepEqual(iceServers, [{ urls: ["turn:127.0.0.1:3478?transport=tcp"], username: "u", credential: "c" }]);
});

test("half a credential and bad URLs are configuration errors", () => {
  assert.throws(() => buildIceServers({ turnUsername: "u" }), /together/);
  assert.throws(() => buildIceServers({ turnCredential: "c" }), /together/);
  assert.throws(() => buildIceServers({ stunUrls: ["turn:x"] }), /stunUrls entry/);
  assert.throws(() => buildIceServers({ turnUrls: ["http://x"] }), /turnUrls entry/);
  assert.throws(() => buildIceServers({ turnUrls: "turn:x" }), /array/);
  assert.throws(() => buildIceServers({ turnUrls: ["turn:"] }), /turnUrls entry/);
});

test("forceRelay sets iceTransportPolicy relay and needs TURN", () => {
  const on = buildRtcConfiguration({ turnUsername: "u", turnCredential: "c", forceRelay: true, stunUrls: [] });
  assert.equal(on.config.iceTransportPolicy, "relay");
  assert.equal(on.hasTurn, true);
  const off = buildRtcConfiguration({ turnUsername: "u", turnCredential: "c" });
  assert.equal(off.config.iceTransportPolicy, "all");
  assert.throws(() => buildRtcConfiguration({ forceRelay: true }), /forceRelay needs TURN/);
});

test("turn_config from pyodide_game_ready maps to the seed's option names", () => {
  const opts = optionsFromTurnConfig(
    { username: "1700:p", credential: "xyz", force_relay: true, urls: ["turn:h:1"], expires_at: 1700 },
    { stun_urls: ["stun:h:2"] },
  );
  assert.deepEqual(opts, {
    turnUsername: "1700:p", turnCredential: "xyz", forceRelay: true, turnUrls: ["turn:h:1"], stunUrls: ["stun:h:2"],
  });
  assert.deepEqual(optionsFromTurnConfig(null), {});
  const fromIce = optionsFromTurnConfig(null, {
    ice_servers: [{ urls: ["stun:a:1", "stun:b:2"] }, { urls: "stun:c:3" }, { urls: ["turn:t:1"], username: "u", credential: "c" }],
  });
  assert.deepEqual(fromIce, { stunUrls: ["stun:a:1", "stun:b:2", "stun:c:3"] });
  assert.deepEqual(optionsFromTurnConfig(null, { stun_urls: [] }), { stunUrls: [] });
  assert.deepEqual(optionsFromTurnConfig({ username: "u", credential: "c" }), {
    turnUsername: "u", turnCredential: "c", forceRelay: false,
  });
});
