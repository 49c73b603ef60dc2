// The frame loop of a p2p game: JavaScript moves bytes between the transport and the Python session, paces
// frames, samples keys and draws. Everything that decides (rollback, episodes, data) is in Python (p2p_host.py).
//
//   const game = new P2PGame({host, transport, renderer, input, config, gameId, myPlayerId, uploader});
//   const {reason} = await game.run();  // "complete" | "partner_left" | "error" | "desync"
//
// Start-up handshake: peers load Pyodide at different speeds, so each sends "ready" on the reliable control
// channel (repeated until answered) and the session starts only when every peer is ready. Netcode packets use
// the unordered "inputs" channel; packets that arrive before the start are buffered.
// End: each episode is uploaded as soon as all its frames are confirmed. After the last one the page keeps
// exchanging packets for `lingerMs` (the partner may still need our last inputs), then finishes.
// Times: with `ping`, the page measures the server clock's lead (clock_sync.js) while the peers connect, before
// the first frame; every upload waits for that measurement (it always settles) and carries it in `clock`, so
// the server stores the step times on its own clock.
// Rejoin (p2p_rejoin.js): a page given a running game (`rejoin: {sender}`) asks the sender for it instead of the
// ready handshake and plays on from the snapshot; a page whose partner's page went away keeps playing (the partner
// predicted with the default input) while the server decides (`canRejoin`), and sends the game to the new page
// the server announces (`peerRejoining`).

import { clockFromSteps, estimateClockOffset } from "./clock_sync.js";
import { FrameTicker } from "./frame_ticker.js";
import { LatencyProbe } from "./latency_probe.js";
import { GIVE_UP_MS, RejoinRequester, RejoinSender, decodeControl, encodeControl } from "./p2p_rejoin.js";
import { buildUploadStats } from "./p2p_stats.js";

const READY_RESEND_MS = 300;
// The start handshake waits this long for the DataChannels before it goes over the server relay: a game started
// a moment before its channel opened is played (and stored) as "server_relay" for no reason but timing.
export const CHANNEL_WAIT_MS = 5000;
const SOCKET_TIMEOUT_MS = 45000; // python-socketio's ping interval + timeout: the server's view of a gone page
const MAX_EARLY_PACKETS = 512;
const REJOIN_POLL_MS = 100;

// Upload `end_reason` values (upload_validation.py) for each way a game can end early.
const UPLOAD_END_REASONS = Object.freeze({ partner_left: "partner_left", error: "error", desync: "desync" });

