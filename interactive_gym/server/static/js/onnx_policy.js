// ONNX policies in the page, run by onnxruntime-web (served from the npm package, WebAssembly backend).
//
// The network takes float32[1, n] (its first input) and gives one logit per discrete action (its first
// output). The action is the argmax, or a draw from softmax(logits / temperature) with a generator seeded
// from the episode seed and the agent id, so the episode is reproducible from its seed and the human's
// inputs. Single-threaded WebAssembly: needs no cross-origin isolation, and a small MLP runs in well under
// a millisecond.

import { argmax, episodeRng, sampleCategorical } from "./seeded_rng.js";

export const DEFAULT_ORT_URL = "/vendor/onnxruntime-web/";

const runtimes = new Map(); // base URL -> Promise<ort>; one runtime per page

/** Imports onnxruntime-web once per page, configured for single-threaded WebAssembly. */
export function loadOrt(baseUrl = DEFAULT_ORT_URL) {
  const base = new URL(baseUrl, globalThis.location?.href).href;
  if (!runtimes.has(base)) {
    const promise = import(`${base}ort.wasm.min.mjs`).then((ort) => {
      ort.env.wasm.wasmPaths = base;
      ort.env.wasm.numThreads = 1;
      ort.env.logLevel = "error";
      return ort;
    });
    promise.catch(() => runtimes.delete(base));
    runtimes.set(base, promise);
  }
  return runtimes.get(base);
}

export class OnnxAgent {
  /**
   * @param {object} ort - the onnxruntime-web module
   * @param {object} session - an ort.InferenceSession
   * @param {string} agentId
   * @param {{sample?: boolean, temperature?: number, frame_skip?: number}} spec
   */
  constructor(ort, session, agentId, spec) {
    this.ort = ort;
    this.session = session;
    this.agentId = agentId;
    this.sample = Boolean(spec.sample);
    this.temperature = spec.temperature ?? 1;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
    this.rng = episodeRng(0, agentId);
    this.lastInferenceMs = 0;
  }

  /** Downloads the model at spec.url and opens a session. */
  static async create(agentId, spec, { ortUrl = DEFAULT_ORT_URL } = {}) {
    const ort = await loadOrt(ortUrl);
    const response = await fetch(spec.url);
    if (!response.ok) throw new Error(`ONNX model for ${agentId}: HTTP ${response.status} from ${spec.url}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new OnnxAgent(ort, session, agentId, spec);
  }

  /** Re-seeds the sampling generator for an episode. */
  resetEpisode(seed) {
    this.rng = episodeRng(seed, this.agentId);
  }

  /** Logits for one input vector. */
  async logits(input) {
    const tensor = new this.ort.Tensor("float32", input, [1, input.length]);
    const started = performance.now();
    const results = await this.session.run({ [this.inputName]: tensor });
    this.lastInferenceMs = performance.now() - started;
    return results[this.outputName].data;
  }

  /** The action for one input vector (argmax, or a seeded draw when sampling). */
  async act(input) {
    const logits = await this.logits(input);
    return this.sample ? sampleCategorical(logits, this.temperature, this.rng) : argmax(logits);
  }

  async release() {
    await this.session.release?.();
  }
}
