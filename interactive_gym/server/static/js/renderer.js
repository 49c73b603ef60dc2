// Draws render packets with Phaser: the browser half of interactive_gym/rendering.
//
// The packet logic lives in packet_apply.js (pure); this module only keeps one Phaser game object per model
// object in step with the model. Canvas rendering by default: it works everywhere, headless Chromium included,
// and a render packet's scenes are small.
//
// Drawing follows the display, not the simulation: draw(packet) applies the packet to the model at once (so
// errors throw to the caller and the model is always current) and the Phaser objects are synced on Phaser's
// next animation frame ("prestep", driven by requestAnimationFrame), just before it paints. Several packets
// between two paints cost one sync with the latest state (draw_queue.js); a paint without a new packet syncs
// nothing. framePacing() reports the intervals between paints that showed a new packet.
//
// A p2p tick that rolled back passes draw(packet, {correction}); objects the correction moved may then glide to
// their corrected place (rollback_smoothing.js, GymScene(rollback_smoothing_frames), off by default): only the
// drawn position differs, never the model.

import * as Phaser from "/vendor/phaser/phaser.esm.min.js";
import { FramePacing, PendingDraw } from "./draw_queue.js";
import { applyPacket, createModel, drawOrder, parseColor, specFor } from "./packet_apply.js";
import { RollbackSmoothing } from "./rollback_smoothing.js";

const SHAPES = new Set(["rect", "circle", "line", "polygon"]);
const TEXT_ORIGIN = { left: 0, center: 0.5, right: 1 };

function cssColor(text) {
  const { color, alpha } = parseColor(text);
  return `rgba(${(color >> 16) & 255},${(color >> 8) & 255},${color & 255},${alpha})`;
}

function pointsOf(flat) {
  const points = [];
  for (let i = 0; i < flat.length; i += 2) points.push({ x: flat[i], y: flat[i + 1] });
  return points;
}

/** Which Phaser object class draws a spec type. */
function familyOf(type) {
  return SHAPES.has(type) ? "graphics" : type;
}

