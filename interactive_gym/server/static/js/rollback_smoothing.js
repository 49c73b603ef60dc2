// Optional display smoothing of rollback corrections (GymScene(rollback_smoothing_frames=N), off by default).
// Pure: no DOM, no Phaser, so `node --test` checks it.
//
// When a p2p tick rolls back, the state it shows may put an object somewhere else than the frame before showed it
// (the partner's avatar was predicted standing still and really walked). Without smoothing it jumps there in one
// frame. With N > 0 frames, such an object glides from where it was shown to its corrected position over the next
// N simulation frames: each frame it covers 1/(frames left) of the distance still to go, so a target that keeps
// moving is followed and the N-th frame draws it exactly where the model has it.
//
// What counts as corrected: a persistent object (one with a render id, model key "o:<id>") present before and
// after the packet of a tick that rolled back, whose position (spec x, y) changed in that packet. The netcode
// cannot say which part of a move the correction caused, so an object that also moved by itself that frame
// glides too. Objects the caller excludes (the page's own avatar: its inputs are never predicted) and transient
// objects (no id, matched by list position) are never smoothed; new and removed objects appear and vanish at once.
//
// Display only: the model (and so the uploads, the latency probes and every render packet) is never changed; the
// renderer draws the returned positions instead of the model's. With 0 frames the counters still run (how many
// corrections, how far they jumped) and nothing else changes.

import { quantile } from "./draw_queue.js";

/** The largest GymScene(rollback_smoothing_frames=...) (interactive_gym/scenes/gym_scene.py checks the same). */
export const MAX_SMOOTHING_FRAMES = 10;

/** {x, y} of a spec with finite numeric x and y (rect, circle, text, image); null otherwise (line, polygon). */
export function positionOf(spec) {
  if (!spec || !Number.isFinite(spec.x) || !Number.isFinite(spec.y)) return null;
  return { x: spec.x, y: spec.y };
}

/** Euclidean distance between two positions, in pixels. */
export function distance(a, b) {
  return Math.hypot(b.x - a.x, b.y - a.y);
}

/**
 * Where to draw a gliding object this frame: `1 / framesLeft` of the way from where it is shown to its target.
 * @param {{x: number, y: number}} shown where the object is on screen now
 * @param {{x: number, y: number}} target where the model has it (the corrected position)
 * @param {number} framesLeft frames of the glide left, this one included (1: draw it at the target)
 */
export function glidePosition(shown, target, framesLeft) {
  if (!Number.isInteger(framesLeft) || framesLeft < 1) {
    throw new RangeError(`framesLeft must be an integer >= 1, got ${framesLeft}`);
  }
  if (framesLeft === 1) return { x: target.x, y: target.y }; // exactly the model's value, no rounding left over
  return { x: shown.x + (target.x - shown.x) / framesLeft, y: shown.y + (target.y - shown.y) / framesLeft };
}

/**
 * Keys of the persistent objects a correction moved: changed in the packet, present before it (in `shown`) and
 * after it with a position, at a different place, and not excluded.
 * @param {Map<string, {x: number, y: number}>} shown key -> position on screen before the packet
 * @param {{objects: Map<string, object>}} model the model after the packet
 * @param {Iterable<string>} changed the keys the packet changed (applyPacket's result.changed)
 * @param {Iterable<string>} [excludeIds] render ids never smoothed
 * @returns {string[]}
 */
export function correctedKeys(shown, model, changed, excludeIds = []) {
  const excluded = new Set([...excludeIds].map((id) => `o:${id}`));
  const out = [];
  for (const key of changed) {
    if (!key.startsWith("o:") || excluded.has(key)) continue;
    const before = shown.get(key);
    const after = positionOf(model.objects.get(key.slice(2)));
    if (before && after && (before.x !== after.x || before.y !== after.y)) out.push(key);
  }
  return out;
}

/** The last `capacity` values pushed (a ring: memory stays bounded over a long game). */
class Ring {
  constructor(capacity) {
    this.capacity = capacity;
    this.values = [];
    this.next = 0;
  }

