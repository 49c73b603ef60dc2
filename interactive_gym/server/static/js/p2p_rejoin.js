// Rejoin after a reload or a crash, on the page: the control messages between a rejoining page and the partner
// that sends it the running game, and when each is sent. What is sent (the snapshot of the latest confirmed state
// and the inputs since, with its checksum) is made and loaded in Python (interactive_gym/browser/p2p_rejoin.py).
//
// * The rejoining page (`pyodide_game_ready` with `rejoin: true` and `sender`) asks its sender `{"t":"rejoin"}`
//   once the DataChannel to it is open, and again every REQUEST_MS until the snapshot is loaded.
// * The sender answers only for a player the server announced (`p2p_peer_rejoining`). Its chunks are control
//   messages `{"t":"snapshot","id","i","n"}` + "\n" + the chunk's text (ASCII JSON, at most 12,000 characters: under
//   the 16 kB portable DataChannel message size, so they go over the reliable DataChannel only; the server relay
//   takes 4 kB). A repeated request gets the same chunks again, at most every RESEND_MS.
// * A sender that has not started the game (the reload came while both pages loaded) answers
//   `{"t":"not_started"}`: the new page then starts the game the ordinary way (the ready handshake).
// * A page whose sender has not sent the game within GIVE_UP_MS of its first try (a request, or waiting for the
//   DataChannel a snapshot needs) ends its game with an error (the partner's page is stuck, or no channel opens:
//   TURN failing): a participant is never left on "Getting your game back…". A
//   sender whose game is over is announced by the server at once (`p2p_peer_finished`).
// * Control messages are JSON text without a newline; a body, if any, follows the first newline.

export const REQUEST_MS = 1000;
export const RESEND_MS = 3000;
export const GIVE_UP_MS = 30_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A control message (and an optional text body) as bytes. */
export function encodeControl(message, body = null) {
  const head = JSON.stringify(message);
  return encoder.encode(body === null ? head : `${head}\n${body}`);
}

/** Bytes -> {message, body} (body null without one), or null for anything that is not a control message. */
export function decodeControl(bytes) {
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    return null;
  }
  const nl = text.indexOf("\n");
  try {
    const message = JSON.parse(nl < 0 ? text : text.slice(0, nl));
    if (!message || typeof message !== "object") return null;
    return { message, body: nl < 0 ? null : text.slice(nl + 1) };
  } catch {
    return null;
  }
}

/** The partner's side: serves the announced rejoining players their snapshot. */
export class RejoinSender {
  /**
   * @param {object} host PyodideP2PHost (requestRejoin, expectRejoin)
   * @param {object} transport WebRTCManager (send, isP2P, restartPeer)
   */
  constructor(host, transport) {
    this.host = host;
    this.transport = transport;
    this.players = new Map(); // announced player -> {id, chunks, sentAt}
    this.served = 0;
  }

  /**
   * The server announced `player`'s new page: connect to it afresh (unless done already) and, once the game has
   * started here, tell the host (the old page is gone: its inputs end now, a snapshot sent before is stale).
   */
  expect(player, { reconnect = true, started = true } = {}) {
    if (started) this.host.expectRejoin(player);
    if (reconnect) this.transport.restartPeer?.(player);
    this.players.set(player, { id: null, chunks: null, sentAt: null });
  }

  /**
   * The new page asks for the game.
   * @returns {null|{failed: string}|{served: true}} null while the snapshot is being made (a later tick's
   *   `rejoin` has it) or for a player nobody announced.
   */
  request(player, nowMs) {
    if (!this.players.has(player)) return null; // only a page the server said is this player's
    return this.answer(player, this.host.requestRejoin(player), nowMs);
  }

  /** Takes the host's answer for `player` (from `requestRejoin` or a tick's `rejoin`); sends what it can. */
  answer(player, answer, nowMs) {
    const entry = this.players.get(player);
    if (!entry || !answer) return null;
    if (!answer.ok) return { failed: String(answer.error ?? "the game could not be sent") };
    if (answer.pending) return null;
    if (answer.id !== entry.id) {
      Object.assign(entry, { id: answer.id, chunks: answer.chunks, sentAt: null });
      this.served += 1;
    } else if (entry.sentAt !== null && nowMs - entry.sentAt >= RESEND_MS) {
      entry.sentAt = null; // asked again long after: the chunks once more
    }
    this.flush(nowMs);
    return { served: true };
  }

  /** Sends the chunks not sent yet to each player whose DataChannel is open (call every frame). */
  flush(nowMs) {
    for (const [player, entry] of this.players) {
      if (!entry.chunks || entry.sentAt !== null || !this.transport.isP2P(player)) continue;
      entry.chunks.forEach((text, i) => {
        this.transport.send(player, encodeControl({ t: "snapshot", id: entry.id, i, n: entry.chunks.length }, text),
          { reliable: true });
      });
      entry.sentAt = nowMs;
    }
  }
}

/** The rejoining page's side: asks the sender, loads the snapshot. */
export class RejoinRequester {
  /**
   * @param {object} host PyodideP2PHost (addSnapshotChunk)
   * @param {object} transport WebRTCManager (send, isP2P)
   * @param {number} sender the player the server named to send the game
   */
  constructor(host, transport, sender) {
    this.host = host;
    this.transport = transport;
    this.sender = Number(sender);
    this.requestedAt = null;
    this.firstPollAt = null;
    this.requests = 0;
    this.loaded = null;
  }

  /** Whether GIVE_UP_MS have passed since the first poll and the sender sent nothing that loads. */
  overdue(nowMs) {
    return !this.loaded && this.firstPollAt !== null && nowMs - this.firstPollAt >= GIVE_UP_MS;
  }

  /** Asks the sender when due (call often until loaded). */
  poll(nowMs) {
    this.firstPollAt ??= nowMs;
    if (this.loaded || !this.transport.isP2P(this.sender)) return;
    if (this.requestedAt !== null && nowMs - this.requestedAt < REQUEST_MS) return;
    this.requestedAt = nowMs;
    this.requests += 1;
    this.transport.send(this.sender, encodeControl({ t: "rejoin" }), { reliable: true });
  }

  /**
   * One snapshot chunk from `peer`.
   * @returns {null|{frame: number, episode: number, t: number}} the resumed place once loaded (once only).
   * @throws {Error} when the snapshot does not load (malformed, another player's, a wrong checksum).
   */
  chunk(peer, message, body, nowMs) {
    if (this.loaded || peer !== this.sender || typeof body !== "string") return null;
    const answer = this.host.addSnapshotChunk(message.id, message.i, message.n, body, nowMs);
    if (!answer.ok) throw new Error(`the game sent by the partner does not load: ${answer.error}`);
    if (!answer.loaded) return null;
    this.loaded = { frame: answer.frame, episode: answer.episode, t: answer.t };
    return this.loaded;
  }
}
