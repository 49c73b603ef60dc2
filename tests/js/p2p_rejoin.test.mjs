import { test } from "node:test";
import assert from "node:assert/strict";
import { P2PGame } from "../../interactive_gym/server/static/js/p2p_game.js";
import {
  GIVE_UP_MS, REQUEST_MS, RESEND_MS, RejoinRequester, RejoinSender, decodeControl, encodeControl,
} from "../../interactive_gym/server/static/js/p2p_rejoin.js";

/** A transport whose DataChannel to each peer is open or not, recording what was sent. */
function transport(open = true) {
  return {
    open, sent: [], restarted: [],
    isP2P() { return this.open; },
    send(peer, bytes, opts) { this.sent.push({ peer, ...decodeControl(bytes), opts }); return true; },
    restartPeer(peer) { this.restarted.push(peer); },
  };
}

test("control messages carry an optional body after the first newline; junk decodes to null", () => {
  assert.deepEqual(decodeControl(encodeControl({ t: "ready" })), { message: { t: "ready" }, body: null });
  const text = '{"v":1,"state":"a\\nb"}';
  assert.deepEqual(decodeControl(encodeControl({ t: "snapshot", id: 1, i: 0, n: 1 }, text)),
    { message: { t: "snapshot", id: 1, i: 0, n: 1 }, body: text });
  for (const junk of [new Uint8Array([0xff, 0xfe]), new TextEncoder().encode("not json"),
    new TextEncoder().encode("42"), new TextEncoder().encode("null")]) {
    assert.equal(decodeControl(junk), null);
  }
});

test("the sender serves only an announced player, over the DataChannel, once per request window", () => {
  const calls = [];
  let answer = { ok: true, pending: true };
  const host = { requestRejoin: (p) => { calls.push(["request", p]); return answer; },
    expectRejoin: (p) => calls.push(["expect", p]) };
  const link = transport(false);
  const sender = new RejoinSender(host, link);
  assert.equal(sender.request(1, 0), null); // nobody announced player 1: the host is not even asked
  assert.deepEqual(calls, []);
  sender.expect(1);
  assert.deepEqual(link.restarted, [1]);
  assert.equal(sender.request(1, 10), null); // pending: the snapshot comes with a later tick
  const served = { ok: true, id: 1, chunks: ["ab", "cd"] };
  assert.deepEqual(sender.answer(1, served, 20), { served: true });
  assert.equal(link.sent.length, 0); // the chunks wait for the DataChannel (the relay takes 4 kB)
  link.open = true;
  sender.flush(30);
  assert.deepEqual(link.sent.map((m) => [m.peer, m.message, m.body, m.opts.reliable]),
    [[1, { t: "snapshot", id: 1, i: 0, n: 2 }, "ab", true], [1, { t: "snapshot", id: 1, i: 1, n: 2 }, "cd", true]]);
  answer = served; // a repeated request: the same snapshot, not sent again within RESEND_MS
  sender.request(1, 30 + RESEND_MS - 1);
  assert.equal(link.sent.length, 2);
  sender.request(1, 30 + RESEND_MS);
  assert.equal(link.sent.length, 4);
  sender.flush(40 + RESEND_MS);
  assert.equal(link.sent.length, 4);
  assert.deepEqual(sender.answer(1, { ok: false, error: "state holds a Foo" }, 50), { failed: "state holds a Foo" });
});

test("the rejoining page asks its sender once the DataChannel is open, and loads the snapshot once", () => {
  const chunks = [];
  const host = {
    addSnapshotChunk(id, i, n, text) {
      chunks.push([id, i, n, text]);
      if (text === "bad") return { ok: false, error: "checksum differs" };
      return chunks.length < n ? { ok: true, loaded: false } : { ok: true, loaded: true, frame: 90, episode: 0, t: 90 };
    },
  };
  const link = transport(false);
  const page = new RejoinRequester(host, link, 0);
  page.poll(0);
  assert.equal(link.sent.length, 0);
  link.open = true;
  page.poll(10);
  page.poll(10 + REQUEST_MS - 1);
  assert.equal(link.sent.length, 1);
  page.poll(10 + REQUEST_MS);
  assert.deepEqual(link.sent.map((m) => [m.peer, m.message]), [[0, { t: "rejoin" }], [0, { t: "rejoin" }]]);
  assert.equal(page.chunk(1, { id: 1, i: 0, n: 2 }, "x", 0), null); // not the sender: ignored
  assert.equal(chunks.length, 0);
  assert.equal(page.chunk(0, { id: 1, i: 0, n: 2 }, "ab", 0), null);
  assert.deepEqual(page.chunk(0, { id: 1, i: 1, n: 2 }, "cd", 0), { frame: 90, episode: 0, t: 90 });
  assert.equal(page.chunk(0, { id: 1, i: 1, n: 2 }, "cd", 0), null); // loaded once only
  page.poll(10 * REQUEST_MS);
  assert.equal(link.sent.length, 2); // no more requests once loaded
  const other = new RejoinRequester(host, link, 0);
  assert.throws(() => other.chunk(0, { id: 2, i: 0, n: 1 }, "bad", 0), /checksum differs/);
});

