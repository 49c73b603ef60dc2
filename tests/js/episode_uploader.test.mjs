import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EpisodeUploader, UploadRejectedError, backoffDelay,
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
