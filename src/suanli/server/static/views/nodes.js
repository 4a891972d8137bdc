// Nodes: each node's capacity, what is used, and which jobs run there.

import { api } from "../api.js";
import { fmtBytes, fmtNumber, h, meter, replace, table, timeCell, every } from "../dom.js";

const REFRESH_MS = 5000;

function gpus(node) {
  const entries = Object.entries(node.accelerators || {});
  const total = entries.reduce((n, [, v]) => n + v, 0);
  return { total, types: entries.map(([t, n]) => `${n}× ${t}`).join(", ") };
}

export function renderNodes(main, { flash }) {
  const totals = h("span", { class: "muted", "data-testid": "nodes-total" });
  const box = h("div", { class: "table-box", "data-testid": "nodes" }, h("p", { class: "muted" }, "Loading…"));
  const ownersBox = h("div", { class: "table-box", "data-testid": "owners" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", null, "Nodes"), totals),
    box,
    h("div", { class: "toolbar" }, h("h2", null, "Owners: what each gave the pool and took")),
    ownersBox,
  );
  const hours = (v) => fmtNumber(Math.round(v * 100) / 100);
  const ownerColumns = [
    { label: "Owner", cell: (o) => h("strong", null, o.owner) },
    { label: "Nodes", cell: (o) => String(o.nodes.length) },
    { label: "Gave CPU-h", cell: (o) => hours(o.contributed_cpu_hours) },
    { label: "Took CPU-h", cell: (o) => hours(o.consumed_cpu_hours) },
    { label: "Balance CPU-h", cell: (o) => hours(o.balance_cpu_hours) },
    { label: "Gave GPU-h", cell: (o) => hours(o.contributed_gpu_hours) },
    { label: "Took GPU-h", cell: (o) => hours(o.consumed_gpu_hours) },
    { label: "Balance GPU-h", cell: (o) => hours(o.balance_gpu_hours) },
    { label: "Share", cell: (o) => `${(o.share * 100).toFixed(1)}%` },
  ];
  const columns = [
    { label: "Node", cell: (n) => h("strong", null, n.name) },
    { label: "Pool", cell: (n) => n.pool },
    { label: "Owner", cell: (n) => n.owner || h("span", { class: "muted" }, "-") },
    { label: "Status", cell: (n) => h("span", { class: `badge n-${String(n.status).toLowerCase()}` }, n.status) },
    { label: "CPUs", class: "meter-cell", cell: (n) => meter(n.used_cpus, n.cpus, `${fmtNumber(n.used_cpus)} / ${fmtNumber(n.cpus)}`) },
    {
      label: "Memory",
      class: "meter-cell",
      cell: (n) => meter(n.used_memory_bytes, n.memory_bytes, `${fmtBytes(n.used_memory_bytes)} / ${fmtBytes(n.memory_bytes)}`),
    },
    {
      label: "GPUs",
      class: "meter-cell",
      cell: (n) => {
        const g = gpus(n);
        return g.total ? meter(n.used_gpus, g.total, `${n.used_gpus} / ${g.types}`) : h("span", { class: "muted" }, "none");
      },
    },
    {
      label: "Running",
      cell: (n) =>
        (n.jobs || []).length
          ? h(
              "ul",
              { class: "plain" },
              n.jobs.map((j) => {
                const parts = [`${fmtNumber(j.cpus)} CPU`];
                if (j.memory_bytes) parts.push(fmtBytes(j.memory_bytes));
                if (j.gpus) parts.push(`${j.gpus} GPU`);
                return h("li", null, h("a", { href: `#/jobs/${j.job_id}`, "data-testid": "job-link" }, `job ${j.job_id}`), ` ${parts.join(", ")}`);
              }),
            )
          : h("span", { class: "muted" }, "idle"),
    },
    { label: "Heartbeat", cell: (n) => timeCell(n.heartbeat_at) },
  ];
  let controller = null;
  const load = async () => {
    controller?.abort();
    controller = new AbortController();
    try {
      const doc = await api.get("/api/nodes", null, { signal: controller.signal });
      const nodes = doc.nodes || [];
      const up = nodes.filter((n) => n.status === "UP");
      const sum = (k) => up.reduce((a, n) => a + (n[k] || 0), 0);
      const g = up.reduce((a, n) => a + gpus(n).total, 0);
      totals.textContent = `${up.length} of ${nodes.length} up · CPUs ${fmtNumber(sum("used_cpus"))}/${fmtNumber(sum("cpus"))} · GPUs ${sum("used_gpus")}/${g} · ${sum("running_jobs")} running`;
      replace(box, table(columns, nodes, { testid: "nodes-table", empty: "No nodes registered yet.", rowTestid: (n) => `node-${n.name}` }));
      const owners = await api.get("/api/owners", null, { signal: controller.signal });
      replace(ownersBox, table(ownerColumns, owners.owners || [], { testid: "owners-table", empty: "Nothing given or taken yet.", rowTestid: (o) => `owner-${o.owner}` }));
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  };
  return every(REFRESH_MS, load, () => controller?.abort());
}