export class Renderer {
  /**
   * @param {HTMLElement} container element the canvas goes into; the surface is scaled to fit it, keeping
   *   the aspect ratio (give the container a size).
   * @param {{width: number, height: number, background?: string, assets?: object, renderType?: "canvas"|"auto"}}
   *   options surface size in pixels, initial background, the asset manifest from AssetRegistry.manifest(),
   *   and the Phaser renderer ("canvas" by default; "auto" prefers WebGL).
   */
  constructor(container, { width, height, background = "#000000", assets = {}, renderType = "canvas" } = {}) {
    if (!container || typeof container.appendChild !== "function") {
      throw new TypeError("Renderer needs a container element");
    }
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new TypeError(`Renderer needs integer width and height > 0, got ${width} x ${height}`);
    }
    if (renderType !== "canvas" && renderType !== "auto") {
      throw new TypeError(`renderType must be "canvas" or "auto", got ${JSON.stringify(renderType)}`);
    }
    this.model = createModel();
    this.objects = new Map(); // model key -> {family, obj}
    this.missingWarned = new Set();
    this.lastDrawMs = 0;
    this.pending = new PendingDraw();
    this.pendingMs = 0; // time spent applying the packets not yet drawn
    this.pacing = new FramePacing();
    this.smoothing = new RollbackSmoothing();
    this.drawAt = new Map(); // key -> where to draw it instead of the model's position (a glide), until the flush
    this.scene = null;
    this.readyPromise = new Promise((resolve, reject) => {
      const renderer = this;
      const failures = [];
      this.game = new Phaser.Game({
        type: renderType === "canvas" ? Phaser.CANVAS : Phaser.AUTO,
        parent: container,
        width,
        height,
        transparent: true,
        banner: false,
        audio: { noAudio: true },
        // Keys are captured by input.js; Phaser must not swallow them.
        input: { keyboard: false, gamepad: false },
        scale: { mode: Phaser.Scale.FIT, autoCenter: Phaser.Scale.CENTER_BOTH },
        scene: {
          preload() {
            this.load.on("loaderror", (file) => failures.push(`${file.key} (${file.src})`));
            loadAssets(this.load, assets);
          },
          create() {
            renderer.scene = this;
            renderer.setBackground(background);
            // Once per animation frame, before the paint: show what the packets since the last one changed.
            renderer.game.events.on("prestep", (time) => renderer.flush(time));
            // A hidden tab paints nothing: the wait until it is back is not a slow frame.
            renderer.game.events.on("hidden", () => renderer.pacing.gap());
            if (failures.length) reject(new Error(`Renderer could not load assets: ${failures.join(", ")}`));
            else resolve(renderer);
          },
        },
      });
    });
  }

  /** Resolves once Phaser has booted and every asset is loaded; rejects naming assets that failed. */
  ready() {
    return this.readyPromise;
  }

  /**
   * Shows a render packet on the next animation frame. Throws PacketError (from packet_apply.js) if it
   * cannot be applied; code "gap" means the packet does not follow the last one drawn, and a full snapshot
   * is needed.
   * @param {object} packet
   * @param {{correction?: {frames: number, exclude?: string[]}|null}} [options] `correction`: this packet follows
   *   a rollback; objects it moved glide over `frames` frames (0: drawn as they are, only counted), except the
   *   render ids in `exclude`.
   */
  draw(packet, { correction = null } = {}) {
    if (!this.scene) throw new Error("Renderer.draw() called before ready() resolved");
    const started = performance.now();
    const shown = correction ? this.smoothing.shownPositions(this.model) : null;
    const result = applyPacket(this.model, packet);
    const gliding = this.smoothing.afterPacket(this.model, result, { ...correction, shown });
    for (const key of result.changed) this.drawAt.delete(key);
    for (const key of result.removed) this.drawAt.delete(key);
    for (const [key, at] of gliding) {
      this.drawAt.set(key, at);
      result.changed.add(key); // a glide moves it on frames where the packet did not
    }
    this.pending.add(result);
    this.pendingMs += performance.now() - started;
  }

  /** Syncs the Phaser objects with the model if a packet arrived since the last flush (Phaser's prestep). */
  flush(timeMs = performance.now()) {
    if (!this.scene || !this.pending.due) return;
    const started = performance.now();
    const todo = this.pending.take();
    if (todo.resized) this.game.scale.resize(this.model.width, this.model.height);
    if (todo.backgroundChanged) this.setBackground(this.model.background);
    for (const key of todo.removed) this.destroyObject(key);
    for (const key of todo.changed) {
      const spec = specFor(this.model, key);
      const at = this.drawAt.get(key);
      if (spec) this.syncObject(key, at ? { ...spec, x: at.x, y: at.y } : spec);
      else this.destroyObject(key); // not reachable from applyPacket's results; never draw a stale object
    }
    this.drawAt.clear();
    if (todo.restack) this.restack();
    this.lastDrawMs = this.pendingMs + performance.now() - started;
    this.pendingMs = 0;
    this.pacing.shown(timeMs, todo.packets);
  }

  /** Test hook: number of live drawn objects and the time the last drawn frame took (apply + sync). */
  stats() {
    return { objects: this.objects.size, lastDrawMs: this.lastDrawMs };
  }

  /**
   * Frame pacing on screen: {frames, coalesced, intervals, p50_ms, p99_ms, max_ms}, where frames are
   * animation frames that showed a new packet and coalesced counts packets never shown on their own.
   */
  framePacing() {
    return this.pacing.summary();
  }

  /** Resolves after Phaser has next rendered the canvas (so pixel reads see the latest draw()). */
  whenRendered() {
    return new Promise((resolve) => this.game.events.once("postrender", () => resolve()));
  }

  /** The canvas element Phaser draws into. */
  get canvas() {
    return this.game.canvas;
  }

  /** Stops Phaser and removes the canvas. */
  destroy() {
    this.objects.clear();
    this.scene = null;
    this.game.destroy(true);
  }

  setBackground(color) {
    this.scene.cameras.main.setBackgroundColor(cssColor(color));
  }

  destroyObject(key) {
    const entry = this.objects.get(key);
    if (!entry) return;
    entry.obj.destroy();
    this.objects.delete(key);
  }

  syncObject(key, spec) {
    let entry = this.objects.get(key);
    const family = familyOf(spec.t);
    if (entry && entry.family !== family) {
      this.destroyObject(key);
      entry = undefined;
    }
    if (!entry) {
      entry = { family, obj: this.createObject(family) };
      this.objects.set(key, entry);
    }
    if (family === "graphics") drawShape(entry.obj, spec);
    else if (family === "text") updateText(entry.obj, spec);
    else this.updateImage(entry.obj, spec);
  }

  createObject(family) {
    const add = this.scene.add;
    if (family === "graphics") return add.graphics();
    if (family === "text") return add.text(0, 0, "");
    return add.image(0, 0, "__DEFAULT");
  }

  updateImage(image, spec) {
    const textures = this.scene.textures;
    let texture = spec.name;
    let frame = spec.frame === null ? undefined : spec.frame;
    if (!textures.exists(texture)) {
      this.warnOnce(`image ${spec.name}`, `Renderer: no asset named ${JSON.stringify(spec.name)} was loaded`);
      texture = "__MISSING";
      frame = undefined;
    } else if (frame !== undefined && !textures.get(texture).has(frame)) {
      this.warnOnce(`frame ${spec.name}/${frame}`, `Renderer: asset ${spec.name} has no frame ${frame}`);
      frame = undefined;
    }
    image.setTexture(texture, frame);
    image.setOrigin(0.5, 0.5);
    const naturalWidth = image.frame.realWidth;
    const naturalHeight = image.frame.realHeight;
    let width = spec.w ?? naturalWidth;
    let height = spec.h ?? naturalHeight;
    if (spec.w !== null && spec.h === null) height = (naturalHeight * spec.w) / naturalWidth;
    if (spec.h !== null && spec.w === null) width = (naturalWidth * spec.h) / naturalHeight;
    image.setDisplaySize(width, height);
    // The spec's x, y is the unrotated top-left corner; Phaser rotates about the origin, here the centre.
    image.setPosition(spec.x + width / 2, spec.y + height / 2);
    image.setAngle(spec.angle);
  }

  restack() {
    drawOrder(this.model).forEach(({ key }, rank) => {
      const entry = this.objects.get(key);
      if (entry && entry.obj.depth !== rank) entry.obj.setDepth(rank);
    });
  }

  warnOnce(id, message) {
    if (this.missingWarned.has(id)) return;
    this.missingWarned.add(id);
    console.warn(message);
  }
}

