/**
 * WebRTCManager: peer-to-peer transport for one p2p game (full mesh of RTCPeerConnections, two DataChannels each).
 *
 * - "inputs": unordered, no retransmission (the rollback protocol resends unacknowledged inputs itself);
 *   "control": ordered and reliable.
 * - Signaling goes through the server's `webrtc_signal` relay; the lower player id offers (no glare). Each new
 *   connection to a peer has a generation number (`gen`), so signals from a torn-down connection are ignored.
 * - Trickle ICE; candidates that arrive before the remote description are buffered.
 * - When a peer's link is down (channel not open, ICE failed or disconnected) `send()` goes through the server
 *   (`p2p_input_relay`) and returns to the DataChannel when it recovers; each such period is recorded.
 * - Recovery: ICE restart first when the channels are still alive, otherwise a new connection (new channels).
 * - Connection type (direct / relay, candidate types, protocol) and the selected candidate pair's RTT (the
 *   DataChannel's path) come from getStats() on an interval; ICE server errors (`icecandidateerror`: a TURN
 *   401, an unreachable server) are kept, one entry per kind with a count.
 * - ICE servers: `rtcConfiguration` is the server's RTCConfiguration (`rtc_configuration` of pyodide_game_ready),
 *   handed to every RTCPeerConnection as it is; `setRtcConfiguration` takes renewed credentials (`turn_refresh`).
 *   The seed's `turnUsername` / `turnCredential` / `forceRelay` are accepted alongside it; without it they are an
 *   error, since TURN URLs are configured on the server only. With neither, connections use host candidates only.
 *
 * Options: {rtcConfiguration, turnUsername, turnCredential, forceRelay, faults, monitorIntervalMs,
 *   reconnectDelayMs, recoveryTimeoutMs, connectTimeoutMs, maxRecoveryAttempts, onMessage, onStateChange,
 *   onConnectionType, onFallback, onIceError}. How long a link that is down waits for its next recovery attempt
 *   is link_recovery.js's rule (a connection still checking its candidates gets `connectTimeoutMs`).
 */
import { checkRtcConfiguration, describeRtcConfiguration } from "./ice_config.js";
import { FallbackLog, IceErrorLog, RttSummary, connectionChanged, describeConnection } from "./connection_stats.js";
import { CONNECT_TIMEOUT_MS, RECOVERY_TIMEOUT_MS, recoveryWaitMs } from "./link_recovery.js";
import { FaultInjector } from "./transport_faults.js";

const SIGNAL_EVENT = "webrtc_signal";
const RELAY_EVENT = "p2p_input_relay";
const MAX_RELAY_BYTES = 4096; // the server refuses larger relay packets
const CHANNEL_OPTIONS = { inputs: { ordered: false, maxRetransmits: 0 }, control: { ordered: true } };

