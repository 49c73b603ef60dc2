/**
 * Reading RTCPeerConnection.getStats() and keeping the record of fallback periods: pure, node-testable.
 *
 * Connection type comes from the selected candidate pair: the `transport` report names it
 * (`selectedCandidatePairId`), and the pair's local/remote candidate reports give `candidateType`
 * (host, srflx, prflx, relay), `protocol` and, for relay candidates, `relayProtocol`.
 */

/** Finds the selected candidate pair in a list of stats reports, or null before ICE has selected one. */
export function findSelectedPair(reports) {
  const byId = new Map(reports.map((r) => [r.id, r]));
  for (const r of reports) {
    if (r.type === "transport" && r.selectedCandidatePairId) {
      const pair = byId.get(r.selectedCandidatePairId);
      if (pair) return pair;
    }
  }
  // Some browsers expose no transport report: fall back to the pair flagged as selected / nominated and working.
  return (
    reports.find((r) => r.type === "candidate-pair" && r.selected) ||
    reports.find((r) => r.type === "candidate-pair" && r.nominated && r.state === "succeeded") ||
    null
  );
}

/**
 * Describes how a peer connection carries its traffic.
 *
 * @param {object[]} reports `Array.from((await pc.getStats()).values())`.
 * @returns {null|{type: "direct"|"relay", localCandidateType: string, remoteCandidateType: string,
 *   protocol: string|null, relayProtocol: string|null, rttMs: number|null, bytesSent: number|null,
 *   bytesReceived: number|null, packetsLost: number|null}} null while no pair is selected.
 */
export function describeConnection(reports) {
  const pair = findSelectedPair(reports);
  if (!pair) return null;
  const byId = new Map(reports.map((r) => [r.id, r]));
  const local = byId.get(pair.localCandidateId) || {};
  const remote = byId.get(pair.remoteCandidateId) || {};
  const localType = local.candidateType || "unknown";
  const remoteType = remote.candidateType || "unknown";
  const relayed = localType === "relay" || remoteType === "relay";
  const lost = reports.filter((r) => r.type === "inbound-rtp" && typeof r.packetsLost === "number");
  return {
    type: relayed ? "relay" : "direct",
    localCandidateType: localType,
    remoteCandidateType: remoteType,
    protocol: local.protocol || null,
    relayProtocol: localType === "relay" ? local.relayProtocol || null : null,
    rttMs: typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null,
    bytesSent: typeof pair.bytesSent === "number" ? pair.bytesSent : null,
    bytesReceived: typeof pair.bytesReceived === "number" ? pair.bytesReceived : null,
    // DataChannel-only connections have no RTP streams; loss is then measured by the game protocol instead.
    packetsLost: lost.length ? lost.reduce((sum, r) => sum + r.packetsLost, 0) : null,
  };
}

/** True when two descriptions differ in what the research data cares about (type and candidate types). */
export function connectionChanged(before, after) {
  if (!before || !after) return before !== after;
  return (
    before.type !== after.type ||
    before.localCandidateType !== after.localCandidateType ||
    before.remoteCandidateType !== after.remoteCandidateType ||
    before.protocol !== after.protocol
  );
}

/** Running RTT summary (count, mean, min, max, last) without keeping every sample. */
export class RttSummary {
  constructor() {
    this.count = 0;
    this.sum = 0;
    this.min = null;
    this.max = null;
    this.last = null;
  }

  add(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return;
    this.count += 1;
    this.sum += ms;
    this.min = this.min === null ? ms : Math.min(this.min, ms);
    this.max = this.max === null ? ms : Math.max(this.max, ms);
    this.last = ms;
  }

  toJSON() {
    return { count: this.count, meanMs: this.count ? this.sum / this.count : null, minMs: this.min,
      maxMs: this.max, lastMs: this.last };
  }
}

/**
 * Periods during which a peer's traffic went through the Socket.IO relay instead of the DataChannel.
 * Times are caller-supplied milliseconds (performance.now() or Date.now()), so the class stays pure.
 */
export class FallbackLog {
  constructor() {
    this.active = false;
    this._periods = [];
  }

  /** Records a switch; returns true when the state actually changed (so callers fire events only then). */
  set(active, nowMs, reason = null) {
    if (Boolean(active) === this.active) return false;
    this.active = Boolean(active);
    if (this.active) this._periods.push({ startMs: nowMs, endMs: null, reason });
    else this._periods[this._periods.length - 1].endMs = nowMs;
    return true;
  }

  /** Copies of all periods; an open period has `endMs: null`. */
  periods() {
    return this._periods.map((p) => ({ ...p }));
  }

  /** Total time spent in fallback up to `nowMs`. */
  totalMs(nowMs) {
    return this._periods.reduce((sum, p) => sum + ((p.endMs ?? nowMs) - p.startMs), 0);
  }
}

/**
 * ICE server errors of one peer (`icecandidateerror`: errorCode, url, errorText), one entry per kind with a count.
 * Every gathering (each reconnection) repeats the same 401 or 701 for every server, so the log stays a handful of
 * entries however long the game runs; at most `maxKinds` kinds are kept (later new kinds are only counted).
 */
export class IceErrorLog {
  constructor(maxKinds = 20) {
    this.maxKinds = maxKinds;
    this._byKind = new Map();
    this.dropped = 0;
  }

  /** Records one error event ({errorCode, url, errorText, atMs}). */
  add({ errorCode = null, url = null, errorText = null, atMs = null } = {}) {
    const key = `${errorCode}|${url}|${errorText}`;
    const entry = this._byKind.get(key);
    if (entry) {
      entry.count += 1;
      entry.lastMs = atMs;
    } else if (this._byKind.size < this.maxKinds) {
      this._byKind.set(key, { errorCode, url, errorText, count: 1, firstMs: atMs, lastMs: atMs });
    } else {
      this.dropped += 1;
    }
  }

  /** Copies of the entries, in the order their kinds first appeared. */
  list() {
    return [...this._byKind.values()].map((e) => ({ ...e }));
  }
}
