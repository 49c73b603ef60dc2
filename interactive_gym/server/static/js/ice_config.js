/**
 * The RTCConfiguration of a p2p game page: pure functions, no browser APIs (tested with `node --test`).
 *
 * The server builds each participant's complete RTCConfiguration once (`WebRTCSettings.grant_for` in
 * configurations/webrtc.py: ICE servers with that participant's credentials, the transport policy) and sends it
 * as `rtc_configuration` in `pyodide_game_ready` (and, renewed before the credentials expire, in `turn_refresh`),
 * next to the seed's `turn_config` {username, credential, force_relay, expires_at}. The page hands it to
 * RTCPeerConnection as it is: no URL, default or policy is decided here.
 */

const POLICIES = new Set(["all", "relay"]);

/**
 * Checks that `config` has the shape of the server's RTCConfiguration and returns it unchanged (same object).
 *
 * @param {unknown} config `rtc_configuration` from the server.
 * @returns {RTCConfiguration}
 * @throws {TypeError} when it is missing or malformed: the page and the server do not match, so fail loudly.
 */
export function checkRtcConfiguration(config) {
  if (!config || typeof config !== "object" || !Array.isArray(config.iceServers)) {
    throw new TypeError("rtc_configuration must be an object with an iceServers array (sent by the server)");
  }
  if (!POLICIES.has(config.iceTransportPolicy)) {
    throw new TypeError(`rtc_configuration.iceTransportPolicy must be "all" or "relay", got ${config.iceTransportPolicy}`);
  }
  return config;
}

/**
 * What an RTCConfiguration says about TURN, for logs and the research data.
 *
 * @param {RTCConfiguration} config
 * @returns {{hasTurn: boolean, forceRelay: boolean}} hasTurn: a `turn:`/`turns:` server with credentials is listed.
 */
export function describeRtcConfiguration(config) {
  const urls = (s) => (Array.isArray(s.urls) ? s.urls : [s.urls]);
  const hasTurn = config.iceServers.some((s) => s && s.username && s.credential &&
    urls(s).some((u) => typeof u === "string" && (u.startsWith("turn:") || u.startsWith("turns:"))));
  return { hasTurn, forceRelay: config.iceTransportPolicy === "relay" };
}

/**
 * Maps `pyodide_game_ready` to WebRTCManager options: the seed's names from `turn_config`
 * ({turnUsername, turnCredential, forceRelay}) and the server's RTCConfiguration as `rtcConfiguration`.
 *
 * @param {object|null} turnConfig `{username, credential, force_relay, expires_at}` from the event, or null.
 * @param {{rtc_configuration?: RTCConfiguration}} ready the event.
 * @returns {object} the options (the TURN keys only when there is a turn_config).
 * @throws {TypeError} when the event carries no valid `rtc_configuration`.
 */
export function optionsFromTurnConfig(turnConfig, ready) {
  const options = { rtcConfiguration: checkRtcConfiguration(ready?.rtc_configuration) };
  if (turnConfig) {
    options.turnUsername = turnConfig.username;
    options.turnCredential = turnConfig.credential;
    options.forceRelay = Boolean(turnConfig.force_relay);
  }
  return options;
}