  push(value) {
    if (this.values.length < this.capacity) this.values.push(value);
    else this.values[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
  }

  /** {n, p50, max} rounded to 0.1 px; nulls when empty. */
  summary() {
    const sorted = [...this.values].sort((a, b) => a - b);
    const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
    return { n: sorted.length, p50: round(quantile(sorted, 0.5)),
      max: round(sorted.length ? sorted[sorted.length - 1] : null) };
  }
}

/** The glides in progress and the counters of one renderer. */
export class RollbackSmoothing {
  /** @param {{capacity?: number}} [options] measurements kept (the last `capacity` of each kind) */
  constructor({ capacity = 4096 } = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError(`capacity must be a positive integer, got ${capacity}`);
    this.glides = new Map(); // key -> {at: position shown now, left: frames of the glide still to draw}
    this.corrections = 0; // objects a correction moved
    this.smoothed = 0; // of those, glided instead of jumping
    this.jumps = new Ring(capacity); // each correction's distance: what one frame shows without smoothing
    this.steps = new Ring(capacity); // each frame's move of a gliding object: what is shown instead
  }

  /**
   * Where every persistent object is on screen now (gliding ones where the glide has them): call before
   * applying the packet of a tick that rolled back.
   * @param {{objects: Map<string, object>}} model
   * @returns {Map<string, {x: number, y: number}>}
   */
  shownPositions(model) {
    const shown = new Map();
    for (const [id, spec] of model.objects) {
      const key = `o:${id}`;
      const at = this.glides.get(key)?.at ?? positionOf(spec);
      if (at) shown.set(key, { x: at.x, y: at.y });
    }
    return shown;
  }

  /**
   * After every applied packet: starts a glide for each object a correction moved (with `shown`), advances
   * every glide by one frame, and returns where to draw the gliding objects instead of the model's position.
   * @param {{objects: Map<string, object>}} model the model after the packet
   * @param {{changed: Iterable<string>, removed: Iterable<string>}} result applyPacket's result
   * @param {{shown?: Map<string, {x: number, y: number}>|null, frames?: number, exclude?: Iterable<string>}}
   *   [correction] `shown`: shownPositions() before the packet, for a tick that rolled back (null: none);
   *   `frames`: glide length (0: count only); `exclude`: render ids never smoothed
   * @returns {Map<string, {x: number, y: number}>} key -> position to draw this frame
   */
  afterPacket(model, result, { shown = null, frames = 0, exclude = [] } = {}) {
    if (!Number.isInteger(frames) || frames < 0 || frames > MAX_SMOOTHING_FRAMES) {
      throw new RangeError(`frames must be an integer from 0 to ${MAX_SMOOTHING_FRAMES}, got ${frames}`);
    }
    for (const key of result.removed) this.glides.delete(key);
    if (shown) {
      for (const key of correctedKeys(shown, model, result.changed, exclude)) {
        const from = shown.get(key);
        this.corrections += 1;
        this.jumps.push(distance(from, positionOf(model.objects.get(key.slice(2)))));
        if (frames > 0) {
          this.glides.set(key, { at: from, left: frames });
          this.smoothed += 1;
        } else {
          this.glides.delete(key); // the option went to 0 mid-glide: drawn where the model has it
        }
      }
    }
    const draw = new Map();
    for (const [key, glide] of this.glides) {
      const target = positionOf(model.objects.get(key.slice(2)));
      if (!target) {
        this.glides.delete(key); // no longer positioned (a type change): drawn as the model has it
        continue;
      }
      const next = glidePosition(glide.at, target, glide.left);
      this.steps.push(distance(glide.at, next));
      glide.at = next;
      glide.left -= 1;
      if (glide.left === 0) this.glides.delete(key);
      draw.set(key, next);
    }
    return draw;
  }

  /**
   * {corrections, smoothed, gliding, jump_px: {n, p50, max}, glide_step_px: {n, p50, max}}: objects moved by a
   * correction, how many glided, glides in progress, the corrections' distances (the on-screen jump without
   * smoothing) and the per-frame moves of gliding objects (the on-screen jump with it).
   */
  summary() {
    return { corrections: this.corrections, smoothed: this.smoothed, gliding: this.glides.size,
      jump_px: this.jumps.summary(), glide_step_px: this.steps.summary() };
  }
}