// ---- two P2PGames: a survivor that keeps playing and sends the game, a reloaded page that plays on from it ----

const CONFIG = {
  fps: 200, num_episodes: 1, seeds: [11], controls: { keys: ["ArrowUp"] }, p2p: { disconnect_timeout_ms: 50 },
  agents: { a0: { kind: "human", player: 0 }, a1: { kind: "human", player: 1 } },
};

class FakeHost {
  constructor(resumed = null) {
    this.frame = resumed ? 90 : 0; this.calls = []; this.requested = false; this.resumed = resumed;
  }
  start() { this.calls.push("start"); }
  receive() {}
  tick() {
    this.frame += 1;
    const events = this.frame === 5 && !this.resumed ? [{ type: "Disconnected", player: 1, frame: 5 }] : [];
    const rejoin = this.requested ? { 1: { ok: true, id: 1, chunks: ["s0", "s1"] } } : {};
    this.requested = false;
    return { frame: this.frame, status: "advanced", rollback: 0, out: [], render: null, events, episodes: [],
      done: false, episode: 0, t: this.frame, rejoin };
  }
  partnerAway(p) { this.calls.push(["away", p]); }
  expectRejoin(p) { this.calls.push(["expect", p]); }
  requestRejoin(p) { this.calls.push(["request", p]); this.requested = true; return { ok: true, pending: true }; }
  addSnapshotChunk(id, i, n, text) {
    this.calls.push(["chunk", id, i, n, text]);
    return i === n - 1 ? { ok: true, loaded: true, frame: 90, episode: 0, t: 90 } : { ok: true, loaded: false };
  }
  episodePayload(episode, partial, endReason) { return { episode, partial, end_reason: endReason, steps: [] }; }
  stats() { return { rtt_ms: {}, rollbacks: {}, frames: this.frame, desyncs: [], dropped_packets: {},
    ...(this.resumed ? { rejoined: this.resumed } : {}) }; }
  get currentEpisode() { return 0; }
  stepCount() { return 0; }
  partnerLeft() {}
  closePackets() { return []; }
}

function link(me) {
  return { me, other: null, restarted: [], onMessage: null, isP2P: () => true, getStats: () => ({ peers: {} }),
    restartPeer(p) { this.restarted.push(p); },
    send(peer, bytes, { reliable = false } = {}) {
      const copy = bytes.slice();
      setImmediate(() => this.other.onMessage?.(this.me, copy, reliable ? "control" : "inputs"));
      return true;
    } };
}

function game(host, transport, myPlayerId, extra) {
  return new P2PGame({ host, transport, renderer: { draw() {}, model: { objects: new Map() } },
    input: { sample: () => [], destroy() {} }, config: CONFIG, gameId: "p2p-1", myPlayerId, players: [0, 1],
    uploader: { upload: async () => ({ ok: true }) }, onStatus() {}, lingerMs: 5, keyTarget: null, ...extra });
}

const until = async (condition, what) => {
  for (let i = 0; i < 400 && !condition(); i += 1) await new Promise((r) => { setTimeout(r, 5); });
  assert.ok(condition(), what);
};

