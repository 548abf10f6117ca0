// The study page: a slice viewer on <canvas> with window presets, zoom, mask and heatmap
// overlays, and the result panel (probabilities, conformal set, structures) and model card.
//
// Voxels arrive raw from /v1/jobs/ID/viewer/{image,mask,heatmap}: [z, y, x] in C order,
// image int16 (HU for CT), mask uint8 label values, heatmap uint8 0..255, all on one grid.
import { ApiError, api, dicomDate, el, fill, initHeader, personName, show } from "./common.js";

const WINDOWS = {
  lung: { width: 1500, level: -600 },
  mediastinum: { width: 350, level: 50 },
  bone: { width: 1800, level: 400 },
};
const LABEL_COLOURS = [
  [0, 0, 0],
  [40, 140, 255],
  [255, 60, 40],
  [60, 220, 90],
  [250, 200, 30],
  [200, 80, 255],
  [30, 220, 220],
];
const FIT_PIXELS = 512;
const POLL_MS = 3000;

const jobId = decodeURIComponent(location.pathname.split("/").filter((p) => p).pop() || "");
const base = `/v1/jobs/${encodeURIComponent(jobId)}/viewer`;

const canvas = document.getElementById("slice-canvas");
const slider = document.getElementById("slice-slider");
const sliceIndex = document.getElementById("slice-index");
const status = document.getElementById("viewer-status");
const errorLine = document.getElementById("study-error");
const showMask = document.getElementById("show-mask");
const showHeat = document.getElementById("show-heatmap");
const opacity = document.getElementById("overlay-opacity");

const view = {
  meta: null,
  image: null,
  mask: null,
  heat: null,
  z: 0,
  y: 0,
  x: 0,
  slice: 0,
  window: { ...WINDOWS.lung },
  preset: "lung",
  zoom: 1,
  marker: null, // {slice, y, x} of the component picked in the list
};
const scratch = document.createElement("canvas");

function labelColour(value) {
  return LABEL_COLOURS[1 + ((value - 1) % (LABEL_COLOURS.length - 1))];
}

// ------------------------------------------------------------------ drawing

function render() {
  if (!view.image) return;
  const { x, y } = view;
  const n = x * y;
  const offset = view.slice * n;
  const low = view.window.level - view.window.width / 2;
  const scale = 255 / Math.max(view.window.width, 1);
  const alpha = Number(opacity.value) / 100;
  const mask = showMask.checked ? view.mask : null;
  const heat = showHeat.checked ? view.heat : null;
  const flip = view.meta.flip || { rows: false, columns: false };
  scratch.width = x;
  scratch.height = y;
  const context = scratch.getContext("2d");
  const frame = context.createImageData(x, y);
  const out = frame.data;
  for (let row = 0; row < y; row++) {
    const outRow = flip.rows ? y - 1 - row : row;
    for (let column = 0; column < x; column++) {
      const i = row * x + column;
      let grey = (view.image[offset + i] - low) * scale;
      grey = grey < 0 ? 0 : grey > 255 ? 255 : grey;
      let r = grey;
      let g = grey;
      let b = grey;
      if (heat) {
        const t = heat[offset + i] / 255;
        if (t > 0) {
          const a = alpha * t;
          const hr = Math.min(1, 3 * t) * 255;
          const hg = Math.min(1, Math.max(0, 3 * t - 1)) * 255;
          const hb = Math.min(1, Math.max(0, 3 * t - 2)) * 255;
          r = r * (1 - a) + hr * a;
          g = g * (1 - a) + hg * a;
          b = b * (1 - a) + hb * a;
        }
      }
      if (mask) {
        const label = mask[offset + i];
        if (label > 0) {
          const [cr, cg, cb] = labelColour(label);
          r = r * (1 - alpha) + cr * alpha;
          g = g * (1 - alpha) + cg * alpha;
          b = b * (1 - alpha) + cb * alpha;
        }
      }
      const o = (outRow * x + (flip.columns ? x - 1 - column : column)) * 4;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      out[o + 3] = 255;
    }
  }
  context.putImageData(frame, 0, 0);
  const [, spacingY, spacingX] = view.meta.spacing_mm;
  const aspect = spacingY / spacingX; // rows are this many columns tall
  const fit = Math.min(FIT_PIXELS / x, FIT_PIXELS / (y * aspect));
  const width = Math.max(1, Math.round(x * fit * view.zoom));
  const height = Math.max(1, Math.round(y * aspect * fit * view.zoom));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const screen = canvas.getContext("2d");
  screen.imageSmoothingEnabled = false;
  screen.drawImage(scratch, 0, 0, width, height);
  if (view.marker && view.marker.slice === view.slice) {
    const mx = flip.columns ? x - 1 - view.marker.x : view.marker.x;
    const my = flip.rows ? y - 1 - view.marker.y : view.marker.y;
    screen.strokeStyle = "#ffd400";
    screen.lineWidth = 2;
    screen.beginPath();
    const radius = Math.max(8, 6 * fit * view.zoom);
    screen.arc(((mx + 0.5) * width) / x, ((my + 0.5) * height) / y, radius, 0, 2 * Math.PI);
    screen.stroke();
  }
  canvas.dataset.slice = String(view.slice);
  slider.value = String(view.slice);
  sliceIndex.textContent = `${view.slice + 1} / ${view.z}`;
  document.getElementById("zoom-value").textContent = `${Math.round(view.zoom * 100)}%`;
  document.getElementById("window-value").textContent =
    `W ${Math.round(view.window.width)} / L ${Math.round(view.window.level)}`;
  for (const button of document.querySelectorAll(".window-preset")) {
    button.setAttribute("aria-pressed", String(button.dataset.preset === view.preset));
  }
}

