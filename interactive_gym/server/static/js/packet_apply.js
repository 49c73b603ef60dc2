// Applies render packets (made by interactive_gym/rendering/packets.py) to a plain scene model.
//
// Pure: no DOM, no Phaser, so `node --test` checks it. The Renderer keeps Phaser objects in step with the
// model using what applyPacket reports (which keys changed, which went away, whether to restack).
//
// Model keys: a persistent object with id "p1" has key "o:p1"; the i-th transient object has key "t:i".
// Transient objects are matched by position from frame to frame, so a Renderer can reuse their Phaser objects.

export const PACKET_VERSION = 1;

// Field values assumed when a definition leaves a field out. Must equal DEFAULTS in
// interactive_gym/rendering/packets.py (tests/unit/test_render_packets.py compares them).
export const DEFAULTS = Object.freeze({
  rect: Object.freeze({ d: 0, c: "#ffffff", s: null, sw: 1 }),
  circle: Object.freeze({ d: 0, c: "#ffffff", s: null, sw: 1 }),
  line: Object.freeze({ d: 0, c: "#ffffff", lw: 2 }),
  polygon: Object.freeze({ d: 0, c: "#ffffff", s: null, sw: 1 }),
  text: Object.freeze({ d: 0, c: "#ffffff", size: 16, align: "left", font: "sans-serif" }),
  image: Object.freeze({ d: 0, w: null, h: null, frame: null, angle: 0 }),
});

export const REQUIRED = Object.freeze({
  rect: ["x", "y", "w", "h"],
  circle: ["x", "y", "r"],
  line: ["p"],
  polygon: ["p"],
  text: ["x", "y", "text"],
  image: ["name", "x", "y"],
});

/** A packet that cannot be applied. `code` is "version", "gap" (a diff that does not follow the model's
 * frame: ask the server for a snapshot) or "invalid". */
export class PacketError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PacketError";
    this.code = code;
  }
}

/** Returns an empty model; its first packet must be a full one. */
export function createModel() {
  return {
    seq: null,
    width: 0,
    height: 0,
    background: "#000000",
    objects: new Map(), // id -> complete spec (type "t", id, every field)
    order: [], // persistent ids, bottom first
    transient: [], // complete specs, draw order
  };
}

/**
 * Applies `packet` to `model` in place, or throws PacketError leaving the model untouched.
 * @returns {{changed: Set<string>, removed: Set<string>, restack: boolean, resized: boolean,
 *            backgroundChanged: boolean}} keys created or changed, keys gone, whether stacking may have
 *            changed, whether size changed, whether the background changed.
 */
export function applyPacket(model, packet) {
  checkEnvelope(model, packet);
  const plan = planObjects(model, packet);
  const transient = (packet.transient || []).map((entry) => {
    if (entry === null || typeof entry !== "object") throw new PacketError("invalid", "bad transient entry");
    return definitionToSpec(entry);
  });
  const result = {
    changed: new Set(),
    removed: new Set(),
    restack: false,
    resized: false,
    backgroundChanged: false,
  };
  if (packet.full) {
    const [width, height] = packet.size;
    result.resized = width !== model.width || height !== model.height;
    model.width = width;
    model.height = height;
    for (const id of model.objects.keys()) {
      if (!plan.objects.has(id)) result.removed.add(`o:${id}`);
    }
    result.restack = true;
  }
  if (packet.bg !== undefined && packet.bg !== model.background) {
    model.background = packet.bg;
    result.backgroundChanged = true;
  }
  for (const id of plan.removed) result.removed.add(`o:${id}`);
  for (const id of plan.touched) result.changed.add(`o:${id}`);
  if (plan.restack) result.restack = true;
  model.objects = plan.objects;
  model.order = plan.order;
  applyTransient(model, transient, result);
  model.seq = packet.seq;
  return result;
}

/** Every object of the model as {key, spec}, bottom first: by depth, then persistent objects in their order,
 * then transient objects in draw order (the stacking rule documented on the Python Surface). */
export function drawOrder(model) {
  const items = [];
  model.order.forEach((id, index) => {
    items.push({ key: `o:${id}`, spec: model.objects.get(id), group: 0, index });
  });
  model.transient.forEach((spec, index) => {
    items.push({ key: `t:${index}`, spec, group: 1, index });
  });
  items.sort((a, b) => a.spec.d - b.spec.d || a.group - b.group || a.index - b.index);
  return items.map(({ key, spec }) => ({ key, spec }));
}

/** Looks a key up in the model; undefined if absent. */
export function specFor(model, key) {
  if (key.startsWith("o:")) return model.objects.get(key.slice(2));
  if (key.startsWith("t:")) return model.transient[Number(key.slice(2))];
  return undefined;
}

/** "#rrggbb" or "#rrggbbaa" -> {color: 0xrrggbb, alpha: 0..1}; null stays null. */
export function parseColor(text) {
  if (text === null || text === undefined) return null;
  if (typeof text !== "string" || !/^#([0-9a-f]{6}|[0-9a-f]{8})$/i.test(text)) {
    throw new PacketError("invalid", `bad colour ${JSON.stringify(text)}`);
  }
  const color = parseInt(text.slice(1, 7), 16);
  const alpha = text.length === 9 ? parseInt(text.slice(7, 9), 16) / 255 : 1;
  return { color, alpha };
}

