// Uploads browser-mode episodes until the server acknowledges them (after its database commit).
//
// Transport-agnostic: it is given `emitWithAck(event, payload) -> Promise<ack>` (Socket.IO's
// `socket.timeout(ms).emitWithAck`), so it is tested in node without a server. Acks:
//   {ok: true}                                   committed: done
//   {ok: false, code, error, retryable: false}   rejected by validation: never retried
//   {ok: false, retryable: true} / throw / timeout   transient: retried with exponential backoff
// Every unacknowledged payload is also kept in localStorage (when available), so a page closed before
// the ack, or a partial episode stashed on `pagehide`, is sent again on the next page load.
//
// A payload larger than the server's upload cap is never sent: the server could only refuse it (or, far above
// the cap, drop the connection, and a resend would loop), so it fails at once with a clear, final error.

export const DEFAULT_EVENT = "browser_episode";
export const DEFAULT_STASH_KEY = "interactive-gym:unsent-episodes";
// Must equal MAX_UPLOAD_BYTES in interactive_gym/server/upload_validation.py (tests/unit/test_fast_socketio.py
// compares them); a page given the server's figure (option maxBytes) uses that instead.
export const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;

/** Bytes of `text` in UTF-8 (what goes on the wire), without building the encoded copy. */
export function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) { bytes += 4; i++; } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** A payload the server refused for good (invalid); retrying cannot help. */
export class UploadRejectedError extends Error {
  constructor(code, message) {
    super(message || code || "upload rejected");
    this.name = "UploadRejectedError";
    this.code = code || "rejected";
  }
}

/** Delay before retry number `attempt` (0-based): initial * factor**attempt, capped at max. */
export function backoffDelay(attempt, { initialMs = 500, factor = 2, maxMs = 15000 } = {}) {
  return Math.min(maxMs, initialMs * factor ** attempt);
}

/**
 * The stash key of a payload: one episode of one page load. Browser mode: `scene_index#attempt#episode` (the
 * visit and attempt the server numbered); p2p: `game_id#episode`. So two visits of a scene, or two attempts
 * (reloads) of a visit, never replace each other's unsent episode. Payloads naming neither (older pages)
 * keep the old `scene_id#episode`.
 */
export function payloadKey(payload) {
  if (typeof payload.game_id === "string" && payload.game_id) return `${payload.game_id}#${payload.episode}`;
  if (Number.isInteger(payload.scene_index) && Number.isInteger(payload.attempt)) {
    return `${payload.scene_index}#${payload.attempt}#${payload.episode}`;
  }
  return `${payload.scene_id}#${payload.episode}`;
}

/**
 * The episodes of browser attempt `config` that the re-sent stash of an earlier page load of the same visit
 * has just stored complete (`resendStashed()` results): the server counts them done, so this attempt need
 * not play them again (browser_scenes.py, "Repeats").
 * @param {{scene_id: string, scene_index: number, attempt: number}} config
 * @param {Array<{status: string, payload: object}>} results
 * @returns {Set<number>}
 */
export function episodesCompletedByStash(config, results) {
  const done = new Set();
  for (const { status, payload } of results ?? []) {
    if (status === "fulfilled" && payload && payload.partial === false && payload.scene_id === config.scene_id
      && payload.scene_index === config.scene_index && payload.attempt !== config.attempt
      && Number.isInteger(payload.episode)) done.add(payload.episode);
  }
  return done;
}

function withTimeout(promise, ms, sleep) {
  if (!ms) return promise;
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`no ack within ${ms} ms`); })]);
}

export class EpisodeUploader {
  /**
   * @param {object} options
   * @param {(event: string, payload: object) => Promise<object>} options.emitWithAck
   * @param {string} [options.event] - Socket.IO event name
   * @param {number} [options.initialDelayMs] - first retry delay
   * @param {number} [options.maxDelayMs] - longest retry delay
   * @param {number} [options.factor] - backoff growth
   * @param {number} [options.ackTimeoutMs] - a missing ack after this long counts as a transient failure (0: none)
   * @param {(ms: number) => Promise<void>} [options.sleep]
   * @param {Storage|null} [options.storage] - where unacknowledged payloads survive a page close
   * @param {string} [options.stashKey]
   * @param {(info: object) => void} [options.onEvent] - {type: "retry"|"acked"|"rejected", ...} for logs/UI
   * @param {number} [options.maxBytes] - largest payload sent (UTF-8 bytes of its JSON): the server's cap
   */
  constructor({
    emitWithAck, event = DEFAULT_EVENT, initialDelayMs = 500, maxDelayMs = 15000, factor = 2,
    ackTimeoutMs = 20000, sleep = (ms) => new Promise((r) => setTimeout(r, ms)),
    storage = globalThis.localStorage ?? null, stashKey = DEFAULT_STASH_KEY, onEvent = () => {},
    maxBytes = MAX_UPLOAD_BYTES,
  }) {
    if (typeof emitWithAck !== "function") throw new TypeError("EpisodeUploader needs an emitWithAck function");
    this.setMaxBytes(maxBytes);
    this.emitWithAck = emitWithAck;
    this.event = event;
    this.backoff = { initialMs: initialDelayMs, factor, maxMs: maxDelayMs };
    this.ackTimeoutMs = ackTimeoutMs;
    this.sleep = sleep;
    this.storage = storage;
    this.stashKey = stashKey;
    this.onEvent = onEvent;
    this.closed = false;
    this.inFlight = new Map(); // key -> payload
  }

