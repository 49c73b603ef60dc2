import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EpisodeUploader, MAX_UPLOAD_BYTES, UploadRejectedError, backoffDelay, payloadKey, utf8Length, episodesCompletedByStash,
} from "../../interactive_gym/server/static/js/episode_uploader.js";

class MemoryStorage {
  constructor() { this.data = new Map(); }
  getItem(k) { return this.data.has(k) ? this.data.get(k) : null; }
  setItem(k, v) { this.data.set(k, String(v)); }
}

function fakeSleep() {
  const delays = [];
  return { delays, sleep: (ms) => { delays.push(ms); return Promise.resolve(); } };
}

const payload = (episode = 0, extra = {}) => ({ scene_id: "solo", episode, steps: [{ t: 0 }], ...extra });

test("backoff grows geometrically and is capped", () => {
  const opts = { initialMs: 100, factor: 2, maxMs: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, opts)), [100, 200, 400, 800, 1000, 1000]);
});

test("retries transient failures with backoff until acknowledged", async () => {
  const { delays, sleep } = fakeSleep();
  const answers = [() => Promise.reject(new Error("disconnected")), () => Promise.resolve({ ok: false, retryable: true }),
    () => Promise.resolve(undefined), () => Promise.resolve({ ok: true })];
  const sent = [];
  const storage = new MemoryStorage();
  const up = new EpisodeUploader({
    emitWithAck: (event, p) => { sent.push([event, p.episode]); return answers[sent.length - 1](); },
    sleep, storage, initialDelayMs: 100, maxDelayMs: 250, ackTimeoutMs: 0,
  });
  const ack = await up.upload(payload(1));
  assert.deepEqual(ack, { ok: true });
  assert.equal(sent.length, 4);
  assert.deepEqual(sent[0], ["browser_episode", 1]);
  assert.deepEqual(delays, [100, 200, 250]);
  assert.deepEqual(up.readStash(), {}, "acknowledged payloads leave storage");
  assert.deepEqual(up.pending(), []);
});

test("a validation rejection is not retried and raises UploadRejectedError", async () => {
  const { delays, sleep } = fakeSleep();
  let calls = 0;
  const up = new EpisodeUploader({
    emitWithAck: () => { calls++; return Promise.resolve({ ok: false, code: "bad_seed", error: "seed does not match" }); },
    sleep, storage: new MemoryStorage(), ackTimeoutMs: 0,
  });
  await assert.rejects(up.upload(payload()), (err) => err instanceof UploadRejectedError && err.code === "bad_seed");
  assert.equal(calls, 1);
  assert.deepEqual(delays, []);
  assert.deepEqual(up.readStash(), {}, "a rejected payload is dropped, not resent forever");
});

test("a missing ack times out and counts as a transient failure", async () => {
  let calls = 0;
  const up = new EpisodeUploader({
    emitWithAck: () => { calls++; return calls === 1 ? new Promise(() => {}) : Promise.resolve({ ok: true }); },
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))), storage: null, ackTimeoutMs: 1000,
    initialDelayMs: 1,
  });
  assert.deepEqual(await up.upload(payload()), { ok: true });
  assert.equal(calls, 2);
});

test("unacknowledged payloads are stashed and resent by the next page", async () => {
  const storage = new MemoryStorage();
  // First page: the server never answers, then the page goes away (close stops the loop).
  const first = new EpisodeUploader({
    emitWithAck: () => Promise.reject(new Error("offline")), storage, sleep: () => Promise.resolve(), ackTimeoutMs: 0,
  });
  first.stash(payload(0, { partial: true }));
  const pendingUpload = first.upload(payload(1));
  first.close();
  await assert.rejects(pendingUpload, /closed/);
  assert.deepEqual(Object.keys(first.readStash()).sort(), ["solo#0", "solo#1"]);
  // Next page: everything left over goes out and is removed once acknowledged.
  const received = [];
  const second = new EpisodeUploader({
    emitWithAck: (e, p) => { received.push(p); return Promise.resolve({ ok: true }); }, storage, ackTimeoutMs: 0,
  });
  const results = await second.resendStashed();
  assert.equal(results.length, 2);
  assert.ok(results.every((r) => r.status === "fulfilled"));
  assert.deepEqual(received.map((p) => [p.episode, p.partial ?? false]).sort(), [[0, true], [1, false]]);
  assert.deepEqual(second.readStash(), {});
});

