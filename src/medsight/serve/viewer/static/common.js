// Shared by the viewer's pages: DOM building without HTML parsing, API calls with the login
// cookie, the page header (user, logout).
//
// Every string that comes from the server or from DICOM goes into the page as a text node
// (`el`, `textContent`), never through innerHTML: a patient name "<img src=x onerror=...>"
// is shown as those characters. The Content-Security-Policy (default-src 'self') is the
// second wall: no inline script or handler would run even if markup got in.

const FORBIDDEN_PROPS = new Set(["innerHTML", "outerHTML", "srcdoc", "insertAdjacentHTML"]);

/** A new element: `props` are set as DOM properties (`class` -> className, `dataset`,
 * `on<event>` -> listener); children are nodes or strings (added as text). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (FORBIDDEN_PROPS.has(key)) throw new Error(`el: ${key} is not allowed`);
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replace the children of `node` with `children` (nodes or text). */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export function show(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function toLogin() {
  const next = encodeURIComponent(location.pathname);
  location.assign(`/viewer/login?next=${next}`);
}

/** Call the service: JSON in and out (or an ArrayBuffer with `binary`); a 401 goes to the
 * login page, other errors throw `ApiError` with the service's code and message. */
export async function api(path, { method = "GET", body, binary = false } = {}) {
  const headers = { Accept: binary ? "application/octet-stream" : "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("medsight_csrf");
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) {
    let code = "error";
    let message = `${response.status} ${response.statusText}`;
    try {
      const data = await response.json();
      code = data.error.code;
      message = data.error.message;
    } catch (_) {
      // not the service's JSON error: keep the status line
    }
    if (response.status === 401 && path !== "/v1/login") toLogin();
    throw new ApiError(response.status, code, message);
  }
  if (binary) return { buffer: await response.arrayBuffer(), headers: response.headers };
  if (response.status === 204) return null;
  return response.json();
}

export async function logout() {
  try {
    await api("/v1/logout", { method: "POST" });
  } finally {
    location.assign("/viewer/login");
  }
}

/** Fill the page header (user and role, the admin link) and wire the logout button. */
export async function initHeader() {
  document.getElementById("logout").addEventListener("click", logout);
  const me = await api("/v1/me");
  document.getElementById("whoami").textContent = `${me.user} (${me.role})`;
  document.getElementById("nav-admin").hidden = me.role !== "admin";
  return me;
}

/** A DICOM person name ("Family^Given") as people read it. */
export function personName(value) {
  return String(value || "")
    .split("^")
    .filter((part) => part)
    .join(", ");
}

/** A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else unchanged. */
export function dicomDate(value) {
  const text = String(value || "");
  return /^\d{8}$/.test(text) ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}` : text;
}

/** An ISO timestamp as "YYYY-MM-DD HH:MM" in the browser's time zone: the same digits in
 * every locale (no "11/21/2026, 6:52 AM" in one browser and "21.11.2026" in the next). */
export function localTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const two = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  return `${day} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

// between a number and its unit, so that a line never breaks inside "119.9 mL"
const NO_BREAK = "\u00a0";

/** A volume in mL: 0.1 mL steps, 0.01 mL under 1 mL (a small nodule is not "0.0 mL"). */
export function millilitres(value) {
  const ml = value === null || value === "" ? NaN : Number(value);
  if (!Number.isFinite(ml)) return String(value ?? "");
  const fine = ml.toFixed(2); // 0.996 rounds to "1.00": shown as "1.0" like other volumes
  return `${Math.abs(Number(fine)) < 1 ? fine : ml.toFixed(1)}${NO_BREAK}mL`;
}

/** A length in mm with one decimal. */
export function millimetres(value) {
  const mm = value === null || value === "" ? NaN : Number(value);
  return Number.isFinite(mm) ? `${mm.toFixed(1)}${NO_BREAK}mm` : String(value ?? "");
}

const STATES = new Set(["received", "queued", "running", "done", "failed"]);

/** A status badge; the class comes from a fixed list, never from the server's text. */
export function stateBadge(state) {
  const known = STATES.has(state) ? state : "unknown";
  return el("span", { class: `state state-${known}` }, String(state));
}