  /**
   * Sets the largest payload sent: the server's cap (the scene config's `max_upload_bytes`), for a page that
   * learns it after the uploader was made (p2p: the config comes with the game).
   */
  setMaxBytes(maxBytes) {
    if (!(Number.isInteger(maxBytes) && maxBytes > 0)) throw new TypeError("maxBytes must be a positive integer");
    this.maxBytes = maxBytes;
  }

  /** Sends `payload` until acknowledged; resolves with the ack, rejects with UploadRejectedError. */
  async upload(payload) {
    const key = payloadKey(payload);
    const size = utf8Length(JSON.stringify(payload));
    if (size > this.maxBytes) {
      // Final: the same payload can never fit. Not stashed (and removed if an earlier page stashed it), so no
      // later page load resends it either.
      const error = `episode data is ${size} bytes; the server accepts at most ${this.maxBytes}`;
      this.unstash(key, payload);
      this.onEvent({ type: "rejected", key, code: "too_large", error });
      throw new UploadRejectedError("too_large", error);
    }
    this.inFlight.set(key, payload);
    this.stash(payload);
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.closed) throw new Error("uploader closed before the server acknowledged the episode");
        let ack;
        let failure;
        try {
          ack = await withTimeout(this.emitWithAck(this.event, payload), this.ackTimeoutMs, this.sleep);
        } catch (err) {
          failure = String(err?.message ?? err);
        }
        if (ack && ack.ok === true) {
          this.unstash(key, payload);
          this.onEvent({ type: "acked", key, attempts: attempt + 1 });
          return ack;
        }
        if (ack && ack.ok === false && !ack.retryable) {
          this.unstash(key, payload);
          this.onEvent({ type: "rejected", key, code: ack.code, error: ack.error });
          throw new UploadRejectedError(ack.code, ack.error);
        }
        const delay = backoffDelay(attempt, this.backoff);
        this.onEvent({ type: "retry", key, attempt: attempt + 1, delay, reason: failure ?? ack?.error ?? "no ack" });
        await this.sleep(delay);
      }
    } finally {
      if (this.inFlight.get(key) === payload) this.inFlight.delete(key);
    }
  }

  /** Payloads not acknowledged yet (in flight in this page). */
  pending() {
    return [...this.inFlight.values()];
  }

  /** Keeps `payload` in storage (synchronously: safe inside `pagehide`) until acknowledged. */
  stash(payload) {
    if (!this.storage) return false;
    try {
      const all = this.readStash();
      all[payloadKey(payload)] = payload;
      this.storage.setItem(this.stashKey, JSON.stringify(all));
      return true;
    } catch {
      return false; // storage full or disabled: the in-page retry is all we have
    }
  }

  /** The stashed payloads, keyed by payloadKey(). */
  readStash() {
    if (!this.storage) return {};
    try {
      const parsed = JSON.parse(this.storage.getItem(this.stashKey) || "{}");
      return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return {};
    }
  }

  unstash(key, payload) {
    if (!this.storage) return;
    const all = this.readStash();
    // Only remove what we sent: a newer payload for the same episode may have replaced it meanwhile.
    if (all[key] && JSON.stringify(all[key]) === JSON.stringify(payload)) {
      delete all[key];
      this.storage.setItem(this.stashKey, JSON.stringify(all));
    }
  }

  /**
   * Uploads every payload a previous page left in storage; resolves with one settled result per payload,
   * each with the `payload` it is for.
   */
  async resendStashed() {
    this.rekeyStash();
    const stashed = Object.values(this.readStash());
    const results = await Promise.allSettled(stashed.map((p) => this.upload(p)));
    return results.map((result, i) => ({ ...result, payload: stashed[i] }));
  }

  /**
   * Files every stashed payload under its current key (a page of an older version used other keys); an ack
   * then removes it, instead of leaving a copy under the old key that every later page load would resend.
   */
  rekeyStash() {
    if (!this.storage) return;
    const all = this.readStash();
    const rekeyed = {};
    for (const payload of Object.values(all)) {
      if (payload && typeof payload === "object") rekeyed[payloadKey(payload)] = payload;
    }
    if (JSON.stringify(Object.keys(rekeyed).sort()) === JSON.stringify(Object.keys(all).sort())) return;
    try {
      this.storage.setItem(this.stashKey, JSON.stringify(rekeyed));
    } catch { /* storage full or disabled: resend what was read */ }
  }

  /** Waits until every upload started so far has settled. */
  async drain() {
    while (this.inFlight.size > 0) await this.sleep(50);
  }

  /** Stops retrying (uploads still pending stay in storage for the next page load). */
  close() {
    this.closed = true;
  }
}