/** The options' RTCConfiguration (see the module comment). */
function rtcConfigurationOf(options) {
  if (options.rtcConfiguration !== undefined) return checkRtcConfiguration(options.rtcConfiguration);
  if (options.turnUsername || options.turnCredential || options.forceRelay) {
    throw new TypeError("turnUsername/turnCredential/forceRelay need rtcConfiguration (the server's " +
      "rtc_configuration from pyodide_game_ready): TURN URLs are configured on the server only");
  }
  return { iceServers: [], iceTransportPolicy: "all" };
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

export class WebRTCManager {
  /**
   * @param {object} socket a connected socket.io-client socket.
   * @param {string} gameId the game this transport belongs to.
   * @param {number} myPlayerId this participant's player id.
   * @param {object} [options] see the module comment.
   */
  constructor(socket, gameId, myPlayerId, options = {}) {
    this.socket = socket;
    this.gameId = gameId;
    this.myPlayerId = Number(myPlayerId);
    this.rtcConfig = rtcConfigurationOf(options);
    const { hasTurn, forceRelay } = describeRtcConfiguration(this.rtcConfig);
    this.hasTurn = hasTurn;
    this.forceRelay = forceRelay;
    if (hasTurn) console.log(`[WebRTC] TURN servers configured (forceRelay=${this.forceRelay})`);
    this.faults = options.faults ? new FaultInjector(options.faults) : null;
    this.monitorIntervalMs = options.monitorIntervalMs ?? 1000;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 300;
    this.recoveryTimeoutMs = options.recoveryTimeoutMs ?? RECOVERY_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    // A peer that is gone for good must not cost a new connection (and TURN allocation) forever.
    this.maxRecoveryAttempts = options.maxRecoveryAttempts ?? 10;
    for (const name of ["onMessage", "onStateChange", "onConnectionType", "onFallback", "onIceError"]) {
      this[name] = options[name] || null;
    }
    this.peers = new Map();
    this.counts = { relayOversize: 0, serverErrors: 0, signalErrors: 0, configUpdates: 0, configErrors: 0 };
    this.closed = false;
    this._handlers = {
      [SIGNAL_EVENT]: (msg) => this._onSignal(msg),
      [RELAY_EVENT]: (msg) => this._onRelay(msg),
      error: (msg) => {
        if (msg && (msg.event === SIGNAL_EVENT || msg.event === RELAY_EVENT)) this.counts.serverErrors += 1;
      },
    };
    for (const [event, fn] of Object.entries(this._handlers)) socket.on(event, fn);
    this._monitor = setInterval(() => this._monitorAll(), this.monitorIntervalMs);
  }

  /** Starts connections to every peer (the lower id offers; the other side waits for the offer). */
  connect(peerIds) {
    for (const raw of peerIds) {
      const id = Number(raw);
      if (id === this.myPlayerId) continue;
      const peer = this._peer(id);
      if (this._isOfferer(id) && !peer.pc) this._startConnection(peer, peer.gen + 1);
    }
  }

  /**
   * Sends bytes to one peer: over its DataChannel when the link is up, otherwise through the server relay.
   * @returns {boolean} false when the packet was not sent (unknown peer, too large to relay, injected loss).
   */
  send(peerId, bytes, { reliable = false } = {}) {
    const peer = this.peers.get(Number(peerId));
    const data = toBytes(bytes);
    if (!peer || !data || this.closed) return false;
    if (!this.faults) return this._transmit(peer, data, reliable);
    const copy = data.slice(); // the caller may reuse its buffer before the delayed send happens
    return this.faults.schedule(peer.id, reliable, () => this._transmit(peer, copy, reliable));
  }

  /**
   * A peer's page was replaced (a reload: the server's `p2p_peer_rejoining`): its old connection is forgotten
   * and a new one made from scratch. The new page starts at generation 0, so as the offerer this side offers a
   * generation above any the peer may have seen; as the answerer it takes the new page's offers from generation 1.
   */
  restartPeer(peerId) {
    const peer = this.peers.get(Number(peerId));
    if (!peer || this.closed) return;
    clearTimeout(peer.recoverTimer);
    peer.recoverTimer = null;
    this._teardown(peer);
    peer.pending = [];
    peer.failedAttempts = 0;
    peer.iceRestartTried = false;
    peer.queue = Promise.resolve();
    this._updateLink(peer, "peer page replaced");
    if (this._isOfferer(peer.id)) this._startConnection(peer, peer.gen + 1);
    else peer.gen = 0;
  }

  /** Sends the same bytes to every peer. */
  broadcast(bytes, opts = {}) {
    for (const id of this.peers.keys()) this.send(id, bytes, opts);
  }

  /** True while sends to `peerId` go over the DataChannel (false: through the server relay, or unknown peer). */
  isP2P(peerId) {
    const peer = this.peers.get(Number(peerId));
    return Boolean(peer && this._healthy(peer));
  }

  /**
   * Renewed credentials from the server (`turn_refresh`): every connection made from now on uses `config`, and
   * live ones get it for their next ICE gathering (an ICE restart).
   * @param {RTCConfiguration} config the server's new `rtc_configuration`, used as it is.
   */
  setRtcConfiguration(config) {
    this.rtcConfig = checkRtcConfiguration(config);
    this.hasTurn = describeRtcConfiguration(config).hasTurn;
    this.counts.configUpdates += 1;
    for (const peer of this.peers.values()) {
      try {
        peer.pc?.setConfiguration(config);
      } catch (err) {
        this.counts.configErrors += 1;
        console.warn("[WebRTC] a live connection refused the renewed configuration", err);
      }
    }
  }

  /** Summary for the research data: connection types, DataChannel RTT, ICE errors, fallback periods, counters. */
  getStats() {
    const now = Date.now();
    const peers = {};
    for (const [id, p] of this.peers) {
      peers[id] = {
        connection: p.info, connectionLog: p.connectionLog.slice(), datachannelRtt: p.datachannelRtt.toJSON(),
        fallbackActive: p.fallback.active, fallbackPeriods: p.fallback.periods(), fallbackTotalMs: p.fallback.totalMs(now),
        counts: { ...p.counts }, gen: p.gen, iceErrors: p.iceErrors.list(),
        state: p.pc ? { connection: p.pc.connectionState, ice: p.pc.iceConnectionState } : null,
      };
    }
    return {
      gameId: this.gameId, myPlayerId: this.myPlayerId, turnConfigured: this.hasTurn, forceRelay: this.forceRelay,
      faults: this.faults ? { ...this.faults.profile, ...this.faults.counts } : null, counts: { ...this.counts }, peers,
    };
  }

  /** Closes every connection and stops listening; open fallback periods end now. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this._monitor);
    for (const [event, fn] of Object.entries(this._handlers)) this.socket.off(event, fn);
    for (const peer of this.peers.values()) {
      clearTimeout(peer.recoverTimer);
      this._teardown(peer);
      peer.fallback.set(false, Date.now(), "closed");
    }
  }

  // ---- peers and connections ----

  _isOfferer(peerId) {
    return this.myPlayerId < peerId;
  }

  _peer(id) {
    let peer = this.peers.get(id);
    if (!peer) {
      peer = {
        id, gen: 0, pc: null, channels: {}, pending: [], remoteSet: false, queue: Promise.resolve(), info: null,
        connectionLog: [], datachannelRtt: new RttSummary(), fallback: new FallbackLog(), iceErrors: new IceErrorLog(),
        recoverTimer: null,
        lastAttemptAt: Date.now(), iceRestartTried: false, failedAttempts: 0, wasHealthy: false,
        counts: { sentP2P: 0, sentRelay: 0, receivedP2P: 0, receivedRelay: 0, iceRestarts: 0, reconnects: 0 },
      };
      this.peers.set(id, peer);
      this._updateLink(peer, "connecting");
    }
    return peer;
  }

  _teardown(peer) {
    const pc = peer.pc;
    peer.pc = null; // first, so events from the old connection are ignored
    peer.channels = {};
    peer.remoteSet = false;
    if (pc) pc.close();
  }

  _newPeerConnection(peer, gen) {
    this._teardown(peer);
    peer.gen = gen;
    peer.wasHealthy = false;
    peer.pending = peer.pending.filter((c) => c.gen >= gen);
    const pc = new RTCPeerConnection(this.rtcConfig);
    peer.pc = pc;
    const current = () => peer.pc === pc && !this.closed;
    pc.onicecandidate = (e) => {
      if (current()) this._signal(peer.id, "ice", e.candidate ? e.candidate.toJSON() : null, gen);
    };
    pc.onicecandidateerror = (e) => {
      const err = { errorCode: e.errorCode, errorText: e.errorText, url: e.url, atMs: Date.now() };
      peer.iceErrors.add(err);
      if (this.onIceError) this.onIceError(peer.id, err);
    };
    const onState = () => {
      if (current()) this._onPcState(peer, pc);
    };
    pc.oniceconnectionstatechange = onState;
    pc.onconnectionstatechange = onState;
    pc.ondatachannel = (e) => {
      if (current()) this._wireChannel(peer, pc, e.channel);
    };
    return pc;
  }

  _wireChannel(peer, pc, channel) {
    channel.binaryType = "arraybuffer";
    peer.channels[channel.label] = channel;
    const current = () => peer.pc === pc && peer.channels[channel.label] === channel && !this.closed;
    channel.onopen = () => {
      if (current()) this._updateLink(peer, `${channel.label} open`);
    };
    channel.onclose = () => {
      if (current()) this._linkLost(peer, `${channel.label} channel closed`);
    };
    channel.onmessage = (e) => {
      if (current()) this._deliver(peer, toBytes(e.data), channel.label, "p2p");
    };
  }

  async _startConnection(peer, gen) {
    peer.lastAttemptAt = Date.now();
    if (gen > 1) peer.counts.reconnects += 1;
    const pc = this._newPeerConnection(peer, gen);
    for (const [label, opts] of Object.entries(CHANNEL_OPTIONS)) this._wireChannel(peer, pc, pc.createDataChannel(label, opts));
    await this._sendOffer(peer, pc, {});
  }

  async _sendOffer(peer, pc, offerOptions) {
    try {
      const offer = await pc.createOffer(offerOptions);
      if (peer.pc !== pc) return;
      await pc.setLocalDescription(offer);
      this._signal(peer.id, "offer", { type: "offer", sdp: pc.localDescription.sdp }, peer.gen);
    } catch (err) {
      this.counts.signalErrors += 1;
      console.warn("[WebRTC] could not create an offer", err);
    }
  }

  _signal(to, kind, data, gen) {
    this.socket.emit(SIGNAL_EVENT, { game_id: this.gameId, to_player: to, kind, data, gen });
  }

  // ---- incoming signals (serialised per peer: an ICE candidate must wait for the description before it) ----

  _onSignal(msg) {
    if (this.closed || !msg || msg.game_id !== this.gameId) return;
    const from = Number(msg.from_player);
    if (!Number.isInteger(from) || from === this.myPlayerId) return;
    if (msg.kind !== "offer" && !this.peers.has(from)) return; // only an offer may introduce a peer
    const peer = this._peer(from);
    peer.queue = peer.queue.then(() => this._handleSignal(peer, msg)).catch((err) => {
      this.counts.signalErrors += 1;
      console.warn(`[WebRTC] signal ${msg.kind} from ${from} failed`, err);
    });
  }

  async _handleSignal(peer, { kind, data, gen = 0 }) {
    if (kind === "offer") {
      if (this._isOfferer(peer.id) || gen < peer.gen) return; // a peer with a higher id never offers to us
      if (!peer.pc || gen > peer.gen) this._newPeerConnection(peer, gen);
      const pc = peer.pc;
      await pc.setRemoteDescription(data);
      await this._remoteDescriptionSet(peer, pc);
      const answer = await pc.createAnswer();
      if (peer.pc !== pc) return;
      await pc.setLocalDescription(answer);
      this._signal(peer.id, "answer", { type: "answer", sdp: pc.localDescription.sdp }, gen);
    } else if (kind === "answer") {
      const pc = peer.pc;
      if (!pc || gen !== peer.gen || pc.signalingState !== "have-local-offer") return;
      await pc.setRemoteDescription(data);
      await this._remoteDescriptionSet(peer, pc);
    } else if (kind === "ice") {
      if (gen < peer.gen || !data) return;
      if (gen > peer.gen || !peer.pc || !peer.remoteSet) peer.pending.push({ gen, candidate: data });
      else await peer.pc.addIceCandidate(data);
    } else if (kind === "restart" && this._isOfferer(peer.id)) {
      // Debounced: both sides usually notice a broken link at once, and we may already be reconnecting.
      if (Date.now() - peer.lastAttemptAt >= this.reconnectDelayMs * 3) this._attemptRecovery(peer);
    }
  }

  async _remoteDescriptionSet(peer, pc) {
    if (peer.pc !== pc) return; // replaced by a newer connection meanwhile
    peer.remoteSet = true;
    const ready = peer.pending.filter((c) => c.gen === peer.gen);
    peer.pending = peer.pending.filter((c) => c.gen > peer.gen);
    for (const { candidate } of ready) {
      if (peer.pc !== pc) return;
      await pc.addIceCandidate(candidate).catch(() => { this.counts.signalErrors += 1; });
    }
  }

  // ---- link health, fallback and recovery ----

  _healthy(peer) {
    const { pc, channels } = peer;
    return Boolean(
      pc && channels.inputs?.readyState === "open" && channels.control?.readyState === "open" &&
      (pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed"),
    );
  }

  _updateLink(peer, reason) {
    const healthy = this._healthy(peer);
    if (healthy) {
      peer.iceRestartTried = false;
      peer.failedAttempts = 0;
      peer.wasHealthy = true;
    }
    if (peer.fallback.set(!healthy, Date.now(), healthy ? null : reason) && this.onFallback) {
      this.onFallback(peer.id, !healthy, reason);
    }
    return healthy;
  }

  _onPcState(peer, pc) {
    const healthy = this._updateLink(peer, `ice ${pc.iceConnectionState}`);
    if (this.onStateChange) {
      this.onStateChange(peer.id, { connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState,
        gen: peer.gen });
    }
    if (healthy || pc.connectionState === "connected") this._measure(peer);
    if (pc.iceConnectionState === "failed" || pc.connectionState === "failed") this._linkLost(peer, "ice failed");
  }

  _linkLost(peer, reason) {
    this._updateLink(peer, reason);
    if (peer.recoverTimer || this.closed) return;
    peer.recoverTimer = setTimeout(() => {
      peer.recoverTimer = null;
      if (!this.closed && !this._updateLink(peer, reason)) this._attemptRecovery(peer);
    }, this.reconnectDelayMs);
  }

  /** Offerer: ICE restart if the channels survive, else a new connection. Answerer: ask the offerer to act. */
  _attemptRecovery(peer) {
    peer.lastAttemptAt = Date.now();
    if (peer.failedAttempts >= this.maxRecoveryAttempts) return; // stays on the relay; the game decides
    peer.failedAttempts += 1;
    if (!this._isOfferer(peer.id)) {
      this._signal(peer.id, "restart", null, peer.gen);
      return;
    }
    const pc = peer.pc;
    const channelsAlive = pc && pc.connectionState !== "closed" &&
      peer.channels.inputs?.readyState === "open" && peer.channels.control?.readyState === "open";
    if (channelsAlive && !peer.iceRestartTried) {
      peer.iceRestartTried = true;
      peer.counts.iceRestarts += 1;
      this._sendOffer(peer, pc, { iceRestart: true });
    } else {
      this._startConnection(peer, peer.gen + 1);
    }
  }

  _recoveryWait(peer) {
    const link = { iceState: peer.pc?.iceConnectionState ?? null, wasHealthy: peer.wasHealthy };
    return recoveryWaitMs(link, { recoveryTimeoutMs: this.recoveryTimeoutMs, connectTimeoutMs: this.connectTimeoutMs });
  }

  _monitorAll() {
    if (this.closed) return;
    for (const peer of this.peers.values()) {
      // Catches what fires no event, e.g. this side's own pc.close().
      const healthy = this._updateLink(peer, peer.pc ? `ice ${peer.pc.iceConnectionState}` : "no connection");
      if (healthy) this._measure(peer);
      else if (!peer.recoverTimer && Date.now() - peer.lastAttemptAt >= this._recoveryWait(peer)) {
        this._attemptRecovery(peer);
      }
    }
  }

  async _measure(peer) {
    const pc = peer.pc;
    if (!pc) return;
    let info;
    try {
      info = describeConnection(Array.from((await pc.getStats()).values()));
    } catch {
      return; // the connection was closed while measuring
    }
    if (!info || peer.pc !== pc) return;
    peer.datachannelRtt.add(info.rttMs);
    if (connectionChanged(peer.info, info)) {
      const { type, localCandidateType, remoteCandidateType, protocol, relayProtocol } = info;
      peer.connectionLog.push({ atMs: Date.now(), gen: peer.gen, type, localCandidateType, remoteCandidateType,
        protocol, relayProtocol });
      if (this.onConnectionType) this.onConnectionType(peer.id, info);
    }
    peer.info = info;
  }

  // ---- data ----

  _transmit(peer, data, reliable) {
    if (this.closed) return false;
    const label = reliable ? "control" : "inputs";
    const channel = peer.channels[label];
    if (this._healthy(peer)) {
      try {
        channel.send(data);
        peer.counts.sentP2P += 1;
        return true;
      } catch {
        this._linkLost(peer, `${label} send failed`);
      }
    }
    if (data.byteLength > MAX_RELAY_BYTES) {
      this.counts.relayOversize += 1;
      return false;
    }
    this.socket.emit(RELAY_EVENT, { game_id: this.gameId, to_player: peer.id, channel: label, data });
    peer.counts.sentRelay += 1;
    return true;
  }

  _onRelay(msg) {
    if (this.closed || !msg || msg.game_id !== this.gameId) return;
    const peer = this.peers.get(Number(msg.from_player));
    const data = toBytes(msg.data);
    if (peer && data) this._deliver(peer, data, msg.channel === "control" ? "control" : "inputs", "relay");
  }

  _deliver(peer, data, channel, path) {
    if (!data) return;
    if (path === "p2p") peer.counts.receivedP2P += 1;
    else peer.counts.receivedRelay += 1;
    if (this.onMessage) this.onMessage(peer.id, data, channel, path);
  }
}
