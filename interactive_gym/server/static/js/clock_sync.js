// How far the server's clock is ahead of this page's, so the times a page records (Date.now()) can be stored
// on the server's clock. Pure: it is given `ping(t) -> Promise<{t, server_t}>` (the Socket.IO `ping` event,
// answered with the server's wall clock in ms), so it is tested in node without a server.
//
// Each sample: t0 = page time sent, t1 = page time the answer came back, s = server time in between; the
// server read its clock about halfway, so offset = s - (t0 + t1) / 2, uncertain by at most half the round
// trip. The sample with the shortest round trip is the most certain one and is kept.

/**
 * @param {(t: number) => Promise<{server_t: number}>} ping
 * @param {{samples?: number, now?: () => number, sleep?: (ms: number) => Promise<void>, gapMs?: number}} [options]
 * @returns {Promise<{offset_s: number, rtt_s: number} | null>} null when no sample came back
 */
export async function estimateClockOffset(ping, { samples = 5, now = () => Date.now(), gapMs = 50,
  sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)) } = {}) {
  let best = null;
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(gapMs);
    const t0 = now();
    let answer;
    try {
      answer = await ping(t0);
    } catch {
      continue; // a lost ping costs one sample
    }
    const t1 = now();
    const server = Number(answer?.server_t);
    if (!Number.isFinite(server) || t1 < t0) continue;
    const sample = { offset_s: (server - (t0 + t1) / 2) / 1000, rtt_s: (t1 - t0) / 1000 };
    if (best === null || sample.rtt_s < best.rtt_s) best = sample;
  }
  return best;
}

/** Seconds on the page's wall clock (what the Python host's time.time() reads too). */
export function pageSeconds(now = () => Date.now()) {
  return now() / 1000;
}

/**
 * The `clock` of an upload whose episode start and end the page did not stamp itself (p2p): the first and
 * last step's page time (`client_ts`, unix seconds), with the offset estimate if there is one. Undefined when
 * no step carries a time (the server then flags the episode `no_clock`).
 */
export function clockFromSteps(steps, estimate = null) {
  const stamps = (steps ?? []).map((row) => row?.client_ts).filter((ts) => Number.isFinite(ts));
  if (!stamps.length) return undefined;
  return { started_at: stamps[0], ended_at: Math.max(...stamps), offset_s: estimate?.offset_s ?? null,
    rtt_s: estimate?.rtt_s ?? null };
}