function setSlice(index) {
  if (!view.image) return;
  view.slice = Math.min(view.z - 1, Math.max(0, Math.round(index)));
  render();
}

function setZoom(zoom) {
  view.zoom = Math.min(8, Math.max(0.25, zoom));
  render();
}

function setWindow(preset) {
  view.preset = preset;
  view.window = preset === "auto" ? { ...view.meta.window } : { ...WINDOWS[preset] };
  render();
}

// ------------------------------------------------------------------ input

canvas.addEventListener(
  "wheel",
  (event) => {
    if (!view.image) return;
    event.preventDefault();
    if (event.ctrlKey) setZoom(view.zoom * (event.deltaY < 0 ? 1.25 : 0.8));
    else if (event.deltaY !== 0) setSlice(view.slice + Math.sign(event.deltaY));
  },
  { passive: false },
);

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
  if (!view.image || event.altKey || event.metaKey) return;
  const page = Math.max(1, Math.round(view.z / 10));
  const actions = {
    ArrowDown: () => setSlice(view.slice + 1),
    ArrowRight: () => setSlice(view.slice + 1),
    ArrowUp: () => setSlice(view.slice - 1),
    ArrowLeft: () => setSlice(view.slice - 1),
    PageDown: () => setSlice(view.slice + page),
    PageUp: () => setSlice(view.slice - page),
    Home: () => setSlice(0),
    End: () => setSlice(view.z - 1),
    "+": () => setZoom(view.zoom * 1.25),
    "=": () => setZoom(view.zoom * 1.25),
    "-": () => setZoom(view.zoom * 0.8),
    0: () => setZoom(1),
  };
  const action = actions[event.key];
  if (action && !event.ctrlKey) {
    event.preventDefault();
    action();
  }
});

slider.addEventListener("input", () => setSlice(Number(slider.value)));
document.getElementById("zoom-in").addEventListener("click", () => setZoom(view.zoom * 1.25));
document.getElementById("zoom-out").addEventListener("click", () => setZoom(view.zoom * 0.8));
document.getElementById("zoom-fit").addEventListener("click", () => setZoom(1));
for (const button of document.querySelectorAll(".window-preset")) {
  button.addEventListener("click", () => setWindow(button.dataset.preset));
}
for (const control of [showMask, showHeat, opacity]) {
  control.addEventListener("input", render);
}

