// Queue: pending jobs in the order the scheduler would start them, and why each one waits.

import { api } from "../api.js";
import { fmtDuration, fmtResources, h, replace, table, timeCell, every } from "../dom.js";

const REFRESH_MS = 5000;

export function renderQueue(main, { flash }) {
  const box = h("div", { class: "table-box", "data-testid": "queue" }, h("p", { class: "muted" }, "Loading…"));
  const policy = h("span", { class: "muted", "data-testid": "queue-policy" });
  main.append(h("div", { class: "toolbar" }, h("h1", null, "Queue"), policy), box);
  const columns = [
    { label: "#", class: "num", cell: (j) => String(j.position) },
    { label: "Job", cell: (j) => h("a", { href: `#/jobs/${j.id}`, "data-testid": "job-link" }, `${j.id} · ${j.name}`) },
    { label: "User", cell: (j) => j.user },
    { label: "Priority", class: "num", cell: (j) => String(j.priority ?? 0) },
    { label: "Resources", cell: (j) => fmtResources(j.resources, j.num_nodes) },
    {
      label: "Expected",
      class: "num",
      cell: (j) =>
        j.estimated_duration_s
          ? h("span", { title: j.estimate_stated ? "as its spec states" : "estimated" }, fmtDuration(j.estimated_duration_s) + (j.estimate_stated ? "" : " (est.)"))
          : "",
    },
    { label: "Waiting since", cell: (j) => timeCell(j.submitted_at) },
    { label: "Why it waits", class: "reason", cell: (j) => h("span", { "data-testid": "queue-reason" }, j.reason || "") },
  ];
  let controller = null;
  const load = async () => {
    controller?.abort();
    controller = new AbortController();
    try {
      const doc = await api.get("/api/queue", null, { signal: controller.signal });
      const jobs = doc.jobs || [];
      policy.textContent = jobs.length && jobs[0].policy ? `policy: ${jobs[0].policy}` : "";
      replace(box, table(columns, jobs, { testid: "queue-table", empty: "Nothing is waiting.", rowTestid: (j) => `queue-row-${j.id}` }));
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  };
  return every(REFRESH_MS, load, () => controller?.abort());
}