function checkEnvelope(model, packet) {
  if (packet === null || typeof packet !== "object" || Array.isArray(packet)) {
    throw new PacketError("invalid", "a render packet must be an object");
  }
  if (packet.v !== PACKET_VERSION) {
    throw new PacketError("version", `render packet version ${packet.v}; this renderer reads ${PACKET_VERSION}`);
  }
  if (!Number.isInteger(packet.seq)) throw new PacketError("invalid", "render packet has no integer seq");
  if (packet.full) {
    const size = packet.size;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((n) => Number.isInteger(n) && n > 0)) {
      throw new PacketError("invalid", "a full render packet needs size: [width, height]");
    }
    if (typeof packet.bg !== "string") throw new PacketError("invalid", "a full render packet needs bg");
  } else if (model.seq === null || packet.seq !== model.seq + 1) {
    throw new PacketError("gap", `diff packet ${packet.seq} does not follow frame ${model.seq}`);
  }
  if (packet.bg !== undefined) parseColor(packet.bg);
  for (const field of ["objects", "remove", "order", "transient"]) {
    if (packet[field] !== undefined && !Array.isArray(packet[field])) {
      throw new PacketError("invalid", `render packet field ${field} must be a list`);
    }
  }
}

// Works out the new persistent objects and order without touching the model (so a bad packet changes nothing).
function planObjects(model, packet) {
  const objects = packet.full ? new Map() : new Map(model.objects);
  const touched = new Set();
  const added = [];
  let restack = false;
  for (const entry of packet.objects || []) {
    if (entry === null || typeof entry !== "object" || typeof entry.id !== "string") {
      throw new PacketError("invalid", `object entry without a string id: ${JSON.stringify(entry)}`);
    }
    const old = objects.get(entry.id);
    let spec;
    if (entry.t !== undefined) {
      spec = definitionToSpec(entry);
      if (!old) added.push(entry.id);
      restack = true;
    } else {
      if (!old) throw new PacketError("invalid", `patch for unknown object ${JSON.stringify(entry.id)}`);
      spec = { ...old };
      for (const [field, value] of Object.entries(entry)) {
        if (field !== "id" && !isField(old.t, field)) {
          throw new PacketError("invalid", `${old.t} has no field ${JSON.stringify(field)}`);
        }
        spec[field] = value;
      }
      checkValues(spec);
      if (spec.d !== old.d) restack = true;
    }
    objects.set(entry.id, spec);
    touched.add(entry.id);
  }
  const removed = [];
  for (const id of packet.remove || []) {
    if (!objects.has(id)) throw new PacketError("invalid", `remove of unknown object ${JSON.stringify(id)}`);
    objects.delete(id);
    touched.delete(id);
    removed.push(id);
  }
  let order;
  if (packet.order !== undefined) {
    order = packet.order.slice();
    const unique = new Set(order);
    if (unique.size !== order.length || order.length !== objects.size || !order.every((id) => objects.has(id))) {
      throw new PacketError("invalid", "render packet order must list every object id exactly once");
    }
    restack = true;
  } else {
    const base = packet.full ? [] : model.order.filter((id) => objects.has(id));
    order = base.concat(added.filter((id) => objects.has(id)));
  }
  if (removed.length) restack = true;
  return { objects, order, touched, removed, restack };
}

function definitionToSpec(entry) {
  const defaults = DEFAULTS[entry.t];
  if (!defaults) throw new PacketError("invalid", `unknown object type ${JSON.stringify(entry.t)}`);
  for (const field of REQUIRED[entry.t]) {
    if (entry[field] === undefined) {
      throw new PacketError("invalid", `${entry.t} ${JSON.stringify(entry.id ?? "")} lacks field ${field}`);
    }
  }
  for (const field of Object.keys(entry)) {
    if (field !== "t" && field !== "id" && !isField(entry.t, field)) {
      throw new PacketError("invalid", `${entry.t} has no field ${JSON.stringify(field)}`);
    }
  }
  return checkValues({ ...defaults, ...entry });
}

const NUMBER_FIELDS = ["x", "y", "w", "h", "r", "d", "sw", "lw", "size", "angle"];
const NULLABLE_FIELDS = new Set(["c", "s", "w", "h", "frame"]);

// Catches values the drawing code could not use, so a bad packet fails here with a clear message.
function checkValues(spec) {
  for (const field of NUMBER_FIELDS) {
    const value = spec[field];
    if (value === undefined || (value === null && NULLABLE_FIELDS.has(field))) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new PacketError("invalid", `${spec.t} field ${field} must be a finite number, got ${JSON.stringify(value)}`);
    }
  }
  for (const field of ["c", "s"]) if (spec[field] !== undefined) parseColor(spec[field]);
  if (spec.p !== undefined && (!Array.isArray(spec.p) || spec.p.length % 2 !== 0 || !spec.p.every(Number.isFinite))) {
    throw new PacketError("invalid", `${spec.t} points must be a flat list of x, y numbers`);
  }
  if (spec.text !== undefined && typeof spec.text !== "string") {
    throw new PacketError("invalid", "text must be a string");
  }
  return spec;
}

function isField(type, field) {
  return field in DEFAULTS[type] || REQUIRED[type].includes(field);
}

function applyTransient(model, next, result) {
  next.forEach((spec, index) => {
    const old = model.transient[index];
    if (!old || !sameSpec(old, spec)) {
      result.changed.add(`t:${index}`);
      if (!old || old.d !== spec.d) result.restack = true;
    }
  });
  for (let index = next.length; index < model.transient.length; index += 1) {
    result.removed.add(`t:${index}`);
    result.restack = true;
  }
  model.transient = next;
}

/** Shallow comparison of two complete specs, point lists compared element by element. */
export function sameSpec(a, b) {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => {
    const x = a[key];
    const y = b[key];
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => v === y[i]);
    return x === y;
  });
}
