import { test } from "node:test";
import assert from "node:assert/strict";
import { pageFacts, throttle, turnPretest } from "../../interactive_gym/server/static/js/screening.js";

const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

test("facts carry userAgentData brands and the mobile flag when the browser has them", () => {
  const nav = { userAgent: UA, maxTouchPoints: 0,
    userAgentData: { mobile: false, brands: [{ brand: "Chromium", version: "120" }, { brand: "Not A;Brand", version: "8" }] } };
  const win = { innerWidth: 1280.4, innerHeight: 719.6, WebAssembly: { instantiate() {} }, RTCPeerConnection: function P() {} };
  assert.deepEqual(pageFacts(nav, win), { user_agent: UA, brands: ["Chromium/120", "Not A;Brand/8"], touch_points: 0,
    width: 1280, height: 720, webassembly: true, webrtc: true, ua_mobile: false });
});

test("without userAgentData (Firefox, Safari) there are no brands and no mobile flag; missing features are false", () => {
  const facts = pageFacts({ userAgent: "Firefox/115", maxTouchPoints: 5 }, { innerWidth: 800, innerHeight: 600 });
  assert.deepEqual(facts, { user_agent: "Firefox/115", brands: [], touch_points: 5, width: 800, height: 600,
    webassembly: false, webrtc: false });
  assert.equal("ua_mobile" in facts, false);
});

test("facts stay inside the schema's bounds whatever the browser says", () => {
  const nav = { userAgent: "x".repeat(600), maxTouchPoints: 1e9,
    userAgentData: { brands: Array.from({ length: 20 }, (_, i) => ({ brand: "b".repeat(200), version: String(i) })) } };
  const facts = pageFacts(nav, { innerWidth: NaN, innerHeight: -5, WebAssembly: null });
  assert.equal(facts.user_agent.length, 512);
  assert.equal(facts.brands.length, 16);
  assert.ok(facts.brands.every((b) => b.length <= 100));
  assert.equal(facts.touch_points, 1000);
  assert.equal(facts.width, 0);
  assert.equal(facts.height, 0);
  assert.equal(facts.webassembly, false);
});

class FakePeer {
  constructor(config) { this.config = config; this.closed = false; FakePeer.last = this; }
  createDataChannel() {}
  async createOffer() { return { type: "offer" }; }
  async setLocalDescription() { queueMicrotask(() => FakePeer.gather(this)); }
  close() { this.closed = true; }
}

test("the TURN pre-test gathers relay candidates only and reports the first relay candidate", async () => {
  FakePeer.gather = (pc) => {
    pc.onicecandidate({ candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host" } });
    pc.onicecandidate({ candidate: { candidate: "candidate:2 1 udp 1 127.0.0.1 49160 typ relay raddr 0.0.0.0 rport 0" } });
  };
  let t = 100;
  const result = await turnPretest({ ice_servers: [{ urls: "turn:127.0.0.1:3478" }], timeout_ms: 1000 },
    { Peer: FakePeer, now: () => (t += 40) });
  assert.deepEqual(result, { relay: true, relay_ms: 40 });
  assert.equal(FakePeer.last.config.iceTransportPolicy, "relay");
  assert.deepEqual(FakePeer.last.config.iceServers, [{ urls: "turn:127.0.0.1:3478" }]);
  assert.equal(FakePeer.last.closed, true);
});

test("no relay candidate within the bound is a failed pre-test", async () => {
  FakePeer.gather = (pc) => pc.onicecandidate({ candidate: null }); // gathering over, nothing relayed
  const result = await turnPretest({ ice_servers: [], timeout_ms: 30 }, { Peer: FakePeer });
  assert.deepEqual(result, { relay: false });
  assert.equal(FakePeer.last.closed, true);
});

test("a browser whose RTCPeerConnection refuses the config fails the pre-test instead of throwing", async () => {
  class Refusing { constructor() { throw new Error("bad iceServers"); } }
  assert.deepEqual(await turnPretest({ ice_servers: [], timeout_ms: 30 }, { Peer: Refusing }), { relay: false });
});

test("activity is passed on at most once per interval", () => {
  let t = 0;
  const sent = [];
  const activity = throttle(() => sent.push(t), 2000, () => t);
  for (t = 0; t <= 5000; t += 250) activity();
  assert.deepEqual(sent, [0, 2000, 4000]);
});
