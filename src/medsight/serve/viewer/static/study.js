// The study page: a slice viewer on <canvas> with window presets, zoom, mask and heatmap
// overlays, and the result panel (probabilities, conformal set, structures) and model card.
// A patient's record (task ehr-risk) has no image: the page shows its risk, calibration note
// and referral flag, and a timeline of the contributing events drawn as inline SVG.
// A note (tasks text-classify, text-ner) has no image either: the page fetches the
// de-identified note the model scored (note.txt in the result, through the job-file route)
// and shows it with each entity highlighted by type, negated ones struck through and tagged
// "negated", uncertain ones underlined and tagged; the result panel lists the labels.
//
// Voxels arrive raw from /v1/jobs/ID/viewer/{image,mask,heatmap}: [z, y, x] in C order,
// image int16 (HU for CT), mask uint8 label values, heatmap uint8 0..255, all on one grid.
import {
  ApiError,
  api,
  dicomDate,
  el,
  fill,
  initHeader,
  localTime,
  millilitres,
  millimetres,
  personName,
  show,
  stateBadge,
} from "./common.js";

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
// The heatmap's ramp: dark red -> red -> orange -> yellow -> pale yellow (a "hot" map without
// its black end, which would only darken the image), as [value, r, g, b].
const HEAT_STOPS = [
  [0.0, 120, 0, 0],
  [0.3, 215, 25, 0],
  [0.55, 255, 105, 0],
  [0.8, 255, 200, 0],
  [1.0, 255, 255, 150],
];
// Opacity rises with the value: low values leave the image untouched, the peak covers it.
const HEAT_FADE = { from: 0.15, to: 0.65 };
// A graded colour reads as grey-brown at the flat mask's opacity; the heatmap gets more.
const HEAT_OPACITY_GAIN = 1.8;
const MIN_VIEWPORT_PX = 300;
const POLL_MS = 3000;

const jobId = decodeURIComponent(location.pathname.split("/").filter((p) => p).pop() || "");
const base = `/v1/jobs/${encodeURIComponent(jobId)}/viewer`;

const canvas = document.getElementById("slice-canvas");
const viewport = document.getElementById("viewport");
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
  box: { width: 512, height: 512 }, // CSS pixels inside the viewport at zoom 1
  marker: null, // {slice, y, x} of the component picked in the list
};
// One slice of each layer at its native resolution, scaled onto the screen canvas.
const layers = {
  image: document.createElement("canvas"),
  heat: document.createElement("canvas"),
  mask: document.createElement("canvas"),
};
const HEAT_RGBA = heatTable();

function labelColour(value) {
  return LABEL_COLOURS[1 + ((value - 1) % (LABEL_COLOURS.length - 1))];
}

function smoothstep(from, to, t) {
  const u = Math.min(1, Math.max(0, (t - from) / (to - from)));
  return u * u * (3 - 2 * u);
}

/** RGBA of each heatmap byte (0..255), from `HEAT_STOPS` and `HEAT_FADE`. */
function heatTable() {
  const table = new Uint8ClampedArray(256 * 4);
  for (let v = 0; v < 256; v++) {
    const t = v / 255;
    let k = 1;
    while (k < HEAT_STOPS.length - 1 && HEAT_STOPS[k][0] < t) k++;
    const [t0, ...low] = HEAT_STOPS[k - 1];
    const [t1, ...high] = HEAT_STOPS[k];
    const u = Math.min(1, Math.max(0, (t - t0) / (t1 - t0)));
    for (let c = 0; c < 3; c++) table[v * 4 + c] = low[c] + (high[c] - low[c]) * u;
    table[v * 4 + 3] = 255 * smoothstep(HEAT_FADE.from, HEAT_FADE.to, t);
  }
  return table;
}

// ------------------------------------------------------------------ drawing

/** Paint one slice into `target` at native size, shown the radiological way (`meta.flip`):
 * `pixel(i, out, o)` writes the RGBA of voxel `i` of the slice at `out[o..o+3]`. */
function paint(target, pixel) {
  const { x, y } = view;
  const flip = view.meta.flip || { rows: false, columns: false };
  target.width = x;
  target.height = y;
  const context = target.getContext("2d");
  const frame = context.createImageData(x, y);
  const out = frame.data;
  const offset = view.slice * x * y;
  for (let row = 0; row < y; row++) {
    const outRow = flip.rows ? y - 1 - row : row;
    for (let column = 0; column < x; column++) {
      const outColumn = flip.columns ? x - 1 - column : column;
      pixel(offset + row * x + column, out, (outRow * x + outColumn) * 4);
    }
  }
  context.putImageData(frame, 0, 0);
}

