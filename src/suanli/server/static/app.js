// suanli's dashboard: a hash-routed single page over the server's JSON API (no build step).
//   #/login  #/jobs?state=&user=&name=&before=&trail=  #/jobs/ID  #/queue  #/nodes  #/monitor  #/usage

import { ApiError, api, session } from "./api.js";
import { h, replace } from "./dom.js";
import { renderJob } from "./views/job.js";
import { renderJobs } from "./views/jobs.js";
import { renderMonitor } from "./views/monitor.js";
import { renderNodes } from "./views/nodes.js";
import { renderQueue } from "./views/queue.js";
import { renderUsage } from "./views/usage.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const flashBox = document.getElementById("flash");

const ROUTES = [
  { pattern: /^\/jobs\/(\d+)$/, render: renderJob, tab: "jobs", title: (m) => `Job ${m[1]}` },
  { pattern: /^\/jobs$/, render: renderJobs, tab: "jobs", title: () => "Jobs" },
  { pattern: /^\/queue$/, render: renderQueue, tab: "queue", title: () => "Queue" },
  { pattern: /^\/nodes$/, render: renderNodes, tab: "nodes", title: () => "Nodes" },
  { pattern: /^\/monitor$/, render: renderMonitor, tab: "monitor", title: () => "Monitor" },
  { pattern: /^\/usage$/, render: renderUsage, tab: "usage", title: () => "Usage" },
];
const TABS = [
  ["jobs", "Jobs"],
  ["queue", "Queue"],
  ["nodes", "Nodes"],
  ["monitor", "Monitor"],
  ["usage", "Usage"],
];

let cleanup = null;
let afterLogin = "#/jobs";

// ---- messages -----------------------------------------------------------------------------------

/** Show an error's one line (or any text) above the page until the next page or a click on it. */
export function flash(error) {
  if (error && error.name === "AbortError") return;
  const text = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && !(error instanceof ApiError)) console.error(error);
  replace(flashBox, h("span", { "data-testid": "error-text" }, text), h("button", { class: "link", type: "button", "aria-label": "dismiss" }, "×"));
  flashBox.hidden = false;
}

function clearFlash() {
  flashBox.hidden = true;
  replace(flashBox);
}

flashBox.addEventListener("click", (e) => {
  if (e.target instanceof HTMLButtonElement) clearFlash();
});

// ---- routing ------------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  return { path: path.startsWith("/") ? path : `/${path}`, params };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function stopView() {
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  cleanup = null;
}

function route() {
  stopView();
  clearFlash();
  const { path, params } = parseHash();
  if (path === "/login" || !session.token) {
    if (path !== "/login") afterLogin = location.hash || "#/jobs";
    showLogin();
    return;
  }
  const me = session.who;
  renderHeader(me);
  for (const r of ROUTES) {
    const m = path.match(r.pattern);
    if (!m) continue;
    for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.tab === r.tab);
    document.title = `${r.title(m)} · suanli`;
    replace(main);
    const ctx = { me, params, match: m, flash, go };
    try {
      cleanup = r.render(main, ctx) || null;
    } catch (e) {
      flash(e);
    }
    return;
  }
  replace(main, h("p", { class: "muted" }, "No such page. "), h("a", { href: "#/jobs" }, "Jobs"));
}

// ---- header -------------------------------------------------------------------------------------

function renderHeader(me) {
  nav.hidden = false;
  replace(nav, TABS.map(([tab, label]) => h("a", { href: `#/${tab}`, "data-tab": tab, "data-testid": `nav-${tab}` }, label)));
  if (!me) {
    replace(who);
    return;
  }
  replace(
    who,
    h("span", { class: "user", "data-testid": "who-user" }, me.user),
    h("span", { class: "role", "data-testid": "who-role" }, me.role.replace("_", " ")),
    h("span", { class: "project", "data-testid": "who-project" }, me.project ?? "all projects"),
    h("button", { type: "button", class: "secondary", "data-testid": "logout", onclick: logout }, "Log out"),
  );
}

async function logout() {
  const me = session.who;
  if (me && me.token_id !== null && me.token_id !== undefined) {
    try {
      await api.del(`/api/tokens/${me.token_id}`); // the token stops working on the server too
    } catch {
      // already expired or revoked: nothing to do
    }
  }
  session.clear();
  afterLogin = "#/jobs";
  go("#/login");
}

session.onUnauthorized(() => {
  if (!session.token) return;
  session.clear();
  afterLogin = location.hash && location.hash !== "#/login" ? location.hash : "#/jobs";
  stopView();
  showLogin("Your session has ended: log in again.");
});

// ---- login --------------------------------------------------------------------------------------

function showLogin(message) {
  document.title = "Log in · suanli";
  nav.hidden = true;
  replace(who);
  const error = h("p", { class: "error", "data-testid": "login-error", role: "alert", hidden: !message }, message || "");
  const user = h("input", { name: "user", autocomplete: "username", required: true, autofocus: true, "data-testid": "login-user" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "data-testid": "login-password" });
  const project = h("input", { name: "project", placeholder: "your default", "data-testid": "login-project" });
  const submit = h("button", { type: "submit", "data-testid": "login-submit" }, "Log in");
  const form = h(
    "form",
    { class: "login", "data-testid": "login-form" },
    h("h1", null, "suanli"),
    h("label", null, "User", user),
    h("label", null, "Password", password),
    h("label", null, h("span", null, "Project ", h("span", { class: "muted" }, "(optional)")), project),
    submit,
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const doc = await api.login(user.value.trim(), password.value, project.value.trim() || null);
      const me = { user: doc.user, role: doc.role, project: doc.project ?? null, token_id: doc.id ?? null };
      session.save(doc.token, me);
      try {
        Object.assign(me, await api.get("/api/whoami"));
        session.save(null, me);
      } catch {
        // the login's own answer is enough to go on
      }
      const target = afterLogin && afterLogin !== "#/login" ? afterLogin : "#/jobs";
      go(target);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  (user.value ? password : user).focus();
}

// ---- start --------------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
route();
if (session.token) {
  // Check the stored token and refresh who we are (a 401 shows the login form).
  api
    .get("/api/whoami")
    .then((doc) => {
      session.save(null, { ...session.who, ...doc });
      renderHeader(session.who);
    })
    .catch((e) => {
      if (!(e instanceof ApiError && e.status === 401)) flash(e);
    });
}
