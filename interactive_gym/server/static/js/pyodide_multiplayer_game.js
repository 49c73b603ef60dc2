/**
 * MultiplayerPyodideGame: the thin wiring layer of a p2p game page (first version).
 *
 * It listens for the server's `pyodide_game_ready` event ({game_id, players, my_player_id, seed, turn_config,
 * rtc_configuration}), stores the TURN configuration the server minted for this participant (`this.turnConfig`),
 * and builds the peer-to-peer transport with it:
 * `new WebRTCManager(socket, gameId, myPlayerId, {turnUsername, turnCredential, forceRelay, rtcConfiguration})`,
 * where `rtcConfiguration` is the server's complete RTCConfiguration, used as it is. `turn_refresh` ({game_id,
 * turn_config, rtc_configuration}: the server's renewal before ephemeral credentials expire) updates both.
 * A test fault profile (`config.p2p.faults` = {seed, rttMs, jitterMs, loss}) becomes the manager's `faults`
 * option, seeded per page with `seed + my_player_id` so the two directions misbehave independently.
 * The rollback session, frame pacing, input capture and drawing live in their own modules and hook in through
 * `onGameReady` / `webrtcManager`; this class deliberately does nothing else.
 */
import { optionsFromTurnConfig } from "./ice_config.js";
import { WebRTCManager } from "./webrtc_manager.js";

export const GAME_READY_EVENT = "pyodide_game_ready";
export const TURN_REFRESH_EVENT = "turn_refresh";

/**
 * Finds this participant's player id in a `pyodide_game_ready` payload.
 *
 * @param {object} data the event payload.
 * @param {string|null} subjectId this participant's id (the values of `player_subjects`).
 * @returns {number} the player id.
 * @throws {Error} when the payload does not say which player this participant is.
 */
export function resolveMyPlayerId(data, subjectId) {
  if (data.my_player_id !== undefined && data.my_player_id !== null) return Number(data.my_player_id);
  for (const [playerId, subject] of Object.entries(data.player_subjects || {})) {
    if (subject === subjectId) return Number(playerId);
  }
  throw new Error(`pyodide_game_ready for game ${data.game_id} does not list participant ${subjectId}`);
}

/**
 * The transport fault profile a `pyodide_game_ready` payload asks for (tests only), seeded for this player.
 *
 * @param {object} data the event payload.
 * @param {number} myPlayerId this participant's player id.
 * @returns {null|{seed: number, rttMs: number, jitterMs: number, loss: number}} null when faults are off.
 */
export function faultsFromReady(data, myPlayerId) {
  const faults = data?.config?.p2p?.faults;
  if (!faults) return null;
  return { ...faults, seed: Number(faults.seed ?? 1) + Number(myPlayerId) };
}

export class MultiplayerPyodideGame {
  /**
   * @param {object} socket a connected socket.io-client socket.
   * @param {{subjectId?: string, webrtcOptions?: object}} [options] `webrtcOptions` are merged under the
   *   server's TURN options (tests use it for `faults` and shorter monitor intervals).
   */
  constructor(socket, { subjectId = null, webrtcOptions = {} } = {}) {
    this.socket = socket;
    this.subjectId = subjectId;
    this.extraWebrtcOptions = webrtcOptions;
    this.gameId = null;
    this.myPlayerId = null;
    this.players = [];
    this.playerSubjects = {};
    this.seed = null;
    // TURN server configuration (populated by pyodide_game_ready)
    this.turnConfig = null;
    this.webrtcManager = null;
    this.onGameReady = null; // set by the game runtime: called with the payload once the transport exists
    this._onReady = (data) => this._handleGameReady(data);
    this._onRefresh = (data) => this._handleTurnRefresh(data);
    socket.on(GAME_READY_EVENT, this._onReady);
    socket.on(TURN_REFRESH_EVENT, this._onRefresh);
  }

  _handleTurnRefresh(data) {
    if (!this.webrtcManager || !data || data.game_id !== this.gameId) return; // another game's, or too early
    if (data.turn_config?.username === this.turnConfig?.username) return; // the grant this page already has
    try {
      this.webrtcManager.setRtcConfiguration(data.rtc_configuration);
      this.turnConfig = data.turn_config || null;
      console.log("[MultiplayerPyodide] TURN credentials renewed");
    } catch (err) {
      console.warn("[MultiplayerPyodide] ignoring a malformed turn_refresh", err);
    }
  }

  _handleGameReady(data) {
    if (!data || typeof data.game_id !== "string") {
      console.warn("[MultiplayerPyodide] ignoring malformed pyodide_game_ready", data);
      return;
    }
    // The same game again (the server re-sends it when this page's join is repeated): keep what runs.
    if (this.webrtcManager && data.game_id === this.gameId) return;
    if (this.webrtcManager) this.webrtcManager.close(); // a new game replaces the previous one
    console.log(`[MultiplayerPyodide] Game ${data.game_id} ready with players:`, data.players);
    this.gameId = data.game_id;
    this.players = (data.players || []).map(Number);
    this.playerSubjects = data.player_subjects || {};
    this.seed = data.seed ?? null;
    this.myPlayerId = resolveMyPlayerId(data, this.subjectId);

    // Store TURN configuration for P2P
    this.turnConfig = data.turn_config || null;
    if (this.turnConfig) console.log("[MultiplayerPyodide] TURN config received");

    this._initP2PConnection(data);
    if (this.onGameReady) this.onGameReady(data);
  }

  _initP2PConnection(data) {
    // turnUsername / turnCredential / forceRelay from the server's turn_config; rtcConfiguration as the server built it.
    const webrtcOptions = { ...this.extraWebrtcOptions, ...optionsFromTurnConfig(this.turnConfig, data) };
    const faults = faultsFromReady(data, this.myPlayerId);
    if (faults) webrtcOptions.faults = faults;
    if (this.turnConfig) console.log("[MultiplayerPyodide] Initializing WebRTC with TURN support");
    this.webrtcManager = new WebRTCManager(this.socket, this.gameId, this.myPlayerId, webrtcOptions);
    this.webrtcManager.connect(this.players);
  }

  /** Stops listening and closes the transport. */
  close() {
    this.socket.off(GAME_READY_EVENT, this._onReady);
    this.socket.off(TURN_REFRESH_EVENT, this._onRefresh);
    if (this.webrtcManager) this.webrtcManager.close();
  }
}