function paintImage() {
  const image = view.image;
  const low = view.window.level - view.window.width / 2;
  const scale = 255 / Math.max(view.window.width, 1);
  paint(layers.image, (i, out, o) => {
    const grey = (image[i] - low) * scale; // the clamped array clips to 0..255
    out[o] = grey;
    out[o + 1] = grey;
    out[o + 2] = grey;
    out[o + 3] = 255;
  });
}

function paintHeat() {
  const heat = view.heat;
  paint(layers.heat, (i, out, o) => {
    const v = heat[i] * 4;
    out[o] = HEAT_RGBA[v];
    out[o + 1] = HEAT_RGBA[v + 1];
    out[o + 2] = HEAT_RGBA[v + 2];
    out[o + 3] = HEAT_RGBA[v + 3];
  });
}

function paintMask() {
  const mask = view.mask;
  paint(layers.mask, (i, out, o) => {
    const label = mask[i];
    if (label === 0) return; // left transparent
    const [r, g, b] = labelColour(label);
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = b;
    out[o + 3] = 255;
  });
}

/** The size of the box the slice fits into at zoom 1: the viewport's width, and the
 * window's height below the viewport's top less what sits under it (slider, status). */
function layout() {
  const column = viewport.parentElement;
  const rect = viewport.getBoundingClientRect();
  const style = getComputedStyle(viewport);
  const borderX = parseFloat(style.borderLeftWidth) + parseFloat(style.borderRightWidth);
  const borderY = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
  const below = column.getBoundingClientRect().bottom - rect.bottom;
  const top = rect.top + window.scrollY;
  const margin = parseFloat(getComputedStyle(viewport.closest("main")).paddingBottom) || 0;
  const height = Math.max(MIN_VIEWPORT_PX, window.innerHeight - top - below - margin - borderY);
  view.box = { width: Math.max(1, Math.floor(rect.width - borderX)), height: Math.floor(height) };
  if (!view.image) return;
  // the viewport hugs the fitted slice's height; zooming in scrolls inside it
  const [, spacingY, spacingX] = view.meta.spacing_mm;
  const physical = { width: view.x * spacingX, height: view.y * spacingY };
  const fit = Math.min(view.box.width / physical.width, view.box.height / physical.height);
  view.box.height = Math.max(1, Math.floor(physical.height * fit));
  viewport.style.height = `${view.box.height + borderY}px`;
}