export class P2PGame {
  /**
   * @param {object} o
   * @param {import("./p2p_runtime.js").PyodideP2PHost} o.host
   * @param {object} o.transport WebRTCManager (send, getStats, onMessage)
   * @param {{draw: Function, model?: object}} o.renderer
   * @param {{sample: () => string[], destroy?: Function}} o.input
   * @param {object} o.config p2p scene config
   * @param {string} o.gameId
   * @param {number} o.myPlayerId
   * @param {number[]} o.players every player id
   * @param {{upload: Function}} o.uploader
   * @param {(status: object) => void} [o.onStatus]
   * @param {number} [o.lingerMs]
   * @param {EventTarget} [o.keyTarget] where game-key presses are timed for the latency probe
   * @param {((t: number) => Promise<{server_t: number}>) | null} [o.ping] the server's `ping` event (for the
   *   clock estimate); null: uploads carry no offset (the server stores the page's times uncorrected)
   * @param {object} [o.clockOptions] options for estimateClockOffset (tests)
   * @param {number} [o.partnerDecisionMs] with a takeover policy, how long a silent partner waits for the
   *   server's decision (default: its socket timeout, about 45 s, plus the grace period)
   * @param {{sender: number}|null} [o.rejoin] this page gets a running game from `sender` (a reload)
   * @param {boolean} [o.canRejoin] a partner whose page went away may come back: wait for the server's decision
   */
  constructor({ host, transport, renderer, input, config, gameId, myPlayerId, players, uploader,
    onStatus = () => {}, lingerMs = 1500, keyTarget = globalThis.window, ping = null, clockOptions = {},
    partnerDecisionMs = SOCKET_TIMEOUT_MS + (config.p2p?.disconnect_timeout_ms ?? 5000), rejoin = null,
    canRejoin = false, channelWaitMs = CHANNEL_WAIT_MS }) {
    this.host = host;
    this.transport = transport;
    this.renderer = renderer;
    this.input = input;
    this.config = config;
    this.gameId = gameId;
    this.myPlayerId = Number(myPlayerId);
    this.peers = players.map(Number).filter((p) => p !== this.myPlayerId);
    this.uploader = uploader;
    this.onStatus = onStatus;
    this.lingerMs = lingerMs;
    this.ping = ping;
    this.clockOptions = clockOptions;
    this.clockEstimate = null; // {offset_s, rtt_s} once measured
    this.clockReady = Promise.resolve(null);
    this.agents = Object.entries(config.agents).filter(([, s]) => s.kind === "human")
      .sort((a, b) => a[1].player - b[1].player).map(([agent]) => agent);
    this.myAgent = this.agents[this.myPlayerId];
    this.probe = new LatencyProbe(this.myAgent);
    this.gameKeys = new Set(config.controls?.keys ?? []);
    this.keyTarget = keyTarget;
    this.early = [];
    this.readyFrom = new Set();
    this.started = false;
    this.finished = false;
    this.last = null; // last tick result
    this.counters = { frames: 0, rollbacks: 0, rollbackFrames: 0, stalls: 0, tickMs: 0, drawMs: 0 };
    this.uploads = [];
    this.uploaded = new Set();
    this.events = [];
    this.lingerUntil = null;
    this.partnerDecisionMs = partnerDecisionMs;
    this.channelWaitMs = channelWaitMs;
    this.silentSince = null; // when the netcode declared a partner disconnected (takeover scenes wait)
    this.takenOver = false;
    this.canRejoin = Boolean(canRejoin);
    this.rejoiner = rejoin ? new RejoinRequester(host, transport, rejoin.sender) : null;
    this.rejoinSender = new RejoinSender(host, transport);
    this.rejoinAttempts = new Map(); // player -> the last new page of theirs the server announced
    this.rejoinedAt = null; // {frame, episode, t, ms, page_ms} on a page that rejoined
    this.ticker = new FrameTicker(config.fps, (now) => this.frame(now));
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
    this.onKey = (event) => {
      if (!event.repeat && this.gameKeys.has(normalizedKey(event.key))) {
        this.probe.keyDown(event.timeStamp, performance.timeOrigin + event.timeStamp, this.counters.frames);
      }
    };
    transport.onMessage = (peer, data, channel) => this.onMessage(peer, data, channel);
  }

  /** Plays until the game ends; resolves with {reason, uploadErrors}. */
  async run() {
    this.keyTarget?.addEventListener?.("keydown", this.onKey, true);
    this.onStatus({ phase: "connecting" });
    if (this.ping) {
      // Measured while the peers connect; estimateClockOffset resolves (null if no ping came back), never rejects.
      this.clockReady = estimateClockOffset(this.ping, this.clockOptions)
        .then((estimate) => { this.clockEstimate = estimate; return estimate; }, () => null);
    }
    this.runAt = performance.now();
    if (this.rejoiner) {
      // The partner plays on; this page asks it for the game once their DataChannel is open.
      this.rejoinTimer = setInterval(() => this.pollRejoin(performance.now()), REJOIN_POLL_MS);
      this.pollRejoin(this.runAt);
      return this.done;
    }
    this.sendReady();
    this.readyTimer = setInterval(() => this.sendReady(), READY_RESEND_MS);
    this.maybeStart();
    return this.done;
  }

  // ---- transport ----