test("a survivor keeps playing for a partner who may return and sends its new page the game", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const survivorHost = new FakeHost();
  const survivor = game(survivorHost, a, 0, { canRejoin: true });
  survivor.started = true; // already playing when the partner reloads
  survivor.ticker.start();
  await until(() => survivorHost.frame > 10, "the survivor plays on after the partner's drop");
  assert.equal(survivor.finished, false);
  assert.deepEqual(survivorHost.calls.filter((c) => c[0] === "away"), [["away", 1]]);
  survivor.peerRejoining(1, 1);
  survivor.peerRejoining(1, 1); // the same notice twice: one fresh connection, not two
  assert.deepEqual(a.restarted, [1]);
  const newHost = new FakeHost({ frame: 90, episode: 0, t: 90 });
  const reloaded = game(newHost, b, 1, { rejoin: { sender: 0 } });
  const done = reloaded.run();
  await until(() => reloaded.rejoinedAt !== null, "the new page loads the snapshot");
  assert.deepEqual(newHost.calls.filter((c) => c[0] === "chunk").map((c) => c.slice(1)),
    [[1, 0, 2, "s0"], [1, 1, 2, "s1"]]);
  assert.ok(!newHost.calls.includes("start")); // its session starts at the snapshot's frame, not at 0
  assert.deepEqual(survivorHost.calls.filter((c) => c[0] === "request"), [["request", 1]]);
  await until(() => newHost.frame > 95, "the new page plays on");
  assert.equal(reloaded.stats().rejoined.t, 90); // its uploads say where it resumed
  assert.equal(survivor.silentSince, null);
  survivor.stop("complete");
  reloaded.stop("complete");
  await done;
});

test("without rejoin a silent partner ends the game at once, as before", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const host = new FakeHost();
  const alone = game(host, a, 0, {});
  alone.started = true;
  alone.ticker.start();
  const { reason } = await alone.done;
  assert.equal(reason, "partner_left");
  assert.equal(host.calls.filter((c) => c[0] === "away").length, 0);
});

test("a page reloaded before the game's first frame starts it the ordinary way", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const survivorHost = new FakeHost();
  const survivor = game(survivorHost, a, 0, { canRejoin: true }); // built, still waiting for its partner's ready
  survivor.peerRejoining(1, 1);
  assert.deepEqual(a.restarted, [1]);
  assert.equal(survivorHost.calls.filter((c) => c[0] === "expect").length, 0); // its session keeps player 1
  const newHost = new FakeHost();
  const reloaded = game(newHost, b, 1, { rejoin: { sender: 0 } });
  const done = reloaded.run();
  await until(() => survivor.started && reloaded.started, "both start with the ready handshake");
  assert.ok(survivorHost.calls.includes("start") && newHost.calls.includes("start"));
  assert.equal(survivorHost.calls.filter((c) => c[0] === "request").length, 0); // no snapshot of an unplayed game
  assert.equal(reloaded.rejoinedAt, null);
  assert.deepEqual(reloaded.stats().rejoined, { frame: 0, episode: 0, t: 0 }); // the server's verdict waits for it
  assert.equal(survivor.stats().rejoined, undefined);
  survivor.stop("complete");
  reloaded.stop("complete");
  await done;
});

test("a reloaded page that hears its sender's ready first (the sender has not started) starts over too", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const survivorHost = new FakeHost();
  const survivor = game(survivorHost, a, 0, { canRejoin: true });
  const newHost = new FakeHost();
  const reloaded = game(newHost, b, 1, { rejoin: { sender: 0 } });
  a.isP2P = () => true;
  b.isP2P = () => false; // the new page's channel is not open yet: it cannot ask; it hears the ready
  const done = reloaded.run();
  survivor.run();
  await until(() => survivor.started && reloaded.started, "both start with the ready handshake");
  assert.deepEqual(reloaded.stats().rejoined, { frame: 0, episode: 0, t: 0 });
  survivor.stop("complete");
  reloaded.stop("complete");
  await done;
});

test("a page closed before its game started says no goodbye", () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  let goodbyes = 0;
  const host = new FakeHost();
  host.closePackets = () => { goodbyes += 1; return [[1, new Uint8Array([1])]]; };
  const page = game(host, a, 0, { canRejoin: true });
  page.pageClosed({ emit() {} });
  assert.equal(goodbyes, 0);
});