function render() {
  if (!view.image) return;
  const { x, y } = view;
  const alpha = Number(opacity.value) / 100;
  const [, spacingY, spacingX] = view.meta.spacing_mm;
  // CSS pixels per mm: the slice keeps its physical aspect ratio whatever the voxel shape
  const fit = Math.min(view.box.width / (x * spacingX), view.box.height / (y * spacingY));
  const cssWidth = Math.max(1, Math.floor(x * spacingX * fit * view.zoom));
  const cssHeight = Math.max(1, Math.floor(y * spacingY * fit * view.zoom));
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(cssWidth * ratio);
  const height = Math.round(cssHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
  }
  const screen = canvas.getContext("2d");
  screen.globalAlpha = 1;
  // a smoothed edge pixel is partly transparent: nothing of the last slice may show through
  screen.clearRect(0, 0, width, height);
  // the CT is smoothed when scaled up; label edges stay sharp (each voxel is one label)
  paintImage();
  screen.imageSmoothingEnabled = true;
  screen.imageSmoothingQuality = "high";
  screen.drawImage(layers.image, 0, 0, width, height);
  if (showHeat.checked && view.heat) {
    paintHeat();
    screen.globalAlpha = Math.min(1, alpha * HEAT_OPACITY_GAIN);
    screen.drawImage(layers.heat, 0, 0, width, height);
  }
  if (showMask.checked && view.mask) {
    paintMask();
    screen.imageSmoothingEnabled = false;
    screen.globalAlpha = alpha;
    screen.drawImage(layers.mask, 0, 0, width, height);
  }
  screen.globalAlpha = 1;
  if (view.marker && view.marker.slice === view.slice) {
    const flip = view.meta.flip || { rows: false, columns: false };
    const mx = flip.columns ? x - 1 - view.marker.x : view.marker.x;
    const my = flip.rows ? y - 1 - view.marker.y : view.marker.y;
    screen.strokeStyle = "#ffd400";
    screen.lineWidth = 2 * ratio;
    screen.beginPath();
    const radius = Math.max(8, (6 * cssWidth) / x) * ratio;
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
window.addEventListener("resize", () => {
  layout();
  render();
});

// ------------------------------------------------------------------ panels

/** "48 slices × 128 × 128" (z, then rows × columns), or "" before the image is known. */
function gridText(meta) {
  if (!Array.isArray(meta.shape)) return "";
  const [z, y, x] = meta.shape;
  return `${z} slice${z === 1 ? "" : "s"} × ${y} × ${x}`;
}

function labels(meta) {
  const display = meta.display;
  const list = document.getElementById("study-labels");
  const model = meta.model || {};
  // what the service knows about every job; a DICOM study adds its patient labels first
  const job = [
    ["Model", model.name ? `${model.name}:${model.version}` : "", "label-model"],
    ["Task", meta.task, "label-task"],
    ["Received", localTime(meta.created), "label-received"],
    ["Image", gridText(meta), "label-image"],
  ].filter(([, value]) => value);
  let rows;
  if (display) {
    document.getElementById("study-title").textContent =
      personName(display.PatientName) || "Unnamed patient";
    rows = [
      ["Patient name", display.PatientName, "label-patient-name"],
      ["Patient ID", display.PatientID, "label-patient-id"],
      ["Study date", dicomDate(display.StudyDate), "label-study-date"],
      ["Series", display.SeriesDescription, "label-series-description"],
      ["Modality", display.Modality, "label-modality"],
      ...job,
    ];
  } else {
    // an upload carries no patient labels: the page says so rather than inventing any
    document.getElementById("study-title").textContent = "Uploaded study (de-identified)";
    rows = [...job, ["Job", meta.job_id, "label-job"]];
  }
  fill(
    list,
    rows.map(([name, value, id]) =>
      el(
        "div",
        { class: id === "label-job" ? "label muted" : "label" },
        el("dt", {}, name),
        el("dd", { id, class: id === "label-job" ? "mono" : "" }, value || ""),
      ),
    ),
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
          ` ${millilitres(structure.volume_ml)} · ${count} component${count === 1 ? "" : "s"}`,
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
          `${name} ${i + 1}: ${millilitres(c.volume_ml)}, ⌀ ${millimetres(c.diameter_mm)}, ` +
            `slice ${c.slice + 1}`,
          c.side ? ` (${c.side})` : "",
        ),
      ),
    );
    if (items.length) nodes.push(el("ol", { class: "components" }, items));
  }
  return nodes;
}

function riskPanel(result) {
  const nodes = [];
  if (result.refer) {
    nodes.push(
      el(
        "p",
        { id: "refer", class: "refer", role: "alert" },
        `Refer: the calibrated risk reaches the decision threshold (${percent(result.threshold)}).`,
      ),
    );
  }
  nodes.push(
    el("p", { id: "risk" }, "Risk: ", el("strong", {}, percent(result.probability))),
    el("meter", { min: 0, max: 1, value: result.probability, low: result.threshold }),
  );
  if (result.label_definition) {
    nodes.push(el("p", { id: "risk-outcome", class: "muted" }, `Outcome: ${result.label_definition}`));
  }
  nodes.push(
    el("p", { id: "calibration", class: "muted" }, `Calibration: ${result.calibration}`),
    el(
      "p",
      { class: "muted" },
      `Model score ${percent(result.risk)}; threshold ${percent(result.threshold)}`,
      result.network ? `; network ${result.network}` : "",
    ),
  );
  if (result.uncertain) {
    nodes.push(
      el(
        "p",
        { id: "uncertain", class: "refer" },
        "The model cannot rule either outcome out at its calibrated coverage.",
      ),
    );
  }
  return nodes;
}

// ------------------------------------------------------------------ record timeline

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function ago(hours) {
  const days = hours / 24;
  if (days < 1) return `${Math.round(hours)} h before`;
  if (days < 60) return `${Math.round(days)} d before`;
  return `${(days / 365.25).toFixed(1)} y before`;
}

/** The contributing events on a time axis ending at the prediction: one bar each, up for
 * events that raised the risk and down for those that lowered it, every label as text. */