  sendReady() {
    // Before CHANNEL_WAIT_MS only over an open DataChannel (see there); a partner's ready is answered at once.
    const waiting = performance.now() - (this.runAt ?? 0) < this.channelWaitMs;
    for (const peer of this.peers) {
      if (waiting && this.transport.isP2P?.(peer) === false) continue;
      if (!this.readyFrom.has(peer) || !this.started) this.sendControl(peer, { t: "ready" });
    }
  }

  sendControl(peer, message) {
    this.transport.send(peer, encodeControl(message), { reliable: true });
  }

  onMessage(peer, data, channel) {
    if (channel === "control") {
      // Not ours (null): the session counts malformed game packets, control junk is just ignored.
      const { message, body } = decodeControl(data) ?? {};
      if (message?.t === "rejoin") this.onRejoinRequest(Number(peer));
      else if (message?.t === "snapshot") this.onSnapshotChunk(Number(peer), message, body);
      else if (message?.t === "not_started") this.onSenderNotStarted(Number(peer));
      // The sender is still in the ready handshake: it has not started either; so start the ordinary way.
      if (message?.t === "ready" && this.rejoiner && Number(peer) === this.rejoiner.sender) {
        this.onSenderNotStarted(Number(peer));
      }
      if (message?.t === "ready") {
        const first = !this.readyFrom.has(peer);
        this.readyFrom.add(peer);
        if (first) this.sendControl(peer, { t: "ready" }); // the partner may have missed ours
        this.maybeStart();
      }
      return;
    }
    if (this.finished) return;
    if (!this.started) {
      // A rejoining page drops them: its session starts at the snapshot's frame, and the partner resends.
      if (!this.rejoiner && this.early.length < MAX_EARLY_PACKETS) this.early.push([peer, data]);
      return;
    }
    this.host.receive(peer, data);
  }

  maybeStart() {
    if (this.started || this.finished || !this.peers.every((p) => this.readyFrom.has(p))) return;
    this.started = true;
    clearInterval(this.readyTimer);
    this.host.start(performance.now());
    // Taps made while connecting must not act on frame 0 (as an episode start in the other modes). Later
    // episodes follow on the next frame with no pause, so a tap then is a real input and is kept.
    this.input?.forgetTaps?.();
    for (const [peer, data] of this.early.splice(0)) this.host.receive(peer, data);
    this.onStatus({ phase: "playing", episode: 0 });
    this.ticker.start();
  }

  // ---- rejoin ----

  /**
   * The server says `player`'s new page is coming (`p2p_peer_rejoining`); this page may be asked for the game.
   * `attempt` counts that player's new pages: a repeated notice (same attempt) changes nothing.
   */
  peerRejoining(player, attempt = null, { reconnected = false } = {}) {
    if (this.finished) return;
    if (attempt !== null) {
      if ((this.rejoinAttempts.get(player) ?? 0) >= attempt) return;
      this.rejoinAttempts.set(player, attempt);
    }
    try {
      // Not started yet: the session must not lose the player at frame 0 (the new page starts like any other).
      this.rejoinSender.expect(Number(player), { reconnect: !reconnected, started: this.started });
    } catch (err) {
      this.end("error", err);
      return;
    }
    if (this.silentSince !== null) this.silentSince = performance.now(); // the new page has this long to load
  }

  /** Asks the sender for the game when due; gives up on a sender that never sends it (p2p_rejoin.js). */
  pollRejoin(now) {
    if (!this.rejoiner) return;
    if (this.rejoiner.overdue(now)) {
      this.end("error", new Error(`the partner's page did not send the game back within ${GIVE_UP_MS / 1000} s`));
      return;
    }
    this.rejoiner.poll(now);
  }

  /**
   * The server says `player`'s game is over. A page that has not started (a reload still getting the game, or
   * starting it with them) never will: it ends (`ended_while_away`). A playing page ignores it: its own game ends
   * at the same frame.
   */
  peerFinished(player) {
    if (this.started || this.finished || !this.peers.includes(Number(player))) return;
    this.end("ended_while_away");
  }

