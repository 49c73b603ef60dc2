// Keyboard capture for games: which game keys are held right now, and which keys count on each tick.
//
// Mapping keys to actions is not done here: the key list goes to Python (controls.py), which all modes
// share. KeyState is the pure core (no DOM, tested with node --test); KeyboardInput wires it to DOM events.
//
// Tick rule (the same as controls.TickKeys in Python; both are tested against tests/fixtures/input_cases.json):
// a key counts on every tick at which it is held; a key pressed and released entirely between two ticks
// counts on exactly the next tick; a key that was held at a tick and released afterwards counts no more.
// So a tap shorter than a tick is never lost, and no tap counts twice.

// Old or alternative `event.key` values and their standard names (controls.KEY_ALIASES is the same table).
export const KEY_ALIASES = new Map([
  [" ", "Space"],
  ["Spacebar", "Space"],
  ["Esc", "Escape"],
  ["Del", "Delete"],
  ["Left", "ArrowLeft"],
  ["Right", "ArrowRight"],
  ["Up", "ArrowUp"],
  ["Down", "ArrowDown"],
]);

/**
 * Normalises a KeyboardEvent.key value: " " -> "Space", single letters to lower case (so Shift cannot leave
 * "A" held after "a" is released), legacy names ("Left", "Esc") to standard ones. Other names pass through.
 */
export function normalizeKey(key) {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError(`a key name must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  const name = KEY_ALIASES.get(key) ?? key;
  return name.length === 1 ? name.toLowerCase() : name;
}

/** Pure state of the game keys: held keys in press order, plus taps awaiting the next sample. */
export class KeyState {
  /** @param {string[]} keys the key names the game uses (normalised with normalizeKey). */
  constructor(keys) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new TypeError("KeyState needs the list of game keys, e.g. ['ArrowLeft', 'ArrowRight', 'Space']");
    }
    this.keys = new Set(keys.map(normalizeKey));
    this.held = new Map(); // key -> press number; Map iteration order = press order
    this.unseen = new Set(); // held keys pressed since the last sample
    this.tapped = new Map(); // pressed and released since the last sample, key -> press number
    this.pressCount = 0;
  }

  /** Whether `key` (already normalised) is a game key. */
  isGameKey(key) {
    return this.keys.has(key);
  }

  /** Records a press; returns true if the game-key state changed (auto-repeat does not change it). */
  down(key) {
    if (!this.keys.has(key) || this.held.has(key)) return false;
    this.pressCount += 1;
    this.held.set(key, this.pressCount);
    this.unseen.add(key);
    return true;
  }

  /** Records a release; returns true if the key was held. */
  up(key) {
    const pressed = this.held.get(key);
    if (pressed === undefined) return false;
    this.held.delete(key);
    // Only a press no sample has seen yet is a tap; one already counted at a tick counts no more.
    if (this.unseen.delete(key)) this.tapped.set(key, pressed);
    return true;
  }

  /** Releases every held key (focus lost); returns true if any was held. */
  releaseAll() {
    const any = this.held.size > 0;
    for (const key of [...this.held.keys()]) this.up(key);
    return any;
  }

  /** Game keys held now, most recently pressed last. */
  heldKeys() {
    return [...this.held.keys()];
  }

  /** Drops taps not yet counted (a new episode starts; controls.TickKeys.forget_taps does the same). */
  forgetTaps() {
    this.tapped.clear();
  }

  /**
   * Keys for this tick: held now plus those tapped since the previous sample, ordered by press time (most
   * recent last); then forgets the taps. Call once per tick.
   */
  sample() {
    const merged = new Map([...this.tapped, ...this.held]);
    this.tapped.clear();
    this.unseen.clear();
    return [...merged.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => key);
  }
}

function isEditable(target) {
  if (!target || typeof target !== "object") return false;
  const tag = typeof target.tagName === "string" ? target.tagName.toUpperCase() : "";
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable === true;
}

/**
 * Listens to keydown/keyup on `target` (default: window) for the game's keys.
 *
 * Prevents the browser's default action (page scrolling on arrows/Space) for game keys pressed without
 * Ctrl/Alt/Meta; ignores typing in form fields; releases everything when the window loses focus or the tab
 * is hidden, because the matching keyup would never arrive (the classic stuck-key bug).
 */
export class KeyboardInput {
  /**
   * @param {EventTarget} [target=window]
   * @param {{keys: string[], onChange?: (held: string[]) => void}} options game keys; onChange is called
   *   with heldKeys() whenever the set of held game keys changes.
   */
  constructor(target = globalThis.window, { keys, onChange = null } = {}) {
    if (!target || typeof target.addEventListener !== "function") {
      throw new TypeError("KeyboardInput needs an event target such as window");
    }
    this.state = new KeyState(keys);
    this.target = target;
    this.onChange = onChange;
    this.codeToKey = new Map();
    this.doc = globalThis.document ?? null;
    this.listeners = [
      [target, "keydown", (event) => this.handleKey(event, true)],
      [target, "keyup", (event) => this.handleKey(event, false)],
      [target, "blur", () => this.releaseAll()],
    ];
    if (globalThis.window && target !== globalThis.window) {
      this.listeners.push([globalThis.window, "blur", () => this.releaseAll()]);
    }
    if (this.doc) {
      this.listeners.push([this.doc, "visibilitychange", () => this.doc.hidden && this.releaseAll()]);
    }
    for (const [where, type, listener] of this.listeners) where.addEventListener(type, listener);
  }

  /** Game keys held now, most recently pressed last. */
  heldKeys() {
    return this.state.heldKeys();
  }

  /** Keys for this tick (held plus taps since the last call; see the tick rule at the top of this file). */
  sample() {
    return this.state.sample();
  }

  /** Drops taps not yet counted: call when an episode starts, so a tap from the pause before it does not act. */
  forgetTaps() {
    this.state.forgetTaps();
  }

  /** Releases every key, e.g. when the game pauses. */
  releaseAll() {
    if (this.state.releaseAll()) this.notify();
  }

  /** Removes every listener; the object is unusable afterwards. */
  destroy() {
    for (const [where, type, listener] of this.listeners) where.removeEventListener(type, listener);
    this.listeners = [];
  }

  handleKey(event, isDown) {
    if (typeof event.key !== "string" || event.key.length === 0 || isEditable(event.target)) return;
    // A keyup may report a different key than its keydown (Shift pressed in between turns "1" into "!"), so
    // releases are matched to presses by physical key code when the browser gives one.
    let key = normalizeKey(event.key);
    if (event.code) {
      if (isDown) this.codeToKey.set(event.code, key);
      else if (this.codeToKey.has(event.code)) {
        key = this.codeToKey.get(event.code);
        this.codeToKey.delete(event.code);
      }
    }
    if (!this.state.isGameKey(key)) return;
    if (!event.ctrlKey && !event.altKey && !event.metaKey) event.preventDefault();
    const changed = isDown ? this.state.down(key) : this.state.up(key);
    if (changed) this.notify();
  }

  notify() {
    if (this.onChange) this.onChange(this.state.heldKeys());
  }
}