function timelineChart(contributions) {
  const width = 640;
  const height = 220;
  const pad = { left: 12, right: 12, top: 16, bottom: 30 };
  const span = Math.max(1, ...contributions.map((c) => c.hours_before));
  const peak = Math.max(1e-9, ...contributions.map((c) => Math.abs(c.contribution)));
  const axis = pad.top + (height - pad.top - pad.bottom) / 2;
  const reach = (height - pad.top - pad.bottom) / 2 - 4;
  const x = (hours) => pad.left + (1 - hours / span) * (width - pad.left - pad.right);
  const chart = svg("svg", {
    id: "timeline-svg",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "Contributing events by time before the prediction",
  });
  chart.append(
    svg("line", { x1: pad.left, x2: width - pad.right, y1: axis, y2: axis, class: "axis" }),
    svg("text", { x: pad.left, y: height - 8, class: "tick" }, ago(span)),
    svg("text", { x: width - pad.right, y: height - 8, class: "tick", "text-anchor": "end" },
      "prediction"),
  );
  contributions.forEach((c, i) => {
    const size = (Math.abs(c.contribution) / peak) * reach;
    const up = c.contribution >= 0;
    const bar = svg("rect", {
      x: x(c.hours_before) - 3,
      y: up ? axis - size : axis,
      width: 6,
      height: Math.max(size, 1),
      class: up ? "bar raises" : "bar lowers",
    });
    bar.setAttribute("data-index", String(i));
    bar.append(
      svg("title", {}, `${c.description || c.code}: ${ago(c.hours_before)}, ` +
        `contribution ${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(3)}`),
    );
    chart.append(bar);
  });
  return chart;
}

function timelineRows(contributions) {
  return [
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ["When", "Event", "Value", "Contribution"].map((h) => el("th", {}, h)),
      ),
    ),
    el(
      "tbody",
      {},
      contributions.map((c) =>
        el(
          "tr",
          { class: c.contribution >= 0 ? "raises" : "lowers" },
          el("td", { class: "nowrap" }, ago(c.hours_before)),
          el("td", {}, c.description ? `${c.description} (${c.code})` : c.code),
          el("td", { class: "number" }, c.value === null || c.value === undefined ? "" :
            String(Number(c.value.toPrecision(4)))),
          el(
            "td",
            { class: "number" },
            `${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(3)}`,
          ),
        ),
      ),
    ),
  ];
}

function timelinePanel(result) {
  document.getElementById("viewport-column").hidden = true;
  document.getElementById("timeline-column").hidden = false;
  const contributions = (result && result.contributions) || [];
  const chart = document.getElementById("timeline-chart");
  const table = document.getElementById("timeline-table");
  if (!contributions.length) {
    fill(chart, el("p", { class: "muted" }, "No contributing events were reported."));
    fill(table);
    return;
  }
  const byTime = [...contributions].sort((a, b) => b.hours_before - a.hours_before);
  fill(chart, timelineChart(byTime));
  fill(table, ...timelineRows(contributions));
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
  const panels = {
    segment: structuresPanel,
    "ehr-risk": riskPanel,
    "text-classify": textPanel,
    "text-ner": textPanel,
  };
  const nodes = (panels[result.task] || classifyPanel)(result, meta);
  nodes.push(
    el(
      "p",
      { class: "muted" },
      "Research software: a clinician must review every result before it is used.",
    ),
  );
  fill(body, nodes);
}

// ------------------------------------------------------------------ note

const TEXT_TASKS = new Set(["text-classify", "text-ner"]);
// entity types with a colour of their own (classes come from this list, never from the server)
const ENTITY_TYPES = ["finding", "anatomy", "medication", "procedure", "device", "measurement"];

function entityType(type) {
  return ENTITY_TYPES.includes(type) ? type : "other";
}

/** The assertion tags an entity gets: negated, uncertain, historical, hypothetical, family. */
function assertionTags(entity) {
  const tags = [];
  if (entity.negation === "negated") tags.push("negated");
  if (entity.certainty === "uncertain") tags.push("uncertain");
  if (entity.temporality === "historical" || entity.temporality === "hypothetical") {
    tags.push(entity.temporality);
  }
  if (entity.experiencer === "other") tags.push("family");
  return tags;
}

