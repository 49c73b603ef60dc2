// What the renderer still has to show, and how evenly new frames reached the screen. Pure: no DOM, no Phaser.
//
// The simulation ticks at its fixed rate (frame_ticker.js, or the browser-mode loop) and every render packet is
// applied to the model at once, because packets are diffs and none may be skipped. Drawing the model (creating,
// changing and removing the Phaser objects) happens once per animation frame, just before Phaser paints: a
// PendingDraw collects what the packets since the last paint touched, so each object is synced once with its
// latest spec however many packets arrived (never more than one draw per animation frame, never a packet drawn
// twice), and an animation frame with no new packet draws nothing.
//
// FramePacing keeps the intervals between animation frames that showed a new packet: the "on screen"
// frame pacing the benchmarks report (p50 near 1000/fps is smooth; a p99 of two periods means skipped frames).

/** The union of applyPacket results since the last flush; the last thing that happened to a key wins. */
export class PendingDraw {
  constructor() {
    this.clear();
  }

  clear() {
    this.keys = new Map(); // key -> "changed" | "removed"
    this.restack = false;
    this.resized = false;
    this.backgroundChanged = false;
    this.packets = 0;
  }

  /**
   * Adds one applied packet.
   * @param {{changed: Iterable<string>, removed: Iterable<string>, restack: boolean, resized: boolean,
   *   backgroundChanged: boolean}} result what applyPacket returned for it
   */
  add(result) {
    // Within one packet applyPacket never lists a key as both removed and changed: order does not matter.
    for (const key of result.removed) this.keys.set(key, "removed");
    for (const key of result.changed) this.keys.set(key, "changed");
    this.restack ||= Boolean(result.restack);
    this.resized ||= Boolean(result.resized);
    this.backgroundChanged ||= Boolean(result.backgroundChanged);
    this.packets += 1;
  }

  /** True when at least one packet arrived since the last take(). */
  get due() {
    return this.packets > 0;
  }

  /**
   * Everything to draw now, and empties the queue.
   * @returns {{removed: string[], changed: string[], restack: boolean, resized: boolean,
   *   backgroundChanged: boolean, packets: number}}
   */
  take() {
    const removed = [];
    const changed = [];
    for (const [key, what] of this.keys) (what === "removed" ? removed : changed).push(key);
    const out = { removed, changed, restack: this.restack, resized: this.resized,
      backgroundChanged: this.backgroundChanged, packets: this.packets };
    this.clear();
    return out;
  }
}

/** The `q` quantile (0..1) of sorted `values` by the nearest-rank rule; null when empty. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Inter-frame intervals of frames that showed something new, the last `capacity` of them. */
export class FramePacing {
  /** @param {number} [capacity] intervals kept (a ring: memory stays bounded over a long game) */
  constructor(capacity = 4096) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.reset();
  }

  /** Forgets everything measured so far (a benchmark measures from here). */
  reset() {
    this.intervals = [];
    this.next = 0;
    this.last = null;
    this.frames = 0;
    this.coalesced = 0;
  }

  /**
   * A new frame reached the screen at `timeMs` after showing `packets` packets (more than one: the others
   * were never on screen).
   */
  shown(timeMs, packets = 1) {
    this.frames += 1;
    this.coalesced += Math.max(0, packets - 1);
    if (this.last !== null && timeMs >= this.last) {
      if (this.intervals.length < this.capacity) this.intervals.push(timeMs - this.last);
      else this.intervals[this.next] = timeMs - this.last;
      this.next = (this.next + 1) % this.capacity;
    }
    this.last = timeMs;
  }

  /** Forget the previous frame (a hidden tab or a pause between episodes is not a slow frame). */
  gap() {
    this.last = null;
  }

  /** {frames, coalesced, intervals, p50_ms, p99_ms, max_ms} over the kept intervals. */
  summary() {
    const sorted = [...this.intervals].sort((a, b) => a - b);
    const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
    return { frames: this.frames, coalesced: this.coalesced, intervals: sorted.length,
      p50_ms: round(quantile(sorted, 0.5)), p99_ms: round(quantile(sorted, 0.99)),
      max_ms: round(sorted.length ? sorted[sorted.length - 1] : null) };
  }
}