  onRejoinRequest(peer) {
    if (this.finished) return;
    if (!this.started) {
      // The partner reloaded before this game's first frame: nothing to send, start it the ordinary way.
      this.sendControl(peer, { t: "not_started" });
      return;
    }
    let answer;
    try {
      answer = this.rejoinSender.request(peer, performance.now());
    } catch (err) {
      this.end("error", err);
      return;
    }
    this.onRejoinAnswer(peer, answer);
  }

  onRejoinAnswer(peer, answer) {
    if (answer?.failed) {
      // The game cannot be sent (e.g. a state that is not plain data): it ends as without rejoin.
      console.warn(`[p2p] the game could not be sent to player ${peer}: ${answer.failed}`);
      this.end("partner_left");
    } else if (answer?.served) {
      this.silentSince = null;
      this.onStatus({ phase: "partner_back", episode: this.last?.episode ?? 0 });
    }
  }

  /** The sender has not started the game either (the reload came while both loaded): the ready handshake. */
  onSenderNotStarted(peer) {
    if (!this.rejoiner || this.started || this.finished || peer !== this.rejoiner.sender) return;
    this.rejoiner = null;
    this.startedOver = true; // the server waits for this page's uploads as a rejoined page's: they say so
    clearInterval(this.rejoinTimer);
    this.sendReady();
    this.readyTimer = setInterval(() => this.sendReady(), READY_RESEND_MS);
    this.maybeStart();
  }

  onSnapshotChunk(peer, message, body) {
    if (!this.rejoiner || this.started || this.finished) return;
    let place;
    try {
      place = this.rejoiner.chunk(peer, message, body, performance.now());
    } catch (err) {
      this.end("error", err);
      return;
    }
    if (place === null) return;
    this.started = true;
    clearInterval(this.rejoinTimer);
    // ms: from the game's start here (runtime loaded) to playing; page_ms: from this page's navigation start.
    this.rejoinedAt = { ...place, ms: performance.now() - this.runAt, page_ms: performance.now() };
    this.input?.forgetTaps?.();
    this.onStatus({ phase: "playing", episode: place.episode });
    this.ticker.start();
  }

  // ---- frames ----

  frame(now) {
    if (this.finished) return;
    let result;
    const t0 = performance.now();
    try {
      result = this.host.tick(now, this.input ? this.input.sample() : []);
    } catch (err) {
      this.end("error", err);
      return;
    }
    const t1 = performance.now();
    for (const [peer, bytes] of result.out) this.transport.send(peer, bytes);
    if (result.render) {
      // After a rollback the renderer may glide the objects it moved (GymScene(rollback_smoothing_frames)):
      // display only, the model and the uploads are the simulation's.
      if (result.rollback) {
        this.renderer.draw(result.render, { correction: { frames: this.config.p2p?.rollback_smoothing_frames ?? 0,
          exclude: [this.myAgent] } });
      } else {
        this.renderer.draw(result.render);
      }
      const drawn = performance.now();
      this.probe.frameDrawn(drawn, performance.timeOrigin + drawn, this.avatarPositions(), now, result.frame);
    }
    const c = this.counters;
    c.tickMs += t1 - t0;
    c.drawMs += performance.now() - t1;
    c.frames = result.frame;
    if (result.rollback) { c.rollbacks += 1; c.rollbackFrames += result.rollback; }
    if (result.status === "stalled") c.stalls += 1;
    for (const [player, answer] of Object.entries(result.rejoin ?? {})) {
      this.onRejoinAnswer(Number(player), this.rejoinSender.answer(Number(player), answer, now));
      if (this.finished) return;
    }
    this.rejoinSender.flush(now);
    const previousEpisode = this.last?.episode;
    this.last = result;
    if (result.episode !== previousEpisode && !result.done) this.onStatus({ phase: "playing", episode: result.episode });
    for (const event of result.events) {
      if (this.events.length < 200) this.events.push(event);
      if (event.type === "DesyncDetected" || event.type === "EpisodeMismatch") {
        this.end("desync");
        return;
      }
      if (this.partnerWentSilent(event, result)) {
        if (!this.config.p2p?.takeover && !this.canRejoin) {
          this.end("partner_left");
          return;
        }
        // on_partner_drop="ai", or a partner who may come back: the server decides, within partnerDecisionMs.
        this.silentSince ??= now;
        if (this.canRejoin) {
          try {
            this.host.partnerAway(Number(event.player));
          } catch (err) {
            this.end("error", err);
            return;
          }
          this.onStatus({ phase: "partner_away" });
        }
      }
    }
    if (this.silentSince !== null && !this.takenOver && now - this.silentSince >= this.partnerDecisionMs) {
      this.end("partner_left"); // no decision came (the partner's socket is still up): never play on alone
      return;
    }
    for (const episode of result.episodes) this.uploadEpisode(episode, false, "done");
    if (result.done) {
      if (this.lingerUntil === null) {
        this.lingerUntil = now + this.lingerMs;
        this.onStatus({ phase: "finishing" });
      } else if (now >= this.lingerUntil) {
        this.end("complete");
      }
    }
  }

