// "Partner found, starting in 3…": what the players of a multi-human game read between the group forming and
// the game starting (GymScene(start_countdown_s=...); the server sends the seconds left in game_start or
// pyodide_game_ready). One wording for server and p2p mode.

/**
 * @param {number} secondsLeft seconds until the game starts (shown rounded up).
 * @param {number} humans players in the game (2: "Partner", more: "Partners").
 * @returns {string} e.g. "Partner found, starting in 3…".
 */
export function countdownText(secondsLeft, humans = 2) {
  const whole = Math.max(1, Math.ceil(Number(secondsLeft) || 0));
  return `${humans > 2 ? "Partners" : "Partner"} found, starting in ${whole}…`;
}

/**
 * Counts down, calling onTick(secondsLeft) at once and about four times a second.
 * @param {number} seconds the countdown (0, negative or not a number: none).
 * @param {(secondsLeft: number) => void} onTick
 * @param {() => number} now milliseconds clock (tests pass a fake).
 * @returns {{running: boolean, done: Promise<void>, cancel: () => void}} done resolves when it reaches 0 or
 *   is cancelled.
 */
export function startCountdown(seconds, onTick, now = () => performance.now()) {
  const total = Number.isFinite(Number(seconds)) ? Math.min(Number(seconds), 30) : 0;
  if (!(total > 0)) return { running: false, done: Promise.resolve(), cancel() {} };
  const endsAt = now() + total * 1000;
  let timer = null;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const handle = { running: true, done, cancel() { stop(); } };
  const stop = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    handle.running = false;
    finish();
  };
  const tick = () => {
    const left = (endsAt - now()) / 1000;
    if (left <= 0) stop();
    else onTick(left);
  };
  tick();
  if (handle.running) timer = setInterval(tick, 250);
  return handle;
}