function entityTitle(entity) {
  const parts = [entity.concept ? `${entity.type}: ${entity.concept}` : entity.type];
  if (entity.value_mm !== null && entity.value_mm !== undefined) {
    parts.push(millimetres(entity.value_mm));
  }
  if (entity.section) parts.push(`section ${entity.section}`);
  return [...parts, ...assertionTags(entity)].join(" · ");
}

/** The note as text and highlighted entities. Offsets count code points (as Python does),
 * so the text is indexed as an array of them; overlapping entities keep the first. */
function noteNodes(text, entities) {
  const chars = Array.from(text);
  const sorted = [...entities]
    .filter((e) => Number.isInteger(e.start) && Number.isInteger(e.end) && e.start < e.end)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const nodes = [];
  let at = 0;
  for (const entity of sorted) {
    if (entity.start < at || entity.end > chars.length) continue;
    if (entity.start > at) nodes.push(chars.slice(at, entity.start).join(""));
    const tags = assertionTags(entity);
    const classes = ["entity", `entity-${entityType(entity.type)}`];
    if (tags.includes("negated")) classes.push("negated");
    if (tags.includes("uncertain")) classes.push("uncertain");
    nodes.push(
      el(
        "mark",
        {
          class: classes.join(" "),
          title: entityTitle(entity),
          dataset: {
            type: entityType(entity.type),
            negation: entity.negation || "",
            certainty: entity.certainty || "",
          },
        },
        chars.slice(entity.start, entity.end).join(""),
      ),
    );
    for (const tag of tags) nodes.push(el("span", { class: `assertion-tag ${tag}` }, tag));
    at = entity.end;
  }
  if (at < chars.length) nodes.push(chars.slice(at).join(""));
  return nodes;
}

function noteLegend(entities) {
  const present = ENTITY_TYPES.filter((t) => entities.some((e) => entityType(e.type) === t));
  if (entities.some((e) => entityType(e.type) === "other")) present.push("other");
  return present.map((type) =>
    el("span", { class: `entity entity-${type}`, dataset: { legend: type } }, type),
  );
}

async function notePanel(meta) {
  document.getElementById("viewport-column").hidden = true;
  document.getElementById("note-column").hidden = false;
  const target = document.getElementById("note-text");
  const entities = (meta.result && meta.result.entities) || [];
  fill(document.getElementById("note-legend"), noteLegend(entities));
  if (!meta.note_file) {
    fill(target, el("p", { class: "muted" }, "The model kept no copy of the note it read."));
    return;
  }
  const url = `/v1/jobs/${encodeURIComponent(jobId)}/files/${encodeURIComponent(meta.note_file)}`;
  const { buffer } = await api(url, { binary: true });
  const text = new TextDecoder("utf-8").decode(buffer);
  fill(target, noteNodes(text, entities));
  target.dataset.ready = "true";
}

function textPanel(result) {
  const nodes = [];
  const labels = Object.entries(result.labels || {});
  if (labels.length) {
    nodes.push(
      el(
        "table",
        { id: "text-labels", class: "list compact" },
        el(
          "thead",
          {},
          el("tr", {}, el("th", {}, "Output"), el("th", {}, "Label"), el("th", {}, "Probability")),
        ),
        el(
          "tbody",
          {},
          labels.map(([output, label]) =>
            el(
              "tr",
              { dataset: { output } },
              el("td", {}, output),
              el("td", {}, el("strong", {}, label.label)),
              el("td", { class: "number" }, percent(label.probability)),
            ),
          ),
        ),
      ),
    );
  }
  const entities = result.entities || [];
  if (entities.length || !labels.length) {
    const counts = new Map();
    for (const entity of entities) {
      const type = entityType(entity.type);
      counts.set(type, (counts.get(type) || 0) + 1);
    }
    const negated = entities.filter((e) => e.negation === "negated").length;
    const uncertain = entities.filter((e) => e.certainty === "uncertain").length;
    const listed = [...counts].map(([type, n]) => `${n} ${type}`).join(", ");
    nodes.push(
      el(
        "p",
        { id: "entity-counts" },
        `${entities.length} entit${entities.length === 1 ? "y" : "ies"}`,
        listed ? ` (${listed})` : "",
        negated ? `; ${negated} negated` : "",
        uncertain ? `; ${uncertain} uncertain` : "",
      ),
    );
  }
  if (result.sections && result.sections.length) {
    nodes.push(el("p", { class: "muted" }, `Sections: ${result.sections.join(", ")}`));
  }
  nodes.push(
    el(
      "p",
      { class: "muted" },
      result.deidentified ? "The note was de-identified before it was stored." : "",
      result.network ? ` Network: ${result.network}.` : "",
    ),
  );
  return nodes;
}

