// Jobs: newest first, 50 a page (Next/Previous through before_id), filtered by state, user and name.

import { api, query } from "../api.js";
import { fmtDuration, fmtResources, h, replace, statusBadge, table, timeCell } from "../dom.js";

export const STATES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
const PAGE = 50;
const REFRESH_MS = 5000;

function jobHash(params) {
  return `#/jobs${query(params)}`;
}

function elapsed(job) {
  if (job.wall_seconds !== null && job.wall_seconds !== undefined && job.ended_at) return job.wall_seconds;
  if (job.started_at && !job.ended_at) return (Date.now() - new Date(job.started_at).getTime()) / 1000;
  return job.wall_seconds ?? null;
}

export function renderJobs(main, { params, flash, go }) {
  const states = params.getAll("state").filter((s) => STATES.includes(s));
  const user = params.get("user") || "";
  const name = params.get("name") || "";
  const before = params.get("before") || "";
  const trail = (params.get("trail") || "").split(",").filter((s) => /^\d+$/.test(s));
  const filters = { state: states, user, name };
  const page = before ? trail.length + 2 : 1;

  // ---- filters ----
  const boxes = STATES.map((s) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: s, checked: states.includes(s), "data-testid": `state-${s}` }), s.toLowerCase()),
  );
  const userInput = h("input", { name: "user", value: user, placeholder: "any", size: 10, "data-testid": "filter-user" });
  const nameInput = h("input", { name: "name", value: name, placeholder: "part of the name", size: 16, "data-testid": "filter-name" });
  const form = h(
    "form",
    { class: "filters", "data-testid": "jobs-filter" },
    h("fieldset", null, h("legend", null, "State"), boxes),
    h("label", null, "User ", userInput),
    h("label", null, "Name ", nameInput),
    h("button", { type: "submit", "data-testid": "filter-apply" }, "Filter"),
    h("a", { href: "#/jobs", class: "button secondary", "data-testid": "filter-clear" }, "Clear"),
  );
  const apply = () => {
    const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    go(jobHash({ state: chosen, user: userInput.value.trim(), name: nameInput.value.trim() }));
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    apply();
  });
  for (const b of boxes) b.querySelector("input").addEventListener("change", apply);

  // ---- table and pager ----
  const box = h("div", { class: "table-box", "data-testid": "jobs" }, h("p", { class: "muted" }, "Loading…"));
  const prev = h("button", { type: "button", class: "secondary", disabled: page === 1, "data-testid": "page-prev" }, "‹ Previous");
  const next = h("button", { type: "button", class: "secondary", disabled: true, "data-testid": "page-next" }, "Next ›");
  const where = h("span", { class: "muted", "data-testid": "page-number" }, `page ${page}`);
  const pager = h("div", { class: "pager" }, prev, where, next);
  let nextBefore = null;
  prev.addEventListener("click", () => {
    if (page === 1) return;
    const back = trail.slice(0, -1);
    const target = trail.length ? trail[trail.length - 1] : "";
    go(jobHash({ ...filters, before: target, trail: target ? back.join(",") : "" }));
  });
  next.addEventListener("click", () => {
    if (!nextBefore) return;
    go(jobHash({ ...filters, before: nextBefore, trail: (before ? [...trail, before] : []).join(",") }));
  });

  main.append(h("div", { class: "toolbar" }, h("h1", null, "Jobs"), form), box, pager);

  const columns = [
    { label: "ID", class: "num", cell: (j) => h("a", { href: `#/jobs/${j.id}`, "data-testid": "job-link" }, String(j.id)) },
    { label: "Name", cell: (j) => h("a", { href: `#/jobs/${j.id}`, class: "name" }, j.name) },
    { label: "User", cell: (j) => j.user },
    { label: "Project", cell: (j) => j.project ?? "" },
    { label: "Status", cell: (j) => statusBadge(j.status) },
    { label: "Resources", cell: (j) => fmtResources(j.resources, j.num_nodes) },
    { label: "Submitted", cell: (j) => timeCell(j.submitted_at) },
    { label: "Ran", class: "num", cell: (j) => fmtDuration(elapsed(j)) },
    { label: "Reason", class: "reason", cell: (j) => h("span", { title: j.reason || "" }, j.reason || "") },
  ];

  let controller = null;
  let timer = null;
  const load = async (quiet) => {
    controller?.abort();
    controller = new AbortController();
    try {
      const doc = await api.get("/api/jobs", { limit: PAGE, before_id: before, ...filters }, { signal: controller.signal });
      nextBefore = doc.next_before_id;
      next.disabled = !nextBefore;
      const empty = states.length || user || name ? "No jobs match these filters." : "No jobs yet.";
      replace(box, table(columns, doc.jobs, { testid: "jobs-table", empty, rowTestid: (j) => `job-row-${j.id}` }));
    } catch (e) {
      if (e.name === "AbortError") return;
      if (!quiet) replace(box, h("p", { class: "muted" }, "Could not load the jobs."));
      flash(e);
    }
  };
  load(false);
  // The first page follows new jobs and state changes; older pages stay put while you read them.
  if (page === 1) {
    timer = setInterval(() => {
      if (!document.hidden) load(true);
    }, REFRESH_MS);
  }
  return () => {
    clearInterval(timer);
    controller?.abort();
  };
}
