// Loads the Python side of a p2p game (Pyodide, the scene's files, P2PGameHost) and wraps it for JavaScript.
//
// Every per-frame call crosses the JS/Python boundary with strings only: packets as base64 text in, one JSON
// string out (see interactive_gym/browser/p2p_host.py). Proxies are destroyed at once so nothing leaks over
// thousands of frames. A Python exception becomes an EnvError carrying the Python traceback.

import { EnvError } from "./pyodide_env_host.js";
import { RuntimeLoadError, fetchBundle, markLoad, preloadPyodide, writeBundle } from "./pyodide_loader.js";

/** Bytes -> base64 text. */
export function bytesToBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

/** base64 text -> bytes. */
export function base64ToBytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** The JavaScript face of one P2PGameHost. */
export class PyodideP2PHost {
  constructor(proxy) {
    this.proxy = proxy;
    this.tickFn = proxy.tick;
    this.receiveFn = proxy.receive;
  }

  /** Builds the host (P2PGameHost.from_config_json) in an already prepared Pyodide. */
  static create(pyodide, config, myPlayerId) {
    const module = pyodide.pyimport("interactive_gym.browser.p2p_host");
    try {
      return new PyodideP2PHost(module.P2PGameHost.from_config_json(JSON.stringify(config), myPlayerId,
        performance.now()));
    } catch (err) {
      throw new EnvError("creating the environment", err);
    } finally {
      module.destroy();
    }
  }

  call(where, fn) {
    try {
      return fn();
    } catch (err) {
      throw new EnvError(where, err);
    }
  }

  /** Restarts the session clock (silence is measured from here): call when the game really starts. */
  start(nowMs) {
    this.call("start", () => this.proxy.start(nowMs));
  }

  /** Queues a packet received from `peerId`. */
  receive(peerId, bytes) {
    this.receiveFn(peerId, bytesToBase64(bytes));
  }

  /** One frame; returns the parsed result ({frame, status, out: [[peer, bytes]], render, events, ...}). */
  tick(nowMs, keys) {
    const result = JSON.parse(this.call("step", () => this.tickFn(nowMs, keys.join("\n"))));
    result.out = result.out.map(([peer, text]) => [peer, base64ToBytes(text)]);
    return result;
  }

  /** The upload payload of `episode` (without game_id and stats). */
  episodePayload(episode, partial = false, endReason = "done") {
    return JSON.parse(this.call("upload", () => this.proxy.episode_payload_json(episode, partial, endReason)));
  }

  /** Confirmed steps of `episode` so far. */
  stepCount(episode) {
    return this.proxy.step_count(episode);
  }

  get currentEpisode() {
    return this.proxy.current_episode;
  }

  /** Session statistics (parsed stats_json). */
  stats() {
    return JSON.parse(this.proxy.stats_json());
  }

  partnerLeft(playerId) {
    this.call("partner_left", () => this.proxy.partner_left(playerId));
  }

  /** The partner-drop policy plays `playerId` from now (JSON {ok, frame} | {ok: false, error}). */
  takeOver(playerId) {
    return this.call("take_over", () => this.proxy.take_over(playerId));
  }

  /**
   * A rejoining player's page asks for the game (P2PGameHost.request_rejoin): {ok, pending} (the chunks come in a
   * later tick's `rejoin`), {ok, id, chunks} or {ok: false, error}.
   */
  requestRejoin(playerId) {
    return JSON.parse(this.call("rejoin", () => this.proxy.request_rejoin(playerId)));
  }

  /** A silent partner may come back on a new page: keep the rows played without them (the gap). */
  partnerAway(playerId) {
    this.call("rejoin", () => this.proxy.partner_away(playerId));
  }

  /** The server says `playerId` is coming back on a new page (a snapshot served before is stale). */
  expectRejoin(playerId) {
    this.call("rejoin", () => this.proxy.expect_rejoin(playerId));
  }

  /** One chunk of the snapshot for this (rejoining) page: {ok, loaded[, frame, episode, t]} or {ok: false, error}. */
  addSnapshotChunk(id, index, count, text, nowMs) {
    return JSON.parse(this.call("rejoin", () => this.proxy.add_snapshot_chunk(id, index, count, text, nowMs)));
  }

  /** Goodbye packets for every connected peer: [[peer, bytes], ...]. */
  closePackets() {
    return JSON.parse(this.proxy.close_packets()).map(([peer, text]) => [peer, base64ToBytes(text)]);
  }

  destroy() {
    for (const fn of [this.tickFn, this.receiveFn, this.proxy]) fn?.destroy?.();
    this.proxy = null;
  }
}

/**
 * Everything a p2p game needs before its first frame: Pyodide, packages, the scene's files, the host built.
 * @param {object} config the p2p scene config from `pyodide_game_ready`.
 * @param {number} myPlayerId
 * @param {{onProgress?: (event: object) => void}} [options]
 * @returns {Promise<{pyodide: object, host: PyodideP2PHost}>}
 */
export async function loadP2PRuntime(config, myPlayerId, { onProgress } = {}) {
  // The game's files download while the interpreter starts (a reloaded page waits for both); a failure of
  // either is reported below, in its own stage.
  markLoad("game-files-start");
  const bundle = fetchBundle(config.bundle.manifest_url);
  bundle.catch(() => {}); // awaited below: not an unhandled rejection if the interpreter fails first
  const pyodide = await preloadPyodide(config, { onProgress });
  const packages = config.pyodide?.packages ?? [];
  if (packages.length > 0) {
    const errors = [];
    await pyodide.loadPackage(packages, { errorCallback: (m) => errors.push(m) }).catch((e) => errors.push(String(e)));
    if (errors.length) {
      throw new RuntimeLoadError("packages", "The game's Python packages could not be loaded.", new Error(errors.join("; ")));
    }
  }
  let manifest;
  try {
    ({ manifest } = writeBundle(pyodide, await bundle));
    markLoad("game-files-installed");
  } catch (err) {
    throw new RuntimeLoadError("files", "The game files could not be loaded. Please retry.", err);
  }
  if (manifest.hash !== config.bundle.hash) {
    throw new RuntimeLoadError("files", "The game was updated while loading. Please reload the page.",
      new Error(`bundle hash ${manifest.hash} != ${config.bundle.hash}`));
  }
  try {
    const host = PyodideP2PHost.create(pyodide, config, myPlayerId);
    markLoad("game-host-built");
    return { pyodide, host };
  } catch (err) {
    throw new RuntimeLoadError("env", "The game could not start.", err);
  }
}