  /**
   * The netcode heard nothing from a partner for `disconnect_timeout_ms` and plays them with default inputs
   * (`Disconnected`): playing on alone would upload a "complete" episode the partner never played, so the game
   * ends as if they left (the host keeps no rows from the disconnect frame on). Not once the game is done (the
   * partner's goodbye after the last frame). With a takeover policy (GymScene(on_partner_drop="ai")) the server
   * decides after its grace period (`p2p_takeover` or `p2p_partner_left`); the page waits for that, at most
   * `partnerDecisionMs` (a partner whose socket stays up is never declared gone by the server).
   */
  partnerWentSilent(event, result) {
    return event.type === "Disconnected" && Number(event.player) !== this.myPlayerId && !result.done;
  }

  /** Avatar positions from the renderer's model (objects whose id is an agent id). */
  avatarPositions() {
    const objects = this.renderer.model?.objects;
    const out = {};
    if (!objects) return out;
    for (const agent of this.agents) {
      const spec = objects.get(agent);
      if (spec) out[agent] = { x: spec.x, y: spec.y };
    }
    return out;
  }

  // ---- data and the end ----

  /** The upload's stats; with `episode`, `input_delay` is the delay that episode was played with ("auto"). */
  stats(episode = null) {
    const session = this.host.stats();
    const delay = episode === null ? undefined : session.input_delays?.[episode];
    if (Number.isInteger(delay)) session.input_delay = delay;
    const stats = buildUploadStats(session, this.transport.getStats(), this.probe.summary());
    // A page that resumed from a snapshot says where: the server's verdict waits for this page's uploads.
    if (session.rejoined) stats.rejoined = session.rejoined;
    else if (this.startedOver) stats.rejoined = { frame: 0, episode: 0, t: 0 }; // the whole game, from its start
    return stats;
  }

  uploadEpisode(episode, partial, endReason) {
    if (this.uploaded.has(episode)) return;
    this.uploaded.add(episode);
    const payload = this.hostPayload(episode, partial, endReason); // now: the host moves on
    this.uploads.push(this.clockReady.then(() => this.uploader.upload(this.withClock(payload))));
  }

  /**
   * One episode's upload now: the host's payload, the game, network stats, and the page-clock times it was
   * played (`clock`; with `this.clockEstimate` = {offset_s, rtt_s} when the page has measured one).
   */
  episodeUpload(episode, partial, endReason) {
    return this.withClock(this.hostPayload(episode, partial, endReason));
  }

  hostPayload(episode, partial, endReason) {
    return { ...this.host.episodePayload(episode, partial, endReason), game_id: this.gameId,
      stats: this.stats(episode) };
  }

  withClock(payload) {
    const clock = clockFromSteps(payload.steps, this.clockEstimate);
    return clock ? { ...payload, clock } : payload;
  }

