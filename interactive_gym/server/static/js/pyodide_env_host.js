// JavaScript face of interactive_gym/browser/host.py (BrowserGameHost running in Pyodide).
//
// Every call crosses the JS/Python boundary with plain values (a string of held keys, an agent id, an
// integer) and gets back plain values or one JSON string; proxies are destroyed at once so nothing leaks
// over thousands of frames. A Python exception becomes an EnvError carrying the Python traceback.

/** The environment (or the researcher's Python code around it) raised inside Pyodide. */
export class EnvError extends Error {
  constructor(where, pythonError) {
    const traceback = String(pythonError?.message ?? pythonError);
    const lines = traceback.trim().split("\n");
    super(`${where}: ${lines[lines.length - 1]}`);
    this.name = "EnvError";
    this.where = where;
    this.traceback = traceback;
  }
}

export class PyodideEnvHost {
  /**
   * @param {object} pyodide - the Pyodide instance
   * @param {object} proxy - PyProxy of a BrowserGameHost
   */
  constructor(pyodide, proxy) {
    this.pyodide = pyodide;
    this.proxy = proxy;
    this.onnxAgents = this.pyList(() => proxy.onnx_agents);
    this.human = proxy.human ?? null;
    this.frameFn = proxy.frame;
    this.overGetter = () => proxy.episode_over;
  }

  /** Imports the host module from the installed bundle and builds the env (BrowserGameHost.from_config). */
  static create(pyodide, config) {
    // The import is inside the try too: a bundle that cannot be imported must reach the server with its traceback.
    let module = null;
    try {
      module = pyodide.pyimport("interactive_gym.browser.host");
      const proxy = module.BrowserGameHost.from_config_json(JSON.stringify(config));
      return new PyodideEnvHost(pyodide, proxy);
    } catch (err) {
      throw new EnvError("creating the environment", err);
    } finally {
      module?.destroy();
    }
  }

  pyList(get) {
    const value = get();
    if (value && typeof value.toJs === "function") {
      const out = value.toJs();
      value.destroy();
      return out;
    }
    return value ?? [];
  }

  call(where, fn) {
    try {
      return fn();
    } catch (err) {
      throw new EnvError(where, err);
    }
  }

  /** Starts an episode; returns the first render packet. */
  reset(seed) {
    return JSON.parse(this.call("reset", () => this.proxy.reset(seed)));
  }

  /**
   * Plays one frame with `keys` held (oldest press first); returns the render packet.
   * @param {string[]} keys
   */
  frame(keys) {
    return JSON.parse(this.frameText(keys));
  }

  /** Like frame() but returns the packet's JSON text (benchmarks measure the boundary without parsing). */
  frameText(keys) {
    return this.call("step", () => this.frameFn(keys.join("\n")));
  }

  /** True once the current episode has ended. */
  get episodeOver() {
    return this.overGetter();
  }

  /** Steps played in the current episode. */
  get t() {
    return this.proxy.t;
  }

  /** Whether ONNX `agent` picks a new action this frame. */
  onnxDue(agent) {
    return this.proxy.onnx_due(agent);
  }

  /** The ONNX network input for `agent` (obs_to_input applied in Python). */
  observationInput(agent) {
    const list = this.call("obs_to_input", () => this.proxy.observation_input(agent));
    const out = Float32Array.from(list.toJs());
    list.destroy();
    return out;
  }

  /** Gives ONNX `agent` its action from this frame on. */
  setExternalAction(agent, action) {
    this.call("set_external_action", () => this.proxy.set_external_action(agent, action));
  }

  /** The recorded rows of the current episode (upload format). */
  steps() {
    return JSON.parse(this.proxy.steps_json());
  }

  destroy() {
    this.frameFn?.destroy?.();
    this.proxy?.destroy?.();
    this.proxy = null;
  }
}
