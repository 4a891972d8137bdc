// Usage: GPU-hours and cost per user and per project over time, and the quotas (used vs limit).

import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { fmtNumber, h, meter, replace, table } from "../dom.js";

const RANGES = [
  ["1", "1", "last day"],
  ["7", "6", "last 7 days"],
  ["30", "24", "last 30 days"],
  ["90", "24", "last 90 days"],
];

const money = (v) => `$${(v || 0).toFixed(2)}`;
const hours = (v) => fmtNumber(v || 0, 2);

export function renderUsage(main, { params, flash, go }) {
  const days = RANGES.some(([d]) => d === params.get("days")) ? params.get("days") : "30";
  const bucket = RANGES.find(([d]) => d === days)[1];
  const select = h(
    "select",
    { "data-testid": "usage-range" },
    RANGES.map(([d, , label]) => h("option", { value: d, selected: d === days }, label)),
  );
  select.addEventListener("change", () => go(`#/usage?days=${select.value}`));
  const charts = h("div", { class: "charts wide", "data-testid": "usage-charts" }, h("p", { class: "muted" }, "Loading…"));
  const totals = h("div", { class: "columns" });
  const quotas = h("div", { class: "table-box", "data-testid": "quotas" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", null, "Usage"), h("label", null, "Period ", select)),
    charts,
    totals,
    h("h2", null, "Quotas"),
    quotas,
  );
  const made = [];
  const controller = new AbortController();
  const signal = controller.signal;

  (async () => {
    try {
      const [usage, quota] = await Promise.all([
        api.get("/api/usage", { days, bucket_hours: bucket }, { signal }),
        api.get("/api/quotas", null, { signal }),
      ]);
      showUsage(usage);
      showQuotas(quota.quotas || []);
    } catch (e) {
      if (e.name !== "AbortError") flash(e);
    }
  })();

  const showUsage = (doc) => {
    const x = Array.from({ length: doc.buckets }, (_, i) => doc.since + i * doc.bucket_s);
    replace(charts);
    for (const [scope, label] of [["user", "user"], ["project", "project"]]) {
      const rows = Object.entries(doc[scope] || {}).sort(([a], [b]) => a.localeCompare(b));
      for (const [key, what] of [["gpu_hours", "GPU-hours"], ["cost_usd", "cost (USD)"]]) {
        const series = rows.map(([name, s]) => ({ label: name, values: s[key] }));
        const chart = lineChart({
          title: `${what} per ${label}`,
          x,
          series: series.length ? series : [{ label: "(none)", values: x.map(() => 0) }],
          time: true,
          height: 170,
          testid: `usage-${scope}-${key}`,
          bars: series.length === 1,
          zero: true,
        });
        made.push(chart);
        charts.appendChild(chart.el);
      }
    }
    const sum = (a) => a.reduce((t, v) => t + (v || 0), 0);
    replace(
      totals,
      ["user", "project"].map((scope) =>
        h(
          "section",
          null,
          h("h2", null, `Totals per ${scope}`),
          table(
            [
              { label: scope === "user" ? "User" : "Project", cell: ([name]) => name },
              { label: "GPU-hours", class: "num", cell: ([, s]) => hours(sum(s.gpu_hours)) },
              { label: "Cost", class: "num", cell: ([, s]) => money(sum(s.cost_usd)) },
            ],
            Object.entries(doc[scope] || {}).sort(([a], [b]) => a.localeCompare(b)),
            { testid: `usage-${scope}-totals`, empty: "No usage in this period." },
          ),
        ),
      ),
    );
  };

  const limitCell = (used, limit, fmt) =>
    limit === null || limit === undefined ? h("span", { class: "muted" }, `${fmt(used)} / no limit`) : meter(used || 0, limit, `${fmt(used)} / ${fmt(limit)}`);

  const showQuotas = (rows) => {
    replace(
      quotas,
      table(
        [
          { label: "Scope", cell: (q) => q.scope },
          { label: "Name", cell: (q) => q.name },
          { label: "Period", cell: (q) => q.period || "" },
          { label: "GPUs now", class: "meter-cell", cell: (q) => limitCell(q.used?.gpus, q.gpus, (v) => fmtNumber(v || 0)) },
          { label: "GPU-hours", class: "meter-cell", cell: (q) => limitCell(q.used?.gpu_hours, q.gpu_hours, hours) },
          { label: "Cost", class: "meter-cell", cell: (q) => limitCell(q.used?.cost_usd, q.cost_usd, money) },
        ],
        rows,
        { testid: "quotas-table", empty: "No quotas set.", rowTestid: (q) => `quota-${q.scope}-${q.name}` },
      ),
    );
  };

  return () => {
    controller.abort();
    for (const c of made) c.destroy();
  };
}
