// The login form: POST /v1/login sets the session cookie (HttpOnly) and the CSRF cookie.
import { ApiError, api, show } from "./common.js";

/** Where to go after logging in: the `next` page if it is one of the viewer's, else the list. */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/viewer(\/[A-Za-z0-9._~%-]*)*$/.test(next) && !next.startsWith("/viewer/login")
    ? next
    : "/viewer";
}

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(error, "");
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    await api("/v1/login", {
      method: "POST",
      body: {
        name: document.getElementById("login-name").value,
        password: document.getElementById("login-password").value,
      },
    });
    location.assign(nextPage());
  } catch (exc) {
    const text =
      exc instanceof ApiError && exc.status === 401
        ? "Wrong user name or password."
        : exc instanceof ApiError && exc.status === 429
          ? "Too many attempts: wait a minute and try again."
          : `Could not log in: ${exc.message}`;
    show(error, text);
    document.getElementById("login-password").value = "";
  } finally {
    button.disabled = false;
  }
});
