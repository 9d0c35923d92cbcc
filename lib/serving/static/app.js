// The clinical-test page: pick or drop an X-ray (JPEG, PNG or DICOM), POST it to /v1/predict,
// show the not-a-chest-X-ray guard, each model's probability and label at its threshold, the
// DICOM tags used, and Grad-CAM (overlay or side by side, adjustable opacity, colour scale).
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
const statusDetail = $("status-detail");
const resultsEl = $("results");
const modelsInfo = $("models-info");
const imageInfo = $("image-info");
const guardEl = $("guard");
const camControls = $("cam-controls");
const opacity = $("opacity");

let chosen = null;
let previewUrl = null;

// What a clinician reads for each API error code; the server's own words follow as details.
const PLAIN_ERRORS = {
  not_an_image: "This file is not a JPEG, PNG or DICOM X-ray.",
  unsupported_media_type: "This file is not a JPEG, PNG or DICOM X-ray.",
  corrupt_image: "This image file is damaged or incomplete, so it cannot be read.",
  no_image: "This DICOM file holds no image (it may be a report or a list).",
  unsupported_dicom: "This DICOM file is stored in a way cxr cannot read yet.",
  image_too_large: "This image is too large to analyse.",
  image_too_small: "This image is too small to analyse.",
  payload_too_large: "This file is too large to upload.",
  empty_body: "This file is empty.",
  busy: "The server is busy. Please try again in a moment.",
  timeout: "The analysis took too long. Please try again.",
  not_ready: "The models are still loading. Please try again in a moment.",
};

function setStatus(text, isError = false, detail = "") {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
  statusDetail.textContent = detail ? `Details: ${detail}` : "";
  statusDetail.hidden = !detail;
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

/** Long run ids would widen the select past a phone's width: cap the visible text. */
function capped(text, max = 38) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

async function loadModels() {
  try {
    const res = await fetch("/v1/models");
    const body = await res.json();
    for (const m of body.models) {
      const full = `${
        m.untrained ? "UNTRAINED · " : ""
      }${m.displayName} · ${m.id} · ${m.weights.label}`;
      modelSelect.append(el("option", { value: m.id, title: full }, capped(full)));
    }
    const guard = body.guard?.fitted
      ? "The not-a-chest-X-ray check uses DICOM tags and an image score."
      : "The not-a-chest-X-ray check uses DICOM tags only (no image score fitted).";
    modelsInfo.textContent = body.models.length
      ? `${body.models.length} model(s) loaded. ${guard}`
      : "No model loaded on the server.";
  } catch (e) {
    modelsInfo.textContent = `Cannot list models: ${e.message}`;
  }
}

/** Forget the previous answer: nothing from an earlier file may stay on screen. */
function clearResult() {
  resultsEl.replaceChildren();
  guardEl.replaceChildren();
  guardEl.hidden = true;
  imageInfo.replaceChildren();
  imageInfo.hidden = true;
  camControls.hidden = true;
}

function clearPreview() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  preview.removeAttribute("src");
  preview.hidden = true;
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
    chosen = null;
    submit.disabled = true;
    clearResult();
    clearPreview();
    setStatus(`"${file.name}": This file is not a JPEG, PNG or DICOM X-ray.`, true);
    return;
  }
  chosen = file;
  clearPreview();
  // Browsers cannot show DICOM: its preview comes with the server's answer.
  if (!dicom) {
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `Selected X-ray: ${file.name}`;
    preview.hidden = false;
  }
  submit.disabled = false;
  setStatus(`Selected ${file.name} (${(file.size / 1024).toFixed(0)} KB). Classifying…`);
  classify();
}

function showImageInfo(image) {
  const rows = [["Format", image.format.toUpperCase()], ["Size", `${image.width}×${image.height}`]];
  const d = image.dicom;
  if (d) {
    const w = d.window;
    rows.push(
      ["Modality", d.modality ?? "not given"],
      ["Body part", d.bodyPartExamined ?? "not given"],
      ["View", d.viewPosition ?? "not given"],
      ["Photometric", d.photometricInterpretation],
      ["Bits stored", String(d.bitsStored)],
      [
        "Window",
        w.source === "tags"
          ? `centre ${w.center}, width ${w.width} (${w.function})`
          : w.source === "pixel range"
          ? `none in file: pixel range ${Math.round(w.center - w.width / 2)}–${
            Math.round(w.center + w.width / 2)
          }`
          : "none (shown as stored)",
      ],
      ["Encoding", d.transferSyntax.name],
    );
  }
  for (const w of image.warnings ?? []) rows.push(["Note", w]);
  imageInfo.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  imageInfo.hidden = false;
  if (image.preview_png_base64 && !previewUrl) {
    preview.src = `data:image/png;base64,${image.preview_png_base64}`;
    preview.alt = "The image as the models saw it (224×224)";
    preview.hidden = false;
  }
}

function showGuard(guard) {
  if (!guard || guard.ok) return;
  const score = guard.score === null
    ? ""
    : ` Image score ${guard.score.toFixed(2)} (above 1 is unusual).`;
  guardEl.append(
    el("strong", {}, `${guard.message}.`),
    el("p", {}, `${guard.reasons.join(". ")}.${score}`),
  );
  if (guard.withheld) {
    guardEl.append(el("p", {}, "No probability is shown for this image."));
    const again = el(
      "button",
      { type: "button", class: "secondary" },
      "Show the models' output anyway",
    );
    again.addEventListener("click", () => classify(true));
    guardEl.append(again);
  } else {
    guardEl.append(el("p", {}, "Output shown on request: treat it as meaningless for this image."));
  }
  guardEl.hidden = false;
}

