// Page scenes: consent (start), static pages with survey inputs, and the end page.
// The HTML and labels come from the experiment file (trusted); participant answers are only read here.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "html") node.innerHTML = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function renderInput(input) {
  const box = el("div", { class: "field", "data-input": input.name });
  box.append(el("label", { class: "q", text: input.label + (input.required ? " *" : "") }));
  if (input.kind === "text") {
    const field = input.multiline ? el("textarea", { rows: "4" }) : el("input", { type: "text" });
    field.name = input.name;
    field.maxLength = input.max_length;
    box.append(field);
  } else if (input.kind === "choice") {
    for (const option of input.options) {
      const id = `${input.name}-${option}`.replace(/\W+/g, "_");
      const choice = el("input", { type: input.multiple ? "checkbox" : "radio", name: input.name, id });
      choice.value = option;
      box.append(el("div", {}, choice, el("label", { for: id, text: " " + option })));
    }
  } else if (input.kind === "likert") {
    const row = el("div", { class: "likert" }, el("span", { class: "muted", text: input.low_label }));
    for (let i = 1; i <= input.points; i++) {
      const radio = el("input", { type: "radio", name: input.name, "aria-label": String(i) });
      radio.value = String(i);
      row.append(el("label", {}, radio, el("span", { text: String(i) })));
    }
    row.append(el("span", { class: "muted", text: input.high_label }));
    box.append(row);
  }
  return box;
}

function readAnswers(form, inputs) {
  const answers = {};
  for (const input of inputs) {
    if (input.kind === "text") {
      answers[input.name] = form.querySelector(`[name="${input.name}"]`).value;
    } else if (input.kind === "choice" && input.multiple) {
      answers[input.name] = [...form.querySelectorAll(`[name="${input.name}"]:checked`)].map((n) => n.value);
    } else {
      const picked = form.querySelector(`[name="${input.name}"]:checked`);
      answers[input.name] = picked ? (input.kind === "likert" ? Number(picked.value) : picked.value) : null;
    }
  }
  return answers;
}

function renderEnd(container, scene) {
  if (scene.completion_code) {
    container.append(el("p", { text: "Your completion code:" }), el("p", { class: "code", id: "completion-code", text: scene.completion_code }));
  }
  if (scene.redirect_url) {
    const link = el("a", { href: scene.redirect_url, id: "redirect-link", text: "Continue" });
    container.append(el("p", { class: "muted" }, `You will be redirected in ${scene.redirect_delay_s} s. `, link));
    const timer = setTimeout(() => { window.location.href = scene.redirect_url; }, scene.redirect_delay_s * 1000);
    return { destroy: () => clearTimeout(timer) };
  }
  return { destroy() {} };
}

/** Shows a page scene and wires its continue button; returns the view ({destroy}). */
export function showPageScene({ emitWithAck, container, index, scene, showError }) {
  container.innerHTML = "";
  const root = el("div", { class: `scene scene-${scene.kind}`, "data-scene-id": scene.scene_id });
  if (scene.title) root.append(el("h1", { text: scene.title }));
  if (scene.notice) root.append(el("p", { class: "notice", id: "notice", text: scene.notice }));
  if (scene.game_over) root.append(el("p", { class: "notice", id: "game-over", text: scene.game_over.message }));
  root.append(el("div", { class: "body", html: scene.body_html || "" }));
  container.append(root);
  if (scene.kind === "end") return renderEnd(root, scene);

  const form = el("form", { novalidate: "" });
  for (const input of scene.inputs || []) form.append(renderInput(input));
  let consent = null;
  if (scene.kind === "start") {
    consent = el("input", { type: "checkbox", id: "consent" });
    form.append(el("div", { class: "consent" }, consent, el("label", { for: "consent", text: scene.consent_label })));
  }
  const button = el("button", { type: "submit", id: "continue", text: scene.button_label || "Continue" });
  if (consent) {
    button.disabled = true;
    consent.addEventListener("change", () => { button.disabled = !consent.checked; });
  }
  form.append(button);
  root.append(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    const answers = readAnswers(form, scene.inputs || []);
    if (consent) answers.consent = consent.checked;
    try {
      const ack = await emitWithAck("advance", { scene_index: index, scene_id: scene.scene_id, answers });
      if (!ack.ok) { showError(ack.error); button.disabled = false; }
    } catch {
      showError("No answer from the server; please try again.");
      button.disabled = false;
    }
  });
  return { destroy() {} };
}