  /**
   * The server says a partner left for good. `partnerError`: their game ended with this error. Every peer runs
   * the same simulation, so a game that has started here fails with it (whichever page reached the failing step
   * first is a matter of timing); one that has not started ends as if the partner left (their page failed to load).
   */
  partnerLeft(playerId, { partnerError = null } = {}) {
    if (this.finished) return;
    try {
      this.host.partnerLeft(playerId);
    } catch { /* the host may already consider it gone */ }
    if (partnerError !== null && this.started) {
      const error = new Error("the partner's game stopped with an error");
      error.traceback = `The partner's game stopped with this error:\n${partnerError}`;
      this.end("error", error);
      return;
    }
    this.end("partner_left");
  }

  /**
   * The server says the gone players are this page's to play (GymScene on_partner_drop="ai", one player left):
   * the scene's policy plays them from the next frame on and the game goes on. If the host refuses (another
   * peer is still connected, no policy), the game ends as if the partner left.
   * @param {number[]} playerIds
   * @returns {number|null} the first frame the policy plays, or null if the game ended instead
   */
  takeOver(playerIds) {
    if (this.finished) return null;
    let frame = null;
    for (const playerId of playerIds) {
      let answer;
      try {
        answer = JSON.parse(this.host.takeOver(playerId));
      } catch (err) {
        this.end("error", err);
        return null;
      }
      if (!answer.ok) {
        console.warn(`[p2p] takeover of player ${playerId} refused: ${answer.error}`);
        this.partnerLeft(playerId);
        return null;
      }
      frame = answer.frame;
    }
    this.takenOver = true;
    return frame;
  }

  /** Ends the game now (page leaving or scene destroyed). */
  stop(reason = "error") {
    this.end(reason);
  }

  /**
   * The page is closing: tell the partner at once (goodbye packets) and send what was confirmed of the current
   * episode, marked partial, without waiting for an acknowledgement (there will be no time for one).
   */
  pageClosed(socket) {
    if (this.finished) return;
    this.finished = true;
    this.ticker.stop();
    clearInterval(this.rejoinTimer);
    if (!this.started) return; // nothing played here yet: no goodbye (see end())
    try {
      for (const [peer, bytes] of this.host.closePackets()) this.transport.send(peer, bytes);
      const episode = this.host.currentEpisode;
      if (episode < this.config.seeds.length && this.host.stepCount(episode) > 0 && !this.uploaded.has(episode)) {
        const payload = this.episodeUpload(episode, true, "page_closed");
        this.uploader.stash?.(payload);
        socket.emit("p2p_episode", payload);
      }
    } catch (err) {
      console.warn("[p2p] could not save the partial episode on page close", err);
    }
  }

  end(reason, error = null) {
    if (this.finished) return;
    this.finished = true;
    this.ticker.stop();
    clearInterval(this.readyTimer);
    clearInterval(this.rejoinTimer);
    this.keyTarget?.removeEventListener?.("keydown", this.onKey, true);
    this.input?.destroy?.();
    this.error = error;
    if (reason !== "complete" && this.started) {
      // A page that has not started says no goodbye: the partner would replay it when its own game starts and
      // lose this player at frame 0, though a new page of theirs (a reload) may be about to play; a rejoining
      // page's fresh session is not the one the partner plays with either.
      try {
        for (const [peer, bytes] of this.host.closePackets()) this.transport.send(peer, bytes);
      } catch { /* best effort */ }
      const episode = this.host.currentEpisode;
      if (episode < this.config.seeds.length && this.host.stepCount(episode) > 0) {
        this.uploadEpisode(episode, true, UPLOAD_END_REASONS[reason] ?? "error");
      }
    }
    this.onStatus({ phase: "uploading", reason });
    Promise.allSettled(this.uploads).then((results) => {
      const uploadErrors = results.filter((r) => r.status === "rejected").map((r) => String(r.reason?.message ?? r.reason));
      this.resolveDone({ reason, uploadErrors, error: error ? String(error.message ?? error) : null });
    });
  }
}

function normalizedKey(key) {
  if (key === " " || key === "Spacebar") return "Space";
  if (typeof key === "string" && key.length === 1) return key.toLowerCase();
  return key;
}
