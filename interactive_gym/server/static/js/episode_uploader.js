// Uploads browser-mode episodes until the server acknowledges them (after its database commit).
//
// Transport-agnostic: it is given `emitWithAck(event, payload) -> Promise<ack>` (Socket.IO's
// `socket.timeout(ms).emitWithAck`), so it is tested in node without a server. Acks:
//   {ok: true}                                   committed: done
//   {ok: false, code, error, retryable: false}   rejected by validation: never retried
//   {ok: false, retryable: true} / throw / timeout   transient: retried with exponential backoff
// Every unacknowledged payload is also kept in localStorage (when available), so a page closed before
// the ack, or a partial episode stashed on `pagehide`, is sent again on the next page load.

export const DEFAULT_EVENT = "browser_episode";
export const DEFAULT_STASH_KEY = "interactive-gym:unsent-episodes";

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

function payloadKey(payload) {
  return `${payload.scene_id}#${payload.episode}`;
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
   */
  constructor({
    emitWithAck, event = DEFAULT_EVENT, initialDelayMs = 500, maxDelayMs = 15000, factor = 2,
    ackTimeoutMs = 20000, sleep = (ms) => new Promise((r) => setTimeout(r, ms)),
    storage = globalThis.localStorage ?? null, stashKey = DEFAULT_STASH_KEY, onEvent = () => {},
  }) {
    if (typeof emitWithAck !== "function") throw new TypeError("EpisodeUploader needs an emitWithAck function");
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

  /** Sends `payload` until acknowledged; resolves with the ack, rejects with UploadRejectedError. */
  async upload(payload) {
    const key = payloadKey(payload);
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

  /** The stashed payloads, keyed by "scene#episode". */
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

  /** Uploads every payload a previous page left in storage; resolves with one result per payload. */
  async resendStashed() {
    const stashed = Object.values(this.readStash());
    return Promise.allSettled(stashed.map((p) => this.upload(p)));
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