function loadAssets(loader, manifest) {
  for (const [name, entry] of Object.entries(manifest || {})) {
    if (entry.kind === "image") loader.image(name, entry.url);
    else if (entry.kind === "spritesheet") {
      loader.spritesheet(name, entry.url, { frameWidth: entry.frame_width, frameHeight: entry.frame_height });
    } else if (entry.kind === "atlas") loader.atlas(name, entry.url, entry.atlas_url);
    else throw new TypeError(`asset ${name}: unknown kind ${JSON.stringify(entry.kind)}`);
  }
}

function drawShape(graphics, spec) {
  graphics.clear();
  const fill = parseColor(spec.c);
  const stroke = spec.s === undefined ? null : parseColor(spec.s);
  if (spec.t === "line") {
    graphics.lineStyle(spec.lw, fill.color, fill.alpha);
    graphics.strokePoints(pointsOf(spec.p), false);
    return;
  }
  if (fill) graphics.fillStyle(fill.color, fill.alpha);
  if (stroke) graphics.lineStyle(spec.sw, stroke.color, stroke.alpha);
  if (spec.t === "rect") {
    if (fill) graphics.fillRect(spec.x, spec.y, spec.w, spec.h);
    if (stroke) graphics.strokeRect(spec.x, spec.y, spec.w, spec.h);
  } else if (spec.t === "circle") {
    if (fill) graphics.fillCircle(spec.x, spec.y, spec.r);
    if (stroke) graphics.strokeCircle(spec.x, spec.y, spec.r);
  } else {
    const points = pointsOf(spec.p);
    if (fill) graphics.fillPoints(points, true);
    if (stroke) graphics.strokePoints(points, true, true);
  }
}

function updateText(text, spec) {
  const { alpha } = parseColor(spec.c);
  text.setText(spec.text);
  text.setStyle({ fontFamily: spec.font, fontSize: `${spec.size}px`, color: spec.c.slice(0, 7), align: spec.align });
  text.setAlpha(alpha);
  text.setOrigin(TEXT_ORIGIN[spec.align] ?? 0, 0);
  text.setPosition(spec.x, spec.y);
}
