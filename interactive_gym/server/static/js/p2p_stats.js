// The `stats` object of a p2p episode upload, from the Python session's figures, the transport's and the page's
// latency probe. Pure (tested with node --test).

/** Connection summary of one peer link as stored with the data. */
export function connectionSummary(info) {
  if (!info) return { type: null, local_candidate: null, remote_candidate: null, protocol: null, relay_protocol: null };
  return {
    type: info.type,
    local_candidate: info.localCandidateType ?? null,
    remote_candidate: info.remoteCandidateType ?? null,
    protocol: info.protocol ?? null,
    relay_protocol: info.relayProtocol ?? null,
  };
}

/**
 * @param {object} session parsed P2PGameHost.stats_json()
 * @param {object|null} transport WebRTCManager.getStats() (null if the transport never existed)
 * @param {object} latency LatencyProbe.summary()
 * @returns {object} the upload's `stats`
 */
export function buildUploadStats(session, transport, latency) {
  const peers = Object.entries(transport?.peers ?? {});
  const byPeer = {};
  const packets = { sent_p2p: 0, sent_relay: 0, received_p2p: 0, received_relay: 0 };
  const fallbackPeriods = [];
  for (const [id, peer] of peers) {
    byPeer[id] = { ...connectionSummary(peer.connection), log: peer.connectionLog ?? [], rtt: peer.rtt ?? null,
      ice_errors: peer.iceErrors ?? [], fallback_total_ms: peer.fallbackTotalMs ?? 0 };
    packets.sent_p2p += peer.counts?.sentP2P ?? 0;
    packets.sent_relay += peer.counts?.sentRelay ?? 0;
    packets.received_p2p += peer.counts?.receivedP2P ?? 0;
    packets.received_relay += peer.counts?.receivedRelay ?? 0;
    for (const period of peer.fallbackPeriods ?? []) fallbackPeriods.push({ peer: Number(id), ...period });
  }
  // With several peers the game is "relay" as soon as one link is relayed (what the seed's question is about).
  const types = peers.map(([, p]) => p.connection?.type).filter(Boolean);
  const first = peers.length ? connectionSummary(peers[0][1].connection) : connectionSummary(null);
  const connection = { ...first, type: types.includes("relay") ? "relay" : (types[0] ?? null) };
  return {
    connection,
    peers: byPeer,
    turn_used: types.includes("relay"),
    turn_configured: Boolean(transport?.turnConfigured),
    force_relay: Boolean(transport?.forceRelay),
    rtt_ms: session.rtt_ms,
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
    packets: { ...packets, dropped: session.dropped_packets, bad: session.bad_packets,
      row_mismatches: session.row_mismatches, faults: transport?.faults ?? null },
  };
}