test("a newer payload for the same episode is not removed by an older ack", async () => {
  const storage = new MemoryStorage();
  let release;
  const up = new EpisodeUploader({
    emitWithAck: () => new Promise((r) => { release = r; }), storage, ackTimeoutMs: 0,
  });
  const first = up.upload(payload(0, { partial: true, steps: [] }));
  up.stash(payload(0, { partial: false }));
  release({ ok: true });
  await first;
  assert.equal(up.readStash()["solo#0"].partial, false);
});

test("corrupt storage content is ignored", () => {
  const storage = new MemoryStorage();
  storage.setItem("interactive-gym:unsent-episodes", "{not json");
  const up = new EpisodeUploader({ emitWithAck: () => Promise.resolve({ ok: true }), storage });
  assert.deepEqual(up.readStash(), {});
  assert.throws(() => new EpisodeUploader({}), TypeError);
});

/** A payload whose JSON is exactly `bytes` UTF-8 bytes long, padded with `fill` (1, 2, 3 or 4 bytes each). */
function payloadOfSize(bytes, fill = "x") {
  const base = utf8Length(JSON.stringify(payload(0, { error: "" })));
  const unit = utf8Length(fill);
  const pad = bytes - base;
  assert.equal(pad % unit, 0, "pick a size the fill divides");
  return payload(0, { error: fill.repeat(pad / unit) });
}

test("utf8Length counts what TextEncoder would produce", () => {
  for (const text of ["", "abc", "é", "ü€", "𝄞", "a𝄞b", "\ud800", "x\udc00y", "日本語", '{"k":"\u00ff"}']) {
    assert.equal(utf8Length(text), new TextEncoder().encode(text).length, JSON.stringify(text));
  }
});

test("an upload over the cap is refused before sending, with a final error, and never stashed", async () => {
  const storage = new MemoryStorage();
  const events = [];
  let sent = 0;
  const up = new EpisodeUploader({
    emitWithAck: () => { sent++; return Promise.resolve({ ok: true }); }, storage, ackTimeoutMs: 0,
    maxBytes: 3000, onEvent: (e) => events.push(e),
  });
  const big = payloadOfSize(3001);
  await assert.rejects(up.upload(big), (err) => err instanceof UploadRejectedError && err.code === "too_large"
    && /3001 bytes; the server accepts at most 3000/.test(err.message));
  assert.equal(sent, 0);
  assert.deepEqual(up.readStash(), {});
  assert.deepEqual(up.pending(), []);
  assert.deepEqual(events.map((e) => [e.type, e.code]), [["rejected", "too_large"]]);
  assert.deepEqual(await up.upload(payloadOfSize(3000)), { ok: true }, "exactly the cap is sent");
  assert.equal(sent, 1);
});

test("the cap counts UTF-8 bytes, not characters", async () => {
  let sent = 0;
  const up = new EpisodeUploader({
    emitWithAck: () => { sent++; return Promise.resolve({ ok: true }); }, storage: null, ackTimeoutMs: 0,
    maxBytes: 3000,
  });
  const wide = payloadOfSize(3003, "€"); // fewer than 3000 characters, more than 3000 bytes
  assert.ok(JSON.stringify(wide).length < 3000);
  await assert.rejects(up.upload(wide), /too_large|accepts at most 3000/);
  assert.equal(sent, 0);
});

test("an oversized payload an earlier page stashed is dropped from storage, not resent on every load", async () => {
  const storage = new MemoryStorage();
  const first = new EpisodeUploader({ emitWithAck: () => Promise.resolve({ ok: true }), storage, maxBytes: 1 << 20 });
  const big = payloadOfSize(5000);
  first.stash(big);
  first.stash(payload(1));
  let sent = [];
  const next = new EpisodeUploader({
    emitWithAck: (e, p) => { sent.push(p.episode); return Promise.resolve({ ok: true }); }, storage,
    maxBytes: 4000, ackTimeoutMs: 0,
  });
  const results = await next.resendStashed();
  assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  assert.deepEqual(sent, [1]);
  assert.deepEqual(next.readStash(), {});
});

test("a 3 MB episode is sent under the default cap; 5 MB is refused", async () => {
  assert.equal(MAX_UPLOAD_BYTES, 4 * 1024 * 1024);
  let sent = 0;
  const up = new EpisodeUploader({ emitWithAck: () => { sent++; return Promise.resolve({ ok: true }); },
    storage: null, ackTimeoutMs: 0 });
  await up.upload(payloadOfSize(3_000_000));
  await assert.rejects(up.upload(payloadOfSize(5_000_000)), UploadRejectedError);
  assert.equal(sent, 1);
  assert.throws(() => new EpisodeUploader({ emitWithAck: () => null, maxBytes: 0 }), TypeError);
});