function thresholdProfile(r) {
  const t = r.threshold;
  if (t.profile) return typeof t.profile === "string" ? t.profile : t.profile.name;
  if (r.threshold_profile) return r.threshold_profile;
  return t.val_sensitivity === null ? "none (fixed 0.5)" : "validation";
}

function camFigure(r, basePng) {
  const g = r.gradcam;
  const caption = el(
    "figcaption",
    {},
    `Grad-CAM at ${g.layer} (${g.width}×${g.height}): regions supporting ${g.target}.`,
  );
  if (!g.heatmap_png_base64 || !basePng) {
    const img = el("img", {
      src: `data:image/png;base64,${g.png_base64}`,
      alt: `Grad-CAM heatmap of ${r.displayName} over the X-ray, showing evidence for ${g.target}`,
      class: "heatmap",
    });
    return el("figure", { class: "cam" }, el("div", { class: "cam-stack" }, img), caption);
  }
  const base = () => el("img", { src: `data:image/png;base64,${basePng}`, alt: "", class: "base" });
  const heat = el("img", {
    src: `data:image/png;base64,${g.heatmap_png_base64}`,
    alt: `Grad-CAM heatmap of ${r.displayName}, showing evidence for ${g.target}`,
    class: "heatmap",
  });
  const plain = el(
    "div",
    { class: "cam-plain" },
    el("img", {
      src: `data:image/png;base64,${basePng}`,
      alt: "The X-ray without heatmap",
      class: "base",
    }),
  );
  return el(
    "figure",
    { class: "cam" },
    plain,
    el("div", { class: "cam-stack" }, base(), heat),
    caption,
  );
}

function resultCard(r, basePng) {
  const card = el("article", { class: "card", "data-model": r.model });
  const title = el("h3", {}, r.displayName + " ");
  if (r.weights.notImageNet) {
    title.append(
      el("span", { class: "badge", title: "Base weights were not ImageNet" }, "not ImageNet"),
    );
  }
  if (r.untrained) {
    title.append(
      " ",
      el(
        "span",
        { class: "badge untrained", title: "Never trained on labelled X-rays" },
        "UNTRAINED",
      ),
    );
  }
  card.append(title);
  if (r.untrained) {
    card.append(
      el(
        "p",
        { class: "warn" },
        "Demo model, never trained on labelled X-rays: its output is meaningless.",
      ),
    );
  }
  if (r.withheld) {
    card.append(el("p", { class: "prob withheld" }, "Withheld: not a frontal chest X-ray"));
  } else {
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
  }
  const t = r.threshold;
  const dl = el("dl");
  const row = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  row("Threshold", `${t.value.toFixed(3)} (${t.method})`);
  row("Threshold profile", thresholdProfile(r));
  row("Val. sensitivity", pct(t.val_sensitivity));
  row("Val. specificity", pct(t.val_specificity));
  row("Weights", `${r.weights.label}${r.weights.md5 ? ` · md5 ${r.weights.md5.slice(0, 8)}` : ""}`);
  row("Model id", r.model);
  row("Latency", `${r.latency_ms.toFixed(0)} ms`);
  card.append(dl);
  if (r.gradcam) card.append(camFigure(r, basePng));
  else if (r.gradcam_error) card.append(el("p", { class: "muted" }, r.gradcam_error));
  return card;
}

function showError(res, body, file) {
  const code = body?.error?.code;
  const plain = PLAIN_ERRORS[code] ?? "The server could not analyse this file.";
  setStatus(
    `"${file}": ${plain}`,
    true,
    `${body?.error?.message ?? res.statusText} (HTTP ${res.status})`,
  );
}

async function classify(force = false) {
  if (!chosen) return;
  submit.disabled = true;
  clearResult();
  setStatus("Classifying…");
  const params = new URLSearchParams();
  if (modelSelect.value) params.set("model", modelSelect.value);
  if (explainBox.checked) params.set("explain", "gradcam");
  if (force) params.set("force", "true");
  const data = new FormData();
  data.append("image", chosen, chosen.name);
  try {
    const res = await fetch(`/v1/predict?${params}`, { method: "POST", body: data });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      if (!previewUrl) clearPreview();
      showError(res, body, chosen.name);
      return;
    }
    showImageInfo(body.image);
    showGuard(body.guard);
    resultsEl.replaceChildren(
      ...body.results.map((r) => resultCard(r, body.image.preview_png_base64)),
    );
    camControls.hidden = !body.results.some((r) => r.gradcam?.heatmap_png_base64);
    const summary = body.results.filter((r) => !r.withheld)
      .map((r) =>
        `${r.displayName}${r.untrained ? " (UNTRAINED)" : ""}: ${r.label} (${pct(r.probability)})`
      ).join("; ");
    setStatus(
      `Done in ${body.latency_ms.toFixed(0)} ms. ${summary || "No label shown."} ${body.notice}`,
    );
  } catch (e) {
    setStatus("The request failed: is the server still running?", true, e.message);
  } finally {
    submit.disabled = false;
  }
}

function applyOpacity() {
  resultsEl.style.setProperty("--cam-opacity", String(opacity.value / 100));
  $("opacity-value").textContent = `${opacity.value}%`;
}

opacity.addEventListener("input", applyOpacity);
for (const radio of document.querySelectorAll('input[name="cam-view"]')) {
  radio.addEventListener(
    "change",
    () => resultsEl.classList.toggle("side", radio.value === "side" && radio.checked),
  );
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

applyOpacity();
loadModels();
