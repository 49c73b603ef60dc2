// The loading screen of a browser-mode game: a progress bar with a stage label, and on failure a clear
// message with a Retry button. DOM only; the numbers come from pyodide_loader.js.

const STAGE_LABELS = {
  download: "Downloading the game engine",
  python: "Starting Python",
  packages: "Loading Python packages",
  files: "Loading the game",
  env: "Starting the game",
};

export class LoadingScreen {
  /** @param {HTMLElement} container - the screen is appended here and removed by remove() */
  constructor(container) {
    const doc = container.ownerDocument;
    this.root = doc.createElement("div");
    this.root.className = "ig-loading";
    this.root.setAttribute("role", "status");
    this.label = doc.createElement("p");
    this.label.className = "ig-loading-label";
    this.label.textContent = "Loading…";
    this.bar = doc.createElement("progress");
    this.bar.className = "ig-loading-bar";
    this.bar.max = 1;
    this.bar.value = 0;
    this.error = doc.createElement("p");
    this.error.className = "ig-loading-error";
    this.error.hidden = true;
    this.retry = doc.createElement("button");
    this.retry.className = "ig-loading-retry";
    this.retry.type = "button";
    this.retry.textContent = "Retry";
    this.retry.hidden = true;
    this.root.append(this.label, this.bar, this.error, this.retry);
    container.append(this.root);
  }

  /** Shows progress: `event` from pyodide_loader.js ({stage, progress, bytes, totalBytes}). */
  update(event) {
    this.bar.value = Math.max(this.bar.value, event.progress); // never moves backwards
    const label = STAGE_LABELS[event.stage] ?? "Loading";
    const mb = event.stage === "download" && event.totalBytes
      ? ` (${(event.bytes / 1e6).toFixed(1)} of ${(event.totalBytes / 1e6).toFixed(1)} MB)` : "";
    this.label.textContent = `${label}${mb}… ${Math.round(this.bar.value * 100)}%`;
  }

  /** Shows `message`; resolves when the participant clicks Retry. */
  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    this.retry.hidden = false;
    return new Promise((resolve) => {
      this.retry.onclick = () => {
        this.error.hidden = true;
        this.retry.hidden = true;
        this.bar.value = 0;
        resolve();
      };
    });
  }

  remove() {
    this.root.remove();
  }
}
