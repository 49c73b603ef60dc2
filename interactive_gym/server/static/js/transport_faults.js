/**
 * Seeded network fault injection for the WebRTC transport (latency, jitter, loss), for tests and benchmarks only.
 *
 * Browser DevTools throttling does not touch DataChannels, so, like GGPO's protocol layer, the project injects faults
 * in its own transport: every outgoing packet is dropped or delayed here before it reaches the DataChannel (or the
 * Socket.IO fallback). Both peers inject on their send side, so a profile's `rttMs` is split into two one-way halves.
 * WebRTCManager creates an injector only when its options carry `faults`; production pages never pass it.
 *
 * Profile: `{seed, rttMs, jitterMs, loss}`
 *   - one-way delay = max(0, rttMs / 2 + (2u - 1) * jitterMs), u uniform in [0, 1) from the seeded generator;
 *   - loss: probability that a packet on the unreliable "inputs" channel is dropped. The reliable "control" channel
 *     is never dropped and keeps its order (a reliable channel turns loss into delay, which the jitter models).
 */

/** mulberry32: a tiny, fast, seedable 32-bit PRNG; returns a function giving floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nonNegative(profile, key, max) {
  const value = profile[key] ?? 0;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > max) {
    throw new TypeError(`faults.${key} must be a number between 0 and ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validates a fault profile.
 *
 * @param {object|null|undefined} faults `{seed, rttMs, jitterMs, loss}` or nothing.
 * @returns {null|{seed: number, rttMs: number, jitterMs: number, loss: number}} null when faults are off.
 * @throws {TypeError} for unknown keys or out-of-range values (a mistyped test profile must not silently pass).
 */
export function normalizeFaults(faults) {
  if (faults === null || faults === undefined || faults === false) return null;
  if (typeof faults !== "object") throw new TypeError("faults must be an object {seed, rttMs, jitterMs, loss}");
  const known = new Set(["seed", "rttMs", "jitterMs", "loss"]);
  for (const key of Object.keys(faults)) {
    if (!known.has(key)) throw new TypeError(`faults has an unknown key ${JSON.stringify(key)}`);
  }
  const seed = faults.seed ?? 1;
  if (!Number.isInteger(seed)) throw new TypeError("faults.seed must be an integer");
  return {
    seed,
    rttMs: nonNegative(faults, "rttMs", 10_000),
    jitterMs: nonNegative(faults, "jitterMs", 10_000),
    loss: nonNegative(faults, "loss", 1),
  };
}

/**
 * Decides the fate of one packet (pure: all randomness comes from `rand`).
 *
 * @returns {{drop: boolean, delayMs: number}}
 */
export function planDelivery(rand, profile, reliable) {
  // Draw both numbers every time so the sequence of decisions does not depend on which channel was used.
  const lossDraw = rand();
  const jitterDraw = rand();
  const drop = !reliable && lossDraw < profile.loss;
  const delayMs = Math.max(0, profile.rttMs / 2 + (2 * jitterDraw - 1) * profile.jitterMs);
  return { drop, delayMs };
}

/** Applies a profile to outgoing packets, with injectable timer and clock for tests. */
export class FaultInjector {
  /**
   * @param {object} faults a profile accepted by normalizeFaults (must not be empty).
   * @param {{setTimer?: Function, now?: Function}} [env] timer and clock (default setTimeout / performance.now).
   */
  constructor(faults, env = {}) {
    const profile = normalizeFaults(faults);
    if (!profile) throw new TypeError("FaultInjector needs a fault profile");
    this.profile = profile;
    this._rand = mulberry32(profile.seed);
    this._setTimer = env.setTimer || ((fn, ms) => setTimeout(fn, ms));
    this._now = env.now || (() => performance.now());
    this._lastDue = new Map(); // "peer/channel" -> time the last reliable packet is due, to keep order
    this.counts = { sent: 0, dropped: 0 };
  }

  /**
   * Drops `deliver` or calls it after the planned delay.
   *
   * @param {string|number} peerId destination peer.
   * @param {boolean} reliable true for the ordered, reliable channel.
   * @param {Function} deliver does the actual send.
   * @returns {boolean} false when the packet was dropped.
   */
  schedule(peerId, reliable, deliver) {
    const { drop, delayMs } = planDelivery(this._rand, this.profile, reliable);
    if (drop) {
      this.counts.dropped += 1;
      return false;
    }
    this.counts.sent += 1;
    let due = this._now() + delayMs;
    if (reliable) {
      const key = String(peerId);
      due = Math.max(due, this._lastDue.get(key) ?? 0);
      this._lastDue.set(key, due);
    }
    this._setTimer(deliver, Math.max(0, due - this._now()));
    return true;
  }
}