test("stash keys: each attempt of a visit and each p2p game keeps its own unsent episode", () => {
  const storage = new MemoryStorage();
  const up = new EpisodeUploader({ emitWithAck: () => new Promise(() => {}), storage, ackTimeoutMs: 0 });
  const first = payload(0, { scene_index: 2, attempt: 1, partial: true });
  const reload = payload(0, { scene_index: 2, attempt: 2, partial: true });
  const repeat = payload(0, { scene_index: 5, attempt: 1, partial: true }); // the same scene visited again
  const gameA = payload(0, { game_id: "g-a" });
  const gameB = payload(0, { game_id: "g-b" });
  for (const p of [first, reload, repeat, gameA, gameB]) assert.equal(up.stash(p), true);
  assert.deepEqual(up.readStash(), { "2#1#0": first, "2#2#0": reload, "5#1#0": repeat, "g-a#0": gameA, "g-b#0": gameB });
  assert.equal(payloadKey(payload(3)), "solo#3"); // an upload naming neither keeps the old key
});

test("a payload stashed under an older page's key is resent once and then leaves storage", async () => {
  const storage = new MemoryStorage();
  const old = payload(1, { scene_index: 0, attempt: 1, partial: true });
  storage.setItem("interactive-gym:unsent-episodes", JSON.stringify({ "solo#1": old }));
  const sent = [];
  const up = new EpisodeUploader({ emitWithAck: (e, p) => { sent.push(p); return Promise.resolve({ ok: true }); },
    storage, ackTimeoutMs: 0 });
  const results = await up.resendStashed();
  assert.deepEqual(results.map((r) => r.status), ["fulfilled"]);
  assert.deepEqual(sent, [old]);
  assert.deepEqual(up.readStash(), {});
});

test("setMaxBytes: the server's figure replaces the fallback; nonsense is refused", async () => {
  const up = new EpisodeUploader({ emitWithAck: () => Promise.resolve({ ok: true }), storage: null, ackTimeoutMs: 0 });
  assert.equal(up.maxBytes, MAX_UPLOAD_BYTES);
  up.setMaxBytes(64);
  await assert.rejects(up.upload(payload(0, { steps: ["x".repeat(100)] })), (err) => err.code === "too_large");
  for (const bad of [0, -1, 1.5, "64", null]) assert.throws(() => up.setMaxBytes(bad), TypeError);
  assert.equal(up.maxBytes, 64);
});

test("the stash re-sent first names the episodes an earlier attempt of this visit completed", async () => {
  const storage = new MemoryStorage();
  const visit = { scene_id: "s", scene_index: 2 };
  const offline = new EpisodeUploader({ emitWithAck: () => Promise.reject(new Error("offline")), storage,
    sleep: () => Promise.reject(new Error("page closed")), ackTimeoutMs: 0 });
  const stashed = [
    { ...visit, attempt: 1, episode: 0, partial: false, steps: [] }, // finished offline: skipped by attempt 2
    { ...visit, attempt: 1, episode: 1, partial: true, steps: [] }, // partial: attempt 2 plays it
    { scene_id: "s", scene_index: 1, attempt: 1, episode: 2, partial: false, steps: [] }, // another visit
    { ...visit, attempt: 1, episode: 3, partial: false, steps: [] }, // refused by the server
  ];
  for (const p of stashed) await assert.rejects(offline.upload(p));
  const next = new EpisodeUploader({ storage, ackTimeoutMs: 0,
    emitWithAck: (e, p) => Promise.resolve(p.episode === 3 ? { ok: false, code: "invalid", retryable: false } : { ok: true }) });
  const results = await next.resendStashed();
  assert.deepEqual(results.map((r) => [r.payload.episode, r.status]).sort(),
    [[0, "fulfilled"], [1, "fulfilled"], [2, "fulfilled"], [3, "rejected"]]);
  assert.deepEqual([...episodesCompletedByStash({ ...visit, attempt: 2 }, results)], [0]);
  assert.deepEqual([...episodesCompletedByStash({ ...visit, attempt: 1 }, results)], []); // its own: nothing
  assert.deepEqual([...episodesCompletedByStash({ ...visit, attempt: 2 }, null)], []); // the wait ran out
});
