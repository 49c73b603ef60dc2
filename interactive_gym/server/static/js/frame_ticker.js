// A frame clock for real-time games that keeps running when the tab is in the background.
//
// requestAnimationFrame stops in hidden tabs and main-thread timers are throttled to about once a second there,
// but a p2p game must keep simulating (the partner's game waits for our inputs). Timers inside a dedicated
// Worker are not throttled that way, so the Worker keeps the schedule and posts one message per frame; the page
// does the work. Where Workers are unavailable (node tests) a drift-corrected setTimeout loop is used instead.
//
//   const ticker = new FrameTicker(30, (nowMs) => game.frame(nowMs));
//   ticker.start(); ... ticker.stop();

const WORKER_SOURCE = `
let timer = null;
let next = 0;
let period = 0;
function loop() {
  const now = performance.now();
  postMessage(now);
  next += period;
  // After a long stall restart the schedule instead of firing a burst of late frames.
  if (next < now - 5 * period) next = now + period;
  timer = setTimeout(loop, Math.max(0, next - performance.now()));
}
onmessage = (e) => {
  clearTimeout(timer);
  if (e.data && e.data.periodMs > 0) {
    period = e.data.periodMs;
    next = performance.now();
    loop();
  }
};
`;

/** Milliseconds between frames for `fps`, validated. */
export function framePeriodMs(fps) {
  if (typeof fps !== "number" || !Number.isFinite(fps) || fps <= 0 || fps > 240) {
    throw new TypeError(`fps must be a number in (0, 240], got ${JSON.stringify(fps)}`);
  }
  return 1000 / fps;
}

export class FrameTicker {
  /**
   * @param {number} fps frames per second.
   * @param {(nowMs: number) => void} onFrame called once per frame with performance.now().
   * @param {{useWorker?: boolean, now?: () => number}} [options]
   */
  constructor(fps, onFrame, { useWorker = typeof Worker === "function" && typeof Blob === "function", now } = {}) {
    this.periodMs = framePeriodMs(fps);
    this.onFrame = onFrame;
    this.useWorker = useWorker;
    this.now = now ?? (() => performance.now());
    this.running = false;
    this.worker = null;
    this.timer = null;
    this.frames = 0;
    this.skipped = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    if (this.useWorker) {
      const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
      this.worker = new Worker(url);
      URL.revokeObjectURL(url);
      this.worker.onmessage = () => this._fire();
      this.worker.postMessage({ periodMs: this.periodMs });
    } else {
      let next = this.now();
      const loop = () => {
        if (!this.running) return;
        this._fire();
        next += this.periodMs;
        const now = this.now();
        if (next < now - 5 * this.periodMs) next = now + this.periodMs;
        this.timer = setTimeout(loop, Math.max(0, next - now));
      };
      loop();
    }
  }

  _fire() {
    if (!this.running) return;
    const now = this.now();
    // Messages that queued up while the page was busy would replay frames in a burst: coalesce them.
    if (this.lastFrameAt !== undefined && now - this.lastFrameAt < this.periodMs * 0.25) {
      this.skipped += 1;
      return;
    }
    this.lastFrameAt = now;
    this.frames += 1;
    this.onFrame(now);
  }

  stop() {
    this.running = false;
    if (this.worker) {
      this.worker.postMessage({ periodMs: 0 });
      this.worker.terminate();
      this.worker = null;
    }
    clearTimeout(this.timer);
  }
}