// ------------------------------------------------------------------ model card

const CARD_HEADINGS = ["h3", "h4", "h5", "h5", "h5", "h5"]; // '#' under the panel's h2
const HEADING = /^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const LIST_ITEM = /^[-*+]\s+(.*)$/;
const TABLE_SEPARATOR = /^:?-+:?$/;
const LONG_TOKEN = /\S{25,}/; // a value with no space to wrap at (a JSON, a hash)

/** The cells of a pipe-table row ("| a | b |"); a backslash-escaped pipe stays in its cell. */
function tableCells(line) {
  const inner = line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "");
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function cardTable(lines) {
  const rows = lines.map(tableCells);
  const headed = rows.length > 1 && rows[1].every((cell) => TABLE_SEPARATOR.test(cell));
  const head = headed ? rows[0] : null;
  const body = headed ? rows.slice(2) : rows;
  return el(
    "table",
    { class: "list compact" },
    head ? el("thead", {}, el("tr", {}, head.map((cell) => el("th", {}, cell)))) : null,
    el(
      "tbody",
      {},
      body.map((cells) =>
        el(
          "tr",
          {},
          cells.map((cell) => el("td", { class: LONG_TOKEN.test(cell) ? "unbroken" : "" }, cell)),
        ),
      ),
    ),
  );
}

/** A model card's Markdown as DOM nodes: '#' headings, paragraphs, '-' list items and pipe
 * tables. Only that subset is read, and every piece of it goes in as text: "<b>" or
 * "<script>" in a card is shown as those characters, never parsed. */
function cardNodes(markdown) {
  const lines = String(markdown).replace(/\r\n?/g, "\n").split("\n");
  const startsBlock = (line) =>
    HEADING.test(line) || LIST_ITEM.test(line) || line.startsWith("|");
  const nodes = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i].trim();
    if (!line) {
      i++;
    } else if (HEADING.test(line)) {
      const [, hashes, text] = HEADING.exec(line);
      nodes.push(el(CARD_HEADINGS[hashes.length - 1], {}, text));
      i++;
    } else if (LIST_ITEM.test(line)) {
      const items = [];
      for (; i < lines.length && LIST_ITEM.test(lines[i].trim()); i++) {
        items.push(el("li", {}, LIST_ITEM.exec(lines[i].trim())[1]));
      }
      nodes.push(el("ul", {}, items));
    } else if (line.startsWith("|")) {
      const rows = [];
      for (; i < lines.length && lines[i].trim().startsWith("|"); i++) rows.push(lines[i]);
      nodes.push(cardTable(rows));
    } else {
      const text = [];
      for (; i < lines.length && lines[i].trim() && !startsBlock(lines[i].trim()); i++) {
        text.push(lines[i].trim());
      }
      nodes.push(el("p", {}, text.join(" ")));
    }
  }
  return nodes;
}

function modelPanel(meta) {
  const model = meta.model || {};
  document.getElementById("model-name").textContent =
    `${model.name}:${model.version} · sha256 ${String(model.sha256 || "").slice(0, 12)}…`;
  const card = document.getElementById("model-card");
  if (meta.model_card) fill(card, cardNodes(meta.model_card));
  else {
    fill(
      card,
      el("p", { class: "muted" }, "This model version was registered without a model card."),
    );
  }
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
  layout();
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
  const [slices, rows, columns] = meta.spacing_mm.map((s) => s.toFixed(2));
  status.textContent =
    `${meta.modality} · ${gridText(meta)} voxels · ` +
    `${rows} × ${columns} mm pixels, ${slices} mm apart`;
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
  fill(document.getElementById("study-state"), stateBadge(meta.state));
  resultPanel(meta);
  modelPanel(meta);
  if (meta.state === "queued" || meta.state === "running") {
    setTimeout(() => poll(meta.state).catch(() => undefined), POLL_MS);
  }
  if (meta.task === "ehr-risk") timelinePanel(meta.result);
  else if (TEXT_TASKS.has(meta.task)) await notePanel(meta);
  else if (meta.layers.image) await loadVoxels(meta);
  else status.textContent = meta.image_error || "The input image is no longer stored.";
}

main().catch((exc) => show(errorLine, `Could not load the study: ${exc.message}`));
