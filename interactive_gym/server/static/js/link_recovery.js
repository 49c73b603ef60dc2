// When a peer link that is not healthy gets its next recovery attempt (an ICE restart or a new connection), from
// what its connection is doing. Pure (tested with node --test); webrtc_manager.js asks it once a second.
//
// A connection that has never been up and is still checking candidate pairs ("new" / "checking") is making
// progress: TURN over TLS on a busy machine or a slow network takes several seconds to allocate and check, and a
// new connection would start all of that again (and, if each attempt takes longer than the wait, never finish).
// It gets `connectTimeoutMs`. A link that was up and went down, or one whose ICE is disconnected or failed, gets
// the short `recoveryTimeoutMs`: the sooner a broken path is replaced, the less of the game goes over the server.

export const RECOVERY_TIMEOUT_MS = 5000;
export const CONNECT_TIMEOUT_MS = 20000;

const STILL_CONNECTING = new Set(["new", "checking"]);

/**
 * Milliseconds after the last attempt at which the link gets the next one.
 * @param {{iceState: (string|null), wasHealthy: boolean}} link the connection's ICE state (null: none) and
 *   whether this connection (this generation) was ever healthy.
 * @param {{recoveryTimeoutMs?: number, connectTimeoutMs?: number}} [options]
 */
export function recoveryWaitMs({ iceState, wasHealthy },
  { recoveryTimeoutMs = RECOVERY_TIMEOUT_MS, connectTimeoutMs = CONNECT_TIMEOUT_MS } = {}) {
  if (!wasHealthy && STILL_CONNECTING.has(iceState)) return Math.max(connectTimeoutMs, recoveryTimeoutMs);
  return recoveryTimeoutMs;
}
