// Seeded randomness for AI policies in the browser: an episode must be reproducible from its seed and the
// human's inputs, so no policy may use Math.random. Pure functions, no DOM; tested with `node --test`.

/** 32-bit FNV-1a hash of a string: turns "seed:agent" into a generator seed. */
export function hashString(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * mulberry32: a small, fast generator with a 32-bit state; good enough for sampling actions.
 * @param {number} seed - any integer (taken modulo 2**32)
 * @returns {() => number} uniform floats in [0, 1)
 */
export function mulberry32(seed) {
  let state = seed >>> 0;
  return function next() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator an agent uses in one episode: same episode seed and agent id, same draws. */
export function episodeRng(episodeSeed, agentId) {
  return mulberry32(hashString(`${episodeSeed}:${agentId}`));
}

/** Index of the largest value (the first one on ties). */
export function argmax(values) {
  if (!values || values.length === 0) throw new Error("argmax of an empty list");
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** softmax(logits / temperature), computed stably (the max is subtracted first). */
export function softmax(logits, temperature = 1) {
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const scaled = Array.from(logits, (v) => v / temperature);
  const top = Math.max(...scaled);
  const exps = scaled.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / total);
}

/**
 * Draws an index from softmax(logits / temperature) with one call to `rng`.
 * @param {ArrayLike<number>} logits
 * @param {number} temperature
 * @param {() => number} rng - uniform [0, 1)
 */
export function sampleCategorical(logits, temperature, rng) {
  const probs = softmax(logits, temperature);
  const u = rng();
  let acc = 0;
  for (let i = 0; i < probs.length; i++) {
    acc += probs[i];
    if (u < acc) return i;
  }
  return probs.length - 1; // rounding left u just above the sum: the last action
}
