/**
 * ICE server configuration for WebRTCManager: pure functions, no browser APIs (tested with `node --test`).
 *
 * The server sends each participant a `turn_config` ({username, credential, force_relay, urls, expires_at}); the
 * page turns it into WebRTCManager options ({turnUsername, turnCredential, forceRelay, turnUrls, stunUrls}) and
 * this module turns those into an RTCConfiguration.
 */

/** Open Relay (metered.ca), the public TURN service the original TURN wiring named. Same list as the server's. */
export const DEFAULT_TURN_URLS = Object.freeze([
  "turn:openrelay.metered.ca:80",
  "turn:openrelay.metered.ca:443",
  "turn:openrelay.metered.ca:443?transport=tcp",
]);
export const DEFAULT_STUN_URLS = Object.freeze(["stun:openrelay.metered.ca:80"]);

function checkUrls(urls, schemes, name) {
  if (!Array.isArray(urls)) throw new TypeError(`${name} must be an array of URL strings`);
  for (const url of urls) {
    if (typeof url !== "string" || !schemes.some((s) => url.startsWith(s) && url.length > s.length)) {
      throw new TypeError(`${name} entry ${JSON.stringify(url)} must start with ${schemes.join(" or ")}`);
    }
  }
  return [...urls];
}

/**
 * Builds the RTCIceServer list: STUN entries, then one TURN entry when credentials exist.
 *
 * @param {{turnUsername?: string|null, turnCredential?: string|null, turnUrls?: string[], stunUrls?: string[]}} opts
 * @returns {{iceServers: RTCIceServer[], hasTurn: boolean}}
 * @throws {TypeError} on half a credential or malformed URLs (a configuration bug, so fail loudly).
 */
export function buildIceServers(opts = {}) {
  const { turnUsername = null, turnCredential = null } = opts;
  const stunUrls = checkUrls(opts.stunUrls ?? DEFAULT_STUN_URLS, ["stun:", "stuns:"], "stunUrls");
  const turnUrls = checkUrls(opts.turnUrls ?? DEFAULT_TURN_URLS, ["turn:", "turns:"], "turnUrls");
  const hasUser = turnUsername !== null && turnUsername !== undefined && turnUsername !== "";
  const hasCred = turnCredential !== null && turnCredential !== undefined && turnCredential !== "";
  if (hasUser !== hasCred) {
    throw new TypeError("turnUsername and turnCredential must be given together (or neither)");
  }
  const iceServers = [];
  if (stunUrls.length > 0) iceServers.push({ urls: stunUrls });
  const hasTurn = hasUser && turnUrls.length > 0;
  if (hasTurn) iceServers.push({ urls: turnUrls, username: turnUsername, credential: turnCredential });
  return { iceServers, hasTurn };
}

/**
 * Builds the RTCConfiguration for every RTCPeerConnection of a game.
 *
 * @param {object} opts WebRTCManager options (see buildIceServers) plus `forceRelay`.
 * @returns {{config: RTCConfiguration, hasTurn: boolean}}
 * @throws {TypeError} when forceRelay is set without TURN credentials: relay-only ICE without a relay never connects.
 */
export function buildRtcConfiguration(opts = {}) {
  const { iceServers, hasTurn } = buildIceServers(opts);
  const forceRelay = Boolean(opts.forceRelay);
  if (forceRelay && !hasTurn) {
    throw new TypeError("forceRelay needs TURN credentials (turnUsername/turnCredential)");
  }
  const config = { iceServers, iceTransportPolicy: forceRelay ? "relay" : "all" };
  return { config, hasTurn };
}

/**
 * Maps the `pyodide_game_ready` event to WebRTCManager options (turnUsername, turnCredential, forceRelay, ...).
 *
 * @param {object|null} turnConfig `{username, credential, force_relay, urls}` from the event, or null (no TURN).
 * @param {{stun_urls?: string[], ice_servers?: RTCIceServer[]}} [ready] the rest of the event: STUN URLs are taken
 *   from `stun_urls`, else from the credential-less entries of `ice_servers`; absent both, the defaults apply.
 * @returns {object} `{turnUsername, turnCredential, forceRelay, turnUrls, stunUrls}` (absent keys omitted).
 */
export function optionsFromTurnConfig(turnConfig, ready = {}) {
  const options = {};
  if (turnConfig) {
    options.turnUsername = turnConfig.username;
    options.turnCredential = turnConfig.credential;
    options.forceRelay = Boolean(turnConfig.force_relay);
    if (Array.isArray(turnConfig.urls)) options.turnUrls = turnConfig.urls;
  }
  if (Array.isArray(ready.stun_urls)) {
    options.stunUrls = ready.stun_urls;
  } else if (Array.isArray(ready.ice_servers)) {
    options.stunUrls = ready.ice_servers
      .filter((s) => s && !s.username)
      .flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]))
      .filter((u) => typeof u === "string" && (u.startsWith("stun:") || u.startsWith("stuns:")));
  }
  return options;
}
