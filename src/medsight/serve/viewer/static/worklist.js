// The worklist: jobs and arriving series the user may read, newest first, refreshed.
import {
  api,
  dicomDate,
  el,
  fill,
  initHeader,
  localTime,
  personName,
  show,
  stateBadge,
} from "./common.js";

const rows = document.getElementById("worklist-rows");
const empty = document.getElementById("worklist-empty");
const error = document.getElementById("worklist-error");
const updated = document.getElementById("worklist-updated");
const UPLOADED = "uploaded (de-identified)";
let refreshSeconds = 10;

function studyLink(item, text) {
  return el("a", { href: `/viewer/study/${encodeURIComponent(item.job_id)}` }, text);
}

/** The service's one-line summary (volumes already rounded by the service), as text. */
function summaryText(summary) {
  return String(summary || "");
}

function clock(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

function row(item) {
  const labels = item.display || {};
  const patient = item.display
    ? [
        el("span", { class: "patient-name" }, personName(labels.PatientName)),
        el("span", { class: "patient-id muted" }, labels.PatientID || ""),
      ]
    : [el("span", { class: "muted nowrap" }, item.kind === "job" ? UPLOADED : "")];
  const model = item.model ? `${item.model.name}:${item.model.version}` : "";
  const summary = item.error
    ? `${item.error.code}: ${item.error.message}`
    : summaryText(item.summary);
  const open = item.job_id ? studyLink(item, "Open") : "";
  const flagged = item.refer === true && !item.error;
  return el(
    "tr",
    {
      class: `row-${item.kind}${flagged ? " row-refer" : ""}`,
      dataset: { jobId: item.job_id || "", state: item.state },
    },
    el("td", { class: "nowrap" }, stateBadge(item.state)),
    el("td", { class: "patient" }, patient),
    el("td", { class: "nowrap" }, dicomDate(labels.StudyDate)),
    el("td", { class: "series-description" }, labels.SeriesDescription || ""),
    el("td", { class: "nowrap" }, labels.Modality || ""),
    el("td", { class: "nowrap" }, item.task || ""),
    el("td", { class: "nowrap" }, model),
    el(
      "td",
      { class: "summary" },
      flagged ? el("span", { class: "badge refer-badge" }, "refer") : "",
      flagged ? " " : "",
      summary,
    ),
    el("td", { class: "nowrap time" }, localTime(item.created)),
    el("td", { class: "nowrap" }, open),
  );
}

async function refresh() {
  try {
    const data = await api("/v1/worklist");
    refreshSeconds = Math.max(2, Number(data.refresh_seconds) || 10);
    fill(rows, data.items.map(row));
    empty.hidden = data.items.length > 0;
    show(error, "");
    updated.textContent = `Updated ${clock(new Date())} · refreshes every ${refreshSeconds} s`;
  } catch (exc) {
    show(error, `Could not load the worklist: ${exc.message}`);
  } finally {
    setTimeout(refresh, refreshSeconds * 1000);
  }
}

initHeader().then(refresh, (exc) => show(error, exc.message));