// ------------------------------------------------------------------ panels

function labels(meta) {
  const display = meta.display;
  const list = document.getElementById("study-labels");
  const title = document.getElementById("study-title");
  if (!display) {
    title.textContent = "Uploaded study (de-identified)";
    fill(list, el("dt", {}, "Job"), el("dd", { class: "mono" }, meta.job_id));
    return;
  }
  title.textContent = personName(display.PatientName) || "Unnamed patient";
  const rows = [
    ["Patient name", display.PatientName, "label-patient-name"],
    ["Patient ID", display.PatientID, "label-patient-id"],
    ["Study date", dicomDate(display.StudyDate), "label-study-date"],
    ["Series", display.SeriesDescription, "label-series-description"],
    ["Modality", display.Modality, "label-modality"],
  ];
  fill(
    list,
    rows.flatMap(([name, value, id]) => [el("dt", {}, name), el("dd", { id }, value || "")]),
  );
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

function classifyPanel(result) {
  const nodes = [];
  const conformal = result.conformal_set;
  if (Array.isArray(conformal)) {
    const refer = result.refer === true || conformal.length !== 1;
    if (refer) {
      nodes.push(
        el(
          "p",
          { id: "refer", class: "refer", role: "alert" },
          "Refer to a clinician: the model is not confident in one class.",
        ),
      );
    }
    nodes.push(
      el(
        "p",
        { id: "conformal-set" },
        "Conformal set: ",
        el("strong", {}, conformal.length ? `{${conformal.join(", ")}}` : "{} (empty)"),
      ),
    );
  }
  nodes.push(el("p", { id: "predicted" }, "Predicted: ", el("strong", {}, result.predicted)));
  const probabilities = Object.entries(result.probabilities || {});
  nodes.push(
    el(
      "table",
      { id: "probabilities", class: "list compact" },
      el("thead", {}, el("tr", {}, el("th", {}, "Class"), el("th", {}, "Probability"), el("th"))),
      el(
        "tbody",
        {},
        probabilities.map(([name, p]) =>
          el(
            "tr",
            { class: name === result.predicted ? "predicted" : "" },
            el("td", {}, name),
            el("td", { class: "number" }, percent(p)),
            el("td", {}, el("meter", { min: 0, max: 1, value: p })),
          ),
        ),
      ),
    ),
  );
  return nodes;
}

function structuresPanel(result, meta) {
  const valueOf = new Map((meta.labels || []).map((l) => [l.name, l.value]));
  const nodes = [];
  for (const [name, structure] of Object.entries(result.structures || {})) {
    const value = valueOf.get(name);
    const swatch = el("span", { class: "swatch" });
    if (value !== undefined) {
      const [r, g, b] = labelColour(value);
      swatch.style.backgroundColor = `rgb(${r}, ${g}, ${b})`;
    }
    const count = structure.n_components;
    nodes.push(
      el(
        "h3",
        {},
        swatch,
        name,
        el(
          "span",
          { class: "muted" },
          ` ${structure.volume_ml} ml · ${count} component${count === 1 ? "" : "s"}`,
        ),
      ),
    );
    const items = (structure.components || []).map((c, i) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "component",
            dataset: { structure: name, index: String(i), slice: String(c.slice) },
            onclick: () => {
              const [, cy, cx] = c.centroid_voxel || [c.slice, 0, 0];
              view.marker = { slice: c.slice, y: Math.round(cy), x: Math.round(cx) };
              if (view.mask && !showMask.checked) showMask.checked = true;
              setSlice(c.slice);
              canvas.focus();
            },
          },
          `${name} ${i + 1}: ${c.volume_ml} ml, ⌀ ${c.diameter_mm} mm, slice ${c.slice + 1}`,
          c.side ? ` (${c.side})` : "",
        ),
      ),
    );
    if (items.length) nodes.push(el("ol", { class: "components" }, items));
  }
  return nodes;
}

