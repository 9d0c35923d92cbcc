// The clinical-test page: pick or drop an X-ray, POST it to /v1/predict, show each model's
// probability, label at its validation-chosen threshold, and the Grad-CAM overlay.
// Plain browser JavaScript so the server can serve it without a build step.

const $ = (id) => document.getElementById(id);
const form = $("form");
const fileInput = $("file");
const drop = $("drop");
const preview = $("preview");
const submit = $("submit");
const modelSelect = $("model");
const explainBox = $("explain");
const statusEl = $("status");
const resultsEl = $("results");
const modelsInfo = $("models-info");

let chosen = null;
let previewUrl = null;

function setStatus(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function pct(x) {
  return x === null || x === undefined ? "n/a" : `${(x * 100).toFixed(1)}%`;
}

async function loadModels() {
  try {
    const res = await fetch("/v1/models");
    const body = await res.json();
    for (const m of body.models) {
      modelSelect.append(
        el("option", { value: m.id }, `${m.displayName} · ${m.id} · ${m.weights.label}`),
      );
    }
    modelsInfo.textContent = body.models.length
      ? `${body.models.length} model(s) loaded.`
      : "No model loaded on the server.";
  } catch (e) {
    modelsInfo.textContent = `Cannot list models: ${e.message}`;
  }
}

// DICOM files often come without a MIME type (or with no extension at all, from PACS exports):
// let the server sniff anything that is not an obvious other type.
function isDicomName(file) {
  return file.type === "application/dicom" || /\.(dcm|dicom)$/i.test(file.name) ||
    (file.type === "" && !/\.[a-z0-9]{1,5}$/i.test(file.name));
}

function choose(file) {
  if (!file) return;
  const dicom = isDicomName(file);
  if (!["image/jpeg", "image/png"].includes(file.type) && !dicom) {
    setStatus(`"${file.name}": This file is not a JPEG, PNG or DICOM X-ray.`, true);
    return;
  }
  chosen = file;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  // Browsers cannot show DICOM: its preview comes with the server's answer.
  if (!dicom) {
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `Selected X-ray: ${file.name}`;
  }
  preview.hidden = dicom;
  submit.disabled = false;
  setStatus(`Selected ${file.name} (${(file.size / 1024).toFixed(0)} KB). Classifying…`);
  classify();
}

function resultCard(r) {
  const card = el("article", { class: "card", "data-model": r.model });
  const title = el("h3", {}, r.displayName + " ");
  if (r.weights.notImageNet) {
    title.append(
      el("span", { class: "badge", title: "Base weights were not ImageNet" }, "not ImageNet"),
    );
  }
  card.append(title);
  card.append(el("p", { class: "prob" }, `P(pneumonia) = ${pct(r.probability)}`));
  // A neutral bar with a tick at the operating threshold (a <meter> would paint high = green).
  const bar = el("div", {
    class: "bar",
    role: "img",
    "aria-label": `Probability of pneumonia ${pct(r.probability)}; threshold ${
      pct(r.threshold.value)
    }`,
  });
  const fill = el("div", { class: "bar-fill" });
  fill.style.width = `${(r.probability * 100).toFixed(1)}%`;
  const tick = el("div", { class: "bar-threshold", title: `threshold ${r.threshold.value}` });
  tick.style.left = `${(r.threshold.value * 100).toFixed(1)}%`;
  bar.append(fill, tick);
  card.append(bar);
  card.append(el("p", {}, "Label: ", el("span", { class: `label ${r.label}` }, r.label)));
  const t = r.threshold;
  const dl = el("dl");
  const row = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  row("Threshold", `${t.value.toFixed(3)} (${t.method})`);
  row("Val. sensitivity", pct(t.val_sensitivity));
  row("Val. specificity", pct(t.val_specificity));
  row("Weights", `${r.weights.label}${r.weights.md5 ? ` · md5 ${r.weights.md5.slice(0, 8)}` : ""}`);
  row("Model id", r.model);
  row("Latency", `${r.latency_ms.toFixed(0)} ms`);
  card.append(dl);
  if (r.gradcam) {
    const img = el("img", {
      src: `data:image/png;base64,${r.gradcam.png_base64}`,
      alt:
        `Grad-CAM heatmap of ${r.displayName} over the X-ray, showing evidence for ${r.gradcam.target}`,
      class: "heatmap",
    });
    card.append(
      el(
        "figure",
        {},
        img,
        el(
          "figcaption",
          {},
          `Grad-CAM at ${r.gradcam.layer} (${r.gradcam.width}×${r.gradcam.height}): regions supporting ${r.gradcam.target}. Red = more.`,
        ),
      ),
    );
  } else if (r.gradcam_error) {
    card.append(el("p", { class: "muted" }, r.gradcam_error));
  }
  return card;
}

async function classify() {
  if (!chosen) return;
  submit.disabled = true;
  resultsEl.replaceChildren();
  setStatus("Classifying…");
  const params = new URLSearchParams();
  if (modelSelect.value) params.set("model", modelSelect.value);
  if (explainBox.checked) params.set("explain", "gradcam");
  const data = new FormData();
  data.append("image", chosen, chosen.name);
  try {
    const res = await fetch(`/v1/predict?${params}`, { method: "POST", body: data });
    const body = await res.json();
    if (!res.ok) {
      setStatus(`Error ${res.status}: ${body.error?.message ?? res.statusText}`, true);
      return;
    }
    resultsEl.replaceChildren(...body.results.map(resultCard));
    const summary = body.results.map((r) => `${r.displayName}: ${r.label} (${pct(r.probability)})`)
      .join("; ");
    setStatus(`Done in ${body.latency_ms.toFixed(0)} ms. ${summary}. ${body.notice}`);
  } catch (e) {
    setStatus(`Request failed: ${e.message}`, true);
  } finally {
    submit.disabled = false;
  }
}

fileInput.addEventListener("change", () => choose(fileInput.files[0]));
form.addEventListener("submit", (e) => {
  e.preventDefault();
  classify();
});
// The drop zone (the file input's label, a focusable role=button) opens the picker on
// Enter/Space, so keyboard users need no mouse.
drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    fileInput.click();
  }
});
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  choose(e.dataTransfer.files[0]);
});

loadModels();
