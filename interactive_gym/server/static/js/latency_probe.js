// Measures input -> display latency in a game page, for the research data, the tests and the benchmark.
//
// Pure (no DOM): the page reports each game-key press (`keyDown`) and, after every drawn frame, where each
// avatar is (`frameDrawn`). A sample is the time from the latest press of the local player to the first drawn
// frame in which the local avatar moved: `samples` end at that frame's tick (its place in the frame schedule),
// `drawnSamples` when its drawing was done (adding this page's simulation and drawing time), `frameSamples` in
// simulated frames (from the frame about to be simulated at the press to the frame count once the move is drawn:
// input delay + 1 when nothing stalls, whatever the page's timing). Presses that move nothing (a wall) expire after `windowMs` so they
// never inflate a later sample. Move times of every avatar are kept (wall clock) so that remote latency can be
// computed across two pages on one machine (benchmarks/p2p_latency.py).

/** The q-quantile (nearest rank) of numbers, or null for none. */
export function quantile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[index];
}

export class LatencyProbe {
  /**
   * @param {string} localAgent the agent this page's player controls.
   * @param {{windowMs?: number, maxSamples?: number}} [options]
   */
  constructor(localAgent, { windowMs = 500, maxSamples = 5000 } = {}) {
    this.localAgent = localAgent;
    this.windowMs = windowMs;
    this.maxSamples = maxSamples;
    this.pending = null; // {at (page clock), wall}
    this.samples = [];
    this.drawnSamples = [];
    this.frameSamples = [];
    this.expired = 0;
    this.presses = []; // wall-clock ms of local presses
    this.moves = {}; // agent -> wall-clock ms of frames where it moved
    this.last = new Map(); // agent -> "x,y"
  }

  /**
   * A game key went down at page time `atMs` (event.timeStamp) = wall time `wallMs`.
   * @param {number|null} [frame] the frame the game simulates next (null: no frame samples).
   */
  keyDown(atMs, wallMs, frame = null) {
    this.pending = { at: atMs, wall: wallMs, frame };
    if (this.presses.length < this.maxSamples) this.presses.push(wallMs);
  }

  /**
   * A frame was drawn at page time `atMs` (wall `wallMs`) with avatars at `positions` ({agent: {x, y}}).
   * @param {number} [frameAtMs] page time of the frame's tick (default `atMs`).
   * @param {number|null} [frame] frames simulated once this one is drawn (null: no frame samples).
   * @returns {number|null} the latency sample this frame completed (to its tick), if any.
   */
  frameDrawn(atMs, wallMs, positions, frameAtMs = atMs, frame = null) {
    if (this.pending && atMs - this.pending.at > this.windowMs) {
      this.pending = null;
      this.expired += 1;
    }
    let sample = null;
    for (const [agent, pos] of Object.entries(positions)) {
      if (!pos) continue;
      const key = `${pos.x},${pos.y}`;
      const before = this.last.get(agent);
      this.last.set(agent, key);
      if (before === undefined || before === key) continue;
      const moves = (this.moves[agent] ??= []);
      if (moves.length < this.maxSamples) moves.push(wallMs);
      if (agent === this.localAgent && this.pending && atMs >= this.pending.at) {
        sample = Math.max(0, frameAtMs - this.pending.at);
        if (this.samples.length < this.maxSamples) {
          this.samples.push(sample);
          this.drawnSamples.push(atMs - this.pending.at);
          if (frame !== null && this.pending.frame !== null) this.frameSamples.push(frame - this.pending.frame);
        }
        this.pending = null;
      }
    }
    return sample;
  }

  /** {p50, p99, max, count, expired, drawn: {p50, p99, max}, frames: {p50, p99, max}} of the local samples
   * (ms rounded to 0.1; frames in whole frames). */
  summary() {
    const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
    const stats = (values) => ({ p50: round(quantile(values, 0.5)), p99: round(quantile(values, 0.99)),
      max: round(values.length ? Math.max(...values) : null) });
    return { ...stats(this.samples), count: this.samples.length, expired: this.expired,
      drawn: stats(this.drawnSamples), frames: stats(this.frameSamples) };
  }
}
