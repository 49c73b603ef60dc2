// How long a page waits before following a server's "relocate" (move to another worker; cluster/handover.py).
// A worker that died a moment ago still counts as alive for a few seconds (its heartbeat): the page is sent to
// it, the front sends the page elsewhere, that worker sends it back... until the heartbeat runs out. The first
// move is at once; moves close together wait longer each, so such a loop costs a few reconnects, not hundreds.

export const RELOCATION_WINDOW_MS = 30_000;
export const FIRST_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 2000;

/** Milliseconds to wait before following a relocation at `now`, given the earlier ones' times (kept, in order,
 *  in `recent`, which this updates: the window's old entries are dropped and `now` is added). */
export function relocationWaitMs(recent, now) {
  while (recent.length && now - recent[0] > RELOCATION_WINDOW_MS) recent.shift();
  recent.push(now);
  return recent.length < 2 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (recent.length - 2));
}