function resultPanel(meta) {
  const body = document.getElementById("result-body");
  const result = meta.result;
  if (meta.error) {
    fill(body, el("p", { class: "error" }, `${meta.error.code}: ${meta.error.message}`));
    return;
  }
  if (!result) {
    fill(body, el("p", { class: "muted" }, `No result yet (${meta.state}).`));
    return;
  }
  const nodes = result.task === "segment" ? structuresPanel(result, meta) : classifyPanel(result);
  nodes.push(
    el(
      "p",
      { class: "muted" },
      "Research software: a clinician must review every result before it is used.",
    ),
  );
  fill(body, nodes);
}

function modelPanel(meta) {
  const model = meta.model || {};
  document.getElementById("model-name").textContent =
    `${model.name}:${model.version} · sha256 ${String(model.sha256 || "").slice(0, 12)}…`;
  document.getElementById("model-card").textContent =
    meta.model_card || "This model version was registered without a model card.";
}

// ------------------------------------------------------------------ loading

async function layer(name, Type) {
  const { buffer, headers } = await api(`${base}/${name}`, { binary: true });
  const expected = view.z * view.y * view.x;
  const array = new Type(buffer);
  if (array.length !== expected) {
    throw new Error(`the ${name} holds ${array.length} voxels, not ${expected}`);
  }
  const shape = headers.get("X-Shape");
  if (shape && shape !== `${view.z},${view.y},${view.x}`) {
    throw new Error(`the ${name} is on another grid (${shape})`);
  }
  return array;
}

async function loadVoxels(meta) {
  [view.z, view.y, view.x] = meta.shape;
  view.slice = Math.floor(view.z / 2);
  view.preset = meta.modality === "CT" ? "lung" : "auto";
  view.window = view.preset === "auto" ? { ...meta.window } : { ...WINDOWS.lung };
  status.textContent = "Loading image…";
  view.image = await layer("image", Int16Array);
  slider.max = String(view.z - 1);
  slider.disabled = view.z < 2;
  render();
  const pending = [];
  if (meta.layers.mask) {
    pending.push(
      layer("mask", Uint8Array).then((mask) => {
        view.mask = mask;
        showMask.disabled = false;
      }),
    );
  }
  if (meta.layers.heatmap) {
    pending.push(
      layer("heatmap", Uint8Array).then((heat) => {
        view.heat = heat;
        showHeat.disabled = false;
      }),
    );
  }
  await Promise.all(pending);
  canvas.dataset.ready = "true";
  status.textContent = `${view.x} × ${view.y} × ${view.z} voxels · ${meta.spacing_mm
    .map((s) => s.toFixed(2))
    .join(" × ")} mm (z × y × x) · ${meta.modality}`;
  render();
}

async function poll(state) {
  // a queued or running job: reload when it finishes
  const meta = await api(base);
  if (meta.state !== state) location.reload();
  else setTimeout(() => poll(state).catch(() => undefined), POLL_MS);
}

async function main() {
  await initHeader();
  let meta;
  try {
    meta = await api(base);
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) {
      show(errorLine, "No such study, or it is not yours to open.");
      return;
    }
    throw exc;
  }
  view.meta = meta;
  labels(meta);
  document.getElementById("study-state").textContent =
    `${meta.state} · ${meta.task || "task unknown"}`;
  resultPanel(meta);
  modelPanel(meta);
  if (meta.state === "queued" || meta.state === "running") {
    setTimeout(() => poll(meta.state).catch(() => undefined), POLL_MS);
  }
  if (meta.layers.image) await loadVoxels(meta);
  else status.textContent = meta.image_error || "The input image is no longer stored.";
}

main().catch((exc) => show(errorLine, `Could not load the study: ${exc.message}`));