test("a rejoining page gives up on a sender that never sends the game, counted from its first try", () => {
  const host = { addSnapshotChunk: () => ({ ok: true, loaded: true, frame: 9, episode: 0, t: 9 }) };
  assert.equal(new RejoinRequester(host, transport(false), 0).overdue(GIVE_UP_MS * 9), false); // never tried
  const closed = new RejoinRequester(host, transport(false), 0);
  closed.poll(100); // no DataChannel to ask over (TURN failing): the wait counts too
  assert.equal(closed.overdue(100 + GIVE_UP_MS - 1), false);
  assert.equal(closed.overdue(100 + GIVE_UP_MS), true);
  const link = transport(true);
  const page = new RejoinRequester(host, link, 0);
  page.poll(1000);
  page.poll(1000 + REQUEST_MS); // later requests do not restart the count
  assert.equal(page.overdue(1000 + GIVE_UP_MS - 1), false);
  assert.equal(page.overdue(1000 + GIVE_UP_MS), true);
  page.chunk(0, { id: 1, i: 0, n: 1 }, "s", 0);
  assert.equal(page.overdue(1000 + GIVE_UP_MS * 5), false); // loaded: nothing to give up on
});

test("a reloaded page still getting the game ends when its sender's game is over; a playing page plays on", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  b.isP2P = () => false; // the sender's channel never opens: only the server's news can end the wait
  const reloaded = game(new FakeHost({ frame: 90, episode: 0, t: 90 }), b, 1, { rejoin: { sender: 0 } });
  const done = reloaded.run();
  reloaded.peerFinished(7); // not a player of this game: nothing
  assert.equal(reloaded.finished, false);
  reloaded.peerFinished(0);
  const { reason } = await done;
  assert.equal(reason, "ended_while_away");

  const playing = game(new FakeHost(), a, 0, { canRejoin: true });
  playing.started = true;
  playing.peerFinished(1);
  assert.equal(playing.finished, false);
  playing.stop("complete");
});

test("a reloaded page whose sender never answers ends with an error instead of waiting for ever", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const reloaded = game(new FakeHost({ frame: 90, episode: 0, t: 90 }), b, 1, { rejoin: { sender: 0 } });
  const done = reloaded.run(); // asks at once (the channel is open); the partner's page never answers
  reloaded.pollRejoin(performance.now() + GIVE_UP_MS);
  const { reason, error } = await done;
  assert.equal(reason, "error");
  assert.match(error, /did not send the game back within 30 s/);
});

test("a partner whose game failed fails a running game here too, with their error; an unstarted one ends as left", async () => {
  const [a, b] = [link(0), link(1)];
  a.other = b; b.other = a;
  const running = game(new FakeHost({ frame: 90, episode: 0, t: 90 }), a, 0, { canRejoin: true });
  running.started = true;
  running.partnerLeft(1, { partnerError: "Traceback ...\nZeroDivisionError: division by zero" });
  const { reason } = await running.done;
  assert.equal(reason, "error");
  assert.match(running.error.traceback, /^The partner's game stopped with this error:\nTraceback[\s\S]*ZeroDivisionError/);

  const waiting = game(new FakeHost(), b, 1, {});
  waiting.partnerLeft(0, { partnerError: "RuntimeLoadError: files: Failed to fetch" });
  assert.equal((await waiting.done).reason, "partner_left");
  const plain = game(new FakeHost(), b, 1, {});
  plain.started = true;
  plain.partnerLeft(0);
  assert.equal((await plain.done).reason, "partner_left");
});

test("the start handshake waits for the DataChannel, then goes over the relay after channelWaitMs", async () => {
  const sent = [];
  const closed = { isP2P: () => false, send(peer, bytes) { sent.push([peer, decodeControl(bytes).message.t]); return true; },
    restartPeer() {}, getStats: () => ({ peers: {} }) };
  const waiting = game(new FakeHost(), closed, 0, { channelWaitMs: 150 });
  waiting.run();
  assert.deepEqual(sent, []); // the channel may open in a moment: the game waits for it
  await until(() => sent.length > 0, "the ready goes over the relay once the wait is over");
  assert.deepEqual(sent[0], [1, "ready"]);
  waiting.stop("complete");

  const open = { ...closed, isP2P: () => true, send(peer, bytes) { sent.push([peer, decodeControl(bytes).message.t, "open"]); return true; } };
  sent.length = 0;
  const prompt = game(new FakeHost(), open, 0, {}); // the default wait, but the channel is open: at once
  prompt.run();
  assert.deepEqual(sent, [[1, "ready", "open"]]);
  prompt.stop("complete");
});
