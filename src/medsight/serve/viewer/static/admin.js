// The admin page: every user with role, state and live tokens (no secrets exist to show).
import { api, el, fill, initHeader, localTime, show } from "./common.js";

const error = document.getElementById("users-error");

async function load() {
  await initHeader();
  const data = await api("/v1/admin/users");
  fill(
    document.getElementById("users-rows"),
    data.users.map((user) =>
      el(
        "tr",
        { dataset: { user: user.name } },
        el("td", { class: "user-name" }, user.name),
        el("td", {}, user.role),
        el("td", {}, user.disabled ? "disabled" : "active"),
        el("td", {}, user.has_password ? "set" : "none"),
        el("td", {}, String(user.active_tokens)),
        el("td", {}, localTime(user.last_token_expires)),
        el("td", {}, localTime(user.created)),
      ),
    ),
  );
}

load().catch((exc) => show(error, `Could not load the users: ${exc.message}`));
