// What a waiting participant reads, from the server's `waiting` event (one wording for server and p2p mode).
// `needed` is the group size and `waiting` how many are in the queue now (this participant included).

/**
 * @param {{needed?: number, waiting?: number, notice?: string}} msg the `waiting` event.
 * @returns {string} e.g. "Waiting for 1 more participant to join… (2 of 3 here)".
 */
export function waitingText(msg) {
  const needed = Number.isInteger(msg?.needed) && msg.needed > 0 ? msg.needed : 2;
  const here = Number.isInteger(msg?.waiting) && msg.waiting > 0 ? Math.min(msg.waiting, needed) : 1;
  const missing = needed - here;
  // Everyone is queued but someone's tab is hidden or their connection dropped: the game starts when they are back.
  const text = missing > 0
    ? `Waiting for ${missing} more participant${missing > 1 ? "s" : ""} to join… (${here} of ${needed} here)`
    : `Waiting for every participant to be ready… (${here} of ${needed} here)`;
  return msg?.notice ? `${msg.notice} ${text}` : text;
}
