// The `stats` object of a p2p episode upload, from the Python session's figures, the transport's and the page's
// latency probe. Pure (tested with node --test).
//
// Connection type of a peer link: the selected ICE candidate pair's ("direct": host/srflx/prflx on both sides,
// "relay": through TURN) once a DataChannel has carried the link; "server_relay" when none ever did and the
// game's packets went through the server's Socket.IO relay instead (TURN failed: the ICE errors say why); null
// before any packet went either way. The game's type is the worst of its links (server_relay > relay > direct).
//
// RTT figures, each named for what it measures: per peer `datachannel_rtt_ms`, the selected candidate pair's
// round trip (ICE consent checks on the DataChannel's path; null for a server_relay link); for the game
// `netcode_rtt_ms`, the rollback protocol's own round trip (input packets and their acknowledgements, over
// whichever path carried them, pooled over the peers).
//
// Times (`*_ms`) are this page's Date.now(). A fallback period still open when the stats are taken is closed at
// that moment with `open: true` (the game was still on the Socket.IO relay when this episode's data was taken).

const TYPE_RANK = { direct: 1, relay: 2, server_relay: 3 };

/** Connection type of one peer link from WebRTCManager.getStats().peers[id] (see the module comment). */
export function peerConnectionType(peer) {
  // `connection` is the last selected pair's description: set once a pair was ever selected, never cleared.
  if (peer?.connection) return peer.connection.type;
  const relayed = (peer?.counts?.sentRelay ?? 0) + (peer?.counts?.receivedRelay ?? 0);
  return relayed > 0 ? "server_relay" : null;
}

/** The game's connection type from WebRTCManager.getStats(): the worst of its links, or null. */
export function gameConnectionType(transport) {
  return worstLink(transport).type;
}

function worstLink(transport) {
  let type = null;
  let info = null;
  for (const peer of Object.values(transport?.peers ?? {})) {
    const t = peerConnectionType(peer);
    if (t && (TYPE_RANK[t] ?? 0) > (TYPE_RANK[type] ?? 0)) [type, info] = [t, peer.connection];
  }
  return { type, info };
}

/** Connection summary of one peer link as stored with the data. */
export function connectionSummary(info, type = info?.type ?? null) {
  return {
    type,
    local_candidate: info?.localCandidateType ?? null,
    remote_candidate: info?.remoteCandidateType ?? null,
    protocol: info?.protocol ?? null,
    relay_protocol: info?.relayProtocol ?? null,
  };
}

function rttSummary(rtt) {
  if (!rtt || !rtt.count) return null;
  return { count: rtt.count, mean: rtt.meanMs, min: rtt.minMs, max: rtt.maxMs, last: rtt.lastMs };
}

function iceError(e) {
  return { error_code: e.errorCode ?? null, url: e.url ?? null, error_text: e.errorText ?? null, count: e.count ?? 1,
    first_ms: e.firstMs ?? null, last_ms: e.lastMs ?? null };
}

function logEntry(e) {
  return { at_ms: e.atMs, gen: e.gen, type: e.type, local_candidate: e.localCandidateType ?? null,
    remote_candidate: e.remoteCandidateType ?? null, protocol: e.protocol ?? null,
    relay_protocol: e.relayProtocol ?? null };
}

/**
 * @param {object} session parsed P2PGameHost.stats_json()
 * @param {object|null} transport WebRTCManager.getStats() (null if the transport never existed)
 * @param {object} latency LatencyProbe.summary()
 * @param {number} [nowMs] when the stats are taken (closes open fallback periods)
 * @returns {object} the upload's `stats`
 */
export function buildUploadStats(session, transport, latency, nowMs = Date.now()) {
  const peers = Object.entries(transport?.peers ?? {});
  const byPeer = {};
  const packets = { sent_p2p: 0, sent_relay: 0, received_p2p: 0, received_relay: 0 };
  const fallbackPeriods = [];
  for (const [id, peer] of peers) {
    const type = peerConnectionType(peer);
    byPeer[id] = { ...connectionSummary(peer.connection, type), log: (peer.connectionLog ?? []).map(logEntry),
      datachannel_rtt_ms: rttSummary(peer.datachannelRtt), ice_errors: (peer.iceErrors ?? []).map(iceError),
      fallback_total_ms: peer.fallbackTotalMs ?? 0 };
    packets.sent_p2p += peer.counts?.sentP2P ?? 0;
    packets.sent_relay += peer.counts?.sentRelay ?? 0;
    packets.received_p2p += peer.counts?.receivedP2P ?? 0;
    packets.received_relay += peer.counts?.receivedRelay ?? 0;
    for (const p of peer.fallbackPeriods ?? []) {
      const open = p.endMs === null || p.endMs === undefined;
      fallbackPeriods.push({ peer: Number(id), start_ms: p.startMs, end_ms: open ? nowMs : p.endMs, open,
        reason: p.reason ?? null });
    }
  }
  const types = Object.values(byPeer).map((p) => p.type);
  const worst = worstLink(transport);
  return {
    connection: connectionSummary(worst.info, worst.type),
    peers: byPeer,
    turn_used: types.includes("relay"),
    turn_configured: Boolean(transport?.turnConfigured),
    force_relay: Boolean(transport?.forceRelay),
    netcode_rtt_ms: session.rtt_ms,
    rollbacks: session.rollbacks,
    frames: session.frames,
    frames_simulated: session.frames_simulated,
    stalls: session.stalls,
    waited_frames: session.waited_frames,
    desyncs: session.desyncs,
    fallback_periods: fallbackPeriods,
    input_delay: session.input_delay,
    prediction_window: session.prediction_window,
    local_input_latency_ms: latency,
    takeovers: session.takeovers ?? [], // the server keeps the partner-drop takeovers this page reports
    packets: { ...packets, dropped: session.dropped_packets, bad: session.bad_packets,
      row_mismatches: session.row_mismatches, faults: transport?.faults ?? null },
  };
}
